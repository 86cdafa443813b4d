"""``--threads``: a streamed body is pulled on the pool thread that called the application (issue 15).

Native generators and WSGI iterables alike: every ``next()`` and the final ``close()``
run on that thread, never on the reactor's; a client that does not read holds the
producer back (bounded by ``high_water``); a client that leaves releases the thread.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Iterator

import httpx
import pytest

from conftest import recv_until_closed
from microweb import App
from microweb.wsgi import WSGIAdapter


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """The body of a chunked response, and whether it ended with the last chunk."""
    _, _, rest = data.partition(b"\r\n\r\n")
    body = b""
    while rest:
        line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return body, False
        size = int(line, 16)
        if size == 0:
            return body, rest.startswith(b"\r\n")
        if len(rest) < size + 2:
            return body + rest[:size], False
        body += rest[:size]
        rest = rest[size + 2:]
    return body, False


class ThreadLog:
    """Which threads ran which steps of a body."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, int]] = []
        self.closed = threading.Event()

    def note(self, step: str) -> None:
        self.steps.append((step, threading.get_ident()))

    @property
    def threads(self) -> set[int]:
        return {ident for _, ident in self.steps}


def test_native_generator_runs_on_its_pool_thread(live_server: Callable[..., Any]) -> None:
    log = ThreadLog()
    app = App(static_folder=None)

    @app.get("/gen")
    def gen(request: Any) -> Iterator[str]:
        log.note("handler")

        def body() -> Iterator[str]:
            try:
                for i in range(50):
                    log.note(f"piece {i}")
                    yield f"{i},"
            finally:
                log.note("close")
                log.closed.set()

        return body()

    server = live_server(app, threads=4)
    r = httpx.get(server.url + "/gen")
    assert r.text == "".join(f"{i}," for i in range(50))
    assert log.closed.wait(5)
    assert len(log.threads) == 1, log.steps  # the handler, all 50 pieces and close() on one thread
    assert server.thread.ident not in log.threads  # ... which is not the reactor's


def test_wsgi_iterable_runs_on_its_pool_thread(live_server: Callable[..., Any]) -> None:
    log = ThreadLog()

    class Body:
        def __init__(self) -> None:
            self.i = 0

        def __iter__(self) -> Body:
            log.note("iter")
            return self

        def __next__(self) -> bytes:
            log.note("next")
            self.i += 1
            if self.i > 20:
                raise StopIteration
            return b"x" * 1000

        def close(self) -> None:
            log.note("close")
            log.closed.set()

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Body:
        log.note("app")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    server = live_server(WSGIAdapter(wsgi_app, multithread=True), threads=4)
    r = httpx.get(server.url + "/")
    assert r.content == b"x" * 20000
    assert log.closed.wait(5)
    assert len(log.threads) == 1 and server.thread.ident not in log.threads, log.steps


def test_slow_reader_holds_the_producer_back_and_leaving_releases_it(live_server: Callable[..., Any]) -> None:
    log = ThreadLog()
    produced = [0]
    app = App(static_folder=None)

    @app.get("/big")
    def big(request: Any) -> Iterator[bytes]:
        def body() -> Iterator[bytes]:
            try:
                for _ in range(20000):  # 1.25 GiB if nothing held it back
                    produced[0] += 1
                    log.note("piece")
                    yield b"x" * 65536
            finally:
                log.note("close")
                log.closed.set()

        return body()

    server = live_server(app, threads=2, high_water="256K")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect((server.host, server.port))
    sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.recv(1000)  # the head and a first piece: the stream has started
    time.sleep(1.0)
    first = produced[0]
    time.sleep(1.0)
    assert produced[0] == first, "the producer kept going although nothing was read"
    assert first < 400, first  # 256 KiB queued plus what the kernel buffers, not the whole body
    # The other pool thread still answers other requests meanwhile.
    assert httpx.get(server.url + "/missing").status_code == 404
    sock.close()
    assert log.closed.wait(10), "the producer was not released when the client left"
    assert produced[0] < 20000 and len(log.threads) == 1 and server.thread.ident not in log.threads


