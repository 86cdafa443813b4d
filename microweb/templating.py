"""The Jinja2 environment of an app (jinja2 is imported on first use, not at start-up)."""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

PACKAGE_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
AUTOESCAPE_EXTENSIONS = ("html", "htm", "xml", "svg")


class Templates:
    """One Jinja2 ``Environment`` per app: the app's folder first, then the package's defaults."""

    def __init__(self, folder: str | None, auto_reload: bool = False, globals: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.auto_reload = auto_reload
        self.globals = dict(globals or {})
        self.extra_folders: list[str] = []  # blueprints' template folders, searched after the app's
        self.filters: dict[str, Any] = {}
        self.tests: dict[str, Any] = {}
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
        """Add a ``"filter"``, ``"global"`` or ``"test"`` (to the environment too, if it exists)."""
        {"filter": self.filters, "global": self.globals, "test": self.tests}[kind][name] = value
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


def call_context_processor(func: Any, request: Any) -> Any:
    """``func(request)``, or ``func()`` for a processor written without parameters (as in Flask)."""
    import inspect

    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return func(request)
    takes = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)
    return func(request) if takes else func()
