"""``app.config``: a dict with Flask's keys and loaders, that tells its app when a key changes.

The app reads a few keys on the hot path (``CSRF_PROTECT``, the JSON options); rather than
look them up on every request, it keeps what it needs in attributes and refreshes them
when the config says a key changed (``Config.watch``). Every way of changing the dict goes
through ``_changed``, so ``config["X"] = 1``, ``update``, ``setdefault``, ``pop``, ``del``
and the loaders are all seen.
"""
from __future__ import annotations

import datetime
import importlib
import json
import os
from typing import Any, Callable, Iterable, Mapping

__all__ = ["Config", "DEFAULT_CONFIG", "default_config"]

#: Every key microweb reads, and its default (docs/sessions.md has the table).
DEFAULT_CONFIG: dict[str, Any] = {
    "SECRET_KEY": None,
    "SECRET_KEY_FALLBACKS": [],
    "SESSION_COOKIE_NAME": "session",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": "/",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": None,  # None: Secure when the request is HTTPS
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": datetime.timedelta(days=31),
    "SESSION_REFRESH_EACH_REQUEST": True,
    "MAX_COOKIE_SIZE": 4093,
    "MAX_BODY_SIZE": None,  # the request-body limit ("2G", bytes); None: the server's --max-body-size
    "SPOOL_THRESHOLD": None,  # bodies over it go to a temporary file; None: the server's --spool-threshold
    "CSRF_PROTECT": False,
    "CSRF_FIELD_NAME": "csrf_token",
    "CSRF_HEADER_NAME": "X-CSRF-Token",
    "JSON_SORT_KEYS": False,
    "JSON_ENSURE_ASCII": False,
}


def default_config() -> dict[str, Any]:
    """A fresh copy of ``DEFAULT_CONFIG`` (its lists are not shared between apps)."""
    return {k: list(v) if isinstance(v, list) else v for k, v in DEFAULT_CONFIG.items()}


def _import_string(name: str) -> Any:
    """``"pkg.module"``, ``"pkg.module:attr"`` or ``"pkg.module.attr"``: the object it names."""
    if ":" in name:
        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    try:
        return importlib.import_module(name)
    except ImportError:
        module, _, attr = name.rpartition(".")
        if not module:
            raise
        return getattr(importlib.import_module(module), attr)


class Config(dict):  # type: ignore[type-arg]
    """``app.config``: a ``dict`` of settings, with Flask's loaders.

    ``Config(defaults=None, root_path=None)``: ``root_path`` is where relative file names
    of ``from_file`` are looked up (the working directory when None).
    """

    def __init__(self, defaults: Mapping[str, Any] | None = None, root_path: str | None = None) -> None:
        super().__init__(defaults or {})
        self.root_path = root_path
        self._watchers: list[Callable[[str], None]] = []

    # -- change notification --------------------------------------------------

    def watch(self, func: Callable[[str], None]) -> None:
        """Call ``func(key)`` after ``key`` is set or removed."""
        self._watchers.append(func)

    def _changed(self, keys: Iterable[str]) -> None:
        for key in keys:
            for func in self._watchers:
                func(key)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed((key,))

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed((key,))

    def update(self, *args: Any, **kwargs: Any) -> None:
        changes = dict(*args, **kwargs)
        super().update(changes)
        self._changed(changes)

    def __ior__(self, other: Any) -> Config:  # type: ignore[override,misc]
        self.update(other)
        return self

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return default

    def pop(self, key: str, *default: Any) -> Any:
        present = key in self
        value = super().pop(key, *default)
        if present:
            self._changed((key,))
        return value

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        self._changed((key,))
        return key, value

    def clear(self) -> None:
        keys = list(self)
        super().clear()
        self._changed(keys)

    # -- loaders (Flask's) -------------------------------------------------------

    def from_mapping(self, mapping: Mapping[str, Any] | None = None, **kwargs: Any) -> bool:
        """Take the upper-case keys of ``mapping`` and ``kwargs`` (others are ignored, as in Flask)."""
        items = dict(mapping or {})
        items.update(kwargs)
        self.update({k: v for k, v in items.items() if k.isupper()})
        return True

    def from_object(self, obj: object | str) -> None:
        """Take the upper-case attributes of ``obj`` (a module, class or object, or its import path)."""
        if isinstance(obj, str):
            obj = _import_string(obj)
        self.update({k: getattr(obj, k) for k in dir(obj) if k.isupper()})

    def from_file(self, filename: str | os.PathLike[str], load: Callable[[Any], Mapping[str, Any]],
                  silent: bool = False, text: bool = True) -> bool:
        """Load a file with ``load`` (``json.load``, ``tomllib.load`` with ``text=False``) and take its
        upper-case keys. ``silent=True``: a missing file returns False instead of raising."""
        path = os.fspath(filename)
        if self.root_path is not None:
            path = os.path.join(self.root_path, path)
        try:
            with open(path, "r" if text else "rb") as f:
                obj = load(f)
        except OSError as exc:
            if silent and isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
                return False
            exc.strerror = f"Unable to load configuration file ({exc.strerror})"
            raise
        return self.from_mapping(obj)

    def from_prefixed_env(self, prefix: str = "MICROWEB", *, loads: Callable[[str], Any] = json.loads) -> bool:
        """Take the environment variables ``PREFIX_KEY``: ``MICROWEB_SECRET_KEY=...`` sets
        ``SECRET_KEY``. Values are parsed with ``loads`` (JSON) when they parse, else kept as
        strings; ``PREFIX_A__B`` sets the key ``B`` inside the dict ``A``."""
        start = f"{prefix}_"
        changes: dict[str, Any] = {}
        for name in sorted(os.environ):
            if not name.startswith(start) or name == start:
                continue
            raw = os.environ[name]
            try:
                value = loads(raw)
            except Exception:
                value = raw
            key = name[len(start):]
            if "__" not in key:
                changes[key] = value
                continue
            *parents, leaf = key.split("__")
            if not isinstance(changes.get(parents[0]), dict):
                existing = self.get(parents[0])
                changes[parents[0]] = dict(existing) if isinstance(existing, dict) else {}
            current = changes[parents[0]]
            for part in parents[1:]:
                if not isinstance(current.get(part), dict):
                    current[part] = {}
                current = current[part]
            current[leaf] = value
        self.update(changes)
        return True

    def __repr__(self) -> str:
        return f"<Config {dict.__repr__(self)}>"
