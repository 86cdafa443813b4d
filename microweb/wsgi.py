"""WSGI both ways.

``call_app(app, environ, start_response)`` is what ``App.__call__`` runs, so an
``App`` is a WSGI application that gunicorn, uWSGI, waitress or a PaaS can serve
unchanged. It builds a ``Request`` from the environ, admits its body as the native
server does (``app.admit``: 404/405/413 answered before ``wsgi.input`` is read, the
route's limit applied), reads the body in ``read(size)`` steps into the same spool
(memory under the threshold, a temporary file above), then runs ``app.handle`` exactly
as the native server does (so routing, hooks, static fallback, error pages and
streaming behave the same), and turns the result back into WSGI terms: the
response head is re-read into a status and headers (hop-by-hop and the server's
own ``Date``/``Server`` dropped, the WSGI server adds its own), a file body goes
out through ``wsgi.file_wrapper`` and a stream as an iterable.

``WSGIAdapter(wsgi_app)`` goes the other way: a handler for the reactor
(``handle(request) -> bytes | BodySource``) that serves any WSGI application
(Flask, Django, ...). A body given as a list is sent whole with a
``Content-Length``; any other iterable is streamed (chunked in HTTP/1.1 unless
the app set ``Content-Length``); a ``wsgi.file_wrapper`` around a real file goes
out with ``os.sendfile``.
"""
from __future__ import annotations

import atexit
import io
import os
import sys
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import quote

from .http.bodies import BodySource, FileBody, StreamBody
from .http.datastructures import Headers
from .http.encode import encode_head, error_response, is_reason_phrase, reason_phrase
from .http.parser import DEFAULT_LIMITS, ProtocolError
from .requests import Request
from .server.spool import DEFAULT_SPOOL_THRESHOLD, Spooler

__all__ = ["call_app", "request_from_environ", "WSGIAdapter", "FileWrapper", "MAX_BODY_SIZE"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: The default body limit of an App under another WSGI server when its ``config["MAX_BODY_SIZE"]``
#: is None (the native server's default ``--max-body-size``); a larger body is answered 413.
MAX_BODY_SIZE = DEFAULT_LIMITS.max_body_size
_READ_STEP = 65536

# Headers a WSGI application must not set (PEP 3333) or that the WSGI server writes itself.
_DROPPED = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"date", b"server"})
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


# -- App as a WSGI application ---------------------------------------------------

def request_from_environ(environ: dict[str, Any]) -> Request:
    """The ``Request`` a WSGI environ describes, its body not read yet (``call_app`` admits and spools it)."""
    path_info = environ.get("PATH_INFO", "") or "/"
    target = quote(_path_bytes(path_info), safe=_PATH_SAFE)
    query = environ.get("QUERY_STRING", "")
    if query:
        target += "?" + query
    items: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key[:5] == "HTTP_":
            items.append((key[5:].replace("_", "-").title(), value))
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        items.append(("Content-Type", content_type))
    length = environ.get("CONTENT_LENGTH")
    if length:
        items.append(("Content-Length", length))
    version = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    request = Request(
        environ.get("REQUEST_METHOD", "GET").upper(),
        target,
        "HTTP/1.0" if version == "HTTP/1.0" else "HTTP/1.1",
        Headers(items),
        True,
        environ.get("REMOTE_ADDR", "") or "",
        environ.get("wsgi.url_scheme", "http"),
    )
    request.environ = environ
    if "HTTP_HOST" not in environ:
        port = str(environ.get("SERVER_PORT", ""))
        default = "443" if request.scheme == "https" else "80"
        name = environ.get("SERVER_NAME", "")
        request.host = name if not port or port == default else f"{name}:{port}"
    return request


def _path_bytes(path_info: str) -> bytes:
    """PEP 3333 passes the raw path as latin-1; some servers (httpx's WSGITransport) pass it decoded."""
    if path_info.isascii():
        return path_info.encode("ascii")
    try:
        raw = path_info.encode("latin-1")
        raw.decode("utf-8")
        return raw
    except UnicodeError:
        return path_info.encode("utf-8", "surrogateescape")


