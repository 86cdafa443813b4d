"""Raw ASGI hello world, no framework (run with uvicorn + httptools + uvloop)."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b"Hello, World!"})
