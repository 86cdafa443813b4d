"""Slowloris: does a crowd of connections trickling header bytes slow a normal client?

Starts ``microweb run`` (pinned to CPU 1 when ``taskset`` exists), measures a normal
client's latency over one keep-alive connection and over a new connection per request,
then opens N slowloris connections in a separate process (each sends a partial head
and then one more header byte about once a second, reconnecting when the server
closes it, as the attack does) and measures again.

    flock /tmp/microweb-bench.lock python3 benchmarks/slowloris.py [--connections 1000] [--seconds 5]

Prints a table of p50 / p99 / mean latencies in milliseconds and the difference.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APP = "from microweb import App\napp = App(static_folder=None, template_folder=None)\n" \
      "@app.get('/')\ndef index(request):\n    return 'Hello, World!'\n"

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
ERRORS = [0]


def _pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass


def start_server(port: int, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    folder = tempfile.mkdtemp(prefix="slowloris-")
    with open(os.path.join(folder, "hello.py"), "w") as f:
        f.write(APP)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    cmd = [sys.executable, "-m", "microweb", "run", "hello.py", "--port", str(port), *extra]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, folder
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not start")


def _read_response(sock: socket.socket) -> bool:
    """Read one response; True if the server closes the connection after it."""
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data
        head, sep, body = buf.partition(b"\r\n\r\n")
        if sep:
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= length:
                return b"connection: close" in head.lower()


def latencies(port: int, seconds: float, keep_alive: bool) -> list[float]:
    """Sequential requests for ``seconds``; the latency of each in milliseconds."""
    out = []
    sock = socket.create_connection(("127.0.0.1", port)) if keep_alive else None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        s = sock or socket.create_connection(("127.0.0.1", port))
        try:
            s.sendall(REQUEST)
            closing = _read_response(s)
        except OSError:
            # Tens of thousands of short connections can land on a local port still in
            # TIME_WAIT: the kernel resets it. Not the server's doing; counted, not timed.
            ERRORS[0] += 1
            if sock is not None:
                raise
            s.close()
            continue
        if sock is None:
            s.close()
        elif closing:  # --max-requests-per-connection reached (10,000 by default)
            sock.close()
            sock = socket.create_connection(("127.0.0.1", port))
        out.append((time.perf_counter() - start) * 1000.0)
    if sock is not None:
        sock.close()
    return out


def slowloris(port: int, connections: int, ready: Any, stop: Any, stats: Any) -> None:
    """Hold ``connections`` half-sent heads open, one more byte each per second."""
    _pin(0)
    socks: list[socket.socket | None] = [None] * connections
    reconnects = 0

    def connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        s.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        return s

    for i in range(connections):
        socks[i] = connect()
    ready.set()
    i = 0
    while not stop.is_set():
        round_start = time.monotonic()
        for i in range(connections):
            s = socks[i]
            try:
                assert s is not None
                s.send(b"a")
            except OSError:  # closed by the head timeout (408): reconnect, as slowloris does
                if s is not None:
                    s.close()
                socks[i] = connect()
                reconnects += 1
            if i % 50 == 49:  # spread the bytes over the second
                time.sleep(max(0.0, (round_start + (i + 1) / connections) - time.monotonic()))
        time.sleep(max(0.0, round_start + 1.0 - time.monotonic()))
    stats.value = reconnects
    for s in socks:
        if s is not None:
            s.close()


def summarize(values: list[float]) -> tuple[float, float, float, int]:
    ordered = sorted(values)
    return (statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1], statistics.fmean(ordered),
            len(ordered))


def run(connections: int = 1000, seconds: float = 5.0, port: int = 0) -> dict[str, Any]:
    """Measure; returns {"baseline": {...}, "attack": {...}} with (p50, p99, mean) per mode."""
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    proc, folder = start_server(port, [])
    _pin(0)
    result: dict[str, Any] = {"connections": connections, "seconds": seconds}
    try:
        latencies(port, 0.5, True)  # warm up
        result["baseline"] = {m: summarize(latencies(port, seconds, m == "keep-alive"))
                              for m in ("keep-alive", "new connection")}
        ready, stop = multiprocessing.Event(), multiprocessing.Event()
        stats = multiprocessing.Value("i", 0)
        attacker = multiprocessing.Process(target=slowloris, args=(port, connections, ready, stop, stats))
        attacker.start()
        if not ready.wait(60):
            raise RuntimeError("the slowloris connections did not open")
        time.sleep(1.0)
        result["attack"] = {m: summarize(latencies(port, seconds, m == "keep-alive"))
                            for m in ("keep-alive", "new connection")}
        stop.set()
        attacker.join(10)
        result["reconnects"] = stats.value
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per mode")
    args = parser.parse_args()
    r = run(args.connections, args.seconds)
    print(f"normal client: sequential requests for {args.seconds:g} s per mode; "
          f"{args.connections} slowloris connections")
    print(f"{'mode':<16} {'':<10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'requests':>9}")
    for mode in ("keep-alive", "new connection"):
        b, a = r["baseline"][mode], r["attack"][mode]
        print(f"{mode:<16} {'baseline':<10} {b[0]:8.3f} {b[1]:8.3f} {b[2]:8.3f} {b[3]:9d}")
        print(f"{'':<16} {'slowloris':<10} {a[0]:8.3f} {a[1]:8.3f} {a[2]:8.3f} {a[3]:9d}")
        print(f"{'':<16} {'+delta':<10} {a[0] - b[0]:8.3f} {a[1] - b[1]:8.3f} {a[2] - b[2]:8.3f}")
    print(f"slowloris reconnects after 408/close: {r['reconnects']}; client connection resets: {ERRORS[0]}")


if __name__ == "__main__":
    main()
