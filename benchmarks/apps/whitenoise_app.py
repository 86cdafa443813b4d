"""whitenoise serving ``$BENCH_STATIC_DIR`` in front of a 404 WSGI app (run with waitress)."""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from whitenoise import WhiteNoise


def not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


app = WhiteNoise(not_found, root=os.environ["BENCH_STATIC_DIR"])
