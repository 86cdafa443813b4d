"""Flask: the JSON route with an ``<int:id>`` parameter and a query argument (run with waitress)."""
from __future__ import annotations

from typing import Any

from flask import Flask, request

app = Flask(__name__)


@app.route("/items/<int:item_id>")
def item(item_id: int) -> dict[str, Any]:
    return {"id": item_id, "q": request.args.get("q")}
