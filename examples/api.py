"""A small JSON API with path parameters and validation errors: ``microweb run examples/api.py``.

    curl -s localhost:8000/api/items
    curl -s -X POST localhost:8000/api/items -H 'content-type: application/json' -d '{"name": "pen", "price": 2.5}'
    curl -s localhost:8000/api/items/1
    curl -s -X POST localhost:8000/api/items -d '{"price": -1}'      # 422 with the field errors
"""
from __future__ import annotations

from typing import Any

from microweb import App, HTTPError, Request, Response, abort

app = App()

# An in-memory store; the reactor runs handlers one at a time, so no lock is needed.
ITEMS: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "notebook", "price": 4.0}}


class ValidationError(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


@app.errorhandler(ValidationError)
def validation_failed(request: Request, error: ValidationError) -> tuple[dict[str, Any], int]:
    return {"status": 422, "error": "Unprocessable Content", "fields": error.errors}, 422


@app.errorhandler(HTTPError)
def http_error(request: Request, error: HTTPError) -> tuple[dict[str, Any], int]:
    # Every error of this API is JSON, whatever the client's Accept header says.
    return {"status": error.status, "error": str(error.description or "")}, error.status


def validate_item(data: Any, partial: bool = False) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError({"body": "expected a JSON object"})
    errors: dict[str, str] = {}
    item: dict[str, Any] = {}
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "required, a non-empty string"
        else:
            item["name"] = name.strip()
    if "price" in data or not partial:
        price = data.get("price")
        if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
            errors["price"] = "required, a number >= 0"
        else:
            item["price"] = float(price)
    if errors:
        raise ValidationError(errors)
    return item


@app.get("/api/items")
def list_items(request: Request) -> dict[str, Any]:
    limit = request.args.get("limit", 100, type=int)
    return {"items": list(ITEMS.values())[:limit]}


@app.post("/api/items")
def create_item(request: Request) -> Response:
    item = validate_item(request.json)  # invalid JSON is a 400 before we get here
    item["id"] = max(ITEMS, default=0) + 1
    ITEMS[item["id"]] = item
    response = Response(_dump(item), 201, {"Location": app.url_for("get_item", item_id=item["id"])},
                        content_type="application/json")
    return response


@app.get("/api/items/<int:item_id>")
def get_item(request: Request, item_id: int) -> dict[str, Any]:
    item = ITEMS.get(item_id)
    if item is None:
        abort(404, f"no item {item_id}")
    return item


@app.patch("/api/items/<int:item_id>")
def update_item(request: Request, item_id: int) -> dict[str, Any]:
    if item_id not in ITEMS:
        abort(404, f"no item {item_id}")
    ITEMS[item_id].update(validate_item(request.json, partial=True))
    return ITEMS[item_id]


@app.delete("/api/items/<int:item_id>")
def delete_item(request: Request, item_id: int) -> tuple[bytes, int]:
    if ITEMS.pop(item_id, None) is None:
        abort(404, f"no item {item_id}")
    return b"", 204


def _dump(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


if __name__ == "__main__":
    app.run()
