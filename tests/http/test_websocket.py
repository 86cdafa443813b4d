"""The sans-IO WebSocket protocol: handshake, frames, fragmentation, control frames, close codes, deflate."""
from __future__ import annotations

import os
import struct
import zlib

import pytest

from microweb.http.datastructures import Headers
from microweb.http.parser import CLOSED, HEAD, UPGRADE, RequestParser
from microweb.http.request import HTTPRequest
from microweb.http.websocket import (
    CLOSING, OPEN, Close, DeflateParams, HandshakeError, Pong, WebSocketProtocol, accept_key, check_handshake,
    client_handshake, encode_frame, handshake_response, mask_bytes, negotiate_deflate, parse_extensions,
    valid_close_code,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x37\xfa\x21\x3d"


def request(headers: dict[str, str], method: str = "GET", version: str = "HTTP/1.1", body: bytes = b"") -> HTTPRequest:
    base = {"Host": "example.com", "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": KEY,
            "Sec-WebSocket-Version": "13"}
    base.update(headers)
    items = [(k, v) for k, v in base.items() if v is not None]
    return HTTPRequest(method, "/ws", version, Headers(items), body=body)


def frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bytes | None = MASK) -> bytes:
    """A client frame, with any reserved bits (rsv: 0x40, 0x20, 0x10)."""
    data = bytearray(encode_frame(opcode, payload, fin, False, mask))
    data[0] |= rsv
    return bytes(data)


def server(**kwargs: object) -> WebSocketProtocol:
    return WebSocketProtocol(**kwargs)  # type: ignore[arg-type]


def closed_with(proto: WebSocketProtocol, events: list[object], code: int) -> None:
    """The connection failed with ``code``: a Close event, our close frame out, nothing more parsed."""
    assert events and isinstance(events[-1], Close), events
    assert events[-1].code == code, events[-1]
    assert proto.state == "CLOSED" and proto.failed
    assert len(proto.outgoing) == 1
    sent = proto.outgoing[0]
    assert sent[0] == 0x88  # FIN + close
    payload = mask_bytes(sent[2:6], sent[6:]) if sent[1] & 0x80 else sent[2:]
    assert struct.unpack("!H", payload[:2])[0] == code
    assert proto.receive(frame(1, b"after")) == []  # input after the failure is ignored


# -- handshake -----------------------------------------------------------------------------


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_handshake_returns_the_key() -> None:
    assert check_handshake(request({})) == KEY
    # Tokens are case-insensitive and Connection may list several.
    assert check_handshake(request({"Upgrade": "WebSocket", "Connection": "keep-alive, Upgrade"})) == KEY


