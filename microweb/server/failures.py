"""What the server answers by itself when the application fails (logged; the connection then closes)."""
from __future__ import annotations

import logging
from typing import Any

from ..http.encode import internal_error_response

__all__ = ["internal_error", "wrong_result"]

log = logging.getLogger("microweb")


def internal_error(request: Any) -> bytes:
    """The plain 500 for a request whose handler raised."""
    request.keep_alive = False
    return internal_error_response(request.method == "HEAD", request.http_version == "HTTP/1.1")


def wrong_result(request: Any, result: object) -> bytes:
    """The 500 for a handler that returned something the server cannot send."""
    log.error("the handler for %s %s returned a %s; expected bytes or a BodySource; answering 500",
              request.method, request.path, type(result).__name__)
    return internal_error(request)
