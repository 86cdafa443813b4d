#!/usr/bin/env python3
"""WebSocket benchmarks (issue 13): echo round trips, 10,000 idle sockets, a broadcast to 1,000.

usage: python3 benchmarks/websocket_bench.py [--duration 3] [--rounds 3] [--idle 10000] [--fanout 1000]
                                             [--only echo,idle,broadcast]

Each server runs pinned to core 1 (``taskset``), the client to core 0, started side by side:

- echo: 50 sockets, each with one small text message in flight (a masked 5-byte frame, sent
  again as soon as its echo is back); round trips per second, median of ``--rounds`` runs of
  ``--duration`` s. microweb (event style, ``ws.on_message(ws.send)``) against uvicorn +
  uvloop + the ``websockets`` library with a raw ASGI echo, and Starlette's WebSocket on the
  same. No compression (the client does not offer it), so the servers' framing is measured.
  Target: microweb at least 2x uvicorn's raw ASGI.
- idle: ``--idle`` websockets opened and held; the server's RSS; then one echo on every one.
  Target: RSS at most 48 MB, every socket still echoes.
- broadcast: ``--fanout`` subscribed sockets; one HTTP POST makes the app send one message to
  all of them; the time from the POST until the last socket has it (median of 5).

The client is plain Python on raw sockets (selectors, precomputed frames): on the 2-core
development VM it can be the limit, so the echo ratios are a floor for microweb.
"""
from __future__ import annotations

import argparse
import base64
import os
import selectors
import socket
import statistics
import sys
import tempfile
import time
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import harness as h  # noqa: E402
from benchmarks.c10k import raise_nofile  # noqa: E402

MESSAGE = b"hello"
MASK = b"\x11\x22\x33\x44"
FRAME = bytes((0x81, 0x80 | len(MESSAGE))) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(MESSAGE))
ECHO = bytes((0x81, len(MESSAGE))) + MESSAGE
CONNECTIONS = 50


def pin_client() -> None:
    try:
        os.sched_setaffinity(0, {int(h.LOAD_CPU)})
    except (AttributeError, OSError):
        pass


def microweb_spec(port: int) -> h.ServerSpec:
    return h.microweb_server(os.path.join(h.APPS_DIR, "ws_microweb.py"), port)


def uvicorn_spec(target: str, name: str) -> Any:
    def spec(port: int) -> h.ServerSpec:
        return h.ServerSpec(name, [h.PYTHON, "-m", "uvicorn", target, "--app-dir", h.APPS_DIR, "--host", h.HOST,
                                   "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--ws",
                                   "websockets", "--ws-per-message-deflate", "false", "--lifespan", "off",
                                   "--no-access-log", "--log-level", "warning"])
    return spec


PEERS = {
    "microweb (event style)": microweb_spec,
    "uvicorn+uvloop+websockets, raw ASGI": uvicorn_spec("ws_asgi:app", "uvicorn-asgi"),
    "Starlette WebSocket on uvicorn+uvloop": uvicorn_spec("ws_starlette:app", "uvicorn-starlette"),
}


