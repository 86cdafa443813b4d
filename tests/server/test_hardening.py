"""Limits, timeouts, connection caps and faults, against a live server (issue 5)."""
from __future__ import annotations

import gc
import logging
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import REPO_ROOT, free_port, recv_until_closed, run_cli, start_cli, wait_for_port
from hardening_util import ResponseReader, open_fds
from microweb import App, Response
from microweb.server.listeners import default_max_connections, raise_fd_limit
from microweb.responses import FileResponse

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def ok_handle(request: Any) -> bytes:
    close = b"" if request.keep_alive else b"Connection: close\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n%s\r\nok" % close


def status_of(data: bytes) -> int:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- limits, configurable ----------------------------------------------------------


@pytest.mark.parametrize(
    "options, request_bytes, status",
    [
        ({"max_body_size": 100}, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", 413),
        ({"max_body_size": 100},
         b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + b"a" * 64 + b"\r\n40\r\n", 413),
        ({"max_request_line": 100}, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ({"max_header_size": 200}, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300 + b"\r\n\r\n", 431),
        ({"max_header_count": 5}, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 5 + b"\r\n", 431),
    ],
)
def test_limits_are_configurable_on_the_server(live_server: Any, options: dict[str, int], request_bytes: bytes,
                                               status: int) -> None:
    server = live_server(ok_handle, **options)
    with server.connect() as sock:
        sock.sendall(request_bytes)
        data = recv_until_closed(sock)
    assert status_of(data) == status
    # Under the limit is fine.
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 100)
        assert ResponseReader(sock).next() is not None


def test_limit_flags_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "limapp.py").write_text(textwrap.dedent("""
        from microweb import App
        app = App(static_folder=None, template_folder=None)
        @app.post("/")
        def echo(request):
            return str(len(request.body))
    """))
    port = free_port()
    proc = start_cli("run", "limapp.py", "--port", str(port), "--max-body-size", "1K", "--max-header-count", "10",
                     "--keepalive-timeout", "1", "--threads", "2", cwd=str(tmp_path))
    try:
        wait_for_port("127.0.0.1", port)
        url = f"http://127.0.0.1:{port}/"
        assert httpx.post(url, content=b"a" * 1024).text == "1024"
        assert httpx.post(url, content=b"a" * 1025).status_code == 413
        assert httpx.post(url, content=b"a", headers={f"x-{i}": "1" for i in range(10)}).status_code == 431
        with socket.create_connection(("127.0.0.1", port)) as sock:  # --keepalive-timeout 1
            start = time.monotonic()
            assert recv_until_closed(sock, timeout=5) == b""
            assert time.monotonic() - start < 3.0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


@pytest.mark.parametrize("flag, value", [("--max-body-size", "lots"), ("--threads", "-1"),
                                         ("--head-timeout", "0"), ("--max-connections", "x")])
def test_bad_limit_flags_are_one_line_usage_errors(flag: str, value: str) -> None:
    result = run_cli("run", "nosuch:app", flag, value)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert flag in result.stderr


