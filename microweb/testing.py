"""The test client: an ``httpx.Client`` whose transport runs requests through the app in memory.

``app.test_client()`` returns an ``httpx.Client``. Its ``AppTransport`` serializes
each httpx request to HTTP/1.1 bytes, feeds them to microweb's own
``RequestParser`` (so framing, limits and header validation are the server's),
calls ``app.handle`` exactly as the reactor does, and parses the bytes it returns
back into an ``httpx.Response``. Streamed bodies are pulled from the
``StreamBody`` lazily (``client.stream(...)`` reads them piece by piece), file
bodies with ``os.pread``. No socket is opened.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator, Protocol

try:
    import httpx
except ImportError as exc:  # plain ``pip install microweb`` does not bring the test client's dependency
    raise ImportError("microweb's test client needs httpx: pip install 'microweb[testing]'",
                      name=exc.name) from exc

from .http.bodies import BodySource, FileBody, StreamBody
from .http.encode import LAST_CHUNK, encode_chunk, internal_error_response
from .http.parser import Limits, RequestParser
from .http.websocket import (ABNORMAL_CLOSURE, INTERNAL_ERROR, NORMAL_CLOSURE, Close, WebSocketProtocol,
                             WebSocketUpgrade, accept_key, client_handshake, negotiate_deflate)
from .requests import Request
from .websocket import WebSocketClosed


class Handles(Protocol):
    """What the transport needs of an app (an ``App``): ``handle(request)`` and its request class."""

    @property
    def request_class(self) -> Callable[..., Any]: ...

    def handle(self, request: Any) -> bytes | BodySource: ...

__all__ = ["AppTransport", "TestClient", "WebSocketSession", "WebSocketDenied", "test_client"]

log = logging.getLogger("microweb")


class AppTransport(httpx.BaseTransport):
    """An httpx transport that answers requests with ``app.handle``, without a socket."""

    def __init__(self, app: Handles, limits: Limits | None = None, remote_addr: str = "127.0.0.1") -> None:
        self.app = app
        self.limits = limits or Limits()
        self.remote_addr = remote_addr
        admit = getattr(app, "admit", None)
        if admit is not None and self.limits.open_body is None:
            # Bodies are admitted as the server admits them: route limits, 404/413 pages before the body.
            from .server.spool import Spooler

            spooler = self.spooler = Spooler(max_body_size=self.limits.max_body_size)
            self.limits.open_body = lambda req, length: admit(req, length, spooler)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raw = serialize_request(request)
        parser = RequestParser(self.limits, self.remote_addr, request.url.scheme,
                               getattr(self.app, "request_class", Request))
        requests = parser.receive(raw)
        if parser.error is not None and not requests:
            output: bytes | BodySource = parser.error.response()
        elif len(requests) != 1:
            raise httpx.RemoteProtocolError(f"the request bytes parsed into {len(requests)} requests",
                                            request=request)
        else:
            try:
                output = self.app.handle(requests[0])
            except Exception:  # the server does the same: log, answer 500
                log.exception("unhandled error in the application")
                output = internal_error_response(requests[0].method == "HEAD")
        return build_response(output, request)


def serialize_request(request: httpx.Request) -> bytes:
    """The bytes a client would send for ``request`` (chunked when httpx streams the body)."""
    body = request.read()
    target = request.url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} HTTP/1.1"]
    chunked = False
    for name, value in request.headers.multi_items():
        lname = name.lower()
        if lname == "transfer-encoding":
            chunked = "chunked" in value.lower()
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if chunked:
        return head + (encode_chunk(body) if body else b"") + LAST_CHUNK
    return head + body


def build_response(output: bytes | BodySource, request: httpx.Request) -> httpx.Response:
    """Parse what ``app.handle`` produced into an ``httpx.Response``."""
    data = output if isinstance(output, (bytes, bytearray)) else output.head
    head, sep, rest = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        raise httpx.RemoteProtocolError("the app produced a response without a complete head", request=request)
    status_line, *field_lines = head.split(b"\r\n")
    version, status, reason = status_line.split(b" ", 2)
    headers = []
    for line in field_lines:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    extensions = {"http_version": version, "reason_phrase": reason}
    stream: httpx.SyncByteStream
    if isinstance(output, StreamBody):
        stream = _StreamBodyStream(output)
    elif isinstance(output, FileBody):
        stream = _FileBodyStream(output)
    else:
        if isinstance(output, BodySource):
            output.close()
        stream = httpx.ByteStream(rest)
    return httpx.Response(int(status), headers=headers, stream=stream, request=request, extensions=extensions)


class _StreamBodyStream(httpx.SyncByteStream):
    """The pieces of a ``StreamBody``, with chunk framing removed, pulled as httpx reads."""

    def __init__(self, source: StreamBody) -> None:
        self.source = source

    def __iter__(self) -> Iterator[bytes]:
        source = self.source
        while True:
            try:
                piece = source.next_piece()
            except Exception as exc:
                # On a socket the server closes the connection here: the client sees a cut body.
                log.exception("a streamed response raised after its head was sent; closing the connection")
                source.close()
                raise httpx.RemoteProtocolError(f"peer closed connection without sending complete "
                                                f"message body ({type(exc).__name__})") from exc
            if piece is None:
                return
            yield _unchunk(piece) if source.chunked else piece

    def close(self) -> None:
        self.source.close()


def _unchunk(piece: bytes) -> bytes:
    """The data of one ``encode_chunk`` frame."""
    size_end = piece.index(b"\r\n")
    size = int(piece[:size_end], 16)
    return piece[size_end + 2:size_end + 2 + size]


class _FileBodyStream(httpx.SyncByteStream):
    """A ``FileBody`` read with ``os.pread`` in 64 KiB steps."""

    def __init__(self, source: FileBody) -> None:
        self.source = source

    def __iter__(self) -> Iterator[bytes]:
        source = self.source
        while source.remaining > 0:
            data = os.pread(source.fd, min(source.remaining, 65536), source.offset)
            if not data:
                raise httpx.RemoteProtocolError("file ended early while sending")
            source.offset += len(data)
            source.remaining -= len(data)
            yield data
        source.close()

    def close(self) -> None:
        self.source.close()


class TestClient(httpx.Client):
    """An ``httpx.Client`` over ``AppTransport``, plus ``websocket_connect(path)``."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: Handles, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app

    def websocket_connect(self, path: str, subprotocols: list[str] | tuple[str, ...] = (),
                          headers: dict[str, str] | None = None, deflate: bool = False,
                          max_message: int = 1 << 20) -> WebSocketSession:
        """An in-memory WebSocket to ``path``: a context manager (``send_text``, ``receive_text``, ...).

        The handshake goes through the parser and ``app.handle``, and every frame both ways through
        ``WebSocketProtocol``; the handler runs in a thread, as under ``--threads``. A refused
        handshake raises ``WebSocketDenied`` (its ``response`` is the ``httpx.Response``).
        """
        return WebSocketSession(self.app, path, list(subprotocols), dict(headers or {}), deflate, max_message)


