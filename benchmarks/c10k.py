#!/usr/bin/env python3
"""10,000 idle keep-alive connections: the server's memory, its speed beside them, and their reuse.

usage: python3 benchmarks/c10k.py [--connections 10000] [--duration 5] [--reps 3] [--server microweb|uvicorn]

Starts the server's hello world pinned to core 1 and measures wrk (-t1 -c50, pinned to core 0) on it
without the idle connections; then opens N connections, sends one request on each and reads the
answers, reads the server's resident memory from /proc, runs wrk again while the N connections sit
idle, and finally sends one more request on every one of the N connections. Targets (issue 6):
RSS <= 40 MB with the connections held, requests/s with them >= 90% of without, all N re-used.
"""
from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import sys
import tempfile
import time
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import harness as h  # noqa: E402

BATCH = 1000  # connections sent a request at once, so the server sees bursts, not one wall
SERVERS = {
    "microweb": lambda port: h.microweb_server(os.path.join(h.APPS_DIR, "hello.py"), port),
    "uvicorn": lambda port: h.uvicorn_server("asgi_hello:app", port),
}


def raise_nofile(needed: int) -> int:
    """Raise this process's open-file limit (the server inherits it) to at least ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:  # root may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
        except (ValueError, OSError):
            raise h.BenchError(f"open-file limit {hard} is below {needed}; raise it (ulimit -n)") from None
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


def open_connections(port: int, n: int) -> list[socket.socket]:
    socks: list[socket.socket] = []
    for i in range(n):
        sock = socket.socket()
        try:
            sock.connect((h.HOST, port))
        except OSError as exc:
            sock.close()
            for s in socks:
                s.close()
            raise h.BenchError(f"connect failed after {i} connections: {exc}") from None
        socks.append(sock)
    return socks


def _response_complete(buf: bytes) -> bool | None:
    """True: one whole Content-Length response with status 200; False: a whole non-200; None: more needed."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if len(body) < length:
        return None
    return head.startswith(b"HTTP/1.1 200")


def one_round(socks: list[socket.socket], request: bytes, timeout: float = 30.0) -> int:
    """Send ``request`` on every socket (``BATCH`` at a time); return how many got a 200 back."""
    ok = 0
    for start in range(0, len(socks), BATCH):
        batch = socks[start:start + BATCH]
        selector = selectors.DefaultSelector()
        buffers: dict[socket.socket, bytes] = {}
        for sock in batch:
            try:
                sock.sendall(request)
            except OSError:
                continue
            buffers[sock] = b""
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while buffers and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1.0):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    data = ready.recv(65536)
                except OSError:
                    data = b""
                done = _response_complete(buffers[ready] + data) if data else False
                if done is None:
                    buffers[ready] += data
                    continue
                ok += bool(done)
                selector.unregister(ready)
                del buffers[ready]
        selector.close()
    return ok


def _wrk_median(url: str, duration: float, reps: int) -> tuple[float, float]:
    runs = [h.run_wrk(url, duration) for _ in range(reps)]
    return h.median(r.rps for r in runs), h.median(r.p99_ms for r in runs)


def run_c10k(connections: int = 10000, duration: float = 5.0, reps: int = 3, server: str = "microweb",
             logdir: str | None = None) -> dict[str, Any]:
    """Run the scenario once against ``server``; return its figures (see the module docstring)."""
    raise_nofile(connections + 1024)
    os.sched_setaffinity(0, {int(h.LOAD_CPU)})  # our client work stays off the server's core
    logdir = logdir or tempfile.mkdtemp(prefix="microweb-c10k-")
    port = h.free_port()
    request = f"GET / HTTP/1.1\r\nHost: {h.HOST}:{port}\r\n\r\n".encode()
    with h.RunningServer(SERVERS[server](port), port, logdir) as srv:
        url = srv.url + "/"
        h.check_response(srv.url, "/", b"Hello")
        h.run_wrk(url, 1)  # warm-up
        rps_without, p99_without = _wrk_median(url, duration, reps)
        rss_idle = h.rss_mb(srv.pid)
        started = time.monotonic()
        socks = open_connections(port, connections)
        try:
            first_ok = one_round(socks, request)
            open_seconds = time.monotonic() - started
            rss_held = h.rss_mb(srv.pid)
            rps_with, p99_with = _wrk_median(url, duration, reps)
            rss_after_wrk = h.rss_mb(srv.pid)
            reused = one_round(socks, request)
        finally:
            for sock in socks:
                sock.close()
        alive = srv.proc.poll() is None
    return {
        "server": server,
        "held": len(socks),
        "first_ok": first_ok,
        "open_and_first_request_s": round(open_seconds, 2),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_held_mb": round(rss_held, 1),
        "rss_held_after_wrk_mb": round(rss_after_wrk, 1),
        "rps_without": round(rps_without),
        "rps_with": round(rps_with),
        "rps_ratio": round(rps_with / rps_without, 3) if rps_without else float("nan"),
        "p99_without_ms": p99_without,
        "p99_with_ms": p99_with,
        "reused": reused,
        "server_alive": alive,
    }


def format_line(r: dict[str, Any]) -> str:
    return (f"c10k {r['server']}: held={r['held']} first_ok={r['first_ok']} rss_idle={r['rss_idle_mb']:.1f}MB "
            f"rss_held={max(r['rss_held_mb'], r['rss_held_after_wrk_mb']):.1f}MB "
            f"rps_without={r['rps_without']} rps_with={r['rps_with']} ratio={r['rps_ratio']:.2f} "
            f"p99_with={r['p99_with_ms']:.2f}ms reused={r['reused']}/{r['held']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--reps", type=int, default=3, help="wrk runs with and without (median; default 3)")
    parser.add_argument("--server", choices=sorted(SERVERS), default="microweb")
    parser.add_argument("--priority", choices=sorted(h.PRIORITIES), default="none",
                        help="nice: run the server and wrk under nice -n -10 (a busy machine)")
    args = parser.parse_args(argv)
    h.priority[:] = h.PRIORITIES[args.priority]
    try:
        result = run_c10k(args.connections, args.duration, args.reps, args.server)
    except h.BenchError as exc:
        print(f"c10k: error: {exc}", file=sys.stderr)
        return 2
    print(format_line(result))
    ok = (max(result["rss_held_mb"], result["rss_held_after_wrk_mb"]) <= 40 and result["rps_ratio"] >= 0.9
          and result["reused"] == result["held"])
    print("targets (RSS <= 40 MB, rps >= 90% of without, all re-used):", "met" if ok else "not met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
