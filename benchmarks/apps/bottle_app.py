"""Bottle hello world (run with waitress)."""
from __future__ import annotations

import bottle

app = bottle.Bottle()


@app.route("/")
def index() -> str:
    return "Hello, World!"
