"""A chat room over WebSockets, event style: every message goes to everyone in the room.

Run it with ``microweb run examples/chat.py`` and open http://127.0.0.1:8000/ in two tabs.
The handler runs on the server's loop: it registers two callbacks and returns, so a
thousand people in a room cost a thousand small objects, not a thousand threads.
"""
from __future__ import annotations

from typing import Any

from microweb import App, WebSocket, WebSocketClosed

app = App(static_folder=None)
rooms: dict[str, set[WebSocket]] = {}

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>microweb chat</title>
<h1>Room <span id="room"></span></h1>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off" autofocus> <button>Send</button></form>
<script>
const room = location.hash.slice(1) || "lobby";
document.getElementById("room").textContent = room;
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(`${scheme}//${location.host}/chat/${encodeURIComponent(room)}`);
const log = document.getElementById("log");
ws.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  log.appendChild(item);
};
ws.onclose = (event) => { document.title = "closed " + event.code; };
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (input.value) { ws.send(input.value); input.value = ""; }
};
</script>
"""


@app.get("/")
def index(request: Any) -> str:
    return PAGE


def broadcast(room: str, message: str) -> None:
    for peer in list(rooms.get(room, ())):
        try:
            peer.send(message)
        except WebSocketClosed:
            pass  # it is leaving; on_close removes it


@app.websocket("/chat/<room>")
def chat(request: Any, ws: WebSocket, room: str) -> None:
    members = rooms.setdefault(room, set())
    members.add(ws)
    broadcast(room, f"someone joined ({len(members)} here)")

    @ws.on_message
    def said(message: str | bytes) -> None:
        if isinstance(message, str):
            broadcast(room, message[:1000])

    @ws.on_close
    def left(code: int, reason: str) -> None:
        members.discard(ws)
        if not members:
            rooms.pop(room, None)
        broadcast(room, f"someone left ({len(members)} here)")


if __name__ == "__main__":
    app.run()
