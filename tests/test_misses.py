"""Issue 16: cheap 404s and 405s. Static misses answered from directory listings (a file created
later is seen within ``resolve_ttl``; a flood of distinct names keeps memory bounded) and the
package's error pages rendered once (custom templates, context processors, debug mode and error
handlers behave exactly as before). Live server on loopback where it matters."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from microweb import App, abort
from microweb.static import LISTING_NAMES_MAX, StaticFiles, read_listing


def _site(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "docs" / "deep").mkdir(parents=True)
    (static / "docs" / "deep" / "page.txt").write_text("deep page")
    (static / "about.html").write_text("about")
    (static / "hello.txt").write_text("hello")
    return static


def _app(static: Path, ttl: float = 1.0) -> App:
    app = App(template_folder=None, static_folder=static)
    app.static = StaticFiles(static, resolve_ttl=ttl)

    @app.route("/only-get")
    def only_get(request: Any) -> str:
        return "got"

    return app


def test_a_file_created_after_a_miss_is_served_within_the_ttl(tmp_path: Path, live_server: Any) -> None:
    static = _site(tmp_path)
    server = live_server(_app(static, ttl=1.0))
    with httpx.Client(base_url=server.url) as c:
        for path in ("/later.txt", "/docs/later.txt", "/docs/deep/later.txt", "/newdir/later.txt", "/later"):
            assert c.get(path).status_code == 404
        written = time.monotonic()
        (static / "later.txt").write_text("now here")
        (static / "docs" / "later.txt").write_text("docs here")
        (static / "docs" / "deep" / "later.txt").write_text("deep here")
        (static / "newdir").mkdir()
        (static / "newdir" / "later.txt").write_text("new dir here")
        (static / "later.html").write_text("clean url here")
        expected = {"/later.txt": "now here", "/docs/later.txt": "docs here", "/docs/deep/later.txt": "deep here",
                    "/newdir/later.txt": "new dir here", "/later": "clean url here"}
        seen: dict[str, float] = {}
        while len(seen) < len(expected) and time.monotonic() - written < 5:
            for path, text in expected.items():
                if path not in seen:
                    r = c.get(path)
                    if r.status_code == 200:
                        assert r.text == text
                        seen[path] = time.monotonic() - written
            time.sleep(0.05)
    assert set(seen) == set(expected)
    assert max(seen.values()) < 1.0 + 0.5  # the TTL, plus scheduling slack on a loaded machine


def test_existing_files_are_unaffected_by_the_listing_shortcut(tmp_path: Path) -> None:
    static = _site(tmp_path)
    c = _app(static).test_client()
    for _ in range(2):  # cold, then with the listings cached
        assert c.get("/hello.txt").text == "hello"
        assert c.get("/about").text == "about"
        assert c.get("/docs/deep/page.txt").text == "deep page"
        assert c.get("/docs", follow_redirects=False).status_code == 301
        assert c.get("/hello.txt/").status_code == 404
        assert c.get("/docs/nope").status_code == 404
        assert c.get("/docs/deep/page.txt/more").status_code == 404
    assert c.post("/hello.txt").status_code == 405  # a static path: Allow GET, HEAD


def test_deleted_file_goes_at_once_and_a_symlinked_dir_takes_the_full_resolution(tmp_path: Path) -> None:
    static = _site(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    other = tmp_path / "other"
    other.mkdir()
    (other / "shared.txt").write_text("shared")
    os.symlink(other, static / "linked")
    os.symlink(outside / "secret.txt", static / "escape.txt")
    app = _app(static, ttl=60)
    c = app.test_client()
    assert c.get("/linked/shared.txt").status_code == 404  # resolves outside the root: refused as before
    assert c.get("/escape.txt").status_code == 404
    assert c.get("/hello.txt").status_code == 200
    (static / "hello.txt").unlink()
    assert c.get("/hello.txt").status_code == 404  # the listing still names it; the full path decides
    os.symlink(static / "docs", static / "docs-link")
    time.sleep(0)  # the root's listing is stale (ttl 60): the new name is not known yet
    assert c.get("/docs-link/deep/page.txt").status_code == 404
    app.static = StaticFiles(static, resolve_ttl=60)
    assert c.get("/docs-link/deep/page.txt").text == "deep page"  # a symlink inside the root: full resolution


def test_a_flood_of_distinct_missing_paths_keeps_memory_bounded(tmp_path: Path) -> None:
    static = _site(tmp_path)
    app = _app(static)
    c = app.test_client()
    for i in range(3000):
        assert c.get(f"/scan/{i}/wp-login.php" if i % 2 else f"/docs/x{i}.php").status_code == 404
    files = app.static
    assert len(files._resolved) == 0  # misses are not remembered per path
    assert set(files._listings) <= {str(static), str(static / "docs")}
    assert files._listed_names <= LISTING_NAMES_MAX


def test_a_directory_too_big_to_list_takes_the_full_resolution(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(20):
        (folder / f"f{i}").write_text("x")
    assert read_listing(str(folder), 0.0, 10).names is None
    assert read_listing(str(folder), 0.0, 100).names == {f"f{i}": False for i in range(20)}
    assert read_listing(str(tmp_path / "missing"), 0.0, 100).names == {}
    assert read_listing(str(folder / "f1"), 0.0, 100).names == {}  # a file where a folder would be


def test_a_missing_static_folder_appears_within_the_ttl(tmp_path: Path) -> None:
    static = tmp_path / "static"
    app = App(template_folder=None, static_folder=static)
    app.static = StaticFiles(static, resolve_ttl=0.2)
    c = app.test_client()
    assert c.get("/a.txt").status_code == 404
    static.mkdir()
    (static / "a.txt").write_text("a")
    deadline = time.monotonic() + 3
    while c.get("/a.txt").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_resolve_ttl_zero_sees_new_files_at_once(tmp_path: Path) -> None:
    static = _site(tmp_path)
    c = _app(static, ttl=0).test_client()
    assert c.get("/fresh.txt").status_code == 404
    (static / "fresh.txt").write_text("fresh")
    assert c.get("/fresh.txt").text == "fresh"


# -- error pages ------------------------------------------------------------------


def _fresh_render(status: int, description: str | None = None) -> bytes:
    """The page as the package's templates render it, with no cache in the way."""
    app = App(template_folder=None, static_folder=None)
    context = {"status": status, "error": {404: "Not Found", 405: "Method Not Allowed"}[status],
               "description": description, "traceback": None}
    return app.templates.env.select_template([f"{status}.html", "error.html"]).render(context).encode()


