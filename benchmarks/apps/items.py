"""microweb JSON route with an ``<int:id>`` parameter and a query argument: ``GET /items/42?q=hello``."""
from __future__ import annotations

from typing import Any

from microweb import App, Request

app = App()


@app.route("/items/<int:item_id>")
def item(request: Request, item_id: int) -> dict[str, Any]:
    return {"id": item_id, "q": request.args.get("q")}
