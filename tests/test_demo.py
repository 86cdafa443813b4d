"""The demo site (static/, templates/, examples/demo.py): over httpx, from the CLI, and in headless Chromium."""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from conftest import REPO_ROOT, LiveServer, free_port, start_cli, wait_for_port

DEMO = os.path.join(REPO_ROOT, "examples", "demo.py")


def load_demo_app() -> Any:
    spec = importlib.util.spec_from_file_location("microweb_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture(scope="module")
def demo() -> Iterator[LiveServer]:
    server = LiveServer(load_demo_app().handle)
    yield server
    server.stop()


def test_demo_site_pages(demo: LiveServer) -> None:
    with httpx.Client(base_url=demo.url) as c:
        r = c.get("/")
        assert r.status_code == 200 and "microweb demo" in r.text
        assert c.get("/about").status_code == 200 and 'id="about"' in c.get("/about").text
        assert c.get("/css/site.css").headers["content-type"] == "text/css; charset=utf-8"
        assert c.get("/images/logo.svg").headers["content-type"].startswith("image/svg+xml")
        assert c.get("/api/hello").json() == {"hello": "world"}
        r = c.get("/no/such/page")
        assert r.status_code == 404
        assert 'id="not-found"' in r.text and "/no/such/page" in r.text
        assert '<link rel="stylesheet" href="/css/site.css">' in r.text  # extends base.html


def test_demo_500_page_extends_base(demo: LiveServer) -> None:
    app = load_demo_app()

    @app.get("/boom")
    def boom(request: Any) -> str:
        raise RuntimeError("boom")

    server = LiveServer(app.handle)
    try:
        r = httpx.get(server.url + "/boom")
        assert r.status_code == 500
        assert 'id="server-error"' in r.text and "/css/site.css" in r.text
    finally:
        server.stop()


def test_readme_demo_command_works_from_any_directory(tmp_path: Path) -> None:
    port = free_port()
    proc = start_cli("run", DEMO, "--port", str(port), cwd=str(tmp_path))
    try:
        wait_for_port("127.0.0.1", port)
        assert "microweb demo" in httpx.get(f"http://127.0.0.1:{port}/").text
        assert httpx.get(f"http://127.0.0.1:{port}/css/site.css").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


# -- headless Chromium, driven through chromedriver's WebDriver HTTP API (no selenium) --------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


class WebDriver:
    """The few WebDriver commands the test needs, over httpx."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--window-size=1024,768"]}}}}
        r = self.http.post("/session", json=caps)
        r.raise_for_status()
        self.session = r.json()["value"]["sessionId"]

    def get(self, url: str) -> None:
        self.http.post(f"/session/{self.session}/url", json={"url": url}).raise_for_status()

    def script(self, source: str) -> Any:
        r = self.http.post(f"/session/{self.session}/execute/sync", json={"script": source, "args": []})
        r.raise_for_status()
        return r.json()["value"]

    def quit(self) -> None:
        try:
            self.http.delete(f"/session/{self.session}")
        finally:
            self.http.close()


PAGE_FACTS = """
const img = document.querySelector('header img');
const h1 = document.querySelector('h1');
return {title: document.title, h1: h1 ? h1.textContent : null,
        imageWidth: img && img.complete ? img.naturalWidth : 0,
        h1Color: h1 ? getComputedStyle(h1).color : null,
        text: document.body.innerText};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium test needs the Debian packages chromium and chromium-driver")
    port = free_port()
    proc = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port)
        driver = WebDriver(f"http://127.0.0.1:{port}")
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_chromium_loads_the_demo_site_and_its_404_page(demo: LiveServer, browser: WebDriver) -> None:
    accent = "rgb(37, 99, 235)"  # static/css/site.css: proof the stylesheet arrived and applied
    browser.get(demo.url + "/")
    facts = browser.script(PAGE_FACTS)
    assert facts["title"] == "microweb demo"
    assert facts["imageWidth"] == 64  # the SVG logo loaded
    assert facts["h1Color"] == accent
    browser.get(demo.url + "/about")
    facts = browser.script(PAGE_FACTS)
    assert facts["h1"] == "About" and facts["h1Color"] == accent
    browser.get(demo.url + "/no/such/page")
    facts = browser.script(PAGE_FACTS)
    assert facts["title"] == "Page not found"
    assert "There is nothing at /no/such/page" in facts["text"]
    assert facts["imageWidth"] == 64 and facts["h1Color"] == accent
