"""Sans-IO HTTP/1.1: bytes in, requests out; responses in, bytes out.

Theory of operation
-------------------
This module never touches a socket. The reactor hands every chunk it reads to
``RequestParser.receive(data)``, which returns the list of requests completed
by that chunk (zero, one, or many when the client pipelines) and keeps any
partial input for the next call. Feeding the same bytes whole, line by line,
byte by byte or in random splits yields the same requests.

A parser is in one of four states:

``HEAD``      waiting for a complete request head (request line + fields + CRLF CRLF)
``BODY``      reading a body framed by ``Content-Length`` (``_remaining`` bytes to go)
``CHUNKED``   reading a ``Transfer-Encoding: chunked`` body (sub-state ``_chunk_state``)
``UPGRADE``   after a request asking to switch protocols (``Connection: upgrade`` with an
              ``Upgrade`` field, HTTP/1.1, no body): the bytes after it are held unparsed,
              since they may be another protocol's, until the server calls ``resume()``
              (the upgrade was declined: they are parsed as HTTP) or ``detach()`` (the
              connection switched: they are the new protocol's first bytes)
``CLOSED``    after an error or a request that ends the connection: input is ignored

Bodies are read whole before the request is handed out, so a handler that ignores
the body can never leave stray bytes that would be read as the next request. Where
they go is decided when the head is complete, before a byte of the body is read:

- without ``open_body`` (``Limits.open_body`` is None: the test transport, a bare
  parser) the body is collected as a list of pieces and joined once, up to
  ``max_body_size`` (over it: 413);
- with it, ``open_body(request, length)`` (``length`` -1 for chunked) is called once
  per body. It routes the request and either refuses it, raising a ``ProtocolError``
  (``http/admission.py``'s ``BodyRefused`` carries the application's rendered 404,
  405 or 413), or returns a sink (``BodySink``) that takes the pieces as they arrive:
  ``write(piece)`` per piece, ``finish(request)`` at the end, ``discard()`` if the
  body never completes. A chunked body over ``sink.limit`` is refused by
  ``sink.refuse(413, ...)``. The 100 Continue is only offered once a sink is open.

Parsing is strict, following RFC 9112: anything a strict parser would reject
raises ``ProtocolError`` carrying the status to answer with (400, 413, 414, 431,
501, 505) and the connection is closed after that answer. Ambiguous framing is
never guessed at: non-digit or conflicting ``Content-Length``, ``Content-Length``
with ``Transfer-Encoding``, any coding but a single final ``chunked``, bad chunk
sizes, chunk lines outside the grammar (whitespace not followed by an extension,
extensions that are not ``token [= token / quoted-string]``), obs-fold, bare CR or
LF, NUL and other controls, whitespace before the colon, a field line longer than
``max_field_line``, a missing or repeated ``Host`` in HTTP/1.1. A request target
must be one of the four forms: origin-form (``/path?query``), absolute-form
(``http[s]://authority/...``), authority-form (``host:port``, CONNECT only) or
``*`` (OPTIONS only); only the first is common, and it costs one character test.
Requests completed before the bad one are still returned; the error is then kept
in ``parser.error`` and the parser closes.

``docs/conformance.md`` compares these verdicts with h11's and llhttp's, class by
class, as found by ``tests/http/test_differential.py``.

The hot path is one ``bytes.find`` for the end of the head, one ``split`` of the
request line, and, when the field block is byte-for-byte the one the previous
request on this connection sent (what browsers and load generators do), the
already-validated ``HeaderBlock`` is reused without re-parsing a single field.

The parser builds each request with the class it is given (``request_class``,
``HTTPRequest`` by default; the framework passes its ``Request``), so this layer
never imports the framework. Responses go the other way, through ``encode.py``.
"""
from __future__ import annotations

import enum
import re
from typing import Any, Callable

from .datastructures import Headers
from .encode import CONTINUE_RESPONSE, error_response
from .request import HTTPRequest
from .values import FORWARDING_FIELDS, is_valid_host

