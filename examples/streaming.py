"""Streaming responses: ``microweb run examples/streaming.py``.

    curl -N localhost:8000/count?n=5       # a generator: a chunked body, one line per piece
    curl -N localhost:8000/events?n=3      # server-sent events (text/event-stream)

Generators run on the server's single thread, pulled a piece at a time as the
socket accepts data, so a slow client never blocks the others. A generator must
not block (no ``time.sleep``, no waiting on a queue): it would stall every connection.
"""
from __future__ import annotations

import json
from typing import Iterator

from microweb import App, Request, Response

app = App()


@app.get("/")
def index(request: Request) -> str:
    return (f'<p><a href="{app.url_for("count", n=10)}">count</a> · '
            f'<a href="{app.url_for("events", n=5)}">events</a></p>')


@app.get("/count")
def count(request: Request) -> Iterator[str]:
    n = min(request.args.get("n", 10, type=int), 100_000)

    def lines() -> Iterator[str]:
        for i in range(1, n + 1):
            yield f"{i}\n"

    return lines()


@app.get("/events")
def events(request: Request) -> Response:
    n = min(request.args.get("n", 5, type=int), 1000)

    def stream() -> Iterator[str]:
        yield "retry: 2000\n\n"
        for i in range(n):
            yield f"id: {i}\nevent: tick\ndata: {json.dumps({'tick': i})}\n\n"
        yield "event: done\ndata: {}\n\n"

    return Response(stream(), headers={"Cache-Control": "no-cache"}, content_type="text/event-stream")


if __name__ == "__main__":
    app.run()