@pytest.mark.parametrize("changes, status, fragment", [
    ({"Upgrade": None}, 426, "WebSocket endpoint"),
    ({"Upgrade": "h2c"}, 426, "WebSocket endpoint"),
    ({"Connection": "keep-alive"}, 400, "Connection: Upgrade"),
    ({"Sec-WebSocket-Version": "8"}, 426, "version"),
    ({"Sec-WebSocket-Version": None}, 426, "version"),
    ({"Sec-WebSocket-Key": None}, 400, "Sec-WebSocket-Key"),
    ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400, "16 bytes"),  # 5 bytes
    ({"Sec-WebSocket-Key": "not base64 at all!!!!!!!"}, 400, "16 bytes"),
    ({"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, 400, "16 bytes"),  # 21 bytes
])
def test_bad_handshakes(changes: dict[str, str], status: int, fragment: str) -> None:
    with pytest.raises(HandshakeError) as info:
        check_handshake(request(changes))
    assert info.value.status == status
    assert fragment in info.value.message
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in info.value.headers


def test_handshake_needs_get_http11_and_no_body() -> None:
    for req in (request({}, method="POST"), request({}, version="HTTP/1.0"), request({}, body=b"x")):
        with pytest.raises(HandshakeError) as info:
            check_handshake(req)
        assert info.value.status == 400


def test_handshake_response_head() -> None:
    head = handshake_response(KEY, "chat", "permessage-deflate", [("Set-Cookie", "a=b")]).decode()
    assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
    assert "Sec-WebSocket-Protocol: chat\r\n" in head and "Sec-WebSocket-Extensions: permessage-deflate\r\n" in head
    assert "Set-Cookie: a=b\r\n" in head and "Content-Length" not in head and "Transfer-Encoding" not in head
    assert head.endswith("\r\n\r\n")


# -- the HTTP parser around an upgrade --------------------------------------------------------


def test_parser_holds_the_bytes_after_an_upgrade_request() -> None:
    raw, _ = client_handshake("/ws", "h")
    parser = RequestParser()
    first_frames = frame(1, b"hello")
    requests = parser.receive(raw + first_frames)
    assert len(requests) == 1 and parser.state == UPGRADE and parser.error is None
    parser.receive(frame(1, b"more"))
    assert parser.detach() == first_frames + frame(1, b"more")
    assert parser.state == CLOSED


def test_parser_resumes_http_after_a_declined_upgrade() -> None:
    raw = b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    parser = RequestParser()
    assert [r.path for r in parser.receive(raw)] == ["/a"]
    assert [r.path for r in parser.resume()] == ["/b"]
    assert parser.state == HEAD


def test_parser_does_not_pause_for_http10_or_without_connection_upgrade() -> None:
    for raw in (b"GET /a HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade, keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
                b"GET /a HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"):
        parser = RequestParser()
        assert [r.path for r in parser.receive(raw)] == ["/a", "/b"]


def test_parser_bounds_what_it_holds() -> None:
    raw, _ = client_handshake("/ws", "h")
    parser = RequestParser()
    parser.receive(raw)
    parser.receive(b"x" * (200 * 1024))
    assert parser.error is not None and parser.error.status == 400 and parser.state == CLOSED


# -- frames --------------------------------------------------------------------------------


def test_masking_round_trip() -> None:
    data = os.urandom(1001)
    assert mask_bytes(MASK, mask_bytes(MASK, data)) == data
    assert mask_bytes(MASK, b"") == b""


def test_text_and_binary_messages() -> None:
    proto = server()
    assert proto.receive(frame(1, "héllo".encode()) + frame(2, b"\x00\xff")) == ["héllo", b"\x00\xff"]
    assert proto.outgoing == []


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_payload_lengths(size: int) -> None:
    data = os.urandom(size)
    proto = server()
    assert proto.receive(frame(2, data)) == [data]
    client = WebSocketProtocol(client=True)
    assert client.receive(proto.encode_message(data)) == [data]


def test_input_in_any_split_gives_the_same_messages() -> None:
    stream = frame(1, b"a" * 300) + frame(2, b"b" * 70000) + frame(1, b"x", fin=False) + frame(0, b"y")
    for step in (1, 2, 3, 7, 4096):
        proto = server()
        events = []
        for i in range(0, len(stream), step):
            events += proto.receive(stream[i:i + step])
        assert events == ["a" * 300, b"b" * 70000, "xy"]


def test_fragmented_message_with_ping_between_fragments() -> None:
    proto = server()
    events = proto.receive(frame(1, b"Hel", fin=False) + frame(9, b"p1") + frame(0, b"lo", fin=False))
    assert events == []
    assert proto.outgoing == [b"\x8a\x02p1"]  # the pong at once, mid-message
    assert proto.receive(frame(0, b"!")) == ["Hello!"]


def test_pong_is_reported() -> None:
    proto = server()
    [event] = proto.receive(frame(10, b"42"))
    assert isinstance(event, Pong) and event.payload == b"42"


@pytest.mark.parametrize("data, code", [
    (frame(1, b"x", mask=None), 1002),  # an unmasked client frame
    (frame(1, b"x", rsv=0x40), 1002),  # RSV1 without permessage-deflate
    (frame(1, b"x", rsv=0x20), 1002),
    (frame(1, b"x", rsv=0x10), 1002),
    (frame(3, b"x"), 1002),  # reserved data opcode
    (frame(0xB, b"x"), 1002),  # reserved control opcode
    (frame(9, b"x", fin=False), 1002),  # fragmented ping
    (frame(9, b"x" * 126), 1002),  # control frame over 125 bytes
    (frame(0, b"x"), 1002),  # continuation without a start
    (frame(1, b"a", fin=False) + frame(1, b"b"), 1002),  # a new message inside a fragmented one
    (frame(1, b"\xff"), 1007),  # invalid UTF-8
    (frame(1, b"\xce", fin=False) + frame(0, b"\xff"), 1007),  # invalid across fragments
    (frame(8, b"\x03"), 1002),  # one-byte close payload
    (frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),  # reason not UTF-8
    (frame(2, b"x" * 2000), 1009),  # over max_message (1000 here)
    (frame(2, b"x" * 600, fin=False) + frame(0, b"x" * 600), 1009),  # over it across fragments
])
def test_protocol_violations_close_with_the_right_code(data: bytes, code: int) -> None:
    proto = server(max_message=1000)
    closed_with(proto, proto.receive(data), code)


def test_invalid_utf8_fails_in_the_fragment_that_carries_it() -> None:
    proto = server()
    assert proto.receive(frame(1, "ok ".encode(), fin=False)) == []
    closed_with(proto, proto.receive(frame(0, b"\xf8", fin=False)), 1007)  # before the message ends


def test_oversized_frame_is_refused_from_its_header() -> None:
    proto = server(max_message=1000)
    header = bytes((0x82, 0x80 | 127)) + struct.pack("!Q", 1 << 40) + MASK
    closed_with(proto, proto.receive(header), 1009)  # no payload needed to decide


def test_64_bit_length_with_top_bit_is_refused() -> None:
    proto = server()
    closed_with(proto, proto.receive(bytes((0x82, 0x80 | 127)) + struct.pack("!Q", 1 << 63) + MASK), 1002)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes_are_refused(code: int) -> None:
    assert not valid_close_code(code)
    proto = server()
    closed_with(proto, proto.receive(frame(8, struct.pack("!H", code))), 1002)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
                                  4999])