def test_client(app: Handles, base_url: str = "http://testserver", **kwargs: Any) -> TestClient:
    """``TestClient(app, transport=AppTransport(app), base_url=base_url, **kwargs)``."""
    transport = kwargs.pop("transport", None) or AppTransport(app)
    return TestClient(app, transport=transport, base_url=base_url, **kwargs)


class WebSocketDenied(Exception):
    """The app answered a WebSocket handshake without accepting it."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"the WebSocket handshake was refused with {response.status_code}: {response.text.strip()}")
        self.response = response
        self.status_code = response.status_code


class _MemoryEndpoint:
    """The server side of an in-memory websocket, as ``server/websocket.py``'s ``Endpoint`` is on a socket."""

    def __init__(self, session: WebSocketSession, protocol: WebSocketProtocol) -> None:
        self.session = session
        self.protocol = protocol
        self.lock = threading.Lock()
        self.loop_thread = threading.get_ident()

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.loop_thread

    @property
    def is_closed(self) -> bool:
        return self.protocol.state != "OPEN"

    def send(self, data: str | bytes) -> bool:
        with self.lock:
            if self.protocol.close_sent or self.protocol.state == "CLOSED":
                return False
            frame = self.protocol.encode_message(data)
        self.session._to_client(frame)
        return True

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        with self.lock:
            frame = self.protocol.encode_close(code, reason)
        if frame:
            self.session._to_client(frame)

    def call_soon(self, func: Callable[[], None]) -> None:
        if self.on_loop_thread():
            func()
        else:
            self.session._call_soon(func)

    def pause_reading(self, paused: bool) -> None:
        pass  # nothing is read from a socket: the test's own sends are the input


