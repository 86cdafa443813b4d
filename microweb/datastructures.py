"""``MultiDict`` (the query string, form fields and uploaded files of a request) and ``State``
(``request.state``)."""
from __future__ import annotations

from typing import Any, Iterable

from .errors import BadRequestKeyError

__all__ = ["MultiDict", "State"]


class MultiDict(dict):  # type: ignore[type-arg]
    """A dict of first values that also remembers every value: ``getlist(key)``."""

    def __init__(self, pairs: Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__()
        self._lists: dict[str, list[Any]] = {}
        for key, value in pairs:
            self.add(key, value)

    def __missing__(self, key: str) -> Any:
        # ``request.form["x"]`` with no x is the client's mistake: 400, as Flask users expect.
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


class State:
    """An attribute bag: ``request.state.user = user`` in a hook, ``request.state.user`` later.

    Reading an attribute that was never set raises ``AttributeError`` (in a template it is
    undefined, so ``{% if request.state.user %}`` just works); ``getattr(state, name, None)``
    reads one that may be missing.
    """

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __contains__(self, name: str) -> bool:
        return name in self.__dict__

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"State({inner})"
