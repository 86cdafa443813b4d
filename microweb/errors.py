"""Exceptions that carry the HTTP status they mean."""
from __future__ import annotations

from typing import Any, Mapping, NoReturn


class HTTPError(Exception):
    """Raise to answer with ``status``; ``description`` is shown on the error page."""

    def __init__(
        self,
        status: int,
        description: str | None = None,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(status, description)
        self.status = status
        self.description = description
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status}: {self.description}" if self.description else str(self.status)


class BadRequestKeyError(HTTPError, KeyError):
    """A key missing from ``request.args``, ``form`` or ``files``: a ``KeyError`` that answers 400."""

    def __init__(self, key: str) -> None:
        super().__init__(400, f"The request has no field {key!r}")
        self.key = key


class NotFound(HTTPError):
    def __init__(self, description: str | None = None) -> None:
        super().__init__(404, description)


class MethodNotAllowed(HTTPError):
    def __init__(self, allowed: list[str], description: str | None = None) -> None:
        super().__init__(405, description, {"Allow": ", ".join(allowed)})
        self.allowed = allowed


class RequestRedirect(HTTPError):
    """Raised by the router when the path is one slash away from a route."""

    def __init__(self, location: str, status: int = 308) -> None:
        super().__init__(status, None, {"Location": location})
        self.location = location


def abort(status: int, description: str | None = None, headers: Any = None) -> NoReturn:
    """Stop the handler and answer with ``status`` (raises ``HTTPError``)."""
    raise HTTPError(status, description, headers)
