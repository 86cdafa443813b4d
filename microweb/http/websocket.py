"""WebSockets (RFC 6455) with permessage-deflate (RFC 7692), sans-IO: frames in, messages out.

Theory of operation
-------------------
Nothing here touches a socket. Three pieces:

*The handshake.* ``check_handshake(request)`` validates an upgrade request
(GET, HTTP/1.1, ``Upgrade: websocket``, ``Connection: upgrade``,
``Sec-WebSocket-Version: 13``, a base64 key of 16 bytes) and raises
``HandshakeError`` with the status to answer (400, or 426 with
``Sec-WebSocket-Version: 13``). ``negotiate_deflate(offers)`` picks the first
permessage-deflate offer we can honour and returns its ``DeflateParams``;
``handshake_response(...)`` is the 101 head. The framework validates and
chooses (origin, subprotocol); the server negotiates the extension, because
compression and the message size limit are its settings.

*The connection.* ``WebSocketProtocol`` is one side of an open connection.
``receive(data)`` takes bytes from the peer and returns the events they
complete: whole messages (``str`` for text, ``bytes`` for binary, reassembled
from fragments and decompressed), ``Pong`` and, last, ``Close``. What the
protocol must answer by itself (a pong for every ping, even between the
fragments of a message; the reply to a close; the close frame that fails the
connection) is appended to ``outgoing``, which the caller sends after each
call. ``encode_message``/``encode_close``/``encode_ping`` give the frames the
caller wants to send.

States: ``OPEN``; ``CLOSING`` once we have sent a close frame (messages still
arrive until the peer's close); ``CLOSED`` once both close frames have crossed,
or the connection has failed (``failed``: a protocol violation; the caller
sends ``outgoing``, half-closes and stops parsing). Input after ``CLOSED`` is
ignored. A violation fails with the close code RFC 6455 gives it: 1002 for
framing (unmasked client frame, reserved bits without an extension, unknown
opcode, fragmented or long control frame, continuation without a start, a new
message inside a fragmented one, an invalid close code), 1007 for text that is
not UTF-8 (checked incrementally, so a bad byte fails the connection in the
fragment that carries it) and 1009 for a message over ``max_message``.

*Memory.* A frame is parsed once it is whole, and no frame is buffered whose
header announces more than the limit allows, so input buffering is bounded
by ``max_message``. Compressed messages are inflated with a bound on the
output (``decompress(data, max_length)``): a small frame that would inflate
past the limit fails with 1009 before the output exists. Compression contexts
are made on first use, so an idle connection holds none.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import os
import struct
import zlib
from typing import Any, Callable, Iterable

from .bodies import BodySource
from .encode import encode_head

__all__ = [
    "WebSocketProtocol", "WebSocketUpgrade", "HandshakeError", "DeflateParams", "Close", "Pong",
    "check_handshake", "accept_key", "negotiate_deflate", "parse_extensions", "handshake_response",
    "client_handshake", "valid_close_code", "OPEN", "CLOSING", "CLOSED",
]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA_OPCODES = (OP_CONTINUATION, OP_TEXT, OP_BINARY)
_CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)

# Close codes (RFC 6455 7.4.1).
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005  # never on the wire: the close frame had no code
ABNORMAL_CLOSURE = 1006  # never on the wire: the connection dropped without a close frame
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011

OPEN, CLOSING, CLOSED = "OPEN", "CLOSING", "CLOSED"

_DEFLATE_TAIL = b"\x00\x00\xff\xff"
#: The window our compressor uses unless the client asks for less, and its memLevel: about
#: 32 KiB per compressing connection instead of zlib's default 256 KiB (as the websockets library does).
DEFLATE_SERVER_WINDOW = 12
DEFLATE_MEM_LEVEL = 5
DEFLATE_MIN_SIZE = 64  # smaller messages are sent uncompressed (the frame would not shrink)


def valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (1005, 1006, 1015 and reserved ranges may not)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# -- the handshake -----------------------------------------------------------------


class HandshakeError(Exception):
    """An upgrade request we refuse: ``status`` to answer, ``message``, extra ``headers``."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def _tokens(value: str) -> list[str]:
    return [t.strip().lower() for t in value.split(",") if t.strip()]


