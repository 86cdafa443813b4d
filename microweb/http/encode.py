"""Responses to bytes: the one home of every rule of the response wire format.

The status line (from a cache), the ``Server``/``Date`` lines (refreshed at most
once a second by ``refresh_date``, which the server calls from its one-second
tick), the ``Connection`` rule, message framing (``Content-Length`` or chunked, or
none for 1xx/204/304), chunks, and the plain-text answers a server gives on its
own (a request the parser refused, an application that failed). Header names and
values are checked for CR, LF and NUL, so no application value can split a
response. Fast paths (``encode_simple_head``, ``encode_block_head``) are built
from the same pieces as ``encode_head``.
"""
from __future__ import annotations

import time
from http import HTTPStatus
from typing import Iterable

from .values import http_date

__all__ = [
    "reason_phrase", "status_line", "custom_status_line", "is_reason_phrase", "refresh_date", "DATE", "HEAD_ENDS",
    "END_CLOSE", "END_PERSISTENT_10", "END_PERSISTENT_11", "head_end", "connection_line", "encode_head",
    "encode_simple_head", "encode_block_head", "encode_chunk", "error_response", "internal_error_response",
    "LAST_CHUNK", "CONTINUE_RESPONSE",
]

CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

_REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}
_REASONS[413] = "Content Too Large"
_REASONS[422] = "Unprocessable Content"


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Unknown")


_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n`` (cached per status)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ValueError(f"invalid status code {status!r}")
        line = f"HTTP/1.1 {status} {reason_phrase(status)}\r\n".encode("ascii")
        _STATUS_LINES[status] = line
    return line


def custom_status_line(status: int, reason: str) -> bytes:
    """``HTTP/1.1 299 Everything Fine\r\n``: a status line with the application's own reason phrase.

    RFC 9112 4: ``reason-phrase = *( HTAB / SP / VCHAR / obs-text )``; anything else
    (CR, LF, NUL, other controls) is a ``ValueError``, so a reason cannot split the head.
    """
    if not 100 <= status <= 999:
        raise ValueError(f"invalid status code {status!r}")
    if not is_reason_phrase(reason):
        raise ValueError(f"invalid reason phrase {reason!r}")
    return b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1"))


def is_reason_phrase(reason: str) -> bool:
    """Whether ``reason`` fits RFC 9112's reason-phrase (tab, space, visible ASCII, obs-text)."""
    return all(ch == "\t" or " " <= ch <= "~" or "\x80" <= ch <= "\xff" for ch in reason)


class DateLines:
    """The current ``Server`` and ``Date`` lines, for fast paths elsewhere that join a head from
    ready pieces (``DATE.lines``); ``refresh_date`` is the one place they are written."""

    __slots__ = ("lines", "second")

    def __init__(self) -> None:
        self.lines = b""
        self.second = 0


DATE = DateLines()
_date_lines = b""  # the same bytes as DATE.lines, read as a global by the functions below
# encode_simple_head's answers for the current second: (status, content type, length, keep-alive,
# HTTP/1.1) -> head. A new dict each second (refresh_date), bounded by _SIMPLE_HEADS_MAX.
_simple_heads: dict[tuple[int, bytes, int, bool, bool], bytes] = {}
_SIMPLE_HEADS_MAX = 512


def refresh_date(now: float | None = None) -> None:
    """Recompute the cached ``Server`` and ``Date`` lines (call about once a second)."""
    global _date_lines, _simple_heads
    if now is None:
        now = time.time()
    second = int(now)
    if second != DATE.second:
        DATE.second = second
        DATE.lines = _date_lines = b"Server: microweb\r\nDate: " + http_date(second).encode("ascii") + b"\r\n"
        # Replaced after the date: a thread that reads the new dict also reads the new date.
        _simple_heads = {}


refresh_date()

# The Connection field a response needs (RFC 9112 9.3), indexed by keep_alive + 2 * http11:
# ``close`` when the connection ends, none for a persistent HTTP/1.1 connection, and
# ``keep-alive`` for a persistent HTTP/1.0 one. A tuple index: the hot paths read it inline.
_CONNECTION_LINES = (b"Connection: close\r\n", b"Connection: keep-alive\r\n", b"Connection: close\r\n", b"")


#: The same, with the CRLF that ends the head: what follows the last field of a head. Hot paths
#: pick one with branches, which CPython runs faster than the index arithmetic:
#: ``(END_PERSISTENT_11 if http11 else END_PERSISTENT_10) if keep_alive else END_CLOSE``.
HEAD_ENDS = tuple(line + b"\r\n" for line in _CONNECTION_LINES)
END_CLOSE, END_PERSISTENT_10, _, END_PERSISTENT_11 = HEAD_ENDS


