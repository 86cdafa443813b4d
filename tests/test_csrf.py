"""CSRF protection: missing, wrong and right tokens, via the form field and the header, per-route
opt-out, every unsafe method, constant-time comparison, masked tokens."""
from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from microweb import App, Request
from microweb import csrf as csrf_module

SECRET = "a-test-secret-that-is-long-enough"


def csrf_app(protect: bool = True) -> App:
    app = App(template_folder=None, static_folder=None)
    app.secret_key = SECRET

    @app.get("/form")
    def form(request: Request) -> str:
        return f'<input name="csrf_token" value="{request.csrf_token()}">'

    @app.route("/submit", methods=["POST", "PUT", "PATCH", "DELETE"])
    def submit(request: Request) -> str:
        return "accepted"

    @app.post("/items/<int:item_id>")
    def dynamic(request: Request, item_id: int) -> str:
        return f"accepted {item_id}"

    @app.post("/api/hook", csrf=False)
    def hook(request: Request) -> dict[str, Any]:
        return {"ok": True, "json": request.json}

    app.config["CSRF_PROTECT"] = protect  # turned on after the routes: the literal shortcut must see it
    return app


def token_from(client: httpx.Client) -> str:
    found = re.search(r'value="([^"]+)"', client.get("/form").text)
    assert found is not None
    return found.group(1)


def test_off_by_default() -> None:
    app = csrf_app(protect=False)
    assert app.test_client().post("/submit", data={"a": "1"}).text == "accepted"
    assert App().config["CSRF_PROTECT"] is False


def test_missing_token_is_403_with_a_clear_message() -> None:
    c = csrf_app().test_client()
    token_from(c)  # the session has a secret, but the request carries no token
    r = c.post("/submit", data={"a": "1"})
    assert r.status_code == 403 and "The CSRF token is missing" in r.text
    r = c.post("/submit", json={"a": 1}, headers={"accept": "application/json"})
    assert r.status_code == 403 and r.json()["description"].startswith("The CSRF token is missing")
    assert c.post("/items/3").status_code == 403  # dynamic routes too


def test_wrong_token_is_403() -> None:
    c = csrf_app().test_client()
    good = token_from(c)
    for bad in ["x", good[:-2] + ("AA" if not good.endswith("AA") else "BB"), "A" * 86, good + "A", "é" * 86]:
        r = c.post("/submit", data={"csrf_token": bad})
        assert r.status_code == 403 and "invalid" in r.text, bad
        if bad.isascii():
            r = c.post("/submit", headers={"X-CSRF-Token": bad})
            assert r.status_code == 403, bad


def test_right_token_via_form_and_via_header() -> None:
    c = csrf_app().test_client()
    token = token_from(c)
    assert c.post("/submit", data={"csrf_token": token, "a": "1"}).text == "accepted"
    assert c.post("/submit", files={"f": ("a.txt", b"x")}, data={"csrf_token": token}).text == "accepted"
    assert c.post("/submit", headers={"X-CSRF-Token": token}, json={"a": 1}).text == "accepted"
    assert c.post("/items/7", headers={"x-csrf-token": token}).text == "accepted 7"
    for method in ("PUT", "PATCH", "DELETE"):
        assert c.request(method, "/submit").status_code == 403
        assert c.request(method, "/submit", headers={"X-CSRF-Token": token}).text == "accepted"
    assert c.get("/form").status_code == 200  # safe methods are never checked


def test_tokens_are_masked_and_all_valid_for_the_session() -> None:
    c = csrf_app().test_client()
    first, second = token_from(c), token_from(c)
    assert first != second  # a fresh mask each time
    assert c.post("/submit", data={"csrf_token": first}).text == "accepted"
    assert c.post("/submit", data={"csrf_token": second}).text == "accepted"


def test_a_token_from_another_session_is_rejected() -> None:
    app = csrf_app()
    theirs = token_from(app.test_client())
    mine = app.test_client()
    token_from(mine)
    r = mine.post("/submit", data={"csrf_token": theirs})
    assert r.status_code == 403 and "invalid" in r.text
    fresh = app.test_client()  # no session at all: nothing to compare with
    r = fresh.post("/submit", data={"csrf_token": theirs})
    assert r.status_code == 403 and "session token is missing" in r.text


def test_a_route_can_opt_out() -> None:
    c = csrf_app().test_client()
    r = c.post("/api/hook", json={"event": "push"})
    assert r.status_code == 200 and r.json() == {"ok": True, "json": {"event": "push"}}


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = csrf_module.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(csrf_module.hmac, "compare_digest", spy)
    c = csrf_app().test_client()
    token = token_from(c)
    assert c.post("/submit", data={"csrf_token": token}).status_code == 200
    assert any(len(a) == 32 and len(b) == 32 for a, b in calls)


def test_switching_protection_off_again() -> None:
    app = csrf_app()
    c = app.test_client()
    assert c.post("/submit").status_code == 403
    app.config["CSRF_PROTECT"] = False
    assert c.post("/submit").text == "accepted"


def test_custom_field_and_header_names() -> None:
    app = csrf_app()
    app.config.update(CSRF_FIELD_NAME="_token", CSRF_HEADER_NAME="X-XSRF-Token")
    c = app.test_client()
    token = token_from(c)
    assert c.post("/submit", data={"_token": token}).text == "accepted"
    assert c.post("/submit", headers={"X-XSRF-Token": token}).text == "accepted"
    assert c.post("/submit", data={"csrf_token": token}).status_code == 403


def test_csrf_on_a_live_server(live_server: Any) -> None:
    server = live_server(csrf_app())
    with httpx.Client(base_url=server.url, timeout=5) as c:
        token = token_from(c)
        assert c.post("/submit", data={"a": "1"}).status_code == 403
        assert c.post("/submit", data={"csrf_token": token}).text == "accepted"
