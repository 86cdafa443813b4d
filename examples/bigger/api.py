"""The JSON API (the ``api`` blueprint): CORS for the front-end's origin, JSON errors."""
from __future__ import annotations

from typing import Any

from microweb import Blueprint, HTTPError, Request, abort

api = Blueprint("api", url_prefix="/api")
# The single-page front-end served from another origin may call the API, with cookies.
api.cors(origins=["http://localhost:5173", "https://app.example.com"], credentials=True,
         headers=["Content-Type", "Authorization"], expose_headers=["Location"])

ITEMS: dict[int, dict[str, Any]] = {
    1: {"id": 1, "name": "notebook", "price": 4.0},
    2: {"id": 2, "name": "fountain pen", "price": 38.5},
    3: {"id": 3, "name": "ink, blue-black", "price": 9.9},
}


@api.errorhandler(HTTPError)
def json_error(request: Request, error: HTTPError) -> Any:
    """The API's errors are JSON, whatever the client's Accept says (the site's stay HTML)."""
    return {"status": error.status, "error": error.description}, error.status


@api.get("/items")
def list_items(request: Request) -> Any:
    return {"items": [dict(item, url=request.url_for(".get_item", item_id=item["id"])) for item in ITEMS.values()]}


@api.get("/items/<int:item_id>")
def get_item(request: Request, item_id: int) -> Any:
    item = ITEMS.get(item_id)
    if item is None:
        abort(404, f"no item {item_id}")
    return item


@api.post("/items")
def create_item(request: Request) -> Any:
    data = request.json
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
        abort(422, "name: required, a non-empty string")
    item_id = max(ITEMS) + 1
    ITEMS[item_id] = {"id": item_id, "name": data["name"].strip(), "price": float(data.get("price", 0))}
    return ITEMS[item_id], 201, {"Location": request.url_for(".get_item", item_id=item_id)}
