"""The response wire format (``microweb/http/encode.py``): status lines, Connection, framing, fast paths,
the server's own error answers."""
from __future__ import annotations

from typing import Iterator

import pytest

from microweb.http import encode
from microweb.http.encode import (
    CONTINUE_RESPONSE, LAST_CHUNK, connection_line, encode_block_head, encode_chunk, encode_head,
    encode_simple_head, error_response, internal_error_response, reason_phrase, refresh_date, status_line,
)
from microweb.http.parser import ProtocolError

# RFC 9110 5.6.7's example date.
FIXED = 784111777
FIXED_DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"
SERVER_DATE = b"Server: microweb\r\nDate: " + FIXED_DATE + b"\r\n"


@pytest.fixture(autouse=True)
def fixed_date() -> Iterator[None]:
    """Heads carry a fixed Date (so two heads built a moment apart compare equal); restored afterwards."""
    refresh_date(FIXED)
    yield
    refresh_date()


def split_head(head: bytes) -> tuple[bytes, list[bytes]]:
    assert head.endswith(b"\r\n\r\n"), head
    status, *lines = head[:-4].split(b"\r\n")
    return status, lines


# -- Connection ---------------------------------------------------------------------------


@pytest.mark.parametrize("keep_alive, http11, line", [
    (True, True, b""),
    (True, False, b"Connection: keep-alive\r\n"),
    (False, True, b"Connection: close\r\n"),
    (False, False, b"Connection: close\r\n"),
])
def test_connection_line(keep_alive: bool, http11: bool, line: bytes) -> None:
    assert connection_line(keep_alive, http11) == line


# -- status lines ---------------------------------------------------------------------------


def test_status_line() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(404) == b"HTTP/1.1 404 Not Found\r\n"
    assert status_line(413) == b"HTTP/1.1 413 Content Too Large\r\n"  # RFC 9110's name
    assert status_line(422) == b"HTTP/1.1 422 Unprocessable Content\r\n"
    assert status_line(100) == b"HTTP/1.1 100 Continue\r\n"


def test_status_line_range() -> None:
    assert status_line(999) == b"HTTP/1.1 999 Unknown\r\n"
    assert status_line(599) == b"HTTP/1.1 599 Unknown\r\n"
    for bad in (1000, 99, 0, -200):
        with pytest.raises(ValueError):
            status_line(bad)


def test_reason_phrase() -> None:
    assert reason_phrase(431) == "Request Header Fields Too Large"
    assert reason_phrase(799) == "Unknown"


def test_constants() -> None:
    assert CONTINUE_RESPONSE == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"


# -- Date --------------------------------------------------------------------------------


def test_refresh_date_sets_the_date_line() -> None:
    head = encode_head(200, [], 0, True)
    assert SERVER_DATE in head
    refresh_date(FIXED + 86400)
    assert b"Date: Mon, 07 Nov 1994 08:49:37 GMT\r\n" in encode_head(200, [], 0, True)


def test_simple_heads_kept_for_a_second_carry_the_new_date_after_it() -> None:
    first = encode_simple_head(200, b"text/plain", 5, True, True)
    assert SERVER_DATE in first and encode_simple_head(200, b"text/plain", 5, True, True) is first
    refresh_date(FIXED + 1)
    later = encode_simple_head(200, b"text/plain", 5, True, True)
    assert b"Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n" in later
    # Every argument is part of what is kept: none answers for another.
    assert encode_simple_head(200, b"text/plain", 6, True, True) != later
    assert encode_simple_head(200, b"text/html", 5, True, True) != later
    assert encode_simple_head(201, b"text/plain", 5, True, True) != later
    assert encode_simple_head(200, b"text/plain", 5, False, True).endswith(b"Connection: close\r\n\r\n")
    assert encode_simple_head(200, b"text/plain", 5, True, False).endswith(b"Connection: keep-alive\r\n\r\n")


def test_simple_heads_kept_are_bounded() -> None:
    for length in range(3 * encode._SIMPLE_HEADS_MAX):
        assert encode_simple_head(200, b"a/b", length, True, True).endswith(b"Content-Length: %d\r\n\r\n" % length)
    assert len(encode._simple_heads) <= encode._SIMPLE_HEADS_MAX


# -- encode_head ---------------------------------------------------------------------------