def head_end(keep_alive: bool, http11: bool) -> bytes:
    """The end of a head: its ``Connection`` line (if any) and the empty line (``HEAD_ENDS``)."""
    return (END_PERSISTENT_11 if http11 else END_PERSISTENT_10) if keep_alive else END_CLOSE


def connection_line(keep_alive: bool, http11: bool) -> bytes:
    """The ``Connection`` field line a response needs (empty for persistent HTTP/1.1)."""
    return _CONNECTION_LINES[keep_alive + 2 * http11]


_NO_BODY_STATUSES = frozenset({204, 304})


def _check_header_text(text: str, separators: int) -> None:
    if text.count("\r") != separators or text.count("\n") != separators or "\x00" in text:
        raise ValueError("header name or value contains CR, LF or NUL")


def encode_head(
    status: int,
    headers: Iterable[tuple[str, str]],
    content_length: int | None,
    keep_alive: bool,
    http11: bool = True,
    reason: str | None = None,
) -> bytes:
    """Serialize a response head.

    ``content_length`` None means the body is streamed: chunked for HTTP/1.1,
    delimited by closing the connection for HTTP/1.0 (``keep_alive`` must then be
    False). For 1xx, 204 and 304 no framing header is written. ``reason`` replaces
    the standard reason phrase (a WSGI application's own, see ``custom_status_line``).
    Raises ``ValueError`` if a header name or value would split the response.
    """
    if type(headers) is not list:
        headers = list(headers)  # walked twice below: a generator would skip the name check
    lines = [f"{name}: {value}" for name, value in headers]
    if lines:
        text = "\r\n".join(lines)
        _check_header_text(text, len(lines) - 1)
        for name, _ in headers:
            if not name or ":" in name or " " in name:
                raise ValueError(f"invalid header name {name!r}")
        extra = text.encode("latin-1") + b"\r\n"
    else:
        extra = b""
    if status in _NO_BODY_STATUSES or status < 200:
        framing = b""
    elif content_length is None:
        framing = b"Transfer-Encoding: chunked\r\n" if http11 else b""
    else:
        framing = b"Content-Length: %d\r\n" % content_length
    first = status_line(status) if reason is None else custom_status_line(status, reason)
    return b"".join((first, _date_lines, extra, framing,
                     (END_PERSISTENT_11 if http11 else END_PERSISTENT_10) if keep_alive else END_CLOSE))


def encode_simple_head(status: int, content_type: bytes, content_length: int, keep_alive: bool, http11: bool) -> bytes:
    """The head of a response that has only a content type and a length (the hot path).

    A server sends the same few heads over and over within a second (one per content type and
    length), so they are kept until the ``Date`` line changes: a dict lookup, not a format.
    """
    heads = _simple_heads
    key = (status, content_type, content_length, keep_alive, http11)
    head = heads.get(key)
    if head is None:
        head = b"%s%sContent-Type: %s\r\nContent-Length: %d\r\n%s" % (
            _STATUS_LINES.get(status) or status_line(status), _date_lines, content_type, content_length,
            (END_PERSISTENT_11 if http11 else END_PERSISTENT_10) if keep_alive else END_CLOSE,
        )
        if len(heads) >= _SIMPLE_HEADS_MAX:
            heads.clear()
        heads[key] = head
    return head


def encode_block_head(status: int, block: bytes, keep_alive: bool, http11: bool, body: bytes = b"") -> bytes:
    """A head from a header block already encoded and checked (``Name: value\\r\\n`` lines, framing
    included), followed by ``body``: what a cache of ready-made heads (static files) sends."""
    return b"".join((_STATUS_LINES.get(status) or status_line(status), _date_lines, block,
                     (END_PERSISTENT_11 if http11 else END_PERSISTENT_10) if keep_alive else END_CLOSE, body))


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (empty data gives nothing: use LAST_CHUNK to end)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


_PLAIN_TEXT = b"text/plain; charset=utf-8"


def error_response(status: int, message: str) -> bytes:
    """The server's own answer to a request it refused (``ProtocolError``): plain text, then close."""
    body = f"{status} {reason_phrase(status)}: {message}\n".encode("utf-8")
    return encode_simple_head(status, _PLAIN_TEXT, len(body), False, True) + body


_INTERNAL_ERROR_BODY = b"500 Internal Server Error\n"


def internal_error_response(head_only: bool = False, http11: bool = True) -> bytes:
    """The plain 500 sent when the application (or its error handling) failed; the connection closes."""
    head = encode_simple_head(500, _PLAIN_TEXT, len(_INTERNAL_ERROR_BODY), False, http11)
    return head if head_only else head + _INTERNAL_ERROR_BODY
