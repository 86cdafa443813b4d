"""Request bodies as the App admits them: the limit per route, the refusal before the body is
read, and the sinks bodies go to as they arrive.

``App.admit(request, length, spooler)`` (what the server asks when a head announcing
a body is complete, and what ``App.__call__`` does under another WSGI server) calls
``admit_body``. It routes the request first:

- no route takes it (a 404, 405 or trailing-slash redirect): the answer ``app.handle``
  gives it without a body is raised as ``BodyRefused``; the body is never read;
- the route's limit (``@app.post(..., max_body_size="2G")``, else
  ``app.config["MAX_BODY_SIZE"]``, else the server's ``--max-body-size``) is below the
  announced ``Content-Length``: the app's 413 page, through its error handlers and
  ``after_request`` hooks, raised the same way.

Otherwise the body goes to a sink: ``multipart/form-data`` to a ``MultipartSink``,
anything else to the server's ``Spool`` (``server/spool.py``: memory under the spool
threshold, a temporary file over it). A chunked body that outgrows the limit, a
multipart part over ``FormLimits``, or malformed multipart is refused the same way
while it arrives.

A ``MultipartSink`` keeps a body under the threshold as it is (``request.form`` and
``request.files`` parse it on first use, in place); past the threshold it parses it
part by part as it arrives (``http/multipart.py``), each file part written straight
to its own temporary file, text fields kept (they are small: ``max_field_size``).
When the handler runs, ``request.files[name]`` is an ``UploadedFile`` over that file,
and ``save(path)`` renames it into place.
"""
from __future__ import annotations

from typing import Any

from .datastructures import MultiDict
from .errors import HTTPError, MethodNotAllowed, NotFound, RequestRedirect
from .http.admission import BodyRefused
from .http.datastructures import Headers
from .http.multipart import DATA, END, PART, MultipartError, MultipartParser
from .http.parser import ProtocolError
from .http.values import parse_options_header
from .multipart import FormLimits, UploadedFile, basename, form_limits_of, parse_multipart, part_headers
from .routing import OptionsAllowed
from .server.options import parse_size

__all__ = ["admit_body", "parse_body_limit", "refusal", "MultipartSink"]


def parse_body_limit(value: int | str) -> int:
    """A body limit: bytes, or a size with a K/M/G suffix (``"2G"``)."""
    return parse_size(value)


def body_limit(app: Any, route: Any, default: int) -> int:
    """The limit for a body to ``route``: the route's, else the app's ``MAX_BODY_SIZE``, else ``default``."""
    if route is not None and route.max_body_size is not None:
        return int(route.max_body_size)
    configured = app.config.get("MAX_BODY_SIZE")
    return parse_size(configured) if configured is not None else default


def refusal(app: Any, request: Any, status: int, message: str) -> ProtocolError:
    """``status`` rendered by ``app`` (error handlers, after_request hooks), as the error to raise."""
    request.keep_alive = False  # the body is not read: the connection ends after the answer
    output = app._handle_exception(request, HTTPError(status, message))
    return _refused(status, message, output)


def _refused(status: int, message: str, output: Any) -> ProtocolError:
    if type(output) is not bytes:  # a streamed error page: not worth streaming to a refused client
        close = getattr(output, "close", None)
        if close is not None:
            close()
        return ProtocolError(status, message)
    return BodyRefused(status, message, output)


def _answer_now(app: Any, request: Any, status: int) -> ProtocolError:
    """What ``app.handle`` says to this request without its body (a 404, 405 or redirect)."""
    request.keep_alive = False
    request._body = b""
    return _refused(status, "answered before the body was read", app.handle(request))


def _mount_of(app: Any, path: str) -> tuple[str, Any, Any] | None:
    """The mount ``app._mounted`` will hand ``path`` to (its bare prefix, which redirects, included)."""
    for mount in app.mounts:
        prefix = mount[0]
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            return mount  # type: ignore[no-any-return]
    return None


