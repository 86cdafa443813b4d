"""Responses: what handlers return, and how each becomes bytes (plus a body source) for the reactor.

``Response.encode(request)`` gives either ``bytes`` (the whole response, the
common case) or a ``BodySource`` (``http/bodies.py``): a response head followed by
a body the server pulls piece by piece as the socket accepts it (an iterator of
chunks, or a file region sent with ``os.sendfile``).
"""
from __future__ import annotations

import html as _html
import json as _json
import mimetypes
import os
import sys
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote

from .errors import NotFound
from .http.bodies import BodySource, FileBody, StreamBody
from .http.datastructures import MutableHeaders
from .http.encode import encode_head
from .http.request import HTTPRequest
from .http.values import http_date

__all__ = ["Response", "FileResponse", "StreamBody", "FileBody", "BodySource", "redirect", "MutableHeaders",
           "json_default", "json_dumps", "json_response", "make_json_dumps"]


_JSON_TYPE = "application/json"
_HTML_TYPE = "text/html; charset=utf-8"


class Response:
    """An HTTP response: ``Response(body=b"", status=200, headers=None, content_type=None)``.

    ``body`` may be ``bytes``, ``str`` (encoded as UTF-8) or an iterable of
    chunks, which is streamed.
    """

    __slots__ = ("body", "status", "_headers", "content_type")

    def __init__(
        self,
        body: bytes | str | Iterable[Any] = b"",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
            if content_type is None:
                content_type = _HTML_TYPE
        self.body = body
        self.status = int(status)
        self._headers = MutableHeaders(headers) if headers is not None else None
        if content_type is None and isinstance(body, (bytes, bytearray)):
            if self._headers is None or "content-type" not in self._headers:
                content_type = "application/octet-stream" if body else None
        self.content_type = content_type

    @property
    def headers(self) -> MutableHeaders:
        if self._headers is None:
            self._headers = MutableHeaders()
        return self._headers

    @property
    def text(self) -> str:
        return self.body.decode("utf-8") if isinstance(self.body, (bytes, bytearray)) else ""

    def set_cookie(
        self,
        name: str,
        value: str = "",
        max_age: int | None = None,
        expires: float | str | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
    ) -> None:
        parts = [f"{name}={quote(str(value), safe='')}"]
        if max_age is not None:
            parts.append(f"Max-Age={int(max_age)}")
        if expires is not None:
            if isinstance(expires, (int, float)):
                expires = http_date(expires)
            parts.append(f"Expires={expires}")
        if domain:
            parts.append(f"Domain={domain}")
        if path:
            parts.append(f"Path={path}")
        if secure:
            parts.append("Secure")
        if httponly:
            parts.append("HttpOnly")
        if samesite:
            if samesite.capitalize() not in ("Strict", "Lax", "None"):
                raise ValueError("samesite must be 'Strict', 'Lax' or 'None'")
            parts.append(f"SameSite={samesite.capitalize()}")
        self.headers.add("Set-Cookie", "; ".join(parts))

    def delete_cookie(self, name: str, path: str | None = "/", domain: str | None = None, secure: bool = False,
                      httponly: bool = False, samesite: str | None = None) -> None:
        """Expire the cookie ``name``; give the attributes it was set with (a ``__Host-``/``__Secure-``
        cookie is only removed by a ``Secure`` deletion)."""
        self.set_cookie(name, "", max_age=0, expires=0, path=path, domain=domain, secure=secure, httponly=httponly,
                        samesite=samesite)

    def header_items(self) -> list[tuple[str, str]]:
        items = self._headers.items() if self._headers is not None else []
        if self.content_type is not None and (self._headers is None or "content-type" not in self._headers):
            return [("Content-Type", self.content_type), *items]
        return items

    def encode(self, request: HTTPRequest) -> bytes | BodySource:
        """Serialize for ``request``: bytes, or a ``BodySource`` for streamed and file bodies."""
        keep_alive = request.keep_alive
        http11_ = request.http_version == "HTTP/1.1"
        body = self.body
        head_only = request.method == "HEAD"
        if self._headers is not None and "close" in self._headers.get("connection", "").lower():
            keep_alive = request.keep_alive = False
        headers = [(k, v) for k, v in self.header_items() if k.lower() not in _FRAMING]
        if isinstance(body, (bytes, bytearray, memoryview)):
            status = self.status
            if status in (204, 304) or status < 200:
                return encode_head(status, headers, None, keep_alive, http11_)
            head = encode_head(status, headers, len(body), keep_alive, http11_)
            return head if head_only else head + bytes(body)
        return self.encode_stream(request, headers, keep_alive, http11_, head_only)

    def encode_stream(self, request: HTTPRequest, headers: list[tuple[str, str]], keep_alive: bool, http11_: bool,
                      head_only: bool) -> bytes | BodySource:
        iterator = iter(self.body)  # type: ignore[arg-type]
        if head_only:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            if not http11_:
                keep_alive = request.keep_alive = False
            return encode_head(self.status, headers, None, keep_alive, http11_)
        # Take the first piece now, before the head is committed: a generator that fails
        # at once still gets a proper 500 page, and one that yields nothing an empty body.
        try:
            first = next(iterator)
        except StopIteration:
            return encode_head(self.status, headers, 0, keep_alive, http11_)
        if not http11_:
            keep_alive = request.keep_alive = False
        head = encode_head(self.status, headers, None, keep_alive, http11_)
        return StreamBody(head, keep_alive, iterator, http11_, first)

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


def json_default(value: Any) -> Any:
    """The JSON form of what the standard encoder does not know: ``datetime``/``date``/``time``
    as ISO 8601, ``UUID`` and ``Decimal`` as strings, an ``Enum`` as its value, a dataclass as
    a dict of its fields, a set as a list (sorted when its items sort), anything with
    ``__html__`` as that markup. Else ``TypeError``.

    Called only for such values: plain data never gets here, so it keeps the C encoder's speed.
    The modules are looked up in ``sys.modules``: a value of a type from a module nobody
    imported cannot exist, so nothing is imported here.
    """
    modules = sys.modules
    datetime = modules.get("datetime")
    if datetime is not None and isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    uuid = modules.get("uuid")
    if uuid is not None and isinstance(value, uuid.UUID):
        return str(value)
    decimal = modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    enum = modules.get("enum")
    if enum is not None and isinstance(value, enum.Enum):
        return value.value
    dataclasses = modules.get("dataclasses")
    if dataclasses is not None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    html = getattr(value, "__html__", None)
    if html is not None:
        return str(html())
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def make_json_dumps(default: Callable[[Any], Any] | None = None, sort_keys: bool = False,
                    ensure_ascii: bool = False) -> Callable[[Any], str]:
    """Compact JSON to str, with ``json_default`` for the types JSON lacks.

    ``default(value)`` is tried first when given (it may raise ``TypeError`` to leave the value
    to ``json_default``). The C encoder is built once here, not on every call as
    ``json.dumps`` does (circular structures then end in RecursionError, a 500).
    """
    from json import encoder

    if default is None:
        fallback = json_default
    else:
        extra = default

        def fallback(value: Any) -> Any:
            try:
                return extra(value)
            except TypeError:
                return json_default(value)

    c_make_encoder = getattr(encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return _json.JSONEncoder(ensure_ascii=ensure_ascii, separators=(",", ":"), sort_keys=sort_keys,
                                 default=fallback).encode
    strings = encoder.encode_basestring_ascii if ensure_ascii else encoder.encode_basestring
    make = c_make_encoder(None, fallback, strings, None, ":", ",", sort_keys, False, True)
    join = "".join
    return lambda value: join(make(value, 0))


json_dumps = make_json_dumps()


def json_response(value: Any, status: int = 200, dumps: Callable[[Any], str] | None = None) -> Response:
    """A JSON response (``dumps``: an app's ``json_dumps``, else the default one)."""
    body = (dumps or json_dumps)(value).encode("utf-8")
    return Response(body, status, None, _JSON_TYPE)


def redirect(location: str, status: int = 302) -> Response:
    """A redirect to ``location`` (302 unless ``status`` says otherwise).

    Like Werkzeug's, it carries a short HTML page with a link to the new place, for
    clients that do not follow redirects (and a ``Content-Type``, which ``wsgiref.validate``
    requires of every response with a body).
    """
    link = _html.escape(location)
    body = ('<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n'
            f'<p>You should be redirected automatically to the target URL: <a href="{link}">{link}</a>. '
            'If not, click the link.\n')
    return Response(body.encode("utf-8"), status, {"Location": location}, _HTML_TYPE)


class FileResponse(Response):
    """Send a file from disk; the reactor uses ``os.sendfile`` when the socket allows it.

    The ``Content-Type`` comes from the file name unless ``content_type`` is given, and
    ``Last-Modified`` from the file. ``download_name`` adds ``Content-Disposition:
    attachment`` with that name (RFC 5987 ``filename*``, so any characters), which makes a
    browser save the file instead of showing it. A file that cannot be opened is a 404.
    """

    __slots__ = ("path", "download_name")

    def __init__(
        self,
        path: str | os.PathLike[str],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        download_name: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        if content_type is None:
            content_type = guess_type(self.path)
        super().__init__(b"", status, headers, content_type)
        self.download_name = download_name

    def encode(self, request: HTTPRequest) -> bytes | BodySource:
        keep_alive = request.keep_alive
        http11_ = request.http_version == "HTTP/1.1"
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            raise NotFound("File not found") from None
        try:
            st = os.fstat(fd)
            headers = [(k, v) for k, v in self.header_items() if k.lower() not in _FRAMING]
            names = {k.lower() for k, _ in headers}
            if "last-modified" not in names:
                headers.append(("Last-Modified", http_date(st.st_mtime)))
            if self.download_name and "content-disposition" not in names:
                headers.append(("Content-Disposition", f"attachment; filename*=UTF-8''{quote(self.download_name)}"))
            head = encode_head(self.status, headers, st.st_size, keep_alive, http11_)
        except BaseException:
            os.close(fd)
            raise
        if request.method == "HEAD" or st.st_size == 0:
            os.close(fd)
            return head
        return FileBody(head, keep_alive, fd, 0, st.st_size)


_TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/xml")
_EXTRA_TYPES = {
    ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
    ".wasm": "application/wasm", ".webp": "image/webp", ".woff2": "font/woff2", ".woff": "font/woff",
    ".webmanifest": "application/manifest+json", ".avif": "image/avif",
}
_types_ready = False


def guess_type(path: str) -> str:
    """The Content-Type for a file name, with ``charset=utf-8`` for text types."""
    global _types_ready
    if not _types_ready:  # read the system's tables on first use, not at import
        for ext, type_ in _EXTRA_TYPES.items():
            mimetypes.add_type(type_, ext)
        _types_ready = True
    content_type, _ = mimetypes.guess_type(path, strict=False)
    if content_type is None:
        return "application/octet-stream"
    if content_type.startswith(_TEXT_TYPES):
        return content_type + "; charset=utf-8"
    return content_type
