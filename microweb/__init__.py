"""microweb: a fast, asyncio-free web micro-framework with its own HTTP/1.1 server.

Three layers: ``microweb.http`` (the sans-IO protocol), ``microweb.server`` (the
reactor: the only code that touches sockets), and the framework, the modules at
this level. The public names are re-exported here.
"""
from __future__ import annotations

from typing import Any

from .app import App
from .blueprints import Blueprint
from .config import Config
from .datastructures import MultiDict, State
from .errors import HTTPError, MethodNotAllowed, NotFound, abort
from .http.datastructures import Headers
from .http.parser import ProtocolError
from .multipart import FormLimits, UploadedFile
from .requests import Request
from .responses import FileResponse, Response, redirect
from .websocket import WebSocket, WebSocketClosed

__all__ = [
    "App",
    "Blueprint",
    "Config",
    "CookieSessionInterface",
    "FileResponse",
    "FormLimits",
    "HTTPError",
    "Headers",
    "MethodNotAllowed",
    "MultiDict",
    "NotFound",
    "ProtocolError",
    "Request",
    "Response",
    "Session",
    "SessionInterface",
    "State",
    "UploadedFile",
    "WebSocket",
    "WebSocketClosed",
    "abort",
    "redirect",
]
__version__ = "0.1.0"

_LAZY = {"Session", "SessionInterface", "CookieSessionInterface"}


def __getattr__(name: str) -> Any:
    """The session classes, imported on first use (hmac and its OpenSSL binding are not needed to start)."""
    if name in _LAZY:
        from . import sessions

        return getattr(sessions, name)
    raise AttributeError(f"module 'microweb' has no attribute {name!r}")
