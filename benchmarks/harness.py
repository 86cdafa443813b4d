"""The benchmark's moving parts: start a server pinned to one core, wait for its port, load it with
``wrk`` pinned to the other core, parse what wrk prints, stop the server cleanly.

Every server is started with its real command line (``python3 -m microweb run``, ``uvicorn``,
``python3 -m waitress``, ``nginx``) under ``taskset -c SERVER_CPU``; wrk runs under
``taskset -c LOAD_CPU`` with one thread and 50 keep-alive connections.
"""
from __future__ import annotations

import http.client
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
APPS_DIR = os.path.join(BENCH_DIR, "apps")
SERVER_CPU = "1"
LOAD_CPU = "0"
HOST = "127.0.0.1"
CONNECTIONS = 50
PYTHON = sys.executable
# Prepended to the server's and wrk's command lines: "none" (default) or "nice" (nice -n -10), to
# keep a busy machine's other work from skewing the figures. Real-time scheduling (chrt -f) was tried
# and dropped: the kernel's RT throttling pauses both sides 50 ms a second, which swamps p99.
PRIORITIES: dict[str, list[str]] = {"none": [], "nice": ["nice", "-n", "-10"]}
priority: list[str] = []


class BenchError(Exception):
    """A benchmark step failed (a server did not start, wrk is missing, a response was wrong)."""


# -- servers ------------------------------------------------------------------


@dataclass
class ServerSpec:
    """How to start one server: its command line (without ``taskset``), environment and directory."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    stop_signal: int = signal.SIGTERM


def microweb_server(app_file: str, port: int, cwd: str | None = None,
                    env: dict[str, str] | None = None, options: Sequence[str] = ()) -> ServerSpec:
    """``python3 -m microweb run APP_FILE --port PORT [OPTIONS]`` with this checkout first on the path."""
    return ServerSpec("microweb", [PYTHON, "-m", "microweb", "run", app_file, "--port", str(port), *options],
                      env={"PYTHONPATH": REPO_ROOT, **(env or {})}, cwd=cwd or REPO_ROOT)


def microweb_serve(folder: str, port: int) -> ServerSpec:
    """``python3 -m microweb serve FOLDER --port PORT``: the static-site command."""
    return ServerSpec("microweb", [PYTHON, "-m", "microweb", "serve", folder, "--port", str(port)],
                      env={"PYTHONPATH": REPO_ROOT}, cwd=REPO_ROOT)


def floor_server(port: int) -> ServerSpec:
    return ServerSpec("floor", [PYTHON, os.path.join(BENCH_DIR, "floor.py"), str(port)], stop_signal=signal.SIGINT)


def uvicorn_server(target: str, port: int) -> ServerSpec:
    """uvicorn with httptools (C parser) and uvloop, one worker, no access log."""
    return ServerSpec("uvicorn", [PYTHON, "-m", "uvicorn", target, "--app-dir", APPS_DIR, "--host", HOST,
                                  "--port", str(port), "--http", "httptools", "--loop", "uvloop",
                                  "--lifespan", "off", "--no-access-log", "--log-level", "warning"])


def waitress_server(target: str, port: int, env: dict[str, str] | None = None) -> ServerSpec:
    """waitress with its defaults (4 threads)."""
    return ServerSpec("waitress", [PYTHON, "-m", "waitress", f"--listen={HOST}:{port}", target],
                      env={"PYTHONPATH": APPS_DIR, **(env or {})})


def granian_server(target: str, interface: str, port: int) -> ServerSpec:
    """granian (Rust HTTP core) with ``--interface wsgi|asgi``, one worker, one runtime thread, no access log."""
    return ServerSpec("granian", [PYTHON, "-m", "granian", "--interface", interface, "--host", HOST,
                                  "--port", str(port), "--workers", "1", "--runtime-threads", "1",
                                  "--working-dir", APPS_DIR, "--no-access-log", "--log-level", "warning",
                                  target], env={"PYTHONPATH": APPS_DIR})


def socketify_server(port: int) -> ServerSpec:
    """socketify (uWebSockets, C++) calling a Python function per request, one process."""
    return ServerSpec("socketify", [PYTHON, os.path.join(APPS_DIR, "socketify_hello.py"), str(port)])


def cheroot_server(target: str, port: int, threads: int = 4) -> ServerSpec:
    """cheroot, CherryPy's WSGI server, with a fixed pool of ``threads`` threads."""
    return ServerSpec("cheroot", [PYTHON, "-m", "cheroot", "--bind", f"{HOST}:{port}", "--threads", str(threads),
                                  "--max-threads", str(threads), target], env={"PYTHONPATH": APPS_DIR})


