"""Routing: converters, match order, 405/OPTIONS/HEAD, trailing slashes, url_for (in memory)."""
from __future__ import annotations

import uuid

import pytest

from microweb import App, MethodNotAllowed, NotFound
from microweb.routing import Router


def noop(request, **kw):  # type: ignore[no-untyped-def]
    return kw


def make(*rules: str) -> Router:
    router = Router()
    for i, rule in enumerate(rules):
        def handler(request, **kw):  # type: ignore[no-untyped-def]
            return kw
        handler.__name__ = f"h{i}"
        router.add(rule, None, handler)
    return router


@pytest.mark.parametrize("rule,path,params", [
    ("/u/<name>", "/u/bob", {"name": "bob"}),
    ("/u/<string:name>", "/u/a%20b", {"name": "a%20b"}),
    ("/n/<int:n>", "/n/42", {"n": 42}),
    ("/f/<float:x>", "/f/2.5", {"x": 2.5}),
    ("/f/<float:x>", "/f/-1.25", {"x": -1.25}),
    ("/p/<path:rest>", "/p/a/b/c.txt", {"rest": "a/b/c.txt"}),
    ("/id/<uuid:u>", "/id/12345678-1234-5678-1234-567812345678",
     {"u": uuid.UUID("12345678-1234-5678-1234-567812345678")}),
])
def test_converters_match(rule: str, path: str, params: dict) -> None:
    route, got = make(rule).match("GET", path)
    assert got == params and route.rule == rule


@pytest.mark.parametrize("rule,path", [
    ("/u/<name>", "/u/a/b"),
    ("/n/<int:n>", "/n/4x"),
    ("/n/<int:n>", "/n/-1"),
    ("/f/<float:x>", "/f/abc"),
    ("/id/<uuid:u>", "/id/not-a-uuid"),
    ("/p/<path:rest>", "/p/"),
])
def test_converters_reject(rule: str, path: str) -> None:
    with pytest.raises(NotFound):
        make(rule).match("GET", path)


def test_literal_routes_are_one_dict_lookup() -> None:
    router = make("/a", "/b/c", "/u/<x>")
    assert set(router.literal) == {"/a", "/b/c"}
    assert [r.rule for r in router.dynamic] == ["/u/<x>"]


@pytest.mark.parametrize("order", [0, 1])
def test_literal_segments_beat_converters_whatever_the_order(order: int) -> None:
    rules = ["/users/<name>", "/users/me/<tab>", "/users/<name>/<tab>", "/<path:any>", "/users/<int:id>/x"]
    router = make(*(rules if order == 0 else list(reversed(rules))))
    assert router.match("GET", "/users/me/posts")[0].rule == "/users/me/<tab>"
    assert router.match("GET", "/users/bob/posts")[0].rule == "/users/<name>/<tab>"
    assert router.match("GET", "/users/bob")[0].rule == "/users/<name>"
    assert router.match("GET", "/users/7/x")[0].rule == "/users/<int:id>/x"
    assert router.match("GET", "/other/thing")[0].rule == "/<path:any>"


def test_longer_literal_prefix_first() -> None:
    router = make("/<a>/<b>/<c>", "/x/<b>/<c>", "/x/y/<c>")
    assert router.match("GET", "/x/y/z")[0].rule == "/x/y/<c>"
    assert router.match("GET", "/x/q/z")[0].rule == "/x/<b>/<c>"
    assert router.match("GET", "/q/q/z")[0].rule == "/<a>/<b>/<c>"


def test_method_not_allowed_lists_allow() -> None:
    router = Router()
    router.add("/thing", ["GET"], noop)
    router.add("/thing/<int:i>", ["PUT", "DELETE"], noop)
    with pytest.raises(MethodNotAllowed) as info:
        router.match("POST", "/thing")
    assert info.value.allowed == ["GET", "HEAD", "OPTIONS"]
    with pytest.raises(MethodNotAllowed) as info:
        router.match("GET", "/thing/3")
    assert info.value.allowed == ["DELETE", "OPTIONS", "PUT"]


def test_unknown_converter_and_duplicate_param_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown converter"):
        make("/a/<bogus:x>")
    with pytest.raises(ValueError, match="twice"):
        make("/a/<x>/<x>")
    with pytest.raises(ValueError, match="start with"):
        make("a")


def test_app_http_semantics() -> None:
    app = App()

    @app.route("/items", methods=["GET", "POST"])
    def items(request):  # type: ignore[no-untyped-def]
        return request.method

    @app.put("/items/<int:i>")
    def put_item(request, i):  # type: ignore[no-untyped-def]
        return f"put {i}"

    @app.patch("/items/<int:i>")
    def patch_item(request, i):  # type: ignore[no-untyped-def]
        return f"patch {i}"

    @app.delete("/items/<int:i>")
    def delete_item(request, i):  # type: ignore[no-untyped-def]
        return f"delete {i}"

    @app.get("/docs/")
    def docs(request):  # type: ignore[no-untyped-def]
        return "docs"

    @app.get("/exact")
    def exact(request):  # type: ignore[no-untyped-def]
        return "exact"

    c = app.test_client()
    assert c.get("/items").text == "GET"
    assert c.post("/items").text == "POST"
    assert c.put("/items/3").text == "put 3"
    assert c.patch("/items/3").text == "patch 3"
    assert c.delete("/items/3").text == "delete 3"
    r = c.delete("/items")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    r = c.head("/items")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "4"  # the handler saw "HEAD"
    r = c.options("/items")
    assert r.status_code == 204 and r.headers["allow"] == "GET, HEAD, OPTIONS, POST" and r.content == b""
    r = c.options("/items/9")
    assert r.status_code == 204 and r.headers["allow"] == "DELETE, OPTIONS, PATCH, PUT"
    r = c.get("/docs?x=1")
    assert r.status_code == 308 and r.headers["location"] == "/docs/?x=1"
    assert c.get("/docs/").text == "docs"
    assert c.get("/exact/").status_code == 404  # the reverse never matches silently
    assert c.get("/nothing").status_code == 404


