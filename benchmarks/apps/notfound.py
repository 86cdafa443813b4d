"""microweb's JSON route with a static folder (``$BENCH_STATIC_DIR``): what a 404 and a 405 cost.

``GET /items/42?q=hello`` is the JSON route; ``GET /no-such-page`` matches no route, finds no file in
the static folder and gets the default 404 page; ``DELETE /items/42`` gets 405 with ``Allow``.
"""
from __future__ import annotations

import os
from typing import Any

from microweb import App, Request

app = App(static_folder=os.environ["BENCH_STATIC_DIR"])


@app.route("/items/<int:item_id>")
def item(request: Request, item_id: int) -> dict[str, Any]:
    return {"id": item_id, "q": request.args.get("q")}
