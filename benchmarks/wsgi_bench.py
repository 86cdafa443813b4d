"""The same Flask app on microweb (its reactor + WSGIAdapter), waitress and gunicorn (gthread), in one run.

    python3 benchmarks/wsgi_bench.py [--duration 10] [--connections 50]

Each server runs pinned to core 1 (``taskset -c 1``), wrk to core 0 (``wrk -t1 -c50``);
the whole run holds ``/tmp/microweb-bench.lock`` (it re-executes itself under ``flock``)
so two benchmarks never share the machine. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LOCK = "/tmp/microweb-bench.lock"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def servers(port: int) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "microweb (1 thread, inline)": [py, "-m", "microweb", "run", "wsgi_flask_app:app", "--port", str(port)],
        "microweb --threads 4": [py, "-m", "microweb", "run", "wsgi_flask_app:app", "--port", str(port),
                                 "--threads", "4"],
        "waitress (4 threads)": [py, "-m", "waitress", "--listen", f"127.0.0.1:{port}", "--threads", "4",
                                 "wsgi_flask_app:app"],
        "gunicorn gthread (1 worker, 4 threads)": [py, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads",
                                                   "4", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                                                   "wsgi_flask_app:app"],
    }


def wait_ready(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not become ready")


def wrk(url: str, duration: int, connections: int) -> tuple[float, str, str, int]:
    """(requests/s, p50, p99, non-2xx + socket errors) from one wrk run on core 0."""
    out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1)  # type: ignore[union-attr]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rps, p50, p99, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per server and endpoint, servers interleaved; the median is reported (default 1)")
    args = parser.parse_args()
    if os.environ.get("MICROWEB_BENCH_LOCKED") != "1":
        os.environ["MICROWEB_BENCH_LOCKED"] = "1"
        os.execvp("flock", ["flock", LOCK, sys.executable, os.path.abspath(__file__), *sys.argv[1:]])
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"wsgi_bench: {tool} is not installed", file=sys.stderr)
            return 2
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + HERE)
    paths = [("/", "plaintext /"), ("/json/7", "JSON /json/7")]
    results: dict[tuple[str, str], list[tuple[float, str, str, int]]] = {}
    load_before = os.getloadavg()[0]
    for _ in range(max(1, args.rounds)):
        for name in servers(0):
            port = free_port()
            proc = subprocess.Popen(["taskset", "-c", "1", *servers(port)[name]], cwd=HERE, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_ready(port)
                for path, label in paths:
                    url = f"http://127.0.0.1:{port}{path}"
                    wrk(url, 2, args.connections)  # warm-up
                    rps, p50, p99, errors = wrk(url, args.duration, args.connections)
                    results.setdefault((name, label), []).append((rps, p50, p99, errors))
                    print(f"{name:40} {label:14} {rps:10.0f} req/s  p50 {p50:>8}  p99 {p99:>8}  errors {errors}",
                          file=sys.stderr, flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    rows = []
    for (name, label), runs in results.items():
        runs.sort(key=lambda r: r[0])
        rps, p50, p99, _ = runs[len(runs) // 2]
        rows.append((name, label, rps, p50, p99, sum(r[3] for r in runs)))
    print(f"\nFlask {_version('flask')}, waitress {_version('waitress')}, gunicorn {_version('gunicorn')}; "
          f"wrk -t1 -c{args.connections} -d{args.duration}s on core 0, server on core 1; Python "
          f"{sys.version.split()[0]}; median of {max(1, args.rounds)} round(s); load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| server | endpoint | requests/s | p50 | p99 | errors |")
    print("|---|---|---:|---:|---:|---:|")
    for name, label, rps, p50, p99, errors in rows:
        print(f"| {name} | {label} | {rps:,.0f} | {p50} | {p99} | {errors} |")
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
