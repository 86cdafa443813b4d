"""``get``/``post``/``put``/``patch``/``delete``: the method shortcuts App and Blueprint share.

Each is ``self.route(path, [METHOD], ...)``; the class that mixes this in provides ``route``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["MethodShortcuts"]


class MethodShortcuts:
    """The one-method forms of ``route``."""

    route: Callable[..., Callable[[F], F]]

    def get(self, path: str, name: str | None = None) -> Callable[[F], F]:
        """``route(path, methods=["GET"], name=name)``."""
        return self.route(path, ["GET"], name)

    def post(self, path: str, name: str | None = None, csrf: bool = True,
             max_body_size: int | str | None = None) -> Callable[[F], F]:
        """``route(path, methods=["POST"], name=name, csrf=csrf, max_body_size=max_body_size)``."""
        return self.route(path, ["POST"], name, csrf, max_body_size)

    def put(self, path: str, name: str | None = None, csrf: bool = True,
            max_body_size: int | str | None = None) -> Callable[[F], F]:
        """``route(path, methods=["PUT"], ...)``, as ``post``."""
        return self.route(path, ["PUT"], name, csrf, max_body_size)

    def patch(self, path: str, name: str | None = None, csrf: bool = True,
              max_body_size: int | str | None = None) -> Callable[[F], F]:
        """``route(path, methods=["PATCH"], ...)``, as ``post``."""
        return self.route(path, ["PATCH"], name, csrf, max_body_size)

    def delete(self, path: str, name: str | None = None, csrf: bool = True,
               max_body_size: int | str | None = None) -> Callable[[F], F]:
        """``route(path, methods=["DELETE"], ...)``, as ``post``."""
        return self.route(path, ["DELETE"], name, csrf, max_body_size)
