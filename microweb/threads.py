"""The handler thread pool behind ``--threads N``.

The reactor hands a ``(connection, request)`` pair to ``submit``; one of N
threads calls the application and appends ``(connection, request, result)`` to
``done``, then wakes the reactor, which writes the result. No socket is touched
here: a handler that blocks (a sleep, a database call) ties up one pool thread,
while the reactor goes on serving every other connection.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from typing import Any, Callable

__all__ = ["HandlerPool"]

log = logging.getLogger("microweb")

_STOP = None


class HandlerPool:
    """N daemon threads running ``handle(request)``; results land in ``done``."""

    def __init__(self, handle: Callable[[Any], Any], threads: int, wake: Callable[[], None]) -> None:
        self.handle = handle
        self.wake = wake
        self.done: deque[tuple[Any, Any, Any]] = deque()  # append/popleft are atomic
        self._jobs: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"microweb-handler-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, conn: Any, request: Any) -> None:
        self._jobs.put((conn, request))

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
            try:
                result = handle(request)
            except Exception:
                log.exception("unhandled error in the application for %s %s", request.method, request.path)
                from .reactor import _internal_error

                result = _internal_error(request)
            done.append((conn, request, result))
            wake()

    def shutdown(self, timeout: float = 1.0) -> None:
        """Ask the threads to finish (a handler still running is left to its daemon thread)."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        for thread in self._threads:
            thread.join(timeout / max(1, len(self._threads)))
