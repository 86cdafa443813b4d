"""Admitting a request body: what the parser asks when a head announces one.

When a head is complete and a body follows, the parser calls the server's
``open_body(request, length)`` (``length`` is -1 for a chunked body) before it
reads a byte of that body. The answer is either a ``BodySink`` that takes the
body as it arrives, or a refusal: a ``ProtocolError`` raised, usually a
``BodyRefused`` that carries the response the application rendered (its 404,
405 or 413 page, with its error handlers and ``after_request`` hooks applied).
The parser then stops reading; the server sends that response and closes the
connection after a bounded lingering read, so the body is never received.

Nothing here does I/O: sinks that write to files live in ``microweb/server/spool.py``
and ``microweb/uploads.py``.
"""
from __future__ import annotations

from typing import Any, Protocol

from .parser import ProtocolError

__all__ = ["BodyRefused", "BodySink"]


class BodyRefused(ProtocolError):
    """A body the application will not take; ``response()`` is its already-encoded answer."""

    def __init__(self, status: int, message: str, output: bytes) -> None:
        super().__init__(status, message)
        self.output = output

    def response(self) -> bytes:
        return self.output


class BodySink(Protocol):
    """Where an admitted body goes, piece by piece, as it arrives."""

    #: The most bytes this body may have (a chunked body over it is refused with 413).
    limit: int

    def write(self, data: bytes) -> None:
        """Take the next piece (may raise ``ProtocolError`` to refuse the rest)."""

    def finish(self, request: Any) -> None:
        """The body is complete: attach it to ``request`` (``body``, or a spooled file)."""

    def discard(self) -> None:
        """The body will never complete (the client went away, or it was refused): drop it."""

    def refuse(self, status: int, message: str) -> ProtocolError:
        """The error to raise for ``status`` while this body arrives (413: over ``limit``)."""