def handshake(port: int, path: str) -> socket.socket:
    sock = socket.create_connection((h.HOST, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {h.HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise h.BenchError(f"the server closed during the handshake: {data!r}")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101"):
        raise h.BenchError(f"handshake refused: {data[:100]!r}")
    if data.split(b"\r\n\r\n", 1)[1]:
        raise h.BenchError("unexpected bytes after the 101")
    return sock


def echo_rate(port: int, duration: float) -> tuple[float, int]:
    """Round trips per second over CONNECTIONS sockets, one message in flight on each, and the
    round trips made in all (warm-up included, for the CPU figure)."""
    socks = [handshake(port, "/echo") for _ in range(CONNECTIONS)]
    selector = selectors.DefaultSelector()
    pending = {}
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        pending[sock] = 0
    size = len(ECHO)

    def run(seconds: float) -> int:
        for sock in socks:
            sock.send(FRAME)
        done = 0
        end = time.perf_counter() + seconds
        select = selector.select
        while time.perf_counter() < end:
            for key, _ in select(0.5):
                sock = key.fileobj
                data = sock.recv(65536)  # type: ignore[union-attr]
                if not data:
                    raise h.BenchError("a server closed an echo socket")
                got = pending[sock] + len(data)
                replies, pending[sock] = divmod(got, size)
                if replies:
                    done += replies
                    sock.send(FRAME)  # type: ignore[union-attr]
        # Let the messages in flight come back, so the next run starts clean.
        settle = time.perf_counter() + 2
        waiting = {s for s in socks}
        while waiting and time.perf_counter() < settle:
            for key, _ in select(0.2):
                sock = key.fileobj
                data = sock.recv(65536)  # type: ignore[union-attr]
                got = pending[sock] + len(data)
                _, pending[sock] = divmod(got, size)
                waiting.discard(sock)  # type: ignore[arg-type]
        return done

    warm = run(0.5)
    started = time.perf_counter()
    done = run(duration)
    elapsed = time.perf_counter() - started
    for sock in socks:
        sock.close()
    selector.close()
    return done / min(elapsed, duration), warm + done


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_echo(duration: float, rounds: int, logdir: str) -> tuple[dict[str, float], dict[str, float]]:
    """Round trips/s and server CPU microseconds per round trip, medians over the rounds."""
    results: dict[str, list[float]] = {name: [] for name in PEERS}
    cpu: dict[str, list[float]] = {name: [] for name in PEERS}
    for _ in range(rounds):
        for name, spec in PEERS.items():
            port = h.free_port()
            with h.RunningServer(spec(port), port, logdir) as server:
                time.sleep(0.3)
                before = cpu_seconds(server.pid)
                rate, trips = echo_rate(port, duration)
                used = cpu_seconds(server.pid) - before
                results[name].append(rate)
                cpu[name].append(used / trips * 1e6 if trips else 0.0)
    return ({name: statistics.median(values) for name, values in results.items()},
            {name: statistics.median(values) for name, values in cpu.items()})


def open_many(port: int, n: int, path: str) -> list[socket.socket]:
    """``n`` websockets, handshakes sent in batches so the server sees bursts."""
    socks: list[socket.socket] = []
    batch = 500
    for start in range(0, n, batch):
        group = []
        for _ in range(min(batch, n - start)):
            sock = socket.create_connection((h.HOST, port), timeout=30)
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            group.append(sock)
        for sock in group:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    raise h.BenchError("closed during the handshake")
                data += chunk
            if not data.startswith(b"HTTP/1.1 101"):
                raise h.BenchError(f"handshake refused: {data[:80]!r}")
        socks.extend(group)
    return socks


def bench_idle(n: int, logdir: str) -> dict[str, Any]:
    raise_nofile(n + 1000)
    port = h.free_port()
    with h.RunningServer(microweb_spec(port), port, logdir) as server:
        time.sleep(0.3)
        base = h.rss_mb(server.pid)
        started = time.perf_counter()
        socks = open_many(port, n, "/echo")
        opened = time.perf_counter() - started
        time.sleep(1.0)
        rss = h.rss_mb(server.pid)
        echoed = 0
        for sock in socks:
            sock.sendall(FRAME)
        for sock in socks:
            data = b""
            while len(data) < len(ECHO):
                chunk = sock.recv(64)
                if not chunk:
                    break
                data += chunk
            echoed += data == ECHO
        for sock in socks:
            sock.close()
    return {"sockets": n, "rss_mb": rss, "rss_before_mb": base, "open_s": opened, "echoed": echoed}


def bench_broadcast(n: int, logdir: str, repeats: int = 5) -> dict[str, Any]:
    raise_nofile(n + 1000)
    port = h.free_port()
    times = []
    with h.RunningServer(microweb_spec(port), port, logdir):
        time.sleep(0.3)
        socks = open_many(port, n, "/subscribe")
        for sock in socks:
            sock.setblocking(False)
        selector = selectors.DefaultSelector()
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        time.sleep(0.5)
        for i in range(repeats):
            body = f"news {i}".encode()
            expect = len(body) + 2
            got = {sock: 0 for sock in socks}
            waiting = set(socks)
            http = socket.create_connection((h.HOST, port))
            started = time.perf_counter()
            http.sendall(b"POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            deadline = started + 30
            while waiting and time.perf_counter() < deadline:
                for key, _ in selector.select(1):
                    sock = key.fileobj
                    got[sock] += len(sock.recv(4096))  # type: ignore[union-attr, index]
                    if got[sock] >= expect:  # type: ignore[index]
                        waiting.discard(sock)  # type: ignore[arg-type]
            elapsed = time.perf_counter() - started
            http.close()
            if waiting:
                raise h.BenchError(f"{len(waiting)} sockets never got the broadcast")
            times.append(elapsed)
        for sock in socks:
            sock.close()
    return {"sockets": n, "median_ms": statistics.median(times) * 1000, "all_ms": [t * 1000 for t in times]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--only", default="echo,idle,broadcast")
    args = parser.parse_args(argv)
    pin_client()
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="microweb-wsbench-") as logdir:
        if "echo" in only:
            rates, cpu = bench_echo(args.duration, args.rounds, logdir)
            uvicorn = rates["uvicorn+uvloop+websockets, raw ASGI"]
            print(f"echo round trips over {CONNECTIONS} sockets ({args.rounds} x {args.duration:g} s, medians)")
            print("| server | round trips/s | ratio | server CPU per round trip | CPU ratio |")
            print("|---|---:|---:|---:|---:|")
            mine = rates["microweb (event style)"]
            mine_cpu = cpu["microweb (event style)"]
            for name, rate in rates.items():
                ratio = "" if name.startswith("microweb") else f"{mine / rate:.2f}x"
                cpu_ratio = "" if name.startswith("microweb") or not mine_cpu else f"{cpu[name] / mine_cpu:.2f}x"
                print(f"| {name} | {rate:,.0f} | {ratio} | {cpu[name]:.1f} us | {cpu_ratio} |")
            print(f"target: microweb >= 2x uvicorn raw ASGI: {mine / uvicorn:.2f}x in round trips/s, "
                  f"{cpu['uvicorn+uvloop+websockets, raw ASGI'] / mine_cpu:.2f}x in server CPU per round trip")
        if "idle" in only:
            idle = bench_idle(args.idle, logdir)
            print(f"idle: {idle['sockets']} websockets held: server RSS {idle['rss_mb']:.1f} MB "
                  f"(before {idle['rss_before_mb']:.1f} MB), opened in {idle['open_s']:.1f} s, "
                  f"{idle['echoed']}/{idle['sockets']} echoed afterwards (target: <= 48 MB, all echo)")
        if "broadcast" in only:
            result = bench_broadcast(args.fanout, logdir)
            print(f"broadcast: one message to {result['sockets']} sockets: median {result['median_ms']:.1f} ms "
                  f"until the last has it ({', '.join(f'{t:.1f}' for t in result['all_ms'])} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
