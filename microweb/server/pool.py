"""``--threads N``: handlers run in a pool of threads while the reactor keeps all socket I/O.

``HandlerPool`` is N threads taking ``(connection, request)`` jobs: one calls the
application and appends ``(connection, request, result)`` to ``done``, then wakes
the reactor. No socket is touched there: a handler that blocks (a sleep, a
database call) ties up one pool thread, while the reactor goes on serving every
other connection.

A streamed result (a ``StreamBody``: a generator, a WSGI iterable) is pulled on
the same pool thread that called the application, never on the reactor: the
thread hands the reactor a ``PulledStream`` and goes on pulling into it, waiting
whenever ``stream_limit`` bytes are queued unsent (backpressure), until the body
ends or the client goes away. Per-thread state the application set up (Flask's
``stream_with_context``, a Django database connection) is there for the whole
body, and the body's ``close()`` runs there too. Such a response holds its thread
until the body is sent, as in gunicorn's gthread worker.

``PooledDispatch`` is the reactor's side. A connection has at most one request in
the pool (``busy``), so its responses leave in request order; the rest wait in
``conn.queue``, and past ``max_pipelined`` of them the connection is not read until
the queue shrinks. The server makes the switch to it once, at start, so the inline
path pays nothing for it.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from typing import Any, Callable

from ..http.bodies import BodySource, PulledStream, StreamBody
from ..http.parser import UPGRADE
from ..http.websocket import WebSocketUpgrade
from .failures import internal_error

__all__ = ["HandlerPool", "PooledDispatch"]

log = logging.getLogger("microweb")

EVENT_READ = 1  # selectors.EVENT_READ / EVENT_WRITE (this module polls nothing itself)
EVENT_WRITE = 2

_STOP = None
_CALL = object()  # a job (_CALL, func): run func() (a websocket handler in blocking style)


class HandlerPool:
    """N daemon threads running ``handle(request)``; results land in ``done``."""

    def __init__(self, handle: Callable[[Any], Any], threads: int, wake: Callable[[], None],
                 stream_limit: int = 1 << 20) -> None:
        self.handle = handle
        self.wake = wake
        self.stream_limit = stream_limit  # unsent bytes a pulled stream may queue before its thread waits
        self.done: deque[tuple[Any, Any, Any]] = deque()  # append/popleft are atomic
        self._jobs: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"microweb-handler-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, conn: Any, request: Any) -> None:
        self._jobs.put((conn, request))

    def call(self, func: Callable[[], None]) -> None:
        """Run ``func()`` in a pool thread (its exceptions are logged)."""
        self._jobs.put((_CALL, func))

    def _work(self) -> None:
        handle = self.handle
        jobs = self._jobs
        done = self.done
        wake = self.wake
        while True:
            job = jobs.get()
            if job is _STOP:
                return
            conn, request = job
            if conn is _CALL:
                try:
                    request()
                except Exception:
                    log.exception("unhandled error in a function run in the pool")
                job = conn = request = None
                continue
            try:
                result = handle(request)
            except Exception:
                log.exception("unhandled error in the application for %s %s", request.method, request.path)
                result = internal_error(request)
            if type(result) is StreamBody:
                stream = PulledStream(result, self.stream_limit)
                done.append((conn, request, stream))
                wake()
                try:
                    stream.pull()  # on this thread, until the body ends or the client leaves
                except Exception:
                    log.exception("a streamed response raised after its head was sent; closing the connection")
                job = conn = request = result = stream = None
                continue
            done.append((conn, request, result))
            wake()
            # Drop this thread's references now: an idle thread holding its last request would
            # keep that request's spooled body (a temporary file, maybe gigabytes) until its next job.
            job = conn = request = result = None

    def shutdown(self, timeout: float = 1.0) -> None:
        """Ask the threads to finish (a handler still running is left to its daemon thread)."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        for thread in self._threads:
            thread.join(timeout / max(1, len(self._threads)))


class PooledDispatch:
    """Answers a server's requests through a ``HandlerPool`` (the server's ``_respond`` under --threads)."""

    def __init__(self, server: Any, threads: int) -> None:
        self.server = server
        self.threads = HandlerPool(server.handle, threads, server.wake, server.high_water)

    def shutdown(self) -> None:
        self.threads.shutdown()

    def respond(self, conn: Any, requests: list[Any]) -> None:
        server = self.server
        queue = conn.queue
        if queue is None:
            queue = conn.queue = deque()
        queue.extend(requests)
        error = conn.parser.error
        if error is not None:
            conn.pending_error = error
        if len(queue) >= server.max_pipelined and conn.reading:
            if conn.events & EVENT_WRITE:
                server.set_events(conn, EVENT_WRITE)
            else:
                server.unwatch(conn)
        if not conn.busy:
            self.submit_next(conn)

    def respond_one(self, conn: Any, request: Any) -> None:
        self.respond(conn, [request])

    def submit_next(self, conn: Any) -> None:
        """Hand the connection's next request to the pool, or finish the connection."""
        server = self.server
        queue = conn.queue
        if queue:
            request = queue.popleft()
            if conn.requests_served >= server.keep_alive_cutoff:
                request.keep_alive = False
            conn.busy = True
            self.threads.submit(conn, request)
            if not conn.reading and not conn.peer_eof and len(queue) < server.max_pipelined:
                server.watch(conn, conn.events | EVENT_READ)
            return
        if conn.parser.state == UPGRADE:
            server.held_after_upgrade(conn)  # an upgrade request answered without switching
            return
        if conn.pending_error is not None:
            error, conn.pending_error = conn.pending_error, None
            conn.close_after = True
            conn.linger = True
            server.write(conn, error.response())
        elif conn.peer_eof:
            conn.close_after = True
        else:
            interim = conn.parser.interim
            if interim:  # held back by the reactor while earlier requests were in the pool
                conn.parser.interim = b""
                server.write(conn, interim)
            return
        if not conn.outbox and not conn.closed:
            server.close_connection(conn)

    def deliver(self) -> None:
        """Write the results the pool has finished, in the order they finished."""
        server = self.server
        done = self.threads.done
        while done:
            conn, request, result = done.popleft()
            conn.busy = False
            if conn.closed:
                if isinstance(result, BodySource):
                    result.close()
                continue
            conn.requests_served += 1
            server.write_result(conn, request, result)
            if type(result) is WebSocketUpgrade:
                continue  # the websocket hub's now (or once its 101 is sent)
            if conn.closed:
                continue
            if not request.keep_alive:
                conn.close_after = True
                conn.queue = None
                conn.pending_error = None
                if not conn.outbox:
                    server.close_connection(conn)
                continue
            self.submit_next(conn)
