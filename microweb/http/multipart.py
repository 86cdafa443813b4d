"""``multipart/form-data`` (RFC 7578, RFC 2046 5.1) parsed incrementally, without I/O.

``MultipartParser(boundary).feed(data)`` takes the body in pieces of any size and
returns the events they complete, in order:

``(PART, header_block)``  a part begins; ``header_block`` is its raw header lines (bytes)
``(DATA, piece)``         bytes of the current part's content
``(END, None)``           the current part is complete

``parser.done`` turns True at the closing delimiter (the epilogue after it is
ignored); a body that ends before it is incomplete. Malformed input raises
``MultipartError``. Memory is bounded whatever the body's size: what is held
between calls is at most one part's header section (``MAX_PART_HEAD``) or the
last ``len(delimiter) - 1`` bytes of content (which may be the start of a
delimiter split between two reads), never a part. Work per call is
proportional to the piece fed. Where the parts go (memory, temporary files) is
the caller's business (``microweb/uploads.py``).
"""
from __future__ import annotations

__all__ = ["MultipartParser", "MultipartError", "PART", "DATA", "END", "MAX_PART_HEAD"]

PART, DATA, END = 0, 1, 2
MAX_PART_HEAD = 8192  # bytes of header lines in one part
_MAX_DELIMITER_LINE = 1024  # the transport padding allowed after a delimiter (RFC 2046: LWSP)

_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _CONTENT, _DONE = range(5)


class MultipartError(ValueError):
    """A body that is not well-formed multipart (answered 400)."""


class MultipartParser:
    """The parser for one body: ``feed(data) -> [(kind, value), ...]``."""

    __slots__ = ("delimiter", "done", "_state", "_held", "_keep")

    def __init__(self, boundary: bytes) -> None:
        if not boundary or len(boundary) > 200:
            raise MultipartError("missing or invalid boundary parameter")
        self.delimiter = b"\r\n--" + boundary
        self.done = False
        self._state = _PREAMBLE
        # The preamble is read as if preceded by CRLF, so a body that starts with the
        # delimiter line needs no special case.
        self._held = b"\r\n"
        self._keep = len(self.delimiter) - 1

    def feed(self, data: bytes) -> list[tuple[int, bytes | None]]:
        events: list[tuple[int, bytes | None]] = []
        if self._state == _DONE:
            return events
        buf = self._held + data if self._held else data
        pos = 0
        size = len(buf)
        delimiter = self.delimiter
        while pos < size:
            state = self._state
            if state == _CONTENT or state == _PREAMBLE:
                at = buf.find(delimiter, pos)
                if at < 0:
                    keep_from = size - self._keep
                    if keep_from > pos:
                        if state == _CONTENT:
                            events.append((DATA, buf[pos:keep_from]))
                        pos = keep_from
                    break
                if state == _CONTENT:
                    if at > pos:
                        events.append((DATA, buf[pos:at]))
                    events.append((END, None))
                pos = at + len(delimiter)
                self._state = _AFTER_DELIMITER
            elif state == _AFTER_DELIMITER:
                if size - pos < 2:
                    break
                if buf.startswith(b"--", pos):
                    self._state = _DONE
                    self.done = True
                    pos = size
                    break
                eol = buf.find(b"\r\n", pos, pos + _MAX_DELIMITER_LINE)
                if eol < 0:
                    if size - pos >= _MAX_DELIMITER_LINE:
                        raise MultipartError("boundary line not followed by CRLF")
                    break
                if buf[pos:eol].strip(b" \t"):
                    raise MultipartError("boundary line not followed by CRLF")
                pos = eol + 2
                self._state = _HEADERS
            elif state == _HEADERS:
                if buf.startswith(b"\r\n", pos):  # a part with no header lines at all
                    events.append((PART, b""))
                    pos += 2
                    self._state = _CONTENT
                    continue
                end = buf.find(b"\r\n\r\n", pos, pos + MAX_PART_HEAD + 4)
                if end < 0:
                    if size - pos > MAX_PART_HEAD:
                        raise MultipartError("part header section too large")
                    break
                events.append((PART, buf[pos:end]))
                pos = end + 4
                self._state = _CONTENT
        self._held = buf[pos:] if pos < size else b""
        return events