def test_app_run_accepts_the_limits(tmp_path: Path) -> None:
    (tmp_path / "runapp.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO_ROOT!r})
        from microweb import App
        app = App(static_folder=None, template_folder=None)
        @app.post("/")
        def echo(request):
            return str(len(request.body))
        app.run(port=int(sys.argv[1]), max_body_size=10, max_connections=50, threads=2, graceful_timeout=5)
    """))
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(tmp_path / "runapp.py"), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port("127.0.0.1", port)
        assert httpx.post(f"http://127.0.0.1:{port}/", content=b"a" * 10).text == "10"
        assert httpx.post(f"http://127.0.0.1:{port}/", content=b"a" * 11).status_code == 413
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


# -- connections ------------------------------------------------------------------


def test_fd_limit_raised_and_default_cap_from_it() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = raise_fd_limit()
    now_soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        assert now_soft == hard == limit
    cap = default_max_connections()
    assert 0 < cap < limit
    if limit >= 12000:
        assert cap >= 10000, f"the default cap {cap} is under 10,000 although the fd limit is {limit}"


def test_connections_past_the_cap_wait_in_the_backlog(live_server: Any) -> None:
    server = live_server(ok_handle, max_connections=3)
    served = [server.connect() for _ in range(3)]
    readers = [ResponseReader(s) for s in served]
    for s, r in zip(served, readers):
        s.sendall(GET)
        assert r.next() is not None
    waiting = server.connect()  # the kernel completes the handshake; the server does not accept it yet
    waiting.sendall(GET)
    waiting.settimeout(0.5)
    with pytest.raises(socket.timeout):
        waiting.recv(100)
    assert len(server.server.connections) == 3
    for s, r in zip(served, readers):  # the served connections are unaffected
        s.sendall(GET)
        assert r.next() is not None
    served[0].close()
    assert ResponseReader(waiting).next() is not None  # accepted once one closed
    for s in [*served[1:], waiting]:
        s.close()


def test_requests_per_connection_cap(live_server: Any) -> None:
    server = live_server(ok_handle, max_requests_per_connection=3)
    with server.connect() as sock:
        sock.sendall(GET * 5)
        reader = ResponseReader(sock)
        heads = [reader.next() for _ in range(3)]
        assert all(h is not None for h in heads)
        assert b"Connection: close" not in heads[1][1]  # type: ignore[index]
        assert b"Connection: close" in heads[2][1]  # type: ignore[index]
        assert reader.rest_until_closed() == b""  # requests 4 and 5 are not answered


# -- timeouts ---------------------------------------------------------------------------


def test_head_timeout_answers_408(live_server: Any) -> None:
    server = live_server(ok_handle, head_timeout=1)
    with server.connect() as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(4):  # trickling does not extend the head deadline
            time.sleep(0.3)
            sock.sendall(b"X-A: 1\r\n")
        data = recv_until_closed(sock)
        elapsed = time.monotonic() - start
    assert status_of(data) == 408
    assert 1.0 <= elapsed < 3.0


def test_keepalive_timeout_closes_idle(live_server: Any) -> None:
    server = live_server(ok_handle, keepalive_timeout=1)
    with server.connect() as sock:
        sock.sendall(GET)
        reader = ResponseReader(sock)
        assert reader.next() is not None
        start = time.monotonic()
        assert reader.rest_until_closed() == b""
        assert time.monotonic() - start < 3.0
    assert wait_until(lambda: not server.server.connections)


@pytest.mark.slow
def test_body_minimum_rate(live_server: Any) -> None:
    server = live_server(ok_handle, body_timeout=1, min_body_rate=200)
    # Trickling 20 bytes/s is under the rate: closed a little after the 1 s grace.
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        start = time.monotonic()
        closed_at = None
        for _ in range(40):
            try:
                sock.sendall(b"a" * 4)
            except OSError:
                closed_at = time.monotonic()
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(100) == b"":
                    closed_at = time.monotonic()
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                # Closed while our last bytes sat unread in the server's socket: a reset, not a FIN.
                closed_at = time.monotonic()
                break
        assert closed_at is not None and closed_at - start < 4.0
    # Sending at a good rate, with pauses under body_timeout, is fine.
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
        for _ in range(6):
            sock.sendall(b"a" * 500)
            time.sleep(0.4)
        assert ResponseReader(sock).next() is not None


@pytest.mark.slow
def test_write_stall_closes_and_frees(live_server: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20) * 32)
    app = App(static_folder=None, template_folder=None)

    @app.get("/file")
    def file(request: Any) -> Response:
        return FileResponse(big)

    @app.get("/stream")
    def stream(request: Any) -> Response:
        return Response(b"x" * 65536 for _ in range(1000))

    server = live_server(app, write_timeout=1)
    before = open_fds()
    for path in ("/file", "/stream"):
        sock = server.connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.2)
        assert len(server.server.connections) == 1
        assert wait_until(lambda: not server.server.connections, 4.0), f"{path}: a stalled writer was kept"
        sock.close()
    assert wait_until(lambda: open_fds() <= before)


# -- faults ---------------------------------------------------------------------------


class Probe:
    """An app with every kind of response, and a count of stream bodies closed."""

    def __init__(self, folder: Path) -> None:
        self.big = folder / "big.bin"
        self.big.write_bytes(os.urandom(1 << 20) * 8)
        self.streams_open = 0
        self.lock = threading.Lock()
        app = self.app = App(static_folder=None, template_folder=None)

        @app.route("/small", methods=["GET", "POST"])
        def small(request: Any) -> str:
            return "small"

        @app.get("/large")
        def large(request: Any) -> bytes:
            return b"L" * (8 << 20)

        @app.get("/file")
        def file(request: Any) -> Response:
            return FileResponse(self.big)

        @app.get("/stream")
        def stream(request: Any) -> Response:
            return Response(self._stream())

        @app.get("/raise-midway")
        def raise_midway(request: Any) -> Response:
            def gen() -> Iterator[bytes]:
                yield b"first piece\n"
                raise RuntimeError("generator failed midway")
            return Response(gen())

        @app.get("/wrong-type")
        def wrong_type(request: Any) -> Any:
            return 42

        @app.get("/injection")
        def injection(request: Any) -> Response:
            kind = request.args.get("k")
            if kind == "value-crlf":
                return Response("x", headers={"X-Evil": "a\r\nSet-Cookie: pwned=1"})
            if kind == "value-lf":
                return Response("x", headers={"X-Evil": "a\nSet-Cookie: pwned=1"})
            if kind == "value-nul":
                return Response("x", headers={"X-Evil": "a\x00b"})
            if kind == "name-crlf":
                return Response("x", headers={"X-Evil\r\nSet-Cookie": "pwned=1"})
            return Response("x", headers={"X\x00Evil": "1"})

    def _stream(self) -> Iterator[bytes]:
        with self.lock:
            self.streams_open += 1
        try:
            for _ in range(2000):
                yield b"s" * 65536
        finally:
            with self.lock:
                self.streams_open -= 1


FAULT_POINTS = [
    ("mid-head", b"GET /small HTTP/1.1\r\nHost: x\r\nX-Partial: abc"),
    ("mid-body", b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"b" * 5000),
    ("mid-chunked-body", b"POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\nabc"),
    ("large-response", b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("streamed-response", b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("sendfile-transfer", b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n"),
]


@pytest.mark.parametrize("how", ["reset", "half-close", "close"])
def test_client_vanishing_at_every_point_leaves_nothing(live_server: Any, tmp_path: Path, how: str,
                                                        caplog: Any) -> None:
    probe = Probe(tmp_path)
    server = live_server(probe.app)
    with server.connect() as warm:  # the first request imports and caches what later ones reuse
        warm.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        ResponseReader(warm).next()
    assert wait_until(lambda: not server.server.connections)
    gc.collect()
    fds_before = open_fds()
    for name, data in FAULT_POINTS * 3:
        sock = server.connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.sendall(data)
        if name.endswith(("response", "transfer")):
            sock.recv(4096)  # the response has begun
        time.sleep(0.05)
        if how == "reset":
            reset(sock)
        elif how == "half-close":
            sock.shutdown(socket.SHUT_WR)
            time.sleep(0.05)
            sock.close()
        else:
            sock.close()
    assert wait_until(lambda: not server.server.connections, 10.0), server.server.connections
    assert wait_until(lambda: probe.streams_open == 0)
    assert wait_until(lambda: open_fds() <= fds_before), (open_fds(), fds_before)
    assert server.thread.is_alive()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    with server.connect() as sock:  # and the server goes on
        sock.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ResponseReader(sock).next()[2] == b"small"  # type: ignore[index]


@pytest.mark.parametrize("path, size", [("/small", 5), ("/large", 8 << 20), ("/file", 8 << 20)])
def test_request_then_half_close_still_gets_the_response(live_server: Any, tmp_path: Path, path: str,
                                                         size: int) -> None:
    server = live_server(Probe(tmp_path).app)
    with server.connect(timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sock.shutdown(socket.SHUT_WR)
        reader = ResponseReader(sock, timeout=10)
        response = reader.next()
        assert response is not None and response[0] == 200 and len(response[2]) == size
        assert reader.rest_until_closed() == b""


def test_generator_raising_midway_closes_the_connection(live_server: Any, tmp_path: Path, caplog: Any) -> None:
    server = live_server(Probe(tmp_path).app)
    with server.connect() as sock:
        sock.sendall(b"GET /raise-midway HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"first piece" in data
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk: the client sees a truncated body
    assert b"small" not in data  # the pipelined request is not answered on a broken connection
    assert any("raised after its head was sent" in r.getMessage() for r in caplog.records)
    assert httpx.get(server.url + "/small").text == "small"


def test_wrong_handler_return_type_is_a_logged_500(live_server: Any, tmp_path: Path, caplog: Any) -> None:
    server = live_server(Probe(tmp_path).app)
    r = httpx.get(server.url + "/wrong-type")
    assert r.status_code == 500
    assert any("returned a int" in (r.getMessage() + str(r.exc_info)) for r in caplog.records)

    raw = live_server(lambda request: "a str, not bytes")
    with raw.connect() as sock:
        sock.sendall(GET)
        assert status_of(recv_until_closed(sock)) == 500
    assert any("returned a str" in r.getMessage() for r in caplog.records)
    assert raw.thread.is_alive()


@pytest.mark.parametrize("kind", ["value-crlf", "value-lf", "value-nul", "name-crlf", "name-nul"])
def test_response_header_injection_is_refused(live_server: Any, tmp_path: Path, kind: str) -> None:
    server = live_server(Probe(tmp_path).app)
    with server.connect() as sock:
        sock.sendall(f"GET /injection?k={kind} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        reader = ResponseReader(sock)
        response = reader.next()
    assert response is not None and response[0] == 500
    assert b"pwned" not in response[1] and b"Evil" not in response[1]
    assert b"\x00" not in response[1]


EMFILE_SERVER = """
import os, resource, sys
sys.path.insert(0, {root!r})
resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
from microweb.cli import main
sys.exit(main(["run", "emapp.py", "--port", sys.argv[1], "--max-connections", "1000"]))
"""


@pytest.mark.slow
def test_emfile_on_accept_backs_off_and_recovers(tmp_path: Path) -> None:
    (tmp_path / "emapp.py").write_text("from microweb import App\napp = App(static_folder=None, template_folder=None)\n"
                                       "@app.get('/')\ndef index(request):\n    return 'alive'\n")
    (tmp_path / "emserver.py").write_text(EMFILE_SERVER.format(root=REPO_ROOT))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "emserver.py", str(port)], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    extra: list[socket.socket] = []
    try:
        wait_for_port("127.0.0.1", port)
        keeper = socket.create_connection(("127.0.0.1", port), timeout=5)
        keeper_reader = ResponseReader(keeper)
        keeper.sendall(GET)
        assert keeper_reader.next()[2] == b"alive"  # type: ignore[index]
        for _ in range(60):  # more than the 40 descriptors the server may hold
            extra.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1.0)
        # The server is out of descriptors; it goes on serving the connection it has ...
        for _ in range(3):
            keeper.sendall(GET)
            assert keeper_reader.next()[2] == b"alive"  # type: ignore[index]
        # ... and does not spin on the readable listener (it backs off).
        cpu_before = _cpu_seconds(proc.pid)
        time.sleep(1.0)
        assert _cpu_seconds(proc.pid) - cpu_before < 0.5
        for s in extra:
            s.close()
        extra.clear()
        time.sleep(2.0)  # the backed-off listener is polled again and the backlog drains
        fresh = socket.create_connection(("127.0.0.1", port), timeout=5)
        fresh.sendall(GET)
        assert ResponseReader(fresh).next()[2] == b"alive"  # type: ignore[index]
        fresh.close()
        keeper.close()
    finally:
        for s in extra:
            s.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "accept failed" in err and "Traceback" not in err


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- under load (slow: run in CI, and by hand as benchmarks/*.py) -----------------------


def _benchmark(name: str) -> Any:
    import importlib

    sys.path.insert(0, os.path.join(REPO_ROOT, "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


@pytest.mark.slow
def test_slowloris_does_not_slow_a_normal_client() -> None:
    """1,000 connections trickling header bytes add at most a few ms to a normal client."""
    result = _benchmark("slowloris").run(connections=1000, seconds=2.0)
    for mode in ("keep-alive", "new connection"):
        base, attack = result["baseline"][mode], result["attack"][mode]
        print(f"{mode}: p50 {base[0]:.3f} -> {attack[0]:.3f} ms, mean {base[2]:.3f} -> {attack[2]:.3f} ms")
        assert attack[0] - base[0] < 2.0, (mode, base, attack)  # median
        assert attack[2] - base[2] < 5.0, (mode, base, attack)  # mean


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--threads", "4"], ["--workers", "2"]], ids=["inline", "threads", "workers"])
def test_graceful_stop_under_load(extra: list[str]) -> None:
    """SIGTERM while wrk and slow readers run: begun responses complete, exit 0 in the grace period."""
    result = _benchmark("graceful_stop").run(seconds_before_stop=2.0, wrk_seconds=4, clients=6,
                                            extra=extra, graceful_timeout=10.0)
    print(result.get("wrk_socket_errors"), result["checked"], result["stop_seconds"])
    assert result["exit_status"] == 0
    assert result["stop_seconds"] < 10.0
    assert result["checked"]["truncated"] == 0
    assert result["checked"]["complete"] > 0
    assert result["tracebacks"] == 0
    if "wrk" in result:
        assert result["wrk_requests"] and result["wrk_non2xx"] == 0
