"""App(compress=True): gzip of str, JSON and streamed bodies (decoded by httpx and by headless
Chromium), and the responses it must leave alone."""
from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
import threading
import zlib
from typing import Any, Iterator

import httpx
import pytest

from microweb import App, Request, Response
from microweb.compression import Compressor, is_compressible
from microweb.http.values import identity_acceptable

PAGE = "<!doctype html><title>t</title>" + "<p>hello compression</p>\n" * 100
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def make_app(**kwargs: Any) -> App:
    app = App(static_folder=None, compress=True, **kwargs)

    @app.get("/page")
    def page(request: Request) -> str:
        return PAGE

    @app.get("/small")
    def small(request: Request) -> str:
        return "tiny"

    @app.get("/data")
    def data(request: Request) -> Any:
        return {"items": list(range(400))}

    @app.get("/image")
    def image(request: Request) -> Response:
        return Response(PNG, content_type="image/png")

    @app.get("/range")
    def ranged(request: Request) -> Response:
        return Response(PAGE[:600], 206, {"Content-Range": f"bytes 0-599/{len(PAGE)}"})

    @app.get("/encoded")
    def encoded(request: Request) -> Response:
        return Response(gzip.compress(PAGE.encode()), headers={"Content-Encoding": "gzip"}, content_type="text/html")

    @app.get("/etag")
    def etag(request: Request) -> Response:
        return Response(PAGE, headers={"ETag": '"v1"', "Vary": "Cookie"})

    @app.get("/stream")
    def stream(request: Request) -> Iterator[str]:
        return (f"line {i}\n" for i in range(50))

    return app


