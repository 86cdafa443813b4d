"""Server push: long-lived streams (server-sent events) that cost nothing while idle.

A ``PushStream`` is a streamed body whose pieces are pushed from any thread with
``push(data)`` instead of being pulled from an iterator. The reactor sends what is
queued and then parks the connection: no write interest, no thread, no polling,
just the idle keep-alive deadline (a pushed heartbeat renews it). ``push`` queues
the piece and asks the reactor, through its wake-up socket, to flush that
connection. ``end()`` finishes the stream; a server that stops ends every stream.

Outside microweb's own server (under a WSGI server, or the in-memory test
client) there is nobody to wake, so the stream gives what is queued and ends; an
``EventSource`` then reconnects after its ``retry`` interval.

``EventStreamResponse`` is the ``Response`` a handler returns to open one:
``text/event-stream``, no caching, chunked.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable

from . import http11
from .requests import Request
from .responses import BodySource, Response, StreamBody

__all__ = ["PushStream", "EventStreamResponse", "format_event"]


class PushStream(StreamBody):
    """A stream body fed by ``push(data)`` from any thread."""

    __slots__ = ("queue", "ended", "conn", "waker", "on_open", "_lock", "__weakref__")

    def __init__(self, head: bytes, keep_alive: bool, chunked: bool) -> None:
        super().__init__(head, keep_alive, iter(()), chunked)
        self.queue: deque[bytes] = deque()
        self.ended = False
        self.conn: Any = None  # set by the reactor when it starts sending this body
        self.waker: Callable[[PushStream], None] | None = None
        self.on_open: Callable[[PushStream], None] | None = None
        self._lock = threading.Lock()

    def push(self, data: bytes | str) -> bool:
        """Queue ``data`` for the client (thread-safe); False once the stream is over."""
        if self.ended:
            return False
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not data:
            return True
        self.queue.append(http11.encode_chunk(data) if self.chunked else data)
        with self._lock:
            waker = self.waker
        if waker is not None:
            waker(self)
        return True

    def end(self) -> None:
        """Finish the stream after what is queued (thread-safe)."""
        if self.ended:
            return
        self.ended = True
        with self._lock:
            waker = self.waker
        if waker is not None:
            waker(self)

    def take(self) -> bytes | None:
        """The next queued piece, or None when nothing is queued (for the reactor)."""
        try:
            return self.queue.popleft()
        except IndexError:
            return None

    def next_piece(self) -> bytes | None:
        # Pull-style consumers (WSGI, the test client) get what is queued, then the end.
        piece = self.take()
        if piece is None:
            self.ended = True
        return piece

    def close(self) -> None:
        self.ended = True
        with self._lock:
            self.waker = None
        self.conn = None


def format_event(data: str = "", event: str | None = None, id: str | None = None, retry: int | None = None,
                 comment: str | None = None) -> bytes:
    """One server-sent event (``text/event-stream`` framing)."""
    lines = []
    if comment is not None:
        lines.append(f": {comment}")
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    if data or event is not None or id is not None:
        lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


class EventStreamResponse(Response):
    """A ``text/event-stream`` response; ``on_open(stream)`` runs when the body is created."""

    __slots__ = ("on_open",)

    def __init__(self, on_open: Callable[[PushStream], None], headers: Any = None) -> None:
        super().__init__(b"", 200, headers, "text/event-stream; charset=utf-8")
        self.on_open = on_open

    def encode(self, request: Request) -> bytes | BodySource:
        http11_ = request.http_version == "HTTP/1.1"
        if not http11_:
            request.keep_alive = False
        headers = [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"),
                   ("X-Accel-Buffering", "no")]
        headers += [(k, v) for k, v in self.header_items() if k.lower() not in ("content-type", "content-length",
                                                                               "transfer-encoding", "connection")]
        head = http11.encode_head(200, headers, None, request.keep_alive, http11_)
        if request.method == "HEAD":
            return head
        stream = PushStream(head, request.keep_alive, chunked=http11_)
        self.on_open(stream)
        return stream
