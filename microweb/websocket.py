"""WebSocket routes: ``@app.websocket(path)``, the ``WebSocket`` a handler gets, and ``WebSocketClosed``.

A websocket route is a GET route whose handler the framework wraps: it checks
the handshake (``http/websocket.py``), the ``Origin`` against the allowed ones,
picks a subprotocol, and answers with a ``WebSocketResponse``, whose encoding
is a ``WebSocketUpgrade``: the server sends the 101 and calls back with an
endpoint (``server/websocket.py``'s ``Endpoint``, or the test client's), and
then the handler runs as ``handler(request, ws, **path_params)``.

Two styles. Event style: the handler registers ``ws.on_message(fn)`` and/or
``ws.on_close(fn)`` and returns; the callbacks run on the server's loop, so
they must not block. Blocking style: the handler calls ``ws.receive()``, which
waits, so it must run off the loop: under ``--threads N`` handlers run in the
pool (on the loop, ``receive`` raises ``RuntimeError`` saying so). When a
handler returns without having registered a callback, the connection is
closed (1000), as a blocking-style handler that returns is done.

``send`` and ``close`` may be called from any thread. Messages that arrive
before ``on_message`` is registered, or while a blocking handler is not in
``receive``, wait in an inbox; past ``INBOX_HIGH`` of them the server stops
reading the socket until the inbox drains.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable, Iterable

from .http.bodies import BodySource
from .http.datastructures import CompactHeaders
from .http.request import HTTPRequest
from .http.websocket import (INTERNAL_ERROR, NORMAL_CLOSURE, HandshakeError, WebSocketUpgrade,
                             check_handshake)
from .responses import Response

__all__ = ["WebSocket", "WebSocketClosed", "WebSocketRoute", "WebSocketResponse"]

log = logging.getLogger("microweb")

Message = str | bytes
INBOX_HIGH = 64  # messages waiting before the socket is no longer read
INBOX_LOW = 16  # ... and read again once the inbox is down to this
_HANDSHAKE_FIELDS = frozenset({"upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
                               "sec-websocket-extensions"})


class WebSocketClosed(Exception):
    """The connection is closed: ``code`` and ``reason`` as the peer (or the server) gave them."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"WebSocket closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class WebSocket:
    """One accepted WebSocket connection, as a handler sees it."""

    __slots__ = ("request", "subprotocol", "receiving", "_endpoint", "_lock", "_cond", "_inbox", "_paused",
                 "_message_handler", "_close_handler", "_close", "_close_reported", "__weakref__")

    def __init__(self, request: HTTPRequest, endpoint: Any, subprotocol: str | None) -> None:
        # The request lives as long as the socket: its fields in the compact form, without the
        # ones the handshake consumed (memory: 10,000 sockets hold 10,000 requests).
        request.headers = CompactHeaders((name, value) for name, value in request.headers.items()
                                         if name.lower() not in _HANDSHAKE_FIELDS)
        self.request = request
        self.subprotocol = subprotocol
        self._endpoint = endpoint
        # The endpoint's lock serves here too (one lock less per socket); nothing here calls the
        # endpoint while holding it.
        self._lock: Any = getattr(endpoint, "lock", None) or threading.Lock()
        # Made by the first receive(): an event-style socket never needs one (memory, at 10,000 sockets).
        self._cond: threading.Condition | None = None
        self._inbox: deque[Message] | None = None  # made when a message has to wait (an empty deque is 600 bytes)
        self._paused = False
        self._message_handler: Callable[[Message], Any] | None = None
        self._close_handler: Callable[[int, str], Any] | None = None
        self._close: tuple[int, str] | None = None
        self._close_reported = False
        self.receiving = False  # a blocking handler is waiting in receive() (the test client looks)

    def __repr__(self) -> str:
        return f"<WebSocket {self.request.path} {'closed' if self.closed else 'open'}>"

    # -- the application's side ------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once either side has begun closing, or the connection dropped."""
        return self._close is not None or self._endpoint.is_closed

    @property
    def close_code(self) -> int | None:
        return self._close[0] if self._close is not None else None

    @property
    def close_reason(self) -> str:
        return self._close[1] if self._close is not None else ""

    def send(self, message: Message) -> None:
        """Send a text (``str``) or binary (``bytes``) message; any thread.

        From another thread, while more than the server's ``high_water`` bytes wait for
        this peer, ``send`` blocks until they drain (``TimeoutError`` after the server's
        ``write_timeout``). Raises ``WebSocketClosed`` once the connection is closing.
        """
        if not isinstance(message, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"ws.send() takes str or bytes, not {type(message).__name__}")
        if not self._endpoint.send(message):
            code, reason = self._close or (1006, "")
            raise WebSocketClosed(code, reason)

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the close handshake (any thread); nothing happens if it has begun."""
        self._endpoint.close(code, reason)

    def on_message(self, func: Callable[[Message], Any]) -> Callable[[Message], Any]:
        """Call ``func(message)`` on the server's loop for every message (usable as a decorator)."""
        with self._lock:
            self._message_handler = func
            waiting = bool(self._inbox)
        if waiting:
            self._endpoint.call_soon(self._flush_inbox)
        return func

    def on_close(self, func: Callable[[int, str], Any]) -> Callable[[int, str], Any]:
        """Call ``func(code, reason)`` once, when the connection has closed (usable as a decorator)."""
        with self._lock:
            self._close_handler = func
            closed = self._close is not None
        if closed:
            self._endpoint.call_soon(self._report_close)
        return func

    def receive(self, timeout: float | None = None) -> Message:
        """The next message (``str`` or ``bytes``); waits at most ``timeout`` seconds (``TimeoutError``).

        Raises ``WebSocketClosed(code, reason)`` once the connection has closed and every
        message received before has been taken.
        """
        if self._endpoint.on_loop_thread():
            raise RuntimeError(
                "ws.receive() blocks, and this handler runs on the server's event loop, where blocking "
                "stops every connection: register ws.on_message(fn) instead, or run the server with "
                "--threads N (App.run(threads=N)) so handlers run in a thread pool")
        with self._lock:
            cond = self._cond
            if cond is None:
                cond = self._cond = threading.Condition(self._lock)
            self.receiving = True
            try:
                arrived = cond.wait_for(lambda: self._inbox or self._close is not None, timeout)
            finally:
                self.receiving = False
            if not arrived:
                raise TimeoutError("no WebSocket message within the timeout")
            if not self._inbox:
                assert self._close is not None
                raise WebSocketClosed(*self._close)
            message = self._inbox.popleft()
            resume = self._paused and len(self._inbox) <= INBOX_LOW
            if resume:
                self._paused = False
        if resume:
            self._endpoint.pause_reading(False)
        return message

    def receive_text(self, timeout: float | None = None) -> str:
        message = self.receive(timeout)
        if not isinstance(message, str):
            raise TypeError("expected a text message, got a binary one")
        return message

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        message = self.receive(timeout)
        if isinstance(message, str):
            raise TypeError("expected a binary message, got a text one")
        return message

    def __iter__(self) -> Any:
        """``for message in ws:`` until the connection closes (blocking style)."""
        while True:
            try:
                yield self.receive()
            except WebSocketClosed:
                return

    @property
    def has_callbacks(self) -> bool:
        return self._message_handler is not None or self._close_handler is not None

    # -- the server's side (its loop thread) ---------------------------------------------

    def deliver_message(self, message: Message) -> None:
        with self._lock:
            handler = self._message_handler
            if handler is None or self._inbox:
                if self._inbox is None:
                    self._inbox = deque()
                self._inbox.append(message)
                if self._cond is not None:
                    self._cond.notify()
                pause = not self._paused and len(self._inbox) >= INBOX_HIGH
                if pause:
                    self._paused = True
                handler = None
            else:
                pause = False
        if pause:
            self._endpoint.pause_reading(True)
        if handler is not None:
            handler(message)

    def _flush_inbox(self) -> None:
        while True:
            with self._lock:
                handler = self._message_handler
                if handler is None or not self._inbox:
                    resume = self._paused
                    self._paused = False
                    break
                message = self._inbox.popleft()
            handler(message)
        if resume:
            self._endpoint.pause_reading(False)

    def deliver_close(self, code: int, reason: str) -> None:
        with self._lock:
            if self._close is None:
                self._close = (code, reason)
            if self._cond is not None:
                self._cond.notify_all()
        self._report_close()

    def _report_close(self) -> None:
        with self._lock:
            handler = self._close_handler
            if handler is None or self._close is None or self._close_reported:
                return
            self._close_reported = True
            code, reason = self._close
        handler(code, reason)


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class WebSocketRoute:
    """The handler registered for a websocket route: handshake checks, then a ``WebSocketResponse``."""

    def __init__(self, app: Any, func: Callable[..., Any], origins: Iterable[str] | None,
                 subprotocols: Iterable[str] | None) -> None:
        self.app = app
        self.func = func
        self.origins = None if origins is None else {_normal_origin(o) for o in origins}
        self.subprotocols = list(subprotocols or ())
        self.__name__ = getattr(func, "__name__", "websocket")
        self.__doc__ = getattr(func, "__doc__", None)

    def bind(self, app: Any) -> WebSocketRoute:
        """This route for ``app`` (a blueprint's websocket routes are bound when it is registered)."""
        route = WebSocketRoute(app, self.func, None, self.subprotocols)
        route.origins = self.origins
        return route

    def allowed_origins(self) -> set[str] | None:
        if self.origins is not None:
            return self.origins
        app_origins = getattr(self.app, "websocket_origins", None)
        return None if app_origins is None else {_normal_origin(o) for o in app_origins}

    def __call__(self, request: Any, **params: Any) -> Response:
        try:
            key = check_handshake(request)
        except HandshakeError as exc:
            return Response(exc.message + "\n", exc.status, exc.headers, "text/plain; charset=utf-8")
        if getattr(request, "environ", None) is not None:
            return Response("WebSocket routes need microweb's own server (microweb run); a WSGI server "
                            "cannot switch protocols\n", 501, None, "text/plain; charset=utf-8")
        allowed = self.allowed_origins()
        origin = request.headers.get("origin")
        if allowed is not None and "*" not in allowed and origin is not None and _normal_origin(origin) not in allowed:
            return Response(f"Origin {origin!r} is not allowed to open this WebSocket\n", 403, None,
                            "text/plain; charset=utf-8")
        if not request.keep_alive:
            return Response("The server is not accepting new WebSocket connections\n", 503,
                            {"Retry-After": "1"}, "text/plain; charset=utf-8")
        subprotocol = None
        if self.subprotocols:
            offered = [p.strip() for v in request.headers.getlist("sec-websocket-protocol") for p in v.split(",")]
            subprotocol = next((p for p in offered if p in self.subprotocols), None)
        return WebSocketResponse(self.func, key, subprotocol, params)