def test_valid_close_codes_are_echoed(code: int) -> None:
    proto = server()
    events = proto.receive(frame(8, struct.pack("!H", code) + "bye ✓".encode()))
    assert events == [Close(code, "bye ✓")]
    assert proto.state == "CLOSED" and not proto.failed
    assert proto.outgoing == [b"\x88\x02" + struct.pack("!H", code)]


def test_empty_close_means_1005_and_is_answered_empty() -> None:
    proto = server()
    assert proto.receive(frame(8, b"")) == [Close(1005, "")]
    assert proto.outgoing == [b"\x88\x00"]


def test_close_handshake_started_by_us() -> None:
    proto = server()
    sent = proto.encode_close(1001, "going")
    assert sent == b"\x88\x07" + struct.pack("!H", 1001) + b"going"
    assert proto.state == CLOSING and proto.close_sent
    assert proto.encode_close() == b""  # only once
    # Messages still arrive until the peer's close; the close is not answered again.
    assert proto.receive(frame(1, b"late")) == ["late"]
    assert proto.receive(frame(8, struct.pack("!H", 1001))) == [Close(1001, "")]
    assert proto.outgoing == [] and proto.state == "CLOSED"


def test_no_pong_after_we_sent_close_and_eof_is_1006() -> None:
    proto = server()
    proto.encode_close()
    proto.receive(frame(9, b"p"))
    assert proto.outgoing == []
    assert proto.receive_eof() == Close(1006, "")
    assert proto.receive_eof() is None


def test_server_frames_are_unmasked_and_client_frames_masked() -> None:
    srv, cli = server(), WebSocketProtocol(client=True)
    out = srv.encode_message("hi")
    assert out == b"\x81\x02hi"
    to_server = cli.encode_message("hi")
    assert to_server[1] & 0x80 and srv.receive(to_server) == ["hi"]
    # A client must refuse masked frames from a server.
    closed_with(cli, cli.receive(frame(1, b"x")), 1002)


def test_close_reason_is_bounded() -> None:
    with pytest.raises(ValueError):
        server().encode_close(1000, "x" * 124)
    with pytest.raises(ValueError):
        server().encode_close(1005 + 1)  # 1006 may not be sent


# -- permessage-deflate --------------------------------------------------------------------


def test_parse_extensions() -> None:
    assert parse_extensions('permessage-deflate; client_max_window_bits; server_max_window_bits="10", x-foo') == [
        ("permessage-deflate", [("client_max_window_bits", None), ("server_max_window_bits", "10")]),
        ("x-foo", []),
    ]


