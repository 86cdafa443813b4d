"""Live tests of the reactor: a real ``Server`` on 127.0.0.1, driven by httpx and raw sockets."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import textwrap
import threading
import time
from typing import Any, Callable, Iterator

import httpx
import pytest

from microweb import App, Request, Response
from microweb.server.reactor import Server

from conftest import LiveServer, recv_until_closed, start_cli


class Reader:
    """Reads consecutive responses from one socket (Content-Length or chunked framing)."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        self.buf = bytearray()
        sock.settimeout(timeout)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed with {self.buf[:200]!r} buffered")
        self.buf += data

    def _take_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n")
        line = bytes(self.buf[:end])
        del self.buf[:end + 2]
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status_line = self._take_line()
        status = int(status_line.split(b" ")[1])
        headers: dict[str, str] = {}
        while True:
            line = self._take_line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if head_only or status < 200 or status in (204, 304):
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._take_line().split(b";")[0], 16)
                if size == 0:
                    while self._take_line():
                        pass
                    return status, headers, body
                body += self._take(size)
                assert self._take(2) == b"\r\n"
        return status, headers, self._take(int(headers.get("content-length", "0")))

    def closed(self, timeout: float = 5.0) -> bool:
        """True when the peer closes with nothing more sent."""
        assert not self.buf, f"unexpected bytes after the last response: {bytes(self.buf[:200])!r}"
        self.sock.settimeout(timeout)
        try:
            rest = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        assert rest == b"", f"unexpected bytes after the last response: {rest[:200]!r}"
        return True


def make_app() -> App:
    app = App(template_folder=None, static_folder=None)

    @app.route("/")
    def index(request: Request) -> str:
        return "Hello, World!"

    @app.route("/echo/<path:rest>", methods=["GET", "POST", "PUT"])
    def echo(request: Request, rest: str) -> Response:
        return Response(f"{request.method} /{rest} {len(request.body)}:".encode() + request.body,
                        content_type="text/plain")

    @app.route("/items", methods=["GET", "POST"])
    def items(request: Request) -> dict[str, Any]:
        return {"method": request.method}

    @app.route("/boom")
    def boom(request: Request) -> str:
        raise RuntimeError("handler failure (expected in this test)")

    @app.route("/inject")
    def inject(request: Request) -> Response:
        return Response("x", headers={"X-Evil": "a\r\nSet-Cookie: pwned=1"})

    @app.route("/big/<int:size>")
    def big(request: Request, size: int) -> bytes:
        return b"x" * size

    @app.route("/blob/<int:i>")
    def blob(request: Request, i: int) -> bytes:
        return b"%08d" % i + b"b" * 99_992

    @app.route("/sleep/<int:ms>")
    def sleep(request: Request, ms: int) -> str:
        time.sleep(ms / 1000)  # only with --threads: inline it would stall the loop
        return f"slept {ms}"

    @app.route("/empty/<int:status>")
    def empty(request: Request, status: int) -> Response:
        return Response(b"never sent", status)

    @app.route("/stream")
    def stream(request: Request) -> Response:
        return Response(iter([b"one,", b"two,", b"three"]), content_type="text/plain")

    return app


@pytest.fixture
def server(live_server: Callable[..., LiveServer]) -> LiveServer:
    return live_server(make_app())


