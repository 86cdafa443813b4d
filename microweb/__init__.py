"""microweb: a fast, asyncio-free web micro-framework with its own HTTP/1.1 server.

Three layers: ``microweb.http`` (the sans-IO protocol), ``microweb.server`` (the
reactor: the only code that touches sockets), and the framework, the modules at
this level. The public names are re-exported here.
"""
from __future__ import annotations

from .app import App
from .blueprints import Blueprint
from .datastructures import MultiDict
from .errors import HTTPError, MethodNotAllowed, NotFound, abort
from .http.datastructures import Headers
from .http.parser import ProtocolError
from .multipart import FormLimits, UploadedFile
from .requests import Request
from .responses import FileResponse, Response, redirect

__all__ = [
    "App",
    "Blueprint",
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
