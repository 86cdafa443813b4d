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
            loaders.append(jinja2.FileSystemLoader(PACKAGE_TEMPLATES))
            env = jinja2.Environment(
                loader=jinja2.ChoiceLoader(loaders),
                autoescape=jinja2.select_autoescape(AUTOESCAPE_EXTENSIONS, default_for_string=True),
                auto_reload=self.auto_reload,
            )
            env.globals.update(self.globals)
            self._env = env
            return env

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