class WebSocketResponse(Response):
    """The answer that accepts a handshake; headers set on it (cookies) go into the 101."""

    __slots__ = ("handler", "key", "subprotocol", "params")

    def __init__(self, handler: Callable[..., Any], key: str, subprotocol: str | None,
                 params: dict[str, Any]) -> None:
        super().__init__(b"", 101)
        self.handler = handler
        self.key = key
        self.subprotocol = subprotocol
        self.params = params

    def encode(self, request: HTTPRequest) -> bytes | BodySource:
        if self.status != 101:  # an after_request hook turned it into another answer
            return Response.encode(self, request)
        headers = [(k, v) for k, v in self.header_items()
                   if k.lower() not in ("content-type", "content-length", "transfer-encoding", "connection",
                                        "upgrade")]
        handler, params, subprotocol = self.handler, self.params, self.subprotocol

        def open(endpoint: Any) -> tuple[WebSocket, Callable[[], None]]:
            ws = WebSocket(request, endpoint, subprotocol)

            def run() -> None:
                try:
                    handler(request, ws, **params)
                except Exception:
                    log.exception("unhandled error in the websocket handler for %s", request.path)
                    ws.close(INTERNAL_ERROR)
                    return
                if not ws.has_callbacks:
                    ws.close(NORMAL_CLOSURE)  # a handler that registered nothing is done with the socket

            return ws, run

        offers = ", ".join(request.headers.getlist("sec-websocket-extensions"))
        return WebSocketUpgrade(self.key, subprotocol, offers, headers, open)
