"""Path patterns, converters and the route table.

A rule such as ``/users/<int:id>/posts/<slug>`` is split into segments. Rules with
only literal segments live in a dict keyed by path (one lookup); the others are
compiled to one regex each and tried in a fixed order: at each segment a literal
beats a converter and a converter beats ``path``, so the longer literal prefix
wins whatever order the routes were registered in.
"""
from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import quote, urlencode

from .errors import HTTPError, MethodNotAllowed, NotFound, RequestRedirect

__all__ = ["Converter", "Route", "Router", "CONVERTERS"]


class Converter:
    """Turns one matched piece of a path into a value, and a value back into a piece."""

    regex = r"[^/]+"
    weight = 1

    def to_python(self, value: str) -> Any:
        return value

    def to_url(self, value: Any) -> str:
        return quote(str(value), safe="")


class StringConverter(Converter):
    pass


class IntConverter(Converter):
    regex = r"[0-9]+"

    def to_python(self, value: str) -> int:
        return int(value)


class FloatConverter(Converter):
    regex = r"-?[0-9]+(?:\.[0-9]+)?"

    def to_python(self, value: str) -> float:
        return float(value)


class PathConverter(Converter):
    regex = r".+"
    weight = 2

    def to_url(self, value: Any) -> str:
        return quote(str(value), safe="/")


class UUIDConverter(Converter):
    regex = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> Any:
        import uuid  # imported on first use: it costs start-up time and memory

        return uuid.UUID(value)


CONVERTERS: dict[str, type[Converter]] = {
    "string": StringConverter,
    "str": StringConverter,
    "int": IntConverter,
    "float": FloatConverter,
    "path": PathConverter,
    "uuid": UUIDConverter,
}

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})

_PARAM = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*):)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")


