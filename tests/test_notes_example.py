"""``examples/notes.py``: through the test client, and live under ``microweb run`` driven by headless
Chromium (log in, see the flash, log out) through chromedriver's WebDriver HTTP API."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from types import ModuleType
from typing import Any, Iterator

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port, start_cli, wait_for_port

NOTES = os.path.join(REPO_ROOT, "examples", "notes.py")


def load_notes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("microweb_example_notes", NOTES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def flashes(page: str) -> list[str]:
    return re.findall(r'<p class="flash [a-z]+" role="status">([^<]*)</p>', page)


def test_notes_log_in_add_a_note_and_log_out() -> None:
    notes = load_notes()
    c = notes.app.test_client()
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"
    page = c.get(r.headers["location"]).text
    assert flashes(page) == ["Log in first."] and 'id="login-link"' in page
    # A form without its token, or with a wrong one, is refused.
    assert c.post("/login", data={"username": "ada", "password": "lovelace"}).status_code == 403
    assert c.post("/login", data={"username": "ada", "password": "lovelace", "csrf_token": "x"}).status_code == 403
    r = c.post("/login", data={"username": "ada", "password": "nope", "csrf_token": csrf(page)})
    assert r.status_code == 400 and flashes(r.text) == ["Wrong user name or password."]
    r = c.post("/login", data={"username": "Ada", "password": "lovelace", "csrf_token": csrf(r.text), "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires" not in cookie
    page = c.get("/").text
    assert flashes(page) == ["Welcome back, Ada Lovelace."]
    assert "Signed in as Ada Lovelace" in page  # the context processor's user, in the layout
    assert flashes(c.get("/").text) == []  # shown once
    r = c.post("/notes", data={"text": "buy <milk>", "csrf_token": csrf(page)})
    assert r.status_code == 303
    page = c.get("/").text
    assert flashes(page) == ["Note saved."] and "buy &lt;milk&gt;" in page and "just now" in page
    data = c.get("/api/notes").json()
    assert data["user"] == "ada" and data["notes"][0]["text"] == "buy <milk>"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$", data["notes"][0]["created"])
    missing = c.get("/no/such/page")
    assert missing.status_code == 404 and "There is no page at /no/such/page, Ada Lovelace." in missing.text
    note_id = data["notes"][0]["id"]
    assert c.post(f"/notes/{note_id}/delete", data={"csrf_token": csrf(page)}).status_code == 303
    assert c.get("/api/notes").json()["notes"] == []
    r = c.post("/logout", data={"csrf_token": csrf(page)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = c.get("/login").text
    assert flashes(page) == ["You have been logged out."] and "Signed in" not in page
    assert c.get("/api/notes").status_code == 401
    assert c.get("/").status_code == 303


def test_notes_remember_me_makes_a_permanent_session() -> None:
    c = load_notes().app.test_client()
    page = c.get("/login").text
    r = c.post("/login", data={"username": "grace", "password": "hopper", "remember": "on", "csrf_token": csrf(page)})
    assert "Max-Age=604800" in r.headers["set-cookie"]


def test_notes_refuses_an_open_redirect() -> None:
    c = load_notes().app.test_client()
    page = c.get("/login").text
    r = c.post("/login", data={"username": "ada", "password": "lovelace", "csrf_token": csrf(page),
                                "next": "//evil.example/"})
    assert r.headers["location"] == "/"


# -- live, in headless Chromium ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key


class Browser:
    """The few W3C WebDriver commands the test needs, over httpx (no selenium)."""

    def __init__(self, url: str, profile: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        options = {"binary": CHROMIUM, "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", "--window-size=1024,768"]}
        r = self.http.post("/session", json={"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        r.raise_for_status()
        self.base = f"/session/{r.json()['value']['sessionId']}"

    def command(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, self.base + path, json=body)
        r.raise_for_status()
        return r.json()["value"]

    def get(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return self.command("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]  # type: ignore[no-any-return]

    def type(self, css: str, text: str) -> None:
        self.command("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self.command("POST", f"/element/{self.find(css)}/click", {})

    def script(self, source: str) -> Any:
        return self.command("POST", "/execute/sync", {"script": source, "args": []})

    def wait_for(self, source: str, timeout: float = 20.0) -> Any:
        """Run ``source`` until it returns something truthy (a page load after a click)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.script(source)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def cookies(self) -> list[dict[str, Any]]:
        return self.command("GET", "/cookie")  # type: ignore[no-any-return]

    def quit(self) -> None:
        try:
            self.http.delete(self.base)
        finally:
            self.http.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("the headless Chromium test needs the Debian packages chromium and chromium-driver")
    port = free_port()
    driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="microweb-chromium-")
    try:
        wait_for_port("127.0.0.1", port)
        b = Browser(f"http://127.0.0.1:{port}", profile)
        try:
            yield b
        finally:
            b.quit()
    finally:
        driver.terminate()
        driver.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def notes_server() -> Iterator[str]:
    port = free_port()
    proc = start_cli("run", NOTES, "--port", str(port))
    try:
        wait_for_port("127.0.0.1", port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err


FLASHES = "return Array.from(document.querySelectorAll('.flash')).map(e => e.textContent)"


@pytest.mark.slow
def test_chromium_logs_in_sees_the_flash_and_logs_out(notes_server: str, browser: Browser) -> None:
    browser.get(notes_server + "/")
    assert browser.wait_for("return location.pathname === '/login' && document.readyState === 'complete'")
    assert browser.script(FLASHES) == ["Log in first."]
    browser.type("#username", "ada")
    browser.type("#password", "lovelace")
    browser.click("#submit")
    assert browser.wait_for("return location.pathname === '/' && !!document.querySelector('#who')")
    assert browser.script(FLASHES) == ["Welcome back, Ada Lovelace."]
    assert browser.script("return document.querySelector('#who').textContent.trim()").startswith(
        "Signed in as Ada Lovelace")
    cookie = next(c for c in browser.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] is True and cookie.get("sameSite") == "Lax" and cookie["secure"] is False
    assert browser.script("return document.cookie") == ""  # HttpOnly: invisible to scripts
    browser.get(notes_server + "/")  # the flash was shown once
    assert browser.wait_for("return document.readyState === 'complete' && !!document.querySelector('#who')")
    assert browser.script(FLASHES) == []
    browser.click("#logout")
    assert browser.wait_for("return location.pathname === '/login' && !!document.querySelector('#login-link')")
    assert browser.script(FLASHES) == ["You have been logged out."]
    assert browser.script("return document.body.innerText").count("Signed in") == 0