def _body_length(environ: dict[str, Any], request: Request) -> int:
    """The body's announced length: 0 for none, -1 for one read to the end the server marks."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            return max(0, int(length))
        except ValueError:
            return 0
    if environ.get("wsgi.input_terminated") and request.method not in ("GET", "HEAD", "OPTIONS"):
        return -1  # no length (a chunked request body): read to the end the server marks
    return 0


def _app_spooler(app: Any) -> Spooler:
    """The spool of an App hosted by another WSGI server (its directory removed at exit)."""
    spooler = getattr(app, "_wsgi_spooler", None)
    if spooler is None:
        spooler = app._wsgi_spooler = Spooler(DEFAULT_SPOOL_THRESHOLD, MAX_BODY_SIZE)
        atexit.register(spooler.cleanup)
    return spooler


def _receive_body(app: Any, request: Request, environ: dict[str, Any], length: int) -> None:
    """Admit the body as the native server does (``app.admit``), then read ``wsgi.input`` into its
    sink in ``read(size)`` steps: never more than the limit, never all at once."""
    stream = environ.get("wsgi.input")
    sink = app.admit(request, length, _app_spooler(app))  # a refusal raises before anything is read
    try:
        limit = sink.limit
        remaining = length if length >= 0 else limit + 1
        while remaining > 0:
            piece = stream.read(min(remaining, _READ_STEP)) if stream is not None else b""
            if not piece:
                break
            remaining -= len(piece)
            if length < 0 and remaining <= 0:
                raise sink.refuse(413, f"Request body too large (limit {limit} bytes)")
            sink.write(piece)
        if length >= 0 and remaining > 0:
            raise sink.refuse(400, "Request body shorter than its Content-Length")
    except BaseException:
        sink.discard()
        raise
    sink.finish(request)


def call_app(app: Any, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Run ``app.handle`` for one WSGI request (what ``App.__call__`` does)."""
    request = request_from_environ(environ)
    length = _body_length(environ, request)
    if length:
        try:
            _receive_body(app, request, environ, length)
        except ProtocolError as exc:
            # Refused (404/405/413 rendered by the app) or malformed: answered before the handler runs.
            output = exc.response()
            end = output.find(b"\r\n\r\n") + 4
            status, headers = parse_head(output[:end])
            start_response(status, headers)
            return [output[end:]]
    output = app.handle(request)
    if type(output) is bytes:
        end = output.find(b"\r\n\r\n") + 4
        status, headers = parse_head(output[:end])
        start_response(status, headers)
        body = output[end:]
        return [body] if body else []
    assert isinstance(output, BodySource)
    status, headers = parse_head(output.head)
    if type(output) is FileBody:
        start_response(status, headers)
        handle = os.fdopen(output.fd, "rb")
        output.fd = -1  # the file object owns the descriptor now
        handle.seek(output.offset)
        if output.offset == 0 and output.remaining == os.fstat(handle.fileno()).st_size:
            wrapper = environ.get("wsgi.file_wrapper")
            if wrapper is not None:
                return wrapper(handle, 65536)  # type: ignore[no-any-return]
        return _limited_file(handle, output.remaining)
    assert isinstance(output, StreamBody)
    start_response(status, headers)
    return _iter_stream(output)


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """A serialized response head as a WSGI status line and header list."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    status = lines[0].split(b" ", 1)[1].decode("latin-1")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() not in _DROPPED:
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    return status, headers


def _iter_stream(source: StreamBody) -> Iterator[bytes]:
    """The raw pieces of a stream (the WSGI server does its own chunk framing)."""
    source.chunked = False
    try:
        while True:
            piece = source.next_piece()
            if piece is None:
                return
            yield piece
    finally:
        source.close()


def _limited_file(handle: io.BufferedReader, remaining: int) -> Iterator[bytes]:
    try:
        while remaining > 0:
            data = handle.read(min(remaining, 65536))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        handle.close()


# -- Any WSGI application served by the reactor ------------------------------------

class FileWrapper:
    """``wsgi.file_wrapper``: the adapter sends a wrapped real file with ``os.sendfile``."""

    def __init__(self, filelike: Any, block_size: int = 65536) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            data = read(self.block_size)
            if not data:
                return
            yield data

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def _header_environ(headers: Headers) -> dict[str, str]:
    """The environ keys (``HTTP_*``, ``CONTENT_TYPE``, ``CONTENT_LENGTH``) for a request's headers."""
    environ: dict[str, str] = {}
    for name, value in headers.items():
        if "_" in name:
            continue  # "X_Foo" would collide with "X-Foo" in the environ (a known spoofing trick)
        key = name.upper().replace("-", "_")
        if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
            key = "HTTP_" + key
        if key in environ:
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    return environ