class Route:
    """One registered rule: its methods, its handler and how to match and build it."""

    __slots__ = ("rule", "methods", "handler", "name", "regex", "converters", "parts", "sort_key", "is_literal",
                 "first_segment", "_conversions", "csrf", "blueprint", "max_body_size")

    def __init__(self, rule: str, methods: set[str], handler: Callable[..., Any], name: str) -> None:
        if not rule.startswith("/"):
            raise ValueError(f"route {rule!r} must start with '/'")
        self.rule = rule
        self.methods = methods
        self.handler = handler
        self.name = name
        self.csrf = True  # False: exempt from CSRF_PROTECT (App.route(..., csrf=False))
        self.blueprint: str | None = None  # the full name of the blueprint it came from (set by App)
        self.max_body_size: int | None = None  # this route's body limit (None: the app's MAX_BODY_SIZE)
        self.converters: dict[str, Converter] = {}
        # parts: literal strings and (name, converter) pairs, in order, for url building.
        self.parts: list[str | tuple[str, Converter]] = []
        pattern = ["^"]
        weights: list[int] = []
        pos = 0
        for m in _PARAM.finditer(rule):
            literal = rule[pos:m.start()]
            if literal:
                self.parts.append(literal)
                pattern.append(re.escape(literal))
            conv_name = m.group("conv") or "string"
            name_ = m.group("name")
            conv_cls = CONVERTERS.get(conv_name)
            if conv_cls is None:
                raise ValueError(f"unknown converter {conv_name!r} in route {rule!r}")
            if name_ in self.converters:
                raise ValueError(f"parameter {name_!r} appears twice in route {rule!r}")
            conv = conv_cls()
            self.converters[name_] = conv
            self.parts.append((name_, conv))
            pattern.append(f"(?P<{name_}>{conv.regex})")
            pos = m.end()
        if rule[pos:]:
            self.parts.append(rule[pos:])
            pattern.append(re.escape(rule[pos:]))
        pattern.append("$")
        self.is_literal = not self.converters
        # (name, to_python) for every converter that changes the matched text.
        self._conversions = [(n, c.to_python) for n, c in self.converters.items()
                             if type(c).to_python is not Converter.to_python]
        first = rule[1:].split("/", 1)[0]
        self.first_segment = first if "<" not in first and "/" in rule[1:] else None
        self.regex = re.compile("".join(pattern))
        for segment in rule.strip("/").split("/"):
            found = _PARAM.search(segment)
            if found is None:
                weights.append(0)
            else:
                weights.append(CONVERTERS[found.group("conv") or "string"].weight)
        # Literal segments first; among equals, more segments first.
        self.sort_key = (weights, -len(weights))

    def match(self, path: str) -> dict[str, Any] | None:
        m = self.regex.match(path)
        if m is None:
            return None
        params: dict[str, Any] = m.groupdict()
        for name, to_python in self._conversions:
            try:
                params[name] = to_python(params[name])
            except ValueError:
                return None
        return params

    def build(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Build the path from ``params``; return it and the params it did not use."""
        out = []
        extra = dict(params)
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                name, conv = part
                if name not in extra:
                    raise KeyError(f"route {self.rule!r} needs a value for {name!r}")
                out.append(conv.to_url(extra.pop(name)))
        return "".join(out), extra

    def __repr__(self) -> str:
        return f"<Route {sorted(self.methods)} {self.rule} -> {self.name}>"


class Router:
    """The route table: ``match(method, path) -> (route, params)``."""

    def __init__(self) -> None:
        self.literal: dict[str, dict[str, Route]] = {}
        self.dynamic: list[Route] = []
        # Dynamic routes whose first segment is literal, by that segment; the rest after them.
        self._by_first: dict[str, list[Route]] = {}
        self._open_first: list[Route] = []
        self.by_name: dict[str, Route] = {}
        self.routes: list[Route] = []

    def add(self, rule: str, methods: list[str] | tuple[str, ...] | set[str] | None, handler: Callable[..., Any],
            name: str | None = None) -> Route:
        explicit = {m.upper() for m in (methods or ["GET"])}
        method_set = explicit | {"HEAD"} if "GET" in explicit else set(explicit)
        name = name or str(getattr(handler, "__name__", "handler"))
        existing = self.by_name.get(name)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"endpoint name {name!r} is already used by another function; pass name=...")
        route = Route(rule, method_set, handler, name)
        if not route.is_literal:
            for other in self.dynamic:
                if other.rule == rule and other.handler is not handler and other.methods & explicit:
                    method = sorted(other.methods & explicit)[0]
                    raise ValueError(f"{method} {rule} is already routed to {other.name!r}")
        self.routes.append(route)
        if existing is None:
            self.by_name[name] = route
        if route.is_literal:
            table = self.literal.setdefault(rule, {})
            for method in explicit:
                current = table.get(method)
                automatic_head = current is not None and method == "HEAD" and current.handler is not handler
                if current is not None and current.handler is not handler and not automatic_head:
                    raise ValueError(f"{method} {rule} is already routed to {current.name!r}")
                table[method] = route
            if "GET" in explicit:
                table.setdefault("HEAD", route)
        else:
            self.dynamic.append(route)
            self.dynamic.sort(key=lambda r: r.sort_key)
            self._by_first = {}
            self._open_first = []
            for r in self.dynamic:
                if r.first_segment is None:
                    self._open_first.append(r)
                else:
                    self._by_first.setdefault(r.first_segment, []).append(r)
        return route

    def match(self, method: str, path: str) -> tuple[Route, dict[str, Any]]:
        """Find the route for ``method`` and ``path``.

        Raises ``NotFound``, ``MethodNotAllowed`` (with the allowed methods) or
        ``RequestRedirect`` when only the slash-terminated form of the path has a route.
        """
        table = self.literal.get(path)
        if table is not None:
            route = table.get(method)
            if route is not None:
                return route, {}
        allowed: set[str] = set(table) if table else set()
        slash = path.find("/", 1)
        if slash > 0:
            candidates = self._by_first.get(path[1:slash])
            if candidates is not None:
                for route in candidates:
                    params = route.match(path)
                    if params is not None:
                        if method in route.methods:
                            return route, params
                        allowed |= route.methods
        for route in self._open_first:
            params = route.match(path)
            if params is not None:
                if method in route.methods:
                    return route, params
                allowed |= route.methods
        if ((method not in STANDARD_METHODS or method == "CONNECT")
                and not any(method in r.methods for r in self.routes)):
            # RFC 9110 15.6.2: a method the server does not implement at all is 501, not 404/405
            # (CONNECT too: a tunnel is served only by an app that declares a CONNECT route).
            raise HTTPError(501, f"Method {method} is not implemented")
        if allowed:
            if method == "OPTIONS":
                raise OptionsAllowed(sorted(allowed | {"OPTIONS"}))
            raise MethodNotAllowed(sorted(allowed | {"OPTIONS"}))
        if not path.endswith("/") and self._has_route(path + "/"):
            raise RequestRedirect(path + "/")
        raise NotFound()

    def routes_for(self, path: str) -> list[Route]:
        """Every route whose rule matches ``path``, whatever its methods (literal ones first)."""
        table = self.literal.get(path)
        found = list(dict.fromkeys(table.values())) if table else []
        found.extend(r for r in self.dynamic if r.match(path) is not None)
        return found

    def _has_route(self, path: str) -> bool:
        return path in self.literal or any(r.match(path) is not None for r in self.dynamic)

    def url_for(self, name: str, params: dict[str, Any]) -> str:
        route = self.by_name.get(name)
        if route is None:
            raise KeyError(f"no endpoint named {name!r}")
        path, extra = route.build(params)
        if extra:
            path += "?" + urlencode([(k, v) for k, v in extra.items() if v is not None], doseq=True)
        return path


class OptionsAllowed(MethodNotAllowed):
    """The automatic answer to OPTIONS: 204 with ``Allow``."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(allowed)
        self.status = 204
