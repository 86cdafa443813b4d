"""Raw WSGI hello world, no framework (run with waitress)."""
from __future__ import annotations

from typing import Any, Callable, Iterable

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
