"""The static-folder fallback against a live server: resolution, safety, HTTP semantics, sending."""
from __future__ import annotations

import gzip
import os
import re
import socket
import struct
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import LiveServer, read_response, recv_until_closed
from microweb import App
from microweb.http.values import parse_ranges
from microweb.static import StaticFiles

BIG = 300_000  # above the in-memory cache limit: goes out with sendfile
SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT"


def make_site(base: Path) -> Path:
    """A static folder with every kind of file the tests need, plus a secret outside it."""
    static = base / "static"
    (static / "css").mkdir(parents=True)
    (static / "sub").mkdir()
    (static / "docs").mkdir()
    (static / ".git").mkdir()
    (static / ".well-known").mkdir()
    (static / "about.html").write_text("<h1>About</h1>")
    (static / "index.html").write_text("<h1>Home</h1>")
    (static / "sub" / "index.html").write_text("<h1>Sub</h1>")
    (static / "docs" / "a.txt").write_text("a")
    (static / "css" / "site.css").write_text("body { color: red }")
    (static / "app.3f2a9c1b.js").write_text("console.log(1)")
    (static / "module.mjs").write_text("export default 1")
    (static / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (static / "prog.wasm").write_bytes(b"\0asm\1\0\0\0")
    (static / "photo.webp").write_bytes(b"RIFF\0\0\0\0WEBP")
    (static / "font.woff2").write_bytes(b"wOF2")
    (static / "data.json").write_text("{}")
    (static / "notes.txt").write_text("plain text")
    (static / "archive.tar.gz").write_bytes(gzip.compress(b"tar"))
    (static / "blob.unknownext").write_bytes(b"?")
    (static / "empty.txt").write_bytes(b"")
    (static / ".env").write_text("PASSWORD=1")
    (static / ".git" / "config").write_text("[core]")
    (static / ".well-known" / "security.txt").write_text("Contact: x")
    (static / "small.txt").write_bytes(bytes(range(256)) * 4)
    big = os.urandom(BIG)
    (static / "big.bin").write_bytes(big)
    text = b"".join(b"line %d\n" % i for i in range(20000))
    (static / "page.txt").write_bytes(text)
    (static / "page.txt.gz").write_bytes(gzip.compress(text))
    (static / "both.txt").write_bytes(text)
    (static / "both.txt.gz").write_bytes(gzip.compress(text))
    (static / "both.txt.br").write_bytes(b"pretend-brotli")
    (base / "secret.txt").write_bytes(SECRET)
    (static / "link-out").symlink_to(base / "secret.txt")
    (static / "dir-out").symlink_to(base)
    (static / "link-in").symlink_to(static / "css" / "site.css")
    (static / "link-git").symlink_to(static / ".git")
    templates = base / "templates"
    templates.mkdir()
    (templates / "404.html").write_text("custom 404 for {{ path }} via {{ request.method }}")
    return static


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    base = tmp_path_factory.mktemp("site")
    static = make_site(base)
    app = App(template_folder=base / "templates", static_folder=static)

    @app.get("/css/site.css")
    def shadow(request: Any) -> str:
        return "from the route"

    server = LiveServer(app.handle)
    yield server, static
    server.stop()


@pytest.fixture
def client(site: tuple[LiveServer, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site[0].url) as c:
        yield c


def raw(server: LiveServer, target: str, headers: str = "", method: str = "GET") -> tuple[bytes, bytes]:
    """One request with the target sent byte for byte (httpx would normalize it)."""
    with server.connect() as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode("latin-1"))
        if method == "HEAD":
            sock.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            return data.partition(b"\r\n\r\n")[0], data.partition(b"\r\n\r\n")[2]
        return read_response(sock)


def status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def header(head: bytes, name: str) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.decode().lower() == name.lower():
            return value.strip().decode("latin-1")
    return None


# -- the fallback ---------------------------------------------------------------


def test_index_and_directories(client: httpx.Client) -> None:
    assert client.get("/").text == "<h1>Home</h1>"
    assert client.get("/sub/").text == "<h1>Sub</h1>"
    r = client.get("/sub")
    assert r.status_code == 301 and r.headers["location"] == "/sub/"
    r = client.get("/sub?x=1&y=%20")
    assert r.status_code == 301 and r.headers["location"] == "/sub/?x=1&y=%20"
    assert client.get("/docs/").status_code == 404  # no index.html, no listing
    assert client.get("/notes.txt/").status_code == 404


def test_clean_urls(client: httpx.Client) -> None:
    r = client.get("/about")
    assert r.status_code == 200 and r.text == "<h1>About</h1>"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert client.get("/about.html").text == "<h1>About</h1>"
    assert client.get("/about/").status_code == 404


def test_routes_win(client: httpx.Client) -> None:
    assert client.get("/css/site.css").text == "from the route"


def test_404_page_from_the_app_template(client: httpx.Client) -> None:
    r = client.get("/no/such/page")
    assert r.status_code == 404
    assert r.text == "custom 404 for /no/such/page via GET"


def test_404_page_falls_back_to_the_package_template(tmp_path: Path, live_server: Any) -> None:
    (tmp_path / "static").mkdir()
    server = live_server(App(template_folder=None, static_folder=tmp_path / "static"))
    r = httpx.get(server.url + "/missing")
    assert r.status_code == 404 and "<h1>404 Not Found</h1>" in r.text


def test_other_methods_on_a_static_path_get_405(site: tuple[LiveServer, Path], client: httpx.Client) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = client.request(method, "/notes.txt")
        assert r.status_code == 405, method
        assert r.headers["allow"] == "GET, HEAD"
    assert client.post("/about").status_code == 405
    assert client.post("/no-such-file").status_code == 404
    assert client.post("/.env").status_code == 404


def test_static_folder_none_turns_it_off(tmp_path: Path, live_server: Any) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.txt").write_text("a")
    server = live_server(App(static_folder=None))
    assert httpx.get(server.url + "/a.txt").status_code == 404


def test_static_url_path_mounts_under_a_prefix(tmp_path: Path, live_server: Any) -> None:
    (tmp_path / "static" / "css").mkdir(parents=True)
    (tmp_path / "static" / "css" / "a.css").write_text("a{}")
    (tmp_path / "static" / "index.html").write_text("idx")
    server = live_server(App(static_folder=tmp_path / "static", static_url_path="/assets"))
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/assets/css/a.css").text == "a{}"
        assert c.get("/css/a.css").status_code == 404
        r = c.get("/assets")
        assert r.status_code == 301 and r.headers["location"] == "/assets/"
        assert c.get("/assets/").text == "idx"
        assert c.get("/assetsx/css/a.css").status_code == 404


# -- headers --------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("app.3f2a9c1b.js", "text/javascript; charset=utf-8"),
    ("module.mjs", "text/javascript; charset=utf-8"),
    ("about.html", "text/html; charset=utf-8"),
    ("notes.txt", "text/plain; charset=utf-8"),
    ("logo.svg", "image/svg+xml; charset=utf-8"),
    ("data.json", "application/json; charset=utf-8"),
    ("prog.wasm", "application/wasm"),
    ("photo.webp", "image/webp"),
    ("font.woff2", "font/woff2"),
    ("archive.tar.gz", "application/gzip"),
    ("blob.unknownext", "application/octet-stream"),
])
def test_content_type(client: httpx.Client, name: str, expected: str) -> None:
    assert client.get("/" + name).headers["content-type"] == expected


