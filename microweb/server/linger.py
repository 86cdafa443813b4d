"""Lingering close: after answering a request whose body was refused (or was bad), read and drop
what the client still sends, for a bounded time and byte count, before closing.

Closing a socket with unread input makes the kernel send a reset, and a reset can
make the client lose the response it has not read yet (the 413 or 404 that says
why its upload was refused). So, as nginx's ``lingering_close`` does, the server
shuts down its sending side (the client sees the end of the response), then keeps
reading until the client closes, stays silent for ``LINGER_IDLE`` seconds, sends
``LINGER_BYTES`` more bytes, or ``LINGER_TIME`` seconds pass, whichever is first.

The lingering sockets sit in their own selector, registered on the reactor's as
a wake-up source (as the websocket hub's is): plain HTTP never checks for them.
"""
from __future__ import annotations

import selectors
import socket
__all__ = ["Lingerer", "LINGER_TIME", "LINGER_IDLE", "LINGER_BYTES"]

LINGER_TIME = 5.0  # seconds a refused upload may go on being drained
LINGER_IDLE = 2.0  # seconds of silence after which it is closed
LINGER_BYTES = 64 << 20  # bytes drained at most
_READ = 65536


class _Lingering:
    __slots__ = ("sock", "until", "idle_until", "left")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.until = now + LINGER_TIME
        self.idle_until = now + LINGER_IDLE
        self.left = LINGER_BYTES


class Lingerer:
    """The sockets being drained before they close."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.lingering: dict[int, _Lingering] = {}
        self.now = 0.0

    def adopt(self, sock: socket.socket, now: float) -> None:
        """Take over ``sock`` (already unregistered from the reactor): shut its sending side, then drain it."""
        self.now = now
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        entry = _Lingering(sock, now)
        try:
            self.selector.register(sock, selectors.EVENT_READ, entry)
        except (OSError, ValueError):
            sock.close()
            return
        self.lingering[sock.fileno()] = entry

    def poll(self, now: float) -> None:
        """Drain what the lingering sockets have sent (called when their selector is readable)."""
        self.now = now
        for key, _ in self.selector.select(0):
            entry: _Lingering = key.data
            try:
                data = entry.sock.recv(_READ)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            entry.left -= len(data)
            entry.idle_until = now + LINGER_IDLE
            if not data or entry.left <= 0 or now >= entry.until:
                self._close(entry)

    def tick(self, now: float) -> None:
        """Close what lingered too long or went quiet (once a second)."""
        self.now = now
        for entry in list(self.lingering.values()):
            if now >= entry.until or now >= entry.idle_until:
                self._close(entry)

    def _close(self, entry: _Lingering) -> None:
        self.lingering.pop(entry.sock.fileno(), None)
        try:
            self.selector.unregister(entry.sock)
        except (KeyError, ValueError):
            pass
        try:
            entry.sock.close()
        except OSError:
            pass

    def close_all(self) -> None:
        for entry in list(self.lingering.values()):
            self._close(entry)
        self.selector.close()

    def __len__(self) -> int:
        return len(self.lingering)

    def __repr__(self) -> str:
        return f"<Lingerer {len(self.lingering)} sockets>"