def test_stream_that_fails_midway_cuts_the_body(live_server: Callable[..., Any]) -> None:
    app = App(static_folder=None)

    @app.get("/fail")
    def fail(request: Any) -> Iterator[str]:
        def body() -> Iterator[str]:
            yield "one,"
            yield "two,"
            raise RuntimeError("midway")

        return body()

    @app.get("/ok")
    def ok(request: Any) -> str:
        return "fine"

    server = live_server(app, threads=2)
    with server.connect() as sock:
        sock.sendall(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_closed(sock)
    body, complete = dechunk(data)
    assert body == b"one,two," and not complete  # no last chunk: the client knows the body is cut
    assert b"fine" not in data
    assert httpx.get(server.url + "/ok").text == "fine"  # the server and its pool go on


def test_pipelined_after_a_stream_and_half_close(live_server: Callable[..., Any]) -> None:
    app = App(static_folder=None)

    @app.get("/gen")
    def gen(request: Any) -> Iterator[str]:
        def body() -> Iterator[str]:
            for i in range(200):
                time.sleep(0.001)
                yield f"{i};"

        return body()

    @app.get("/after")
    def after(request: Any) -> str:
        return "after"

    server = live_server(app, threads=2)
    with server.connect() as sock:
        sock.sendall(b"GET /gen HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)  # the whole body and the next response are still owed
        data = recv_until_closed(sock, timeout=10)
    first, _, second = data.partition(b"0\r\n\r\n")
    body, _ = dechunk(first + b"0\r\n\r\n")
    assert body == "".join(f"{i};" for i in range(200)).encode()
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"after")


@pytest.mark.parametrize("threads", [0, 4])
def test_stream_with_context_in_flask(live_server: Callable[..., Any], threads: int) -> None:
    """Flask's ``stream_with_context`` reads the request while the body streams (it failed under
    --threads: "Working outside of request context", a truncated chunked body)."""
    flask = pytest.importorskip("flask")
    fapp = flask.Flask(__name__)

    @fapp.route("/stream")
    def stream() -> Any:
        def body() -> Iterator[str]:
            for i in range(int(flask.request.args["n"])):
                yield f"{flask.request.args['tag']}{i},"
        return flask.Response(flask.stream_with_context(body()), mimetype="text/plain")

    server = live_server(WSGIAdapter(fapp, multithread=threads > 0), threads=threads)
    with httpx.Client(base_url=server.url) as client:
        for _ in range(3):
            r = client.get("/stream", params={"n": "30", "tag": "t"})
            assert r.status_code == 200 and r.text == "".join(f"t{i}," for i in range(30))


# -- PulledStream in memory -------------------------------------------------------------------------

def _stream(pieces: Iterator[bytes], limit: int) -> Any:
    from microweb.http.bodies import PulledStream, StreamBody

    return PulledStream(StreamBody(b"HEAD", True, pieces, chunked=False), limit)


def test_put_waits_for_room_and_close_releases_it() -> None:
    stream = _stream(iter([b"a" * 10] * 100), limit=25)
    puller = threading.Thread(target=stream.pull, daemon=True)
    puller.start()
    time.sleep(0.2)
    assert stream.queued == 30 and len(stream.queue) == 3  # stops once 25 bytes or more wait
    assert stream.take() == b"a" * 10
    time.sleep(0.2)
    assert len(stream.queue) == 3  # one taken, one more made
    stream.close()  # the client left
    puller.join(5)
    assert not puller.is_alive() and stream.ended and not stream.failed


def test_pull_to_the_end_and_a_failure() -> None:
    stream = _stream(iter([b"x", b"y"]), limit=1 << 20)
    stream.pull()
    assert list(stream.queue) == [b"x", b"y"] and stream.ended and not stream.failed

    def broken() -> Iterator[bytes]:
        yield b"x"
        raise RuntimeError("midway")

    stream = _stream(broken(), limit=1 << 20)
    with pytest.raises(RuntimeError):
        stream.pull()
    assert stream.failed and stream.ended and list(stream.queue) == [b"x"]
