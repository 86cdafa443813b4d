"""Static files: the folder an app falls back to, served with nginx's HTTP semantics.

Theory of operation
-------------------
``StaticFiles.response(request)`` is called for a request no route matched. It
answers with a ``StaticResponse`` (a file, or part of one), a redirect, a
listing, or None (the caller then answers 404 from the ``404.html`` template).

Resolution maps the decoded URL path to a file: segments that are ``.``/``..``,
hold a NUL or a backslash, or start with a dot (unless allowed) are refused
before the file system is touched; then ``realpath`` resolves symlinks and
``commonpath`` against the root's own realpath rejects anything that ends up
outside. Directories give their ``index.html`` (a 301 adds the missing slash
first), ``/about`` falls back to ``about.html``, and ``file.br``/``file.gz``
beside a file are its precompressed variants. Resolutions are cached for
``resolve_ttl`` seconds (one by default) because ``realpath`` costs a syscall
per path component; the file itself is always served from the resolved real
path, so a symlink swapped meanwhile cannot lead outside the root.

Misses (scanners, broken links) are answered from directory listings, not
per-path entries: the names in each directory walked are read once per
``resolve_ttl`` (a ``DirListing``), and a path whose first missing segment is
absent from its directory's listing (``/about`` also lacking ``about.html``) is
not found without a syscall. A file created afterwards is therefore seen within
``resolve_ttl``, the same delay the positive cache allows; a flood of distinct
missing names costs one ``scandir`` per directory per second, and memory stays
bounded (``LISTING_NAMES_MAX`` names in all; a bigger directory is not listed).
The listing only ever answers "not found": anything it holds, or any symlink on
the way, takes the full ``realpath`` resolution.

Freshness: every request ``stat``s the file it is about to send and compares
size, mtime and inode with the cached ``FileEntry`` (headers ready to go, plus
the bytes themselves for small files), so a changed file is never served stale.
Small cached files leave as one ``bytes``; others as a ``FileBody`` the reactor
sends with ``os.sendfile`` (ranges included).

Semantics (RFC 9110): If-Match / If-Unmodified-Since (412), If-None-Match
(weak comparison, lists, ``*``) / If-Modified-Since (304 keeping the cache
headers), Range with If-Range (206, 416 with ``bytes */SIZE``). Several ranges
are coalesced; more than ``MAX_RANGES`` pieces are answered with the whole file
(200), the defence nginx and Apache use against range amplification; otherwise
they go out as ``multipart/byteranges``, read with ``pread`` (sendfile cannot
interleave the part headers, and such requests are rare: PDF viewers, resumers).
"""
from __future__ import annotations

import html
import mimetypes
import os
import re
import stat as stat_module
import time
from typing import Iterator, Pattern
from urllib.parse import quote

from .errors import MethodNotAllowed, NotFound
from .http.bodies import BodySource, FileBody, StreamBody
from .http.datastructures import MutableHeaders
from .http.encode import (DATE, END_CLOSE, END_PERSISTENT_10, END_PERSISTENT_11, encode_block_head, encode_head,
                           status_line)
from .http.request import HTTPRequest
from .http.values import (accepted_codings, coalesce_ranges, etag_matches_strong, etag_matches_weak, http_date,
                          parse_http_date, parse_ranges)
from .responses import FileResponse, Response, guess_type, redirect

__all__ = ["StaticFiles", "StaticResponse", "FileEntry", "DirListing", "FINGERPRINT"]

#: Names such as ``app.3f2a9c1b.js`` or ``chunk-0a1b2c3d4e.css``: a hex run of 8+ with a digit in it.
FINGERPRINT = re.compile(r"[.-](?=[0-9a-f]*[0-9])[0-9a-f]{8,}\.[A-Za-z0-9]+$")
DEFAULT_CACHE_CONTROL = "no-cache"
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
MAX_RANGES = 16
#: The names kept in all cached directory listings together (a bigger directory is not listed).
LISTING_NAMES_MAX = 65536
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
_ALLOWED = ["GET", "HEAD"]
_STATUS_200 = status_line(200)
_CONDITIONAL = frozenset({"if-none-match", "if-modified-since", "range", "if-match", "if-unmodified-since"})
_READ_STEP = 65536
# Files compressed on disk (``x.tar.gz``) are served as what they are, not as ``Content-Encoding``.
_ARCHIVE_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz",
                  "br": "application/octet-stream", "compress": "application/x-compress"}


