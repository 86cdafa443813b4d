"""examples/bigger: a package with two blueprints, CORS on the API, a mounted Flask app and
compression, tested in memory and run under ``microweb run``."""
from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any, Iterator

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port, run_cli, start_cli, wait_for_port

EXAMPLES = os.path.join(REPO_ROOT, "examples")

pytest.importorskip("flask")


@pytest.fixture
def bigger() -> Iterator[Any]:
    sys.path.insert(0, EXAMPLES)
    try:
        for name in [n for n in sys.modules if n == "bigger" or n.startswith("bigger.")]:
            del sys.modules[name]
        yield importlib.import_module("bigger")
    finally:
        sys.path.remove(EXAMPLES)


def test_site_api_legacy(bigger: Any) -> None:
    client = bigger.app.test_client()
    r = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert "The shop has 3 items" in r.text and 'href="/api/v1/items"' in r.text and 'href="/static/site.css"' in r.text
    r = client.get("/items")
    assert "fountain pen</a>: 38.50 EUR" in r.text and 'href="/items/2"' in r.text
    r = client.get("/items/9")
    assert r.status_code == 404 and "There is no item 9." in r.text and "<nav>" in r.text  # the site's own page
    assert client.get("/static/site.css").text.startswith("body")
    r = client.get("/api/v1/items")
    assert [i["url"] for i in r.json()["items"]] == ["/api/v1/items/1", "/api/v1/items/2", "/api/v1/items/3"]
    r = client.get("/api/v1/items/9", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.json() == {"status": 404, "error": "no item 9"}
    r = client.post("/api/v1/items", json={"name": "blotter", "price": 2})
    assert r.status_code == 201 and r.headers["location"] == "/api/v1/items/4"
    assert client.post("/api/v1/items", json={}).status_code == 422
    # CORS on the API only.
    origin = {"Origin": "http://localhost:5173"}
    r = client.get("/api/v1/items/1", headers=origin)
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert r.headers["access-control-allow-credentials"] == "true" and "Origin" in r.headers["vary"]
    r = client.options("/api/v1/items", headers={**origin, "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 204 and "POST" in r.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in client.get("/", headers=origin).headers
    # The Flask app under /legacy.
    assert 'href="/legacy/guestbook"' in client.get("/legacy/").text
    r = client.post("/legacy/guestbook", data={"name": "Ada"})
    assert r.status_code == 302 and r.headers["location"] == "/legacy/thanks?name=Ada"
    assert client.get(r.headers["location"]).text == "Thanks, Ada!"


def test_routes_command() -> None:
    proc = run_cli("routes", "bigger:app", cwd=EXAMPLES)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["METHODS", "PATH", "ENDPOINT", "BLUEPRINT"]
    assert any(line.split()[-2:] == ["api.get_item", "api"] for line in lines)
    assert any(line.split()[-2:] == ["site.index", "site"] for line in lines)
    assert any("/legacy/..." in line and "Flask" in line for line in lines)


@pytest.mark.slow
def test_runs_under_microweb_run() -> None:
    port = free_port()
    proc = start_cli("run", "bigger:app", "--port", str(port), "--threads", "2", cwd=EXAMPLES)
    try:
        wait_for_port("127.0.0.1", port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            r = client.get("/")
            assert r.status_code == 200 and r.headers["content-encoding"] == "gzip" and "Welcome" in r.text
            assert client.get("/api/v1/items/1").json()["name"] == "notebook"
            assert "Sign the guestbook" in client.get("/legacy/").text
            r = client.post("/legacy/guestbook", data={"name": "Grace"}, follow_redirects=True)
            assert r.text == "Thanks, Grace!"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "routes, 2 blueprints, mounted: /legacy, compression on" in out
