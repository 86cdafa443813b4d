"""The reactor's side of server push: streams parked at no cost until another thread pushes to them.

A ``PushStream`` (``http/bodies.py``) is sent like any stream until its queue is
empty; then its connection is parked: read interest only (to notice the client
leaving), no write interest, no thread, no polling, just the keep-alive deadline.
``push``/``end`` from any thread call ``wake(stream)``, which queues the stream in
``ready`` and writes a byte to the server's wake-up socket; the loop then flushes
the connections whose stream is at the front of their outbox. A server that stops
ends every stream (``end_all``). A ``PulledStream`` (``--threads``: a stream its
pool thread pulls) travels the same way, but only its producer ends it.
"""
from __future__ import annotations

import weakref
from collections import deque
from typing import Any

from ..http.bodies import PulledStream, PushStream

__all__ = ["PushStreams"]

EVENT_READ = 1  # selectors.EVENT_READ (this module polls nothing itself)


class PushStreams:
    """The push streams one server is sending, and those woken since the loop last looked."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.ready: deque[PushStream] = deque()  # woken from other threads; appends are atomic
        self.streams: weakref.WeakSet[PushStream] = weakref.WeakSet()

    def send(self, conn: Any, stream: PushStream) -> bool | None:
        """Send what ``stream`` has queued, then park the connection until the next push.

        Returns like the server's ``_send_source``, and None also when parked.
        """
        server = self.server
        if not stream.attached:
            stream.attach(conn, self.wake)
            if type(stream) is PushStream:  # a PulledStream's producer ends it, never a stop
                self.streams.add(stream)
        while True:
            piece = stream.take()
            if piece is None and stream.ended:
                # ``ended`` is set after the last piece was queued: look once more, or a piece
                # queued between the take above and reading ``ended`` would be lost.
                piece = stream.take()
                if piece is None:
                    self.streams.discard(stream)
                    failed = type(stream) is PulledStream and stream.failed
                    stream.close()
                    if failed:  # the body raised midway: a cut body, never a clean end
                        server.close_connection(conn)
                        return None
                    server.end_stream(conn, stream.chunked)
                    return True
            if piece is None:
                if conn.peer_eof:
                    if type(stream) is PushStream:
                        server.close_connection(conn)
                    else:  # a half-closed client still gets the whole pulled body
                        server.unwatch(conn)
                    return None
                server.set_events(conn, EVENT_READ)
                conn.deadline = server.now + server.keepalive_timeout
                return None
            sent_all = server.send_piece(conn, piece)
            if not sent_all:
                return sent_all

    def wake(self, stream: PushStream) -> None:
        """Called from any thread when ``stream`` has something new."""
        self.ready.append(stream)
        self.server.wake()

    def flush_ready(self) -> None:
        """On the loop: send what the woken streams have queued."""
        ready = self.ready
        while ready:
            stream = ready.popleft()
            conn = stream.conn
            if conn is not None and not conn.closed and conn.outbox and conn.outbox[0] is stream:
                self.server.flush(conn)

    def end_all(self) -> None:
        for stream in list(self.streams):
            stream.end()