__all__ = ["ProtocolError", "RequestParser", "HeaderBlock", "Limits", "ParserState", "DEFAULT_LIMITS"]


class ProtocolError(Exception):
    """Input no strict HTTP/1.1 parser accepts; ``status`` is what to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> bytes:
        """The answer a server sends for this error (plain text; the connection closes after it)."""
        return error_response(self.status, self.message)


class Limits:
    """Size limits enforced while parsing (defaults as documented in the README)."""

    __slots__ = ("max_request_line", "max_header_size", "max_header_count", "max_body_size", "max_field_line",
                 "shared_blocks", "open_body")

    def __init__(
        self,
        max_request_line: int = 8192,
        max_header_size: int = 65536,
        max_header_count: int = 100,
        max_body_size: int = 16 * 1024 * 1024,
        max_field_line: int = 8192,
    ) -> None:
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        self.max_body_size = max_body_size
        # One field line (name, colon, value), in the head or the trailers: like nginx's
        # large_client_header_buffers, a cap per line below the cap on the whole section.
        self.max_field_line = max_field_line
        self.shared_blocks: dict[tuple[bytes, bool], HeaderBlock] = {}
        # ``open_body(request, length) -> BodySink`` for every parser with these limits (the
        # server's admission: see the Theory of operation); None: bodies collected in memory.
        self.open_body: Callable[[HTTPRequest, int], Any] | None = None


DEFAULT_LIMITS = Limits()

class ParserState(enum.IntEnum):
    """Where a parser is in the request it reads (see the Theory of operation)."""

    HEAD = 0
    BODY = 1
    CHUNKED = 2
    UPGRADE = 3
    CLOSED = 4


class ChunkState(enum.IntEnum):
    """Where a ``CHUNKED`` parser is inside the chunked body."""

    SIZE = 0  # the chunk-size line
    DATA = 1  # chunk data
    DATA_END = 2  # the CRLF after chunk data
    TRAILERS = 3  # the trailer section after the last chunk


# Module-level names for the hot path, as plain ints: CPython specializes comparisons of exact
# ints, not of IntEnum members. ``ParserState(parser.state)`` names a state.
HEAD, BODY, CHUNKED, UPGRADE, CLOSED = map(int, ParserState)
_SIZE, _DATA, _DATA_END, _TRAILERS = map(int, ChunkState)

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_FIELD_LINE = re.compile(
    rb"(" + _TOKEN + rb"):[ \t]*((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*"
)
_METHOD = re.compile(_TOKEN)
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
# RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
# a name is a token, a value a token or a quoted-string. Whitespace is allowed only
# before a ";" or around "=": "5 \r\n" is refused (front ends disagree on it).
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_EXT = rb"[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED_STRING + rb"))?"
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:" + _CHUNK_EXT + rb")*")
_CHUNK_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

# The request-target forms other than origin-form (RFC 9112 3.2). Origin-form is any
# visible ASCII starting with "/" (checked inline on the hot path).
_HOST_PART = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)"
_AUTHORITY_FORM = re.compile(_HOST_PART + r":[0-9]{1,5}")
# absolute-form: http or https, a non-empty host (RFC 9110 4.2.1), no userinfo (4.2.4).
_ABSOLUTE_FORM = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://" + _HOST_PART + r"(?::[0-9]*)?(?:[/?].*)?", re.S)

_NO_PARTS: list[bytes] = []  # shared placeholder while no body is being read (never appended to)


class HeaderBlock:
    """The validated field section of a request head, with its framing facts.

    Immutable once built, so a connection may hand the same block to every
    request that sends identical fields.
    """

    __slots__ = ("headers", "content_length", "chunked", "has_body", "keep_alive", "expect_continue", "raw",
                 "forwarded", "ends_http")

    def __init__(
        self,
        headers: Headers,
        content_length: int,
        chunked: bool,
        connection: str,
        expect_continue: bool,
        is_http11: bool = True,
    ) -> None:
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        self.has_body = chunked or content_length > 0
        self.keep_alive = _wants_keep_alive(connection, is_http11)
        self.expect_continue = expect_continue
        self.raw: bytes | None = None  # the field block, when this is shared between connections
        # Whether a reverse proxy's forwarding fields are present (only trusted peers' are applied).
        self.forwarded = any(name in headers for name in FORWARDING_FIELDS)
        # Whether HTTP parsing stops after a request with these fields: it closes the
        # connection, or asks to switch protocols (RFC 9110 7.8: HTTP/1.1 only, and not
        # with a body, whose end would be ambiguous). One check on the hot path covers both.
        self.ends_http = not self.keep_alive or (
            is_http11 and not self.has_body and "upgrade" in _split_tokens(connection) and "upgrade" in headers)


def parse_header_block(block: bytes, is_http11: bool, limits: Limits) -> HeaderBlock:
    """Validate and parse the field lines between the request line and CRLF CRLF."""
    items: list[tuple[str, str]] = []
    if block:
        lines = block.split(b"\r\n")
        if len(lines) > limits.max_header_count:
            raise ProtocolError(431, "Too many header fields")
        cap = limits.max_field_line
        if len(block) > cap:  # a block within the cap has no line over it: one comparison for most
            for line in lines:
                if len(line) > cap:
                    raise ProtocolError(431, "Header field line too long")
        match = _FIELD_LINE.fullmatch
        for line in lines:
            m = match(line)
            if m is None:
                if line[:1] in (b" ", b"\t"):
                    raise ProtocolError(400, "Obsolete line folding is not allowed")
                raise ProtocolError(400, "Invalid header line")
            items.append((m.group(1).decode("ascii"), m.group(2).decode("latin-1")))
    headers = Headers(items)
    content_length = 0
    chunked = False
    expect_continue = False
    lookup = headers.getlist
    lengths = lookup("content-length")
    codings = lookup("transfer-encoding")
    if codings:
        if not is_http11:
            raise ProtocolError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
        if lengths:
            raise ProtocolError(400, "Both Content-Length and Transfer-Encoding")
        names = [c.strip().lower() for v in codings for c in v.split(",")]
        if names[-1] != "chunked":
            raise ProtocolError(400, "The final transfer coding must be chunked")
        if len(names) != 1:
            if all(names) and names.count("chunked") == 1:
                raise ProtocolError(501, "Unsupported transfer coding")
            raise ProtocolError(400, "Invalid Transfer-Encoding")
        chunked = True
    elif lengths:
        content_length = _content_length(lengths[0])
        for value in lengths[1:]:
            if _content_length(value) != content_length:
                raise ProtocolError(400, "Conflicting Content-Length values")
    hosts = lookup("host")
    if hosts:
        if len(hosts) > 1:
            raise ProtocolError(400, "More than one Host header")
        if not is_valid_host(hosts[0]):
            raise ProtocolError(400, "Invalid Host header")
    elif is_http11:
        raise ProtocolError(400, "Missing Host header")
    connection = ",".join(lookup("connection")).lower()
    expect = headers.get("expect")
    if expect:  # an empty Expect (an empty list, RFC 9110 5.6.1) expects nothing
        if expect.lower() != "100-continue":
            raise ProtocolError(417, "Unsupported expectation")
        expect_continue = is_http11
    return HeaderBlock(headers, content_length, chunked, connection, expect_continue, is_http11)


def _content_length(value: str) -> int:
    """A Content-Length value as an int: plain ASCII digits only."""
    if not value.isdigit() or not value.isascii():
        raise ProtocolError(400, "Invalid Content-Length")
    if len(value) > 18:
        # int() refuses more than 4300 digits (ValueError, not a ProtocolError) and any
        # length of 19+ significant digits is far beyond every body limit anyway.
        value = value.lstrip("0") or "0"
        if len(value) > 18:
            raise ProtocolError(413, "Request body too large")
    return int(value)


def _split_tokens(value: str) -> list[str]:
    return [t.strip() for t in value.split(",")]


def _wants_keep_alive(connection: str, is_http11: bool) -> bool:
    if not connection:
        return is_http11
    tokens = [t.strip() for t in connection.split(",")]
    if "close" in tokens:
        return False
    return is_http11 or "keep-alive" in tokens


# ``Limits.shared_blocks`` holds validated header blocks shared by all the parsers
# that use those limits, keyed by (raw bytes, is HTTP/1.1): clients send the same
# fields again and again, so most requests skip field parsing, and 10,000 idle
# connections that sent the same fields hold one parsed copy, not 10,000. It lives
# on the Limits because a block is valid only under the limits it was checked with.
# Bounded: only small blocks, and cleared when full.
_SHARED_BLOCKS_MAX = 512
_SHARED_BLOCK_MAX_SIZE = 2048


class RequestParser:
    """Per-connection request parser: ``receive(data) -> [Request, ...]``."""

    __slots__ = (
        "state", "has_partial_input", "error", "interim", "limits", "remote_addr", "scheme", "proxies",
        "request_class",
        "_buffer", "_last_line", "_last_request", "_last_block", "_last_http11", "_last_parsed", "_pending",
        "_remaining",
        "_body_parts", "_body_size", "_chunk_state", "_chunk_body", "_sink", "_body_limit",
    )

    def __init__(self, limits: Limits = DEFAULT_LIMITS, remote_addr: str = "", scheme: str = "http",
                 request_class: Callable[..., HTTPRequest] = HTTPRequest) -> None:
        self.state: int = HEAD  # a ParserState value
        # True while part of a request has arrived but not all of it (bytes held, or a body being
        # read, or an upgrade's bytes held); set wherever the buffer or the state changes.
        self.has_partial_input = False
        self.error: ProtocolError | None = None
        # Bytes the server must send before any response (``100 Continue``).
        self.interim = b""
        self.limits = limits
        self.remote_addr = remote_addr
        self.scheme = scheme
        # Builds each request: called as request_class(method, target, version, headers,
        # keep_alive, remote_addr, scheme), like HTTPRequest.
        self.request_class = request_class
        # For a connection from a trusted reverse proxy: an object whose ``apply(request)``
        # applies forwarding fields (see forwarded.py); None for everyone else.
        self.proxies: Any = None
        self._buffer: bytes | bytearray = b""
        self._last_line = b""  # never equal to a real request line (never empty)
        self._last_request: tuple[str, str, bool] = ("", "", True)
        self._last_block = b"\x00"  # never equal to a real (validated) block
        self._last_http11 = True
        self._last_parsed: HeaderBlock | None = None
        self._pending: HTTPRequest | None = None  # request whose body is being read
        self._remaining = 0
        self._body_parts: list[bytes] = _NO_PARTS
        # Small chunks of a chunked body are gathered here, not listed one by one: a list
        # entry costs ~40 bytes (2-byte chunks: 6x the bytes sent, 340 MB per 16 MB body).
        self._chunk_body = bytearray()
        self._body_size = 0
        self._chunk_state = _SIZE
        self._sink: Any = None  # the BodySink of the body being read, when limits.open_body made one
        self._body_limit = 0

    def resume(self) -> list[HTTPRequest]:
        """The server declined an upgrade: parse the held bytes as HTTP; the requests they complete."""
        if self.state != UPGRADE:
            return []
        self.state = HEAD
        self.has_partial_input = False
        held, self._buffer = self._buffer, b""
        return self.receive(bytes(held)) if held else []

    @property
    def body_sink(self) -> Any:
        """The sink of the body being read (None when there is none, or it is kept in memory)."""
        return self._sink

    def discard_body(self) -> None:
        """The connection is going away: drop a body still arriving (its sink's temporary file)."""
        sink = self._sink
        if sink is not None:
            self._sink = None
            self._pending = None
            sink.discard()

    def detach(self) -> bytes:
        """The connection switched protocols: the bytes held after the upgrade request. The parser closes."""
        held, self._buffer = self._buffer, b""
        self.state = CLOSED
        self.has_partial_input = False
        return bytes(held)

    def receive(self, data: bytes) -> list[HTTPRequest]:
        """Take ``data`` (``b""`` means EOF) and return the requests it completes."""
        requests: list[HTTPRequest] = []
        if self.state >= UPGRADE:
            if self.state == UPGRADE and data:
                self._buffer = self._buffer + data  # held until resume() or detach()
                limits = self.limits
                if len(self._buffer) > limits.max_header_size + limits.max_request_line:
                    # A client waits for the 101 before sending frames (RFC 6455 4.1): this is a flood.
                    self.error = ProtocolError(400, "Too much data after an upgrade request")
                    self.state = CLOSED
                    self._buffer = b""
                    self.has_partial_input = False
            return requests
        if not data:
            if self.has_partial_input and self.error is None:
                self.error = ProtocolError(400, "Connection closed before the request was complete")
            self.state = CLOSED
            self._buffer = b""
            self.has_partial_input = False
            if self._sink is not None:
                self.discard_body()
            return requests
        try:
            buffered = self._buffer
            buf: bytes
            if not buffered:
                buf = data
            elif self.state == HEAD:
                # A head arriving in pieces grows one bytearray, and only the new bytes are
                # searched and checked: a head trickled in byte by byte costs linear time.
                if type(buffered) is not bytearray:
                    buffered = self._buffer = bytearray(buffered)
                old = len(buffered)
                buffered += data
                if buffered.find(b"\r\n\r\n", old - 3 if old > 3 else 0) < 0:
                    self._check_partial_head(buffered, 0, old)
                    self.has_partial_input = True
                    return requests
                buf = bytes(buffered)
            else:
                buf = buffered + data  # type: ignore[assignment]  # only a partial head is a bytearray
            pos = 0
            while True:
                state = self.state
                if state == HEAD:
                    # A keep-alive client repeats its header fields: when this head's block is
                    # the previous head's, its end is known without searching the whole head.
                    # (A validated block has no empty line and neither starts nor ends with CR
                    # or LF, so the CRLF CRLF right after it is the first one in the head.)
                    line_end = buf.find(b"\r\n", pos)
                    last = self._last_block
                    end = line_end + 2 + len(last)
                    if not (line_end > pos and last and buf.startswith(last, line_end + 2)
                            and buf.startswith(b"\r\n\r\n", end)):
                        end = buf.find(b"\r\n\r\n", pos)
                        if end < 0:
                            self._check_partial_head(buf, pos, pos)
                            break
                        line_end = -1
                    pos = self._parse_head(buf, pos, line_end, end, requests)
                elif state == BODY:
                    pos = self._read_fixed_body(buf, pos, requests)
                    if self.state == BODY:
                        break
                elif state == CHUNKED:
                    pos = self._read_chunked_body(buf, pos, requests)
                    if self.state == CHUNKED:
                        break
                elif state == UPGRADE:
                    break  # the rest is held (see resume and detach)
                else:
                    pos = len(buf)
                    break
                if pos >= len(buf):
                    break
            self._buffer = buf[pos:] if pos < len(buf) else b""
        except ProtocolError as exc:
            self.error = exc
            self.state = CLOSED
            self._buffer = b""
            if self._sink is not None:
                self.discard_body()
        self.has_partial_input = bool(self._buffer) or HEAD < self.state < CLOSED
        return requests

    # -- head -------------------------------------------------------------

    def _check_partial_head(self, buf: bytes | bytearray, head: int, new: int) -> None:
        """Reject an incomplete head early when it is already too big or malformed.

        ``buf[head:]`` is the partial head; the bytes before ``new`` were checked by an
        earlier call, so only the rest is scanned for bare LFs.
        """
        size = len(buf) - head
        if not size:
            return
        limits = self.limits
        if size > limits.max_request_line and buf.find(b"\r\n", head, head + limits.max_request_line + 2) < 0:
            raise ProtocolError(414, "Request line too long")
        if size > limits.max_header_size + limits.max_request_line:
            raise ProtocolError(431, "Request header fields too large")
        if size > limits.max_field_line:
            last = buf.rfind(b"\r\n", head)  # the line being received starts after it
            if last >= 0 and len(buf) - last - 2 > limits.max_field_line:
                raise ProtocolError(431, "Header field line too long")
        # Look one byte back so a CRLF split across two reads is seen whole.
        start = new - 1 if new > head else head
        lf = buf.count(b"\n", start)
        if lf:
            if start < new and buf[start] == 10:
                lf -= 1  # an LF already checked by the previous call
            if lf != buf.count(b"\r\n", start):
                raise ProtocolError(400, "Bare LF in request head")

    def _parse_head(self, buf: bytes, pos: int, line_end: int, end: int, requests: list[HTTPRequest]) -> int:
        """Parse the head ``buf[pos:end]``; ``line_end`` is -1, or where its request line ends
        when receive() found its header block to be the previous head's."""
        repeated = line_end >= 0
        if not repeated:
            if buf.startswith(b"\r\n", pos):
                # RFC 9112 2.2: ignore empty lines before the request line.
                while buf.startswith(b"\r\n", pos):
                    pos += 2
                    if pos > end:
                        return pos  # the CRLF CRLF was part of the leading empty lines
            line_end = buf.find(b"\r\n", pos)
        limits = self.limits
        # The request line, like the header block, is parsed once for a client that repeats it.
        line = self._last_line
        same_line = line_end - pos == len(line) and buf.startswith(line, pos)
        if not same_line and line_end - pos > limits.max_request_line:
            raise ProtocolError(414, "Request line too long")
        if not repeated and end - line_end > limits.max_header_size:
            raise ProtocolError(431, "Request header fields too large")
        if same_line:
            method, target, is_http11 = self._last_request
        else:
            method, target, is_http11 = self._request_line(buf[pos:line_end])

        parsed = self._last_parsed if is_http11 is self._last_http11 else None
        if parsed is None or not repeated and buf[line_end + 2:end] != self._last_block:
            parsed = self._fields(buf[line_end + 2:end], is_http11)

        request = self.request_class(method, target, "HTTP/1.1" if is_http11 else "HTTP/1.0", parsed.headers,
                          parsed.keep_alive, self.remote_addr, self.scheme)
        if parsed.forwarded and self.proxies is not None:
            self.proxies.apply(request)
        pos = end + 4
        if parsed.has_body:
            open_body = limits.open_body
            if open_body is None:
                if parsed.content_length > limits.max_body_size:
                    raise ProtocolError(413, "Request body too large")
                self._body_limit = limits.max_body_size
            else:
                # Routed now, before the body: refused (raises), or a sink to write it to.
                sink = self._sink = open_body(request, -1 if parsed.chunked else parsed.content_length)
                self._body_limit = sink.limit
            if parsed.chunked:
                self._start_body(request, CHUNKED)
                self._chunk_state = _SIZE
                if parsed.expect_continue:
                    self.interim = CONTINUE_RESPONSE
            else:
                self._start_body(request, BODY)
                self._remaining = parsed.content_length
                if parsed.expect_continue and len(buf) - pos < parsed.content_length:
                    self.interim = CONTINUE_RESPONSE
        else:
            requests.append(request)
            if parsed.ends_http:
                self.state = CLOSED if not parsed.keep_alive else UPGRADE
        return pos

    def _request_line(self, line: bytes) -> tuple[str, str, bool]:
        """Method, target and whether it is HTTP/1.1, from a request line (checked); now the last one."""
        parts = line.split(b" ")
        if len(parts) != 3:
            raise ProtocolError(400, "Malformed request line")
        method_b, target_b, version = parts
        if version == b"HTTP/1.1":
            is_http11 = True
        elif version == b"HTTP/1.0":
            is_http11 = False
        elif _VERSION.fullmatch(version):
            if not version.startswith(b"HTTP/1."):
                raise ProtocolError(505, "HTTP version not supported")
            # RFC 9110 2.5: a higher minor version of a major version we implement is
            # processed as the highest minor version we know (HTTP/1.1).
            is_http11 = True
        else:
            raise ProtocolError(400, "Malformed HTTP version")
        method = _KNOWN_METHODS.get(method_b)
        if method is None:
            if _METHOD.fullmatch(method_b) is None:
                raise ProtocolError(400, "Malformed method")
            method = method_b.decode("ascii")
        # A target is visible ASCII: no controls, DEL, spaces or bytes above 0x7e.
        if not target_b.isascii():
            raise ProtocolError(400, "Malformed request target")
        target = target_b.decode("ascii")
        if not target.isprintable() or not target:
            raise ProtocolError(400, "Malformed request target")
        if target[0] != "/":
            _check_target_form(method, target)
        elif method == "CONNECT":
            raise ProtocolError(400, "CONNECT needs an authority-form target (host:port)")
        self._last_line = line
        self._last_request = (method, target, is_http11)
        return method, target, is_http11

    def _fields(self, block: bytes, is_http11: bool) -> HeaderBlock:
        """The parsed header block ``block`` (shared with other connections that sent it), now the last one."""
        limits = self.limits
        shared = limits.shared_blocks
        parsed = shared.get((block, is_http11))
        if parsed is None:
            bare = block.replace(b"\r\n", b"")
            if b"\r" in bare or b"\n" in bare:
                raise ProtocolError(400, "Bare CR or LF in header section")
            parsed = parse_header_block(block, is_http11, limits)
            if len(block) <= _SHARED_BLOCK_MAX_SIZE:
                if len(shared) >= _SHARED_BLOCKS_MAX:
                    shared.clear()
                shared[(block, is_http11)] = parsed
                parsed.raw = block
        self._last_block = parsed.raw if parsed.raw is not None else block
        self._last_http11 = is_http11
        self._last_parsed = parsed
        return parsed

    def _start_body(self, request: HTTPRequest, state: int) -> None:
        self._pending = request
        self._body_parts = []
        self._body_size = 0
        self.state = state

    def _finish_body(self, requests: list[HTTPRequest]) -> None:
        request = self._pending
        assert request is not None
        sink = self._sink
        if sink is not None:
            self._sink = None
            sink.finish(request)
        else:
            parts = self._body_parts
            request.body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pending = None
        self._body_parts = _NO_PARTS
        # The body is here: a 100 Continue not sent yet is no longer wanted (RFC 9110 10.1.1),
        # and must never follow this request's final response.
        self.interim = b""
        requests.append(request)
        self.state = HEAD if request.keep_alive else CLOSED

    # -- bodies -----------------------------------------------------------

    def _read_fixed_body(self, buf: bytes, pos: int, requests: list[HTTPRequest]) -> int:
        available = len(buf) - pos
        take = self._remaining if available >= self._remaining else available
        if take:
            if self._sink is not None:
                self._sink.write(buf[pos:pos + take] if take < available or pos else buf)
            else:
                self._body_parts.append(buf[pos:pos + take])
            self._remaining -= take
            pos += take
        if not self._remaining:
            self._finish_body(requests)
        return pos

    def _read_chunked_body(self, buf: bytes, pos: int, requests: list[HTTPRequest]) -> int:
        size = len(buf)
        while pos < size or self._chunk_state == _DATA_END:
            state = self._chunk_state
            if state == _SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if size - pos > 1024:
                        raise ProtocolError(400, "Chunk size line too long")
                    if b"\n" in buf[pos:]:
                        raise ProtocolError(400, "Bare LF in chunk size line")
                    return pos
                if eol - pos > 1024:  # the same cap whether the line came whole or in pieces
                    raise ProtocolError(400, "Chunk size line too long")
                if _CHUNK_HEX.fullmatch(buf, pos, eol) is not None:  # no extension: the common case
                    chunk = int(buf[pos:eol], 16)
                else:
                    m = _CHUNK_SIZE.fullmatch(buf, pos, eol)
                    if m is None:
                        raise ProtocolError(400, "Invalid chunk size")
                    chunk = int(m.group(1), 16)
                pos = eol + 2
                if chunk == 0:
                    self._chunk_state = _TRAILERS
                    self._remaining = self.limits.max_header_size  # the trailer section's byte budget
                    continue
                self._body_size += chunk
                if self._body_size > self._body_limit:
                    if self._sink is not None:
                        raise self._sink.refuse(413, "Request body too large")
                    raise ProtocolError(413, "Request body too large")
                self._remaining = chunk
                self._chunk_state = _DATA
            elif state == _DATA:
                take = min(self._remaining, size - pos)
                if self._sink is not None:
                    self._sink.write(buf[pos:pos + take])
                elif take < 1024:
                    self._chunk_body += buf[pos:pos + take]
                else:
                    if self._chunk_body:
                        self._body_parts.append(bytes(self._chunk_body))
                        self._chunk_body.clear()
                    self._body_parts.append(buf[pos:pos + take])
                self._remaining -= take
                pos += take
                if self._remaining:
                    return pos
                self._chunk_state = _DATA_END
            elif state == _DATA_END:
                if size - pos < 2:
                    if size > pos and buf[pos:pos + 1] != b"\r":
                        raise ProtocolError(400, "Chunk data not followed by CRLF")
                    return pos
                if buf[pos:pos + 2] != b"\r\n":
                    raise ProtocolError(400, "Chunk data not followed by CRLF")
                pos += 2
                self._chunk_state = _SIZE
            else:  # _TRAILERS: field lines until an empty line; validated, then dropped
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    # One partial line is rescanned on every read: keep it short so a
                    # trailer trickled byte by byte cannot cost quadratic time.
                    if size - pos > self.limits.max_field_line:
                        raise ProtocolError(431, "Trailer field too large")
                    if b"\n" in buf[pos:]:
                        raise ProtocolError(400, "Bare LF in trailer section")
                    return pos
                if eol - pos > self.limits.max_field_line:  # the same cap whether the line came whole or in pieces
                    raise ProtocolError(431, "Trailer field too large")
                line = buf[pos:eol]
                self._remaining -= eol + 2 - pos
                if self._remaining < 0:
                    raise ProtocolError(431, "Trailer section too large")
                pos = eol + 2
                if not line:
                    if self._chunk_body:
                        self._body_parts.append(bytes(self._chunk_body))
                        self._chunk_body.clear()
                    self._finish_body(requests)
                    return pos
                if _FIELD_LINE.fullmatch(line) is None or b"\r" in line:
                    raise ProtocolError(400, "Invalid trailer field")
        return pos


def _check_target_form(method: str, target: str) -> None:
    """A target that is not origin-form must be one of the other three (RFC 9112 3.2.2-3.2.4)."""
    if target == "*":
        if method != "OPTIONS":
            raise ProtocolError(400, "The asterisk-form target is only for OPTIONS")
    elif method == "CONNECT":
        if _AUTHORITY_FORM.fullmatch(target) is None:
            raise ProtocolError(400, "CONNECT needs an authority-form target (host:port)")
    elif _ABSOLUTE_FORM.fullmatch(target) is None:
        raise ProtocolError(400, "Malformed request target")


_KNOWN_METHODS = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
}
