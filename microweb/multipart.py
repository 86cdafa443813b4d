"""``multipart/form-data`` bodies (RFC 7578), parsed in place.

This is the in-place parser for a body held in memory (under the spool
threshold, or under the test client): ``request.form``/``request.files`` run it
on first use. A body over the threshold is parsed part by part as it arrives
instead, its files written to temporary files (``uploads.py``,
``http/multipart.py``). This parser only looks for the boundary with ``bytes.find`` and never copies file contents: an
``UploadedFile`` holds a ``memoryview`` slice of the body, ``save()`` writes that
view straight to disk, and ``read()`` makes the one copy the caller asked for.
Text fields are small (``max_field_size``) and are decoded to ``str``.

Limits (``FormLimits``, per app: ``app.form_limits``) turn hostile bodies into
HTTP errors: too many parts or fields, or a part bigger than allowed, is a 413;
a body that is not well-formed multipart is a 400. Both are ordinary
``HTTPError``s, so the connection stays open for the next request.
"""
from __future__ import annotations

import os
import shutil
from typing import IO, Any

from .datastructures import MultiDict
from .errors import HTTPError
from .http.datastructures import Headers
from .http.values import parse_options_header

__all__ = ["FormLimits", "UploadedFile", "parse_multipart"]

_MAX_PART_HEAD = 8192  # bytes of header lines in one part


DEFAULT_MAX_FILE_SIZE = 15 << 20


class FormLimits:
    """Limits on the parts of form bodies (the whole body's limit is ``MAX_BODY_SIZE``/``max_body_size``).

    ``max_parts``: parts in a multipart body; ``max_fields``: text fields (multipart
    parts without a filename, or ``a=b`` pairs in an urlencoded body);
    ``max_field_size``: bytes in one text field (512 KiB); ``max_file_size``: bytes in
    one uploaded file (15 MiB, under the default 16 MiB body limit, so its 413 says which file
    was too large; ``None``: only the body limit applies). Left at its default, the
    per-file limit rises to a route's own ``max_body_size`` when that is larger: a
    route declared for 2 GB uploads takes a 2 GB file without a second setting.
    """

    __slots__ = ("max_parts", "max_fields", "max_field_size", "max_file_size", "file_size_given")

    def __init__(
        self,
        max_parts: int = 1000,
        max_fields: int = 1000,
        max_field_size: int = 512 * 1024,
        max_file_size: int | None | str = "default",
    ) -> None:
        self.max_parts = max_parts
        self.max_fields = max_fields
        self.max_field_size = max_field_size
        self.file_size_given = max_file_size != "default"
        self.max_file_size: int | None = (DEFAULT_MAX_FILE_SIZE if max_file_size == "default"
                                          else max_file_size)  # type: ignore[assignment]

    def file_limit(self, route_limit: int | None) -> int | None:
        """The per-file limit for a route whose own body limit is ``route_limit`` (None: it has none)."""
        if (not self.file_size_given and route_limit is not None and self.max_file_size is not None
                and route_limit > self.max_file_size):
            return route_limit
        return self.max_file_size

    def __repr__(self) -> str:
        return (f"FormLimits(max_parts={self.max_parts}, max_fields={self.max_fields}, "
                f"max_field_size={self.max_field_size}, max_file_size={self.max_file_size})")


DEFAULT_FORM_LIMITS = FormLimits()


class UploadedFile:
    """One uploaded file: ``name``, ``filename``, ``content_type``, ``headers``, ``size``,
    ``read()``, ``seek()``, ``save(destination)``.

    A small upload is a view of the request body in memory; one that arrived as part of a
    body over the spool threshold is its own temporary file (``spooled``), which ``save(path)``
    renames into place (a copy only across file systems) and which is removed otherwise
    when the request is done.
    """

    __slots__ = ("name", "filename", "content_type", "headers", "_data", "_pos", "_spooled")

    def __init__(self, name: str, filename: str, content_type: str, data: memoryview | bytes,
                 headers: Headers | None = None, spooled: Any = None) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.headers = headers if headers is not None else Headers()
        self._data = memoryview(data)
        self._pos = 0
        self._spooled = spooled  # a server.spool.SpoolFile, or None

    @property
    def size(self) -> int:
        return self._spooled.size if self._spooled is not None else len(self._data)

    @property
    def mimetype(self) -> str:
        """The content type without parameters (``text/plain`` for ``text/plain; charset=utf-8``)."""
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def stream(self) -> Any:
        """A readable binary file object over the data (the temporary file itself when spooled)."""
        return self._spooled.file if self._spooled is not None else self

    def __len__(self) -> int:
        return self.size

    def read(self, size: int = -1) -> bytes:
        """Read ``size`` bytes (all that is left when negative) from the current position."""
        if self._spooled is not None:
            return self._spooled.file.read(-1 if size is None else size)  # type: ignore[no-any-return]
        start = self._pos
        end = len(self._data) if size is None or size < 0 else min(len(self._data), start + size)
        self._pos = end
        return self._data[start:end].tobytes()

    def seek(self, offset: int, whence: int = 0) -> int:
        if self._spooled is not None:
            return self._spooled.file.seek(offset, whence)  # type: ignore[no-any-return]
        base = (0, self._pos, len(self._data))[whence]
        self._pos = max(0, min(len(self._data), base + offset))
        return self._pos

    def tell(self) -> int:
        if self._spooled is not None:
            return self._spooled.file.tell()  # type: ignore[no-any-return]
        return self._pos

    def save(self, destination: str | os.PathLike[str] | IO[bytes]) -> int:
        """Write the whole file to a path or a binary file object; return the byte count.

        A spooled upload saved to a path is moved there (a rename on the same file system);
        reading it afterwards reads the saved file.
        """
        spooled = self._spooled
        if spooled is not None:
            if hasattr(destination, "write"):
                position = spooled.file.tell()
                spooled.file.seek(0)
                shutil.copyfileobj(spooled.file, destination, 1 << 20)  # type: ignore[arg-type]
                spooled.file.seek(position)
            else:
                spooled.move_to(os.fspath(destination))  # type: ignore[arg-type]
            return spooled.size  # type: ignore[no-any-return]
        if hasattr(destination, "write"):
            destination.write(self._data)  # type: ignore[union-attr]
        else:
            with open(os.fspath(destination), "wb") as out:  # type: ignore[arg-type]
                out.write(self._data)
        return len(self._data)

    def close(self) -> None:
        """Remove the temporary file now (else it goes when the request does)."""
        if self._spooled is not None:
            self._spooled.close()

    def __repr__(self) -> str:
        return f"<UploadedFile {self.name!r} {self.filename!r} ({self.content_type}, {self.size} bytes)>"