def _admit_mounted(app: Any, request: Any, length: int, spooler: Any, mount: tuple[str, Any, Any]) -> Any:
    """A body to a mount: a mounted App admits it by its own routes, limits and error pages; a
    mounted WSGI app parses the body itself, so it is spooled raw, within ``app``'s limit."""
    prefix, sub, _ = mount
    path = request.path
    if path == prefix:
        raise _answer_now(app, request, 308)  # the mount redirects its bare prefix to prefix/
    if sub is not None:
        request.path = path[len(prefix):]
        try:
            return sub.admit(request, length, spooler)
        finally:
            request.path = path
            request.app = app
    limit = body_limit(app, None, spooler.max_body_size)
    if length > limit:
        raise refusal(app, request, 413, f"Request body too large (limit {limit} bytes)")
    threshold = app.config.get("SPOOL_THRESHOLD")
    return spooler.sink(limit, lambda status, message: refusal(app, request, status, message),
                        parse_size(threshold) if threshold is not None else spooler.threshold)


def admit_body(app: Any, request: Any, length: int, spooler: Any) -> Any:
    """The sink for ``request``'s body, or raise the refusal (see the module docstring)."""
    request.app = app
    route = None
    if app.mounts:
        mount = _mount_of(app, request.path)
        if mount is not None:
            return _admit_mounted(app, request, length, spooler, mount)
    try:
        route, _ = app.router.match(request.method, request.path)
    except NotFound:
        if request.method not in ("GET", "HEAD"):  # GET/HEAD fall back to the static folder
            raise _answer_now(app, request, 404) from None
    except MethodNotAllowed:
        raise _answer_now(app, request, 405) from None
    except RequestRedirect:
        raise _answer_now(app, request, 308) from None
    except OptionsAllowed:
        pass
    limit = body_limit(app, route, spooler.max_body_size)
    if length > limit:
        raise refusal(app, request, 413, f"Request body too large (limit {limit} bytes)")
    threshold = app.config.get("SPOOL_THRESHOLD")
    threshold = parse_size(threshold) if threshold is not None else spooler.threshold

    def refuse(status: int, message: str) -> ProtocolError:
        return refusal(app, request, status, message)

    content_type = request.headers.get("content-type", "")
    if content_type[:19].lower() == "multipart/form-data":
        boundary = parse_options_header(content_type)[1].get("boundary", "")
        if boundary and len(boundary) <= 200 and boundary.isascii():
            limits = form_limits_of(request)
            file_limit = limits.file_limit(route.max_body_size if route is not None else None)
            return MultipartSink(spooler, limit, refuse, boundary.encode("ascii"), limits, threshold, file_limit)
    return spooler.sink(limit, refuse, threshold)