def is_upgrade_request(headers: Any) -> bool:
    """Whether a request asks to switch to WebSocket (``Upgrade: websocket``)."""
    return "websocket" in _tokens(",".join(headers.getlist("upgrade")))


_VERSION_HEADERS = [("Sec-WebSocket-Version", "13")]
_UPGRADE_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")]


def check_handshake(request: Any) -> str:
    """Validate a WebSocket upgrade request; its ``Sec-WebSocket-Key``, or ``HandshakeError``."""
    headers = request.headers
    if not is_upgrade_request(headers):
        raise HandshakeError(426, "This is a WebSocket endpoint: connect with a WebSocket client",
                             _UPGRADE_HEADERS)
    if request.http_version != "HTTP/1.1":
        raise HandshakeError(400, "A WebSocket handshake needs HTTP/1.1")
    if request.method != "GET":
        raise HandshakeError(400, "A WebSocket handshake must be a GET request")
    if "upgrade" not in _tokens(",".join(headers.getlist("connection"))):
        raise HandshakeError(400, "A WebSocket handshake needs 'Connection: Upgrade'")
    versions = headers.getlist("sec-websocket-version")
    if len(versions) != 1 or versions[0].strip() != "13":
        raise HandshakeError(426, "Unsupported WebSocket version (this server speaks 13)", _VERSION_HEADERS)
    keys = headers.getlist("sec-websocket-key")
    if len(keys) != 1:
        raise HandshakeError(400, "A WebSocket handshake needs one Sec-WebSocket-Key")
    key = keys[0].strip()
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "Invalid Sec-WebSocket-Key (not 16 bytes in base64)")
    if request.body or "transfer-encoding" in headers:
        raise HandshakeError(400, "A WebSocket handshake has no body")
    return key


def parse_extensions(value: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``Sec-WebSocket-Extensions`` -> ``[(name, [(param, value or None), ...]), ...]``, in order."""
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    for item in value.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        params: list[tuple[str, str | None]] = []
        for part in parts[1:]:
            if not part:
                continue
            name, eq, raw = part.partition("=")
            text = raw.strip()
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1]
            params.append((name.strip().lower(), text if eq else None))
        result.append((parts[0].lower(), params))
    return result


class DeflateParams:
    """Negotiated permessage-deflate parameters (RFC 7692 7.1)."""

    __slots__ = ("server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits",
                 "client_max_window_bits", "client_window_offered")

    def __init__(self, server_no_context_takeover: bool = False, client_no_context_takeover: bool = False,
                 server_max_window_bits: int = 15, client_max_window_bits: int = 15,
                 client_window_offered: bool = False) -> None:
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.client_window_offered = client_window_offered

    def response_value(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value that accepts these parameters."""
        parts = ["permessage-deflate"]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits < 15:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_window_offered and self.client_max_window_bits < 15:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"DeflateParams({self.response_value()!r})"


def _window_bits(value: str | None) -> int:
    if value is None or not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
        raise ValueError(f"invalid window bits {value!r}")
    return int(value)


def _accept_offer(params: list[tuple[str, str | None]], server_window: int) -> DeflateParams:
    """The parameters that accept one offer, or ``ValueError`` when it cannot be accepted."""
    seen: set[str] = set()
    result = DeflateParams(server_max_window_bits=server_window)
    for name, value in params:
        if name in seen:
            raise ValueError(f"{name} given twice")
        seen.add(name)
        if name == "server_no_context_takeover":
            if value is not None:
                raise ValueError("server_no_context_takeover takes no value")
            result.server_no_context_takeover = True
        elif name == "client_no_context_takeover":
            if value is not None:
                raise ValueError("client_no_context_takeover takes no value")
            result.client_no_context_takeover = True
        elif name == "server_max_window_bits":
            bits = _window_bits(value)
            if bits == 8:
                raise ValueError("zlib cannot compress with a 256-byte window")
            result.server_max_window_bits = min(bits, server_window)
        elif name == "client_max_window_bits":
            bits = 15 if value is None else _window_bits(value)
            result.client_window_offered = True
            result.client_max_window_bits = min(bits, server_window)
        else:
            raise ValueError(f"unknown parameter {name}")
    return result


def negotiate_deflate(offers: str, server_window: int = DEFLATE_SERVER_WINDOW) -> DeflateParams | None:
    """The first permessage-deflate offer in a ``Sec-WebSocket-Extensions`` value that we accept."""
    for name, params in parse_extensions(offers):
        if name != "permessage-deflate":
            continue
        try:
            return _accept_offer(params, server_window)
        except ValueError:
            continue  # RFC 7692 5: decline this offer, try the next
    return None


def handshake_response(key: str, subprotocol: str | None = None, extensions: str | None = None,
                       headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """The ``101 Switching Protocols`` head that accepts a handshake."""
    fields = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(key))]
    if subprotocol:
        fields.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions:
        fields.append(("Sec-WebSocket-Extensions", extensions))
    fields.extend(headers)
    return encode_head(101, fields, None, True, True)


