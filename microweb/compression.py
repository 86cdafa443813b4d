"""gzip for dynamic responses: ``App(compress=True)`` runs ``Compressor`` on every ``Response``.

Off by default: compressing a page that mixes a secret with reflected input lets an attacker
who can watch the sizes guess the secret (BREACH). When on, a plain ``Response`` (what a
handler's str, bytes, dict, list, generator or ``Response(...)`` becomes) is gzip-encoded when

- the request is not HEAD and its ``Accept-Encoding`` accepts gzip (q-values honoured);
- the status is not 1xx, 204, 206 or 304, and there is no ``Content-Encoding`` or
  ``Content-Range`` already;
- the type is text (``text/*``, JSON, JavaScript, XML, SVG, ``+json``/``+xml``);
- the body is at least ``min_size`` bytes, or streamed (its size is unknown), or the client
  refused ``identity`` (``identity;q=0``) so an uncoded body is not acceptable to it.

Streams are compressed piece by piece with a sync flush after each, so every piece (a
server-sent event, say) reaches the client as soon as the handler yields it. Files
(``FileResponse``, the static folder: they have precompressed siblings and ranges) and push
streams are left alone. ``Vary: Accept-Encoding`` is added whenever the type could be
compressed, so caches keep the variants apart, and a strong ``ETag`` becomes weak (the bytes
differ from the uncoded ones).
"""
from __future__ import annotations

import zlib
from typing import Any, Iterable, Iterator

from .http.values import accepted_codings, identity_acceptable
from .requests import Request
from .responses import Response

__all__ = ["Compressor", "is_compressible"]

_TEXT_PREFIXES = ("text/", "application/json", "application/javascript", "application/xml",
                  "application/x-javascript", "image/svg+xml", "application/ld+json", "application/manifest+json")
_ACCEPT_CACHE_MAX = 256


def is_compressible(content_type: str) -> bool:
    """Whether a ``Content-Type`` names a text type worth compressing."""
    media = content_type.partition(";")[0].strip().lower()
    return media.startswith(_TEXT_PREFIXES) or media.endswith("+json") or media.endswith("+xml")


def add_vary(response: Response, field: str) -> None:
    """Add ``field`` to the response's ``Vary`` unless it (or ``*``) is there already."""
    headers = response.headers
    current = headers.get("vary")
    if not current:
        headers["Vary"] = field
        return
    names = {name.strip().lower() for name in current.split(",")}
    if field.lower() not in names and "*" not in names:
        headers["Vary"] = f"{current}, {field}"


class Compressor:
    """gzip-encode the responses that gain from it (see the module docstring)."""

    def __init__(self, min_size: int = 500, level: int = 6) -> None:
        if min_size < 0:
            raise ValueError("compress_min_size must be >= 0")
        if not 0 <= level <= 9:
            raise ValueError("compress_level must be between 0 and 9")
        self.min_size = min_size
        self.level = level
        # Accept-Encoding value -> (gzip accepted, identity accepted); browsers send a handful of values.
        self._accept_cache: dict[str, tuple[bool, bool]] = {}

    def accepts(self, accept: str) -> tuple[bool, bool]:
        """(gzip acceptable, identity acceptable) for an ``Accept-Encoding`` value."""
        cached = self._accept_cache.get(accept)
        if cached is None:
            cached = ("gzip" in accepted_codings(accept), identity_acceptable(accept))
            if len(self._accept_cache) >= _ACCEPT_CACHE_MAX:
                self._accept_cache.clear()
            self._accept_cache[accept] = cached
        return cached

    def __call__(self, request: Request, response: Response) -> Response:
        if type(response) is not Response:
            return response  # files, static files, push streams: left alone
        status = response.status
        if status < 200 or status in (204, 206, 304) or request.method == "HEAD":
            return response
        headers = response._headers
        content_type = response.content_type
        if headers is not None:
            if "content-encoding" in headers or "content-range" in headers:
                return response
            content_type = headers.get("content-type") or content_type
        if not content_type or not is_compressible(content_type):
            return response
        body = response.body
        streamed = not isinstance(body, (bytes, bytearray, memoryview))
        add_vary(response, "Accept-Encoding")
        gzip_ok, identity_ok = self.accepts(request.headers.get("accept-encoding", ""))
        if not gzip_ok:
            return response
        if not streamed and len(body) < self.min_size and identity_ok:  # type: ignore[arg-type]
            return response
        if streamed:
            response.body = self._stream(body)  # type: ignore[arg-type]
        else:
            compressor = zlib.compressobj(self.level, zlib.DEFLATED, 31)
            response.body = compressor.compress(body) + compressor.flush()  # type: ignore[arg-type]
        response.headers["Content-Encoding"] = "gzip"
        etag = response.headers.get("etag")
        if etag and not etag.startswith("W/"):
            response.headers["ETag"] = "W/" + etag
        return response

    def _stream(self, pieces: Iterable[Any]) -> Iterator[bytes]:
        """The gzip stream of ``pieces``, flushed after each so none waits for the next."""
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, 31)
        iterator = iter(pieces)
        try:
            for piece in iterator:
                data = piece.encode("utf-8") if isinstance(piece, str) else bytes(piece)
                if data:
                    yield compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            yield compressor.flush()
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
