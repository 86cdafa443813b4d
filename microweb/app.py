"""``App``: route decorators, hooks, error handlers, and ``handle(request)``, the dispatch
the server calls for every request."""
from __future__ import annotations

import functools
import json
import logging
import os
import traceback
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from .blueprints import Blueprint
from .compression import Compressor
from .config import Config, default_config
from .cors import CORSPolicy
from .errorpages import ErrorPage, fixed_shape, shape_context
from .errors import HTTPError, MethodNotAllowed, NotFound, RequestRedirect
from .http.bodies import BodySource
from .http.encode import encode_simple_head, internal_error_response, reason_phrase
from .http.values import parse_quality_list
from .multipart import FormLimits
from .requests import Request
from .responses import Response, json_response, make_json_dumps, redirect
from .routing import Router, OptionsAllowed
from .shortcuts import MethodShortcuts
from .templating import TemplateHelpers, Templates, call_context_processor
from .uploads import admit_body, parse_body_limit
from .wsgi import WSGIAdapter, call_app as call_wsgi

if TYPE_CHECKING:
    from .sessions import SessionInterface

__all__ = ["App"]

log = logging.getLogger("microweb")

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[..., Any]
Output = bytes | BodySource

_STATIC_PATHS_MAX = 4096
_ERROR_PAGES_MAX = 64
_HTML = b"text/html; charset=utf-8"
_HTML_STR = _HTML.decode()
_JSON = b"application/json"


def _resolve_folder(folder: str | os.PathLike[str] | None) -> str | None:
    if folder is None:
        return None
    return os.path.abspath(os.fspath(folder))


