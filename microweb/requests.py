"""The request object handed to every handler, and the case-insensitive ``Headers``."""
from __future__ import annotations

import json as _json
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import unquote, unquote_plus

__all__ = ["Headers", "MultiDict", "Request"]


class Headers:
    """A case-insensitive multi-dict of header fields, in the order they came.

    ``get`` and ``[]`` give the values of a repeated field joined with ``", "``
    (``"; "`` for ``Cookie``); ``getlist`` gives them one by one.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] | None = None) -> None:
        if items is None:
            pairs: list[tuple[str, str]] = []
        elif isinstance(items, Mapping):
            pairs = [(str(k), str(v)) for k, v in items.items()]
        else:
            pairs = [(str(k), str(v)) for k, v in items]
        self._items = pairs
        index: dict[str, list[str]] = {}
        for name, value in pairs:
            key = name.lower()
            values = index.get(key)
            if values is None:
                index[key] = [value]
            else:
                values.append(value)
        self._index = index

    def get(self, name: str, default: Any = None) -> Any:
        values = self._index.get(name.lower())
        if values is None:
            return default
        if len(values) == 1:
            return values[0]
        return ("; " if name.lower() == "cookie" else ", ").join(values)

    def getlist(self, name: str) -> list[str]:
        return list(self._index.get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        return [name for name, _ in self._items]

    def values(self) -> list[str]:
        return [value for _, value in self._items]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted((k.lower(), v) for k, v in self._items) == sorted((k.lower(), v) for k, v in other._items)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class MultiDict(dict):  # type: ignore[type-arg]
    """A dict of first values that also remembers every value: ``getlist(key)``."""

    def __init__(self, pairs: Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__()
        self._lists: dict[str, list[Any]] = {}
        for key, value in pairs:
            self.add(key, value)

    def __missing__(self, key: str) -> Any:
        # ``request.form["x"]`` with no x is the client's mistake: 400, as Flask users expect.
        from .errors import BadRequestKeyError

        raise BadRequestKeyError(key)

    def add(self, key: str, value: Any) -> None:
        if key not in self._lists:
            self._lists[key] = []
            dict.__setitem__(self, key, value)
        self._lists[key].append(value)

    def getlist(self, key: str, type: Any = None) -> list[Any]:
        values = self._lists.get(key, [])
        if type is None:
            return list(values)
        out = []
        for v in values:
            try:
                out.append(type(v))
            except (ValueError, TypeError):
                pass
        return out

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]
        if key not in self:
            return default
        value = self[key]
        if type is None:
            return value
        try:
            return type(value)
        except (ValueError, TypeError):
            return default

    def items_multi(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, vs in self._lists.items() for v in vs]


def parse_query(query: str) -> MultiDict:
    """Parse a query string (``a=1&b=2&a=3``) into a multi-dict; ``+`` and ``%XX`` decoded."""
    args = MultiDict()
    if not query:
        return args
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in part or "+" in part:
            key = unquote_plus(key)
            value = unquote_plus(value)
        args.add(key, value)
    return args


def _split_target(target: str) -> tuple[str, str]:
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


class Request:
    """One HTTP request. Everything past the request line is parsed on first use."""

    __slots__ = (
        "method", "target", "path", "query_string", "http_version", "headers", "body",
        "keep_alive", "remote_addr", "scheme", "path_params", "app", "environ",
        "_args", "_cookies", "_json", "_form", "_files", "_host", "__weakref__",
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
        else:
            self.path, self.query_string = _split_target(target)
        self.http_version = http_version
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.remote_addr = remote_addr
        self.scheme = scheme
        self.path_params: dict[str, Any] = {}
        self.app: Any = None
        self.environ: dict[str, Any] | None = None
        self._args: MultiDict | None = None
        self._cookies: dict[str, str] | None = None
        self._json: Any = _UNSET
        self._form: MultiDict | None = None
        self._files: MultiDict | None = None
        self._host: str | None = None

    @property
    def args(self) -> MultiDict:
        """The query string parsed into a multi-dict."""
        if self._args is None:
            self._args = parse_query(self.query_string)
        return self._args

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = parse_cookie_header(self.headers.get("cookie", ""))
        return self._cookies

    @property
    def text(self) -> str:
        charset = "utf-8"
        content_type = self.headers.get("content-type", "")
        for param in content_type.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The body parsed as JSON; invalid JSON raises a 400 ``HTTPError``."""
        if self._json is _UNSET:
            if not self.body:
                self._json = None
            else:
                try:
                    self._json = _json.loads(self.body)
                except (ValueError, UnicodeDecodeError) as exc:
                    from .errors import HTTPError

                    raise HTTPError(400, f"Invalid JSON body: {exc}") from None
        return self._json

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
        from urllib.parse import quote  # absolute-form target: rebuild from the parsed parts

        query = "?" + self.query_string if self.query_string else ""
        return f"{self.scheme}://{self.host}{quote(self.path, safe='/:@!$&()*+,;=-._~')}{query}"

    @property
    def form(self) -> MultiDict:
        if self._form is None:
            from .forms import parse_form

            self._form, self._files = parse_form(self)
        return self._form

    @property
    def files(self) -> MultiDict:
        if self._files is None:
            from .forms import parse_form

            self._form, self._files = parse_form(self)
        return self._files

    def render_template(self, name: str | list[str], /, **context: Any) -> str:
        """Render the template ``name`` of this request's app, with ``request`` in the context."""
        if self.app is None:
            raise RuntimeError("this request is not being handled by an App")
        return self.app.render_template(name, request=self, **context)

    def url_for(self, endpoint: str, /, _external: bool = False, **params: Any) -> str:
        """``app.url_for`` with this request: ``_external=True`` gives the public URL (proxy-aware)."""
        if self.app is None:
            raise RuntimeError("this request is not being handled by an App")
        return self.app.url_for(endpoint, _external=_external, _request=self, **params)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def content_length(self) -> int:
        return len(self.body)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


_UNSET: Any = object()


def parse_quality_list(value: str) -> list[tuple[str, float]]:
    """Parse an ``Accept``-style list: ``"a/b;q=0.5, c"`` -> ``[("a/b", 0.5), ("c", 1.0)]`` (lowercased)."""
    items: list[tuple[str, float]] = []
    for item in value.lower().split(","):
        token, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = 0.0
        items.append((token.strip(), q))
    return items


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header: ``a=1; b="2"`` -> ``{"a": "1", "b": "2"}`` (first one wins)."""
    cookies: dict[str, str] = {}
    if not header:
        return cookies
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if "%" in value:
            value = unquote(value)
        cookies.setdefault(name.strip(), value)
    return cookies
