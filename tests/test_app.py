"""App: return values, hooks, error handlers, error pages, debug mode, templates (in memory + live server)."""
from __future__ import annotations

import logging
import os

import httpx
import pytest

from microweb import App, HTTPError, Response, abort, redirect


def test_return_values() -> None:
    app = App(template_folder=None, static_folder=None)
    app.add_route("/str", lambda r: "text", name="str")
    app.add_route("/bytes", lambda r: b"\x00raw", name="bytes")
    app.add_route("/dict", lambda r: {"a": [1, "é"]}, name="dict")
    app.add_route("/list", lambda r: [1, 2], name="list")
    app.add_route("/resp", lambda r: Response(b"x", 201, {"X-A": "1"}, content_type="text/plain"), name="resp")
    app.add_route("/t2", lambda r: ("made", 201), name="t2")
    app.add_route("/t3", lambda r: ({"ok": True}, 202, {"X-B": "2"}), name="t3")
    app.add_route("/th", lambda r: ("with headers", {"X-C": "3"}), name="th")
    app.add_route("/gen", lambda r: (s for s in ["a", b"b", "", "c"]), name="gen")
    app.add_route("/iter", lambda r: iter([b"x", b"y"]), name="iter")
    app.add_route("/empty-gen", lambda r: iter([]), name="empty_gen")
    app.add_route("/none", lambda r: None, name="none")
    app.add_route("/weird", lambda r: 3.5, name="weird")
    app.add_route("/badtuple", lambda r: ("a", 200, {}, 4), name="badtuple")
    c = app.test_client()
    r = c.get("/str")
    assert (r.status_code, r.text, r.headers["content-type"]) == (200, "text", "text/html; charset=utf-8")
    r = c.get("/bytes")
    assert (r.content, r.headers["content-type"]) == (b"\x00raw", "text/html; charset=utf-8")
    r = c.get("/dict")
    assert (r.json(), r.headers["content-type"]) == ({"a": [1, "é"]}, "application/json")
    assert c.get("/list").json() == [1, 2]
    r = c.get("/resp")
    assert (r.status_code, r.text, r.headers["x-a"], r.headers["content-type"]) == (201, "x", "1", "text/plain")
    assert (c.get("/t2").status_code, c.get("/t2").text) == (201, "made")
    r = c.get("/t3")
    assert (r.status_code, r.json(), r.headers["x-b"]) == (202, {"ok": True}, "2")
    r = c.get("/th")
    assert (r.status_code, r.headers["x-c"]) == (200, "3")
    r = c.get("/gen")
    assert r.text == "abc" and r.headers["transfer-encoding"] == "chunked"
    assert c.get("/iter").content == b"xy"
    r = c.get("/empty-gen")
    assert r.content == b"" and r.headers["content-length"] == "0"
    for path in ("/none", "/weird", "/badtuple"):
        assert c.get(path).status_code == 500, path


def test_redirect_and_abort() -> None:
    app = App(template_folder=None, static_folder=None)
    app.add_route("/r", lambda r: redirect("/target"), name="r")
    app.add_route("/r301", lambda r: redirect("/target", 301), name="r301")
    app.add_route("/a", lambda r: abort(403), name="a")
    app.add_route("/ad", lambda r: abort(409, "already there"), name="ad")

    @app.get("/h")
    def with_headers(request):  # type: ignore[no-untyped-def]
        raise HTTPError(401, "log in first", {"WWW-Authenticate": 'Basic realm="x"'})

    c = app.test_client()
    r = c.get("/r")
    assert (r.status_code, r.headers["location"]) == (302, "/target")
    assert c.get("/r301").status_code == 301
    r = c.get("/a")
    assert r.status_code == 403 and "<h1>403 Forbidden</h1>" in r.text
    r = c.get("/ad", headers={"accept": "application/json"})
    assert r.json() == {"status": 409, "error": "Conflict", "description": "already there"}
    r = c.get("/h")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="x"' and "log in first" in r.text
    with pytest.raises(HTTPError) as info:
        abort(404, "gone")
    assert (info.value.status, info.value.description) == (404, "gone")


@pytest.mark.parametrize("accept,json_wanted", [
    ("application/json", True),
    ("text/html,application/json;q=0.9", False),
    ("application/json, text/html;q=0.5", True),
    ("*/*", False),
    ("", False),
    ("application/problem+json", True),
])
def test_error_page_negotiation(accept: str, json_wanted: bool) -> None:
    app = App(template_folder=None, static_folder=None)
    r = app.test_client().get("/missing", headers={"accept": accept})
    assert r.status_code == 404
    if json_wanted:
        assert r.json() == {"status": 404, "error": "Not Found", "description": None}
    else:
        assert r.headers["content-type"].startswith("text/html") and "<h1>404 Not Found</h1>" in r.text


