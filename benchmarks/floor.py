#!/usr/bin/env python3
"""The ceiling for a pure-Python HTTP server here: a selectors loop that answers every request head
with a fixed 13-byte response and parses nothing. usage: floor.py PORT

It counts request heads (``\\r\\n\\r\\n``) in what one ``recv`` returns and answers them all with one
``send``. Everything microweb does beyond this (parsing, routing, a framework) is its budget.
"""
from __future__ import annotations

import selectors
import socket
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"


def serve(port: int) -> None:
    """Serve forever on 127.0.0.1:``port``."""
    selector = selectors.DefaultSelector()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    partial: dict[socket.socket, bytes] = {}
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data is None:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(conn, selectors.EVENT_READ, 1)
                partial[conn] = b""
                continue
            try:
                data = sock.recv(65536)
            except (BlockingIOError, ConnectionError):
                continue
            if not data:
                selector.unregister(sock)
                sock.close()
                del partial[sock]
                continue
            buf = partial[sock] + data
            heads = buf.count(b"\r\n\r\n")
            partial[sock] = buf[buf.rfind(b"\r\n\r\n") + 4:] if heads else buf
            if heads:
                sock.send(RESPONSE * heads)


if __name__ == "__main__":
    try:
        serve(int(sys.argv[1]))
    except KeyboardInterrupt:
        pass