class App(MethodShortcuts, TemplateHelpers):
    """A microweb application.

    ``App(template_folder="templates", static_folder="static", static_url_path="", debug=False,
    websocket_origins=None, compress=False, compress_min_size=500, compress_level=6)``; relative
    folders are resolved against the working directory when the App is made. Settings live in
    ``app.config`` (docs/sessions.md lists the keys). Register hooks with the decorators
    (``@app.before_request`` ...), not by appending to the lists: the decorators also decide, once,
    which dispatch path requests take, so an app without hooks, blueprints, mounts, CORS or
    compression pays for none.
    """

    #: The class the server's parser builds for this app's requests.
    request_class: type[Request] = Request

    def __init__(
        self,
        template_folder: str | os.PathLike[str] | None = "templates",
        static_folder: str | os.PathLike[str] | None = "static",
        static_url_path: str = "",
        debug: bool = False,
        websocket_origins: Iterable[str] | None = None,
        compress: bool = False,
        compress_min_size: int = 500,
        compress_level: int = 6,
    ) -> None:
        self.router = Router()
        # Origins allowed to open this app's websockets (None: any; a route's origins= wins).
        self.websocket_origins: list[str] | None = list(websocket_origins) if websocket_origins is not None else None
        self.template_folder = _resolve_folder(template_folder)
        self.static_folder = _resolve_folder(static_folder)
        self.static_url_path = static_url_path.rstrip("/")
        self.before_request_funcs: list[Callable[[Request], Any]] = []
        self.after_request_funcs: list[Callable[[Request, Response], Response]] = []
        self.error_handlers: dict[int | type[BaseException], Callable[[Request, Any], Any]] = {}
        self.teardown_request_funcs: list[Callable[[Request, BaseException | None], Any]] = []
        #: Registered blueprints by full name (``"parent.child"`` when nested).
        self.blueprints: dict[str, Blueprint] = {}
        #: (prefix, App or None, WSGIAdapter or None), longest prefix first (see ``mount``).
        self.mounts: list[tuple[str, App | None, WSGIAdapter | None]] = []
        #: The path this app is mounted at when it is another App's ``mount`` ("" otherwise).
        self.script_root = ""
        self.cors_policy: CORSPolicy | None = None
        self._compress_settings = (compress_min_size, compress_level)
        Compressor(compress_min_size, compress_level)  # a bad setting raises now, even with compress off
        self.compressor: Compressor | None = Compressor(*self._compress_settings) if compress else None
        self._blueprint_routes = False
        self._cors = False  # a CORS policy on the app or a blueprint
        self._bp_before: dict[str, tuple[Callable[[Request], Any], ...]] = {}
        self._bp_after: dict[str, tuple[Callable[[Request, Response], Response], ...]] = {}
        self._pre = False  # the full dispatch: before hooks, blueprints, mounts, CORS or CSRF
        self._post = False  # the full finish: after hooks, CORS, compression or teardown
        self._route_request: Callable[[Request], Any] = self._dispatch
        self.config = Config(default_config())
        self.init_template_helpers()
        self.templates = Templates(self.template_folder, auto_reload=debug,
                                   globals={"url_for": self.url_for, "config": self.config})
        self.debug = debug
        self.form_limits = FormLimits()  # multipart/urlencoded limits (see multipart.py)
        self.static: Any = None  # the static-file resolver, made on first use (see static.py)
        self._literal = self.router.literal
        # Paths that no route matched and the static folder answered (bounded; cleared when
        # a route is added): ``handle`` sends their unchanged files without asking the router.
        self._static_paths: set[str] = set()
        # Error pages rendered once: (status, description) -> (the Jinja environment, the page
        # with slots for the path and method, or None: renders every time). See ``error_page``.
        self._error_pages: dict[tuple[int, str | None], tuple[Any, ErrorPage | None]] = {}
        #: ``request.json`` parses with this (``functools.partial(json.loads, parse_float=Decimal)``...).
        self.json_loads: Callable[..., Any] = json.loads
        self._json_default: Callable[[Any], Any] | None = None
        self._session_interface: SessionInterface | None = None
        # What the hot path needs of the config, kept up to date by ``_config_changed``.
        self._csrf_protect = False
        self._csrf_methods: frozenset[str] = frozenset()
        self._check_csrf: Callable[..., None] | None = None
        self.json_dumps: Callable[[Any], str] = make_json_dumps()
        self.config.watch(self._config_changed)
        self._update_paths()

    # -- configuration ----------------------------------------------------------

    def _config_changed(self, key: str) -> None:
        if key == "CSRF_PROTECT":
            if self.config.get("CSRF_PROTECT") and self._check_csrf is None:
                from .csrf import UNSAFE_METHODS, check_request  # only apps that turn it on import it

                self._check_csrf, self._csrf_methods = check_request, UNSAFE_METHODS
            self._csrf_protect = bool(self.config.get("CSRF_PROTECT"))
            self._update_paths()
        elif key in ("JSON_SORT_KEYS", "JSON_ENSURE_ASCII"):
            self._build_json()

    def _build_json(self) -> None:
        self.json_dumps = make_json_dumps(self._json_default, bool(self.config.get("JSON_SORT_KEYS")),
                                          bool(self.config.get("JSON_ENSURE_ASCII")))

    @property
    def json_default(self) -> Callable[[Any], Any] | None:
        """``func(value)`` for values JSON does not know, tried before the built-in ones
        (datetime, UUID, Decimal, dataclasses, Enum, sets); raise ``TypeError`` to pass."""
        return self._json_default

    @json_default.setter
    def json_default(self, func: Callable[[Any], Any] | None) -> None:
        self._json_default = func
        self._build_json()

    @property
    def secret_key(self) -> str | bytes | None:
        """``app.config["SECRET_KEY"]``: signs the session cookie."""
        return self.config.get("SECRET_KEY")  # type: ignore[no-any-return]

    @secret_key.setter
    def secret_key(self, value: str | bytes | None) -> None:
        self.config["SECRET_KEY"] = value

    @property
    def session_interface(self) -> SessionInterface:
        """Opens and saves ``request.session``: a signed cookie (``CookieSessionInterface``)
        unless you assign your own ``SessionInterface``."""
        if self._session_interface is None:
            from .sessions import CookieSessionInterface

            self._session_interface = CookieSessionInterface()
        return self._session_interface

    @session_interface.setter
    def session_interface(self, value: SessionInterface) -> None:
        self._session_interface = value

    def add_template_helper(self, kind: str, func: Any, name: str | None = None) -> str:
        key = super().add_template_helper(kind, func, name)
        self.templates.add(kind, key, func)
        return key

    def _update_paths(self) -> None:
        """Choose, once per registration, the dispatch and finish paths requests take."""
        blueprints = self.blueprints.values()
        cors = self.cors_policy is not None or any(bp.cors_policy is not None for bp in blueprints)
        self._cors = cors
        # Per blueprint, its hooks and its parents' flattened in the order they run (blueprints
        # cannot change once registered, so this is computed here, not per request).
        self._bp_before = {}
        self._bp_after = {}
        for name in self.blueprints:
            parts = name.split(".")
            chain = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]  # innermost first
            self._bp_before[name] = tuple(f for bp in reversed(chain) for f in self.blueprints[bp].before_request_funcs)
            self._bp_after[name] = tuple(f for bp in chain for f in self.blueprints[bp].after_request_funcs)
        self._pre = bool(self.before_request_funcs or self._blueprint_routes or self.mounts or cors
                         or self._csrf_protect)
        self._post = bool(self.after_request_funcs or self.teardown_request_funcs or cors
                          or self.compressor is not None or any(bp.after_request_funcs for bp in blueprints))
        self._route_request = self._dispatch_full if self._pre else self._dispatch

    @property
    def compress(self) -> bool:
        """Whether dynamic responses are gzip-encoded when the client accepts it (``microweb.compression``)."""
        return self.compressor is not None

    @compress.setter
    def compress(self, value: bool) -> None:
        self.compressor = Compressor(*self._compress_settings) if value else None
        self._update_paths()

    @property
    def debug(self) -> bool:
        """Debug mode: the 500 page shows the traceback and templates reload when their file changes."""
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._debug = bool(value)
        self.templates.set_auto_reload(self._debug)

    # -- registration ---------------------------------------------------------

    def route(self, path: str, methods: Iterable[str] | None = None, name: str | None = None,
              csrf: bool = True, max_body_size: int | str | None = None) -> Callable[[F], F]:
        """Register the decorated function for ``path`` (``GET`` unless ``methods`` says otherwise).

        ``csrf=False``: this route's POST/PUT/PATCH/DELETE need no CSRF token even when
        ``config["CSRF_PROTECT"]`` is on (a JSON API authenticated otherwise).
        ``max_body_size``: this route's request-body limit (``"2G"``, ``"512K"`` or bytes),
        instead of ``config["MAX_BODY_SIZE"]``; a larger body is answered 413 before it is read.
        """

        if max_body_size is not None:
            parse_body_limit(max_body_size)  # a bad size raises here, not when the function is decorated

        def decorator(func: F) -> F:
            self.add_route(path, func, methods, name, csrf, max_body_size)
            return func

        return decorator

    def add_route(self, path: str, handler: Handler, methods: Iterable[str] | None = None,
                  name: str | None = None, csrf: bool = True, max_body_size: int | str | None = None) -> None:
        """Register ``handler`` for ``path`` without a decorator (what ``route`` calls)."""
        limit = parse_body_limit(max_body_size) if max_body_size is not None else None
        self._static_paths.clear()  # a new route may now match a path the static folder answered
        route = self.router.add(path, list(methods) if methods is not None else None, handler, name)
        route.csrf = csrf
        route.max_body_size = limit

    def websocket(self, path: str, origins: Iterable[str] | None = None, subprotocols: Iterable[str] | None = None,
                  name: str | None = None) -> Callable[[F], F]:
        """Register ``handler(request, ws, **path_params)`` for WebSocket connections to ``path``.

        ``origins``: the ``Origin`` values allowed to connect (else ``App(websocket_origins=...)``;
        a browser's handshake from elsewhere gets 403). ``subprotocols``: the ones this route
        speaks, matched against the client's ``Sec-WebSocket-Protocol`` (``ws.subprotocol``).
        See ``microweb/websocket.py`` and docs/websockets.md.
        """
        from .websocket import WebSocketRoute  # on first use: most apps have no websockets

        def decorator(func: F) -> F:
            route = WebSocketRoute(self, func, origins, subprotocols)
            self.add_route(path, route, ["GET"], name or getattr(func, "__name__", None))
            return func

        return decorator

    def before_request(self, func: F) -> F:
        """``func(request)`` runs before every handler; a non-None return short-circuits."""
        self.before_request_funcs.append(func)
        self._update_paths()
        return func

    def after_request(self, func: F) -> F:
        """``func(request, response)`` runs after every handler and returns the response."""
        self.after_request_funcs.append(func)
        self._update_paths()
        return func

    def teardown_request(self, func: F) -> F:
        """``func(request, exc_or_None)`` runs once the response is built, on success and on error.

        It cannot change the response (its return value is ignored); an exception in it is
        logged and the others still run. For a streamed body it runs before the stream is sent.
        """
        self.teardown_request_funcs.append(func)
        self._update_paths()
        return func

    def cors(self, origins: str | Iterable[str] = "*", methods: Iterable[str] | None = None,
             headers: Iterable[str] | None = None, expose_headers: Iterable[str] | None = None,
             credentials: bool = False, max_age: int | None = 600) -> CORSPolicy:
        """Allow cross-origin requests from ``origins`` (``"*"`` or a list); see ``microweb.cors``.

        A blueprint's own ``bp.cors(...)`` wins for its routes. ``"*"`` with ``credentials=True``
        raises ``ValueError``.
        """
        self.cors_policy = CORSPolicy(origins, methods, headers, expose_headers, credentials, max_age)
        self._update_paths()
        return self.cors_policy

    # -- blueprints and mounts --------------------------------------------------

    def register_blueprint(self, blueprint: Blueprint, url_prefix: str | None = None) -> None:
        """Add ``blueprint``'s routes under ``url_prefix`` (else its own), endpoints ``"<name>.<function>"``.

        Registering two blueprints with one name, or a route that is already routed, raises
        ``ValueError``. Nested blueprints (``bp.register_blueprint(child)``) come along, under
        the parent's prefix and as ``"parent.child"``.
        """
        self._register_blueprint(blueprint, url_prefix, "", "")
        self._update_paths()

    def _register_blueprint(self, bp: Blueprint, url_prefix: str | None, parent: str, parent_prefix: str) -> None:
        name = f"{parent}.{bp.name}" if parent else bp.name
        if name in self.blueprints:
            raise ValueError(f"a blueprint named {name!r} is already registered "
                             f"({self.blueprints[name]!r}); blueprint names must be unique")
        prefix = url_prefix if url_prefix is not None else (bp.url_prefix or "")
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"url_prefix {prefix!r} must start with '/'")
        prefix = parent_prefix + prefix.rstrip("/")
        self.blueprints[name] = bp
        bp.registered = True
        for rule, methods, handler, endpoint, csrf, max_body_size in bp.deferred_routes:
            full_rule = prefix + rule if rule else prefix or "/"
            self._static_paths.clear()
            bind = getattr(handler, "bind", None)  # a @bp.websocket route: its origins default to this app's
            if bind is not None:
                handler = bind(self)
            route = self.router.add(full_rule, methods, handler, f"{name}.{endpoint}")
            route.blueprint = name
            route.csrf = csrf
            route.max_body_size = parse_body_limit(max_body_size) if max_body_size is not None else None
            self._blueprint_routes = True
        if bp.static_folder is not None:
            self._add_blueprint_static(bp, name, prefix)
        if bp.template_folder is not None:
            self.templates.add_folder(bp.template_folder)
        for func in bp.app_context_processors:
            self.context_processor(func)
        for kind, helpers in (("filter", bp.template_filters), ("global", bp.template_globals),
                              ("test", bp.template_tests)):
            for helper_name, func in helpers.items():
                self.add_template_helper(kind, func, helper_name)
        for child, child_prefix in bp.children:
            self._register_blueprint(child, child_prefix, name, prefix)

    def _add_blueprint_static(self, bp: Blueprint, name: str, prefix: str) -> None:
        from .static import StaticFiles

        url_path = prefix + (bp.static_url_path or "")
        files = StaticFiles(bp.static_folder or "", url_path)

        def static(request: Request, filename: str) -> Any:
            response = files.response(request)
            if response is None:
                raise NotFound()
            return response

        route = self.router.add(url_path + "/<path:filename>", ["GET"], static, f"{name}.static")
        route.blueprint = name
        self._blueprint_routes = True

    def mount(self, prefix: str, app: Any) -> None:
        """Let ``app`` answer every path under ``prefix``: another ``App``, or any WSGI application.

        A WSGI app sees ``SCRIPT_NAME=prefix`` and the rest as ``PATH_INFO`` (PEP 3333), so its
        own ``url_for`` and redirects carry the prefix; a microweb ``App`` is called directly
        with the rest as ``request.path``, and its ``url_for`` adds the prefix. ``prefix`` itself
        redirects (308) to ``prefix/``. The mount wins over this app's routes under ``prefix``;
        this app's hooks, CORS and compression do not apply to the mounted app's responses.
        """
        prefix = "/" + prefix.strip("/")
        if prefix == "/":
            raise ValueError("mount() needs a prefix other than '/'")
        if any(existing == prefix for existing, _, _ in self.mounts):
            raise ValueError(f"something is already mounted at {prefix!r}")
        if isinstance(app, App):
            if app is self:
                raise ValueError("an App cannot be mounted on itself")
            app.script_root = self.script_root + prefix
            self.mounts.append((prefix, app, None))
        elif callable(app):
            adapter = WSGIAdapter(app, multithread=True)
            adapter.base_environ["SCRIPT_NAME"] = self.script_root + prefix
            self.mounts.append((prefix, None, adapter))
        else:
            raise TypeError(f"mount() needs an App or a WSGI application, not {type(app).__name__}")
        self.mounts.sort(key=lambda m: -len(m[0]))
        self._update_paths()

    def _mounted(self, request: Request) -> Output | None:
        """The answer of the app mounted where ``request.path`` is, or None."""
        path = request.path
        for prefix, sub, adapter in self.mounts:
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if rest == "":
                location = _redirect_location(self.script_root + prefix + "/", request.query_string)
                return Response(b"", 308, {"Location": location}).encode(request)
            if rest[0] != "/":
                continue
            request.path = rest
            try:
                if sub is not None:
                    return sub.handle(request)
                assert adapter is not None
                return adapter(request)
            finally:
                request.path = path
                request.app = self
        return None

    def errorhandler(self, key: int | type[BaseException]) -> Callable[[F], F]:
        """Handle an HTTP status or an exception class: ``handler(request, error)``."""

        def decorator(func: F) -> F:
            self.error_handlers[key] = func
            return func

        return decorator

    def url_for(self, endpoint: str, _external: bool = False, _request: Request | None = None,
                _scheme: str | None = None, _host: str | None = None, **params: Any) -> str:
        """Build the path of ``endpoint``; params not in the route become the query string.

        ``_external=True`` builds the full public URL from ``_request``'s scheme and host (which
        a trusted proxy's ``X-Forwarded-Proto``/``-Host``/``Forwarded`` have already set), or
        from ``_scheme``/``_host`` when given. ``url_for("static", filename="css/site.css")`` is
        the URL of a file in the static folder (as in Flask), unless a route is named ``static``.
        """
        if endpoint[:1] == ".":  # relative to the blueprint of the request being handled
            blueprint = _request.blueprint if _request is not None else None
            endpoint = f"{blueprint}{endpoint}" if blueprint else endpoint[1:]
        if endpoint == "static" and "static" not in self.router.by_name and self.static_folder is not None:
            path = self._static_url(params)
        else:
            path = self.router.url_for(endpoint, params)
        if self.script_root:
            path = self.script_root + path
        if not _external:
            return path
        if _request is not None:
            scheme = _scheme or _request.scheme
            host = _host or _request.host
            prefix = (_request.environ or {}).get("SCRIPT_NAME", "") if _request.environ else ""
        elif _host:
            scheme, host, prefix = _scheme or "http", _host, ""
        else:
            raise ValueError("url_for(..., _external=True) needs _request=request (or _host=...)")
        return f"{scheme}://{host}{prefix}{path}"

    def _static_url(self, params: dict[str, Any]) -> str:
        from urllib.parse import quote, urlencode

        if "filename" not in params:
            raise KeyError("url_for('static') needs a value for 'filename'")
        path = f"{self.static_url_path}/{quote(str(params.pop('filename')).lstrip('/'))}"
        return path + "?" + urlencode(params, doseq=True) if params else path

    def render_template(self, name: str | list[str], /, **context: Any) -> str:
        """Render the template ``name`` with ``context``; ``url_for`` and ``config`` are always there.

        Pass ``request=request`` to make the request available in the template (or call
        ``request.render_template(name, **context)``, which does that for you): there is no
        global current request. With the request, the template also gets ``session``,
        ``get_flashed_messages``, ``csrf_token`` and what the context processors return.
        """
        request = context.get("request")
        if request is not None:
            context = self.request_context(request, context)
        return self.templates.render(name, context)

    def request_context(self, request: Request, context: dict[str, Any]) -> dict[str, Any]:
        """The context of a render with ``request``: the request's helpers, then the context
        processors' values, then ``context`` (which wins)."""
        from .sessions import TemplateSession

        values: dict[str, Any] = {
            "request": request,
            "session": TemplateSession(request),
            "get_flashed_messages": request.get_flashed_messages,
            "csrf_token": request.csrf_token,
        }
        for func in self.context_processors:
            extra = call_context_processor(func, request)
            if extra:
                values.update(extra)
        if self.blueprints:
            blueprints = request.blueprints
            for bp_name in reversed(blueprints):  # outer blueprint first, inner wins
                for func in self.blueprints[bp_name].context_processors:
                    extra = call_context_processor(func, request)
                    if extra:
                        values.update(extra)
            if blueprints:  # url_for(".name") in the template means the blueprint's own
                values["url_for"] = functools.partial(self.url_for, _request=request)
        values.update(context)
        return values

    # -- dispatch -------------------------------------------------------------

    def handle(self, request: Request) -> Output:
        """Answer one request: the whole response as bytes, or a head plus a body source."""
        request.app = self
        try:
            table = self._literal.get(request.path)
            route = table.get(request.method) if table is not None else None
            if route is None or self._pre:
                if route is None and request.path in self._static_paths and not self._pre and not self._post:
                    # A path no route matches that the static folder served before: skip the
                    # router (and its NotFound) and answer an unchanged file straight away.
                    fast = self.static.fast_response(request)
                    if fast is not None:
                        return fast
                rv = self._route_request(request)
            else:
                rv = route.handler(request)
            if not self._post and request._session is None:  # the session untouched
                kind = type(rv)
                if kind is str:
                    body = rv.encode("utf-8")
                    content_type = _HTML
                elif kind is dict or kind is list:
                    body = self.json_dumps(rv).encode("utf-8")
                    content_type = _JSON
                else:
                    body = None
                if body is not None:
                    head = encode_simple_head(200, content_type, len(body), request.keep_alive,
                                                     request.http_version == "HTTP/1.1")
                    return head if request.method == "HEAD" else head + body
                return self.make_response(rv).encode(request)
            response = self.make_response(rv)
            if self._post:
                response = self._after(request, response)
            elif request._session is not None:
                self.save_session(request, response)
            output = response.encode(request)
            if self.teardown_request_funcs:
                self._teardown(request, None)
            return output
        except Exception as exc:
            return self._handle_exception(request, exc)

    def save_session(self, request: Request, response: Response) -> None:
        """Save ``request.session`` into ``response`` (when the request used it)."""
        session = request._session
        if session is None:
            return
        try:
            self.session_interface.save_session(self, request, session, response)
        except BaseException:
            request._session = None  # the error page must not try again
            raise

    def _after(self, request: Request, response: Response) -> Response:
        """The full finish: blueprint then app after-request hooks, the session, CORS headers,
        compression (last: it encodes what the others produced). A mounted app's answer is its own."""
        if type(response) is _MountedResponse:
            return response
        if self._bp_after:
            blueprint = request.blueprint
            if blueprint is not None:
                for func in self._bp_after[blueprint]:
                    response = func(request, response)
        for func in self.after_request_funcs:
            response = func(request, response)
        if request._session is not None:
            self.save_session(request, response)
        if self._cors:
            policy = self._cors_policy_for(request.blueprint)
            if policy is not None and not _is_preflight(request):
                response = policy.apply(request, response)
        if self.compressor is not None:
            response = self.compressor(request, response)
        return response

    def _teardown(self, request: Request, exc: BaseException | None) -> None:
        for func in self.teardown_request_funcs:
            try:
                func(request, exc)
            except Exception:
                log.exception("teardown_request function %r failed for %s %s",
                              getattr(func, "__name__", func), request.method, request.path)

    def _cors_policy_for(self, blueprint: str | None) -> CORSPolicy | None:
        """The CORS policy of the innermost blueprint that has one, else the app's."""
        while blueprint:
            policy = self.blueprints[blueprint].cors_policy
            if policy is not None:
                return policy
            blueprint = blueprint.rpartition(".")[0]
        return self.cors_policy

    def _dispatch(self, request: Request) -> Any:
        for func in self.before_request_funcs:
            rv = func(request)
            if rv is not None:
                return rv
        try:
            route, params = self.router.match(request.method, request.path)
        except NotFound:
            static = self.static_response(request)  # raises 405 for other methods on a static path
            if static is not None:
                paths = self._static_paths
                if len(paths) >= _STATIC_PATHS_MAX:
                    paths.clear()
                paths.add(request.path)
                return static
            raise
        except OptionsAllowed as exc:
            return Response(b"", 204, exc.headers)
        except RequestRedirect as exc:
            return redirect(_redirect_location(self.script_root + exc.location, request.query_string), 308)
        request.path_params = params
        if self._csrf_protect and request.method in self._csrf_methods and route.csrf:
            self._check_csrf_token(request)
        return route.handler(request, **params)

    def _check_csrf_token(self, request: Request) -> None:
        """``CSRF_PROTECT``: refuse (403) a request whose token is missing or wrong."""
        config = self.config
        check = self._check_csrf
        assert check is not None
        check(request, config.get("CSRF_FIELD_NAME") or "csrf_token", config.get("CSRF_HEADER_NAME") or "X-CSRF-Token")

    def _dispatch_full(self, request: Request) -> Any:
        """``_dispatch`` plus CORS preflights, the matched route on ``request.route`` and
        blueprint before-request hooks (outer blueprint first)."""
        request._route = None
        if self.mounts:
            mounted = self._mounted(request)
            if mounted is not None:
                return _MountedResponse(mounted)
        if self._cors and _is_preflight(request):
            routes = self.router.routes_for(request.path)
            policy = self._cors_policy_for(routes[0].blueprint) if routes else self.cors_policy
            if routes and policy is not None:
                methods: set[str] = set()
                for route in routes:
                    methods |= route.methods
                return policy.preflight(request, methods)
        for func in self.before_request_funcs:
            rv = func(request)
            if rv is not None:
                return rv
        try:
            route, params = self.router.match(request.method, request.path)
        except NotFound:
            static = self.static_response(request)
            if static is not None:
                return static
            raise
        except OptionsAllowed as exc:
            return Response(b"", 204, exc.headers)
        except RequestRedirect as exc:
            return redirect(_redirect_location(self.script_root + exc.location, request.query_string), 308)
        request._route = route
        request.path_params = params
        if self._csrf_protect and request.method in self._csrf_methods and route.csrf:
            self._check_csrf_token(request)
        if route.blueprint is not None:
            for func in self._bp_before[route.blueprint]:
                rv = func(request)
                if rv is not None:
                    return rv
        return route.handler(request, **params)

    def static_response(self, request: Request) -> Response | None:
        """The static-folder fallback for a request no route matched (None: not found).

        GET and HEAD get the file; other methods on a static path raise ``MethodNotAllowed``
        (``Allow: GET, HEAD``). Assign ``app.static = StaticFiles(...)`` to configure it.
        """
        if self.static_folder is None:
            return None
        if self.static is None:
            from .static import StaticFiles

            self.static = StaticFiles(self.static_folder, self.static_url_path)
        return self.static.response(request)

    def make_response(self, rv: Any) -> Response:
        """Turn a handler's return value into a ``Response``."""
        if isinstance(rv, Response):
            return rv
        if isinstance(rv, str):
            return Response(rv)
        if isinstance(rv, (bytes, bytearray)):
            return Response(bytes(rv), content_type="text/html; charset=utf-8")
        if isinstance(rv, (dict, list)):
            return json_response(rv, dumps=self.json_dumps)
        if isinstance(rv, tuple):
            return self._tuple_response(rv)
        if rv is None:
            raise TypeError("the handler returned None; return a str, bytes, dict, list, Response or iterator")
        if hasattr(rv, "__iter__") or hasattr(rv, "__next__"):
            return Response(rv, content_type="text/html; charset=utf-8")
        raise TypeError(f"the handler returned a {type(rv).__name__}, which microweb cannot send")

    def _tuple_response(self, rv: tuple[Any, ...]) -> Response:
        if not 2 <= len(rv) <= 3:
            raise TypeError("a tuple returned by a handler must be (body, status) or (body, status, headers)")
        body, status, headers = (rv + (None,))[:3]
        if not isinstance(status, int) and headers is None:
            status, headers = 200, status
        response = self.make_response(body)
        response.status = int(status)
        if headers:
            response.headers.update(headers)
        return response

    # -- errors ---------------------------------------------------------------

    def _handle_exception(self, request: Request, exc: Exception) -> Output:
        output: Output
        try:
            response = self.exception_response(request, exc)
            if self._post:
                response = self._after(request, response)
            elif request._session is not None:
                self.save_session(request, response)
            output = response.encode(request)
        except Exception:
            log.exception("error while handling an error for %s %s", request.method, request.path)
            output = self._plain_500(request)
        if self.teardown_request_funcs:
            self._teardown(request, exc)
        return output

    def _plain_500(self, request: Request) -> bytes:
        request.keep_alive = False
        return internal_error_response(request.method == "HEAD", request.http_version == "HTTP/1.1")

    def exception_response(self, request: Request, exc: Exception) -> Response:
        """The response for an exception raised while handling ``request``.

        Errors raised in a blueprint's route go to that blueprint's handlers first (innermost
        blueprint first, the status before the exception class), then to the app's.
        """
        if self._blueprint_routes and request.blueprint is not None:
            for name in request.blueprints:
                handlers = self.blueprints[name].error_handlers
                if handlers:
                    handler = (handlers.get(exc.status) if isinstance(exc, HTTPError) else None) \
                        or _find_handler(handlers, exc)
                    if handler is not None:
                        response = self.make_response(handler(request, exc))
                        if isinstance(exc, MethodNotAllowed) and "allow" not in response.headers:
                            response.headers["Allow"] = ", ".join(exc.allowed)
                        return response
        if isinstance(exc, HTTPError):
            handler = self.error_handlers.get(exc.status) or self._find_exception_handler(exc)
            if handler is not None:
                response = self.make_response(handler(request, exc))
                if isinstance(exc, MethodNotAllowed) and "allow" not in response.headers:
                    response.headers["Allow"] = ", ".join(exc.allowed)
                return response
            return self.error_response(request, exc.status, exc.description, exc.headers)
        handler = self._find_exception_handler(exc)
        if handler is not None:
            return self.make_response(handler(request, exc))
        log.error("Exception on %s %s", request.method, request.path, exc_info=exc)
        handler = self.error_handlers.get(500)
        if handler is not None:
            error = HTTPError(500, None)
            error.__cause__ = exc  # the handler can look at what went wrong
            return self.make_response(handler(request, error))
        tb = "".join(traceback.format_exception(exc)) if self.debug else None
        return self.error_response(request, 500, None, None, tb)

    def _find_exception_handler(self, exc: BaseException) -> Callable[[Request, Any], Any] | None:
        return _find_handler(self.error_handlers, exc)

    def error_response(self, request: Request, status: int, description: str | None = None,
                       headers: Any = None, traceback_text: str | None = None) -> Response:
        """The default error page: JSON for clients that prefer it, else the ``<status>.html`` template."""
        error = reason_phrase(status)
        if _prefers_json(request.headers.get("accept", "")):
            body: dict[str, Any] = {"status": status, "error": error, "description": description}
            if traceback_text is not None:  # debug mode only
                body["traceback"] = traceback_text
            response = json_response(body, status, self.json_dumps)
        else:
            response = Response(self.error_page(request, status, description, traceback_text), status,
                                content_type=_HTML_STR)
        if headers:
            response.headers.update(headers)
        return response

    # -- request bodies -------------------------------------------------------

    def admit(self, request: Request, length: int, spooler: Any) -> Any:
        """Decide on a request body when its head is complete, before it is read (the server calls this).

        Routes the request: a body to a path or method nobody handles is refused with the
        answer ``handle`` gives it (404, 405, a redirect), one over the route's limit
        (``max_body_size=``, else ``config["MAX_BODY_SIZE"]``, else the server's
        ``--max-body-size``) with this app's 413 page; both raise ``BodyRefused`` and the
        body is never read. Otherwise the sink it goes to (``microweb/uploads.py``).
        """
        return admit_body(self, request, length, spooler)

    # -- error pages ----------------------------------------------------------

    def error_page(self, request: Request, status: int, description: str | None = None,
                   traceback_text: str | None = None) -> bytes:
        """The HTML of the default error page: the ``<status>.html`` template, else ``error.html``.

        A template whose output can only depend on the status, the description and the
        request's path and method (see errorpages.py; the package's pages and most custom
        ones) is rendered once per (status, description) and Jinja environment, and filled
        in per request, while no context processor is registered and templates do not
        auto-reload (debug). A 404 flood then costs no render.
        """
        names = [f"{status}.html", "error.html"]
        templates = self.templates
        cacheable = traceback_text is None and not templates.auto_reload and not self._has_context_processors()
        if cacheable:
            cached = self._error_pages.get((status, description))
            if cached is not None and cached[0] is templates.env:
                shape = cached[1]
                if shape is not None:
                    return shape.fill(request.path, request.method)
                cacheable = False  # judged before: not a fixed-shape page
        error = reason_phrase(status)
        context = {"status": status, "error": error, "description": description, "request": request,
                   "path": request.path, "traceback": traceback_text}
        try:
            html = templates.render_first(names, self.request_context(request, context))
        except Exception:
            log.exception("could not render the error page for %s", status)
            html = f"<!doctype html><title>{status} {error}</title><h1>{status} {error}</h1>"
            cacheable = False
        # A path that is not UTF-8 (%ff) reaches the page as surrogates: never let it turn a 404 into a 500.
        page = html.encode("utf-8", "backslashreplace")
        if cacheable:
            if len(self._error_pages) >= _ERROR_PAGES_MAX:
                self._error_pages.clear()
            self._error_pages[(status, description)] = (templates.env, self._error_shape(request, names, status,
                                                                                        error, description, page))
        return page

    def _error_shape(self, request: Request, names: list[str], status: int, error: str, description: str | None,
                     page: bytes) -> ErrorPage | None:
        """The page rendered once with markers in its slots, if its template has a fixed shape
        and the shape filled in gives exactly the page just rendered."""
        env = self.templates.env
        try:
            template = env.select_template(names)
            if not fixed_shape(env, template):
                return None
            shape = ErrorPage(template.render(shape_context(status, error, description)))
        except Exception:
            return None
        return shape if shape.fill(request.path, request.method) == page else None

    def _has_context_processors(self) -> bool:
        if self.context_processors:
            return True
        return bool(self.blueprints) and any(bp.context_processors for bp in self.blueprints.values())

    # -- WSGI -----------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI entry point: ``gunicorn module:app`` serves this App unchanged (see wsgi.py)."""
        return call_wsgi(self, environ, start_response)

    # -- running --------------------------------------------------------------

    def run(self, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
        """Serve this app until SIGINT or SIGTERM.

        ``options`` are the fields of ``microweb.server.ServerOptions``, the same settings as
        the ``microweb run`` flags (limits, timeouts, ``max_connections``, ``threads``,
        ``workers``, ``forwarded_allow_ips``, ``certfile``/``keyfile``; README "Limits and
        hardening"). An unknown keyword is a ``TypeError``, a bad value a ``ValueError``.
        """
        from .server.options import ServerOptions
        from .server.start import serve

        settings = ServerOptions(host=host, port=port, **options)

        def on_listening(url: str, address: tuple[str, int]) -> None:
            print(banner(url, self, settings), flush=True)

        serve(self.handle, settings, request_class=self.request_class, on_listening=on_listening, admit=self.admit)

    def summary(self) -> str:
        """What the start-up banner says about this app: its routes and its static folder."""
        routes = [r for r in self.router.routes if not r.name.startswith("__microweb")]
        parts = [f"{len(routes)} route{'s' if len(routes) != 1 else ''}"]
        if self.blueprints:
            parts.append(f"{len(self.blueprints)} blueprint{'s' if len(self.blueprints) != 1 else ''}")
        if self.mounts:
            parts.append("mounted: " + " ".join(prefix for prefix, _, _ in self.mounts))
        if self.compressor is not None:
            parts.append("compression on")
        if self.static_folder is None:
            parts.append("no static folder")
        elif os.path.isdir(self.static_folder):
            parts.append(f"static folder {self.static_folder}")
        else:
            parts.append(f"static folder {self.static_folder} (missing)")
        return ", ".join(parts)

    def test_client(self, **kwargs: Any) -> Any:
        """An ``httpx.Client`` that runs requests through this app in memory (no socket).

        It needs httpx (``pip install 'microweb[testing]'``); without it this raises an
        ``ImportError`` that says so.
        """
        from .testing import test_client

        return test_client(self, **kwargs)


class _MountedResponse(Response):
    """A mounted app's finished answer, passed through the parent's dispatch unchanged."""

    __slots__ = ("output",)

    def __init__(self, output: Output) -> None:
        super().__init__(b"")
        self.output = output

    def encode(self, request: Any) -> Output:
        return self.output


def _find_handler(handlers: dict[Any, Callable[..., Any]], exc: BaseException) -> Callable[..., Any] | None:
    """The handler registered for the exception's class or its nearest base class."""
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            return handler
    return None


def _is_preflight(request: Request) -> bool:
    """A CORS preflight: ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``."""
    return (request.method == "OPTIONS" and "access-control-request-method" in request.headers
            and "origin" in request.headers)


def _redirect_location(path: str, query_string: str) -> str:
    """The ``Location`` of a trailing-slash redirect: the decoded path encoded again, and never
    starting with ``//`` (a browser would read ``//host/`` as another site)."""
    from urllib.parse import quote

    location = "/" + quote(path, safe="/:@!$&'()*+,;=-._~").lstrip("/")
    return location + "?" + query_string if query_string else location


def _prefers_json(accept: str) -> bool:
    if "json" not in accept:
        return False
    best_json = best_html = -1.0
    for media, q in parse_quality_list(accept):
        if media == "application/json" or media.endswith("+json"):
            best_json = max(best_json, q)
        elif media in ("text/html", "application/xhtml+xml", "*/*", "text/*"):
            best_html = max(best_html, q)
    return best_json > 0 and best_json >= best_html


def banner(url: str, target: Any, options: Any, *, debug: bool = False, reloading: bool = False,
           access_log: bool = False, wsgi_name: str | None = None) -> str:
    """The start-up lines: where to point a browser, and what is being served."""
    workers = f" with {options.workers} workers" if getattr(options, "workers", 0) else ""
    lines = [f"microweb serving on {url}{workers} (press Ctrl+C to quit)"]
    details = []
    if isinstance(target, App):
        details.append(target.summary())
    elif wsgi_name is not None:
        details.append(f"WSGI application {wsgi_name}")
    if debug or getattr(target, "debug", False):
        details.append("DEBUG mode (never in production)")
    if reloading:
        details.append("reloading on change")
    details.append("access log on" if access_log else "access log off")
    lines.append("  " + ", ".join(details))
    return "\n".join(lines)