def test_error_pages_from_the_app_template_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "404.html").write_text("custom 404: {{ description }} at {{ request.path }} {{ url_for('home') }}")
    app = App(template_folder=tmp_path, static_folder=None)
    app.add_route("/", lambda r: abort(404, "<nope>"), name="home")
    c = app.test_client()
    r = c.get("/")
    assert r.status_code == 404 and r.text == "custom 404: &lt;nope&gt; at / /"
    r = c.get("/x", headers={"accept": "application/json"})
    assert r.json()["error"] == "Not Found"
    assert "<h1>405 Method Not Allowed</h1>" in c.post("/").text  # package template as fallback


def test_errorhandlers() -> None:
    app = App(template_folder=None, static_folder=None)

    class Oops(Exception):
        pass

    class SubOops(Oops):
        pass

    @app.errorhandler(404)
    def not_found(request, error):  # type: ignore[no-untyped-def]
        return {"missing": request.path, "description": error.description}, 404

    @app.errorhandler(Oops)
    def oops(request, error):  # type: ignore[no-untyped-def]
        return Response(f"oops: {error}", 409)

    @app.errorhandler(405)
    def not_allowed(request, error):  # type: ignore[no-untyped-def]
        return "no such method here", 405

    @app.get("/raise")
    def raiser(request):  # type: ignore[no-untyped-def]
        raise SubOops("sub")

    @app.get("/abort")
    def aborter(request):  # type: ignore[no-untyped-def]
        abort(404, "explicit")

    c = app.test_client()
    assert c.get("/nowhere").json() == {"missing": "/nowhere", "description": None}
    assert c.get("/abort").json() == {"missing": "/abort", "description": "explicit"}
    r = c.get("/raise")
    assert (r.status_code, r.text) == (409, "oops: sub")
    r = c.post("/raise")
    assert (r.status_code, r.text, r.headers["allow"]) == (405, "no such method here", "GET, HEAD, OPTIONS")


def test_500_handler_and_logging(caplog) -> None:  # type: ignore[no-untyped-def]
    app = App(template_folder=None, static_folder=None)

    @app.get("/boom")
    def boom(request):  # type: ignore[no-untyped-def]
        raise KeyError("secret-detail")

    c = app.test_client()
    with caplog.at_level(logging.ERROR, logger="microweb"):
        r = c.get("/boom")
    assert r.status_code == 500 and "<h1>500 Internal Server Error</h1>" in r.text
    assert "secret-detail" not in r.text and "Traceback" not in r.text  # not in production
    assert "Exception on GET /boom" in caplog.text and "secret-detail" in caplog.text

    @app.errorhandler(500)
    def on_500(request, error):  # type: ignore[no-untyped-def]
        return f"custom 500 caused by {type(error.__cause__).__name__}", 500

    assert c.get("/boom").text == "custom 500 caused by KeyError"


def test_debug_shows_the_traceback() -> None:
    app = App(template_folder=None, static_folder=None, debug=True)

    @app.get("/boom")
    def boom(request):  # type: ignore[no-untyped-def]
        raise ValueError("<the detail>")

    r = app.test_client().get("/boom")
    assert r.status_code == 500
    assert "Traceback (most recent call last)" in r.text and "ValueError: &lt;the detail&gt;" in r.text
    assert "in boom" in r.text


def test_hooks() -> None:
    app = App(template_folder=None, static_folder=None)
    calls: list[str] = []

    @app.before_request
    def first(request):  # type: ignore[no-untyped-def]
        calls.append(f"before {request.path}")
        if request.headers.get("x-block"):
            return Response("blocked", 403)
        return None

    @app.after_request
    def add_header(request, response):  # type: ignore[no-untyped-def]
        calls.append(f"after {response.status}")
        response.headers["X-Hooked"] = "yes"
        return response

    app.add_route("/", lambda r: "home", name="root")
    c = app.test_client()
    r = c.get("/")
    assert (r.text, r.headers["x-hooked"]) == ("home", "yes")
    r = c.get("/", headers={"x-block": "1"})
    assert (r.status_code, r.text, r.headers["x-hooked"]) == (403, "blocked", "yes")
    r = c.get("/missing")
    assert r.status_code == 404 and r.headers["x-hooked"] == "yes"  # error responses pass after_request too
    assert calls == ["before /", "after 200", "before /", "after 403", "before /missing", "after 404"]


