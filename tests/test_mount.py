"""app.mount: a Flask app (WSGI, PEP 3333 SCRIPT_NAME/PATH_INFO split) and another microweb App
under a prefix, in memory and on a live server."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from microweb import App, Blueprint, Request, redirect
from microweb.cli import format_routes

flask = pytest.importorskip("flask")  # a test dependency (pyproject [test])


def make_flask() -> Any:
    legacy = flask.Flask("legacy")

    @legacy.route("/")
    def home() -> Any:
        environ = flask.request.environ
        return {"script_name": environ["SCRIPT_NAME"], "path_info": environ["PATH_INFO"],
                "self": flask.url_for("home"), "form": flask.url_for("form"),
                "external": flask.url_for("home", _external=True)}

    @legacy.route("/old")
    def old() -> Any:
        return flask.redirect(flask.url_for("form"))

    @legacy.route("/form", methods=["GET", "POST"])
    def form() -> Any:
        if flask.request.method == "POST":
            size = len(flask.request.get_data())  # cached: the form is parsed from it next
            return f"got {flask.request.form['name']} ({size} bytes)"
        return "the form"

    return legacy


def make_app() -> App:
    app = App(static_folder=None)

    @app.get("/")
    def index(request: Request) -> str:
        return "parent"

    @app.get("/legacy/shadowed")
    def shadowed(request: Request) -> str:
        return "parent route under the mount prefix"

    app.mount("/legacy", make_flask())
    return app


def check_flask_mount(client: httpx.Client, host: str) -> None:
    data = client.get("/legacy/").json()
    assert data["script_name"] == "/legacy" and data["path_info"] == "/"
    assert data["self"] == "/legacy/" and data["form"] == "/legacy/form"
    assert data["external"] == f"http://{host}/legacy/"
    r = client.get("/legacy/old")
    assert r.status_code == 302 and r.headers["location"] == "/legacy/form"
    assert client.get("/legacy/old", follow_redirects=True).text == "the form"
    r = client.post("/legacy/form", data={"name": "ada lovelace"})
    assert (r.status_code, r.text) == (200, "got ada lovelace (17 bytes)")
    r = client.get("/legacy?x=1")
    assert r.status_code == 308 and r.headers["location"] == "/legacy/?x=1"
    assert client.get("/legacy/nothing").status_code == 404  # Flask's own 404
    assert "Werkzeug" not in client.get("/").text and client.get("/").text == "parent"
    # The mount owns everything under its prefix, even a literal route of the parent.
    assert client.get("/legacy/shadowed").status_code == 404
    # A path that only starts with the same letters is not under the mount.
    assert client.get("/legacyx").status_code == 404


def test_flask_mount_in_memory() -> None:
    check_flask_mount(make_app().test_client(), "testserver")


def test_flask_mount_live(live_server: Any) -> None:
    server = live_server(make_app(), threads=2)
    with httpx.Client(base_url=server.url) as client:
        check_flask_mount(client, f"{server.host}:{server.port}")


def make_sub() -> App:
    sub = App(static_folder=None)
    bp = Blueprint("docs", url_prefix="/docs")

    @sub.get("/")
    def home(request: Request) -> dict[str, Any]:
        return {"path": request.path, "self": request.url_for("home"), "docs": request.url_for("docs.page", n=2),
                "external": request.url_for("home", _external=True)}

    @sub.get("/go")
    def go(request: Request) -> Any:
        return redirect(request.url_for("docs.page", n=1))

    @sub.post("/echo")
    def echo(request: Request) -> str:
        return request.body.decode()

    @bp.get("/page/<int:n>/")
    def page(request: Request, n: int) -> str:
        return f"page {n} at {request.url_for('.page', n=n)}"

    sub.register_blueprint(bp)
    return sub


def test_microweb_app_mount(live_server: Any) -> None:
    app = App(static_folder=None)
    seen: list[str] = []
    app.before_request(lambda request: seen.append(request.path))
    app.get("/")(lambda request: "parent")
    sub = make_sub()
    app.mount("/sub/", sub)
    for client in (app.test_client(), httpx.Client(base_url=live_server(app).url)):
        data = client.get("/sub/").json()
        assert data["path"] == "/" and data["self"] == "/sub/" and data["docs"] == "/sub/docs/page/2/"
        assert data["external"].endswith("/sub/")
        r = client.get("/sub/go")
        assert r.status_code == 302 and r.headers["location"] == "/sub/docs/page/1/"
        assert client.get("/sub/docs/page/1/").text == "page 1 at /sub/docs/page/1/"
        # The sub-app's trailing-slash redirect carries the prefix.
        r = client.get("/sub/docs/page/3?q=1")
        assert r.status_code == 308 and r.headers["location"] == "/sub/docs/page/3/?q=1"
        assert client.post("/sub/echo", content=b"x" * 100000).text == "x" * 100000
        assert client.get("/sub/missing").status_code == 404
        assert client.get("/").text == "parent"
    # The parent's hooks do not run for the mounted app's requests.
    assert "/sub/" not in seen and "/" in seen
    table = format_routes(app)
    assert "/sub/..." in table and "mounted" in table


def test_mount_errors() -> None:
    app = App(static_folder=None)
    with pytest.raises(ValueError):
        app.mount("/", make_sub())
    with pytest.raises(ValueError):
        app.mount("/self", app)
    with pytest.raises(TypeError):
        app.mount("/x", 42)
    app.mount("/a", make_sub())
    with pytest.raises(ValueError, match="already mounted"):
        app.mount("/a/", make_sub())
    # Longest prefix wins whatever the order of mounting.
    inner = App(static_folder=None)
    inner.get("/")(lambda request: "inner")
    app.mount("/a/b", inner)
    assert app.test_client().get("/a/b/").text == "inner"


def test_mounts_when_the_app_itself_is_served_over_wsgi() -> None:
    """An App served by a WSGI server (gunicorn, here httpx's WSGI transport) still hands the
    mounted Flask app the right SCRIPT_NAME and PATH_INFO, and its body."""
    app = make_app()
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://wsgi.example") as client:
        data = client.get("/legacy/").json()
        assert data["script_name"] == "/legacy" and data["path_info"] == "/"
        assert data["external"] == "http://wsgi.example/legacy/"
        assert client.post("/legacy/form", data={"name": "x"}).text == "got x (6 bytes)"
        assert client.get("/").text == "parent"
