"""The protocol layer: sans-IO HTTP/1.1. Bytes in, requests out; responses in, bytes out.

Nothing here touches a socket, a selector or a thread of the server, and nothing
here imports the server (``microweb.server``) or the framework (the rest of
``microweb``): ``tests/test_layers.py`` checks it.

- ``parser``: ``RequestParser.receive(data) -> [request, ...]``, ``ProtocolError(status)``, ``Limits``
- ``request``: ``HTTPRequest``, the request the parser builds (the framework subclasses it)
- ``encode``: status line, Date, Connection, heads, chunks, the server's own error answers
- ``bodies``: ``BodySource`` and its kinds (streams, file regions, pushed streams)
- ``datastructures``: ``Headers``, ``MutableHeaders``
- ``values``: header-value helpers (dates, quality lists, cookies, parameters, ranges, ETags, Host)
- ``forwarded``: ``X-Forwarded-*`` / ``Forwarded`` from trusted proxies
"""
from __future__ import annotations

from .bodies import BodySource, FileBody, PushStream, StreamBody
from .datastructures import Headers, MutableHeaders
from .parser import Limits, ParserState, ProtocolError, RequestParser
from .request import HTTPRequest

__all__ = [
    "BodySource", "FileBody", "Headers", "HTTPRequest", "Limits", "MutableHeaders", "ParserState",
    "ProtocolError", "PushStream", "RequestParser", "StreamBody",
]