def test_negotiation_of_parameters() -> None:
    params = negotiate_deflate("permessage-deflate; client_max_window_bits")
    assert params is not None
    assert params.response_value() == "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    params = negotiate_deflate("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                               "server_max_window_bits=10")
    assert params is not None and params.server_no_context_takeover and params.client_no_context_takeover
    assert params.response_value() == ("permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                                       " server_max_window_bits=10")
    # Offers we cannot accept are declined; the next acceptable one wins.
    assert negotiate_deflate("permessage-deflate; server_max_window_bits=8") is None
    assert negotiate_deflate("permessage-deflate; server_max_window_bits") is None  # needs a value
    assert negotiate_deflate("permessage-deflate; server_max_window_bits=16") is None
    assert negotiate_deflate("permessage-deflate; foo=1") is None
    assert negotiate_deflate("permessage-deflate; client_no_context_takeover; client_no_context_takeover") is None
    chosen = negotiate_deflate("permessage-deflate; foo, permessage-deflate; server_no_context_takeover")
    assert chosen is not None and chosen.server_no_context_takeover
    assert negotiate_deflate("x-webkit-deflate-frame") is None


def compressed(data: bytes, wbits: int = 15) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def test_compressed_messages_both_ways() -> None:
    params = DeflateParams(client_window_offered=True, client_max_window_bits=12, server_max_window_bits=12)
    srv, cli = WebSocketProtocol(deflate=params), WebSocketProtocol(deflate=params, client=True)
    text = "hello websocket " * 100
    for _ in range(3):  # context takeover: later messages reuse the window
        wire = srv.encode_message(text)
        assert wire[0] & 0x40 and len(wire) < len(text) // 4
        assert cli.receive(wire) == [text]
        up = cli.encode_message(text.encode())
        assert up[0] & 0x40
        assert srv.receive(up) == [text.encode()]
    # Small messages go uncompressed (RSV1 clear), and are still understood.
    assert not srv.encode_message("hi")[0] & 0x40


def test_compressed_fragmented_message_with_rsv1_on_the_first_frame_only() -> None:
    params = DeflateParams()
    proto = WebSocketProtocol(deflate=params)
    packed = compressed(b"abc" * 1000)
    half = len(packed) // 2
    events = proto.receive(frame(1, packed[:half], fin=False, rsv=0x40) + frame(0, packed[half:]))
    assert events == ["abc" * 1000]
    # RSV1 on a continuation frame is a violation.
    proto = WebSocketProtocol(deflate=params)
    closed_with(proto, proto.receive(frame(1, packed[:half], fin=False, rsv=0x40) + frame(0, packed[half:], rsv=0x40)),
                1002)


def test_no_context_takeover_resets_every_message() -> None:
    params = negotiate_deflate("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    assert params is not None
    srv, cli = WebSocketProtocol(deflate=params), WebSocketProtocol(deflate=params, client=True)
    text = "the same text again and again " * 10
    first, second = srv.encode_message(text), srv.encode_message(text)
    assert first == second  # no shared window: identical frames
    # A fresh decoder (no history) understands the second message alone.
    assert WebSocketProtocol(deflate=params, client=True).receive(second) == [text]
    assert cli.receive(first + second) == [text, text]
    # The client's messages are compressed from scratch each time: each decodes alone.
    msg = cli.encode_message(text)
    assert WebSocketProtocol(deflate=params).receive(msg) == [text]


def test_zip_bomb_closes_with_1009_without_inflating_it() -> None:
    bomb = compressed(b"\0" * (64 << 20))  # 64 MiB of zeros: about 64 KiB on the wire
    assert len(bomb) < 100_000
    proto = WebSocketProtocol(max_message=1 << 20, deflate=DeflateParams())
    closed_with(proto, proto.receive(frame(2, bomb, rsv=0x40)), 1009)


def test_corrupt_compressed_data_is_1007() -> None:
    proto = WebSocketProtocol(deflate=DeflateParams())
    closed_with(proto, proto.receive(frame(2, b"\xff\xff\xff\xff\xff", rsv=0x40)), 1007)


def test_compressed_text_checked_for_utf8() -> None:
    proto = WebSocketProtocol(deflate=DeflateParams())
    closed_with(proto, proto.receive(frame(1, compressed(b"ok \xff"), rsv=0x40)), 1007)


def test_state_names() -> None:
    assert server().state == OPEN
