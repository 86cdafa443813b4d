"""``HTTPRequest``: one parsed request as the protocol knows it (line, fields, body, connection facts).

The parser builds one per request; the class is a parameter of the parser
(``RequestParser(..., request_class=...)``), so the framework hands in its own
subclass (``microweb.Request``, which adds the parsed-on-first-use conveniences)
and this layer never imports it.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from .datastructures import Headers

__all__ = ["HTTPRequest", "split_target", "target_authority"]


def split_target(target: str) -> tuple[str, str]:
    """Split a request target into its decoded path and raw query string."""
    path, _, query = target.partition("?")
    if path[:1] != "/":
        if path == "*":
            return path, query
        # absolute-form (RFC 9112 3.2.2): http://host[:port]/path
        scheme_end = path.find("://")
        if scheme_end > 0:
            slash = path.find("/", scheme_end + 3)
            path = path[slash:] if slash >= 0 else "/"
    if "%" in path:
        path = unquote(path, errors="surrogateescape")
    return path, query


def target_authority(target: str) -> str | None:
    """The authority a request target names, if it is not origin-form (RFC 9112 3.3).

    absolute-form ``http://a.example:8080/x`` -> ``a.example:8080``; authority-form
    (CONNECT) ``a.example:443`` -> itself; ``*`` and origin-form -> None (the
    ``Host`` field names the authority then).
    """
    if target[:1] == "/" or target == "*":
        return None
    scheme_end = target.find("://")
    if scheme_end < 0:
        return target  # authority-form (the parser allows it only with CONNECT)
    start = scheme_end + 3
    end = len(target)
    for stop in "/?#":
        at = target.find(stop, start)
        if 0 <= at < end:
            end = at
    return target[start:end]


class HTTPRequest:
    """A request line, its header fields, its body, and whether the connection stays open."""

    __slots__ = (
        "method", "target", "path", "query_string", "http_version", "headers", "body",
        "keep_alive", "remote_addr", "scheme", "_host", "body_file", "__weakref__",
    )

    def __init__(
        self,
        method: str,
        target: str,
        http_version: str,
        headers: Headers,
        keep_alive: bool = True,
        remote_addr: str = "",
        scheme: str = "http",
        body: bytes = b"",
    ) -> None:
        self.method = method
        self.target = target
        if target[:1] == "/" and "?" not in target and "%" not in target:
            self.path = target
            self.query_string = ""
            self._host: str | None = None
        else:
            self.path, self.query_string = split_target(target)
            # RFC 9112 3.2.2: the authority of an absolute-form target wins over Host.
            self._host = None if target[:1] == "/" else target_authority(target)
        self.http_version = http_version
        self.headers = headers
        self.body = body
        self.body_file: Any = None  # the temporary file a large body was spooled to
        self.keep_alive = keep_alive
        self.remote_addr = remote_addr
        self.scheme = scheme

    @property
    def host(self) -> str:
        if self._host is None:
            self._host = self.headers.get("host", "") or ""
        return self._host

    @host.setter
    def host(self, value: str) -> None:
        self._host = value

    @property
    def url(self) -> str:
        """The full URL: ``scheme://host/path?query`` (path and query as the client sent them)."""
        if self.target.startswith("/"):
            return f"{self.scheme}://{self.host}{self.target}"
        if self.path[:1] != "/":  # authority-form and asterisk-form: no path (RFC 9112 3.3)
            return f"{self.scheme}://{self.host}"
        query = "?" + self.query_string if self.query_string else ""  # absolute-form: rebuilt from the parts
        return f"{self.scheme}://{self.host}{quote(self.path, safe='/:@!$&()*+,;=-._~')}{query}"

    def attach_body_file(self, file: Any, size: int) -> None:
        """The body was spooled to a temporary file: ``body_file`` holds it (``body`` stays empty).

        The framework's ``Request`` reads it back lazily as ``body`` and offers it as ``stream``.
        ``body_file`` is None on requests whose body stayed in memory.
        """
        self.body_file = file

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")  # type: ignore[no-any-return]

    @property
    def content_length(self) -> int:
        return len(self.body)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.target}>"