def content_type_for(path: str) -> str:
    """The Content-Type of a file name: ``mimetypes`` plus ``charset=utf-8`` for text."""
    _, encoding = mimetypes.guess_type(path, strict=False)
    if encoding is not None:
        return _ARCHIVE_TYPES.get(encoding, "application/octet-stream")
    return guess_type(path)


class FileEntry:
    """What is known about one file: identity, validators, header block, and maybe its bytes."""

    __slots__ = ("real", "size", "mtime_ns", "ino", "etag", "last_modified", "mtime", "content_type",
                 "encoding", "headers", "header_block", "tail", "body")

    def __init__(self, real: str, st: os.stat_result, content_type: str, encoding: str | None,
                 cache_control: str | None, vary: bool) -> None:
        self.real = real
        self.size = st.st_size
        self.mtime_ns = st.st_mtime_ns
        self.ino = st.st_ino
        self.mtime = int(st.st_mtime)
        suffix = "-" + encoding if encoding else ""
        self.etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}{suffix}"'
        self.last_modified = http_date(self.mtime)
        self.content_type = content_type
        self.encoding = encoding
        headers = [("Content-Type", content_type), ("Last-Modified", self.last_modified), ("ETag", self.etag),
                   ("Accept-Ranges", "bytes")]
        if cache_control:
            headers.append(("Cache-Control", cache_control))
        if encoding:
            headers.append(("Content-Encoding", encoding))
        if vary:
            headers.append(("Vary", "Accept-Encoding"))
        self.headers = headers
        self.header_block = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("latin-1")
        self.tail = self.header_block + b"Content-Length: %d\r\n" % self.size  # a whole-file head's end
        self.body: bytes | None = None

    def matches(self, st: os.stat_result) -> bool:
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns and st.st_ino == self.ino

    def validator_headers(self) -> list[tuple[str, str]]:
        """The headers a 304 keeps (RFC 9110 15.4.5): validators, Cache-Control, Vary."""
        return [(k, v) for k, v in self.headers if k in ("ETag", "Last-Modified", "Cache-Control", "Vary")]


class _File:
    """A resolved file: its real path and the real paths of its precompressed siblings."""

    __slots__ = ("real", "variants", "expires", "entry")

    def __init__(self, real: str, variants: tuple[tuple[str, str], ...], expires: float) -> None:
        self.real = real
        self.variants = variants
        self.expires = expires
        self.entry: FileEntry | None = None  # the identity entry last served (checked by stat each time)


class _Redirect:
    __slots__ = ("location", "expires")

    def __init__(self, location: str, expires: float) -> None:
        self.location = location
        self.expires = expires


class _Listing:
    __slots__ = ("real", "expires")

    def __init__(self, real: str, expires: float) -> None:
        self.real = real
        self.expires = expires


_Resolved = _File | _Redirect | _Listing


class DirListing:
    """The entries of one directory as read at one moment, kept until ``expires``.

    ``names`` maps each name to True for a real directory (not a symlink) and False for
    anything else; None means "not listed" (too big, or unreadable): no shortcut there.
    """

    __slots__ = ("names", "expires")

    def __init__(self, names: dict[str, bool] | None, expires: float) -> None:
        self.names = names
        self.expires = expires


def read_listing(directory: str, expires: float, max_names: int) -> DirListing:
    """The ``DirListing`` of ``directory``: empty if it does not exist, unlisted if it has more
    than ``max_names`` entries or cannot be read."""
    names: dict[str, bool] = {}
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if len(names) >= max_names:
                    return DirListing(None, expires)
                try:
                    names[entry.name] = entry.is_dir(follow_symlinks=False)
                except OSError:
                    names[entry.name] = False
    except (FileNotFoundError, NotADirectoryError):
        return DirListing({}, expires)
    except OSError:
        return DirListing(None, expires)
    return DirListing(names, expires)