def client_handshake(path: str, host: str, key: str | None = None, subprotocols: Iterable[str] = (),
                     extensions: str | None = None, origin: str | None = None,
                     headers: Iterable[tuple[str, str]] = ()) -> tuple[bytes, str]:
    """A client's upgrade request and its key (for the test client and tests)."""
    if key is None:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    protocols = ", ".join(subprotocols)
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {protocols}")
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if origin:
        lines.append(f"Origin: {origin}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


class WebSocketUpgrade(BodySource):
    """What a handler's response becomes when it accepts a handshake: the server switches protocols.

    The server negotiates compression from ``offers`` with its own settings, sends
    ``handshake_response(key, subprotocol, extensions, headers)``, and then calls
    ``open(endpoint)``, which returns the listener that gets the connection's events and a
    callable to run the application's handler (inline on the loop, or in a thread).
    """

    __slots__ = ("key", "subprotocol", "offers", "headers", "open")

    def __init__(self, key: str, subprotocol: str | None, offers: str, headers: list[tuple[str, str]],
                 open: Callable[[Any], tuple[Any, Callable[[], None]]]) -> None:
        super().__init__(b"", True)
        self.key = key
        self.subprotocol = subprotocol
        self.offers = offers
        self.headers = headers
        self.open = open

    def response_head(self, deflate: DeflateParams | None) -> bytes:
        return handshake_response(self.key, self.subprotocol, deflate.response_value() if deflate else None,
                                  self.headers)


# -- the connection ----------------------------------------------------------------


class Close:
    """The connection closed: ``code`` and ``reason`` (the peer's, or ours when we failed it)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Close({self.code}, {self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Close) and (self.code, self.reason) == (other.code, other.reason)


class Pong:
    """A pong from the peer (the answer to our ping)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"Pong({self.payload!r})"


class _Failure(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def mask_bytes(mask: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (masking and unmasking are the same)."""
    n = len(data)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False,
                 mask: bytes | None = None) -> bytes:
    """One frame; masked with ``mask`` (4 bytes) when given, as a client must."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((b0, bit | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, bit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, bit | 127, n)
    if mask is not None:
        return head + mask + mask_bytes(mask, payload)
    return head + payload


def close_payload(code: int, reason: str = "") -> bytes:
    if code == NO_STATUS:
        return b""
    data = struct.pack("!H", code) + reason.encode("utf-8")
    if len(data) > 125:
        raise ValueError("a close reason is at most 123 bytes of UTF-8")
    return data


_utf8_decoder = codecs.getincrementaldecoder("utf-8")
_NO_PARTS: list[Any] = []  # shared placeholder while no fragmented message is open (never appended to)


class WebSocketProtocol:
    """One side of an open WebSocket connection (see the Theory of operation).

    ``WebSocketProtocol(max_message=1 MiB, deflate=None, client=False)``: a server
    side unless ``client``; ``deflate`` the negotiated permessage-deflate parameters.
    """

    __slots__ = ("max_message", "deflate", "client", "state", "failed", "outgoing", "close_code",
                 "close_reason", "_buffer", "_message_opcode", "_message_parts", "_message_size",
                 "_compressed", "_utf8", "_inflater", "_deflater", "_deflate_own_reset", "_deflate_peer_reset",
                 "_deflate_own_bits", "_deflate_peer_bits", "_close_sent")

    def __init__(self, max_message: int = 1 << 20, deflate: DeflateParams | None = None, client: bool = False) -> None:
        self.max_message = max_message
        self.deflate = deflate
        self.client = client
        self.state = OPEN
        self.failed = False
        self.outgoing: list[bytes] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._buffer = b""
        self._message_opcode = -1  # the opcode of the fragmented message being received; -1: none
        self._message_parts: list[Any] = _NO_PARTS  # bytes, or str pieces of a text message
        self._message_size = 0
        self._compressed = False
        self._utf8: Any = None
        self._inflater: Any = None
        self._deflater: Any = None
        self._close_sent = False
        if deflate is not None:
            # Our compressor uses the window the other side's decompressor agreed to, and resets
            # between messages when we promised to; the same for the peer's messages.
            if client:
                self._deflate_own_reset = deflate.client_no_context_takeover
                self._deflate_peer_reset = deflate.server_no_context_takeover
                self._deflate_own_bits = deflate.client_max_window_bits
                self._deflate_peer_bits = 15
            else:
                self._deflate_own_reset = deflate.server_no_context_takeover
                self._deflate_peer_reset = deflate.client_no_context_takeover
                self._deflate_own_bits = deflate.server_max_window_bits
                self._deflate_peer_bits = deflate.client_max_window_bits if deflate.client_window_offered else 15

    # -- receiving ---------------------------------------------------------------

    def receive(self, data: bytes) -> list[Any]:
        """Take bytes from the peer; the messages, ``Pong``s and ``Close`` they complete."""
        events: list[Any] = []
        if self.state is CLOSED:
            return events
        buf = self._buffer + data if self._buffer else data
        pos = 0
        try:
            size = len(buf)
            while size - pos >= 2:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                length = b1 & 0x7F
                head = 2
                if length == 126:
                    if size - pos < 4:
                        break
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    head = 4
                elif length == 127:
                    if size - pos < 10:
                        break
                    length = struct.unpack_from("!Q", buf, pos + 2)[0]
                    if length >> 63:
                        raise _Failure(PROTOCOL_ERROR, "Frame length has its top bit set")
                    head = 10
                masked = b1 & 0x80
                if masked:
                    head += 4
                if not masked and not self.client:
                    raise _Failure(PROTOCOL_ERROR, "Client frames must be masked")
                if masked and self.client:
                    raise _Failure(PROTOCOL_ERROR, "Server frames must not be masked")
                opcode = b0 & 0x0F
                self._check_header(b0, opcode, length)
                end = pos + head + length
                if end > size:
                    break
                payload = buf[pos + head:end]
                if masked:
                    payload = mask_bytes(buf[pos + head - 4:pos + head], payload)
                pos = end
                self._frame(b0, opcode, payload, events)
                if self.state is CLOSED:
                    pos = size
                    break
        except _Failure as failure:
            self._fail(failure.code, failure.reason, events)
            pos = size
        self._buffer = buf[pos:] if pos < len(buf) else b""
        return events

    def _check_header(self, b0: int, opcode: int, length: int) -> None:
        """Refuse a frame from its header alone, before its payload is buffered."""
        if b0 & 0x30:
            raise _Failure(PROTOCOL_ERROR, "Reserved bits set without an extension that defines them")
        if opcode >= 8:
            if opcode not in _CONTROL_OPCODES:
                raise _Failure(PROTOCOL_ERROR, f"Unknown opcode {opcode}")
            if not b0 & 0x80:
                raise _Failure(PROTOCOL_ERROR, "Fragmented control frame")
            if length > 125:
                raise _Failure(PROTOCOL_ERROR, "Control frame longer than 125 bytes")
            if b0 & 0x40:
                raise _Failure(PROTOCOL_ERROR, "Reserved bit set on a control frame")
            return
        if opcode not in _DATA_OPCODES:
            raise _Failure(PROTOCOL_ERROR, f"Unknown opcode {opcode}")
        if opcode == OP_CONTINUATION:
            if self._message_opcode < 0:
                raise _Failure(PROTOCOL_ERROR, "Continuation frame without a message to continue")
            if b0 & 0x40:
                raise _Failure(PROTOCOL_ERROR, "Reserved bit set on a continuation frame")
        else:
            if self._message_opcode >= 0:
                raise _Failure(PROTOCOL_ERROR, "New message before the fragmented one ended")
            if b0 & 0x40 and self.deflate is None:
                raise _Failure(PROTOCOL_ERROR, "Reserved bits set without an extension that defines them")
        if self._message_size + length > self.max_message:
            raise _Failure(MESSAGE_TOO_BIG, f"Message larger than {self.max_message} bytes")

    def _frame(self, b0: int, opcode: int, payload: bytes, events: list[Any]) -> None:
        fin = b0 & 0x80
        if opcode >= 8:
            self._control(opcode, payload, events)
            return
        if opcode != OP_CONTINUATION:
            compressed = bool(b0 & 0x40)
            if fin and not compressed:
                # The common case: one whole uncompressed frame.
                if opcode == OP_TEXT:
                    try:
                        events.append(payload.decode("utf-8"))
                    except UnicodeDecodeError:
                        raise _Failure(INVALID_DATA, "Invalid UTF-8 in a text message") from None
                else:
                    events.append(payload)
                return
            self._message_opcode = opcode
            self._compressed = compressed
            self._message_parts = []
            self._message_size = 0
            self._utf8 = _utf8_decoder() if opcode == OP_TEXT else None
        if self._compressed:
            payload = self._inflate(payload, bool(fin))
        else:
            self._message_size += len(payload)
        if self._utf8 is not None:
            try:
                self._message_parts.append(self._utf8.decode(payload, bool(fin)))
            except UnicodeDecodeError:
                raise _Failure(INVALID_DATA, "Invalid UTF-8 in a text message") from None
        else:
            self._message_parts.append(payload)
        if fin:
            parts = self._message_parts
            if self._utf8 is not None:
                events.append("".join(parts))
            else:
                events.append(parts[0] if len(parts) == 1 else b"".join(parts))
            self._message_opcode = -1
            self._message_parts = _NO_PARTS
            self._message_size = 0
            self._utf8 = None

    def _inflate(self, payload: bytes, fin: bool) -> bytes:
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-self._deflate_peer_bits)
        if fin:
            payload += _DEFLATE_TAIL
        room = self.max_message - self._message_size
        try:
            out = inflater.decompress(payload, room + 1)
        except zlib.error:
            raise _Failure(INVALID_DATA, "Invalid compressed data") from None
        if len(out) > room or inflater.unconsumed_tail:
            raise _Failure(MESSAGE_TOO_BIG, f"Message larger than {self.max_message} bytes once decompressed")
        self._message_size += len(out)
        if fin and self._deflate_peer_reset:
            self._inflater = None
        return out

    def _control(self, opcode: int, payload: bytes, events: list[Any]) -> None:
        if opcode == OP_PING:
            if self.state is OPEN:
                self.outgoing.append(self._encode(OP_PONG, payload))
        elif opcode == OP_PONG:
            events.append(Pong(payload))
        else:
            code, reason = self._parse_close(payload)
            if self.state is OPEN:
                # Echo the peer's code (RFC 6455 5.5.1), then both sides have closed.
                self.outgoing.append(self._encode(OP_CLOSE, close_payload(code)))
                self._close_sent = True
            self.state = CLOSED
            if self.close_code is None:
                self.close_code, self.close_reason = code, reason
            events.append(Close(code, reason))

    @staticmethod
    def _parse_close(payload: bytes) -> tuple[int, str]:
        if not payload:
            return NO_STATUS, ""
        if len(payload) == 1:
            raise _Failure(PROTOCOL_ERROR, "Close frame with a one-byte payload")
        code = (payload[0] << 8) | payload[1]
        if not valid_close_code(code):
            raise _Failure(PROTOCOL_ERROR, f"Invalid close code {code}")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise _Failure(INVALID_DATA, "Invalid UTF-8 in a close reason") from None
        return code, reason

    def _fail(self, code: int, reason: str, events: list[Any]) -> None:
        """Fail the connection: our close frame goes out, nothing more is parsed."""
        if not self._close_sent:
            self.outgoing.append(self._encode(OP_CLOSE, close_payload(code, reason[:120])))
            self._close_sent = True
        self.failed = True
        self.state = CLOSED
        self.close_code, self.close_reason = code, reason
        self._message_parts = _NO_PARTS
        events.append(Close(code, reason))

    def receive_eof(self) -> Close | None:
        """The peer's bytes ended: the ``Close`` to report (1006) unless the connection had closed."""
        if self.state is CLOSED:
            return None
        self.state = CLOSED
        self.close_code, self.close_reason = ABNORMAL_CLOSURE, ""
        return Close(ABNORMAL_CLOSURE, "")

    # -- sending -----------------------------------------------------------------

    def _encode(self, opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
        return encode_frame(opcode, payload, True, rsv1, os.urandom(4) if self.client else None)

    def encode_message(self, data: str | bytes) -> bytes:
        """The frame for one message (compressed when deflate is on and it is worth it)."""
        if isinstance(data, str):
            opcode = OP_TEXT
            payload = data.encode("utf-8")
        else:
            opcode = OP_BINARY
            payload = bytes(data)
        if self.deflate is not None and len(payload) >= DEFLATE_MIN_SIZE:
            deflater = self._deflater
            if deflater is None:
                deflater = self._deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                                             -self._deflate_own_bits, DEFLATE_MEM_LEVEL)
            packed = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
            if packed.endswith(_DEFLATE_TAIL):
                packed = packed[:-4]
            if self._deflate_own_reset:
                self._deflater = None
            return self._encode(opcode, packed, True)
        if self.client:
            return encode_frame(opcode, payload, True, False, os.urandom(4))
        n = len(payload)
        if n < 126:
            return bytes((0x80 | opcode, n)) + payload
        return encode_frame(opcode, payload)

    def encode_ping(self, payload: bytes = b"") -> bytes:
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        return self._encode(OP_PING, payload)

    def encode_close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> bytes:
        """Our close frame (empty when the handshake is already over); the state becomes CLOSING."""
        if self._close_sent or self.state is CLOSED:
            return b""
        if code != NO_STATUS and not valid_close_code(code):
            raise ValueError(f"close code {code} may not be sent")
        frame = self._encode(OP_CLOSE, close_payload(code, reason))
        self._close_sent = True
        self.state = CLOSING
        return frame

    @property
    def close_sent(self) -> bool:
        return self._close_sent
