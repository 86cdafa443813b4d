"""WebSockets on a live server, with real clients: websockets, websocket-client, wsproto over a raw socket."""
from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import ssl
import struct
import threading
import time
import zlib
from typing import Any, Callable, Iterator

import pytest
import websocket as websocket_client  # websocket-client
from tlsutil import make_cert
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request, TextMessage

from microweb import App, WebSocket, WebSocketClosed
from microweb.http.websocket import encode_frame

from conftest import LiveServer

MASK = b"\x01\x02\x03\x04"


def make_app() -> App:
    app = App(static_folder=None)
    app.events = []  # type: ignore[attr-defined]
    app.sockets = set()  # type: ignore[attr-defined]

    @app.websocket("/echo")
    def echo(request: Any, ws: WebSocket) -> None:
        app.sockets.add(ws)  # type: ignore[attr-defined]
        ws.on_message(ws.send)

        @ws.on_close
        def gone(code: int, reason: str) -> None:
            app.sockets.discard(ws)  # type: ignore[attr-defined]
            app.events.append(("close", code, reason))  # type: ignore[attr-defined]

    @app.websocket("/proto", subprotocols=["v2", "v1"])
    def proto(request: Any, ws: WebSocket) -> None:
        ws.send(f"subprotocol {ws.subprotocol}")
        ws.on_message(ws.send)

    @app.websocket("/blocking")
    def blocking(request: Any, ws: WebSocket) -> None:
        try:
            message = ws.receive(timeout=5)
        except RuntimeError as exc:
            app.events.append(("error", str(exc)))  # type: ignore[attr-defined]
            raise
        ws.send(f"blocking got {message}")
        ws.close(1000, "done")

    @app.get("/plain")
    def plain(request: Any) -> str:
        return "plain"

    return app


@pytest.fixture
def ws_server(live_server: Callable[..., LiveServer]) -> Iterator[Callable[..., tuple[App, LiveServer]]]:
    def start(**options: Any) -> tuple[App, LiveServer]:
        app = make_app()
        return app, live_server(app, **options)

    yield start


def ws_url(server: LiveServer, path: str = "/echo") -> str:
    return f"ws://{server.host}:{server.port}{path}"


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    return predicate()


# -- the websockets library (sync client) ---------------------------------------------------


def test_websockets_client_echo_text_binary_large_and_deflate(ws_server: Any) -> None:
    app, server = ws_server()
    with connect(ws_url(server)) as ws:
        assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\xff" * 10)
        assert ws.recv(timeout=5) == b"\x00\xff" * 10
        big = os.urandom(600_000)
        ws.send(big)
        assert ws.recv(timeout=10) == big
        text = "compressible " * 20000
        ws.send(text)
        assert ws.recv(timeout=10) == text
        ws.send(["frag", "mented ", "message"])  # fragments reassembled
        assert ws.recv(timeout=5) == "fragmented message"
        ws.close(4002, "client done")
    assert wait_until(lambda: ("close", 4002, "client done") in app.events)


def test_websockets_client_without_compression(ws_server: Any) -> None:
    _, server = ws_server(ws_deflate=False)
    with connect(ws_url(server)) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        ws.send("plain")
        assert ws.recv(timeout=5) == "plain"


def test_message_over_the_limit_closes_1009(ws_server: Any) -> None:
    _, server = ws_server(ws_max_message=1000)
    with connect(ws_url(server), compression=None) as ws:
        ws.send("x" * 900)
        assert ws.recv(timeout=5) == "x" * 900
        ws.send("x" * 1001)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_server_closes_with_1001_on_graceful_stop(ws_server: Any) -> None:
    app, server = ws_server()
    with connect(ws_url(server)) as ws:
        ws.send("before")
        assert ws.recv(timeout=5) == "before"
        started = time.monotonic()
        server.server.stop()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    server.thread.join(10)
    assert not server.thread.is_alive() and time.monotonic() - started < 8
    assert ("close", 1001, "") in app.events or any(e[:2] == ("close", 1001) for e in app.events)