def test_default_error_pages_are_rendered_once_and_stay_identical(tmp_path: Path) -> None:
    static = _site(tmp_path)
    app = _app(static)

    @app.route("/gone/<int:n>")
    def gone(request: Any, n: int) -> str:
        abort(404, "<b>item</b>" if n % 2 else None)

    c = app.test_client()
    for i in range(5):
        r = c.get(f"/missing-{i}")
        assert r.status_code == 404 and r.content == _fresh_render(404)
        r = c.post("/only-get")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS" and r.content == _fresh_render(405)
        r = c.get(f"/gone/{i}")
        assert r.content == _fresh_render(404, "<b>item</b>" if i % 2 else None)
        assert "&lt;b&gt;item&lt;/b&gt;" in r.text or i % 2 == 0
        assert c.head(f"/missing-{i}").content == b""
    assert set(app._error_pages) == {(404, None), (405, None), (404, "<b>item</b>")}


def test_a_custom_page_with_the_path_is_rendered_once_and_filled_in_escaped(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "base.html").write_text("<title>{% block title %}{% endblock %}</title><h1>{{ self.title() }}</h1>"
                                         "{% block content %}{% endblock %}")
    (templates / "404.html").write_text('{% extends "base.html" %}{% block title %}Not here{% endblock %}'
                                        "{% block content %}<p>{{ path }} ({{ request.method }})"
                                        "{% if description %} {{ description|upper }}{% endif %}"
                                        "{% for i in [1, 2] %}{{ request.path }}{{ loop.index }}{% endfor %}"
                                        "</p>{% endblock %}")
    app = App(template_folder=templates, static_folder=None)
    c = app.test_client()
    for path, shown in (("/a%3Cb%3E%26'\"", "/a&lt;b&gt;&amp;&#39;&#34;"), ("/other", "/other"), ("/%ff", "/\\udcff")):
        r = c.get(path)
        assert r.status_code == 404
        assert r.text == (f"<title>Not here</title><h1>Not here</h1><p>{shown} (GET){shown}1{shown}2</p>")
        assert c.delete(path).text.endswith(f"<p>{shown} (DELETE){shown}1{shown}2</p>")
    shape = app._error_pages[(404, None)][1]
    assert shape is not None and len(shape.slots) == 4


