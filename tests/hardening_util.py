"""Helpers shared by the hardening tests: a buffered response reader and fd counting."""
from __future__ import annotations

import os
import socket


class ResponseReader:
    """Reads Content-Length-framed responses one by one off a socket, keeping the surplus
    (so pipelined responses that arrive in one segment are not lost)."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        self.buf = b""
        sock.settimeout(timeout)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buf += data
        return bool(data)

    def next(self) -> tuple[int, bytes, bytes] | None:
        """(status, head, body), or None if the connection closed before a full response."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            self.buf = head + b"\r\n\r\n" + rest
            if not self._fill():
                return None
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest[length:]
        return int(head.split(b" ", 2)[1]), head, rest[:length]

    def rest_until_closed(self) -> bytes:
        """Everything else the server sends before it closes (raises on timeout)."""
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data


def open_fds() -> int:
    """The number of descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))
