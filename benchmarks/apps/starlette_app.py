"""Starlette: hello world and the JSON route (run with uvicorn + httptools + uvloop)."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["item_id"], "q": request.query_params.get("q")})


app = Starlette(routes=[Route("/", index), Route("/items/{item_id:int}", item)])
