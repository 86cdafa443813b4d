"""HTTPS in the reactor: ``TLSServer``, and ``make_ssl_context``, the one place a TLS context is built.

TLS connections take their own code path so the plain one stays exactly as it is.
The listener is wrapped once; every accepted socket is an ``_TLSSocket`` whose
``recv``/``send`` turn OpenSSL's want-read/want-write into ``BlockingIOError``
and a TLS-level EOF into ``b""``, which is the language the reactor already
speaks. The handshake is driven by readiness events like everything else
(``do_handshake_on_connect=False``), under the head timeout, so a slow or broken
handshake holds only its own connection. Files go out with read/send: sendfile
would write plaintext past the TLS layer.
"""
from __future__ import annotations

import errno
import logging
import socket
import ssl
from typing import Any, Callable

from ..http.bodies import FileBody
from ..http.request import HTTPRequest
from .listeners import create_listener
from .options import ServerOptions
from .reactor import EVENT_READ, EVENT_WRITE, Connection, Handler, Server

__all__ = ["TLSServer", "make_ssl_context", "check_certificate"]

log = logging.getLogger("microweb")


class _TLSSocket(ssl.SSLSocket):
    """An ``SSLSocket`` that reports "would block" and EOF the way a plain socket does."""

    handshake_done = False

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError(errno.EAGAIN, "TLS record incomplete") from None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError(errno.EAGAIN, "TLS send would block") from None


def check_certificate(certfile: str, keyfile: str | None = None) -> None:
    """Raise ``ValueError`` with a one-line reason unless the files load as a certificate and its key."""
    try:
        make_ssl_context(certfile, keyfile)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ValueError(f"cannot load --certfile/--keyfile as a PEM certificate and its private key: {exc}") from None


def make_ssl_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server context for ``certfile``/``keyfile``: TLS 1.2+, ALPN ``http/1.1``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["http/1.1"])
    context.options |= ssl.OP_NO_COMPRESSION
    context.sslsocket_class = _TLSSocket
    return context


class _TLSListener:
    """The wrapped listening socket; remembers what it accepted so the server can time the handshakes."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.fresh: list[socket.socket] = []

    def accept(self) -> tuple[socket.socket, Any]:
        conn, addr = self.sock.accept()
        self.fresh.append(conn)
        return conn, addr

    def fileno(self) -> int:
        return self.sock.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class TLSServer(Server):
    """A ``Server`` whose connections speak TLS (HTTPS), terminated in the reactor."""

    scheme = "https"

    def __init__(self, handle: Handler, host: str | None = None, port: int | None = None, *,
                 ssl_context: ssl.SSLContext | None = None, options: ServerOptions | None = None,
                 sock: Any = None, request_class: Callable[..., HTTPRequest] = HTTPRequest,
                 admit: Callable[..., Any] | None = None, **changes: Any) -> None:
        if host is not None:
            changes["host"] = host
        if port is not None:
            changes["port"] = port
        options = ServerOptions(**changes) if options is None else options.replace(**changes)
        if ssl_context is None:
            if not options.certfile:
                raise ValueError("TLSServer needs ssl_context or options.certfile")
            ssl_context = make_ssl_context(options.certfile, options.keyfile)
        if ssl_context.sslsocket_class is not _TLSSocket:
            ssl_context.sslsocket_class = _TLSSocket
        if sock is None:
            sock = create_listener(options.host, options.port, options.backlog)
        sock.setblocking(False)
        wrapped = ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        wrapped.setblocking(False)
        self.ssl_context = ssl_context
        self._tls_listener = _TLSListener(wrapped)
        super().__init__(handle, options=options, sock=self._tls_listener, request_class=request_class, admit=admit)

    @property
    def url(self) -> str:
        return "https" + super().url[4:]

    def _accept(self) -> None:
        Server._accept(self)
        fresh = self._tls_listener.fresh
        if fresh:
            deadline = self.now + self.head_timeout
            for sock in fresh:
                conn = self.connections.get(sock.fileno())
                if conn is not None:
                    self.timers.set_deadline(conn, deadline)  # the handshake must finish like a head
            fresh.clear()

    def _handshake(self, conn: Connection) -> bool:
        """Advance the handshake; True once it is done."""
        sock = conn.sock
        try:
            sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self.set_events(conn, EVENT_READ)
            return False
        except ssl.SSLWantWriteError:
            self.set_events(conn, EVENT_READ | EVENT_WRITE)
            return False
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            self.close_connection(conn)
            return False
        sock.handshake_done = True  # type: ignore[attr-defined]
        self.set_events(conn, EVENT_READ)
        conn.deadline = self.now + self.keepalive_timeout
        return True

    def _on_readable(self, conn: Connection) -> None:
        sock = conn.sock
        if not sock.handshake_done and not self._handshake(conn):  # type: ignore[attr-defined]
            return
        Server._on_readable(self, conn)
        # OpenSSL may hold decrypted bytes that the kernel will not signal again.
        for _ in range(64):
            if conn.closed or not conn.reading or not sock.pending():  # type: ignore[attr-defined]
                break
            Server._on_readable(self, conn)

    def flush(self, conn: Connection) -> None:
        if not conn.sock.handshake_done:  # type: ignore[attr-defined]
            if self._handshake(conn):
                Server._on_readable(self, conn)  # data may have come with the last handshake flight
            return
        Server.flush(self, conn)

    def _send_file(self, conn: Connection, body: FileBody) -> bool | None:
        return self._send_file_plain(conn, body)

    def close_connection(self, conn: Connection) -> None:
        if not conn.closed and conn.sock.handshake_done:  # type: ignore[attr-defined]
            try:
                conn.sock._sslobj.shutdown()  # type: ignore[attr-defined]  # one try at close_notify
            except (ssl.SSLError, OSError, AttributeError, ValueError):
                pass
        Server.close_connection(self, conn)
