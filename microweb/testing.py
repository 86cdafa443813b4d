"""The test client: an ``httpx.Client`` whose transport runs requests through the app in memory.

``app.test_client()`` returns an ``httpx.Client``. Its ``AppTransport`` serializes
each httpx request to HTTP/1.1 bytes, feeds them to microweb's own
``RequestParser`` (so framing, limits and header validation are the server's),
calls ``app.handle`` exactly as the reactor does, and parses the bytes it returns
back into an ``httpx.Response``. Streamed bodies are pulled from the
``StreamBody`` lazily (``client.stream(...)`` reads them piece by piece), file
bodies with ``os.pread``. No socket is opened.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterator, Protocol

try:
    import httpx
except ImportError as exc:  # plain ``pip install microweb`` does not bring the test client's dependency
    raise ImportError("microweb's test client needs httpx: pip install 'microweb[testing]'",
                      name=exc.name) from exc

from .http.bodies import BodySource, FileBody, StreamBody
from .http.encode import LAST_CHUNK, encode_chunk, error_response, internal_error_response
from .http.parser import Limits, RequestParser
from .requests import Request


class Handles(Protocol):
    """What the transport needs of an app (an ``App``): ``handle(request)`` and its request class."""

    @property
    def request_class(self) -> Callable[..., Any]: ...

    def handle(self, request: Any) -> bytes | BodySource: ...

__all__ = ["AppTransport", "test_client"]

log = logging.getLogger("microweb")


class AppTransport(httpx.BaseTransport):
    """An httpx transport that answers requests with ``app.handle``, without a socket."""

    def __init__(self, app: Handles, limits: Limits | None = None, remote_addr: str = "127.0.0.1") -> None:
        self.app = app
        self.limits = limits or Limits()
        self.remote_addr = remote_addr

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raw = serialize_request(request)
        parser = RequestParser(self.limits, self.remote_addr, request.url.scheme,
                               getattr(self.app, "request_class", Request))
        requests = parser.receive(raw)
        if parser.error is not None and not requests:
            output: bytes | BodySource = error_response(parser.error.status, parser.error.message)
        elif len(requests) != 1:
            raise httpx.RemoteProtocolError(f"the request bytes parsed into {len(requests)} requests",
                                            request=request)
        else:
            try:
                output = self.app.handle(requests[0])
            except Exception:  # the server does the same: log, answer 500
                log.exception("unhandled error in the application")
                output = internal_error_response(requests[0].method == "HEAD")
        return build_response(output, request)


def serialize_request(request: httpx.Request) -> bytes:
    """The bytes a client would send for ``request`` (chunked when httpx streams the body)."""
    body = request.read()
    target = request.url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} HTTP/1.1"]
    chunked = False
    for name, value in request.headers.multi_items():
        lname = name.lower()
        if lname == "transfer-encoding":
            chunked = "chunked" in value.lower()
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if chunked:
        return head + (encode_chunk(body) if body else b"") + LAST_CHUNK
    return head + body


def build_response(output: bytes | BodySource, request: httpx.Request) -> httpx.Response:
    """Parse what ``app.handle`` produced into an ``httpx.Response``."""
    data = output if isinstance(output, (bytes, bytearray)) else output.head
    head, sep, rest = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        raise httpx.RemoteProtocolError("the app produced a response without a complete head", request=request)
    status_line, *field_lines = head.split(b"\r\n")
    version, status, reason = status_line.split(b" ", 2)
    headers = []
    for line in field_lines:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    extensions = {"http_version": version, "reason_phrase": reason}
    stream: httpx.SyncByteStream
    if isinstance(output, StreamBody):
        stream = _StreamBodyStream(output)
    elif isinstance(output, FileBody):
        stream = _FileBodyStream(output)
    else:
        if isinstance(output, BodySource):
            output.close()
        stream = httpx.ByteStream(rest)
    return httpx.Response(int(status), headers=headers, stream=stream, request=request, extensions=extensions)


class _StreamBodyStream(httpx.SyncByteStream):
    """The pieces of a ``StreamBody``, with chunk framing removed, pulled as httpx reads."""

    def __init__(self, source: StreamBody) -> None:
        self.source = source

    def __iter__(self) -> Iterator[bytes]:
        source = self.source
        while True:
            try:
                piece = source.next_piece()
            except Exception as exc:
                # On a socket the server closes the connection here: the client sees a cut body.
                log.exception("a streamed response raised after its head was sent; closing the connection")
                source.close()
                raise httpx.RemoteProtocolError(f"peer closed connection without sending complete "
                                                f"message body ({type(exc).__name__})") from exc
            if piece is None:
                return
            yield _unchunk(piece) if source.chunked else piece

    def close(self) -> None:
        self.source.close()


def _unchunk(piece: bytes) -> bytes:
    """The data of one ``encode_chunk`` frame."""
    size_end = piece.index(b"\r\n")
    size = int(piece[:size_end], 16)
    return piece[size_end + 2:size_end + 2 + size]


class _FileBodyStream(httpx.SyncByteStream):
    """A ``FileBody`` read with ``os.pread`` in 64 KiB steps."""

    def __init__(self, source: FileBody) -> None:
        self.source = source

    def __iter__(self) -> Iterator[bytes]:
        source = self.source
        while source.remaining > 0:
            data = os.pread(source.fd, min(source.remaining, 65536), source.offset)
            if not data:
                raise httpx.RemoteProtocolError("file ended early while sending")
            source.offset += len(data)
            source.remaining -= len(data)
            yield data
        source.close()

    def close(self) -> None:
        self.source.close()


def test_client(app: Handles, base_url: str = "http://testserver", **kwargs: Any) -> httpx.Client:
    """``httpx.Client(transport=AppTransport(app), base_url=base_url, **kwargs)``."""
    transport = kwargs.pop("transport", None) or AppTransport(app)
    return httpx.Client(transport=transport, base_url=base_url, **kwargs)


test_client.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
