"""``Blueprint``: a group of routes, hooks, error handlers and template helpers registered on an
app (or on another blueprint) as one piece, under a URL prefix and an endpoint-name prefix.

A blueprint only records: ``route``, ``before_request`` and the rest store what they are given,
and ``app.register_blueprint(bp, url_prefix=None)`` replays it onto the app (``App`` does the
work; this module imports nothing from it). Endpoints become ``"<name>.<function>"`` (nested:
``"parent.child.function"``); ``before_request``/``after_request``/``errorhandler``/
``context_processor`` apply to the blueprint's own routes only, ``template_filter``/
``template_global``/``template_test`` are app-wide (Jinja has no scoped filters), as in Flask.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, TypeVar

from .cors import CORSPolicy
from .shortcuts import MethodShortcuts
from .templating import TemplateHelpers

__all__ = ["Blueprint"]

F = TypeVar("F", bound=Callable[..., Any])


class Blueprint(MethodShortcuts, TemplateHelpers):
    """``Blueprint(name, url_prefix=None, template_folder=None, static_folder=None, static_url_path=None)``.

    ``static_folder`` is served at ``<url_prefix><static_url_path>/<path:filename>`` (by default
    ``/`` + the folder's name), endpoint ``"<name>.static"``; ``template_folder`` is searched
    after the app's own. Relative folders are resolved against the working directory when the
    blueprint is made.
    """

    def __init__(self, name: str, url_prefix: str | None = None, template_folder: str | os.PathLike[str] | None = None,
                 static_folder: str | os.PathLike[str] | None = None, static_url_path: str | None = None) -> None:
        if not name or "." in name:
            raise ValueError(f"blueprint name {name!r} must be non-empty and contain no '.'")
        if url_prefix is not None and url_prefix and not url_prefix.startswith("/"):
            raise ValueError(f"blueprint url_prefix {url_prefix!r} must start with '/'")
        self.name = name
        self.url_prefix = url_prefix
        self.template_folder = os.path.abspath(os.fspath(template_folder)) if template_folder is not None else None
        self.static_folder = os.path.abspath(os.fspath(static_folder)) if static_folder is not None else None
        if static_url_path is None and self.static_folder is not None:
            static_url_path = "/" + os.path.basename(self.static_folder.rstrip(os.sep))
        self.static_url_path = static_url_path.rstrip("/") if static_url_path is not None else None
        #: (rule, methods, handler, endpoint name without the blueprint's prefix, csrf, max_body_size)
        self.deferred_routes: list[tuple[str, list[str] | None, Callable[..., Any], str, bool, int | str | None]] = []
        self.before_request_funcs: list[Callable[..., Any]] = []
        self.after_request_funcs: list[Callable[..., Any]] = []
        self.error_handlers: dict[int | type[BaseException], Callable[..., Any]] = {}
        # context_processors (this blueprint's requests only), template_filters, template_globals
        # and template_tests (app-wide once registered): see TemplateHelpers.
        self.init_template_helpers()
        self.app_context_processors: list[Callable[..., Any]] = []
        self.cors_policy: CORSPolicy | None = None
        self.children: list[tuple[Blueprint, str | None]] = []
        self._seen: set[tuple[str, str]] = set()
        self.registered = False  # set by App.register_blueprint: later setup would be silently lost

    def _check_setup(self, what: str) -> None:
        if self.registered:
            raise RuntimeError(f"blueprint {self.name!r} is already registered on an app: call {what}() "
                               "before app.register_blueprint(), or it would never take effect")

    def __repr__(self) -> str:
        return f"<Blueprint {self.name!r}>"

    # -- routes -----------------------------------------------------------------

    def route(self, path: str, methods: Iterable[str] | None = None, name: str | None = None,
              csrf: bool = True, max_body_size: int | str | None = None) -> Callable[[F], F]:
        """Record the decorated function for ``path`` under this blueprint's prefix (``csrf=False``
        as for ``app.route``: exempt from ``CSRF_PROTECT``)."""

        if max_body_size is not None:
            from .uploads import parse_body_limit

            parse_body_limit(max_body_size)  # a bad size raises here, not when the function is decorated

        def decorator(func: F) -> F:
            self.add_route(path, func, methods, name, csrf, max_body_size)
            return func

        return decorator

    def add_route(self, path: str, handler: Callable[..., Any], methods: Iterable[str] | None = None,
                  name: str | None = None, csrf: bool = True, max_body_size: int | str | None = None) -> None:
        self._check_setup("route")
        if max_body_size is not None:
            from .uploads import parse_body_limit

            parse_body_limit(max_body_size)  # a bad size raises now, not at registration
        if path and not path.startswith("/"):
            raise ValueError(f"route {path!r} must start with '/'")
        endpoint = name or str(getattr(handler, "__name__", ""))
        if not endpoint or "." in endpoint:
            raise ValueError(f"endpoint name {endpoint!r} must be non-empty and contain no '.'; pass name=...")
        method_list = [m.upper() for m in methods] if methods is not None else None
        for method in method_list or ["GET"]:
            if (path, method) in self._seen:
                raise ValueError(f"{method} {path} is routed twice in blueprint {self.name!r}")
            self._seen.add((path, method))
        self.deferred_routes.append((path, method_list, handler, endpoint, csrf, max_body_size))

    def websocket(self, path: str, origins: Iterable[str] | None = None, subprotocols: Iterable[str] | None = None,
                  name: str | None = None) -> Callable[[F], F]:
        """``app.websocket`` under this blueprint's prefix: ``handler(request, ws, **path_params)``;
        without ``origins`` the app's ``websocket_origins`` apply."""
        from .websocket import WebSocketRoute

        def decorator(func: F) -> F:
            self.add_route(path, WebSocketRoute(None, func, origins, subprotocols), ["GET"],
                           name or getattr(func, "__name__", None), csrf=False)
            return func

        return decorator

    def register_blueprint(self, blueprint: Blueprint, url_prefix: str | None = None) -> None:
        """Nest ``blueprint`` in this one: its prefix and endpoint names go under this one's."""
        self._check_setup("register_blueprint")
        if blueprint is self:
            raise ValueError("a blueprint cannot be registered on itself")
        self.children.append((blueprint, url_prefix))

    # -- hooks, errors, CORS ----------------------------------------------------------

    def before_request(self, func: F) -> F:
        """``func(request)`` runs before this blueprint's handlers (after the app's own hooks)."""
        self._check_setup("before_request")
        self.before_request_funcs.append(func)
        return func

    def after_request(self, func: F) -> F:
        """``func(request, response)`` runs after this blueprint's handlers (before the app's)."""
        self._check_setup("after_request")
        self.after_request_funcs.append(func)
        return func

    def errorhandler(self, key: int | type[BaseException]) -> Callable[[F], F]:
        """Handle errors raised in this blueprint's routes (tried before the app's handlers)."""

        def decorator(func: F) -> F:
            self._check_setup("errorhandler")
            self.error_handlers[key] = func
            return func

        return decorator

    def cors(self, origins: str | Iterable[str] = "*", methods: Iterable[str] | None = None,
             headers: Iterable[str] | None = None, expose_headers: Iterable[str] | None = None,
             credentials: bool = False, max_age: int | None = 600) -> CORSPolicy:
        """CORS for this blueprint's routes (see ``microweb.cors``); wins over the app's policy."""
        self._check_setup("cors")
        self.cors_policy = CORSPolicy(origins, methods, headers, expose_headers, credentials, max_age)
        return self.cors_policy

    # -- templates ------------------------------------------------------------------

    def add_context_processor(self, func: Callable[..., Any]) -> None:
        """``@bp.context_processor``: like the app's, for renders during this blueprint's requests."""
        self._check_setup("context_processor")
        super().add_context_processor(func)

    def add_template_helper(self, kind: str, func: Any, name: str | None = None) -> str:
        """``@bp.template_filter/template_global/template_test``: the app's once registered
        (app-wide: Jinja has no scoped filters)."""
        self._check_setup(f"template_{kind}")
        return super().add_template_helper(kind, func, name)

    def app_context_processor(self, func: F) -> F:
        """``app.context_processor(func)`` once the blueprint is registered (every render)."""
        self._check_setup("app_context_processor")
        self.app_context_processors.append(func)
        return func

    app_template_filter = TemplateHelpers.template_filter
    app_template_global = TemplateHelpers.template_global
    app_template_test = TemplateHelpers.template_test
