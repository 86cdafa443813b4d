"""Server push: long-lived streams (server-sent events) that cost nothing while idle.

A ``PushStream`` (``http/bodies.py``) is a streamed body whose pieces are pushed from
any thread with ``push(data)`` instead of being pulled from an iterator. The server
(``server/push.py``) sends what is queued and then parks the connection: no write interest, no thread, no polling,
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

from typing import Any, Callable

from .http.bodies import BodySource, PushStream
from .http.encode import encode_head
from .http.request import HTTPRequest
from .responses import Response

__all__ = ["PushStream", "EventStreamResponse", "format_event"]


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
    """A ``text/event-stream`` response; ``on_open(stream)`` runs when the body is created.

    ``stream`` is a ``PushStream``: keep it and call ``stream.push(data)`` (bytes or str,
    for instance from ``format_event``) from any thread whenever there is something to
    send, and ``stream.end()`` to finish; ``push`` returns False once the client has gone.
    Between pushes the server parks the connection at no cost. The response is chunked
    (HTTP/1.1), never cached (``Cache-Control: no-cache``) and not buffered by nginx
    (``X-Accel-Buffering: no``).
    """

    __slots__ = ("on_open",)

    def __init__(self, on_open: Callable[[PushStream], None], headers: Any = None) -> None:
        super().__init__(b"", 200, headers, "text/event-stream; charset=utf-8")
        self.on_open = on_open

    def encode(self, request: HTTPRequest) -> bytes | BodySource:
        http11_ = request.http_version == "HTTP/1.1"
        if not http11_:
            request.keep_alive = False
        headers = [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"),
                   ("X-Accel-Buffering", "no")]
        headers += [(k, v) for k, v in self.header_items() if k.lower() not in ("content-type", "content-length",
                                                                               "transfer-encoding", "connection")]
        head = encode_head(200, headers, None, request.keep_alive, http11_)
        if request.method == "HEAD":
            return head
        stream = PushStream(head, request.keep_alive, chunked=http11_)
        self.on_open(stream)
        return stream