def test_background_thread_broadcast_and_close(ws_server: Any) -> None:
    app, server = ws_server()
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(ws_url(server))) for _ in range(5)]
        assert wait_until(lambda: len(app.sockets) == 5)  # type: ignore[attr-defined]

        def broadcast() -> None:
            for i in range(20):
                for ws in list(app.sockets):  # type: ignore[attr-defined]
                    ws.send(f"tick {i}")
            for ws in list(app.sockets):  # type: ignore[attr-defined]
                ws.close(4100, "broadcast over")

        thread = threading.Thread(target=broadcast)
        thread.start()
        thread.join(10)
        for client in clients:
            assert [client.recv(timeout=5) for _ in range(20)] == [f"tick {i}" for i in range(20)]
            with pytest.raises(ConnectionClosed) as info:
                client.recv(timeout=5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 4100
        assert wait_until(lambda: sum(1 for e in app.events if e[1] == 4100) == 5)  # type: ignore[attr-defined]


def test_send_after_close_raises_websocket_closed(ws_server: Any) -> None:
    app, server = ws_server()
    with connect(ws_url(server)) as client:
        ws = wait_until(lambda: next(iter(app.sockets), None))  # type: ignore[attr-defined]
        client.close()
        assert wait_until(lambda: ws.closed)
        with pytest.raises(WebSocketClosed):
            ws.send("too late")


def test_tls_wss(live_server: Callable[..., LiveServer], tmp_path: Any) -> None:
    from microweb.server.tls import TLSServer

    cert, key = make_cert(str(tmp_path))
    app = make_app()
    tls = TLSServer(app.handle, "127.0.0.1", 0, certfile=cert, keyfile=key, request_class=app.request_class)
    thread = threading.Thread(target=tls.serve_forever, daemon=True)
    thread.start()
    tls.started.wait(5)
    try:
        context = ssl.create_default_context(cafile=cert)
        host, port = tls.address
        with connect(f"wss://localhost:{port}/echo", ssl=context) as ws:
            for size in (10, 70_000, 300_000):
                data = os.urandom(size)
                ws.send(data)
                assert ws.recv(timeout=10) == data
            ws.send("secure")
            assert ws.recv(timeout=5) == "secure"
    finally:
        tls.stop()
        thread.join(10)


def test_blocking_handler_runs_in_the_pool_under_threads(ws_server: Any) -> None:
    _, server = ws_server(threads=2)
    with connect(ws_url(server, "/blocking")) as ws:
        ws.send("ping?")
        assert ws.recv(timeout=5) == "blocking got ping?"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000


def test_blocking_receive_on_the_loop_raises_a_clear_error(ws_server: Any) -> None:
    app, server = ws_server()
    with connect(ws_url(server, "/blocking")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    [(_, message)] = [e for e in app.events if e[0] == "error"]  # type: ignore[attr-defined]
    assert "--threads" in message and "on_message" in message


def test_http_keeps_working_beside_websockets(ws_server: Any) -> None:
    import httpx

    _, server = ws_server()
    with connect(ws_url(server)) as ws, httpx.Client(base_url=server.url) as http:
        for i in range(5):
            ws.send(str(i))
            assert http.get("/plain").text == "plain"
            assert ws.recv(timeout=5) == str(i)
        r = http.get("/echo")
        assert r.status_code == 426


# -- websocket-client ------------------------------------------------------------------------


def test_websocket_client_library(ws_server: Any) -> None:
    _, server = ws_server()
    ws = websocket_client.create_connection(ws_url(server, "/proto"), subprotocols=["v1", "v9"], timeout=5)
    try:
        assert ws.getsubprotocol() == "v1"
        assert ws.recv() == "subprotocol v1"
        ws.send("text")
        assert ws.recv() == "text"
        ws.send_binary(b"\x01\x02")
        assert ws.recv() == b"\x01\x02"
        ws.ping(b"hb")
        opcode, data = ws.recv_data(control_frame=True)
        assert (opcode, data) == (websocket_client.ABNF.OPCODE_PONG, b"hb")
    finally:
        ws.close()


# -- raw sockets and wsproto: the protocol rules ----------------------------------------------


class RawClient:
    """A websocket over a raw socket: wsproto for the handshake and for reading what the server sends."""

    def __init__(self, server: LiveServer, path: str = "/echo", extensions: list[Any] | None = None,
                 first: bytes = b"") -> None:
        self.sock = server.connect()
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host="localhost", target=path, extensions=extensions or [])) + first)
        self.events: list[Any] = []
        accepted = self._read_until(lambda: any(isinstance(e, AcceptConnection) for e in self.events))
        assert accepted, self.events

    def _read_until(self, done: Callable[[], bool], timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                data = b""
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                self.events.append(event)
                if isinstance(event, CloseConnection) and self.ws.state.name not in ("CLOSED",):
                    try:
                        self.sock.sendall(self.ws.send(event.response()))
                    except OSError:
                        pass
            if not data:
                break
        return done()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def messages(self) -> list[Any]:
        return [e.data for e in self.events if isinstance(e, (TextMessage, BytesMessage))]

    def wait_message(self) -> Any:
        count = len(self.messages())
        assert self._read_until(lambda: len(self.messages()) > count), self.events
        return self.messages()[count]

    def wait_close(self) -> CloseConnection:
        self._read_until(lambda: any(isinstance(e, CloseConnection) for e in self.events))
        closes = [e for e in self.events if isinstance(e, CloseConnection)]
        assert closes, self.events
        return closes[0]

    def server_closed_tcp(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def cframe(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bytes | None = MASK) -> bytes:
    data = bytearray(encode_frame(opcode, payload, fin, False, mask))
    data[0] |= rsv
    return bytes(data)


VIOLATIONS = [
    ("unmasked frame", cframe(1, b"x", mask=None), 1002),
    ("RSV1 without deflate", cframe(1, b"x", rsv=0x40), 1002),
    ("RSV2", cframe(1, b"x", rsv=0x20), 1002),
    ("RSV3", cframe(1, b"x", rsv=0x10), 1002),
    ("reserved opcode 3", cframe(3, b"x"), 1002),
    ("reserved control opcode 11", cframe(11, b""), 1002),
    ("fragmented ping", cframe(9, b"x", fin=False), 1002),
    ("ping over 125 bytes", cframe(9, b"x" * 126), 1002),
    ("continuation without start", cframe(0, b"x"), 1002),
    ("new message inside a fragmented one", cframe(1, b"a", fin=False) + cframe(2, b"b"), 1002),
    ("invalid UTF-8", cframe(1, b"\xc3\x28"), 1007),
    ("invalid UTF-8 across fragments", cframe(1, b"\xe2\x82", fin=False) + cframe(0, b"\x28"), 1007),
    ("close code 1005", cframe(8, struct.pack("!H", 1005)), 1002),
    ("close code 1006", cframe(8, struct.pack("!H", 1006)), 1002),
    ("close code 1015", cframe(8, struct.pack("!H", 1015)), 1002),
    ("close code 2000 (reserved)", cframe(8, struct.pack("!H", 2000)), 1002),
    ("close code 5000", cframe(8, struct.pack("!H", 5000)), 1002),
    ("one-byte close", cframe(8, b"\x03"), 1002),
    ("close reason not UTF-8", cframe(8, struct.pack("!H", 1000) + b"\xff"), 1007),
    ("message over the limit", cframe(2, b"x" * 70_000), 1009),
]


@pytest.mark.parametrize("name, data, code", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_protocol_violations_close_with_their_code_and_affect_nothing_else(ws_server: Any, name: str, data: bytes,
                                                                          code: int) -> None:
    app, server = ws_server(ws_max_message=65536)
    bystander = RawClient(server)
    victim = RawClient(server)
    try:
        victim.send_raw(cframe(1, b"fine"))
        assert victim.wait_message() == "fine"
        victim.send_raw(data)
        close = victim.wait_close()
        assert close.code == code, (name, close)
        assert victim.server_closed_tcp()  # then the server ends the connection
        assert wait_until(lambda: any(e[:2] == ("close", code) for e in app.events))  # type: ignore[attr-defined]
        bystander.send_raw(cframe(1, b"still here"))
        assert bystander.wait_message() == "still here"
    finally:
        bystander.close()
        victim.close()


def test_ping_between_fragments_is_answered_at_once(ws_server: Any) -> None:
    _, server = ws_server()
    client = RawClient(server)
    try:
        client.send_raw(cframe(1, b"Hel", fin=False) + cframe(9, b"mid"))
        assert client._read_until(lambda: any(e.__class__.__name__ == "Pong" for e in client.events))
        client.send_raw(cframe(0, b"lo"))
        assert client.wait_message() == "Hello"
    finally:
        client.close()


@pytest.mark.parametrize("threads", [0, 2])
def test_first_frames_sent_with_the_handshake_are_read(ws_server: Any, threads: int) -> None:
    _, server = ws_server(threads=threads)
    client = RawClient(server, first=cframe(1, b"early") + cframe(1, b"bird"))
    try:
        if len(client.messages()) < 2:
            client._read_until(lambda: len(client.messages()) >= 2)
        assert client.messages() == ["early", "bird"]
    finally:
        client.close()


@pytest.mark.parametrize("threads", [0, 2])
def test_declined_upgrade_and_pipelined_request_are_both_answered(ws_server: Any, threads: int) -> None:
    _, server = ws_server(threads=threads)
    sock = server.connect()
    try:
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                     b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"plain") < 2 and time.monotonic() < deadline:
            data += sock.recv(65536)
        assert data.count(b"HTTP/1.1 200 OK") == 2 and data.count(b"\r\n\r\nplain") == 2
    finally:
        sock.close()


def test_http10_handshake_is_refused(ws_server: Any) -> None:
    _, server = ws_server()
    sock = server.connect()
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET /echo HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 400 ") and b"HTTP/1.1" in data.split(b"\r\n\r\n", 1)[1]
    finally:
        sock.close()


def test_bad_handshakes_on_the_wire(ws_server: Any) -> None:
    _, server = ws_server()
    for extra, status in ((b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"426"),
                          (b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n", b"400")):
        sock = server.connect()
        try:
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + extra
                         + b"\r\n")
            head = sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 " + status), head
            if status == b"426":
                assert b"Sec-WebSocket-Version: 13\r\n" in head
        finally:
            sock.close()


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_deflate_negotiated_parameters_and_zip_bomb(ws_server: Any) -> None:
    from wsproto.extensions import PerMessageDeflate

    app, server = ws_server(ws_max_message=1 << 20)
    client = RawClient(server, extensions=[PerMessageDeflate(client_no_context_takeover=True,
                                                             server_no_context_takeover=True)])
    try:
        accept = next(e for e in client.events if isinstance(e, AcceptConnection))
        [ext] = accept.extensions
        assert ext.name == "permessage-deflate"
        # A compressed message the server inflates, and its compressed answer.
        client.send_raw(cframe(1, deflate_raw(b"squeeze " * 1000), rsv=0x40))
        assert client.wait_message() == "squeeze " * 1000
        # 64 MiB of zeros in about 64 KiB: refused with 1009 long before it is inflated.
        client.send_raw(cframe(2, deflate_raw(b"\0" * (64 << 20)), rsv=0x40))
        assert client.wait_close().code == 1009
    finally:
        client.close()


def test_unanswered_ping_disconnects_the_peer(ws_server: Any) -> None:
    app, server = ws_server(ws_ping_interval=1, ws_ping_timeout=1)
    sock = server.connect()
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        sock.settimeout(10)
        data = b""
        started = time.monotonic()
        while True:  # never answer the pings
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - started
        body = data.split(b"\r\n\r\n", 1)[1]
        assert body.startswith(b"\x89")  # a ping came first
        assert b"\x88" in body  # then a close frame
        assert 1.0 <= elapsed < 9
        assert wait_until(lambda: any(e[:2] == ("close", 1006) for e in app.events))  # type: ignore[attr-defined]
    finally:
        sock.close()


def test_answered_pings_keep_the_connection(ws_server: Any) -> None:
    _, server = ws_server(ws_ping_interval=0.5, ws_ping_timeout=1)
    with connect(ws_url(server)) as ws:  # the library answers pings by itself
        time.sleep(3.5)
        ws.send("alive")
        assert ws.recv(timeout=5) == "alive"


def test_close_handshake_times_out_when_the_peer_never_answers(ws_server: Any) -> None:
    app, server = ws_server(ws_ping_timeout=1)
    client = RawClient(server)
    try:
        ws = wait_until(lambda: next(iter(app.sockets), None))  # type: ignore[attr-defined]
        ws.close(1000, "bye")
        client.sock.settimeout(5)
        started = time.monotonic()
        data = b""
        while True:  # read, never answer the close
            chunk = client.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"\x88")
        assert 0.5 <= time.monotonic() - started < 4.5
    finally:
        client.close()


# -- backpressure -------------------------------------------------------------------------------


def test_a_peer_that_does_not_read_blocks_sends_from_threads(ws_server: Any) -> None:
    app, server = ws_server(high_water=64 * 1024, write_timeout=1, ws_deflate=False)
    sock = server.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        ws = wait_until(lambda: next(iter(app.sockets), None))  # type: ignore[attr-defined]
        sent = 0
        outcome: list[BaseException] = []

        def flood() -> None:
            nonlocal sent
            try:
                for _ in range(10_000):  # 640 MB if nothing held it back
                    ws.send(b"x" * 65536)
                    sent += 65536
            except (TimeoutError, WebSocketClosed) as exc:
                outcome.append(exc)

        thread = threading.Thread(target=flood)
        thread.start()
        thread.join(20)
        assert not thread.is_alive()
        assert outcome and isinstance(outcome[0], (TimeoutError, WebSocketClosed))
        assert sent < 32 << 20  # bounded by the socket buffers and high_water, far below the flood
    finally:
        sock.close()


def test_a_peer_that_sends_without_reading_is_no_longer_read(ws_server: Any) -> None:
    high_water = 256 * 1024
    app, server = ws_server(high_water=high_water, ws_deflate=False)
    sock = server.connect()
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        assert b"101" in sock.recv(4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        message = cframe(2, b"y" * 60_000)
        stop = threading.Event()

        def flood() -> None:  # echo requests, never reading the echoes
            sock.settimeout(0.5)
            for _ in range(2000):  # 120 MB if the server kept reading
                if stop.is_set():
                    return
                try:
                    sock.sendall(message)
                except (socket.timeout, OSError):
                    continue

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        hub = wait_until(lambda: server.server.websockets)
        peak = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for ep in list(hub.endpoints):
                peak = max(peak, ep.out_bytes)
            time.sleep(0.01)
        stop.set()
        [ep] = list(hub.endpoints)
        assert not ep.closed and not ep.events & 1  # still open, not polled for reading
        # What waits is bounded by high_water plus one read's echoes, not by what the peer sent.
        assert high_water < peak <= high_water + 2 * 65536 + 1024
        thread.join(5)
    finally:
        sock.close()


RELOAD_SOURCE = '''
from microweb import App

app = App(static_folder=None)


@app.websocket("/v")
def v(request, ws):
    ws.send("version {n}")
    ws.on_message(ws.send)
'''


@pytest.mark.slow
def test_reload_closes_websockets_with_1001_and_the_new_code_serves_them(tmp_path: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import free_port, start_cli, wait_for_port

    monkeypatch.setenv("MICROWEB_RELOAD_POLL", "1")
    app_file = tmp_path / "wsreload.py"
    app_file.write_text(RELOAD_SOURCE.format(n=1))
    port = free_port()
    proc = start_cli("run", "wsreload:app", "--port", str(port), "--reload", "--reload-interval", "0.1",
                     cwd=str(tmp_path))
    try:
        wait_for_port("127.0.0.1", port)
        with connect(f"ws://127.0.0.1:{port}/v", open_timeout=10) as ws:
            assert ws.recv(timeout=10) == "version 1"
            app_file.write_text(RELOAD_SOURCE.format(n=2))
            os.utime(app_file, (time.time() + 2, time.time() + 2))
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=20)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        deadline = time.monotonic() + 15
        while True:
            try:
                with connect(f"ws://127.0.0.1:{port}/v", open_timeout=10) as ws:
                    assert ws.recv(timeout=10) == "version 2"
                    ws.send("still echoes")
                    assert ws.recv(timeout=5) == "still echoes"
                break
            except (OSError, ConnectionClosed, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