def get(path: str, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return f"GET {path} {version}\r\nHost: t\r\n{extra}\r\n".encode()


# -- keep-alive and pipelining ----------------------------------------------------


def test_httpx_keep_alive_reuses_one_socket(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/")
        second = client.get("/items")
        assert first.status_code == 200 and first.text == "Hello, World!"
        assert second.json() == {"method": "GET"}
        a = first.extensions["network_stream"].get_extra_info("socket").getsockname()
        b = second.extensions["network_stream"].get_extra_info("socket").getsockname()
        assert a == b
    assert "connection" not in first.headers


def test_raw_keep_alive_two_requests_on_one_socket(server: LiveServer) -> None:
    with server.connect() as sock:
        reader = Reader(sock)
        for path in ("/", "/echo/again"):
            sock.sendall(get(path))
            status, _, body = reader.response()
            assert status == 200
        assert body == b"GET /again 0:"
        assert not reader.closed(timeout=0.3)
    assert len(server.server.connections) <= 1


def test_three_gets_in_one_write_get_three_responses_in_order(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(get("/echo/1") + get("/echo/2") + get("/echo/3"))
        reader = Reader(sock)
        bodies = [reader.response()[2] for _ in range(3)]
        assert bodies == [b"GET /1 0:", b"GET /2 0:", b"GET /3 0:"]


def test_pipelined_mix_of_bodies_in_one_write(server: LiveServer) -> None:
    data = (get("/echo/a")
            + b"POST /echo/b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            + b"PUT /echo/c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + get("/echo/d", "Connection: close\r\n")
            + get("/echo/never"))
    with server.connect() as sock:
        sock.sendall(data)
        reader = Reader(sock)
        bodies = [reader.response()[2] for _ in range(4)]
        assert bodies == [b"GET /a 0:", b"POST /b 5:hello", b"PUT /c 3:abc", b"GET /d 0:"]
        assert reader.closed()


def test_long_pipeline_of_large_responses_is_built_a_batch_at_a_time(server: LiveServer) -> None:
    # 1000 requests in one 30 KB write, 100 KB each: answered all at once that is 100 MB
    # built in memory; the reactor must hold back the rest while the socket is full.
    n = 1000
    with server.connect() as sock:
        sock.sendall(b"".join(get(f"/blob/{i}") for i in range(n)))
        time.sleep(0.5)
        queued = sum(c.pending_bytes for c in list(server.server.connections.values()))
        assert queued < 20_000_000, f"{queued} bytes queued for one client"
        reader = Reader(sock, timeout=10)
        for i in range(n):
            status, _, body = reader.response()
            assert status == 200 and body[:8] == b"%08d" % i and len(body) == 100_000
        sock.sendall(get("/echo/after"))
        assert reader.response()[2] == b"GET /after 0:"


def test_long_pipeline_then_a_bad_request(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"".join(get(f"/echo/{i}") for i in range(100)) + b"GET / HTTP/1.1\r\n\r\n")
        reader = Reader(sock)
        assert [reader.response()[2] for _ in range(100)] == [b"GET /%d 0:" % i for i in range(100)]
        assert reader.response()[0] == 400
        assert reader.closed()


def test_long_pipeline_of_large_responses_then_100_continue(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"".join(get(f"/blob/{i}") for i in range(200))
                     + b"POST /echo/e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        time.sleep(0.3)
        reader = Reader(sock, timeout=10)
        for i in range(200):
            assert reader.response()[2][:8] == b"%08d" % i
        assert reader.response()[0] == 100
        sock.sendall(b"hello")
        assert reader.response()[2] == b"POST /e 5:hello"


def test_pipelined_after_bodiless_and_streamed_responses(server: LiveServer) -> None:
    # 204, 304 and a HEAD carry no body and a stream is chunked: the next response on the
    # connection must start exactly where each one ends.
    with server.connect() as sock:
        sock.sendall(get("/empty/204") + get("/echo/1") + get("/empty/304") + get("/stream")
                     + b"HEAD /big/50 HTTP/1.1\r\nHost: t\r\n\r\n" + get("/echo/2"))
        reader = Reader(sock)
        assert reader.response()[:3:2] == (204, b"")
        assert reader.response()[2] == b"GET /1 0:"
        assert reader.response()[:3:2] == (304, b"")
        assert reader.response()[2] == b"one,two,three"
        status, headers, _ = reader.response(head_only=True)
        assert headers["content-length"] == "50"
        assert reader.response()[2] == b"GET /2 0:"
        assert not reader.closed(timeout=0.2)


def test_pipelined_requests_split_across_writes(server: LiveServer) -> None:
    data = get("/echo/1") + b"POST /echo/2 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody" + get("/echo/3")
    with server.connect() as sock:
        reader = Reader(sock)
        for i in range(0, len(data), 7):
            sock.sendall(data[i:i + 7])
            time.sleep(0.001)
        assert [reader.response()[2] for _ in range(3)] == [b"GET /1 0:", b"POST /2 4:body", b"GET /3 0:"]


def test_many_concurrent_keep_alive_clients(server: LiveServer) -> None:
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            with httpx.Client(base_url=server.url) as c:
                for i in range(20):
                    r = c.get(f"/echo/{n}/{i}")
                    assert r.text == f"GET /{n}/{i} 0:"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


# -- bodies --------------------------------------------------------------------------


def test_content_length_upload_with_httpx(server: LiveServer) -> None:
    body = os.urandom(300_000)
    r = httpx.post(server.url + "/echo/up", content=body)
    assert r.status_code == 200
    assert r.content == b"POST /up 300000:" + body


def test_chunked_upload_with_httpx(server: LiveServer) -> None:
    def pieces() -> Iterator[bytes]:
        for i in range(50):
            yield bytes([65 + i % 26]) * 1000

    with httpx.Client(base_url=server.url) as client:
        request = client.build_request("POST", "/echo/chunked", content=pieces())
        assert request.headers["transfer-encoding"] == "chunked"
        r = client.send(request)
    expected = b"".join(pieces())
    assert r.content == b"POST /chunked 50000:" + expected


def test_chunked_upload_raw_with_extensions_and_trailers(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /echo/c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Checksum: abc\r\n\r\n" + get("/echo/next"))
        reader = Reader(sock)
        assert reader.response()[2] == b"POST /c 9:Wikipedia"
        assert reader.response()[2] == b"GET /next 0:"


def test_unread_body_does_not_poison_the_next_request(live_server: Callable[..., LiveServer]) -> None:
    app = App(template_folder=None, static_folder=None)

    @app.post("/ignore")
    def ignore(request: Request) -> str:
        return "ignored"  # never touches request.body

    server = live_server(app)
    with server.connect() as sock:
        body = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
        sock.sendall(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                     + b"POST /ignore HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = Reader(sock)
        assert reader.response()[2] == b"ignored"
        assert reader.response()[2] == b"ignored"


def test_streamed_response_is_chunked(server: LiveServer) -> None:
    r = httpx.get(server.url + "/stream")
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.text == "one,two,three"


def test_large_response_through_backpressure(server: LiveServer) -> None:
    size = 8 * 1024 * 1024
    with server.connect() as sock:
        sock.sendall(get(f"/big/{size}") + get("/echo/after"))
        time.sleep(0.2)  # let the server fill the socket and queue the rest
        reader = Reader(sock, timeout=10)
        status, headers, body = reader.response()
        assert status == 200 and len(body) == size
        assert reader.response()[2] == b"GET /after 0:"


# -- HTTP/1.0 ------------------------------------------------------------------------


def test_http10_closes_after_the_response(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /echo/old HTTP/1.0\r\n\r\n")
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert status == 200 and body == b"GET /old 0:"
        assert headers.get("connection", "").lower() == "close"
        assert reader.closed()


def test_http10_keep_alive_keeps_the_connection(server: LiveServer) -> None:
    with server.connect() as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /echo/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = reader.response()
        assert headers["connection"].lower() == "keep-alive"
        assert body == b"GET /1 0:"
        sock.sendall(b"GET /echo/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert reader.response()[2] == b"GET /2 0:"
        sock.sendall(b"GET /echo/3 HTTP/1.0\r\n\r\n")
        assert reader.response()[2] == b"GET /3 0:"
        assert reader.closed()


def test_http10_stream_is_close_delimited(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = recv_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert b"Connection: close" in head
    assert body == b"one,two,three"


def test_http11_connection_close_is_honoured(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(get("/", "Connection: close\r\n"))
        reader = Reader(sock)
        status, headers, _ = reader.response()
        assert headers["connection"] == "close"
        assert reader.closed()


# -- HEAD, 404, 405 -----------------------------------------------------------------


def test_head_has_no_body_and_the_same_content_length(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"HEAD /big/1234 HTTP/1.1\r\nHost: t\r\n\r\n" + get("/big/1234"))
        reader = Reader(sock)
        status, head_headers, body = reader.response(head_only=True)
        assert status == 200 and body == b""
        status, get_headers, body = reader.response()
        assert len(body) == 1234
        assert head_headers["content-length"] == get_headers["content-length"] == "1234"
    r = httpx.head(server.url + "/")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "13"


def test_404_for_unknown_path(server: LiveServer) -> None:
    r = httpx.get(server.url + "/nope")
    assert r.status_code == 404


def test_405_with_allow(server: LiveServer) -> None:
    r = httpx.delete(server.url + "/items")
    assert r.status_code == 405
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed


# -- errors --------------------------------------------------------------------------


def test_handler_that_raises_gets_500_and_the_server_goes_on(server: LiveServer,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/boom").status_code == 500
        assert client.get("/").text == "Hello, World!"
    assert "handler failure" in caplog.text


def test_raw_handle_that_raises_gets_500_and_close(live_server: Callable[..., LiveServer],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def handle(request: Request) -> bytes:
        if request.path == "/boom":
            raise ValueError("raw handler failure (expected in this test)")
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    server = live_server(handle)
    with server.connect() as sock:
        sock.sendall(get("/boom") + get("/after"))
        reader = Reader(sock)
        assert reader.response()[0] == 500
        assert reader.closed()
    with server.connect() as sock:
        sock.sendall(get("/fine"))
        assert Reader(sock).response()[2] == b"ok"
    assert "raw handler failure" in caplog.text


def test_header_injection_from_the_app_is_a_500_not_a_split_response(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(get("/inject", "Connection: close\r\n"))
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"pwned" not in data and b"Set-Cookie" not in data


@pytest.mark.parametrize("data,status", [
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /echo/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),
])
def test_bad_request_gets_its_status_and_close(server: LiveServer, data: bytes, status: int) -> None:
    with server.connect() as sock:
        sock.sendall(get("/echo/first") + data + get("/echo/never"))
        reader = Reader(sock)
        assert reader.response()[2] == b"GET /first 0:"
        got, headers, body = reader.response()
        assert got == status
        assert headers["connection"] == "close"
        assert body.startswith(str(status).encode())
        assert reader.closed()
    assert httpx.get(server.url + "/").status_code == 200  # the server goes on


def test_too_long_request_line_414_before_the_head_ends(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /" + b"a" * 9000)
        reader = Reader(sock)
        assert reader.response()[0] == 414
        assert reader.closed()


def test_client_reset_mid_response_does_not_hurt_the_server(server: LiveServer) -> None:
    for _ in range(3):
        sock = server.connect()
        sock.sendall(get(f"/big/{16 * 1024 * 1024}"))
        sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST
    assert httpx.get(server.url + "/").text == "Hello, World!"


def test_half_closed_client_still_gets_its_response(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(get("/echo/half"))
        sock.shutdown(socket.SHUT_WR)
        data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"GET /half 0:")


# -- Expect: 100-continue -------------------------------------------------------------


def test_expect_100_continue_over_a_socket(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /echo/e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        status, _, _ = reader.response()
        assert status == 100
        sock.sendall(b"hello")
        assert reader.response()[2] == b"POST /e 5:hello"


def test_expect_100_continue_with_the_body_already_sent_gets_no_interim(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /echo/e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
        status, _, body = Reader(sock).response()
        assert (status, body) == (200, b"POST /e 5:hello")


def test_expect_100_continue_comes_after_earlier_pipelined_responses(server: LiveServer) -> None:
    # The 100 belongs to the second request: it must not arrive before the first response,
    # or the client takes it for an interim answer to the first request.
    with server.connect() as sock:
        sock.sendall(get("/echo/first")
                     + b"POST /echo/e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        status, _, body = reader.response()
        assert (status, body) == (200, b"GET /first 0:")
        assert reader.response()[0] == 100
        sock.sendall(b"hello")
        assert reader.response()[2] == b"POST /e 5:hello"


# -- graceful stop ----------------------------------------------------------------------


def test_graceful_stop(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app())
    size = 32 * 1024 * 1024
    idle = server.connect()
    idle.sendall(get("/"))
    Reader(idle).response()
    busy = server.connect()
    busy.sendall(get(f"/big/{size}"))
    reader = Reader(busy, timeout=10)
    reader._fill()  # the response has begun; most of it is still queued in the server
    assert b"\r\n\r\n" in reader.buf or len(reader.buf) > 0
    time.sleep(0.2)
    server.server.stop()
    # The idle keep-alive connection is closed at once.
    assert Reader(idle).closed(timeout=3)
    # The response already begun completes.
    status, headers, body = reader.response()
    assert status == 200 and len(body) == size
    assert Reader(busy).closed(timeout=5)
    # serve_forever returns, and nothing listens any more.
    server.thread.join(10)
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=1).close()
    idle.close()
    busy.close()


def test_stop_with_no_connections_returns_quickly(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app())
    started = time.monotonic()
    server.server.stop()
    server.thread.join(5)
    assert not server.thread.is_alive()
    assert time.monotonic() - started < 3


def test_request_in_flight_at_stop_is_answered_with_close(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app())
    with server.connect() as sock:
        sock.sendall(b"POST /echo/late HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhe")
        time.sleep(0.2)
        server.server.stop()
        time.sleep(0.2)
        sock.sendall(b"llo")
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert body == b"POST /late 5:hello"
        assert headers["connection"] == "close"
        assert reader.closed()
    server.thread.join(5)
    assert not server.thread.is_alive()


APP_SOURCE = textwrap.dedent("""
    from microweb import App

    app = App(template_folder=None, static_folder=None)

    @app.route("/")
    def index(request):
        return "hello from the subprocess"

    @app.route("/big")
    def big(request):
        return b"y" * (32 * 1024 * 1024)
""")


def _start_app(tmp_path: Any) -> tuple[subprocess.Popen[str], str]:
    (tmp_path / "liveapp.py").write_text(APP_SOURCE)
    proc = start_cli("run", "liveapp:app", "--port", "0", cwd=str(tmp_path))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "http://127.0.0.1:" in line, line
    url = line.split("http://", 1)[1].split()[0]
    return proc, "http://" + url


@pytest.mark.slow
def test_sigterm_stops_microweb_run_gracefully(tmp_path: Any) -> None:
    proc, url = _start_app(tmp_path)
    try:
        host, port = url[len("http://"):].split(":")
        assert httpx.get(url + "/").text == "hello from the subprocess"
        idle = socket.create_connection((host, int(port)), timeout=5)
        idle.sendall(get("/"))
        Reader(idle).response()
        busy = socket.create_connection((host, int(port)), timeout=5)
        busy.sendall(get("/big"))
        reader = Reader(busy, timeout=10)
        reader._fill()
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert Reader(idle).closed(timeout=5)
        status, _, body = reader.response()
        assert status == 200 and len(body) == 32 * 1024 * 1024
        assert proc.wait(timeout=15) == 0
        idle.close()
        busy.close()
        _, stderr = proc.communicate(timeout=5)
        assert "Traceback" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.slow
def test_sigint_stops_microweb_run_with_status_0(tmp_path: Any) -> None:
    proc, url = _start_app(tmp_path)
    try:
        assert httpx.get(url + "/").status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        _, stderr = proc.communicate(timeout=5)
        assert "Traceback" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_server_object_serves_in_a_thread_without_signal_handlers() -> None:
    # A Server started off the main thread must not touch signal handlers (it cannot).
    before = signal.getsignal(signal.SIGTERM)
    server = Server(lambda r: b"HTTP/1.1 204 No Content\r\n\r\n", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.started.wait(5)
    with socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(get("/"))
        assert Reader(sock).response()[0] == 204
    server.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert signal.getsignal(signal.SIGTERM) is before


# -- timeouts ----------------------------------------------------------------------------


@pytest.mark.slow
def test_idle_keep_alive_timeout_closes_quietly(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app(), keepalive_timeout=1.0)
    with server.connect() as sock:
        sock.sendall(get("/"))
        reader = Reader(sock)
        reader.response()
        started = time.monotonic()
        assert reader.closed(timeout=5)  # no bytes, just the close
        assert 0.5 < time.monotonic() - started < 4


@pytest.mark.slow
def test_head_timeout_answers_408(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app(), head_timeout=1.0)
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # the head never ends
        reader = Reader(sock, timeout=5)
        assert reader.response()[0] == 408
        assert reader.closed()


@pytest.mark.slow
def test_stop_does_not_wait_longer_than_the_grace_period(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app(), graceful_timeout=1.0)
    with server.connect() as sock:
        sock.sendall(b"POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial")
        time.sleep(0.2)
        started = time.monotonic()
        server.server.stop()
        server.thread.join(10)
        assert not server.thread.is_alive()
        assert time.monotonic() - started < 4


@pytest.mark.slow
def test_head_timeout_is_not_extended_by_trickling(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app(), head_timeout=1.0)
    with server.connect() as sock:
        started = time.monotonic()
        sock.settimeout(0.3)
        got = b""
        for ch in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 40:
            try:
                sock.sendall(bytes([ch]))
            except OSError:
                break
            try:
                got += sock.recv(4096)
            except socket.timeout:
                continue
            if got:
                break
        assert got.startswith(b"HTTP/1.1 408 "), got
        assert time.monotonic() - started < 4


@pytest.mark.slow
def test_write_timeout_closes_a_client_that_never_reads(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app(), write_timeout=1.0)
    sock = server.connect()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(get(f"/big/{64 * 1024 * 1024}"))
        assert sock.recv(100).startswith(b"HTTP/1.1 200 ")  # the response has begun; now stop reading
        time.sleep(0.3)
        assert len(server.server.connections) == 1
        started = time.monotonic()
        deadline = started + 8
        while server.server.connections and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not server.server.connections, "the stalled connection is still open"
        assert time.monotonic() - started > 0.3
    finally:
        sock.close()
    assert httpx.get(server.url + "/").status_code == 200


def test_eof_in_the_middle_of_a_request_closes_quietly(server: LiveServer) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_closed(sock) == b""
    assert httpx.get(server.url + "/").status_code == 200


def test_expect_100_continue_with_too_large_body_gets_413_not_100(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app(), max_body_size=1000)
    with server.connect() as sock:
        sock.sendall(b"POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(sock)
        assert reader.response()[0] == 413
        assert reader.closed()


@pytest.mark.slow
def test_date_header_is_refreshed(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/").headers["date"]
        time.sleep(1.3)
        second = client.get("/").headers["date"]
    assert first != second
    assert first.endswith(" GMT") and second.endswith(" GMT")


def test_threads_100_continue_comes_after_earlier_responses(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app(), threads=2)
    with server.connect() as sock:
        sock.sendall(get("/sleep/300")
                     + b"POST /echo/e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(sock, timeout=10)
        assert reader.response()[2] == b"slept 300"
        assert reader.response()[0] == 100
        sock.sendall(b"hello")
        assert reader.response()[2] == b"POST /e 5:hello"


def test_threads_no_late_100_continue_once_the_body_came(live_server: Callable[..., LiveServer]) -> None:
    # The client gives up waiting for 100 and sends the body while an earlier request is
    # still in the pool: no 100 may follow the final response.
    server = live_server(make_app(), threads=2)
    with server.connect() as sock:
        sock.sendall(get("/sleep/500")
                     + b"POST /echo/e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        time.sleep(0.2)  # the head is parsed (and its 100 held back) while /sleep is in the pool
        sock.sendall(b"hello")
        reader = Reader(sock, timeout=10)
        assert reader.response()[2] == b"slept 500"
        status, _, body = reader.response()
        if status == 100:  # allowed only before the final response
            status, _, body = reader.response()
        assert body == b"POST /e 5:hello"
        assert not reader.closed(timeout=0.5)  # and nothing more arrives (no stray 100)


def test_stop_while_a_long_pipeline_is_held_back(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(make_app())
    with server.connect() as sock:
        sock.sendall(b"".join(get(f"/blob/{i}") for i in range(1000)))
        time.sleep(0.3)
        server.server.stop()
        reader = Reader(sock, timeout=10)
        i = 0
        while True:
            status, headers, body = reader.response()
            assert status == 200 and body[:8] == b"%08d" % i
            i += 1
            if headers.get("connection") == "close":
                break
        assert reader.closed()
        assert 0 < i < 1000  # what had begun was finished; the rest was not started
    server.thread.join(10)
    assert not server.thread.is_alive()


def test_responses_written_during_a_batch_of_events_leave_together_when_it_ends() -> None:
    from microweb.server.options import ServerOptions
    from microweb.server.reactor import CORK_BATCH, CORK_MAX, Connection

    server = Server(lambda request: b"", options=ServerOptions(port=0))
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        conns = []
        for ours, _ in pairs:
            ours.setblocking(False)
            conns.append(Connection(ours, server.make_parser(server.limits, "")))
        a, b, c = conns
        peers = [theirs for _, theirs in pairs]
        for peer in peers:
            peer.setblocking(False)
        server._corking = True  # as in serve_forever, while one select()'s events are handled
        server.write(a, b"one ")
        server.write(b, b"two")
        server.write(a, b"three")
        big = b"x" * (CORK_MAX + 1)
        server.write(c, big)  # too big to hold back: sent at once
        got = b""
        while len(got) < 65536:
            try:
                got += peers[2].recv(1 << 20)
            except BlockingIOError:
                break
        assert got and big.startswith(got)
        for peer in peers[:2]:
            with pytest.raises(BlockingIOError):
                peer.recv(100)  # nothing has left yet
        server.close_connection(b)  # closed before the batch ends: skipped, nothing sent
        server._corking = False
        server._flush_corked()
        assert peers[0].recv(100) == b"one three"
        assert peers[1].recv(100) == b""  # closed, and "two" never sent
        assert server._corked == [] and a.outbox == []
        # A batch of many connections is sent in groups of CORK_BATCH, not held back whole.
        server._corking = True
        for _ in range(CORK_BATCH - 1):
            server.write(a, b".")  # one connection written again and again is held once
        assert len(server._corked) == 1
        extra = [socket.socketpair() for _ in range(CORK_BATCH)]
        pairs += extra
        for i, (ours, theirs) in enumerate(extra):
            ours.setblocking(False)
            server.write(Connection(ours, server.make_parser(server.limits, "")), b"!")
            assert len(server._corked) == (i + 2) % CORK_BATCH
        server._corking = False
        assert extra[-2][1].recv(10) == b"!"
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
        server._shutdown()
