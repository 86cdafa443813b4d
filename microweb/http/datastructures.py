"""Header fields as data: ``Headers`` (what a request carries) and ``MutableHeaders`` (what a response sets)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["Headers", "MutableHeaders", "CompactHeaders"]


class Headers:
    """A case-insensitive multi-dict of header fields, in the order they came.

    ``get`` and ``[]`` give the values of a repeated field joined with ``", "``
    (``"; "`` for ``Cookie``); ``getlist`` gives them one by one. ``by_name`` maps each
    lowercased name to its values (read it, never change it): a set operation on its keys
    is the cheapest way for a hot path to ask whether any of several fields is present.
    """

    __slots__ = ("_items", "by_name")

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
        self.by_name = index

    def get(self, name: str, default: Any = None) -> Any:
        values = self.by_name.get(name.lower())
        if values is None:
            return default
        if len(values) == 1:
            return values[0]
        return ("; " if name.lower() == "cookie" else ", ").join(values)

    def getlist(self, name: str) -> list[str]:
        return list(self.by_name.get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.by_name

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
        return f"{type(self).__name__}({self._items!r})"

    def compact(self) -> CompactHeaders:
        """The same fields in about a third of the memory, for a request kept for long (a websocket's)."""
        return CompactHeaders(self._items)


class CompactHeaders(Headers):
    """Read-only ``Headers`` without the lookup index: a tuple of the fields, searched in order.

    For requests that live as long as a connection (10,000 websockets hold 10,000 of them),
    where a few lookups do not justify a dict and a list per field.
    """

    __slots__ = ()

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = tuple(items)  # type: ignore[assignment]

    @property
    def by_name(self) -> dict[str, list[str]]:  # type: ignore[override]
        """Built on each use (this class keeps no index)."""
        index: dict[str, list[str]] = {}
        for name, value in self._items:
            index.setdefault(name.lower(), []).append(value)
        return index

    def getlist(self, name: str) -> list[str]:
        key = name.lower()
        return [value for field, value in self._items if field.lower() == key]

    def get(self, name: str, default: Any = None) -> Any:
        values = self.getlist(name)
        if not values:
            return default
        if len(values) == 1:
            return values[0]
        return ("; " if name.lower() == "cookie" else ", ").join(values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.getlist(name))

    def compact(self) -> CompactHeaders:
        return self


class MutableHeaders(Headers):
    """Response headers: case-insensitive, ordered, and settable."""

    __slots__ = ()

    def __setitem__(self, name: str, value: str) -> None:
        self.pop(name)
        self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((name, str(value)))
        self.by_name.setdefault(name.lower(), []).append(str(value))

    def pop(self, name: str, default: Any = None) -> Any:
        key = name.lower()
        values = self.by_name.pop(key, None)
        if values is None:
            return default
        self._items = [(k, v) for k, v in self._items if k.lower() != key]
        return values[0]

    def __delitem__(self, name: str) -> None:
        if self.pop(name, _MISSING) is _MISSING:
            raise KeyError(name)

    def setdefault(self, name: str, value: str) -> str:
        current = self.get(name)
        if current is None:
            self.add(name, value)
            return value
        return current

    def update(self, other: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        pairs = other.items() if isinstance(other, Mapping) else other
        for name, value in pairs:
            self[name] = value


_MISSING: Any = object()