def test_exception_in_a_hook_is_a_500(caplog) -> None:  # type: ignore[no-untyped-def]
    app = App(template_folder=None, static_folder=None)
    state = {"fail": "before"}

    @app.before_request
    def before(request):  # type: ignore[no-untyped-def]
        if state["fail"] == "before":
            raise RuntimeError("before hook failed")

    @app.after_request
    def after(request, response):  # type: ignore[no-untyped-def]
        if state["fail"] == "after":
            raise RuntimeError("after hook failed")
        return response

    app.add_route("/", lambda r: "ok", name="root")
    c = app.test_client()
    assert c.get("/").status_code == 500
    state["fail"] = "after"
    r = c.get("/")
    assert r.status_code == 500 and r.text == "500 Internal Server Error\n"  # the plain page: hooks failed twice
    state["fail"] = ""
    assert c.get("/").text == "ok"


def test_exceptions_on_a_live_server_leave_it_running(live_server, caplog) -> None:  # type: ignore[no-untyped-def]
    app = App(template_folder=None, static_folder=None)

    @app.get("/boom")
    def boom(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaboom")

    app.add_route("/", lambda r: "fine", name="root")
    server = live_server(app)
    with caplog.at_level(logging.ERROR, logger="microweb"), httpx.Client(base_url=server.url) as c:
        for _ in range(3):
            assert c.get("/boom").status_code == 500
            assert c.get("/").text == "fine"
    assert caplog.text.count("RuntimeError: kaboom") == 3


def test_templates_render_url_for_request_and_autoescape(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "page.html").write_text("{{ title }} {{ url_for('item', n=3) }} {{ request.args.q }}")
    (tmp_path / "feed.xml").write_text("<t>{{ title }}</t>")
    (tmp_path / "icon.svg").write_text("<svg>{{ title }}</svg>")
    (tmp_path / "plain.txt").write_text("{{ title }}")
    app = App(template_folder=tmp_path, static_folder=None)

    @app.get("/item/<int:n>")
    def item(request, n):  # type: ignore[no-untyped-def]
        return request.render_template("page.html", title="<b>")

    @app.get("/other")
    def other(request):  # type: ignore[no-untyped-def]
        return app.render_template("page.html", request=request, title="x")

    c = app.test_client()
    assert c.get("/item/1?q=<i>").text == "&lt;b&gt; /item/3 &lt;i&gt;"
    assert c.get("/other?q=z").text == "x /item/3 z"
    assert app.render_template("feed.xml", title="&") == "<t>&amp;</t>"
    assert app.render_template("icon.svg", title="<") == "<svg>&lt;</svg>"
    assert app.render_template("plain.txt", title="<b>") == "<b>"
    assert app.render_template(["missing.html", "plain.txt"], title="first found") == "first found"
    assert app.templates.env is app.templates.env  # one Environment per app


def test_templates_reload_in_debug_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    page = tmp_path / "t.html"

    def write(text: str, mtime: int) -> None:
        page.write_text(text)
        os.utime(page, (mtime, mtime))

    for debug, expected in ((True, "two"), (False, "one")):
        write("one", 1_000_000)
        app = App(template_folder=tmp_path, static_folder=None, debug=debug)
        assert app.render_template("t.html") == "one"
        write("two", 2_000_000)
        assert app.render_template("t.html") == expected, debug
    app.debug = True  # switching debug on later turns reloading on
    assert app.render_template("t.html") == "two"


def test_relative_folders_resolve_against_cwd_at_creation(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "hi.html").write_text("hi from tpl")
    monkeypatch.chdir(tmp_path)
    app = App(template_folder="tpl", static_folder="static")
    assert app.template_folder == str(tmp_path / "tpl") and app.static_folder == str(tmp_path / "static")
    monkeypatch.chdir("/")
    assert app.render_template("hi.html") == "hi from tpl"


def test_path_params_and_request_fields() -> None:
    app = App(template_folder=None, static_folder=None)

    @app.get("/u/<int:uid>/<path:rest>")
    def user(request, uid, rest):  # type: ignore[no-untyped-def]
        return {"uid": uid, "rest": rest, "params": {k: str(v) for k, v in request.path_params.items()}}

    assert app.test_client().get("/u/5/a/b").json() == {"uid": 5, "rest": "a/b", "params": {"uid": "5", "rest": "a/b"}}


def test_one_environment_even_when_threads_race(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    (tmp_path / "t.html").write_text("{{ n }}")
    app = App(template_folder=tmp_path, static_folder=None)
    envs, results = [], []
    barrier = threading.Barrier(8)

    def render(n: int) -> None:
        barrier.wait()
        envs.append(app.templates.env)
        results.append(app.render_template("t.html", n=n))

    threads = [threading.Thread(target=render, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len({id(e) for e in envs}) == 1 and sorted(results) == [str(i) for i in range(8)]
