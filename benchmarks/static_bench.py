"""Static files: ``microweb serve`` against nginx (one worker), same files, same wrk set-up.

Two scenarios: a 10 MB file (download rate) and a 1 KB file (requests/s; also through an
App's static fallback, behind the router). Each server
runs pinned to core 1, wrk (``-t1 -c50``) to core 0; the whole run holds
``/tmp/microweb-bench.lock`` so two benchmarks never share the machine. Servers take
run side by side and are measured back to back, round after round; the medians count, so
a burst of outside load on a shared machine hits every server alike. The server's CPU time
per request (from /proc) is shown too: when the server is the bottleneck (1 KB), it is what
bounds the rate on a quiet machine.

    python3 benchmarks/static_bench.py [--duration 3] [--rounds 5] [--json]

``run_static_bench()`` returns the figures for other scripts to import.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK_PATH = "/tmp/microweb-bench.lock"
SERVER_CORE = "1"
CLIENT_CORE = "0"
FILES = {"10mb.bin": 10 * 1024 * 1024, "1kb.txt": 1024}
TARGETS = {"10mb.bin": 0.9, "1kb.txt": 0.5}
SERVERS = ("nginx", "microweb", "microweb app")  # issue 4's "Done when" (issue 6 asks 0.95 for the large file)

NGINX_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        etag on;
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


@contextlib.contextmanager
def bench_lock() -> Iterator[None]:
    """Hold the machine-wide benchmark lock (the same lock ``flock /tmp/microweb-bench.lock`` takes)."""
    with open(LOCK_PATH, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_files(root: str) -> None:
    rng = os.urandom(1 << 20)
    with open(os.path.join(root, "10mb.bin"), "wb") as f:
        for _ in range(10):
            f.write(rng)
    with open(os.path.join(root, "1kb.txt"), "w") as f:
        f.write(("microweb static benchmark " * 64)[:1024])
    for name in FILES:
        os.chmod(os.path.join(root, name), 0o644)


@contextlib.contextmanager
def start(cmd: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        wait_for_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_nginx(tmp: str, root: str) -> tuple[contextlib.AbstractContextManager[Any], int]:
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, port=port, root=root))
    return start(["nginx", "-c", conf, "-e", os.path.join(tmp, "nginx-error.log")], port), port


def start_microweb(root: str) -> tuple[contextlib.AbstractContextManager[Any], int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "microweb", "serve", root, "--port", str(port)]
    return start(cmd, port, env), port


def start_microweb_app(tmp: str, root: str) -> tuple[contextlib.AbstractContextManager[Any], int]:
    """An App with one route and ``static_folder=root``: the fallback behind the router."""
    port = free_port()
    app_file = os.path.join(tmp, "static_app.py")
    with open(app_file, "w") as f:
        f.write(f"from microweb import App\napp = App(template_folder=None, static_folder={root!r})\n"
                "@app.get('/hello')\ndef hello(request):\n    return 'hello'\n")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "microweb", "run", app_file, "--port", str(port)]
    return start(cmd, port, env), port


def server_pid(proc: subprocess.Popen[bytes], server: str) -> int:
    """The process doing the work: nginx's one worker, or microweb itself."""
    if server != "nginx":
        return proc.pid
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                children = f.read().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.05)
    return proc.pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (from /proc; 0 where that is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def wrk(url: str, duration: float, connections: int = 50) -> dict[str, float]:
    out = subprocess.run(["taskset", "-c", CLIENT_CORE, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", url],
                         capture_output=True, text=True, timeout=duration + 30).stdout
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rate = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?)B", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rps is None or rate is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return {"rps": float(rps.group(1)), "bytes_per_s": float(rate.group(1)) * _UNITS[rate.group(2)],
            "requests": float(total.group(1)) if total else 0.0,
            "errors": float(errors.group(1)) if errors else 0.0}


