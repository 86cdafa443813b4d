"""Deprecated: the old home of the server, now ``microweb.server`` (kept for one release).

``Server`` here builds the framework's ``Request`` by default, as it did, so
``Server(app.handle, port=0)`` keeps working.
"""
from __future__ import annotations

from typing import Any

from .requests import Request
from .server.listeners import create_listener, default_max_connections, listener_from_fd, raise_fd_limit
from .server.reactor import Connection
from .server.reactor import Server as _Server
from .server.start import create_server

__all__ = ["Server", "Connection", "create_listener", "listener_from_fd", "default_max_connections",
           "raise_fd_limit"]


class Server(_Server):
    """``microweb.server.Server`` building ``microweb.Request``s unless told otherwise."""

    def __init__(self, handle: Any, host: str | None = None, port: int | None = None, *,
                 request_class: Any = Request, **changes: Any) -> None:
        super().__init__(handle, host, port, request_class=request_class, **changes)

    @classmethod
    def create(cls, handle: Any, host: str | None = None, port: int | None = None, *,
               ssl_context: Any = None, **changes: Any) -> _Server:
        """A ``Server``, or a ``TLSServer`` when ``ssl_context`` or ``certfile`` is given."""
        if ssl_context is None and not changes.get("certfile"):
            return cls(handle, host, port, **changes)
        from .server.options import ServerOptions

        if host is not None:
            changes["host"] = host
        if port is not None:
            changes["port"] = port
        sock = changes.pop("sock", None)
        request_class = changes.pop("request_class", Request)
        return create_server(handle, ServerOptions(**changes), sock=sock, request_class=request_class,
                             ssl_context=ssl_context)
