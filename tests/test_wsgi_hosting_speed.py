"""Issue 16: a WSGI app whose first piece is the whole declared body (Flask/Werkzeug's ClosingIterator)
goes out as one response, closed once; anything else still streams. Live server on loopback."""
from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterable, Iterator

import httpx
import pytest

from microweb.http.bodies import StreamBody
from microweb.http.parser import RequestParser
from microweb.requests import Request
from microweb.wsgi import WSGIAdapter


class Closing:
    """An iterable that is not a list (as Werkzeug's ClosingIterator) and counts its close() calls."""

    def __init__(self, pieces: list[bytes], pause: float = 0.0) -> None:
        self.pieces = pieces
        self.pause = pause
        self.closed = 0
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, piece in enumerate(self.pieces):
            if i and self.pause:
                time.sleep(self.pause)
            self.pulled += 1
            yield piece

    def close(self) -> None:
        self.closed += 1


def _app(body: Closing, length: int | None) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = [("Content-Type", "application/json")]
        if length is not None:
            headers.append(("Content-Length", str(length)))
        start_response("200 OK", headers)
        return body

    return app


def _one(handler: WSGIAdapter, raw: bytes) -> Any:
    return handler(RequestParser(request_class=Request).receive(raw)[0])


def test_one_piece_with_its_length_is_one_response_closed_once() -> None:
    body = Closing([b'{"id": 42}'])
    out = _one(WSGIAdapter(_app(body, 10)), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert type(out) is bytes
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b'\r\n\r\n{"id": 42}')
    assert b"Content-Length: 10\r\n" in out and out.count(b"Content-Length") == 1
    assert body.closed == 1 and body.pulled == 1  # nothing pulled past the declared body


def test_head_gets_the_length_and_no_body() -> None:
    body = Closing([b'{"id": 42}'])
    out = _one(WSGIAdapter(_app(body, 10)), b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert type(out) is bytes and out.endswith(b"\r\n\r\n") and b"Content-Length: 10\r\n" in out
    assert body.closed == 1


@pytest.mark.parametrize("pieces,length", [
    ([b"abc", b"def"], 6),  # the first piece is not all of it: streamed as it comes
    ([b"abcdef"], None),  # no declared length: chunked stream
    ([b"abcdef"], 9),  # a short body: streamed, then the connection is closed as before
])
def test_anything_else_still_streams(pieces: list[bytes], length: int | None) -> None:
    body = Closing(pieces)
    out = _one(WSGIAdapter(_app(body, length)), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(out, StreamBody)
    sent = b""
    while (piece := out.next_piece()) is not None:
        sent += piece
    out.close()
    assert b"".join(pieces) in sent.replace(b"\r\n", b"")
    assert body.closed == 1


def test_live_flask_style_and_a_slow_stream(live_server: Any) -> None:
    """A slow multi-piece body still reaches the client piece by piece while a one-piece body is whole."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/slow":
            start_response("200 OK", [("Content-Length", "6")])
            return Closing([b"abc", b"def"], pause=0.5)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return Closing([b"hello"])

    server = live_server(WSGIAdapter(app))
    with httpx.Client(base_url=server.url) as c:
        for _ in range(20):
            r = c.get("/")
            assert r.text == "hello" and r.headers["content-length"] == "5"
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        first = b""
        while b"abc" not in first:
            first += sock.recv(65536)
        assert time.monotonic() - started < 0.45  # the first piece did not wait for the second
        rest = first
        while not rest.endswith(b"abcdef"):
            rest += sock.recv(65536)