def test_encode_head_with_content_length() -> None:
    head = encode_head(200, [("Content-Type", "text/plain"), ("X-A", "1")], 5, True)
    assert head == (b"HTTP/1.1 200 OK\r\n" + SERVER_DATE + b"Content-Type: text/plain\r\nX-A: 1\r\n"
                    b"Content-Length: 5\r\n\r\n")


def test_encode_head_no_headers() -> None:
    assert encode_head(404, [], 0, False) == (b"HTTP/1.1 404 Not Found\r\n" + SERVER_DATE +
                                                b"Content-Length: 0\r\nConnection: close\r\n\r\n")


def test_encode_head_accepts_any_iterable_of_headers() -> None:
    pairs = [("A", "1"), ("B", "2")]
    assert encode_head(200, (p for p in pairs), 1, True) == encode_head(200, pairs, 1, True)
    assert encode_head(200, tuple(pairs), 1, True) == encode_head(200, pairs, 1, True)


@pytest.mark.parametrize("status", [204, 304, 100, 101, 103])
def test_no_framing_for_204_304_and_1xx(status: int) -> None:
    for length in (None, 0, 10):
        head = encode_head(status, [("X-A", "1")], length, True)
        lowered = head.lower()
        assert b"content-length" not in lowered, (status, length)
        assert b"transfer-encoding" not in lowered, (status, length)
        assert head.startswith(status_line(status))


def test_streamed_http11_is_chunked() -> None:
    head = encode_head(200, [("Content-Type", "text/plain")], None, True, True)
    _, lines = split_head(head)
    assert b"Transfer-Encoding: chunked" in lines
    assert not any(line.lower().startswith(b"content-length") for line in lines)
    assert not any(line.lower().startswith(b"connection") for line in lines)


def test_streamed_http10_is_delimited_by_close() -> None:
    head = encode_head(200, [("Content-Type", "text/plain")], None, False, False)
    _, lines = split_head(head)
    assert b"Connection: close" in lines
    assert not any(line.lower().startswith((b"content-length", b"transfer-encoding")) for line in lines)


def test_http10_keep_alive_with_length() -> None:
    head = encode_head(200, [], 3, True, False)
    _, lines = split_head(head)
    assert lines[-2:] == [b"Content-Length: 3", b"Connection: keep-alive"]
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")  # a server answers with its own version


def test_values_are_latin1_on_the_wire() -> None:
    head = encode_head(200, [("X-Name", "caf\u00e9")], 0, True)
    assert b"X-Name: caf\xe9\r\n" in head
    with pytest.raises(ValueError):  # UnicodeEncodeError is a ValueError
        encode_head(200, [("X-Name", "\u20ac")], 0, True)


