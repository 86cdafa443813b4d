"""Listening sockets: bound here, inherited from a ``--reload`` supervisor, or passed by systemd.

Also the descriptor budget: the soft ``RLIMIT_NOFILE`` is raised to the hard limit,
and the default connection cap keeps an eighth of it for files being sent.
"""
from __future__ import annotations

import os
import socket

__all__ = ["create_listener", "listener_from_fd", "inherited_listener", "raise_fd_limit",
           "default_max_connections", "LISTEN_FD_ENV"]

# Set by the --reload supervisor for its child: the listening socket's file descriptor.
LISTEN_FD_ENV = "MICROWEB_LISTEN_FD"

FD_HEADROOM = 64  # descriptors kept free for files being sent, logs, templates


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (where allowed); return the soft limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def default_max_connections() -> int:
    """The connection cap: the descriptor limit (raised to the hard limit) less headroom.

    Every connection holds one descriptor and a file being sent one more, so the
    headroom is an eighth of the limit (at least ``FD_HEADROOM``).
    """
    limit = raise_fd_limit()
    return max(1, limit - max(FD_HEADROOM, limit // 8))


def create_listener(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A bound, listening, non-blocking TCP socket."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def listener_from_fd(fd: int) -> socket.socket:
    """The listening socket inherited as file descriptor ``fd`` (from the --reload supervisor)."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock




def inherited_listener() -> socket.socket | None:
    """The listening socket this process was handed, if any: by the ``--reload`` supervisor
    (``MICROWEB_LISTEN_FD``) or by systemd socket activation (``LISTEN_FDS``, fd 3). The
    variables are removed so that child processes do not take the socket for theirs."""
    fd = os.environ.pop(LISTEN_FD_ENV, None)
    if not fd and os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS", "0") != "0":
        fd = "3"  # sd_listen_fds(3): the first passed socket is fd 3
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    return listener_from_fd(int(fd)) if fd else None