def test_css_content_type(tmp_path: Path, live_server: Any) -> None:
    (tmp_path / "s.css").write_text("a{}")
    server = live_server(App(static_folder=tmp_path))
    assert httpx.get(server.url + "/s.css").headers["content-type"] == "text/css; charset=utf-8"


def test_validators_and_length(site: tuple[LiveServer, Path], client: httpx.Client) -> None:
    for name in ("small.txt", "big.bin", "empty.txt"):
        path = site[1] / name
        r = client.get("/" + name)
        assert r.status_code == 200
        assert r.content == path.read_bytes()
        assert r.headers["content-length"] == str(path.stat().st_size)
        assert r.headers["last-modified"] == formatdate(int(path.stat().st_mtime), usegmt=True)
        assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', r.headers["etag"])
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["cache-control"] == "no-cache"
    assert client.get("/small.txt").headers["etag"] != client.get("/big.bin").headers["etag"]


def test_head_has_the_same_headers_and_no_body(site: tuple[LiveServer, Path]) -> None:
    server = site[0]
    for target in ("/small.txt", "/big.bin", "/page.txt"):
        get_head, body = raw(server, target)
        assert body
        with server.connect() as sock:
            sock.sendall(f"HEAD {target} HTTP/1.1\r\nHost: x\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                         .encode())
            data = b""
            sock.settimeout(5)
            while not data.endswith(b"plain text"):
                data += sock.recv(65536)
        # HEAD: Content-Length says the GET's size, yet the next response starts right after the head.
        head, _, data = data.partition(b"\r\n\r\n")
        strip = lambda h: [line for line in h.split(b"\r\n") if not line.startswith(b"Date:")]  # noqa: E731
        assert strip(head) == strip(get_head)
        assert data.startswith(b"HTTP/1.1 200")  # the next response starts right after the HEAD's head


def test_cache_control_for_fingerprinted_names(client: httpx.Client) -> None:
    assert client.get("/app.3f2a9c1b.js").headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/module.mjs").headers["cache-control"] == "no-cache"


def test_cache_control_is_configurable(tmp_path: Path, live_server: Any) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.0123abcd.css").write_text("b")
    app = App(static_folder=tmp_path)
    app.static = StaticFiles(tmp_path, cache_control="public, max-age=60", immutable_cache_control=None)
    server = live_server(app)
    assert httpx.get(server.url + "/a.txt").headers["cache-control"] == "public, max-age=60"
    assert "cache-control" not in httpx.get(server.url + "/b.0123abcd.css").headers


# -- conditional requests -------------------------------------------------------


def test_if_none_match(client: httpx.Client) -> None:
    first = client.get("/small.txt")
    etag = first.headers["etag"]
    for value in (etag, f'"nope", {etag}', "*", "W/" + etag, f'"x",W/{etag}'):
        r = client.get("/small.txt", headers={"If-None-Match": value})
        assert r.status_code == 304, value
        assert r.content == b""
        assert r.headers["etag"] == etag
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["last-modified"] == first.headers["last-modified"]
        assert "content-length" not in r.headers
    assert client.get("/small.txt", headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get("/big.bin", headers={"If-None-Match": etag}).status_code == 200


def test_if_modified_since(client: httpx.Client) -> None:
    r = client.get("/notes.txt")
    last = r.headers["last-modified"]
    assert client.get("/notes.txt", headers={"If-Modified-Since": last}).status_code == 304
    later = formatdate(time.time() + 3600, usegmt=True)
    assert client.get("/notes.txt", headers={"If-Modified-Since": later}).status_code == 304
    assert client.get("/notes.txt", headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}).status_code == 200
    assert client.get("/notes.txt", headers={"If-Modified-Since": "garbage"}).status_code == 200
    # If-None-Match wins over If-Modified-Since.
    r = client.get("/notes.txt", headers={"If-Modified-Since": last, "If-None-Match": '"other"'})
    assert r.status_code == 200


def test_if_match_and_if_unmodified_since(client: httpx.Client) -> None:
    etag = client.get("/notes.txt").headers["etag"]
    assert client.get("/notes.txt", headers={"If-Match": etag}).status_code == 200
    assert client.get("/notes.txt", headers={"If-Match": '"other"'}).status_code == 412
    assert client.get("/notes.txt", headers={"If-Match": "W/" + etag}).status_code == 412  # strong comparison
    old = "Thu, 01 Jan 1970 00:00:00 GMT"
    assert client.get("/notes.txt", headers={"If-Unmodified-Since": old}).status_code == 412


# -- ranges ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["small.txt", "big.bin"])
@pytest.mark.parametrize("spec, start, end", [
    ("bytes=0-99", 0, 99), ("bytes=0-0", 0, 0), ("bytes=-10", -10, -1), ("bytes=100-", 100, -1),
    ("bytes=5-5000000", 5, -1), ("bytes=-99999999", 0, -1),
])
def test_single_ranges(site: tuple[LiveServer, Path], client: httpx.Client, name: str, spec: str, start: int,
                       end: int) -> None:
    data = (site[1] / name).read_bytes()
    size = len(data)
    first = start % size
    last = end % size
    r = client.get("/" + name, headers={"Range": spec})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert r.content == data[first:last + 1]
    assert r.headers["content-length"] == str(last - first + 1)
    assert r.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("spec", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range(client: httpx.Client, spec: str) -> None:
    r = client.get("/small.txt", headers={"Range": spec})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */1024"


@pytest.mark.parametrize("spec", ["items=0-1", "bytes=abc", "bytes=5-1", "bytes", "bytes=--1"])
def test_invalid_range_is_ignored(client: httpx.Client, spec: str) -> None:
    r = client.get("/small.txt", headers={"Range": spec})
    assert r.status_code == 200 and len(r.content) == 1024


def test_multiple_ranges_are_multipart(site: tuple[LiveServer, Path], client: httpx.Client) -> None:
    for name in ("small.txt", "big.bin"):
        data = (site[1] / name).read_bytes()
        r = client.get("/" + name, headers={"Range": "bytes=0-9, 20-29, -5"})
        assert r.status_code == 206
        ctype = r.headers["content-type"]
        assert ctype.startswith("multipart/byteranges; boundary=")
        boundary = ctype.split("boundary=")[1].encode()
        assert r.headers["content-length"] == str(len(r.content))
        parts = r.content.split(b"--" + boundary)
        assert parts[-1] == b"--\r\n"
        bodies = []
        for part in parts[1:-1]:
            head, _, body = part.partition(b"\r\n\r\n")
            bodies.append((head, body[:-2] if body.endswith(b"\r\n") else body))
        size = len(data)
        assert [b for _, b in bodies] == [data[0:10], data[20:30], data[-5:]]
        assert bodies[2][0].endswith(f"Content-Range: bytes {size - 5}-{size - 1}/{size}".encode())


def test_overlapping_ranges_coalesce_and_many_ranges_get_the_whole_file(client: httpx.Client) -> None:
    r = client.get("/small.txt", headers={"Range": "bytes=0-9,5-19,20-29"})
    assert r.status_code == 206 and r.headers["content-range"] == "bytes 0-29/1024"
    many = ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(40))
    r = client.get("/small.txt", headers={"Range": "bytes=" + many})
    assert r.status_code == 200 and len(r.content) == 1024


def test_if_range(client: httpx.Client) -> None:
    r = client.get("/big.bin")
    etag, last = r.headers["etag"], r.headers["last-modified"]
    assert client.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert client.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": last}).status_code == 206
    assert client.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": '"old"'}).status_code == 200
    assert client.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": "W/" + etag}).status_code == 200
    stale = "Thu, 01 Jan 1970 00:00:00 GMT"
    r = client.get("/big.bin", headers={"Range": "bytes=0-9", "If-Range": stale})
    assert r.status_code == 200 and len(r.content) == BIG


def test_parse_ranges_units() -> None:
    assert parse_ranges("bytes=0-0", 10) == [(0, 0)]
    assert parse_ranges("bytes=-3", 10) == [(7, 9)]
    assert parse_ranges("bytes=8-", 10) == [(8, 9)]
    assert parse_ranges("bytes=10-", 10) == []
    assert parse_ranges("bytes=0-0", 0) == []
    assert parse_ranges("bytes=1-0", 10) is None
    assert parse_ranges("bytes=" + "1-2," * 101, 10) is None
    assert parse_ranges("bytes=99999999999999999999-", 10) is None


# -- precompressed files --------------------------------------------------------


def test_precompressed_gzip(site: tuple[LiveServer, Path]) -> None:
    server, static = site
    head, body = raw(server, "/page.txt", "Accept-Encoding: gzip, deflate\r\n")
    assert status_of(head) == 200
    assert header(head, "content-encoding") == "gzip"
    assert header(head, "vary") == "Accept-Encoding"
    assert header(head, "content-type") == "text/plain; charset=utf-8"
    assert body == (static / "page.txt.gz").read_bytes()
    plain_head, plain = raw(server, "/page.txt")
    assert header(plain_head, "content-encoding") is None
    assert header(plain_head, "vary") == "Accept-Encoding"
    assert plain == (static / "page.txt").read_bytes()
    assert header(plain_head, "etag") != header(head, "etag")
    refused_head, _ = raw(server, "/page.txt", "Accept-Encoding: gzip;q=0, br\r\n")
    assert header(refused_head, "content-encoding") is None
    # the encoded variant has its own validators for 304 and its own ranges
    etag = header(head, "etag")
    assert status_of(raw(server, "/page.txt", f"Accept-Encoding: gzip\r\nIf-None-Match: {etag}\r\n")[0]) == 304
    # as nginx's gzip_static does, a range of a precompressed file gets the whole encoded body
    r_head, r_body = raw(server, "/page.txt", "Accept-Encoding: gzip\r\nRange: bytes=0-1\r\n")
    assert status_of(r_head) == 200 and r_body == (static / "page.txt.gz").read_bytes()
    r_head, r_body = raw(server, "/page.txt", "Range: bytes=0-1\r\n")
    assert status_of(r_head) == 206 and r_body == b"li"


def test_precompressed_brotli_is_preferred(site: tuple[LiveServer, Path]) -> None:
    server, static = site
    head, body = raw(server, "/both.txt", "Accept-Encoding: gzip, deflate, br\r\n")
    assert header(head, "content-encoding") == "br" and body == b"pretend-brotli"
    head, body = raw(server, "/both.txt", "Accept-Encoding: gzip\r\n")
    assert header(head, "content-encoding") == "gzip"
    head, body = raw(server, "/both.txt", "Accept-Encoding: *\r\n")
    assert header(head, "content-encoding") in ("br", "gzip")


# -- safety ---------------------------------------------------------------------

TRAVERSALS = [
    "/../secret.txt", "/../../../../etc/passwd", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/.%2e/secret.txt",
    "/..%2fsecret.txt", "/..%2Fsecret.txt", "/%2e%2e%2fsecret.txt", "/sub/..%2f..%2fsecret.txt",
    "/..%5csecret.txt", "/..\\secret.txt", "/sub\\..\\..\\secret.txt", "/%5c..%5csecret.txt",
    "/%252e%252e/secret.txt", "/%252e%252e%252fsecret.txt", "/%25252e%25252e/secret.txt",
    "/%00", "/index.html%00", "/index.html%00.txt", "/%00/../secret.txt",
    "//secret.txt", "//etc/passwd", "/%2fetc%2fpasswd", "/%2F%2Fetc/passwd",
    "/link-out", "/dir-out/secret.txt", "/dir-out/", "/dir-out",
    "/.env", "/.git/config", "/.git/", "/.git", "/link-git/config", "/%2eenv", "/%2egit/config",
    "/sub/../../secret.txt", "/./index.html", "/sub/./index.html", "/%c0%ae%c0%ae/secret.txt",
    "/%ff%fe/../secret.txt", "/%u002e%u002e/secret.txt", "/..;/secret.txt", "/.../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_table(site: tuple[LiveServer, Path], target: str) -> None:
    head, body = raw(site[0], target)
    assert status_of(head) in (400, 404), target
    assert SECRET not in body and b"PASSWORD" not in body and b"[core]" not in body and b"root:" not in body


def test_absolute_paths_stay_inside(site: tuple[LiveServer, Path], tmp_path: Path) -> None:
    server, static = site
    outside = static.parent / "secret.txt"
    for target in ("/" + str(outside), str(outside), "http://x" + str(outside), "http://x/../secret.txt"):
        head, body = raw(server, target)
        assert status_of(head) in (400, 404), target
        assert SECRET not in body


def test_symlink_inside_the_root_is_served(client: httpx.Client) -> None:
    assert client.get("/link-in").text == "body { color: red }"


def test_well_known_is_served_and_dotfiles_when_configured(tmp_path: Path, live_server: Any,
                                                           client: httpx.Client) -> None:
    assert client.get("/.well-known/security.txt").text == "Contact: x"
    (tmp_path / ".env").write_text("X=1")
    app = App(static_folder=tmp_path)
    app.static = StaticFiles(tmp_path, dotfiles=True)
    server = live_server(app)
    assert httpx.get(server.url + "/.env").text == "X=1"


# -- freshness ------------------------------------------------------------------


def test_a_changed_file_is_never_served_stale(tmp_path: Path, live_server: Any) -> None:
    path = tmp_path / "hot.txt"
    path.write_bytes(b"version-1")
    app = App(static_folder=tmp_path)
    app.static = StaticFiles(tmp_path, resolve_ttl=60)
    server = live_server(app)
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/hot.txt").content == b"version-1"
        st = path.stat()
        path.write_bytes(b"version-2")  # same size; mtime put back: the inode change is not enough here
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        assert c.get("/hot.txt").content == b"version-2"
        # An atomic replace keeping size and mtime (rsync -t style): the inode differs.
        st = path.stat()
        fresh = tmp_path / "hot.tmp"
        fresh.write_bytes(b"version-3")
        os.utime(fresh, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(fresh, path)
        r = c.get("/hot.txt")
        assert r.content == b"version-3"
        path.write_bytes(b"now much longer than before")
        assert c.get("/hot.txt").content == b"now much longer than before"
        path.unlink()
        assert c.get("/hot.txt").status_code == 404


def test_listing_escapes_names(tmp_path: Path, live_server: Any) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "<b>&x.txt").write_text("x")
    (tmp_path / "d" / "sub dir").mkdir()
    (tmp_path / "d" / ".hidden").write_text("h")
    app = App(static_folder=tmp_path)
    app.static = StaticFiles(tmp_path, listing=True)
    server = live_server(app)
    r = httpx.get(server.url + "/d/")
    assert r.status_code == 200
    assert "&lt;b&gt;&amp;x.txt" in r.text and "<b>" not in r.text
    assert 'href="%3Cb%3E%26x.txt"' in r.text
    assert 'href="sub%20dir/"' in r.text
    assert ".hidden" not in r.text
    assert httpx.get(server.url + "/d/%3Cb%3E%26x.txt").text == "x"


# -- sending --------------------------------------------------------------------


def small_window_socket(server: LiveServer) -> socket.socket:
    """A client with a small receive buffer, set before connecting (later would stall TCP's window)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    return sock


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
def test_no_fd_leak_when_clients_abort_mid_download(tmp_path: Path, live_server: Any) -> None:
    with open(tmp_path / "huge.bin", "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: sendfile still has to push 64 MB
    server = live_server(App(static_folder=tmp_path))
    assert httpx.get(server.url + "/small-missing").status_code == 404  # warm the app before counting
    before = open_fds()
    for i in range(8):
        sock = small_window_socket(server)
        rng = "Range: bytes=1000-\r\n" if i % 2 else ""
        sock.sendall(f"GET /huge.bin HTTP/1.1\r\nHost: x\r\n{rng}\r\n".encode())
        got = 0
        while got < 200_000:
            got += len(sock.recv(65536))
        if i % 3 == 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (server.server.connections or open_fds() > before):
        time.sleep(0.05)
    assert not server.server.connections
    assert open_fds() <= before


def test_a_large_download_does_not_stall_other_connections(tmp_path: Path, live_server: Any) -> None:
    data = os.urandom(4 * 1024 * 1024)
    (tmp_path / "large.bin").write_bytes(data)
    (tmp_path / "tiny.txt").write_text("tiny")
    server = live_server(App(static_folder=tmp_path))
    slow = small_window_socket(server)
    slow.sendall(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n")  # and do not read: the server must wait
    time.sleep(0.2)
    started = time.monotonic()
    for _ in range(20):
        assert httpx.get(server.url + "/tiny.txt").text == "tiny"
    assert time.monotonic() - started < 5
    head, body = read_response(slow, timeout=20)  # now read it all: every byte arrives, in order
    slow.close()
    assert status_of(head) == 200 and body == data


def test_range_of_a_large_file_goes_out_whole(tmp_path: Path, live_server: Any) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "large.bin").write_bytes(data)
    server = live_server(App(static_folder=tmp_path))
    r = httpx.get(server.url + "/large.bin", headers={"Range": "bytes=1000001-3000000"})
    assert r.status_code == 206 and r.content == data[1000001:3000001]


def test_plain_read_send_path_when_sendfile_cannot_serve(tmp_path: Path, live_server: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import microweb.server.reactor

    data = os.urandom(1024 * 1024 + 3)
    (tmp_path / "large.bin").write_bytes(data)
    calls = []

    def no_sendfile(*args: Any) -> int:
        calls.append(args)
        raise OSError(errno.EINVAL, "sendfile not supported here")

    monkeypatch.setattr(microweb.server.reactor.os, "sendfile", no_sendfile)
    server = live_server(App(static_folder=tmp_path))
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/large.bin").content == data
        r = c.get("/large.bin", headers={"Range": "bytes=500000-"})
        assert r.status_code == 206 and r.content == data[500000:]
    assert calls  # the reactor did try sendfile first


def test_http10_client_gets_the_file_and_a_close(site: tuple[LiveServer, Path]) -> None:
    server, static = site
    with server.connect() as sock:
        sock.sendall(b"GET /small.txt HTTP/1.0\r\n\r\n")
        head, body = read_response(sock)
    assert status_of(head) == 200 and body == (static / "small.txt").read_bytes()
    assert header(head, "connection") == "close"
    with server.connect() as sock:
        sock.sendall(b"GET /big.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /notes.txt HTTP/1.0\r\n\r\n")
        data = recv_until_closed(sock, timeout=10)  # the second request has no keep-alive: closed after it
    big = (static / "big.bin").read_bytes()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert header(head, "connection") == "keep-alive" and rest[:len(big)] == big
    assert rest[len(big):].startswith(b"HTTP/1.1 200") and rest.endswith(b"\r\n\r\nplain text")


def test_a_precompressed_sibling_added_later_brings_vary(tmp_path: Path, live_server: Any) -> None:
    (tmp_path / "late.txt").write_text("late " * 100)
    app = App(static_folder=tmp_path)
    app.static = StaticFiles(tmp_path, resolve_ttl=0)
    server = live_server(app)
    assert "vary" not in httpx.get(server.url + "/late.txt").headers
    (tmp_path / "late.txt.gz").write_bytes(gzip.compress(b"late " * 100))
    r = httpx.get(server.url + "/late.txt", headers={"Accept-Encoding": "identity"})
    assert r.headers["vary"] == "Accept-Encoding" and "content-encoding" not in r.headers
    r = httpx.get(server.url + "/late.txt", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.text == "late " * 100