def basename(filename: str) -> str:
    # Some clients send a full path ("C:\\Users\\me\\a.txt"); keep only the last component.
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _bad(message: str) -> HTTPError:
    return HTTPError(400, f"Malformed multipart body: {message}")


def parse_multipart(body: bytes, content_type: str,
                    limits: FormLimits = DEFAULT_FORM_LIMITS) -> tuple[MultiDict, MultiDict]:
    """Parse a ``multipart/form-data`` body: (text fields, uploaded files)."""
    _, params = parse_options_header(content_type)
    boundary_text = params.get("boundary", "")
    if not boundary_text or len(boundary_text) > 200:
        raise HTTPError(400, "Malformed multipart body: missing or invalid boundary parameter")
    try:
        boundary = boundary_text.encode("ascii")
    except UnicodeEncodeError:
        raise HTTPError(400, "Malformed multipart body: boundary is not ASCII") from None
    dash = b"--" + boundary
    delimiter = b"\r\n" + dash
    fields = MultiDict()
    files = MultiDict()
    view = memoryview(body)
    size = len(body)

    # The first delimiter may come after a preamble, which is ignored.
    if body.startswith(dash):
        pos = len(dash)
    else:
        start = body.find(delimiter)
        if start < 0:
            raise _bad("no boundary line found")
        pos = start + len(delimiter)
    parts = 0
    field_count = 0
    while True:
        # After a delimiter: "--" closes the body; otherwise optional whitespace, CRLF.
        if body.startswith(b"--", pos):
            break
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise _bad("boundary line not followed by CRLF")
        pos = eol + 2
        parts += 1
        if parts > limits.max_parts:
            raise HTTPError(413, f"Too many parts in the multipart body (limit {limits.max_parts})")
        if body.startswith(b"\r\n", pos):  # a part with no header lines at all
            head_end = pos - 2
        else:
            head_end = body.find(b"\r\n\r\n", pos, pos + _MAX_PART_HEAD + 4)
        if head_end < 0:
            if size - pos > _MAX_PART_HEAD:
                raise _bad("part header section too large")
            else:
                raise _bad("part header section not terminated")
        headers = part_headers(body[pos:head_end]) if head_end > pos else Headers()
        data_start = head_end + 4
        data_end = body.find(delimiter, data_start)
        if data_end < 0:
            raise _bad("body ends before the closing boundary")
        pos = data_end + len(delimiter)
        disposition, dparams = parse_options_header(headers.get("content-disposition", ""))
        name = dparams.get("name")
        if disposition != "form-data" or name is None:
            raise _bad('part without Content-Disposition: form-data; name="..."')
        length = data_end - data_start
        part_type = headers.get("content-type")
        if "filename" in dparams:
            if limits.max_file_size is not None and length > limits.max_file_size:
                raise HTTPError(413, f"Uploaded file {name!r} is too large (limit {limits.max_file_size} bytes)")
            files.add(name, UploadedFile(name, basename(dparams["filename"]),
                                         part_type or "application/octet-stream",
                                         view[data_start:data_end], headers))
        else:
            field_count += 1
            if field_count > limits.max_fields:
                raise HTTPError(413, f"Too many form fields (limit {limits.max_fields})")
            if length > limits.max_field_size:
                raise HTTPError(413, f"Form field {name!r} is too large (limit {limits.max_field_size} bytes)")
            charset = parse_options_header(part_type)[1].get("charset", "utf-8") if part_type else "utf-8"
            try:
                fields.add(name, body[data_start:data_end].decode(charset))
            except (LookupError, UnicodeDecodeError):
                raise HTTPError(400, f"Form field {name!r} is not valid {charset}") from None
    return fields, files


def part_headers(block: bytes) -> Headers:
    items: list[tuple[str, str]] = []
    try:
        text = block.decode("utf-8")  # browsers send raw UTF-8 file names
    except UnicodeDecodeError:
        text = block.decode("latin-1")
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _bad(f"invalid part header line {line[:40]!r}")
        items.append((name, value.strip()))
    return Headers(items)


def form_limits_of(request: Any) -> FormLimits:
    """The form limits of the app serving ``request`` (the defaults without one)."""
    app = getattr(request, "app", None)
    limits = getattr(app, "form_limits", None)
    return limits if isinstance(limits, FormLimits) else DEFAULT_FORM_LIMITS
