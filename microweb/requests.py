"""The request object handed to every handler: ``HTTPRequest`` plus what a web framework adds."""
from __future__ import annotations

import json as _json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from .datastructures import MultiDict, State
from .errors import HTTPError
from .http.datastructures import Headers
from .http.request import HTTPRequest
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

    The parser builds it (``HTTPRequest``'s constructor); what this class adds lives in
    slots filled on first use, so a handler that never reads ``request.form`` pays
    nothing for it, and building a request costs no more than the protocol's own.
    """

    __slots__ = ("_app", "_environ", "_path_params", "_args", "_cookies", "_json", "_form", "_files", "_state",
                 "_session", "_flashes")
    _app: Any
    _state: State
    _session: Session | None  # App.handle sets None; the session once opened
    _flashes: list[tuple[str, Any]]
    _environ: dict[str, Any] | None
    _path_params: dict[str, Any]
    _args: MultiDict
    _cookies: dict[str, str]
    _json: Any
    _form: MultiDict
    _files: MultiDict

    @property
    def app(self) -> Any:
        """The ``App`` handling this request (None outside ``App.handle``)."""
        try:
            return self._app
        except AttributeError:
            return None

    @app.setter
    def app(self, value: Any) -> None:
        self._app = value

    @property
    def environ(self) -> dict[str, Any] | None:
        """The WSGI environ, when this request came through WSGI (either way); else None."""
        try:
            return self._environ
        except AttributeError:
            return None

    @environ.setter
    def environ(self, value: dict[str, Any] | None) -> None:
        self._environ = value

    @property
    def path_params(self) -> dict[str, Any]:
        """The converted path parameters of the matched route: ``{"item_id": 7}``."""
        try:
            return self._path_params
        except AttributeError:
            params: dict[str, Any] = {}
            self._path_params = params
            return params

    @path_params.setter
    def path_params(self, value: dict[str, Any]) -> None:
        self._path_params = value

    @property
    def args(self) -> MultiDict:
        """The query string parsed into a multi-dict."""
        try:
            return self._args
        except AttributeError:
            self._args = args = parse_query(self.query_string)
            return args

    @property
    def cookies(self) -> dict[str, str]:
        try:
            return self._cookies
        except AttributeError:
            self._cookies = cookies = parse_cookie_header(self.headers.get("cookie", ""))
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
        try:
            return self._json
        except AttributeError:
            pass
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
        try:
            return self._form
        except AttributeError:
            self._parse_form()
            return self._form

    @property
    def files(self) -> MultiDict:
        try:
            return self._files
        except AttributeError:
            self._parse_form()
            return self._files

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
        try:
            session = self._session
        except AttributeError:
            session = None
        if session is None:
            app = self.app
            if app is None:
                raise RuntimeError("this request is not being handled by an App: it has no session")
            session = app.session_interface.open_session(app, self)
            self._session = session
        return session

    @property
    def session_opened(self) -> bool:
        """Whether ``session`` was used during this request (the app then saves it)."""
        try:
            return self._session is not None
        except AttributeError:
            return False

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
