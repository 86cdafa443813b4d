"""The Jinja2 environment of an app (jinja2 is imported on first use, not at start-up), and the
decorators that register template helpers (``TemplateHelpers``, shared by ``App`` and anything
else that carries helpers for an app, such as a blueprint)."""
from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    import jinja2

__all__ = ["Templates", "TemplateHelpers", "PACKAGE_TEMPLATES", "call_context_processor"]

F = TypeVar("F", bound=Callable[..., Any])

PACKAGE_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
AUTOESCAPE_EXTENSIONS = ("html", "htm", "xml", "svg")


class Templates:
    """One Jinja2 ``Environment`` per app: the app's folder first, then the package's defaults."""

    def __init__(self, folder: str | None, auto_reload: bool = False, globals: dict[str, Any] | None = None,
                 filters: dict[str, Any] | None = None, tests: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.auto_reload = auto_reload
        self.globals = dict(globals or {})
        self.filters = dict(filters or {})
        self.tests = dict(tests or {})
        self.extra_folders: list[str] = []  # blueprints' template folders, searched after the app's
        self._env: jinja2.Environment | None = None
        self._lock = threading.Lock()  # handlers may run in threads: still one Environment

    @property
    def env(self) -> jinja2.Environment:
        if self._env is not None:
            return self._env
        with self._lock:
            if self._env is not None:
                return self._env
            import jinja2

            loaders: list[jinja2.BaseLoader] = []
            if self.folder:
                loaders.append(jinja2.FileSystemLoader(self.folder))
            loaders.extend(jinja2.FileSystemLoader(folder) for folder in self.extra_folders)
            loaders.append(jinja2.FileSystemLoader(PACKAGE_TEMPLATES))
            env = jinja2.Environment(
                loader=jinja2.ChoiceLoader(loaders),
                autoescape=jinja2.select_autoescape(AUTOESCAPE_EXTENSIONS, default_for_string=True),
                auto_reload=self.auto_reload,
            )
            env.globals.update(self.globals)
            env.filters.update(self.filters)
            env.tests.update(self.tests)
            self._env = env
            return env

    def add_folder(self, folder: str) -> None:
        """Search ``folder`` after the ones already known (a blueprint's templates)."""
        if folder not in self.extra_folders and folder != self.folder:
            self.extra_folders.append(folder)
            with self._lock:
                self._env = None  # rebuilt with the new loader on next use (registration time)

    def add(self, kind: str, name: str, value: Any) -> None:
        """Add a ``"filter"``, ``"global"`` or ``"test"`` (also to the environment if it exists)."""
        store = {"filter": self.filters, "global": self.globals, "test": self.tests}[kind]
        store[name] = value
        if self._env is not None:
            {"filter": self._env.filters, "global": self._env.globals, "test": self._env.tests}[kind][name] = value

    def set_auto_reload(self, value: bool) -> None:
        """Check template files for changes on every render (debug mode) or not."""
        self.auto_reload = value
        if self._env is not None:
            self._env.auto_reload = value

    def render(self, name: str | list[Any], context: dict[str, Any]) -> str:
        """Render ``name`` (or the first template found in a list of names) with ``context``."""
        return self.env.get_or_select_template(name).render(context)

    def render_first(self, names: list[str], context: dict[str, Any]) -> str:
        return self.env.select_template(names).render(context)


class TemplateHelpers:
    """``context_processor``, ``template_filter``, ``template_global`` and ``template_test``.

    Each decorator calls ``add_context_processor`` or ``add_template_helper(kind, func, name)``;
    this class records them in ``context_processors``, ``template_filters``,
    ``template_globals`` and ``template_tests``. ``App`` also hands them to its Jinja
    environment; a class that only collects helpers for an app later (a blueprint) can
    inherit this as it is and pass the four collections on when it is registered.
    """

    context_processors: list[Callable[..., Any]]
    template_filters: dict[str, Callable[..., Any]]
    template_globals: dict[str, Any]
    template_tests: dict[str, Callable[..., Any]]

    def init_template_helpers(self) -> None:
        self.context_processors = []
        self.template_filters = {}
        self.template_globals = {}
        self.template_tests = {}

    def context_processor(self, func: F) -> F:
        """Register ``func(request) -> dict`` (or ``func() -> dict``): merged into the context of
        every render that has the request, error pages included. Values passed to the render
        itself win."""
        self.add_context_processor(func)
        return func

    def add_context_processor(self, func: Callable[..., Any]) -> None:
        self.context_processors.append(func)

    def template_filter(self, name: str | Callable[..., Any] | None = None) -> Any:
        """``@app.template_filter()`` / ``@app.template_filter("name")``: a Jinja filter
        (``{{ value|name }}``); the function's name unless ``name`` is given."""
        return self._helper_decorator("filter", name)

    def template_global(self, name: str | Callable[..., Any] | None = None) -> Any:
        """A function (or value) every template can call by name."""
        return self._helper_decorator("global", name)

    def template_test(self, name: str | Callable[..., Any] | None = None) -> Any:
        """A Jinja test: ``{% if value is name %}``."""
        return self._helper_decorator("test", name)

    def add_template_filter(self, func: Callable[..., Any], name: str | None = None) -> None:
        self.add_template_helper("filter", func, name)

    def add_template_global(self, func: Any, name: str | None = None) -> None:
        self.add_template_helper("global", func, name)

    def add_template_test(self, func: Callable[..., Any], name: str | None = None) -> None:
        self.add_template_helper("test", func, name)

    def add_template_helper(self, kind: str, func: Any, name: str | None = None) -> str:
        """Record ``func`` as a ``"filter"``, ``"global"`` or ``"test"``; returns the name used."""
        key = name or getattr(func, "__name__", None)
        if not key:
            raise ValueError(f"give the template {kind} a name")
        store = {"filter": self.template_filters, "global": self.template_globals, "test": self.template_tests}[kind]
        store[key] = func
        return key

    def _helper_decorator(self, kind: str, name: str | Callable[..., Any] | None) -> Any:
        if callable(name):  # used without parentheses: @app.template_filter
            self.add_template_helper(kind, name)
            return name

        def decorator(func: F) -> F:
            self.add_template_helper(kind, func, name)
            return func

        return decorator


@functools.lru_cache(maxsize=1024)
def _takes_request(func: Callable[..., Any]) -> bool:
    import inspect  # once per processor (cached); not at start-up

    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)


def call_context_processor(func: Callable[..., Any], request: Any) -> Any:
    """``func(request)``, or ``func()`` for a processor written without parameters (as in Flask)."""
    try:
        takes = _takes_request(func)
    except TypeError:  # unhashable callable
        takes = True
    return func(request) if takes else func()