def run_static_bench(duration: float = 3.0, rounds: int = 5) -> dict[str, Any]:
    """Run both scenarios against nginx and ``microweb serve``; medians over interleaved rounds.

    All servers run at once (pinned to the same core, idle while not measured); each round
    measures each of them back to back, so a burst of outside load hits them alike, and the
    median of the rounds is reported.
    """
    if shutil.which("nginx") is None or shutil.which("wrk") is None:
        raise RuntimeError("static_bench needs nginx and wrk (apt-get install nginx-light wrk)")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {name: {} for name in FILES}
    with tempfile.TemporaryDirectory(prefix="microweb-static-bench-") as tmp, bench_lock(), \
            contextlib.ExitStack() as stack:
        os.chmod(tmp, 0o755)  # nginx's worker runs as nobody when started as root
        root = os.path.join(tmp, "www")
        os.mkdir(root, 0o755)
        make_files(root)
        servers: dict[str, tuple[int, int]] = {}
        for server in SERVERS:
            if server == "nginx":
                ctx, port = start_nginx(tmp, root)
            elif server == "microweb":
                ctx, port = start_microweb(root)
            else:
                ctx, port = start_microweb_app(tmp, root)
            proc = stack.enter_context(ctx)
            servers[server] = (server_pid(proc, server), port)
        for server, (_, port) in servers.items():
            for name in FILES:
                wrk(f"http://127.0.0.1:{port}/{name}", 1.0)  # warm-up: caches, page cache, TCP
        for _ in range(rounds):
            for name in FILES:
                for server, (pid, port) in servers.items():
                    if server == "microweb app" and name != "1kb.txt":
                        continue
                    url = f"http://127.0.0.1:{port}/{name}"
                    before = cpu_seconds(pid)
                    figures = wrk(url, duration)
                    used = cpu_seconds(pid) - before
                    figures["cpu_us_per_req"] = used * 1e6 / figures["requests"] if figures["requests"] else 0.0
                    if figures["errors"]:
                        raise RuntimeError(f"{server} answered {url} with errors: {figures}")
                    runs[name].setdefault(server, []).append(figures)
    summary: dict[str, Any] = {"duration": duration, "rounds": rounds, "scenarios": {}}
    for name, by_server in runs.items():
        medians = {server: {key: statistics.median(f[key] for f in figures) for key in figures[0]}
                   for server, figures in by_server.items()}
        scenario: dict[str, Any] = {**medians, "target": TARGETS[name],
                                    "ratio": medians["microweb"]["rps"] / medians["nginx"]["rps"],
                                    "round_ratios": [m["rps"] / n["rps"] for m, n in
                                                     zip(by_server["microweb"], by_server["nginx"])]}
        if "microweb app" in medians:
            scenario["app_ratio"] = medians["microweb app"]["rps"] / medians["nginx"]["rps"]
        summary["scenarios"][name] = scenario
    return summary


def format_table(summary: dict[str, Any]) -> str:
    lines = ["| file | server | rate | CPU per request | ratio to nginx | target |", "|---|---|---|---|---|---|"]
    for name, s in summary["scenarios"].items():
        for server in SERVERS:
            f = s.get(server)
            if f is None:
                continue
            if name == "10mb.bin":
                rate = f"{f['bytes_per_s'] / 1024**3:.2f} GiB/s ({f['rps']:.0f} req/s)"
            else:
                rate = f"{f['rps']:,.0f} req/s"
            ratio = f["rps"] / s["nginx"]["rps"]
            target = f">= {s['target']}x" if server != "nginx" else ""
            label = {"nginx": "nginx, 1 worker", "microweb": "microweb serve",
                     "microweb app": "App static fallback"}[server]
            lines.append(f"| {name} | {label} | {rate} | {f['cpu_us_per_req']:.1f} us | {ratio:.2f}x | {target} |")
    lines.append("")
    for name, s in summary["scenarios"].items():
        ratios = ", ".join(f"{r:.2f}" for r in s["round_ratios"])
        lines.append(f"{name}: microweb serve / nginx, round by round: {ratios}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    summary = run_static_bench(args.duration, args.rounds)
    print(json.dumps(summary, indent=2) if args.json else format_table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
