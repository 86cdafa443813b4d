"""Request bodies spooled as they arrive: in memory under a threshold, in a temporary file above it.

A ``Spooler`` owns one directory (``tempfile.mkdtemp``, made on first use) for the
server or the App that holds it, the spool threshold and the default body limit.
``spooler.sink(limit, refuse)`` makes the ``BodySink`` (``http/admission.py``) the
parser writes an admitted body to: a ``Spool``, which keeps the first
``threshold`` bytes in a ``bytearray`` and, when a body grows past it, moves them
to a ``SpoolFile`` and writes the rest straight there. Memory per body is thus at
most the threshold, whatever the body's size.

A ``SpoolFile`` is a named file in the spool directory, removed when it is
closed, when it is garbage-collected (the request that held it is gone), when the
body is discarded (the client went away), or with the whole directory when the
server stops (``Spooler.cleanup``). ``move_to(path)`` renames it into place (a copy
across file systems, or when it was moved already) with an ordinary file's mode, and it is
then no longer the spool's to remove.
"""
from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
import weakref
from typing import Any, Callable

from ..http.parser import ProtocolError

__all__ = ["Spooler", "Spool", "SpoolFile", "DEFAULT_SPOOL_THRESHOLD"]

DEFAULT_SPOOL_THRESHOLD = 1 << 20

#: ``refuse(status, message) -> ProtocolError``: the error to raise while a body arrives.
Refuse = Callable[[int, str], ProtocolError]


def plain_refusal(status: int, message: str) -> ProtocolError:
    """The protocol's own answer (no application to render it)."""
    return ProtocolError(status, message)


_new_file_mode: int | None = None


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the process umask (read once)."""
    global _new_file_mode
    if _new_file_mode is None:
        umask = os.umask(0o022)
        os.umask(umask)
        _new_file_mode = 0o666 & ~umask
    return _new_file_mode


class SpoolFile:
    """A temporary file holding one body (or one uploaded part); ``file`` is its binary file object."""

    __slots__ = ("path", "file", "size", "_owned")

    def __init__(self, directory: str, prefix: str = "body-") -> None:
        fd, self.path = tempfile.mkstemp(prefix=prefix, dir=directory)
        self.file: io.BufferedRandom = open(fd, "w+b")
        self.size = 0
        self._owned = True  # removed by close() unless moved into place

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def rewind(self) -> io.BufferedRandom:
        """Flush what was written and put the file object at 0, ready to be read."""
        self.file.flush()
        self.file.seek(0)
        return self.file

    def move_to(self, destination: str) -> None:
        """Put the file at ``destination``: a rename on the same file system, else a copy (also
        once it was moved already: an earlier destination keeps its copy). Either way it gets the
        mode a file made with ``open()`` gets (0666 less the umask), not ``mkstemp``'s 0600."""
        self.file.flush()
        if self._owned:
            try:
                os.replace(self.path, destination)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
            else:
                os.chmod(destination, new_file_mode())
                self._owned = False
                self.path = destination
                return
        position = self.file.tell()
        self.file.seek(0)
        with open(destination, "wb") as out:
            shutil.copyfileobj(self.file, out, 1 << 20)
        self.file.seek(position)

    def close(self) -> None:
        """Close the file and remove it (unless it was moved into place)."""
        try:
            self.file.close()
        finally:
            if self._owned:
                self._owned = False
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Spool:
    """The sink for one raw body: memory up to the threshold, then a ``SpoolFile``."""

    __slots__ = ("limit", "refuse", "size", "threshold", "_spooler", "_buffer", "_file")

    def __init__(self, spooler: Spooler, limit: int, refuse: Refuse = plain_refusal,
                 threshold: int | None = None) -> None:
        self.limit = limit
        self.refuse = refuse
        self.size = 0
        self.threshold = spooler.threshold if threshold is None else threshold
        self._spooler = spooler
        self._buffer = bytearray()
        self._file: SpoolFile | None = None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        spool_file = self._file
        if spool_file is not None:
            spool_file.write(data)
        elif self.size <= self.threshold:
            self._buffer += data
        else:
            spool_file = self._file = self._spooler.new_file()
            spool_file.write(self._buffer)
            spool_file.write(data)
            self._buffer = bytearray()

    def finish(self, request: Any) -> None:
        spool_file = self._file
        if spool_file is None:
            request.body = bytes(self._buffer)
        else:
            spool_file.rewind()
            request.attach_body_file(spool_file, self.size)
        self._file = None
        self._buffer = bytearray()

    def discard(self) -> None:
        spool_file, self._file = self._file, None
        if spool_file is not None:
            spool_file.close()
        self._buffer = bytearray()


class Spooler:
    """The spool directory, threshold and default body limit of one server (or one App under WSGI)."""

    __slots__ = ("threshold", "max_body_size", "_directory", "_removal", "__weakref__")

    def __init__(self, threshold: int = DEFAULT_SPOOL_THRESHOLD, max_body_size: int = 16 << 20) -> None:
        self.threshold = threshold
        self.max_body_size = max_body_size
        self._directory: str | None = None
        self._removal: weakref.finalize | None = None

    @property
    def directory(self) -> str:
        """The spool directory (made on first use, private to this process: mode 0700). It is
        removed by ``cleanup``, or else when this spooler is garbage-collected or the process
        exits (a test client's, an App's under another WSGI server)."""
        if self._directory is None or not os.path.isdir(self._directory):
            self._directory = tempfile.mkdtemp(prefix="microweb-bodies-")
            self._removal = weakref.finalize(self, shutil.rmtree, self._directory, True)
        return self._directory

    def new_file(self, prefix: str = "body-") -> SpoolFile:
        return SpoolFile(self.directory, prefix)

    def sink(self, limit: int, refuse: Refuse = plain_refusal, threshold: int | None = None) -> Spool:
        """The sink for one body of at most ``limit`` bytes (``threshold``: this spooler's unless given)."""
        return Spool(self, limit, refuse, threshold)

    def cleanup(self) -> None:
        """Remove the spool directory and whatever is still in it (the server stops)."""
        directory, self._directory = self._directory, None
        removal, self._removal = self._removal, None
        if removal is not None:
            removal.detach()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
