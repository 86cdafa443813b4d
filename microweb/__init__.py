"""microweb: a fast, asyncio-free web micro-framework with its own HTTP/1.1 server."""
from __future__ import annotations

from .app import App
from .errors import HTTPError, MethodNotAllowed, NotFound, abort
from .http11 import ProtocolError
from .multipart import FormLimits, UploadedFile
from .requests import Headers, MultiDict, Request
from .responses import FileResponse, Response, redirect

__all__ = [
    "App",
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
    "UploadedFile",
    "abort",
    "redirect",
]
__version__ = "0.1.0"
