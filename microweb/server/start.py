"""Starting a server: the one path that ``App.run``, ``microweb run``/``serve`` and the workers take.

``serve(handle, options)`` takes the listening socket it was handed (``--reload``
supervisor, systemd) or binds one, builds the TLS context once when
``options.certfile`` is set, then runs one ``Server`` loop in this process, or a
``Supervisor`` with ``options.workers`` forked processes that each build theirs
with ``create_server``. It returns the exit status.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from ..http.request import HTTPRequest
from .listeners import create_listener, inherited_listener
from .options import ServerOptions
from .reactor import Handler, Server
from .workers import Supervisor

__all__ = ["serve", "create_server"]

#: Called once the socket listens, before serving: ``on_listening(url, (host, port))``.
OnListening = Callable[[str, tuple[str, int]], None]


def create_server(handle: Handler, options: ServerOptions, *, sock: Any = None,
                  request_class: Callable[..., HTTPRequest] = HTTPRequest, ssl_context: Any = None,
                  admit: Callable[..., Any] | None = None) -> Server:
    """A ``Server`` for ``options`` (a ``TLSServer`` when there is a certificate); ``admit``
    decides on request bodies before they are read (``Server``)."""
    if ssl_context is None and options.certfile:
        ssl_context = _ssl_context(options)
    if ssl_context is not None:
        from .tls import TLSServer

        return TLSServer(handle, options=options, sock=sock, ssl_context=ssl_context, request_class=request_class,
                         admit=admit)
    return Server(handle, options=options, sock=sock, request_class=request_class, admit=admit)


def serve(handle: Handler, options: ServerOptions, *, request_class: Callable[..., HTTPRequest] = HTTPRequest,
          sock: Any = None, on_listening: OnListening | None = None, admit: Callable[..., Any] | None = None) -> int:
    """Serve ``handle`` as ``options`` say until SIGINT/SIGTERM; the exit status.

    Binding errors (``OSError``: port in use, permission) are raised before anything is served.
    """
    if sock is None:
        sock = inherited_listener()
    ssl_context = _ssl_context(options) if options.certfile else None
    if not options.workers:
        server = create_server(handle, options, sock=sock, request_class=request_class, ssl_context=ssl_context,
                               admit=admit)
        if on_listening is not None:
            on_listening(server.url, server.address)
        server.serve_forever()
        return 0
    listener = sock if sock is not None else create_listener(options.host, options.port, options.backlog)
    try:
        listener.setblocking(False)
        host, port = listener.getsockname()[:2]
        if on_listening is not None:
            shown = f"[{host}]" if ":" in host else host
            on_listening(f"{'https' if ssl_context else 'http'}://{shown}:{port}", (host, port))
        make_server = partial(create_server, handle, options, request_class=request_class, ssl_context=ssl_context,
                              admit=admit)
        return Supervisor(make_server, listener, options.workers, options.graceful_timeout).run()
    finally:
        listener.close()


def _ssl_context(options: ServerOptions) -> Any:
    from .tls import make_ssl_context  # plain HTTP never imports ssl

    assert options.certfile
    return make_ssl_context(options.certfile, options.keyfile)