def test_url_for() -> None:
    app = App()

    @app.get("/users/<int:uid>/files/<path:name>")
    def user_file(request, uid, name):  # type: ignore[no-untyped-def]
        return ""

    @app.get("/", name="home")
    def index(request):  # type: ignore[no-untyped-def]
        return ""

    @app.get("/q/<word>")
    def word(request, word):  # type: ignore[no-untyped-def]
        return ""

    assert app.url_for("home") == "/"
    assert app.url_for("user_file", uid=3, name="a b/c.txt") == "/users/3/files/a%20b/c.txt"
    assert app.url_for("word", word="a/b?") == "/q/a%2Fb%3F"
    assert app.url_for("home", page=2, tag=["x", "y"]) == "/?page=2&tag=x&tag=y"
    with pytest.raises(KeyError):
        app.url_for("index")  # renamed to "home"
    with pytest.raises(KeyError, match="uid"):
        app.url_for("user_file", name="x")


def test_two_functions_under_one_name_is_an_error() -> None:
    app = App()

    @app.get("/a", name="thing")
    def a(request):  # type: ignore[no-untyped-def]
        return ""

    with pytest.raises(ValueError, match="thing"):
        @app.get("/b", name="thing")
        def b(request):  # type: ignore[no-untyped-def]
            return ""

    # The same function under two paths is fine (one endpoint, two URLs).
    app.add_route("/a2", a, name="thing")


def test_same_path_and_method_twice_is_an_error() -> None:
    app = App()
    app.add_route("/x", lambda r: "1", name="one")
    with pytest.raises(ValueError, match="already routed"):
        app.add_route("/x", lambda r: "2", name="two")


def test_explicit_head_route_wins_over_automatic_head() -> None:
    app = App()

    @app.get("/h")
    def get_h(request):  # type: ignore[no-untyped-def]
        return "body"

    @app.route("/h", methods=["HEAD"])
    def head_h(request):  # type: ignore[no-untyped-def]
        from microweb import Response
        return Response(b"", headers={"X-Head": "explicit"})

    r = app.test_client().head("/h")
    assert r.headers.get("x-head") == "explicit"


def test_cli_routes_prints_the_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_cli

    (tmp_path / "mysite.py").write_text(
        "from microweb import App\n"
        "app = App(static_folder='public', static_url_path='/assets')\n"
        "@app.get('/users/<int:uid>')\n"
        "def user(request, uid): return ''\n"
        "@app.route('/', methods=['GET', 'POST'], name='home')\n"
        "def index(request): return ''\n"
        "@app.delete('/users/me')\n"
        "def delete_me(request): return ''\n"
        "@app.get('/<path:anything>')\n"
        "def catch_all(request, anything): return ''\n"
    )
    result = run_cli("routes", "mysite:app", cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["METHODS", "PATH", "ENDPOINT"]
    # In the order the router tries them: literal paths, dynamic rules by priority, static files last.
    assert lines[1] == ["GET,", "HEAD,", "POST", "/", "home"]
    assert lines[2] == ["DELETE", "/users/me", "delete_me"]
    assert lines[3] == ["GET,", "HEAD", "/users/<int:uid>", "user"]
    assert lines[4] == ["GET,", "HEAD", "/<path:anything>", "catch_all"]
    assert lines[5][:3] == ["GET,", "HEAD", "/assets/<path:filename>"]
    assert result.stdout.splitlines()[5].endswith(f"(static files: {tmp_path / 'public'})")


def test_cli_routes_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_cli

    (tmp_path / "notapp.py").write_text("app = 42\n")
    for args, message in ((("routes", "nosuchmodule:app"), "cannot find module"),
                          (("routes", "notapp:app"), "not a microweb App"),
                          (("routes",), "MODULE:ATTR")):
        result = run_cli(*args, cwd=str(tmp_path))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_url_for_static_files() -> None:
    app = App(static_folder="static", static_url_path="/assets")
    assert app.url_for("static", filename="css/site v2.css") == "/assets/css/site%20v2.css"
    assert app.url_for("static", filename="app.js", v=3) == "/assets/app.js?v=3"
    assert App().url_for("static", filename="/a.png") == "/a.png"
    with pytest.raises(KeyError):
        App(static_folder=None).url_for("static", filename="a.png")


def test_trailing_slash_redirect_is_encoded_and_stays_on_site() -> None:
    app = App(static_folder=None)

    @app.get("/<path:p>/")
    def folder(request, p):  # type: ignore[no-untyped-def]
        return p

    @app.get("/n/<name>/")
    def named(request, name):  # type: ignore[no-untyped-def]
        return name

    c = app.test_client()
    r = c.get("/n/a%20b%0D%0AX-Evil:%201")
    assert r.status_code == 308 and r.headers["location"] == "/n/a%20b%0D%0AX-Evil:%201/"
    assert "x-evil" not in r.headers
    from microweb import Headers, Request

    # (httpx would read "//evil.example" as another host, so the request is made by hand.)
    out = app.handle(Request("GET", "//evil.example", "HTTP/1.1", Headers({"Host": "x"})))
    assert isinstance(out, bytes) and out.startswith(b"HTTP/1.1 308 ")
    assert b"\r\nLocation: /evil.example/\r\n" in out