@pytest.mark.parametrize("name, value", [
    ("X-A", "a\r\nSet-Cookie: evil=1"),
    ("X-A", "a\rb"),
    ("X-A", "a\nb"),
    ("X-A", "a\x00b"),
    ("X-A\r\nX-B", "v"),
    ("X\nA", "v"),
    ("X\x00A", "v"),
    ("X-A", "\r\n"),
])
def test_cr_lf_nul_in_a_header_raise(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        encode_head(200, [(name, value)], 0, True)
    # also when it is not the only or the first header
    with pytest.raises(ValueError):
        encode_head(200, [("Content-Type", "text/plain"), (name, value), ("X-Z", "z")], 0, True)


def test_cr_lf_split_across_headers_raises() -> None:
    with pytest.raises(ValueError):
        encode_head(200, [("X-A", "a\r"), ("\nX-B", "b")], 0, True)


@pytest.mark.parametrize("name", ["", "X A", "X:A", ":"])
def test_invalid_header_names_raise(name: str) -> None:
    with pytest.raises(ValueError):
        encode_head(200, [(name, "v")], 0, True)


def test_a_generator_of_headers_is_checked_too() -> None:
    with pytest.raises(ValueError):
        encode_head(200, ((n, v) for n, v in [("X-A", "1"), ("Bad Name", "2")]), 0, True)


# -- the fast paths produce the same bytes --------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 404, 500])
@pytest.mark.parametrize("keep_alive, http11", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("length", [0, 5, 123456])
def test_encode_simple_head_equals_encode_head(status: int, keep_alive: bool, http11: bool, length: int) -> None:
    expected = encode_head(status, [("Content-Type", "text/html; charset=utf-8")], length, keep_alive, http11)
    assert encode_simple_head(status, b"text/html; charset=utf-8", length, keep_alive, http11) == expected


@pytest.mark.parametrize("keep_alive, http11", [(True, True), (True, False), (False, True), (False, False)])
def test_encode_block_head_equals_encode_head(keep_alive: bool, http11: bool) -> None:
    headers = [("Content-Type", "text/css"), ("ETag", '"abc"'), ("Last-Modified", FIXED_DATE.decode())]
    expected = encode_head(200, headers, 42, keep_alive, http11)
    block = b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in headers) + b"Content-Length: 42\r\n"
    assert encode_block_head(200, block, keep_alive, http11) == expected
    assert encode_block_head(200, block, keep_alive, http11, b"body") == expected + b"body"


def test_fast_paths_for_a_status_not_yet_cached() -> None:
    encode._STATUS_LINES.pop(299, None)
    assert encode_simple_head(299, b"a/b", 1, True, True).startswith(b"HTTP/1.1 299 Unknown\r\n")
    encode._STATUS_LINES.pop(298, None)
    assert encode_block_head(298, b"", True, True).startswith(b"HTTP/1.1 298 Unknown\r\n")
    with pytest.raises(ValueError):
        encode_simple_head(1000, b"a/b", 1, True, True)


# -- chunks ------------------------------------------------------------------------------


def test_encode_chunk() -> None:
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_chunk(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"
    assert encode_chunk(b"") == b""  # never the last chunk by accident


# -- the server's own answers -------------------------------------------------------------


def test_error_response_431() -> None:
    response = error_response(431, "x")
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"Content-Type: text/plain; charset=utf-8" in lines
    assert b"Connection: close" in lines
    assert body == b"431 Request Header Fields Too Large: x\n"
    assert f"Content-Length: {len(body)}".encode() in lines
    assert b"Date: " + FIXED_DATE in lines


def test_error_response_utf8_message() -> None:
    response = error_response(400, "caf\u00e9")
    head, _, body = response.partition(b"\r\n\r\n")
    assert body == "400 Bad Request: caf\u00e9\n".encode("utf-8")
    assert f"Content-Length: {len(body)}\r\n".encode() in head + b"\r\n"


def test_internal_error_response() -> None:
    full = internal_error_response()
    head, _, body = full.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert body == b"500 Internal Server Error\n"
    assert f"Content-Length: {len(body)}".encode() in head.split(b"\r\n")
    assert b"Connection: close" in head.split(b"\r\n")


def test_internal_error_response_head_only() -> None:
    full = internal_error_response()
    head_only = internal_error_response(head_only=True)
    assert head_only.endswith(b"\r\n\r\n")
    assert full.startswith(head_only)
    assert full[len(head_only):] == b"500 Internal Server Error\n"
    assert b"Content-Length: 26\r\n" in head_only  # the length of the body a GET would get


def test_internal_error_response_http10_closes() -> None:
    assert b"Connection: close\r\n" in internal_error_response(http11=False)


def test_protocol_error_response_equals_error_response() -> None:
    error = ProtocolError(400, "m")
    assert error.status == 400 and error.message == "m" and str(error) == "m"
    assert error.response() == error_response(400, "m")
    assert error.response().startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert error.response().endswith(b"\r\n\r\n400 Bad Request: m\n")


def test_custom_reason_phrase() -> None:
    """A WSGI application's own reason phrase (issue 15), checked so it cannot split the head."""
    from microweb.http.encode import custom_status_line, encode_head, is_reason_phrase

    assert custom_status_line(299, "Everything Fine") == b"HTTP/1.1 299 Everything Fine\r\n"
    assert custom_status_line(302, "FOUND") == b"HTTP/1.1 302 FOUND\r\n"
    assert custom_status_line(200, "caf\xe9\tok") == b"HTTP/1.1 200 caf\xe9\tok\r\n"  # obs-text and HTAB
    assert encode_head(299, [], 0, True, True, "Fine").startswith(b"HTTP/1.1 299 Fine\r\n")
    for bad in ("a\r\nX: y", "a\nb", "a\x00", "a\x7f", "\x01", "\u0100"):
        assert not is_reason_phrase(bad)
        with pytest.raises(ValueError):
            custom_status_line(200, bad)