class MultipartSink:
    """A ``multipart/form-data`` body: kept whole under the threshold, parsed as it arrives above it."""

    __slots__ = ("limit", "refuse", "size", "_spooler", "_boundary", "_limits", "_threshold", "_buffer",
                 "_parser", "_fields", "_files", "_parts", "_field_count", "_part", "_part_size", "_file_limit")

    def __init__(self, spooler: Any, limit: int, refuse: Any, boundary: bytes, limits: Any,
                 threshold: int, file_limit: int | None) -> None:
        self._file_limit = file_limit
        self.limit = limit
        self.refuse = refuse
        self.size = 0
        self._spooler = spooler
        self._boundary = boundary
        self._limits = limits
        self._threshold = threshold
        self._buffer = bytearray()
        self._parser: MultipartParser | None = None
        self._fields = MultiDict()
        self._files = MultiDict()
        self._parts = 0
        self._field_count = 0
        self._part: Any = None  # (name, filename, content type, headers, SpoolFile or bytearray)
        self._part_size = 0

    # -- BodySink ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._parser is None:
            if self.size <= self._threshold:
                self._buffer += data
                return
            self._parser = MultipartParser(self._boundary)
            held, self._buffer = bytes(self._buffer), bytearray()
            if held:
                self._feed(held)
        self._feed(data)

    def finish(self, request: Any) -> None:
        if self._parser is None:
            body = request.body = bytes(self._buffer)  # small: parsed in place on first use
            self._buffer = bytearray()
            limits = self._limits
            if self._file_limit != limits.max_file_size:
                # The route lifted the per-file limit: parsed now with it, as a spooled body is,
                # since request.files (parsed later) knows only the app's FormLimits.
                raised = FormLimits(limits.max_parts, limits.max_fields, limits.max_field_size, self._file_limit)
                try:
                    request._form, request._files = parse_multipart(
                        body, "multipart/form-data; boundary=" + self._boundary.decode("ascii"), raised)
                except HTTPError as exc:
                    raise self.refuse(exc.status, exc.description or "") from None
            return
        if not self._parser.done:
            self.discard()
            raise self.refuse(400, "Malformed multipart body: body ends before the closing boundary")
        request.body = b""
        request._form, request._files = self._fields, self._files
        self._fields = self._files = MultiDict()

    def discard(self) -> None:
        part, self._part = self._part, None
        if part is not None and not isinstance(part[4], bytearray):
            part[4].close()
        for upload in self._files.values():
            upload.close()
        self._files = MultiDict()
        self._buffer = bytearray()

    # -- parts --------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        assert self._parser is not None
        try:
            events = self._parser.feed(data)
            for kind, value in events:
                if kind == DATA:
                    self._content(value)  # type: ignore[arg-type]
                elif kind == PART:
                    self._start_part(value)  # type: ignore[arg-type]
                elif kind == END:
                    self._end_part()
        except MultipartError as exc:
            self.discard()
            raise self.refuse(400, f"Malformed multipart body: {exc}") from None
        except HTTPError as exc:
            self.discard()
            raise self.refuse(exc.status, exc.description or "") from None

    def _start_part(self, block: bytes) -> None:
        limits = self._limits
        self._parts += 1
        if self._parts > limits.max_parts:
            raise HTTPError(413, f"Too many parts in the multipart body (limit {limits.max_parts})")
        headers = part_headers(block) if block else Headers()
        disposition, params = parse_options_header(headers.get("content-disposition", ""))
        name = params.get("name")
        if disposition != "form-data" or name is None:
            raise MultipartError('part without Content-Disposition: form-data; name="..."')
        part_type = headers.get("content-type")
        if "filename" in params:
            target: Any = self._spooler.new_file("upload-")
            self._part = (name, basename(params["filename"]), part_type or "application/octet-stream", headers,
                          target)
        else:
            self._field_count += 1
            if self._field_count > limits.max_fields:
                raise HTTPError(413, f"Too many form fields (limit {limits.max_fields})")
            self._part = (name, None, part_type, headers, bytearray())
        self._part_size = 0

    def _content(self, piece: bytes) -> None:
        part = self._part
        self._part_size += len(piece)
        limits = self._limits
        if part[1] is not None:
            if self._file_limit is not None and self._part_size > self._file_limit:
                raise HTTPError(413, f"Uploaded file {part[0]!r} is too large (limit {self._file_limit} bytes)")
            part[4].write(piece)
        else:
            if self._part_size > limits.max_field_size:
                raise HTTPError(413, f"Form field {part[0]!r} is too large (limit {limits.max_field_size} bytes)")
            part[4].extend(piece)

    def _end_part(self) -> None:
        name, filename, part_type, headers, target = self._part
        self._part = None
        if filename is not None:
            target.rewind()
            self._files.add(name, UploadedFile(name, filename, part_type, b"", headers, spooled=target))
            return
        charset = parse_options_header(part_type)[1].get("charset", "utf-8") if part_type else "utf-8"
        try:
            self._fields.add(name, bytes(target).decode(charset))
        except (LookupError, UnicodeDecodeError):
            raise HTTPError(400, f"Form field {name!r} is not valid {charset}") from None
