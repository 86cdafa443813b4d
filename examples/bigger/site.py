"""The site: HTML pages rendered from templates (the ``site`` blueprint, at the root)."""
from __future__ import annotations

from typing import Any

from microweb import Blueprint, Request, abort

from .api import ITEMS

site = Blueprint("site")


@site.context_processor
def navigation(request: Request) -> dict[str, Any]:
    """Every page of the site gets its menu (the API's responses never render templates)."""
    return {"menu": [("Home", request.url_for(".index")), ("Items", request.url_for(".items")),
                     ("API", request.url_for("api.list_items")), ("Legacy", "/legacy/")]}


@site.template_filter("price")
def price(value: float) -> str:
    return f"{value:,.2f} EUR"


@site.get("/")
def index(request: Request) -> str:
    return request.render_template("site/index.html", count=len(ITEMS))


@site.get("/items")
def items(request: Request) -> str:
    return request.render_template("site/items.html", items=sorted(ITEMS.values(), key=lambda i: i["id"]))


@site.get("/items/<int:item_id>")
def item(request: Request, item_id: int) -> str:
    if item_id not in ITEMS:
        abort(404, f"There is no item {item_id}.")
    return request.render_template("site/items.html", items=[ITEMS[item_id]])


@site.errorhandler(404)
def not_found(request: Request, error: Any) -> Any:
    """A 404 raised in the site's own routes gets the site's page (paths no route matches get the app's)."""
    return request.render_template("site/404.html", description=error.description), 404
