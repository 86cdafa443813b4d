"""CORS: preflights answered from the route table (allowed and refused), actual requests,
credentials, Vary: Origin, blueprint policies, and a real cross-origin fetch in headless Chromium."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from typing import Any

import httpx
import pytest

from microweb import App, Blueprint, Request, abort
from microweb.cors import CORSPolicy

SITE = "https://site.example"


def make_app(**cors: Any) -> App:
    app = App(static_folder=None)
    cors.setdefault("origins", [SITE])
    app.cors(**cors)

    @app.route("/items", methods=["GET", "POST"])
    def items(request: Request) -> Any:
        return {"method": request.method}

    @app.get("/items/<int:i>")
    def item(request: Request, i: int) -> Any:
        if i == 0:
            abort(404, "no item 0")
        return {"i": i}

    @app.before_request
    def require_token(request: Request) -> Any:
        # An auth hook: preflights never carry credentials, so they must be answered before it.
        if request.method != "OPTIONS" and request.headers.get("authorization") != "Bearer t":
            return {"error": "unauthorized"}, 401
        return None

    return app


def preflight(client: httpx.Client, path: str, method: str, origin: str = SITE, headers: str | None = None) -> Any:
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        h["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=h)


def test_preflight_allowed() -> None:
    client = make_app(headers=["Authorization", "Content-Type", "X-Trace"], max_age=300).test_client()
    r = preflight(client, "/items", "POST", headers="authorization, x-trace")
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-methods"] == "GET, HEAD, POST"
    assert r.headers["access-control-allow-headers"] == "authorization, x-trace"
    assert r.headers["access-control-max-age"] == "300"
    assert "Origin" in r.headers["vary"]
    assert "access-control-allow-credentials" not in r.headers
    # Dynamic routes too.
    r = preflight(client, "/items/3", "GET")
    assert r.status_code == 204 and r.headers["access-control-allow-methods"] == "GET, HEAD"


def test_preflight_refused() -> None:
    client = make_app(headers=["Authorization"], methods=["GET", "POST", "DELETE"]).test_client()
    r = preflight(client, "/items", "DELETE")  # allowed by the policy, but the path has no DELETE
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert "access-control-allow-origin" not in r.headers
    r = preflight(client, "/items", "GET", origin="https://evil.example")
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert "origin not allowed" in r.text
    r = preflight(client, "/items", "POST", headers="x-secret")
    assert r.status_code == 403 and "x-secret" in r.text and "access-control-allow-origin" not in r.headers
    # A path with no route: the ordinary 404.
    assert preflight(client, "/nowhere", "GET").status_code == 404
    # Methods outside the policy are refused even when the path has them.
    app = App(static_folder=None)
    app.cors(origins="*", methods=["GET"])
    app.route("/x", methods=["GET", "PUT"])(lambda request: "x")
    r = preflight(app.test_client(), "/x", "PUT")
    assert r.status_code == 403 and "PUT" in r.text
    r = preflight(app.test_client(), "/x", "GET")
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "GET, HEAD"


def test_actual_requests_and_vary() -> None:
    client = make_app(expose_headers=["X-Total"]).test_client()
    auth = {"Authorization": "Bearer t"}
    r = client.get("/items", headers={"Origin": SITE, **auth})
    assert r.json() == {"method": "GET"}
    assert r.headers["access-control-allow-origin"] == SITE and r.headers["vary"] == "Origin"
    assert r.headers["access-control-expose-headers"] == "x-total"
    r = client.get("/items", headers={"Origin": "https://evil.example", **auth})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "Origin"  # the answer depends on the origin: caches must know
    r = client.get("/items", headers=auth)  # same-origin or not a browser: no CORS headers
    assert "access-control-allow-origin" not in r.headers and r.headers["vary"] == "Origin"
    # Errors carry the headers too, so the page's script can read them.
    r = client.get("/items/0", headers={"Origin": SITE, **auth})
    assert r.status_code == 404 and r.headers["access-control-allow-origin"] == SITE
    r = client.get("/items", headers={"Origin": SITE})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == SITE
    # A plain OPTIONS (no Access-Control-Request-Method) is the usual 204 with Allow.
    r = client.options("/items", headers={"Origin": SITE})
    assert r.status_code == 204 and "allow" in r.headers
    assert "access-control-allow-methods" not in r.headers


def test_credentials() -> None:
    client = make_app(credentials=True).test_client()
    r = client.get("/items", headers={"Origin": SITE, "Authorization": "Bearer t"})
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-credentials"] == "true"
    r = preflight(client, "/items", "POST")
    assert r.headers["access-control-allow-credentials"] == "true"
    with pytest.raises(ValueError, match="credentials"):
        App(static_folder=None).cors(origins="*", credentials=True)
    with pytest.raises(ValueError):
        Blueprint("b").cors(origins="*", credentials=True)
    with pytest.raises(ValueError):
        CORSPolicy(origins=["site.example"])  # not an origin
    with pytest.raises(ValueError):
        CORSPolicy(origins=["*", SITE])


def test_wildcard_without_vary() -> None:
    app = App(static_folder=None)
    app.cors(origins="*")
    app.get("/")(lambda request: "x")
    r = app.test_client().get("/", headers={"Origin": "https://anyone.example"})
    assert r.headers["access-control-allow-origin"] == "*" and "vary" not in r.headers


def test_blueprint_policy_wins() -> None:
    app = App(static_folder=None)
    app.cors(origins=[SITE])
    api = Blueprint("api", url_prefix="/api")
    api.cors(origins=["https://partner.example"], credentials=True)
    api.get("/data")(lambda request: {"ok": 1})
    site = Blueprint("site")
    site.get("/page")(lambda request: "page")
    app.register_blueprint(api)
    app.register_blueprint(site)
    client = app.test_client()
    r = client.get("/api/data", headers={"Origin": "https://partner.example"})
    assert r.headers["access-control-allow-origin"] == "https://partner.example"
    r = client.get("/api/data", headers={"Origin": SITE})
    assert "access-control-allow-origin" not in r.headers
    r = preflight(client, "/api/data", "GET", origin="https://partner.example")
    assert r.status_code == 204 and r.headers["access-control-allow-credentials"] == "true"
    r = client.get("/page", headers={"Origin": SITE})  # a blueprint without a policy: the app's
    assert r.headers["access-control-allow-origin"] == SITE
    # Only a blueprint has a policy: the app's other routes get no CORS headers.
    only = App(static_folder=None)
    bp = Blueprint("api", url_prefix="/api")
    bp.cors(origins="*")
    bp.get("/x")(lambda request: "x")
    only.register_blueprint(bp)
    only.get("/y")(lambda request: "y")
    c = only.test_client()
    assert c.get("/api/x", headers={"Origin": SITE}).headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in c.get("/y", headers={"Origin": SITE}).headers
    assert preflight(c, "/y", "GET").status_code == 204  # no policy: the plain OPTIONS answer
    assert "access-control-allow-origin" not in preflight(c, "/y", "GET").headers


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian chromium package (headless browser)")
def test_chromium_cross_origin_fetch(live_server: Any) -> None:
    """A page on one origin fetches from an API on another: the browser's own CORS check passes
    for the allowed request (with a preflight: PUT plus a custom header) and fails for one the
    API does not allow."""
    api = App(static_folder=None)
    seen: list[str] = []
    api.before_request(lambda request: seen.append(f"{request.method} {request.path}"))
    api.route("/data", methods=["GET", "PUT"], name="data")(lambda request: {"value": 42, "method": request.method})
    api.get("/closed", name="closed")(lambda request: {"secret": 1})
    api_server = live_server(api)
    site = App(static_folder=None)
    site_server = live_server(site)
    site_origin = site_server.url
    api.cors(origins=[site_origin], methods=["GET", "PUT"], headers=["X-Token"])
    page = f"""<!doctype html><body><p id="a">pending</p><p id="b">pending</p><script>
fetch('{api_server.url}/data', {{method: 'PUT', headers: {{'X-Token': 't'}}}})
  .then(r => r.json()).then(d => {{ document.getElementById('a').textContent = 'got-' + d.value + '-' + d.method; }},
        e => {{ document.getElementById('a').textContent = 'blocked'; }});
fetch('{api_server.url}/closed', {{method: 'DELETE'}})
  .then(r => {{ document.getElementById('b').textContent = 'read-' + r.status; }},
        e => {{ document.getElementById('b').textContent = 'blocked'; }});
</script></body>"""
    site.get("/")(lambda request: page)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", "--dump-dom", f"{site_origin}/"],
            capture_output=True, text=True, timeout=90)
    assert '<p id="a">got-42-PUT</p>' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert '<p id="b">blocked</p>' in proc.stdout, proc.stdout[-2000:]
    assert "PUT /data" in seen  # the actual request went through after the preflight
    assert "DELETE /closed" not in seen  # the refused preflight stopped it
