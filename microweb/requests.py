"""The request object handed to every handler: ``HTTPRequest`` plus what a web framework adds."""
from __future__ import annotations

import json as _json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from .datastructures import MultiDict, State
from .errors import HTTPError
from .http.datastructures import Headers
from .http.request import HTTPRequest, split_target, target_authority
from .http.values import parse_cookie_header, parse_options_header

if TYPE_CHECKING:
    from .sessions import Session

__all__ = ["Headers", "MultiDict", "Request", "State", "parse_query"]


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


class Request(HTTPRequest):
    """One HTTP request. Everything past the request line is parsed on first use.

    The parser builds it with ``HTTPRequest``'s arguments; what this class adds starts
    empty (``None``) and is filled on first use, so a handler that never reads
    ``request.form`` pays nothing for it.
    """

    __slots__ = ("app", "environ", "path_params", "_args", "_cookies", "_json", "_form", "_files", "_session",
                 "_state", "_flashes", "_route", "_body", "_stream")
    # ``_state`` and ``_flashes`` are left unset until used (one exception on first use, for the
    # apps that use them), so the constructor stores nothing for them; ``_session`` starts at
    # None because ``App.handle`` reads it after every handler to decide whether to save it.
    # ``_route`` is only set by the app's full dispatch (blueprints, mounts, CORS, before-request
    # hooks): the properties that read it catch its absence, so the hot path never writes it.
    # ``_body`` is None when the body was spooled to a file (``body_file``); ``_stream`` is set
    # when ``stream`` is first used.
    _state: State
    _flashes: list[tuple[str, Any]]
    _route: Any
    _stream: Any

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
        # HTTPRequest.__init__, written out: this runs for every request, and calling it costs
        # about 3% of a hello-world request (callgrind). tests/test_requests.py checks that both
        # constructors give the same fields.
        self.method = method
        self.target = target
        if target[:1] == "/" and "?" not in target and "%" not in target:
            self.path = target
            self.query_string = ""
            self._host = None
        else:
            self.path, self.query_string = split_target(target)
            self._host = None if target[:1] == "/" else target_authority(target)  # absolute-form: its authority wins
        self.http_version = http_version
        self.headers = headers
        self._body = body
        self.body_file = None
        self.keep_alive = keep_alive
        self.remote_addr = remote_addr
        self.scheme = scheme
        self.app: Any = None  # the App handling this request (set by App.handle)
        self.environ: dict[str, Any] | None = None  # the WSGI environ, when it came through WSGI
        self.path_params: dict[str, Any] = {}  # the converted parameters of the matched route
        self._args: MultiDict | None = None
        self._cookies: dict[str, str] | None = None
        self._json: Any = _UNSET
        self._form: MultiDict | None = None
        self._files: MultiDict | None = None
        self._session: Session | None = None

    # -- the body -------------------------------------------------------------------

    @property
    def body(self) -> bytes:
        """The whole body as bytes. A body over the spool threshold is read from its temporary
        file on first use: for large bodies prefer ``stream`` (or ``files`` for uploads)."""
        body = self._body
        if body is None:
            file = self.body_file.file
            position = file.tell()
            file.seek(0)
            body = self._body = file.read()
            file.seek(position)
        return body

    @body.setter
    def body(self, value: bytes) -> None:
        self._body = value

    @property
    def stream(self) -> Any:
        """The body as a binary file object, positioned at 0 when first used: the temporary
        file a large body was spooled to (read it in pieces), or a ``BytesIO`` over a small one."""
        try:
            return self._stream
        except AttributeError:
            pass
        if self._body is None:
            stream = self.body_file.file
            stream.seek(0)
        else:
            from io import BytesIO

            stream = BytesIO(self._body)
        self._stream = stream
        return stream

    def attach_body_file(self, file: Any, size: int) -> None:
        """The body was spooled to ``file`` (a ``server.spool.SpoolFile``): read lazily from there."""
        self.body_file = file
        self._body = None

    @property
    def content_length(self) -> int:
        """The body's size in bytes (without reading a spooled body)."""
        if self._body is None:
            return int(self.body_file.size)
        return len(self._body)

    @property
    def route(self) -> Any:
        """The matched ``Route`` when the app recorded it (it does when it has blueprints,
        mounts, CORS or before-request hooks), else None."""
        try:
            return self._route
        except AttributeError:
            return None

    @property
    def blueprint(self) -> str | None:
        """The full name of the blueprint whose route is handling this request (``"api.v1"``), or None."""
        route = self.route
        return route.blueprint if route is not None else None

    @property
    def blueprints(self) -> list[str]:
        """The blueprint and its parents, innermost first: ``["api.v1", "api"]`` (as in Flask)."""
        name = self.blueprint
        if not name:
            return []
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]

    @property
    def endpoint(self) -> str | None:
        """The matched route's endpoint name (when recorded, as for ``route``)."""
        route = self.route
        return route.name if route is not None else None

    @property
    def args(self) -> MultiDict:
        """The query string parsed into a multi-dict."""
        args = self._args
        if args is None:
            args = self._args = parse_query(self.query_string)
        return args

    @property
    def cookies(self) -> dict[str, str]:
        cookies = self._cookies
        if cookies is None:
            cookies = self._cookies = parse_cookie_header(self.headers.get("cookie", ""))
        return cookies

    @property
    def text(self) -> str:
        charset = parse_options_header(self.headers.get("content-type", ""))[1].get("charset") or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        """The body parsed as JSON; invalid JSON raises a 400 ``HTTPError``."""
        if self._json is not _UNSET:
            return self._json
        if not self.body:
            value = None
        else:
            app = self.app
            loads = app.json_loads if app is not None else _json.loads
            try:
                value = loads(self.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise HTTPError(400, f"Invalid JSON body: {exc}") from None
        self._json = value
        return value

    @property
    def form(self) -> MultiDict:
        if self._form is None:
            self._parse_form()
        return self._form  # type: ignore[return-value]

    @property
    def files(self) -> MultiDict:
        if self._files is None:
            self._parse_form()
        return self._files  # type: ignore[return-value]

    def _parse_form(self) -> None:
        from .forms import parse_form  # on first use: most requests carry no form

        self._form, self._files = parse_form(self)

    # -- application state -------------------------------------------------------

    @property
    def state(self) -> State:
        """An attribute bag for this request (``request.state.user = ...`` in a hook), made on first use."""
        try:
            return self._state
        except AttributeError:
            self._state = state = State()
            return state

    @property
    def session(self) -> Session:
        """The session (``app.session_interface``, a signed cookie by default), opened on first use.

        Without ``app.config["SECRET_KEY"]`` the default interface raises ``RuntimeError``.
        """
        session = self._session
        if session is None:
            app = self.app
            if app is None:
                raise RuntimeError("this request is not being handled by an App: it has no session")
            session = self._session = app.session_interface.open_session(app, self)
        return session

    @property
    def session_opened(self) -> bool:
        """Whether ``session`` was used during this request (the app then saves it)."""
        return self._session is not None

    def flash(self, message: Any, category: str = "message") -> None:
        """Keep ``message`` in the session for the next request that shows flashed messages."""
        session = self.session
        flashes = list(session.get("_flashes") or ())
        flashes.append([category, message])
        session["_flashes"] = flashes

    def get_flashed_messages(self, with_categories: bool = False,
                             category_filter: Any = ()) -> list[Any]:
        """The messages flashed for this client, removed from the session: each is shown once.

        Every call in one request gives the same messages. ``with_categories=True`` gives
        ``(category, message)`` pairs; ``category_filter`` keeps only those categories. Without
        a configured session (no ``SECRET_KEY``) there is nothing: ``[]``.
        """
        try:
            flashes = self._flashes
        except AttributeError:
            flashes = []
            app = self.app
            if app is not None and app.session_interface.is_configured(app):
                session = self.session
                if "_flashes" in session:
                    for item in session.pop("_flashes") or ():
                        if isinstance(item, (list, tuple)) and len(item) == 2:
                            flashes.append((str(item[0]), item[1]))
            self._flashes = flashes
        if category_filter:
            if isinstance(category_filter, str):
                category_filter = (category_filter,)
            flashes = [f for f in flashes if f[0] in category_filter]
        if with_categories:
            return list(flashes)
        return [message for _, message in flashes]

    def csrf_token(self) -> str:
        """A CSRF token bound to this session, for a ``csrf_token`` form field or ``X-CSRF-Token`` header."""
        from .csrf import new_token

        return new_token(self.session)

    def render_template(self, name: str | list[str], /, **context: Any) -> str:
        """Render the template ``name`` of this request's app, with ``request`` in the context."""
        if self.app is None:
            raise RuntimeError("this request is not being handled by an App")
        return self.app.render_template(name, request=self, **context)  # type: ignore[no-any-return]

    def url_for(self, endpoint: str, /, _external: bool = False, **params: Any) -> str:
        """``app.url_for`` with this request: ``_external=True`` gives the public URL (proxy-aware)."""
        if self.app is None:
            raise RuntimeError("this request is not being handled by an App")
        return self.app.url_for(endpoint, _external=_external, _request=self, **params)  # type: ignore[no-any-return]


_UNSET: Any = object()  # request.json not parsed yet (None is a valid JSON value)
