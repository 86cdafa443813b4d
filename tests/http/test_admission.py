"""The parser's body admission (``Limits.open_body``), in memory: asked once per body before a byte
of it is read, refusals stop the parser, sinks get every piece, chunked limits hold."""
from __future__ import annotations

from typing import Any

from microweb.http.admission import BodyRefused
from microweb.http.parser import CLOSED, HEAD, Limits, ProtocolError, RequestParser


class Sink:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pieces: list[bytes] = []
        self.finished: Any = None
        self.discarded = False

    def write(self, data: bytes) -> None:
        self.pieces.append(data)

    def finish(self, request: Any) -> None:
        self.finished = request
        request.body = b"".join(self.pieces)

    def discard(self) -> None:
        self.discarded = True

    def refuse(self, status: int, message: str) -> ProtocolError:
        return BodyRefused(status, message, b"HTTP/1.1 %d Refused\r\n\r\n" % status)


def parser_with(open_body: Any) -> RequestParser:
    limits = Limits()
    limits.open_body = open_body
    return RequestParser(limits)


def test_the_sink_is_asked_before_the_body_and_gets_every_piece() -> None:
    asked: list[tuple[str, int]] = []
    sinks: list[Sink] = []

    def open_body(request: Any, length: int) -> Sink:
        asked.append((request.path, length))
        sinks.append(Sink(100))
        return sinks[-1]

    parser = parser_with(open_body)
    assert parser.receive(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n") == []
    assert asked == [("/a", 10)] and sinks[0].pieces == []
    assert parser.receive(b"01234") == []
    (request,) = parser.receive(b"56789GET / HTTP/1.1\r\nHost: x\r\n\r\n")[:1]
    assert request.body == b"0123456789" and sinks[0].finished is request
    assert parser.receive(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert asked[-1] == ("/c", -1)


def test_a_refusal_stops_the_parser_and_keeps_earlier_requests() -> None:
    def open_body(request: Any, length: int) -> Sink:
        raise BodyRefused(413, "too large", b"HTTP/1.1 413 X\r\n\r\n")

    parser = parser_with(open_body)
    requests = parser.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /a HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 99999999999\r\nExpect: 100-continue\r\n\r\nxxxx")
    assert [r.path for r in requests] == ["/"]
    assert parser.state == CLOSED and parser.error is not None and parser.error.response() == b"HTTP/1.1 413 X\r\n\r\n"
    assert parser.interim == b""  # no 100 Continue for a refused body


def test_chunked_over_the_sink_limit_is_refused_and_discarded() -> None:
    sink = Sink(8)
    parser = parser_with(lambda request, length: sink)
    parser.receive(b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    parser.receive(b"5\r\nworld\r\n")
    assert parser.error is not None and parser.error.status == 413 and sink.discarded


def test_eof_midway_discards_the_body() -> None:
    sink = Sink(100)
    parser = parser_with(lambda request, length: sink)
    parser.receive(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    parser.receive(b"")
    assert sink.discarded and parser.error is not None and parser.error.status == 400


def test_without_open_body_the_limit_is_the_parser_s() -> None:
    parser = RequestParser(Limits(max_body_size=5))
    parser.receive(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
    assert parser.error is not None and parser.error.status == 413
    parser = RequestParser(Limits(max_body_size=5))
    assert parser.receive(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")[0].body == b"hello"
    assert parser.state == HEAD
