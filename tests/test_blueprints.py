"""Blueprints: prefixes, endpoint names, url_for, scoped hooks and error handlers, nesting,
templates and static folders, duplicate registrations; teardown_request."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from microweb import App, Blueprint, HTTPError, Request, Response, abort
from microweb.cli import format_routes


def make_app(**kwargs: Any) -> App:
    return App(static_folder=None, **kwargs)


def admin_blueprint() -> Blueprint:
    bp = Blueprint("admin", url_prefix="/admin")

    @bp.get("/")
    def index(request: Request) -> str:
        return "admin index " + request.url_for(".users", uid=3)

    @bp.get("/users/<int:uid>")
    def users(request: Request, uid: int) -> dict[str, Any]:
        return {"uid": uid, "blueprint": request.blueprint, "endpoint": request.endpoint}

    return bp


def test_prefix_endpoints_and_url_for() -> None:
    app = make_app()
    app.register_blueprint(admin_blueprint())

    @app.get("/")
    def index(request: Request) -> str:
        return request.url_for("admin.index") + " " + request.url_for(".index")

    client = app.test_client()
    assert client.get("/admin/").text == "admin index /admin/users/3"
    assert client.get("/admin/users/7").json() == {"uid": 7, "blueprint": "admin", "endpoint": "admin.users"}
    # Outside a blueprint ".index" is the app's own "index"; absolute names work anywhere.
    assert client.get("/").text == "/admin/ /"
    assert app.url_for("admin.users", uid=5, tab="x") == "/admin/users/5?tab=x"
    assert client.get("/admin").status_code == 308  # the trailing-slash rule applies under the prefix
    assert client.get("/users/7").status_code == 404
    assert "admin.index" in app.router.by_name and "index" in app.router.by_name


def test_register_prefix_argument_wins() -> None:
    app = make_app()
    app.register_blueprint(admin_blueprint(), url_prefix="/staff")
    client = app.test_client()
    assert client.get("/staff/users/1").json()["uid"] == 1
    assert client.get("/admin/users/1").status_code == 404
    assert client.get("/staff/").text == "admin index /staff/users/3"
    # An empty prefix puts the routes at the root.
    root = make_app()
    root.register_blueprint(admin_blueprint(), url_prefix="")
    assert root.test_client().get("/users/2").json()["uid"] == 2


def test_duplicate_registrations_raise() -> None:
    app = make_app()
    app.register_blueprint(admin_blueprint())
    with pytest.raises(ValueError, match="already registered"):
        app.register_blueprint(admin_blueprint(), url_prefix="/other")
    # Another blueprint whose route lands on a path and method already routed.
    clash = Blueprint("clash")

    @clash.get("/admin/users/<int:uid>")
    def other(request: Request, uid: int) -> str:
        return "clash"

    with pytest.raises(ValueError, match="already routed"):
        app.register_blueprint(clash)
    # The same method and path twice inside one blueprint raises at once.
    bp = Blueprint("twice")
    bp.get("/x")(lambda request: "a")
    with pytest.raises(ValueError, match="routed twice"):
        bp.get("/x", name="b")(lambda request: "b")
    with pytest.raises(ValueError):
        Blueprint("a.b")
    with pytest.raises(ValueError):
        Blueprint("ok", url_prefix="no-slash")


def test_setup_after_registration_raises() -> None:
    app = make_app()
    bp = admin_blueprint()
    app.register_blueprint(bp)
    with pytest.raises(RuntimeError, match="already registered"):
        bp.get("/late")(lambda request: "never routed")
    with pytest.raises(RuntimeError):
        bp.before_request(lambda request: None)
    # Registering it on a second app is fine (nothing new to set up).
    other = make_app()
    other.register_blueprint(bp)
    assert other.test_client().get("/admin/users/1").json()["uid"] == 1


def test_literal_duplicate_across_blueprint_and_app() -> None:
    app = make_app()

    @app.get("/admin/")
    def taken(request: Request) -> str:
        return "app"

    with pytest.raises(ValueError, match="already routed"):
        app.register_blueprint(admin_blueprint())


def test_hooks_are_scoped_to_the_blueprint() -> None:
    app = make_app()
    calls: list[str] = []
    bp = Blueprint("api", url_prefix="/api")

    @bp.before_request
    def bp_before(request: Request) -> Any:
        calls.append("bp-before")
        if request.args.get("deny"):
            return Response("denied", 403)
        return None

    @bp.after_request
    def bp_after(request: Request, response: Response) -> Response:
        calls.append("bp-after")
        response.headers["X-Blueprint"] = "api"
        return response

    @bp.get("/ping")
    def ping(request: Request) -> str:
        calls.append("handler")
        return "pong"

    @app.before_request
    def app_before(request: Request) -> None:
        calls.append("app-before")

    @app.after_request
    def app_after(request: Request, response: Response) -> Response:
        calls.append("app-after")
        return response

    @app.get("/plain")
    def plain(request: Request) -> str:
        return "plain"

    app.register_blueprint(bp)
    client = app.test_client()
    r = client.get("/api/ping")
    assert r.text == "pong" and r.headers["x-blueprint"] == "api"
    assert calls == ["app-before", "bp-before", "handler", "bp-after", "app-after"]
    calls.clear()
    r = client.get("/plain")
    assert r.text == "plain" and "x-blueprint" not in r.headers
    assert calls == ["app-before", "app-after"]
    calls.clear()
    r = client.get("/api/ping?deny=1")
    assert r.status_code == 403 and r.text == "denied"
    assert calls == ["app-before", "bp-before", "bp-after", "app-after"]


def test_error_handler_precedence() -> None:
    app = make_app()
    bp = Blueprint("api", url_prefix="/api")

    @bp.errorhandler(404)
    def bp_404(request: Request, error: HTTPError) -> Any:
        return {"api_error": error.description}, 404

    @bp.errorhandler(KeyError)
    def bp_key(request: Request, error: Exception) -> Any:
        return "bp key error", 400

    @app.errorhandler(404)
    def app_404(request: Request, error: HTTPError) -> Any:
        return "app 404", 404

    @app.errorhandler(ZeroDivisionError)
    def app_zero(request: Request, error: Exception) -> Any:
        return "app zero", 500

    @bp.get("/missing")
    def missing(request: Request) -> Any:
        abort(404, "no such item")

    @bp.get("/key")
    def key(request: Request) -> Any:
        raise LookupError("bad") if request.args.get("lookup") else KeyError("k")

    @bp.get("/zero")
    def zero(request: Request) -> Any:
        return 1 // 0

    @app.get("/key")
    def app_key(request: Request) -> Any:
        raise KeyError("k")

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/api/missing").json() == {"api_error": "no such item"}
    assert client.get("/api/key").text == "bp key error"
    # The blueprint's handler does not match LookupError (KeyError's base): the app's 500 page.
    assert client.get("/api/key?lookup=1").status_code == 500
    # Not handled by the blueprint: the app's handler.
    assert client.get("/api/zero").text == "app zero"
    # A path under the prefix that no route matches is the app's 404 (no blueprint handled it).
    assert client.get("/api/nothing").text == "app 404"
    # Errors outside the blueprint never reach its handlers (KeyError gives the usual 500).
    assert client.get("/key").status_code == 500


def test_nested_blueprints() -> None:
    app = make_app()
    api = Blueprint("api", url_prefix="/api")
    v1 = Blueprint("v1", url_prefix="/v1")
    seen: list[str] = []

    @api.before_request
    def outer(request: Request) -> None:
        seen.append("api")

    @v1.before_request
    def inner(request: Request) -> None:
        seen.append("v1")

    @api.errorhandler(ValueError)
    def outer_error(request: Request, error: Exception) -> Any:
        return f"api handled {error}", 422

    @v1.get("/items/<int:i>")
    def item(request: Request, i: int) -> Any:
        if i == 0:
            raise ValueError("zero")
        return {"i": i, "self": request.url_for(".item", i=i + 1), "bps": request.blueprints}

    @api.get("/")
    def root(request: Request) -> str:
        return request.url_for(".v1.item", i=1)

    api.register_blueprint(v1)
    app.register_blueprint(api)
    client = app.test_client()
    body = client.get("/api/v1/items/4").json()
    assert body == {"i": 4, "self": "/api/v1/items/5", "bps": ["api.v1", "api"]}
    assert seen == ["api", "v1"]
    r = client.get("/api/v1/items/0")
    assert (r.status_code, r.text) == (422, "api handled zero")  # the parent's handler catches it
    assert client.get("/api/").text == "/api/v1/items/1"
    assert app.url_for("api.v1.item", i=2) == "/api/v1/items/2"
    assert set(app.blueprints) == {"api", "api.v1"}
    # The nested child registered again under another parent is a different name: allowed.
    other = Blueprint("other", url_prefix="/other")
    other.register_blueprint(v1)
    app.register_blueprint(other)
    assert client.get("/other/v1/items/1").json()["self"] == "/other/v1/items/2"
    loop = Blueprint("loop")
    with pytest.raises(ValueError):
        loop.register_blueprint(loop)


def test_templates_context_processors_and_filters(tmp_path: Path) -> None:
    app_templates = tmp_path / "app"
    bp_templates = tmp_path / "bp"
    app_templates.mkdir()
    bp_templates.mkdir()
    (app_templates / "shared.html").write_text("app shared")
    (app_templates / "other.html").write_text("{{ title|shout }} {{ here() }} [{{ who }}]")
    (bp_templates / "shared.html").write_text("bp shared (hidden by the app's)")
    (bp_templates / "page.html").write_text("{{ title|shout }} {{ here() }} {{ url_for('.page') }} {{ who }}")
    app = App(template_folder=app_templates, static_folder=None)
    bp = Blueprint("site", url_prefix="/site", template_folder=bp_templates)

    @bp.template_filter()
    def shout(value: str) -> str:
        return value.upper() + "!"

    @bp.template_global("here")
    def here() -> str:
        return "global"

    @bp.context_processor
    def who(request: Request) -> dict[str, str]:
        return {"who": "site visitor"}

    @bp.get("/page")
    def page(request: Request) -> str:
        return request.render_template("page.html", title="hi")

    @bp.get("/shared")
    def shared(request: Request) -> str:
        return request.render_template("shared.html")

    @app.get("/elsewhere")
    def elsewhere(request: Request) -> str:
        return app.render_template("other.html", request=request, title="x")

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/site/page").text == "HI! global /site/page site visitor"
    assert client.get("/site/shared").text == "app shared"
    # Outside the blueprint: the filter is app-wide, the context processor is not.
    assert client.get("/elsewhere").text == "X! global []"


def test_blueprint_static_folder(tmp_path: Path) -> None:
    folder = tmp_path / "assets"
    folder.mkdir()
    (folder / "app.css").write_text("body{}")
    app = make_app()
    bp = Blueprint("shop", url_prefix="/shop", static_folder=folder)
    app.register_blueprint(bp)
    assert app.url_for("shop.static", filename="app.css") == "/shop/assets/app.css"
    client = app.test_client()
    r = client.get("/shop/assets/app.css")
    assert r.status_code == 200 and r.text == "body{}" and r.headers["content-type"].startswith("text/css")
    assert client.get("/shop/assets/nope.css").status_code == 404
    assert client.get("/shop/assets/../../etc/passwd").status_code == 404


def test_routes_command_shows_blueprints() -> None:
    app = make_app()
    app.register_blueprint(admin_blueprint())
    app.get("/")(lambda request: "x")
    table = format_routes(app).splitlines()
    assert table[0].split() == ["METHODS", "PATH", "ENDPOINT", "BLUEPRINT"]
    rows = {line.split()[-2]: line.split()[-1] for line in table[1:]}
    assert rows["admin.users"] == "admin" and rows["<lambda>"] == "-"


def test_blueprint_live(live_server: Any) -> None:
    app = make_app()
    app.register_blueprint(admin_blueprint())
    server = live_server(app)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/admin/users/9").json()["endpoint"] == "admin.users"
        assert client.get("/admin/").text == "admin index /admin/users/3"


# -- teardown_request ---------------------------------------------------------------

def test_teardown_runs_on_success_and_error(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    seen: list[tuple[str, Any]] = []

    @app.teardown_request
    def record(request: Request, exc: BaseException | None) -> Any:
        seen.append((request.path, exc))
        return Response("never sent", 418)  # the return value is ignored

    @app.teardown_request
    def broken(request: Request, exc: BaseException | None) -> None:
        raise RuntimeError("teardown bug")

    @app.get("/ok")
    def ok(request: Request) -> str:
        return "fine"

    @app.get("/boom")
    def boom(request: Request) -> str:
        raise ZeroDivisionError("boom")

    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="microweb"):
        r = client.get("/ok")
        assert (r.status_code, r.text) == (200, "fine")
        assert client.get("/boom").status_code == 500
        assert client.get("/nowhere").status_code == 404
    assert seen[0] == ("/ok", None)
    assert seen[1][0] == "/boom" and isinstance(seen[1][1], ZeroDivisionError)
    assert seen[2][0] == "/nowhere" and isinstance(seen[2][1], HTTPError) and seen[2][1].status == 404
    assert sum("teardown_request function 'broken' failed" in rec.getMessage() for rec in caplog.records) == 3


def test_teardown_live(live_server: Any) -> None:
    app = make_app()
    seen: list[Any] = []
    app.teardown_request(lambda request, exc: seen.append(exc))
    app.get("/")(lambda request: {"ok": True})
    server = live_server(app)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").json() == {"ok": True}
    assert seen == [None]


def test_plain_app_keeps_fast_paths() -> None:
    app = make_app()
    app.get("/")(lambda request: "hi")
    assert not app._pre and not app._post and app._route_request == app._dispatch
    app.register_blueprint(admin_blueprint())
    assert app._pre and not app._post
    app.teardown_request(lambda request, exc: None)
    assert app._post