def test_str_and_json_are_gzipped() -> None:
    client = make_app().test_client()
    r = client.get("/page", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert r.text == PAGE  # httpx decoded it
    assert int(r.headers["content-length"]) < len(PAGE) // 5
    r = client.get("/data", headers={"Accept-Encoding": "br, gzip;q=0.5"})
    assert r.headers["content-encoding"] == "gzip" and r.json() == {"items": list(range(400))}
    # Without Accept-Encoding: identity, but still Vary (a cache must not serve it to a gzip client).
    r = client.get("/page", headers={"Accept-Encoding": ""})
    assert "content-encoding" not in r.headers and r.headers["vary"] == "Accept-Encoding"
    assert int(r.headers["content-length"]) == len(PAGE.encode())


def test_stream_is_gzipped() -> None:
    client = make_app().test_client()
    with client.stream("GET", "/stream", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip" and r.headers["transfer-encoding"] == "chunked"
        assert r.read().decode() == "".join(f"line {i}\n" for i in range(50))


@pytest.mark.parametrize("path, headers", [
    ("/small", {"Accept-Encoding": "gzip"}),                      # under compress_min_size
    ("/image", {"Accept-Encoding": "gzip"}),                      # not a text type
    ("/range", {"Accept-Encoding": "gzip"}),                      # a 206 with Content-Range
    ("/page", {"Accept-Encoding": "identity;q=0"}),               # gzip not listed: nothing better to send
    ("/page", {"Accept-Encoding": "gzip;q=0, identity"}),         # gzip refused
    ("/page", {"Accept-Encoding": "*;q=0, identity"}),
    ("/page", {"Accept-Encoding": "br"}),
])
def test_left_alone(path: str, headers: dict[str, str]) -> None:
    r = make_app().test_client().get(path, headers=headers)
    assert "content-encoding" not in r.headers
    assert r.status_code in (200, 206)


def test_head_and_existing_encoding_left_alone() -> None:
    client = make_app().test_client()
    r = client.head("/page", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers and int(r.headers["content-length"]) == len(PAGE.encode())
    r = client.get("/encoded", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.text == PAGE  # not gzipped twice
    assert "vary" not in r.headers


def test_identity_refused_compresses_even_small_bodies() -> None:
    r = make_app().test_client().get("/small", headers={"Accept-Encoding": "gzip, identity;q=0"})
    assert r.headers["content-encoding"] == "gzip" and r.text == "tiny"


def test_etag_becomes_weak_and_vary_is_merged() -> None:
    r = make_app().test_client().get("/etag", headers={"Accept-Encoding": "gzip"})
    assert r.headers["etag"] == 'W/"v1"' and r.headers["vary"] == "Cookie, Accept-Encoding"


def test_off_by_default_and_min_size() -> None:
    app = App(static_folder=None)
    app.get("/page")(lambda request: PAGE)
    r = app.test_client().get("/page", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers and "vary" not in r.headers
    app.compress = True
    assert app.test_client().get("/page", headers={"Accept-Encoding": "gzip"}).headers["content-encoding"] == "gzip"
    small = make_app(compress_min_size=10)
    r = small.test_client().get("/small", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers  # 4 bytes < 10
    r = make_app(compress_min_size=4).test_client().get("/small", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    with pytest.raises(ValueError):
        Compressor(min_size=-1)


def test_helpers() -> None:
    assert is_compressible("text/html; charset=utf-8") and is_compressible("application/problem+json")
    assert is_compressible("image/svg+xml") and is_compressible("application/javascript")
    assert not is_compressible("image/png") and not is_compressible("application/octet-stream")
    assert identity_acceptable("") and identity_acceptable("gzip") and identity_acceptable("*;q=0, identity")
    assert not identity_acceptable("identity;q=0") and not identity_acceptable("gzip, *;q=0")


def test_stream_flushes_each_piece_live(live_server: Any) -> None:
    """Each piece can be decoded as soon as it arrives: the generator waits until the client has
    decoded the first one (it would wait in vain if the server held it in the compressor)."""
    app = App(static_folder=None, compress=True)
    decoded_first = threading.Event()

    @app.get("/events")
    def events(request: Request) -> Response:
        def gen() -> Iterator[str]:
            yield "data: first\n\n"
            decoded_first.wait(10)  # bounded; blocks the server thread only in this test
            yield "data: second\n\n"
        return Response(gen(), content_type="text/event-stream")

    server = live_server(app)
    inflater = zlib.decompressobj(31)
    text = ""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        with client.stream("GET", "/events", headers={"Accept-Encoding": "gzip"}) as r:
            assert r.headers["content-encoding"] == "gzip"
            for raw in r.iter_raw():
                text += inflater.decompress(raw).decode()
                if text == "data: first\n\n":
                    decoded_first.set()
            assert decoded_first.is_set()
    assert text == "data: first\n\ndata: second\n\n"


def test_live_httpx(live_server: Any) -> None:
    server = live_server(make_app())
    with httpx.Client(base_url=server.url) as client:  # httpx sends Accept-Encoding: gzip, deflate (, br, zstd)
        r = client.get("/page")
        assert r.headers["content-encoding"] == "gzip" and r.text == PAGE
        r = client.get("/data")
        assert r.headers["content-encoding"] == "gzip" and len(r.json()["items"]) == 400
        r = client.get("/stream")
        assert r.headers["content-encoding"] == "gzip" and r.text.count("\n") == 50


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

BROWSER_PAGE = """<!doctype html><html><head><title>gzip</title></head><body>
<p id="out">pending</p>
<script>
// The page itself, a JSON body and a stream all arrive gzipped; the browser decodes them.
Promise.all([fetch('/data').then(r => r.json()), fetch('/stream').then(r => r.text())]).then(([d, s]) => {
  const ok = d.items.length === 400 && d.items[399] === 399 && s.split('\\n').length === 51
             && s.startsWith('line 0\\n') && s.endsWith('line 49\\n');
  document.getElementById('out').textContent = ok ? 'decoded-ok' : 'decoded-wrong ' + s.length;
}, e => { document.getElementById('out').textContent = 'failed ' + e; });
</script>
""" + "<!-- padding so the page itself is compressed -->\n" * 30 + "</body></html>"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian chromium package (headless browser)")
def test_chromium_decodes_gzip(live_server: Any) -> None:
    app = make_app()
    app.get("/browser")(lambda request: BROWSER_PAGE)
    sent: list[bytes] = []

    def handle(request: Request) -> Any:
        out = app.handle(request)
        head = out if isinstance(out, bytes) else out.head
        sent.append(head.split(b"\r\n\r\n", 1)[0].lower())
        return out

    server = live_server(handle)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", "--dump-dom", f"{server.url}/browser"],
            capture_output=True, text=True, timeout=90)
    assert '<p id="out">decoded-ok</p>' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    gzipped = [h for h in sent if b"content-encoding: gzip" in h]
    assert len(gzipped) >= 3, sent  # the page, /data and /stream went out compressed
