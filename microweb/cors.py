"""Cross-origin resource sharing (the Fetch standard's CORS protocol) for an app or a blueprint.

``app.cors(origins=[...] | "*", methods=None, headers=None, expose_headers=None,
credentials=False, max_age=600)`` makes a ``CORSPolicy``; ``App`` applies the policy of the
route's blueprint (the innermost one that has a policy), else the app's own.

- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered
  here, from the route table, before any handler runs: ``204`` with the allowed origin, methods
  (those the path has, within ``methods`` when given), headers (the requested ones, within
  ``headers`` when given) and ``Access-Control-Max-Age``. A method the path does not have gets
  ``405`` with ``Allow``, as a plain request would; an origin, method or header the policy does
  not allow gets ``403`` and no CORS headers, which the browser reports as a CORS failure.
- Every other response to a request from an allowed origin (errors included, so scripts can
  read them) gets ``Access-Control-Allow-Origin`` (``*`` for ``origins="*"`` without
  credentials, else the request's origin echoed), ``Access-Control-Allow-Credentials`` and
  ``Access-Control-Expose-Headers`` as configured. ``Vary: Origin`` is added whenever the
  answer depends on the origin.
- ``origins="*"`` with ``credentials=True`` raises ``ValueError``: the Fetch standard forbids
  a wildcard with credentials, and echoing every origin instead would hand any site the
  user's cookies.
"""
from __future__ import annotations

from typing import Iterable

from .compression import add_vary
from .requests import Request
from .responses import Response

__all__ = ["CORSPolicy", "SAFELISTED_HEADERS"]

#: Request headers a simple request may carry without a preflight (Fetch: CORS-safelisted).
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type", "range"})


def _names(values: str | Iterable[str] | None, upper: bool = False) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return tuple(v.strip().upper() if upper else v.strip().lower() for v in values if v.strip())


class CORSPolicy:
    """Which origins may read the responses, and what their preflights may ask for."""

    def __init__(self, origins: str | Iterable[str] = "*", methods: Iterable[str] | None = None,
                 headers: Iterable[str] | None = None, expose_headers: Iterable[str] | None = None,
                 credentials: bool = False, max_age: int | None = 600) -> None:
        if isinstance(origins, str) and origins != "*":
            origins = [origins]
        self.any_origin = origins == "*"
        if self.any_origin and credentials:
            raise ValueError("CORS: origins='*' cannot be combined with credentials=True (the Fetch standard "
                             "forbids it); list the origins that may send credentials")
        self.origins: frozenset[str] = frozenset() if self.any_origin else frozenset(
            o.strip().rstrip("/").lower() for o in origins)
        for origin in self.origins:
            if origin == "*" or "://" not in origin:
                raise ValueError(f"CORS: {origin!r} is not an origin (scheme://host[:port]) or '*' alone")
        self.methods = _names(methods, upper=True)
        self.headers = _names(headers)
        self.expose_headers = _names(expose_headers)
        self.credentials = bool(credentials)
        if max_age is not None and max_age < 0:
            raise ValueError("CORS: max_age must be >= 0 or None")
        self.max_age = max_age

    def allows_origin(self, origin: str) -> bool:
        return self.any_origin or origin.rstrip("/").lower() in self.origins

    def _allow_origin_headers(self, response: Response, origin: str) -> None:
        headers = response.headers
        if self.any_origin and not self.credentials:
            headers["Access-Control-Allow-Origin"] = "*"
        else:
            headers["Access-Control-Allow-Origin"] = origin
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"

    def apply(self, request: Request, response: Response) -> Response:
        """Add the CORS headers of an actual (not preflight) response."""
        if not self.any_origin:
            add_vary(response, "Origin")
        origin = request.headers.get("origin")
        if origin is None or not self.allows_origin(origin):
            return response
        self._allow_origin_headers(response, origin)
        if self.expose_headers:
            response.headers["Access-Control-Expose-Headers"] = ", ".join(self.expose_headers)
        return response

    def preflight(self, request: Request, path_methods: set[str]) -> Response:
        """The answer to a preflight for a path whose routes answer ``path_methods``."""
        origin = request.headers.get("origin", "")
        method = request.headers.get("access-control-request-method", "").strip().upper()
        requested = [h.strip().lower() for h in request.headers.get("access-control-request-headers", "").split(",")
                     if h.strip()]
        if method not in path_methods:
            allow = ", ".join(sorted(path_methods | {"OPTIONS"}))
            response = Response(f"CORS preflight: {request.path} does not answer {method or 'that method'}",
                                405, {"Allow": allow}, "text/plain; charset=utf-8")
        elif not self.allows_origin(origin):
            response = Response("CORS preflight: origin not allowed", 403, None, "text/plain; charset=utf-8")
        elif self.methods is not None and method not in self.methods and method not in ("GET", "HEAD", "POST"):
            response = Response(f"CORS preflight: method {method} not allowed", 403, None,
                                "text/plain; charset=utf-8")
        else:
            refused = [h for h in requested if self.headers is not None and h not in self.headers
                       and h not in SAFELISTED_HEADERS]
            if refused:
                response = Response(f"CORS preflight: header {refused[0]} not allowed", 403, None,
                                    "text/plain; charset=utf-8")
            else:
                response = Response(b"", 204)
                self._allow_origin_headers(response, origin)
                methods = path_methods if self.methods is None else path_methods & (set(self.methods) | {"HEAD"})
                response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(methods | {method}))
                if requested:
                    response.headers["Access-Control-Allow-Headers"] = ", ".join(requested)
                if self.max_age is not None:
                    response.headers["Access-Control-Max-Age"] = str(self.max_age)
        if not self.any_origin:
            add_vary(response, "Origin")
        add_vary(response, "Access-Control-Request-Method")
        add_vary(response, "Access-Control-Request-Headers")
        return response
