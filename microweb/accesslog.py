"""The access log: one Combined Log Format line per request on the logger ``microweb.access``.

Off unless asked for (``--access-log -|FILE``, or ``--debug``): when it is off the
server calls the application's handler directly and pays nothing. When it is on,
``with_access_log(handle)`` wraps the handler, so the cost stays with those who
want the log. A line is::

    127.0.0.1 - - [27/Nov/2026:06:30:00 +0000] "GET /a?b=1 HTTP/1.1" 200 1234 "http://ref/" "curl/8.5" 0.000231

that is the Combined Log Format plus the time the handler took, in seconds. The
size is that of the body produced (``-`` for an empty or streamed body); the time
is measured until the handler returned, not until the last byte left.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from .http.bodies import BodySource, FileBody
from .http.request import HTTPRequest

__all__ = ["access_log", "with_access_log", "configure_access_log", "format_line"]

access_log = logging.getLogger("microweb.access")

Handler = Callable[[HTTPRequest], "bytes | BodySource"]

_stamp_second = -1
_stamp = ""


def _timestamp(now: float) -> str:
    """``[27/Nov/2026:06:30:00 +0000]``, rebuilt at most once a second."""
    global _stamp_second, _stamp
    second = int(now)
    if second != _stamp_second:
        _stamp_second = second
        _stamp = time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(second))
    return _stamp


def _quote(value: str) -> str:
    if '"' in value or "\\" in value or not value.isprintable():
        value = value.replace("\\", "\\\\").replace('"', '\\"')
        value = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in value)
    return value


def format_line(request: HTTPRequest, output: bytes | BodySource, elapsed: float, now: float) -> str:
    """One Combined Log Format line (plus the handler time) for ``request`` answered by ``output``."""
    if type(output) is bytes:
        head_end = output.find(b"\r\n\r\n") + 4
        status = output[9:12].decode("ascii", "replace")
        size = len(output) - head_end
        size_text = str(size) if size else "-"
    else:
        head = output.head  # type: ignore[union-attr]
        status = head[9:12].decode("ascii", "replace")
        size_text = str(output.remaining) if type(output) is FileBody else "-"
    headers = request.headers
    referer = _quote(headers.get("referer", "-"))
    agent = _quote(headers.get("user-agent", "-"))
    line = _quote(f"{request.method} {request.target} {request.http_version}")
    return (f'{request.remote_addr or "-"} - - {_timestamp(now)} "{line}" {status} {size_text} '
            f'"{referer}" "{agent}" {elapsed:.6f}')


def with_access_log(handle: Handler) -> Handler:
    """``handle`` wrapped so that each request it answers is logged on ``microweb.access``."""
    perf = time.perf_counter
    clock = time.time
    info = access_log.info

    def logged(request: HTTPRequest) -> bytes | BodySource:
        start = perf()
        output = handle(request)
        info("%s", format_line(request, output, perf() - start, clock()))
        return output

    logged.__wrapped__ = handle  # type: ignore[attr-defined]
    return logged


def configure_access_log(target: str) -> logging.Handler:
    """Send ``microweb.access`` to stdout (``-``) or append it to a file (reopened if rotated)."""
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        from logging.handlers import WatchedFileHandler

        handler = WatchedFileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    return handler
