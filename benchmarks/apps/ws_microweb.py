"""microweb WebSockets for the benchmark: an event-style echo, and a broadcast to every subscriber."""
from __future__ import annotations

from typing import Any

from microweb import App, WebSocket

app = App(static_folder=None)
subscribers: set[WebSocket] = set()


@app.websocket("/echo")
def echo(request: Any, ws: WebSocket) -> None:
    ws.on_message(ws.send)


@app.websocket("/subscribe")
def subscribe(request: Any, ws: WebSocket) -> None:
    subscribers.add(ws)
    ws.on_close(lambda code, reason: subscribers.discard(ws))


@app.post("/broadcast")
def broadcast(request: Any) -> dict[str, int]:
    message = request.body.decode()
    for ws in list(subscribers):
        ws.send(message)
    return {"sent": len(subscribers)}