class WebSocketSession:
    """An in-memory WebSocket client connected to an app (see ``TestClient.websocket_connect``)."""

    def __init__(self, app: Handles, path: str, subprotocols: list[str], headers: dict[str, str], deflate: bool,
                 max_message: int) -> None:
        raw, key = client_handshake(path, "testserver", subprotocols=subprotocols,
                                    extensions="permessage-deflate; client_max_window_bits" if deflate else None,
                                    headers=list(headers.items()))
        parser = RequestParser(Limits(), "127.0.0.1", "http", getattr(app, "request_class", Request))
        requests = parser.receive(raw)
        if len(requests) != 1:
            raise ValueError(f"the handshake request did not parse: {parser.error}")
        output = app.handle(requests[0])
        if not isinstance(output, WebSocketUpgrade):
            request = httpx.Request("GET", "http://testserver" + path)
            response = build_response(output, request)
            response.read()
            raise WebSocketDenied(response)
        negotiated = negotiate_deflate(output.offers) if output.offers else None
        head = output.response_head(negotiated).decode("latin-1")
        if not head.startswith("HTTP/1.1 101 ") or f"Sec-WebSocket-Accept: {accept_key(key)}" not in head:
            raise AssertionError(f"not a valid 101 response: {head!r}")
        self.subprotocol = output.subprotocol
        self.extensions = negotiated.response_value() if negotiated else None
        self.client = WebSocketProtocol(max_message, negotiated, client=True)
        self.endpoint = _MemoryEndpoint(self, WebSocketProtocol(max_message, negotiated))
        self._cond = threading.Condition()
        self._frames: deque[bytes] = deque()  # from the server, not yet read by the client
        self._calls: deque[Callable[[], None]] = deque()
        self._messages: deque[Any] = deque()
        self.close_code: int | None = None
        self.close_reason = ""
        self._reported = False
        self.listener, run = output.open(self.endpoint)
        self.thread = threading.Thread(target=run, name="microweb-test-websocket", daemon=True)
        self.thread.start()
        # Like a server's handshake, connecting returns once the handler has set up: it has
        # returned (event style) or waits in receive() (blocking style), or after a second.
        deadline = time.monotonic() + 1.0
        while self.thread.is_alive() and not getattr(self.listener, "receiving", False) \
                and time.monotonic() < deadline:
            self.thread.join(0.001)

    # -- the server side, from any thread -----------------------------------------

    def _to_client(self, frame: bytes) -> None:
        with self._cond:
            self._frames.append(frame)
            self._cond.notify_all()

    def _call_soon(self, func: Callable[[], None]) -> None:
        with self._cond:
            self._calls.append(func)
            self._cond.notify_all()

    def _to_server(self, frame: bytes) -> None:
        """Feed the server's protocol and deliver what it completes, as the hub does."""
        endpoint = self.endpoint
        with endpoint.lock:
            events = endpoint.protocol.receive(frame)
            answers, endpoint.protocol.outgoing = endpoint.protocol.outgoing, []
        for answer in answers:
            self._to_client(answer)
        for event in events:
            if isinstance(event, Close):
                self._report(event.code, event.reason)
            elif isinstance(event, (str, bytes)):
                try:
                    self.listener.deliver_message(event)
                except Exception:
                    log.exception("unhandled error in a websocket message handler")
                    endpoint.close(INTERNAL_ERROR)

    def _report(self, code: int, reason: str) -> None:
        if not self._reported:
            self._reported = True
            try:
                self.listener.deliver_close(code, reason)
            except Exception:
                log.exception("unhandled error in a websocket close handler")

    def _pump(self) -> None:
        """Run the calls the handler's thread left for the loop, and read the server's frames."""
        while True:
            with self._cond:
                call = self._calls.popleft() if self._calls else None
                frame = self._frames.popleft() if call is None and self._frames else None
            if call is not None:
                call()
            elif frame is not None:
                for event in self.client.receive(frame):
                    self._messages.append(event)
                answers, self.client.outgoing = self.client.outgoing, []
                for answer in answers:
                    self._to_server(answer)
            else:
                return

    # -- the client API --------------------------------------------------------------

    def send_text(self, text: str) -> None:
        self._send(text)

    def send_bytes(self, data: bytes) -> None:
        self._send(bytes(data))

    def send(self, message: str | bytes) -> None:
        self._send(message)

    def _send(self, message: str | bytes) -> None:
        self._pump()
        if self.client.state != "OPEN":
            raise WebSocketClosed(self.close_code or ABNORMAL_CLOSURE, self.close_reason)
        self._to_server(self.client.encode_message(message))
        self._pump()

    def receive(self, timeout: float = 5.0) -> str | bytes:
        """The next message from the app; ``WebSocketClosed`` once it has closed."""
        deadline = time.monotonic() + timeout
        while True:
            self._pump()
            if self._messages:
                event = self._messages.popleft()
                if isinstance(event, Close):
                    self.close_code, self.close_reason = event.code, event.reason
                    self._messages.appendleft(event)
                    raise WebSocketClosed(event.code, event.reason)
                if isinstance(event, (str, bytes)):
                    return event
                continue  # a pong
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no message from the app within the timeout")
            with self._cond:
                if not self._frames and not self._calls:
                    self._cond.wait(min(remaining, 0.05))

    def receive_text(self, timeout: float = 5.0) -> str:
        message = self.receive(timeout)
        if not isinstance(message, str):
            raise TypeError(f"expected a text message, got {message!r}")
        return message

    def receive_bytes(self, timeout: float = 5.0) -> bytes:
        message = self.receive(timeout)
        if isinstance(message, str):
            raise TypeError(f"expected a binary message, got {message!r}")
        return message

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close from the client side; the app's ``on_close`` gets ``(code, reason)``."""
        self._pump()
        frame = self.client.encode_close(code, reason)
        if frame:
            self._to_server(frame)
        self._pump()
        self.thread.join(1.0)

    def __enter__(self) -> WebSocketSession:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.client.state == "OPEN":
            self.close()
        self.thread.join(1.0)