@pytest.mark.parametrize("body", [
    "{{ request.headers.get('user-agent') }}",
    "{{ url_for('x') }}",
    "{{ path|upper }}",
    "{% if path == '/secret' %}secret{% endif %}",
    "{% set p = path %}{{ p }}",
    "{% filter upper %}{{ path }}{% endfilter %}",
    "{% autoescape false %}{{ path }}{% endautoescape %}",
    "{{ range(3)|list }} {{ path }}",
    "{% include request.method ~ '.html' ignore missing %}",
    "{{ session.get('user') }}",
    "{{ csrf_token() }}",
])
def test_pages_that_may_depend_on_more_render_every_time(tmp_path: Path, body: str) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "404.html").write_text("page: " + body)
    app = App(template_folder=templates, static_folder=None)
    app.add_route("/x", lambda r: "x", name="x")
    fresh = App(template_folder=templates, static_folder=None)
    fresh.add_route("/x", lambda r: "x", name="x")
    c = app.test_client()
    headers = {"user-agent": "agent-1"}
    for i in range(3):
        path = "/secret" if i == 1 else f"/n{i}"
        assert c.get(path, headers=headers).text == fresh.test_client().get(path, headers=headers).text
    assert app._error_pages.get((404, None), (None, None))[1] is None


def test_a_random_page_stays_random(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "404.html").write_text("{{ range(1000)|random }}")
    app = App(template_folder=templates, static_folder=None)
    c = app.test_client()
    assert len({c.get("/a").text for _ in range(20)}) > 1
    assert app._error_pages.get((404, None), (None, None))[1] is None


def test_custom_filter_overriding_a_builtin_name_renders_every_time(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "404.html").write_text("{{ status|string }} {{ path }}")
    app = App(template_folder=templates, static_folder=None)
    counter = iter(range(100))
    app.add_template_filter(lambda value: f"{value}-{next(counter)}", "string")
    c = app.test_client()
    assert c.get("/a").text == "404-0 /a"
    assert c.get("/a").text == "404-1 /a"


def test_an_overridden_error_html_still_shapes_the_package_pages(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "error.html").write_text("E {{ status }} {{ request.path }}")
    app = App(template_folder=templates, static_folder=None)
    c = app.test_client()
    assert c.get("/one").text == "E 404 /one"  # the package's 404.html extends the app's error.html
    assert c.get("/two").text == "E 404 /two"
    assert c.get("/one").text == "E 404 /one"


def test_context_processors_debug_mode_and_errorhandlers_bypass_the_cache(tmp_path: Path) -> None:
    app = App(template_folder=None, static_folder=None)
    calls: list[str] = []

    @app.context_processor
    def processor(request: Any) -> dict[str, Any]:
        calls.append(request.path)
        return {}

    c = app.test_client()
    c.get("/a")
    c.get("/b")
    assert calls == ["/a", "/b"] and app._error_pages == {}

    plain = App(template_folder=None, static_folder=None, debug=True)
    plain.test_client().get("/a")
    assert plain._error_pages == {}

    handled = App(template_folder=None, static_folder=None)
    handled.errorhandler(404)(lambda request, exc: (f"mine {request.path}", 404))
    assert handled.test_client().get("/x").text == "mine /x"


def test_a_new_template_folder_invalidates_the_cached_pages(tmp_path: Path) -> None:
    from microweb import Blueprint

    app = App(template_folder=None, static_folder=None)
    c = app.test_client()
    assert c.get("/a").content == _fresh_render(404)
    folder = tmp_path / "bp-templates"
    folder.mkdir()
    (folder / "404.html").write_text("blueprint 404")
    app.register_blueprint(Blueprint("bp", template_folder=str(folder)))
    assert c.get("/a").text == "blueprint 404"


@pytest.mark.parametrize("count", [200])
def test_a_404_flood_over_one_keep_alive_connection(tmp_path: Path, live_server: Any, count: int) -> None:
    static = _site(tmp_path)
    server = live_server(_app(static))
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        batch = b"".join(b"GET /probe-%d.php HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(count))
        sock.sendall(batch)
        received = b""
        deadline = time.monotonic() + 10
        while received.count(b"HTTP/1.1 404 ") < count and time.monotonic() < deadline:
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 404 Not Found\r\n") == count
    assert received.count(b"<h1>404 Not Found</h1>") == count
