"""The server layer: the only code that touches sockets, selectors, ``ssl`` or signals.

It speaks the protocol of ``microweb.http`` and knows nothing of the framework:
what it serves is a ``handle(request) -> bytes | BodySource`` callable and the
request class the parser should build.

- ``reactor``: ``Server``, the selectors loop (accept, read, write, sendfile, backpressure, stop)
- ``options``: ``ServerOptions``, every setting with its default and help text
- ``start``: ``serve(handle, options)``, the one way a server is started
- ``websocket``: ``WebSocketHub``, the upgraded connections (made at the first upgrade)
- ``tls`` (imported only for HTTPS), ``listeners``, ``pool`` (``--threads``), ``push`` (parked push streams),
  ``workers`` (``--workers``), ``reload`` (``--reload``), ``timers``, ``failures``
"""
from __future__ import annotations

from .options import ServerOptions
from .reactor import Server
from .start import create_server, serve

__all__ = ["Server", "ServerOptions", "create_server", "serve"]