class _StartResponse:
    """The ``start_response`` callable of one request; keeps what the app passed."""

    __slots__ = ("status", "reason", "headers", "written", "head_sent")

    def __init__(self) -> None:
        self.status: int | None = None
        self.reason: str | None = None  # the app's own reason phrase, when not the standard one
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []
        self.head_sent = False

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError("start_response called twice without exc_info")
        code, _, reason = status.partition(" ")
        if len(code) != 3 or not code.isdigit() or not code.isascii() or not is_reason_phrase(reason):
            raise ValueError(f"invalid WSGI status {status!r}")
        self.status = int(code)
        # Passed through as gunicorn does ("299 Everything Fine", "302 FOUND"); checked above for
        # CR, LF, NUL and other controls, so it cannot split the response head.
        self.reason = reason if reason and reason != reason_phrase(self.status) else None
        self.headers = headers
        return self.written.append


class WSGIAdapter:
    """A reactor handler that serves the WSGI application ``app``."""

    def __init__(self, app: WSGIApp, host: str = "127.0.0.1", port: int = 8000, multithread: bool = False) -> None:
        self.app = app
        self.base_environ: dict[str, Any] = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
            "SERVER_SOFTWARE": "microweb",
        }

        # The parser hands every request with the same header block the same Headers object,
        # so the HTTP_* keys of the last one are kept and reused.
        self._header_cache: tuple[Headers | None, dict[str, str]] = (None, {})

    def set_address(self, host: str, port: int) -> None:
        self.base_environ["SERVER_NAME"] = host
        self.base_environ["SERVER_PORT"] = str(port)

    def environ_for(self, request: Request) -> dict[str, Any]:
        environ = self.base_environ.copy()
        path = request.path
        environ["REQUEST_METHOD"] = request.method
        environ["PATH_INFO"] = path if path.isascii() else path.encode("utf-8", "surrogateescape").decode("latin-1")
        environ["QUERY_STRING"] = request.query_string
        environ["RAW_URI"] = environ["REQUEST_URI"] = request.target
        environ["SERVER_PROTOCOL"] = request.http_version
        environ["REMOTE_ADDR"] = request.remote_addr
        environ["wsgi.url_scheme"] = request.scheme
        body = request._body  # None: spooled to a file, which is the input then
        environ["wsgi.input"] = io.BytesIO(body) if body is not None else request.stream
        headers = request.headers
        cached = self._header_cache  # one tuple, so threads never see a half-updated pair
        if cached[0] is headers:
            environ.update(cached[1])
        else:
            translated = _header_environ(headers)
            self._header_cache = (headers, translated)
            environ.update(translated)
        host = request.host
        if host and environ.get("HTTP_HOST") != host:
            # An absolute-form target's authority (RFC 9112 3.2.2), or a trusted proxy's X-Forwarded-Host.
            environ["HTTP_HOST"] = host
        if (body is None or body) and "CONTENT_LENGTH" not in environ:
            environ["CONTENT_LENGTH"] = str(request.content_length)  # a chunked request body, read whole
        return environ

    def __call__(self, request: Request) -> bytes | BodySource:
        start = _StartResponse()
        environ = self.environ_for(request)
        request.environ = environ
        result = self.app(environ, start)
        try:
            if type(result) is list or type(result) is tuple:
                body = b"".join(result)
            elif isinstance(result, FileWrapper):
                source = self._file_source(request, start, result)
                if source is not None:
                    return source
                body = None
            else:
                body = None
            if body is not None:
                if start.written:
                    body = b"".join(start.written) + body
                return self._whole(request, start, body)
            return self._stream(request, start, result)
        except BaseException:
            _close(result)
            raise

    def _split_headers(self, start: _StartResponse) -> tuple[list[tuple[str, str]], int | None, bool]:
        """The app's headers without framing, the Content-Length it declared, and whether it asked to close."""
        headers = []
        length: int | None = None
        close = False
        for name, value in start.headers:
            key = name.lower()
            if key == "content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise ValueError(f"invalid Content-Length {value!r} from the WSGI application") from None
            elif key == "connection":
                close = "close" in value.lower()
            elif key not in ("transfer-encoding", "keep-alive"):
                headers.append((name, value))
        return headers, length, close

    def _whole(self, request: Request, start: _StartResponse, body: bytes) -> bytes:
        if start.status is None:
            raise RuntimeError("the WSGI application did not call start_response")
        headers, length, close = self._split_headers(start)
        if close:
            request.keep_alive = False
        http11_ = request.http_version == "HTTP/1.1"
        if request.method == "HEAD" or start.status in (204, 304) or start.status < 200:
            # No body goes out, so a Content-Length that does not match the (empty) body the
            # app returned cannot desynchronize anything: the connection stays open.
            return encode_head(start.status, headers, len(body) if length is None else length, request.keep_alive,
                               http11_, start.reason)
        if length is not None and length != len(body):
            # A short or long body would desynchronize the connection: send what we have, then close.
            request.keep_alive = False
        return encode_head(start.status, headers, len(body), request.keep_alive, http11_, start.reason) + body

    def _stream(self, request: Request, start: _StartResponse, result: Iterable[bytes]) -> bytes | BodySource:
        iterator = iter(result)
        first = b""
        # PEP 3333: start_response may wait until the first non-empty piece.
        for piece in iterator:
            if piece:
                first = bytes(piece)
                break
        else:
            _close(result)
            return self._whole(request, start, b"".join(start.written))
        if start.status is None:
            raise RuntimeError("the WSGI application did not call start_response")
        if not start.written and len(first) == _declared_length(start.headers):
            # The first piece is the whole body the app declared (Flask/Werkzeug return one
            # piece in a ClosingIterator): nothing can follow, so send it as one response now.
            _close(result)
            return self._whole(request, start, first)
        start.head_sent = True
        headers, length, close = self._split_headers(start)
        http11_ = request.http_version == "HTTP/1.1"
        if close or (length is None and not http11_):
            request.keep_alive = False
        if request.method == "HEAD":
            _close(result)
            return encode_head(start.status, headers, length, request.keep_alive, http11_, start.reason)
        head = encode_head(start.status, headers, length, request.keep_alive, http11_, start.reason)
        pieces = _chain(start.written, first, iterator, result)
        return StreamBody(head, request.keep_alive, pieces, chunked=length is None and http11_)

    def _file_source(self, request: Request, start: _StartResponse, wrapper: FileWrapper) -> bytes | BodySource | None:
        """A ``FileBody`` for a wrapped real file (sent with sendfile), or None to stream it."""
        filelike = wrapper.filelike
        try:
            fd = filelike.fileno()
            offset = filelike.tell()
            size = os.fstat(fd).st_size
        except (AttributeError, OSError, io.UnsupportedOperation):
            return None
        if start.status is None or start.written:
            return None
        headers, length, close = self._split_headers(start)
        count = size - offset if length is None else min(length, size - offset)
        if close:
            request.keep_alive = False
        head = encode_head(start.status, headers, count, request.keep_alive,
                           request.http_version == "HTTP/1.1", start.reason)
        if request.method == "HEAD" or count <= 0:
            wrapper.close()
            return head
        source = FileBody(head, request.keep_alive, os.dup(fd), offset, count)
        wrapper.close()
        return source


def _declared_length(headers: list[tuple[str, str]]) -> int:
    """The Content-Length the app's headers declare, or -1 (none, or not a number)."""
    for name, value in headers:
        if len(name) == 14 and name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return -1


def _chain(written: list[bytes], first: bytes, iterator: Iterator[Any], result: Any) -> Iterator[bytes]:
    """The body pieces in order; closes the application's iterable however the response ends."""
    try:
        yield from written
        yield first
        for piece in iterator:
            if piece:
                yield bytes(piece)
    finally:
        _close(result)


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
