"""A ticker: one background thread pushes a price to every open WebSocket once a second.

Run it with ``microweb run examples/ticker.py`` and open http://127.0.0.1:8000/.
``ws.send`` is safe from any thread: it queues the frame and wakes the server's loop,
which does the writing. The handler only registers the socket and returns.
"""
from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

from microweb import App, WebSocket, WebSocketClosed

app = App(static_folder=None)
subscribers: set[WebSocket] = set()
lock = threading.Lock()

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>microweb ticker</title>
<h1>MWEB <span id="price">...</span></h1>
<script>
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(`${scheme}//${location.host}/prices`);
ws.onmessage = (event) => {
  document.getElementById("price").textContent = JSON.parse(event.data).price.toFixed(2);
};
</script>
"""


@app.get("/")
def index(request: Any) -> str:
    return PAGE


@app.websocket("/prices")
def prices(request: Any, ws: WebSocket) -> None:
    start_ticker()
    with lock:
        subscribers.add(ws)

    @ws.on_close
    def gone(code: int, reason: str) -> None:
        with lock:
            subscribers.discard(ws)


def publish(message: str) -> int:
    """Send ``message`` to every subscriber; how many got it."""
    with lock:
        targets = list(subscribers)
    sent = 0
    for ws in targets:
        try:
            ws.send(message)
            sent += 1
        except (WebSocketClosed, TimeoutError):
            pass
    return sent


def run_ticker(interval: float = 1.0, stop: threading.Event | None = None) -> None:
    price = 100.0
    while stop is None or not stop.is_set():
        price = max(1.0, price * (1 + random.gauss(0, 0.01)))
        publish(json.dumps({"price": price, "time": time.time()}))
        time.sleep(interval)


_ticker: list[threading.Thread] = []


def start_ticker() -> None:
    """Start the ticker thread once, in the process that serves (so ``--workers`` get one each)."""
    with lock:
        if not _ticker:
            _ticker.append(threading.Thread(target=run_ticker, name="ticker", daemon=True))
            _ticker[0].start()

if __name__ == "__main__":
    app.run()
