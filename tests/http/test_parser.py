"""In-memory tests of the sans-IO HTTP/1.1 layer: ``RequestParser`` and the response encoders.

Every input is fed whole, line by line, byte by byte and in seeded random splits, and
all ways of feeding must give the same requests and the same error status.
"""
from __future__ import annotations

import random
import re
import time
import tracemalloc
from typing import Any, Callable, Iterator

import pytest

from microweb import Response
from microweb.http import parser as http_parser
from microweb.http.encode import CONTINUE_RESPONSE, LAST_CHUNK, encode_chunk, encode_head, refresh_date
from microweb.http.parser import Limits, ProtocolError, RequestParser
from microweb.http.request import HTTPRequest as Request

Summary = tuple[str, str, str, list[tuple[str, str]], bytes, bool]
Result = tuple[list[Summary], int | None]

RANDOM_SEEDS = range(12)


# -- feeding helpers ----------------------------------------------------------


def split_whole(data: bytes) -> list[bytes]:
    return [data]


def split_lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def split_bytes(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def split_random(seed: int) -> Callable[[bytes], list[bytes]]:
    def split(data: bytes) -> list[bytes]:
        rng = random.Random(seed)
        pieces, pos = [], 0
        while pos < len(data):
            step = rng.randint(1, 12)
            pieces.append(data[pos:pos + step])
            pos += step
        return pieces
    return split


SPLITTERS: list[tuple[str, Callable[[bytes], list[bytes]]]] = [
    ("whole", split_whole), ("lines", split_lines), ("bytes", split_bytes),
] + [(f"random{seed}", split_random(seed)) for seed in RANDOM_SEEDS]


def summary(request: Request) -> Summary:
    return (request.method, request.target, request.http_version, request.headers.items(), request.body,
            request.keep_alive)


def feed(data: bytes, splitter: Callable[[bytes], list[bytes]] = split_whole, *, eof: bool = False,
         limits: Limits | None = None) -> tuple[list[Request], RequestParser]:
    parser = RequestParser(limits) if limits is not None else RequestParser()
    requests: list[Request] = []
    for piece in splitter(data):
        requests.extend(parser.receive(piece))
        check_partial_input(parser)
    if eof:
        requests.extend(parser.receive(b""))
        check_partial_input(parser)
    return requests, parser


def check_partial_input(parser: RequestParser) -> None:
    """``has_partial_input`` is kept up to date by the parser: it must say what its state says."""
    held = bool(parser._buffer) or http_parser.HEAD < parser.state < http_parser.CLOSED
    assert parser.has_partial_input is held


def parse_every_way(data: bytes, *, eof: bool = False, limits: Limits | None = None) -> Result:
    """Feed ``data`` every way; assert they agree; return (request summaries, error status or None)."""
    results: dict[str, Result] = {}
    for name, splitter in SPLITTERS:
        requests, parser = feed(data, splitter, eof=eof, limits=limits)
        results[name] = ([summary(r) for r in requests], parser.error.status if parser.error else None)
    expected = results["whole"]
    for name, result in results.items():
        assert result == expected, f"feeding {name} differs from feeding whole"
    return expected


def rejected(data: bytes, *, eof: bool = False, limits: Limits | None = None) -> int:
    """The status every way of feeding ``data`` is rejected with (asserts nothing was accepted)."""
    requests, status = parse_every_way(data, eof=eof, limits=limits)
    assert requests == []
    assert status is not None, "expected the parser to reject this input"
    return status


def req(head: str, body: bytes = b"") -> bytes:
    """A request from a head written with ``|`` for CRLF (so cases stay one line each)."""
    return head.replace("|", "\r\n").encode("latin-1") + b"\r\n\r\n" + body


# -- valid requests, fed every way ---------------------------------------------

VALID: dict[str, bytes] = {
    "get": req("GET / HTTP/1.1|Host: example.com"),
    "get-query-headers": req("GET /a/b?x=1&y=%20 HTTP/1.1|Host: h:8080|Accept: */*|X-Tab:\tv\t|User-Agent: t/1"),
    "get-obs-text-value": b"GET / HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9\r\n\r\n",
    "post-content-length": req("POST /submit HTTP/1.1|Host: h|Content-Length: 11", b"hello world"),
    "post-body-looks-like-a-request": req("POST / HTTP/1.1|Host: h|Content-Length: 37",
                                          b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n\r\n"),
    "post-content-length-zero": req("POST / HTTP/1.1|Host: h|Content-Length: 0"),
    "post-content-length-leading-zeros": req("POST / HTTP/1.1|Host: h|Content-Length: 005", b"abcde"),
    "post-same-content-length-twice": req("POST / HTTP/1.1|Host: h|Content-Length: 3|Content-Length: 3", b"abc"),
    "chunked": req("POST /up HTTP/1.1|Host: h|Transfer-Encoding: chunked",
                   b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
    "chunked-extensions-trailers": req(
        "POST /up HTTP/1.1|Host: h|Transfer-Encoding: Chunked",
        b"5;name=value\r\nhello\r\n000A ; a=\"quoted; str\";b\r\n0123456789\r\n"
        b"0;last\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n"),
    "chunked-uppercase-hex": req("PUT /x HTTP/1.1|Host: h|Transfer-Encoding: chunked",
                                 b"1A\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n"),
    "chunked-mixed-sizes": req(
        "POST /up HTTP/1.1|Host: h|Transfer-Encoding: chunked",
        b"".join(b"%x\r\n%s\r\n" % (n, bytes([65 + i]) * n) for i, n in enumerate([1, 2000, 3, 5000, 1, 1023, 1024]))
        + b"0\r\n\r\n"),
    "http10-no-host": req("GET /old HTTP/1.0"),
    "http10-keep-alive": req("GET /old HTTP/1.0|Connection: keep-alive"),
    "leading-empty-lines": b"\r\n\r\n\r\n" + req("GET / HTTP/1.1|Host: h"),
    "absolute-form": req("GET http://example.com:8080/p/q?x=1 HTTP/1.1|Host: example.com:8080"),
    "asterisk-form": req("OPTIONS * HTTP/1.1|Host: h"),
    "authority-empty-host": req("GET / HTTP/1.1|Host:"),
    "ipv6-host": req("GET / HTTP/1.1|Host: [::1]:8000"),
    "extension-method": req("PURGE /cache HTTP/1.1|Host: h"),
    "pipelined-mixed": (
        req("GET /1 HTTP/1.1|Host: h")
        + req("POST /2 HTTP/1.1|Host: h|Content-Length: 3", b"abc")
        + req("POST /3 HTTP/1.1|Host: h|Transfer-Encoding: chunked", b"3\r\nxyz\r\n0\r\n\r\n")
        + b"\r\n"  # one stray CRLF between requests is allowed (RFC 9112 2.2)
        + req("GET /4 HTTP/1.1|Host: h")
        + req("GET /5 HTTP/1.1|Host: h|Connection: close")
    ),
    "pipelined-identical-heads": req("GET / HTTP/1.1|Host: h|Accept: x") * 3,
}


@pytest.mark.parametrize("name", list(VALID))
def test_every_way_of_feeding_gives_the_same_requests(name: str) -> None:
    requests, status = parse_every_way(VALID[name])
    assert status is None
    assert requests


def test_simple_get_fields() -> None:
    [r], status = parse_every_way(VALID["get-query-headers"])
    method, target, version, headers, body, keep_alive = r
    assert (method, target, version, body, keep_alive) == ("GET", "/a/b?x=1&y=%20", "HTTP/1.1", b"", True)
    assert headers == [("Host", "h:8080"), ("Accept", "*/*"), ("X-Tab", "v"), ("User-Agent", "t/1")]
    [request], _ = feed(VALID["get-query-headers"])
    assert request.path == "/a/b"
    assert request.query_string == "x=1&y=%20"
    assert request.headers.get("HOST") == "h:8080"


def test_obs_text_is_latin1() -> None:
    [request], _ = feed(VALID["get-obs-text-value"])
    assert request.headers["x-latin"] == "caf\xe9"


def test_content_length_body() -> None:
    [r], _ = parse_every_way(VALID["post-content-length"])
    assert r[4] == b"hello world"
    [r], _ = parse_every_way(VALID["post-content-length-leading-zeros"])
    assert r[4] == b"abcde"
    [r], _ = parse_every_way(VALID["post-same-content-length-twice"])
    assert r[4] == b"abc"


def test_body_bytes_are_never_read_as_a_request() -> None:
    [r], _ = parse_every_way(VALID["post-body-looks-like-a-request"])
    assert r[4] == b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n\r\n"


def test_chunked_body_with_extensions_and_trailers() -> None:
    [r], _ = parse_every_way(VALID["chunked"])
    assert r[4] == b"hello world"
    [r], _ = parse_every_way(VALID["chunked-extensions-trailers"])
    assert r[4] == b"hello0123456789"
    [r], _ = parse_every_way(VALID["chunked-uppercase-hex"])
    assert r[4] == b"z" * 26


def test_chunked_small_and_large_chunks_keep_their_order() -> None:
    [r], _ = parse_every_way(VALID["chunked-mixed-sizes"])
    sizes = [1, 2000, 3, 5000, 1, 1023, 1024]
    assert r[4] == b"".join(bytes([65 + i]) * n for i, n in enumerate(sizes))
    assert type(feed(VALID["chunked-mixed-sizes"])[0][0].body) is bytes


def test_chunked_body_split_feeding_keeps_state_between_feeds() -> None:
    parser = RequestParser()
    assert parser.receive(req("POST / HTTP/1.1|Host: h|Transfer-Encoding: chunked")) == []
    assert parser.has_partial_input
    assert parser.receive(b"4\r\nab") == []
    assert parser.receive(b"cd\r") == []
    assert parser.receive(b"\n0\r\n") == []
    [request] = parser.receive(b"\r\n")
    assert request.body == b"abcd"
    assert not parser.has_partial_input


def test_leading_empty_lines_are_ignored() -> None:
    [r], _ = parse_every_way(VALID["leading-empty-lines"])
    assert r[:2] == ("GET", "/")


def test_absolute_form_target() -> None:
    [request], parser = feed(VALID["absolute-form"])
    assert parser.error is None
    assert request.target == "http://example.com:8080/p/q?x=1"
    assert request.path == "/p/q"
    assert request.query_string == "x=1"


def test_asterisk_form_target() -> None:
    [request], _ = feed(VALID["asterisk-form"])
    assert (request.method, request.path) == ("OPTIONS", "*")


def test_pipelined_requests_come_out_in_order() -> None:
    requests, status = parse_every_way(VALID["pipelined-mixed"])
    assert status is None
    assert [(r[0], r[1], r[4], r[5]) for r in requests] == [
        ("GET", "/1", b"", True),
        ("POST", "/2", b"abc", True),
        ("POST", "/3", b"xyz", True),
        ("GET", "/4", b"", True),
        ("GET", "/5", b"", False),
    ]


def test_identical_heads_reuse_is_invisible() -> None:
    requests, _ = parse_every_way(VALID["pipelined-identical-heads"])
    assert len(requests) == 3
    assert len(set(map(repr, requests))) == 1


def test_nothing_is_read_after_a_request_that_closes() -> None:
    data = req("GET /a HTTP/1.1|Host: h|Connection: close") + req("GET /b HTTP/1.1|Host: h")
    requests, status = parse_every_way(data)
    assert [r[1] for r in requests] == ["/a"]
    assert status is None
    data = req("GET /a HTTP/1.0") + req("GET /b HTTP/1.0")
    requests, status = parse_every_way(data)
    assert [r[1] for r in requests] == ["/a"]


# -- keep-alive (RFC 9112 9.3) --------------------------------------------------

KEEP_ALIVE_CASES = [
    ("HTTP/1.1", None, True),
    ("HTTP/1.1", "close", False),
    ("HTTP/1.1", "Close", False),
    ("HTTP/1.1", "keep-alive, close", False),
    ("HTTP/1.1", "Upgrade", True),
    ("HTTP/1.1", "keep-alive", True),
    ("HTTP/1.0", None, False),
    ("HTTP/1.0", "keep-alive", True),
    ("HTTP/1.0", "Keep-Alive", True),
    ("HTTP/1.0", "te, keep-alive", True),
    ("HTTP/1.0", "keep-alive, close", False),
    ("HTTP/1.0", "upgrade", False),
]


@pytest.mark.parametrize("version,connection,expected", KEEP_ALIVE_CASES)
def test_keep_alive_rules_rfc9112_9_3(version: str, connection: str | None, expected: bool) -> None:
    head = f"GET / {version}|Host: h" + (f"|Connection: {connection}" if connection is not None else "")
    [r], status = parse_every_way(req(head))
    assert status is None
    assert r[5] is expected


def test_keep_alive_close_in_a_second_connection_header() -> None:
    [r], _ = parse_every_way(req("GET / HTTP/1.1|Host: h|Connection: keep-alive|Connection: close"))
    assert r[5] is False


# -- Expect: 100-continue -------------------------------------------------------


def test_expect_continue_interim_when_body_not_there_yet() -> None:
    parser = RequestParser()
    head = req("POST / HTTP/1.1|Host: h|Content-Length: 5|Expect: 100-continue")
    assert parser.receive(head) == []
    assert parser.interim == CONTINUE_RESPONSE == b"HTTP/1.1 100 Continue\r\n\r\n"
    parser.interim = b""  # the reactor sends it and clears it
    [request] = parser.receive(b"hello")
    assert request.body == b"hello"
    assert parser.interim == b""


def test_expect_continue_no_interim_when_body_already_there() -> None:
    parser = RequestParser()
    [request] = parser.receive(req("POST / HTTP/1.1|Host: h|Content-Length: 5|Expect: 100-continue", b"hello"))
    assert request.body == b"hello"
    assert parser.interim == b""


def test_expect_continue_interim_when_part_of_body_there() -> None:
    parser = RequestParser()
    assert parser.receive(req("POST / HTTP/1.1|Host: h|Content-Length: 5|Expect: 100-continue", b"he")) == []
    assert parser.interim == CONTINUE_RESPONSE


def test_expect_continue_chunked_interim_when_body_not_there_yet() -> None:
    parser = RequestParser()
    assert parser.receive(req("POST / HTTP/1.1|Host: h|Transfer-Encoding: chunked|Expect: 100-continue")) == []
    assert parser.interim == CONTINUE_RESPONSE


def test_expect_continue_chunked_no_interim_when_body_already_there() -> None:
    parser = RequestParser()
    [request] = parser.receive(req("POST / HTTP/1.1|Host: h|Transfer-Encoding: chunked|Expect: 100-continue",
                                   b"2\r\nok\r\n0\r\n\r\n"))
    assert request.body == b"ok"
    assert parser.interim == b""


def test_expect_continue_without_body_needs_no_interim() -> None:
    parser = RequestParser()
    [request] = parser.receive(req("GET / HTTP/1.1|Host: h|Expect: 100-continue"))
    assert parser.interim == b""


def test_expect_continue_ignored_for_http10() -> None:
    parser = RequestParser()
    assert parser.receive(req("POST / HTTP/1.0|Content-Length: 2|Expect: 100-continue")) == []
    assert parser.interim == b""


def test_expect_other_than_100_continue_is_417() -> None:
    assert rejected(req("POST / HTTP/1.1|Host: h|Content-Length: 1|Expect: teapot", b"x")) == 417


def test_expect_continue_is_case_insensitive() -> None:
    parser = RequestParser()
    parser.receive(req("POST / HTTP/1.1|Host: h|Content-Length: 5|Expect: 100-Continue"))
    assert parser.interim == CONTINUE_RESPONSE


# -- rejects: every class, with its status ---------------------------------------


def _cl(value: str) -> bytes:
    return req(f"POST / HTTP/1.1|Host: h|Content-Length: {value}", b"hello")


def _te(value: str, body: bytes = b"5\r\nhello\r\n0\r\n\r\n", version: str = "HTTP/1.1") -> bytes:
    return req(f"POST / {version}|Host: h|Transfer-Encoding: {value}", body)


def _chunks(body: bytes) -> bytes:
    return req("POST / HTTP/1.1|Host: h|Transfer-Encoding: chunked", body)


REJECTS: list[tuple[str, bytes, int]] = [
    # Content-Length must be plain digits (RFC 9112 6.3 item 5, RFC 9110 8.6).
    ("cl-plus-sign", _cl("+5"), 400),
    ("cl-minus-sign", _cl("-5"), 400),
    ("cl-hex", _cl("0x5"), 400),
    ("cl-inner-space", _cl("5 5"), 400),
    ("cl-empty", _cl(""), 400),
    ("cl-list-form-same-values", _cl("5, 5"), 400),
    ("cl-list-form-different-values", _cl("5,6"), 400),
    ("cl-decimal-point", _cl("5.0"), 400),
    ("cl-vertical-tab-before-digits", _cl("\x0b5"), 400),
    ("cl-form-feed-after-digits", _cl("5\x0c"), 400),
    ("cl-non-ascii-digit-superscript-two", _cl("\xb2"), 400),
    ("cl-two-different-values", req("POST / HTTP/1.1|Host: h|Content-Length: 5|Content-Length: 6", b"hello!"), 400),
    ("cl-with-te", req("POST / HTTP/1.1|Host: h|Content-Length: 5|Transfer-Encoding: chunked",
                       b"0\r\n\r\n"), 400),
    ("te-with-cl", req("POST / HTTP/1.1|Host: h|Transfer-Encoding: chunked|Content-Length: 5",
                       b"0\r\n\r\n"), 400),
    # Transfer-Encoding: only a single, final chunked is accepted (RFC 9112 6.1, 6.3 item 4).
    ("te-gzip-then-chunked-unknown-coding-is-501", _te("gzip, chunked"), 501),
    ("te-deflate-then-chunked-in-two-fields-is-501",
     req("POST / HTTP/1.1|Host: h|Transfer-Encoding: deflate|Transfer-Encoding: chunked", b"0\r\n\r\n"), 501),
    ("te-gzip-alone-chunked-not-final-is-400", _te("gzip"), 400),
    ("te-chunked-then-gzip-not-final-is-400", _te("chunked, gzip"), 400),
    ("te-chunked-twice-is-400", _te("chunked, chunked"), 400),
    ("te-chunked-in-two-fields-is-400",
     req("POST / HTTP/1.1|Host: h|Transfer-Encoding: chunked|Transfer-Encoding: chunked", b"0\r\n\r\n"), 400),
    ("te-identity-is-400", _te("identity"), 400),
    ("te-empty-is-400", _te(""), 400),
    ("te-xchunked-is-400", _te("xchunked"), 400),
    ("te-chunked-with-empty-list-element-is-400", _te("chunked,"), 400),
    ("te-in-http10-is-400", req("POST / HTTP/1.0|Transfer-Encoding: chunked", b"0\r\n\r\n"), 400),
    # Chunk sizes (RFC 9112 7.1).
    ("chunk-size-not-hex", _chunks(b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-17-hex-digits", _chunks(b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-negative", _chunks(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-0x-prefix", _chunks(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-leading-space", _chunks(b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-empty", _chunks(b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-bare-lf", _chunks(b"5\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-extension-bare-cr", _chunks(b"5;a=\rb\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-data-not-followed-by-crlf", _chunks(b"5\r\nhelloXX\r\n0\r\n\r\n"), 400),
    ("chunk-data-followed-by-bare-lf", _chunks(b"5\r\nhello\n0\r\n\r\n"), 400),
    ("chunk-data-longer-than-size", _chunks(b"3\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-trailer-obs-fold", _chunks(b"0\r\nX-T: a\r\n folded\r\n\r\n"), 400),
    ("chunk-trailer-nul", _chunks(b"0\r\nX-T: a\x00b\r\n\r\n"), 400),
    ("chunk-trailer-space-before-colon", _chunks(b"0\r\nX-T : a\r\n\r\n"), 400),
    # Field syntax (RFC 9112 5).
    ("obs-fold", req("GET / HTTP/1.1|Host: h|X-A: a| folded"), 400),
    ("obs-fold-tab", req("GET / HTTP/1.1|Host: h|X-A: a|\tfolded"), 400),
    ("obs-fold-first-line", req("GET / HTTP/1.1| X-A: a|Host: h"), 400),
    ("bare-cr-in-value", req("GET / HTTP/1.1|Host: h|X-A: a\rb"), 400),
    ("bare-cr-line-end", b"GET / HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n", 400),
    ("bare-lf-line-end-in-headers", b"GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", 400),
    ("bare-lf-after-request-line", b"GET / HTTP/1.1\nHost: h\r\n\r\n", 400),
    ("bare-lf-head-end", b"GET / HTTP/1.1\r\nHost: h\n\n", 400),
    ("nul-in-value", req("GET / HTTP/1.1|Host: h|X-A: a\x00b"), 400),
    ("nul-in-name", req("GET / HTTP/1.1|Host: h|X-\x00A: b"), 400),
    ("nul-in-target", req("GET /a\x00b HTTP/1.1|Host: h"), 400),
    ("control-char-in-value", req("GET / HTTP/1.1|Host: h|X-A: a\x01b"), 400),
    ("del-in-value", req("GET / HTTP/1.1|Host: h|X-A: a\x7fb"), 400),
    ("space-before-colon", req("GET / HTTP/1.1|Host: h|X-A : b"), 400),
    ("tab-before-colon", req("GET / HTTP/1.1|Host: h|X-A\t: b"), 400),
    ("space-before-colon-content-length", req("POST / HTTP/1.1|Host: h|Content-Length : 5", b"hello"), 400),
    ("space-before-colon-transfer-encoding",
     req("POST / HTTP/1.1|Host: h|Transfer-Encoding : chunked", b"0\r\n\r\n"), 400),
    ("empty-field-name", req("GET / HTTP/1.1|Host: h|: b"), 400),
    ("no-colon", req("GET / HTTP/1.1|Host: h|X-A b"), 400),
    ("separator-in-field-name", req("GET / HTTP/1.1|Host: h|X(A): b"), 400),
    # Host (RFC 9112 3.2).
    ("missing-host-http11", req("GET / HTTP/1.1|Accept: */*"), 400),
    ("missing-host-http11-no-fields", req("GET / HTTP/1.1"), 400),
    ("doubled-host-different", req("GET / HTTP/1.1|Host: a|Host: b"), 400),
    ("doubled-host-same", req("GET / HTTP/1.1|Host: a|Host: a"), 400),
    ("doubled-host-http10", req("GET / HTTP/1.0|Host: a|Host: b"), 400),
    ("host-with-space", req("GET / HTTP/1.1|Host: a b"), 400),
    ("host-with-slash", req("GET / HTTP/1.1|Host: a/b"), 400),
    ("host-with-at", req("GET / HTTP/1.1|Host: user@a"), 400),
    # Request line and version (RFC 9112 3, 2.3).
    ("version-http2-is-505", req("GET / HTTP/2.0|Host: h"), 505),
    ("version-http09-is-505", req("GET / HTTP/0.9|Host: h"), 505),
    ("version-trailing-garbage-is-400", req("GET / HTTP/1.1x|Host: h"), 400),
    ("version-lowercase-is-400", req("GET / http/1.1|Host: h"), 400),
    ("version-missing-minor-is-400", req("GET / HTTP/1|Host: h"), 400),
    ("version-two-digit-major-is-400", req("GET / HTTP/11.1|Host: h"), 400),
    ("request-line-double-space", req("GET  / HTTP/1.1|Host: h"), 400),
    ("request-line-trailing-space", req("GET / HTTP/1.1 |Host: h"), 400),
    ("request-line-leading-space", req(" GET / HTTP/1.1|Host: h"), 400),
    ("request-line-tabs", req("GET\t/\tHTTP/1.1|Host: h"), 400),
    ("request-line-no-target", req("GET HTTP/1.1|Host: h"), 400),
    ("request-line-space-in-target", req("GET /a b HTTP/1.1|Host: h"), 400),
    ("request-line-only-method", req("GET|Host: h"), 400),
    ("method-with-separator", req("GE(T / HTTP/1.1|Host: h"), 400),
    ("target-with-non-ascii", b"GET /caf\xe9 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
]


@pytest.mark.parametrize("data,status", [(d, s) for _, d, s in REJECTS], ids=[n for n, _, _ in REJECTS])
def test_reject(data: bytes, status: int) -> None:
    assert rejected(data) == status


@pytest.mark.parametrize("data,status", [(d, s) for _, d, s in REJECTS], ids=[n for n, _, _ in REJECTS])
def test_reject_keeps_earlier_requests_and_drops_later_ones(data: bytes, status: int) -> None:
    good = req("GET /before HTTP/1.1|Host: h")
    after = req("GET /after HTTP/1.1|Host: h")
    requests, got = parse_every_way(good + data + after)
    assert got == status
    assert [r[1] for r in requests] == ["/before"]


def test_content_length_leading_ows_is_field_syntax_not_part_of_the_value() -> None:
    # RFC 9112 5.1 strips OWS around a field value, so "Content-Length:  5" is the value "5".
    [r], status = parse_every_way(req("POST / HTTP/1.1|Host: h|Content-Length:   5 \t", b"hello"))
    assert status is None
    assert r[4] == b"hello"


def test_content_length_with_thousands_of_digits_is_413_not_a_crash() -> None:
    assert rejected(_cl("9" * 5000)) == 413
    assert rejected(_cl("1" + "0" * 19)) == 413


def test_content_length_zero_padded_beyond_int_limits_is_accepted() -> None:
    [r], status = parse_every_way(_cl("0" * 5000 + "5"))
    assert status is None
    assert r[4] == b"hello"


def test_chunk_size_16_hex_digits_is_too_large_413() -> None:
    assert rejected(_chunks(b"ffffffffffffffff\r\nhello\r\n")) == 413


def test_chunk_size_line_too_long() -> None:
    assert rejected(_chunks(b"5;" + b"x" * 2000)) == 400


def test_incomplete_request_at_eof_is_400() -> None:
    assert rejected(req("POST / HTTP/1.1|Host: h|Content-Length: 10", b"abc"), eof=True) == 400
    assert rejected(b"GET / HTTP/1.1\r\nHost: h\r\n", eof=True) == 400
    assert rejected(_chunks(b"5\r\nhel"), eof=True) == 400


def test_eof_between_requests_is_not_an_error() -> None:
    requests, status = parse_every_way(req("GET / HTTP/1.1|Host: h"), eof=True)
    assert status is None and len(requests) == 1


def test_parser_cache_does_not_carry_http11_verdicts_to_http10() -> None:
    # The second request has the same field block as the first; its version differs, so the
    # framing checks must run again: Transfer-Encoding is not allowed in HTTP/1.0.
    block = "Host: h|Transfer-Encoding: chunked|Connection: keep-alive"
    data = req(f"POST /a HTTP/1.1|{block}", b"0\r\n\r\n") + req(f"POST /b HTTP/1.0|{block}", b"0\r\n\r\n")
    requests, status = parse_every_way(data)
    assert [r[1] for r in requests] == ["/a"]
    assert status == 400


def test_parser_cache_does_not_carry_http10_verdicts_to_http11() -> None:
    # Host is optional in HTTP/1.0 but required in HTTP/1.1, even with an identical field block.
    data = req("GET /a HTTP/1.0|Connection: keep-alive") + req("GET /b HTTP/1.1|Connection: keep-alive")
    requests, status = parse_every_way(data)
    assert [r[1] for r in requests] == ["/a"]
    assert status == 400


# A client that repeats its head is parsed once (the last request line and the last field
# block are remembered per connection); every way a repeat can differ must still be seen.
_BLOCK = "Host: h|Accept: */*|Cookie: a=1"


@pytest.mark.parametrize("second, expected", [
    # the same fields under another request line
    (req(f"GET /other?x=1 HTTP/1.1|{_BLOCK}"), ("GET", "/other?x=1", "HTTP/1.1")),
    (req(f"HEAD / HTTP/1.1|{_BLOCK}"), ("HEAD", "/", "HTTP/1.1")),
    # the same request line with more, fewer or other fields
    (req(f"GET / HTTP/1.1|{_BLOCK}|X-Extra: 1"), ("GET", "/", "HTTP/1.1")),
    (req("GET / HTTP/1.1|Host: h|Accept: */*"), ("GET", "/", "HTTP/1.1")),
    (req("GET / HTTP/1.1|Host: h|Accept: */*|Cookie: a=2"), ("GET", "/", "HTTP/1.1")),
    # the same block, but a field line of it continued by the next bytes
    (req(f"GET / HTTP/1.1|{_BLOCK}; b=2"), ("GET", "/", "HTTP/1.1")),
    # empty lines before a repeated head (RFC 9112 2.2)
    (b"\r\n\r\n" + req(f"GET / HTTP/1.1|{_BLOCK}"), ("GET", "/", "HTTP/1.1")),
])
def test_repeated_head_parts_are_reused_only_when_equal(second: bytes, expected: tuple[str, str, str]) -> None:
    first = req(f"GET / HTTP/1.1|{_BLOCK}")
    requests, status = parse_every_way(first + first + second + first)
    assert status is None
    fresh, _ = feed(second)  # the same request parsed by a parser that has seen nothing
    assert requests[2] == summary(fresh[0])
    assert (requests[2][0], requests[2][1], requests[2][2]) == expected
    assert [r[:3] for r in requests[:2] + requests[3:]] == [("GET", "/", "HTTP/1.1")] * 3
    assert requests[0][3] == requests[1][3] == requests[3][3]


@pytest.mark.parametrize("second, status", [
    (req(f"GET / HTTP/1.1|{_BLOCK}|X-Bad: a\rb"), 400),  # a repeated line, a new block with a bare CR
    (req(f"GET / HTTP/1.1|{_BLOCK}|Bad Name: 1"), 400),  # ... with an invalid field name
    (req(f"GET / HTTP/1.1|{_BLOCK}|X-Big: " + "v" * 9000), 431),  # ... too large for the limits
    (req(f"GET /a b HTTP/1.1|{_BLOCK}"), 400),  # a repeated block under a malformed line
    (req(f"GET / HTTP/2.0|{_BLOCK}"), 505),
    (req(f"GET /{'x' * 9000} HTTP/1.1|{_BLOCK}"), 414),
])
def test_a_repeat_with_an_invalid_part_is_still_refused(second: bytes, status: int) -> None:
    first = req(f"GET / HTTP/1.1|{_BLOCK}")
    limits = Limits(max_header_size=8192, max_request_line=8192, max_field_line=16384)
    requests, error = parse_every_way(first + first + second, limits=limits)
    assert len(requests) == 2 and error == status


def test_parser_ignores_input_after_an_error() -> None:
    parser = RequestParser()
    assert parser.receive(req("GET / HTTP/2.0|Host: h")) == []
    assert parser.error is not None and parser.error.status == 505
    assert parser.receive(req("GET / HTTP/1.1|Host: h")) == []
    assert parser.state == http_parser.CLOSED


def test_protocol_error_carries_status_and_message() -> None:
    _, parser = feed(req("GET / HTTP/1.1"))
    assert isinstance(parser.error, ProtocolError)
    assert parser.error.status == 400
    assert "Host" in parser.error.message


# -- size limits (414, 431, 413) -------------------------------------------------

SMALL = Limits(max_request_line=100, max_header_size=400, max_header_count=10, max_body_size=1000)


def test_request_line_too_long_is_414() -> None:
    assert rejected(req("GET /" + "a" * 200 + " HTTP/1.1|Host: h"), limits=SMALL) == 414


def test_request_line_too_long_is_414_before_the_head_ends() -> None:
    parser = RequestParser(SMALL)
    assert parser.receive(b"GET /" + b"a" * 200) == []
    assert parser.error is not None and parser.error.status == 414


def test_request_line_too_long_default_limit() -> None:
    assert rejected(req("GET /" + "a" * 9000 + " HTTP/1.1|Host: h")) == 414


def test_request_line_at_the_limit_is_accepted() -> None:
    line = "GET /" + "a" * (100 - len("GET / HTTP/1.1") - 1) + " HTTP/1.1"
    assert len(line) <= 100
    [r], status = parse_every_way(req(line + "|Host: h"), limits=SMALL)
    assert status is None


def test_too_many_header_fields_is_431() -> None:
    fields = "|".join(f"X-{i}: v" for i in range(11))
    assert rejected(req(f"GET / HTTP/1.1|Host: h|{fields}"), limits=SMALL) == 431


def test_too_many_header_fields_default_limit_is_431() -> None:
    fields = "|".join(f"X-{i}: v" for i in range(101))
    assert rejected(req(f"GET / HTTP/1.1|Host: h|{fields}")) == 431


def test_header_section_too_large_is_431() -> None:
    assert rejected(req("GET / HTTP/1.1|Host: h|X-Big: " + "v" * 500), limits=SMALL) == 431


def test_header_section_too_large_is_431_before_the_head_ends() -> None:
    parser = RequestParser(SMALL)
    assert parser.receive(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 600) == []
    assert parser.error is not None and parser.error.status == 431


def test_header_section_too_large_default_limit_is_431() -> None:
    assert rejected(req("GET / HTTP/1.1|Host: h|X-Big: " + "v" * 70000)) == 431


def test_content_length_too_large_is_413_before_the_body_arrives() -> None:
    parser = RequestParser(SMALL)
    assert parser.receive(req("POST / HTTP/1.1|Host: h|Content-Length: 1001")) == []
    assert parser.error is not None and parser.error.status == 413


def test_content_length_at_the_limit_is_accepted() -> None:
    [r], status = parse_every_way(_cl("1000").replace(b"hello", b"x" * 1000), limits=SMALL)
    assert status is None and len(r[4]) == 1000


def test_chunked_body_too_large_is_413() -> None:
    body = b"".join(b"64\r\n" + b"x" * 100 + b"\r\n" for _ in range(11)) + b"0\r\n\r\n"
    assert rejected(_chunks(body), limits=SMALL) == 413


def test_default_body_limit_is_413() -> None:
    assert rejected(_cl(str(16 * 1024 * 1024 + 1))) == 413


# -- response encoding --------------------------------------------------------------


def head_fields(head: bytes) -> tuple[bytes, dict[str, str]]:
    assert head.endswith(b"\r\n\r\n")
    status_line, *lines = head[:-4].split(b"\r\n")
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(": ")
        assert name.lower() not in fields, f"duplicate {name}"
        fields[name.lower()] = value
    return status_line, fields


@pytest.mark.parametrize("name,value", [
    ("X-A", "a\r\nSet-Cookie: evil=1"),
    ("X-A", "a\nb"),
    ("X-A", "a\rb"),
    ("X-A", "a\x00b"),
    ("X-A\r\nEvil", "1"),
    ("X-A\n", "1"),
    ("X-\rA", "1"),
    ("X-\x00A", "1"),
    ("X-A: b", "1"),
    ("", "1"),
])
def test_encode_head_refuses_header_splitting(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        encode_head(200, [("Content-Type", "text/plain"), (name, value)], 0, True)


def test_encode_head_refuses_bad_names_from_a_generator_too() -> None:
    with pytest.raises(ValueError):
        encode_head(200, ((n, v) for n, v in [("X-A: evil", "1")]), 0, True)
    with pytest.raises(ValueError):
        encode_head(200, ((n, v) for n, v in [("X-A", "a\r\nb")]), 0, True)


def test_encode_head_content_length_keep_alive_http11() -> None:
    status_line, fields = head_fields(encode_head(200, [("Content-Type", "text/plain")], 12, True))
    assert status_line == b"HTTP/1.1 200 OK"
    assert fields["content-length"] == "12"
    assert fields["content-type"] == "text/plain"
    assert "connection" not in fields and "transfer-encoding" not in fields
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", fields["date"])


def test_encode_head_close_and_http10_keep_alive() -> None:
    assert head_fields(encode_head(200, [], 0, False))[1]["connection"] == "close"
    assert head_fields(encode_head(200, [], 0, True, http11=False))[1]["connection"] == "keep-alive"
    assert head_fields(encode_head(200, [], 0, False, http11=False))[1]["connection"] == "close"


@pytest.mark.parametrize("status", [100, 101, 103, 204, 304])
def test_encode_head_no_framing_for_1xx_204_304(status: int) -> None:
    for length in (None, 0, 10):
        _, fields = head_fields(encode_head(status, [], length, True))
        assert "content-length" not in fields
        assert "transfer-encoding" not in fields


def test_encode_head_stream_http11_is_chunked() -> None:
    _, fields = head_fields(encode_head(200, [], None, True))
    assert fields["transfer-encoding"] == "chunked"
    assert "content-length" not in fields


def test_encode_head_stream_http10_is_close_delimited() -> None:
    _, fields = head_fields(encode_head(200, [], None, False, http11=False))
    assert "transfer-encoding" not in fields and "content-length" not in fields
    assert fields["connection"] == "close"


def test_encode_head_unknown_and_bad_status() -> None:
    assert encode_head(599, [], 0, True).startswith(b"HTTP/1.1 599 ")
    with pytest.raises(ValueError):
        encode_head(1000, [], 0, True)


def test_encode_chunk_and_last_chunk() -> None:
    assert encode_chunk(b"hello world, this is it") == b"17\r\nhello world, this is it\r\n"
    assert encode_chunk(b"") == b""
    assert LAST_CHUNK == b"0\r\n\r\n"


def test_refresh_date_changes_the_date_header() -> None:
    try:
        refresh_date(0.0)
        assert b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n" in encode_head(200, [], 0, True)
        refresh_date(86400.5)
        assert b"Date: Fri, 02 Jan 1970 00:00:00 GMT\r\n" in encode_head(200, [], 0, True)
    finally:
        refresh_date()


def test_encoded_response_round_trips_through_a_parser() -> None:
    # Our own heads are well-formed field sections: a request parser accepts them as fields.
    head = encode_head(201, [("X-A", "1"), ("Content-Type", "text/plain")], 3, True)
    _, fields = head_fields(head)
    assert fields["x-a"] == "1"
    block = head.split(b"\r\n", 1)[1][:-4]
    parsed = http_parser.parse_header_block(block + b"\r\nHost: h", True, http_parser.DEFAULT_LIMITS)
    assert parsed.content_length == 3


def _request(method: str = "GET", version: str = "HTTP/1.1", keep_alive: bool = True) -> Request:
    [request] = RequestParser().receive(
        req(f"{method} / {version}|Host: h" + ("" if keep_alive else "|Connection: close")))
    return request


def test_response_head_has_same_content_length_and_no_body() -> None:
    get = Response(b"hello").encode(_request("GET"))
    head = Response(b"hello").encode(_request("HEAD"))
    assert isinstance(get, bytes) and isinstance(head, bytes)
    assert get.endswith(b"\r\n\r\nhello")
    assert head.endswith(b"\r\n\r\n")
    assert head_fields(head)[1]["content-length"] == "5"
    assert get[:-5] == head


@pytest.mark.parametrize("status", [204, 304])
def test_response_204_304_have_no_body_and_no_framing(status: int) -> None:
    out = Response(b"ignored", status).encode(_request())
    assert isinstance(out, bytes)
    assert out.endswith(b"\r\n\r\n") and b"ignored" not in out
    _, fields = head_fields(out)
    assert "content-length" not in fields and "transfer-encoding" not in fields


def test_response_stream_http11_chunked_and_http10_closes() -> None:
    def pieces() -> Iterator[bytes]:
        yield b"ab"
        yield b""
        yield "cd"  # type: ignore[misc]

    source: Any = Response(pieces()).encode(_request())
    assert b"Transfer-Encoding: chunked\r\n" in source.head
    assert source.keep_alive is True
    assert [source.next_piece(), source.next_piece(), source.next_piece()] == [b"2\r\nab\r\n", b"2\r\ncd\r\n", None]

    request = _request(version="HTTP/1.0")
    source = Response(iter([b"ab"])).encode(request)
    assert b"Transfer-Encoding" not in source.head and b"Connection: close\r\n" in source.head
    assert source.keep_alive is False and request.keep_alive is False
    assert source.next_piece() == b"ab"


def test_response_stream_head_request_sends_only_the_head() -> None:
    out = Response(iter([b"never"])).encode(_request("HEAD"))
    assert isinstance(out, bytes) and out.endswith(b"\r\n\r\n") and b"never" not in out
    assert b"Transfer-Encoding: chunked\r\n" in out


def test_response_framing_headers_from_the_app_are_replaced() -> None:
    out = Response(b"abc", headers={"Content-Length": "99", "Transfer-Encoding": "chunked"}).encode(_request())
    assert isinstance(out, bytes)
    _, fields = head_fields(out.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    assert fields["content-length"] == "3"
    assert "transfer-encoding" not in fields


def test_response_connection_close_from_the_app_closes() -> None:
    request = _request()
    out = Response(b"abc", headers={"Connection": "close"}).encode(request)
    assert isinstance(out, bytes) and b"Connection: close\r\n" in out
    assert request.keep_alive is False


# -- input trickled in tiny reads costs linear time ---------------------------------


def _trickle(parser: RequestParser, data: bytes) -> list[Request]:
    out: list[Request] = []
    for i in range(len(data)):
        out.extend(parser.receive(data[i:i + 1]))
    return out


def test_large_head_trickled_byte_by_byte_is_linear_time() -> None:
    # 60 KB of header fields, one byte per read: quadratic rescanning took ~10 s here.
    fields = "|".join(f"X-{i}: " + "v" * 600 for i in range(99))
    data = req(f"GET / HTTP/1.1|Host: h|{fields}")
    started = time.perf_counter()
    [request] = _trickle(RequestParser(), data)
    assert time.perf_counter() - started < 3.0
    assert len(request.headers) == 100


def test_trailer_trickled_byte_by_byte_is_bounded() -> None:
    parser = RequestParser()
    parser.receive(_chunks(b"0\r\n"))
    started = time.perf_counter()
    _trickle(parser, b"X-T: " + b"a" * 60000)
    assert time.perf_counter() - started < 3.0
    assert parser.error is not None and parser.error.status == 431


def test_trailer_section_total_is_limited_431() -> None:
    assert rejected(_chunks(b"0\r\n" + b"X-T: a\r\n" * 10000 + b"\r\n")) == 431
    [r], status = parse_every_way(_chunks(b"0\r\n" + b"X-T: a\r\n" * 100 + b"\r\n"))
    assert status is None


def test_head_split_across_reads_at_every_crlf_boundary() -> None:
    data = req("GET / HTTP/1.1|Host: h|X-A: 1") + req("GET /2 HTTP/1.1|Host: h")
    for cut in range(1, len(data)):
        parser = RequestParser()
        got = parser.receive(data[:cut]) + parser.receive(data[cut:])
        assert [r.target for r in got] == ["/", "/2"], cut
        assert parser.error is None


def test_many_tiny_chunks_do_not_multiply_memory() -> None:
    # 50,000 two-byte chunks: a list of pieces held ~40 bytes per chunk (2 MB for a 100 KB body).
    parser = RequestParser()
    parser.receive(_chunks(b""))
    tracemalloc.start()
    try:
        piece = b"2\r\nab\r\n" * 10_000
        for _ in range(5):
            assert parser.receive(piece) == []
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1_000_000, held
    [request] = parser.receive(b"0\r\n\r\n")
    assert request.body == b"ab" * 50_000
    assert type(request.body) is bytes
