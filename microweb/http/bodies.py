"""Response bodies the server sends piece by piece after a head: streams, file regions, pushed streams.

A handler's result is either ``bytes`` (the whole response) or a ``BodySource``:
a head plus a body the server sends as the socket accepts it. These classes hold
no socket: the server pulls pieces (``StreamBody.next_piece``), sends file regions
itself (``FileBody``: a descriptor, an offset and a count), and parks a
``PushStream`` until another thread pushes to it. A ``PulledStream`` is a stream
whose iterator is pulled on another thread (the pool thread that called the
application, under ``--threads``) and handed over piece by piece, with backpressure.
"""
from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any, Callable, Iterator

from .encode import encode_chunk

__all__ = ["BodySource", "StreamBody", "FileBody", "PushStream", "PulledStream"]


class BodySource:
    """A response whose body the server sends piece by piece after ``head``."""

    __slots__ = ("head", "keep_alive")

    def __init__(self, head: bytes, keep_alive: bool) -> None:
        self.head = head
        self.keep_alive = keep_alive

    def close(self) -> None:
        """Release what the body holds (called once, however the response ends)."""


class StreamBody(BodySource):
    """A body produced by an iterator of ``bytes``/``str``; chunked unless ``chunked`` is False."""

    __slots__ = ("iterator", "chunked", "first")

    def __init__(self, head: bytes, keep_alive: bool, iterator: Iterator[Any], chunked: bool,
                 first: Any = None) -> None:
        super().__init__(head, keep_alive)
        self.iterator = iterator
        self.chunked = chunked
        self.first = first  # the item already taken from the iterator, sent before the rest

    def next_piece(self) -> bytes | None:
        """The next bytes to send (already chunk-framed), or None at the end."""
        first = self.first
        if first is not None:
            self.first = None
            data = first.encode("utf-8") if isinstance(first, str) else bytes(first)
            if data:
                return encode_chunk(data) if self.chunked else data
        for item in self.iterator:
            data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            if not data:
                continue
            return encode_chunk(data) if self.chunked else data
        self.close()
        return None

    def close(self) -> None:
        close = getattr(self.iterator, "close", None)
        self.iterator = iter(())
        if close is not None:
            close()


class FileBody(BodySource):
    """A region of an open file, sent with ``os.sendfile`` (or read/send where that fails)."""

    __slots__ = ("fd", "offset", "remaining")

    def __init__(self, head: bytes, keep_alive: bool, fd: int, offset: int, count: int) -> None:
        super().__init__(head, keep_alive)
        self.fd = fd
        self.offset = offset
        self.remaining = count

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class PushStream(StreamBody):
    """A stream body fed by ``push(data)`` from any thread, instead of being pulled from an iterator.

    The server sends what is queued, then parks the connection with no thread and no
    polling; ``push`` and ``end`` call the ``waker`` the server attached, which wakes
    its loop. Without a server attached (a WSGI server, the test client) pulling gives
    what is queued, then the end.
    """

    __slots__ = ("queue", "ended", "conn", "waker", "on_open", "_lock", "__weakref__")

    def __init__(self, head: bytes, keep_alive: bool, chunked: bool) -> None:
        super().__init__(head, keep_alive, iter(()), chunked)
        self.queue: deque[bytes] = deque()
        self.ended = False
        self.conn: Any = None  # the server's connection sending this body, once attached
        self.waker: Callable[[PushStream], None] | None = None
        self.on_open: Callable[[PushStream], None] | None = None
        self._lock = threading.Lock()

    def attach(self, conn: Any, waker: Callable[[PushStream], None]) -> None:
        """Called by the server when it starts sending this body: ``waker(stream)`` on news."""
        self.conn = conn
        with self._lock:
            self.waker = waker

    @property
    def attached(self) -> bool:
        return self.conn is not None

    def push(self, data: bytes | str) -> bool:
        """Queue ``data`` for the client (thread-safe); False once the stream is over."""
        if self.ended:
            return False
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not data:
            return True
        self.queue.append(encode_chunk(data) if self.chunked else data)
        self._wake()
        return True

    def end(self) -> None:
        """Finish the stream after what is queued (thread-safe)."""
        if self.ended:
            return
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            waker = self.waker
        if waker is not None:
            waker(self)

    def take(self) -> bytes | None:
        """The next queued piece, or None when nothing is queued (for the server)."""
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


class PulledStream(PushStream):
    """A ``StreamBody`` pulled on the thread that produced it, handed to the server through a bounded queue.

    Under ``--threads`` the pool thread that called the application keeps pulling the
    body's iterator (``pull``): Flask's ``stream_with_context``, a Django
    ``StreamingHttpResponse`` running ORM queries, anything keeping per-thread state,
    sees the thread it started on. ``put`` blocks while ``limit`` bytes wait unsent,
    so a slow client holds back its producer instead of filling memory. The server
    sends it like a ``PushStream``; ``close`` (the client left, the server stops)
    makes the next ``put`` return False, and the producer then closes the iterator on
    its own thread. A body that raises midway is ``failed``: the server closes the
    connection instead of ending the chunked body, as it does for a stream it pulls.
    """

    __slots__ = ("source", "limit", "queued", "failed", "cancelled", "_space")

    def __init__(self, source: StreamBody, limit: int) -> None:
        super().__init__(source.head, source.keep_alive, source.chunked)
        self.source = source
        self.limit = max(1, limit)
        self.queued = 0  # bytes in the queue
        self.failed = False
        self.cancelled = False
        self._space = threading.Condition(self._lock)

    def put(self, piece: bytes) -> bool:
        """Queue one framed piece, waiting while the queue is full; False once the stream is closed."""
        with self._space:
            while self.queued >= self.limit and not self.cancelled:
                self._space.wait()
            if self.cancelled:
                return False
            self.queue.append(piece)
            self.queued += len(piece)
            waker = self.waker
        if waker is not None:
            waker(self)
        return True

    def take(self) -> bytes | None:
        with self._space:
            try:
                piece = self.queue.popleft()
            except IndexError:
                return None
            self.queued -= len(piece)
            self._space.notify()
        return piece

    def pull(self) -> None:
        """Run on the producing thread: pull the source to its end (or until closed), then end."""
        source = self.source
        try:
            while True:
                piece = source.next_piece()
                if piece is None or not self.put(piece):
                    break
        except Exception:
            self.failed = True
            raise
        finally:
            try:
                source.close()
            finally:
                self.end()

    def close(self) -> None:
        with self._space:
            self.cancelled = True
            self._space.notify_all()
        super().close()