class StaticResponse(FileResponse):
    """A file (or a range of one) from a ``FileEntry``; its head is pre-encoded unless headers are touched.

    A ``FileResponse`` (``path`` is the file sent), so after-request hooks that rewrite
    file responses see it as one.
    """

    __slots__ = ("entry", "offset", "length", "extra", "parts")

    def __init__(self, entry: FileEntry, status: int = 200, offset: int = 0, length: int | None = None,
                 extra: list[tuple[str, str]] | None = None) -> None:
        self.entry = entry
        self.path = entry.real
        self.download_name = None
        self.status = status
        self.offset = offset
        self.length = entry.size if length is None else length
        self.extra = extra  # headers after the entry's (Content-Range), or None
        self.parts: list[tuple[bytes, int, int]] | None = None  # multipart: (part head, offset, length)
        self.body = b""
        self._headers = None
        self.content_type = entry.content_type

    @property
    def headers(self) -> MutableHeaders:
        if self._headers is None:
            self._headers = MutableHeaders(self.header_items())
        return self._headers

    def header_items(self) -> list[tuple[str, str]]:
        if self._headers is not None:
            return self._headers.items()
        items = list(self.entry.headers)
        if self.extra:
            items.extend(self.extra)
        return items

    def encode(self, request: HTTPRequest) -> bytes | BodySource:
        keep_alive = request.keep_alive
        http11_ = request.http_version == "HTTP/1.1"
        length = self.length
        if self.extra is None and self.status == 200 and self._headers is None:
            # The hot path: the shared pieces of http/encode.py (status line, Date, the end of
            # the head with its Connection line) around the entry's ready header block, joined
            # here without a call: what encode_block_head does.
            entry = self.entry
            end = (END_PERSISTENT_11 if http11_ else END_PERSISTENT_10) if keep_alive else END_CLOSE
            body = entry.body
            if body is not None and request.method != "HEAD":
                return b"".join((_STATUS_200, DATE.lines, entry.tail, end, body))
            head = b"".join((_STATUS_200, DATE.lines, entry.tail, end))
        elif self._headers is None:
            # The common case: the entry's ready header block, the extra fields, the length.
            extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in self.extra) if self.extra else b""
            block = b"%s%sContent-Length: %d\r\n" % (self.entry.header_block, extra, length)
            head = encode_block_head(self.status, block, keep_alive, http11_)
        else:
            head = encode_head(self.status, self.header_items(), length, keep_alive, http11_)
        if request.method == "HEAD" or length == 0:
            return head
        if self.parts is not None:
            return StreamBody(head, keep_alive, _multipart_pieces(self.entry.real, self.parts), chunked=False)
        body = self.entry.body
        if body is not None:
            return head + (body if length == len(body) else body[self.offset:self.offset + length])
        try:
            fd = os.open(self.entry.real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            raise NotFound() from None
        return FileBody(head, keep_alive, fd, self.offset, length)


def _multipart_pieces(real: str, parts: list[tuple[bytes, int, int]]) -> Iterator[bytes]:
    """The body of a multipart/byteranges response, read with pread; the fd closes however it ends."""
    fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        for part_head, offset, length in parts:
            yield part_head
            end = offset + length
            while offset < end:
                data = os.pread(fd, min(_READ_STEP, end - offset), offset)
                if not data:
                    raise OSError("file ended early")
                offset += len(data)
                yield data
    finally:
        os.close(fd)


def _plain(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> Response:
    return Response(body, status, headers, "text/plain; charset=utf-8" if body else None)


class StaticFiles:
    """Serve the files under ``folder`` (see the module docstring for the rules).

    Options: ``url_prefix`` (mount point, "" for the root), ``index`` (directory index file),
    ``clean_urls`` (``/about`` -> ``about.html``), ``dotfiles`` (serve names starting with a
    dot; ``.well-known`` is always served), ``listing`` (HTML index of directories without
    one), ``cache_control`` / ``immutable_cache_control`` / ``fingerprint`` (the
    Cache-Control of ordinary and of fingerprinted names; None for no header),
    ``precompressed`` (serve ``.br``/``.gz`` siblings), ``cache_file_max`` /
    ``cache_total_max`` (bytes of small files kept in memory), ``resolve_ttl`` (seconds a
    URL-to-file resolution is reused; 0 resolves every time).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        url_prefix: str = "",
        *,
        index: str = "index.html",
        clean_urls: bool = True,
        dotfiles: bool = False,
        listing: bool = False,
        cache_control: str | None = DEFAULT_CACHE_CONTROL,
        immutable_cache_control: str | None = IMMUTABLE_CACHE_CONTROL,
        fingerprint: Pattern[str] | None = FINGERPRINT,
        precompressed: bool = True,
        cache_file_max: int = 64 * 1024,
        cache_total_max: int = 16 * 1024 * 1024,
        resolve_ttl: float = 1.0,
    ) -> None:
        self.folder = os.path.abspath(os.fspath(folder))
        self.root = os.path.realpath(self.folder)
        self.url_prefix = url_prefix.rstrip("/")
        self.index = index
        self.clean_urls = clean_urls
        self.dotfiles = dotfiles
        self.listing = listing
        self.cache_control = cache_control
        self.immutable_cache_control = immutable_cache_control
        self.fingerprint = fingerprint
        self.precompressed = precompressed
        self.cache_file_max = cache_file_max
        self.cache_total_max = cache_total_max
        self.resolve_ttl = resolve_ttl
        self._resolved: dict[str, _Resolved] = {}
        self._entries: dict[tuple[str, str | None, bool], FileEntry] = {}
        self._cached_bytes = 0
        self._accept_cache: dict[str, tuple[str, ...]] = {}
        self._listings: dict[str, DirListing] = {}
        self._listed_names = 0

    # -- the entry point --------------------------------------------------------

    def response(self, request: HTTPRequest) -> Response | None:
        """The response for ``request`` under this folder, or None (not found).

        Methods other than GET and HEAD on an existing path raise ``MethodNotAllowed``.
        """
        path = request.path
        target = self._resolved.get(path)
        if target is None or target.expires < time.monotonic():
            try:
                target = self._resolve(path)
            except (OSError, ValueError, UnicodeError):
                target = None
            if target is None:
                self._resolved.pop(path, None)
                return None
            if len(self._resolved) >= 4096:
                self._resolved.clear()
            self._resolved[path] = target
        method = request.method
        if method != "GET" and method != "HEAD":
            raise MethodNotAllowed(_ALLOWED)
        if type(target) is _File:
            return self._file_response(request, target)
        if type(target) is _Redirect:
            location = target.location
            if request.query_string:
                location += "?" + request.query_string
            return redirect(location, 301)
        return self._listing_response(request, target.real)  # type: ignore[union-attr]

    def fast_response(self, request: HTTPRequest) -> bytes | BodySource | None:
        """The encoded answer to a plain GET or HEAD of a file served before and unchanged since.

        None means "take the full path" (``App.handle``): anything conditional, ranged,
        precompressed, not yet resolved or changed. ``microweb serve`` calls this first, so a
        hot small file costs one dict lookup, one ``stat`` and one ``bytes`` join.
        """
        target = self._resolved.get(request.path)
        if type(target) is not _File or target.variants or target.expires < time.monotonic():
            return None
        entry = target.entry
        method = request.method
        if entry is None or (method != "GET" and method != "HEAD") \
                or not _CONDITIONAL.isdisjoint(request.headers.by_name):
            return None
        try:
            st = os.stat(target.real)
        except OSError:
            return None
        if st.st_mtime_ns != entry.mtime_ns or st.st_size != entry.size or st.st_ino != entry.ino:
            return None
        try:
            return StaticResponse(entry).encode(request)
        except NotFound:  # could not be opened after all: the full path renders the 404 page
            return None

    # -- resolution -------------------------------------------------------------

    def _dot_allowed(self, name: str) -> bool:
        return self.dotfiles or name == ".well-known"

    def _inside(self, real: str) -> bool:
        root = self.root
        if os.path.commonpath([root, real]) != root:
            return False
        if real == root:
            return True
        # A symlink inside the root may still lead to a dot-folder inside it.
        for name in os.path.relpath(real, root).split(os.sep):
            if name.startswith(".") and not self._dot_allowed(name):
                return False
        return True

    def _resolve(self, path: str) -> _Resolved | None:
        expires = time.monotonic() + self.resolve_ttl
        prefix = self.url_prefix
        if prefix:
            if path == prefix:
                return _Redirect(quote(prefix) + "/", expires)
            if not path.startswith(prefix + "/"):
                return None
            path = path[len(prefix):]
        if path[:1] != "/" or "\x00" in path or "\\" in path:
            return None
        names = [name for name in path.split("/") if name]
        for name in names:
            if name == "." or name == "..":
                return None
            if name[0] == "." and not self._dot_allowed(name):
                return None
        if self.resolve_ttl > 0 and self._absent(names, slash=path.endswith("/")):
            return None
        root = self.root
        real = os.path.realpath(os.path.join(root, *names))
        if not self._inside(real):
            return None
        slash = path.endswith("/")
        try:
            st = os.stat(real)
        except OSError:
            st = None
        if st is not None and stat_module.S_ISDIR(st.st_mode):
            if not slash and names:
                return _Redirect(quote(prefix + "/" + "/".join(names)) + "/", expires)
            index = self._regular_file(os.path.join(real, self.index)) if self.index else None
            if index is not None:
                return _File(index, self._variants(index), expires)
            return _Listing(real, expires) if self.listing else None
        if st is not None:
            if slash or not stat_module.S_ISREG(st.st_mode):
                return None
            return _File(real, self._variants(real), expires)
        if self.clean_urls and names and not slash and not names[-1].endswith(".html"):
            page = self._regular_file(os.path.join(root, *names[:-1], names[-1] + ".html"))
            if page is not None:
                return _File(page, self._variants(page), expires)
        return None

    def _absent(self, names: list[str], slash: bool) -> bool:
        """True when the cached listings show that nothing under the root answers ``names``:
        a segment is missing from its directory (the last one with its ``.html`` too, when
        ``clean_urls`` would try it). False means "resolve it the full way"."""
        directory = self.root
        last = len(names) - 1
        now = time.monotonic()
        for i, name in enumerate(names):
            listing = self._listings.get(directory)
            if listing is None or listing.expires < now:
                listing = self._list(directory, now)
            found = listing.names
            if found is None:
                return False
            kind = found.get(name)
            if kind is None:
                return not (i == last and self.clean_urls and not slash and name + ".html" in found)
            if not kind:  # a file, a symlink or a special file: the full resolution decides
                return False
            directory = os.path.join(directory, name)
        return False

    def _list(self, directory: str, now: float) -> DirListing:
        """Read ``directory``'s listing into the bounded cache (cleared when it holds too many names)."""
        old = self._listings.pop(directory, None)
        if old is not None and old.names:
            self._listed_names -= len(old.names)
        listing = read_listing(directory, now + self.resolve_ttl, LISTING_NAMES_MAX // 4)
        size = len(listing.names) if listing.names else 0
        if self._listed_names + size > LISTING_NAMES_MAX or len(self._listings) >= 1024:
            self._listings.clear()
            self._listed_names = 0
        self._listings[directory] = listing
        self._listed_names += size
        return listing

    def _regular_file(self, path: str) -> str | None:
        """The real path of ``path`` if it is a regular file inside the root."""
        real = os.path.realpath(path)
        if not self._inside(real):
            return None
        try:
            st = os.stat(real)
        except OSError:
            return None
        return real if stat_module.S_ISREG(st.st_mode) else None

    def _variants(self, real: str) -> tuple[tuple[str, str], ...]:
        if not self.precompressed:
            return ()
        found = []
        for encoding, suffix in _ENCODINGS:
            sibling = self._regular_file(real + suffix)
            if sibling is not None:
                found.append((encoding, sibling))
        return tuple(found)

    # -- files ------------------------------------------------------------------

    def _entry(self, real: str, encoding: str | None, content_path: str, vary: bool) -> FileEntry | None:
        """The fresh ``FileEntry`` of ``real`` (stat every time; rebuilt when the file changed)."""
        try:
            st = os.stat(real)
        except OSError:
            return None
        key = (real, encoding, vary)
        entry = self._entries.get(key)
        if entry is not None and entry.matches(st):
            return entry
        if not stat_module.S_ISREG(st.st_mode):
            return None
        if entry is not None and entry.body is not None:
            self._cached_bytes -= len(entry.body)
        name = os.path.basename(content_path)
        if self.fingerprint is not None and self.fingerprint.search(name):
            cache_control = self.immutable_cache_control
        else:
            cache_control = self.cache_control
        entry = FileEntry(real, st, content_type_for(content_path), encoding, cache_control, vary)
        if 0 < st.st_size <= self.cache_file_max:
            entry.body = self._read_small(real, entry)
        if len(self._entries) >= 4096:
            self._entries.clear()
            self._cached_bytes = 0
        self._entries[key] = entry
        return entry

    def _read_small(self, real: str, entry: FileEntry) -> bytes | None:
        """The bytes of a small file, or None if it changed while read or the cache is full."""
        if self._cached_bytes + entry.size > self.cache_total_max:
            self._evict(entry.size)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            if not entry.matches(os.fstat(fd)):
                return None
            data = os.pread(fd, entry.size + 1, 0)
        finally:
            os.close(fd)
        if len(data) != entry.size:
            return None
        self._cached_bytes += len(data)
        return data

    def _evict(self, needed: int) -> None:
        for key in list(self._entries):
            if self._cached_bytes + needed <= self.cache_total_max:
                return
            entry = self._entries[key]
            if entry.body is not None:
                self._cached_bytes -= len(entry.body)
                entry.body = None

    def _choose_encoding(self, target: _File, accept: str | None) -> tuple[str, str | None]:
        if accept:
            accepted = self._accept_cache.get(accept)
            if accepted is None:
                accepted = accepted_codings(accept)
                if len(self._accept_cache) >= 256:
                    self._accept_cache.clear()
                self._accept_cache[accept] = accepted
            for encoding, real in target.variants:
                if encoding in accepted:
                    return real, encoding
        return target.real, None

    def _file_response(self, request: HTTPRequest, target: _File) -> Response | None:
        headers = request.headers
        if target.variants:
            real, encoding = self._choose_encoding(target, headers.get("accept-encoding"))
            entry = self._entry(real, encoding, target.real, True)
            if entry is None and encoding is not None:
                entry = self._entry(target.real, None, target.real, True)
        else:
            # Inlined freshness check of the entry this URL served last (the common, hot case).
            entry = target.entry
            try:
                st = os.stat(target.real)
            except OSError:
                entry = None
            else:
                if entry is None or st.st_mtime_ns != entry.mtime_ns or st.st_size != entry.size \
                        or st.st_ino != entry.ino:
                    entry = target.entry = self._entry(target.real, None, target.real, False)
        if entry is None:
            self._resolved.pop(request.path, None)
            return None
        if _CONDITIONAL.isdisjoint(headers.by_name):
            return StaticResponse(entry)
        return self._conditional(request, entry)

    def _conditional(self, request: HTTPRequest, entry: FileEntry) -> Response:
        """RFC 9110 13.2.2: preconditions in order, then Range."""
        headers = request.headers
        if_match = headers.get("if-match")
        if if_match is not None:
            if not etag_matches_strong(if_match, entry.etag):
                return _plain(412, entry.validator_headers())
        else:
            since = headers.get("if-unmodified-since")
            if since is not None:
                when = parse_http_date(since)
                if when is not None and entry.mtime > when:
                    return _plain(412, entry.validator_headers())
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None:
            if etag_matches_weak(if_none_match, entry.etag):
                return Response(b"", 304, entry.validator_headers())
        else:
            since = headers.get("if-modified-since")
            if since is not None:
                when = since == entry.last_modified and entry.mtime or parse_http_date(since)
                if when is not None and entry.mtime <= when:
                    return Response(b"", 304, entry.validator_headers())
        range_header = headers.get("range")
        if range_header is None or entry.encoding is not None:
            # Like nginx's gzip_static: a precompressed body goes whole (a range of gzip bytes is
            # useless to a client that decodes, e.g. ``curl -r 0-99 --compressed``).
            return StaticResponse(entry)
        if_range = headers.get("if-range")
        if if_range is not None and not self._if_range_holds(if_range.strip(), entry):
            return StaticResponse(entry)
        return self._range_response(entry, range_header)

    @staticmethod
    def _if_range_holds(value: str, entry: FileEntry) -> bool:
        if value.startswith('"') or value.startswith("W/"):
            return value == entry.etag  # strong comparison: a weak tag never matches
        return value == entry.last_modified or parse_http_date(value) == entry.mtime

    def _range_response(self, entry: FileEntry, range_header: str) -> Response:
        size = entry.size
        ranges = parse_ranges(range_header, size)
        if ranges is None:
            return StaticResponse(entry)
        if not ranges:
            return _plain(416, [("Content-Range", f"bytes */{size}")], b"416 Range Not Satisfiable\n")
        if len(ranges) > 1:
            ranges = coalesce_ranges(ranges)
        if len(ranges) == 1:
            start, end = ranges[0]
            return StaticResponse(entry, 206, start, end - start + 1,
                                  [("Content-Range", f"bytes {start}-{end}/{size}")])
        if len(ranges) > MAX_RANGES:
            return StaticResponse(entry)
        boundary = os.urandom(10).hex()
        parts = []
        total = 0
        for start, end in ranges:
            part_head = (f"\r\n--{boundary}\r\nContent-Type: {entry.content_type}\r\n"
                         f"Content-Range: bytes {start}-{end}/{size}\r\n\r\n").encode("latin-1")
            parts.append((part_head, start, end - start + 1))
            total += len(part_head) + end - start + 1
        closing = f"\r\n--{boundary}--\r\n".encode("latin-1")
        parts.append((closing, 0, 0))
        total += len(closing)
        response = StaticResponse(entry, 206, 0, total)
        items = [(k, v) for k, v in entry.headers if k != "Content-Type"]
        response._headers = MutableHeaders([("Content-Type", f"multipart/byteranges; boundary={boundary}"), *items])
        response.parts = parts
        return response

    # -- listings ---------------------------------------------------------------

    def _listing_response(self, request: HTTPRequest, real: str) -> Response:
        try:
            names = sorted(os.scandir(real), key=lambda e: (not e.is_dir(), e.name))
        except OSError:
            raise NotFound() from None
        shown = request.path if request.path.endswith("/") else request.path + "/"
        rows = []
        if shown != "/" and shown != self.url_prefix + "/":
            rows.append('<li><a href="../">../</a></li>')
        for item in names:
            name = item.name
            if name.startswith(".") and not self._dot_allowed(name):
                continue
            suffix = "/" if item.is_dir() else ""
            rows.append(f'<li><a href="{html.escape(quote(name))}{suffix}">{html.escape(name)}{suffix}</a></li>')
        title = html.escape(f"Index of {shown}")
        page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>\n'
                f"<body><h1>{title}</h1>\n<ul>\n" + "\n".join(rows) + "\n</ul></body></html>\n")
        return Response(page, 200, [("Cache-Control", "no-cache")])
