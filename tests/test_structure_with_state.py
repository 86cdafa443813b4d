"""Blueprints, CORS and compression together with issue 11's sessions and CSRF."""
from __future__ import annotations

import re

from microweb import App, Blueprint, Request

SECRET = "a-test-secret-that-is-long-enough"


def make_app() -> App:
    app = App(template_folder=None, static_folder=None, compress=True)
    app.secret_key = SECRET
    site = Blueprint("site")
    api = Blueprint("api", url_prefix="/api")
    api.cors(origins=["https://app.example"])

    @site.get("/form")
    def form(request: Request) -> str:
        request.session["visits"] = request.session.get("visits", 0) + 1
        return f'<input name="csrf_token" value="{request.csrf_token()}">' + "<p>padding</p>" * 60

    @site.get("/visits")
    def visits(request: Request) -> dict[str, int]:
        return {"visits": request.session.get("visits", 0)}

    @site.post("/submit")
    def submit(request: Request) -> str:
        return "accepted"

    @api.post("/hook", csrf=False)
    def hook(request: Request) -> dict[str, bool]:
        return {"ok": True}

    app.register_blueprint(site)
    app.register_blueprint(api)
    app.config["CSRF_PROTECT"] = True
    return app


def test_csrf_applies_to_blueprint_routes_and_their_exemptions() -> None:
    client = make_app().test_client()
    page = client.get("/form", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip" and "set-cookie" in page.headers
    token = re.search(r'value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert client.post("/submit").status_code == 403
    assert client.post("/submit", data={"csrf_token": token}).text == "accepted"
    r = client.post("/api/hook", headers={"Origin": "https://app.example"})
    assert r.json() == {"ok": True} and r.headers["access-control-allow-origin"] == "https://app.example"


def test_session_survives_compression() -> None:
    client = make_app().test_client()
    client.get("/form", headers={"Accept-Encoding": "gzip"})
    client.get("/form", headers={"Accept-Encoding": "gzip"})
    r = client.get("/form", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and "set-cookie" in r.headers
    assert client.get("/visits").json() == {"visits": 3}  # the cookie set on compressed pages held
