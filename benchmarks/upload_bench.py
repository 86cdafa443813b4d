"""Upload throughput for large bodies: microweb vs nginx (body to a temporary file) vs gunicorn+Flask
vs uvicorn+Starlette, raw (``curl -T``) and multipart (``curl -F``).

    flock /tmp/microweb-bench.lock python3 benchmarks/upload_bench.py [--size 1G] [--rounds 2]

For each round, each server in turn (interleaved, so drift on a shared machine hits all alike):
start it pinned to CPU 1 (``taskset``), then for each mode send the file once with curl pinned to
CPU 0, while another client sends ``GET /ping`` every 5 ms on a keep-alive connection. Reported:
MB/s (10^6 bytes per second of curl's total time; the median of the rounds), the server process's
peak RSS growth during the upload (``VmHWM`` after minus ``VmRSS`` before, with the peak reset
through ``/proc/PID/clear_refs``; for nginx and gunicorn the worker process), and the p99 of the
pings. Ratios are against nginx. The body is generated into a file in /tmp, removed at the end.

Each handler reads the whole body and answers its size: microweb ``request.stream`` and
``request.files``; Flask ``request.stream`` and ``request.files`` (Werkzeug spools files to disk);
Starlette ``request.stream()`` and ``request.form()``; nginx with ``client_body_in_file_only`` in
front of a location that returns 200 without passing the body on.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
APPS_DIR = os.path.join(BENCH_DIR, "apps")
PYTHON = sys.executable
HOST = "127.0.0.1"
SERVER_CPU, LOAD_CPU = "1", "0"
SERVERS = ("microweb", "nginx", "flask", "starlette")
MODES = ("raw", "multipart")

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen {host}:{port};
        client_max_body_size 0;
        location = /ping {{ default_type text/plain; return 200 "pong"; }}
        location / {{
            # The whole body is read into a temporary file (then removed), as microweb spools it,
            # and not passed on: the upstream just answers 200.
            client_body_in_file_only clean;
            client_body_buffer_size 1m;  # fewer, larger writes (the default is 16k)
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_pass http://unix:{prefix}/ok.sock:/;
        }}
    }}
    server {{
        listen unix:{prefix}/ok.sock;
        location / {{ default_type text/plain; return 200 "ok"; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_argv(name: str, port: int, workdir: str) -> tuple[list[str], dict[str, str]]:
    if name == "microweb":
        return ([PYTHON, "-m", "microweb", "run", os.path.join(APPS_DIR, "upload_microweb.py"), "--port", str(port)],
                {"PYTHONPATH": REPO_ROOT})
    if name == "flask":
        return ([PYTHON, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4", "--chdir", APPS_DIR,
                 "-b", f"{HOST}:{port}", "--log-level", "warning", "upload_flask:app"], {})
    if name == "starlette":
        return ([PYTHON, "-m", "uvicorn", "upload_starlette:app", "--app-dir", APPS_DIR, "--host", HOST,
                 "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--lifespan", "off",
                 "--no-access-log", "--log-level", "warning"], {})
    prefix = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
    os.makedirs(os.path.join(prefix, "tmp"))
    for path in (workdir, prefix, os.path.join(prefix, "tmp")):
        os.chmod(path, 0o777)  # the worker (another user when started as root) writes the body files there
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(prefix=prefix, host=HOST, port=port))
    return ["nginx", "-p", prefix, "-e", os.path.join(prefix, "error.log"), "-c", conf], {}


class Server:
    def __init__(self, name: str, workdir: str) -> None:
        self.name = name
        self.port = free_port()
        argv, extra = server_argv(name, self.port, workdir)
        env = dict(os.environ, **extra)
        self.log = open(os.path.join(workdir, f"{name}.log"), "wb")
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *argv], env=env, cwd=REPO_ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().read() == b"pong":
                    conn.close()
                    break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"{name} did not start (see {self.log.name})")
        self.pid = self._worker_pid()

    def _worker_pid(self) -> int:
        """The process that reads the bodies: the server itself, or its single worker."""
        pid = self.proc.pid
        if self.name in ("nginx", "flask"):
            for _ in range(50):
                try:
                    with open(f"/proc/{pid}/task/{pid}/children") as f:
                        children = f.read().split()
                except OSError:
                    children = []
                if children:
                    return int(children[-1])
                time.sleep(0.1)
        return pid

    def memory(self, field: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def reset_peak(self) -> None:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT if self.name == "nginx" else signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def make_body(path: str, size: int) -> None:
    block = bytearray(os.urandom(1 << 20))
    written = 0
    with open(path, "wb") as f:
        index = 0
        while written < size:
            block[:8] = index.to_bytes(8, "big")
            piece = bytes(block[:size - written])
            f.write(piece)
            written += len(piece)
            index += 1


def ping_loop(port: int, stop: threading.Event, latencies: list[float]) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    while not stop.is_set():
        start = time.perf_counter()
        try:
            conn.request("GET", "/ping")
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):  # the server closed the keep-alive connection
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            continue
        latencies.append(time.perf_counter() - start)
        time.sleep(0.005)
    conn.close()


def upload(server: Server, mode: str, body: str, size: int) -> dict[str, float]:
    url = f"http://{HOST}:{server.port}/" + ("raw" if mode == "raw" else "form")
    send = ["-T", body] if mode == "raw" else ["-F", f"f=@{body}"]
    rss_before = server.memory("VmRSS")
    server.reset_peak()
    latencies: list[float] = []
    stop = threading.Event()
    pinger = threading.Thread(target=ping_loop, args=(server.port, stop, latencies))
    pinger.start()
    try:
        out = subprocess.run(["taskset", "-c", LOAD_CPU, "curl", "-sS", "-H", "Expect:", "-o", "/dev/null",
                              "-w", "%{http_code} %{time_total}", *send, url],
                             capture_output=True, text=True, timeout=900)
    finally:
        stop.set()
        pinger.join()
    code, seconds = out.stdout.split()
    if code != "200":
        raise RuntimeError(f"{server.name} {mode}: HTTP {code} {out.stderr}")
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan")
    return {"mbps": size / float(seconds) / 1e6, "rss": (server.memory("VmHWM") - rss_before) / 2**20,
            "p99": p99 * 1000, "pings": len(latencies)}


def main(argv: list[str] | None = None) -> int:
    from microweb.server.options import parse_size

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G", help="upload size (default 1G)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    servers = args.servers.split(",")
    modes = args.modes.split(",")
    workdir = tempfile.mkdtemp(prefix="upload-bench-")
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        body = os.path.join(workdir, "body.bin")
        make_body(body, size)
        for round_number in range(args.rounds):
            for name in servers:
                server = Server(name, workdir)
                try:
                    for mode in modes:
                        figures = upload(server, mode, body, size)
                        results.setdefault((name, mode), []).append(figures)
                        print(f"round {round_number + 1} {name:9} {mode:9} {figures['mbps']:7.1f} MB/s "
                              f"RSS +{figures['rss']:6.1f} MiB  ping p99 {figures['p99']:7.2f} ms "
                              f"({figures['pings']} pings)", flush=True)
                finally:
                    server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{size / 2**20:.0f} MiB upload, {args.rounds} rounds (median MB/s, worst RSS growth and p99)")
    print(f"{'server':10} {'mode':10} {'MB/s':>8} {'vs nginx':>9} {'RSS +MiB':>9} {'ping p99 ms':>12}")
    table = []
    for mode in modes:
        base = results.get(("nginx", mode))
        base_mbps = statistics.median(r["mbps"] for r in base) if base else None
        for name in servers:
            runs = results[(name, mode)]
            mbps = statistics.median(r["mbps"] for r in runs)
            ratio = mbps / base_mbps if base_mbps else float("nan")
            rss = max(r["rss"] for r in runs)
            p99 = max(r["p99"] for r in runs)
            table.append({"server": name, "mode": mode, "mbps": mbps, "ratio": ratio, "rss_mib": rss, "p99_ms": p99})
            print(f"{name:10} {mode:10} {mbps:8.1f} {ratio:8.2f}x {rss:9.1f} {p99:12.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": size, "rounds": args.rounds, "results": table}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