def gunicorn_server(target: str, port: int, threads: int = 4) -> ServerSpec:
    """gunicorn with the gthread worker: one worker process, ``threads`` threads."""
    return ServerSpec("gunicorn", [PYTHON, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", str(threads),
                                   "-b", f"{HOST}:{port}", "--log-level", "warning", "--chdir", APPS_DIR, target],
                      env={"PYTHONPATH": APPS_DIR})


def raise_fd_limit(wanted: int = 20000) -> int:
    """Raise this process's open-file limit (``ulimit -n``) towards ``wanted``, capped by the hard limit.

    Servers and wrk are started from this process and inherit it: 1,000 connections need more than the
    usual soft limit of 1,024 on both sides. Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000000;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen {host}:{port};
        root {root};
        location = /hello {{ default_type text/plain; return 200 "Hello, World!"; }}
    }}
}}
"""


def nginx_server(port: int, root: str, workdir: str) -> ServerSpec:
    """One nginx worker serving ``root`` (files) and ``/hello`` (a fixed 13-byte response).

    ``keepalive_requests`` is raised so nginx does not close wrk's connections every 1000 requests.
    """
    prefix = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
    os.makedirs(os.path.join(prefix, "tmp"))
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(prefix=prefix, host=HOST, port=port, root=root))
    return ServerSpec("nginx", ["nginx", "-p", prefix, "-e", os.path.join(prefix, "error.log"), "-c", conf],
                      stop_signal=signal.SIGQUIT)


class RunningServer:
    """A started server process (a context manager: stops it on exit)."""

    def __init__(self, spec: ServerSpec, port: int, logdir: str, start_timeout: float = 20.0) -> None:
        self.spec = spec
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.log_path = os.path.join(logdir, f"{spec.name}-{port}.log")
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for key, value in spec.env.items():
            env[key] = value + (os.pathsep + env[key] if key == "PYTHONPATH" and env.get(key) else "")
        self.started_at = time.perf_counter()
        argv = [*priority, "taskset", "-c", SERVER_CPU, *spec.argv]
        self.proc = subprocess.Popen(argv, cwd=spec.cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        try:
            self.ready_after = wait_for_port(HOST, port, start_timeout, self.proc) - self.started_at
        except BenchError:
            self.stop()
            raise BenchError(f"{spec.name} did not start: {self.log_tail()}") from None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 8) -> str:
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return " | ".join(f.read().decode(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask the server to stop (its own stop signal), then kill it if it has not within ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(self.spec.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None,
                  interval: float = 0.002) -> float:
    """Connect until something accepts; return the ``perf_counter`` time it first did."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return time.perf_counter()
        except OSError:
            time.sleep(interval)
    raise BenchError(f"nothing listening on {host}:{port} after {timeout:.0f} s")


def check_response(url: str, path: str, expect: bytes, headers: dict[str, str] | None = None,
                   status: int = 200, method: str = "GET") -> None:
    """One request; raise ``BenchError`` unless it answers ``status`` with a body containing ``expect``."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != status or expect not in body:
        raise BenchError(f"{method} {url}{path}: {resp.status} {body[:80]!r} "
                         f"(expected {status} with {expect[:40]!r})")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its direct children, in MB (from /proc)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    total_kb = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


# -- wrk ------------------------------------------------------------------------


@dataclass
class WrkResult:
    """What one wrk run reported."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    seconds: float
    bytes_read: float
    socket_errors: int
    non_2xx: int

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_read / self.seconds if self.seconds else 0.0


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"cannot read latency {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, latency percentiles, totals and errors from wrk's ``--latency`` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not rps:
        raise BenchError(f"wrk printed no Requests/sec: {output.strip()[-300:]!r}")
    pct = {m[1]: _ms(m[2]) for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M)}
    total = re.search(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)([KMGT]?B) read", output, re.M)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        rps=float(rps[1]),
        p50_ms=pct.get("50", float("nan")),
        p99_ms=pct.get("99", float("nan")),
        requests=int(total[1]) if total else 0,
        seconds=_ms(total[2] + total[3]) / 1000 if total else 0.0,
        bytes_read=float(total[4]) * _SIZE[total[5]] if total else 0.0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
    )


def wrk_command(url: str, duration: float, script: str | None = None, script_args: Sequence[str] = (),
                connections: int = CONNECTIONS) -> list[str]:
    argv = [*priority, "taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}",
            f"-d{max(1, round(duration))}s", "--latency", "--timeout", "5s"]
    if script:
        argv += ["-s", script]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    return argv


def run_wrk(url: str, duration: float, script: str | None = None, script_args: Sequence[str] = (),
            connections: int = CONNECTIONS) -> WrkResult:
    """One pinned wrk run: ``wrk -t1 -c50 -dNs --latency [-s script] URL [-- args]``."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (apt-get install -y wrk)")
    argv = wrk_command(url, duration, script, script_args, connections)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return parse_wrk(proc.stdout)


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")
