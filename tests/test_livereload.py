"""--debug live reload: the injected script, the server-sent-events stream the reactor parks, and a real
browser (headless chromium through chromedriver) reloading itself when a template changes."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any, Callable

import httpx
import pytest

from conftest import free_port, wait_for_port
from microweb import App, Request
from microweb.debug import LIVERELOAD_PATH, SCRIPT, enable_debug


def make_site(tmp_path: Any) -> tuple[App, Any]:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text("<html><body><h1>first</h1></body></html>")
    static = tmp_path / "static"
    static.mkdir()
    (static / "plain.html").write_text("<html><body>static page</body></html>")
    (static / "app.css").write_text("h1 {}")
    app = App(template_folder=str(templates), static_folder=str(static))

    @app.route("/")
    def index(request: Request) -> str:
        return app.render_template("page.html")

    @app.route("/data")
    def data(request: Request) -> dict[str, int]:
        return {"x": 1}

    return app, templates


def open_stream(url_host: str, port: int) -> socket.socket:
    sock = socket.create_connection((url_host, port), timeout=5)
    sock.sendall(f"GET {LIVERELOAD_PATH} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_script_only_in_debug_html(tmp_path: Any, live_server: Callable[..., Any]) -> None:
    app, _ = make_site(tmp_path)
    plain = live_server(app)
    assert "EventSource" not in httpx.get(plain.url + "/").text
    assert httpx.get(plain.url + LIVERELOAD_PATH).status_code == 404

    app2, _ = make_site(tmp_path / "second" if (tmp_path / "second").mkdir() is None else tmp_path)
    enable_debug(app2)
    server = live_server(app2)
    page = httpx.get(server.url + "/")
    assert page.text == "<html><body><h1>first</h1>" + SCRIPT + "</body></html>"
    assert page.headers["content-length"] == str(len(page.content))
    static_page = httpx.get(server.url + "/plain.html")
    assert SCRIPT in static_page.text and static_page.text.startswith("<html><body>static page")
    assert httpx.get(server.url + "/app.css").text == "h1 {}"
    assert httpx.get(server.url + "/data").json() == {"x": 1}
    missing = httpx.get(server.url + "/nope")
    assert missing.status_code == 404 and SCRIPT in missing.text  # a fixed page reloads itself too
    assert "etag" not in static_page.headers  # the body is not the file's any more


def test_stream_pushes_reload_on_template_change(tmp_path: Any, live_server: Callable[..., Any]) -> None:
    app, templates = make_site(tmp_path)
    enable_debug(app, interval=0.05)
    server = live_server(app)
    sock = open_stream(server.host, server.port)
    try:
        head = read_until(sock, b"event: hello")
        assert head.startswith(b"HTTP/1.1 200 OK") and b"text/event-stream" in head
        assert b"Transfer-Encoding: chunked" in head and b"retry: 1000" in head
        # Parked: other requests go on normally.
        assert httpx.get(server.url + "/data").json() == {"x": 1}
        time.sleep(0.1)
        (templates / "page.html").write_text("<html><body><h1>second</h1></body></html>")
        assert b"event: reload" in read_until(sock, b"event: reload")
        assert "second" in httpx.get(server.url + "/").text  # the template was re-read too
    finally:
        sock.close()


def test_parked_streams_cost_no_cpu_and_stop_promptly(tmp_path: Any, live_server: Callable[..., Any]) -> None:
    app, _ = make_site(tmp_path)
    enable_debug(app, interval=5.0)  # no watcher polls during the measurement
    server = live_server(app)
    socks = [open_stream(server.host, server.port) for _ in range(50)]
    for s in socks:
        assert b"event: hello" in read_until(s, b"event: hello")
    cpu = time.process_time()
    time.sleep(1.0)
    used = time.process_time() - cpu
    assert used < 0.1, f"50 idle streams used {used:.3f} s of CPU in 1 s"
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3  # streams end at once instead of holding the graceful stop
    assert not server.thread.is_alive()
    for s in socks:
        assert read_until(s, b"0\r\n\r\n", 2).endswith(b"0\r\n\r\n")
        s.close()


def test_client_leaving_closes_its_stream(tmp_path: Any, live_server: Callable[..., Any]) -> None:
    app, _ = make_site(tmp_path)
    reloader = enable_debug(app, interval=5.0)
    assert reloader is not None
    server = live_server(app)
    sock = open_stream(server.host, server.port)
    read_until(sock, b"event: hello")
    sock.close()
    deadline = time.monotonic() + 3
    while server.server.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.server.connections
    assert reloader.broadcast(b": ping\n\n") == 0


def test_watcher_runs_only_while_a_page_listens(tmp_path: Any, live_server: Callable[..., Any]) -> None:
    app, _ = make_site(tmp_path)
    reloader = enable_debug(app, interval=0.05)
    assert reloader is not None
    server = live_server(app)
    assert reloader._thread is None  # no page open: nothing polls
    sock = open_stream(server.host, server.port)
    read_until(sock, b"event: hello")
    assert reloader._thread is not None and reloader._thread.is_alive()
    thread = reloader._thread
    sock.close()
    thread.join(3)
    assert not thread.is_alive() and reloader._thread is None


CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMEDRIVER and CHROMIUM), reason="chromium and chromedriver are not installed")
def test_browser_reloads_itself(tmp_path: Any, live_server: Callable[..., Any]) -> None:
    app, templates = make_site(tmp_path)
    enable_debug(app, interval=0.05)
    server = live_server(app)
    port = free_port()
    driver = subprocess.Popen([str(CHROMEDRIVER), f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port("127.0.0.1", port)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]}}}}
        with httpx.Client(base_url=base, timeout=60) as wd:
            session = wd.post("/session", json=caps).json()["value"]["sessionId"]
            try:
                def script(code: str) -> Any:
                    return wd.post(f"/session/{session}/execute/sync", json={"script": code, "args": []}).json()["value"]

                wd.post(f"/session/{session}/url", json={"url": server.url + "/"})
                assert script("return document.querySelector('h1').textContent") == "first"
                script("window.__marker = 'still the first load'; return 1")
                deadline = time.monotonic() + 5  # wait until the EventSource is connected
                while script("return performance.getEntriesByType('resource').length") == 0 \
                        and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.3)
                (templates / "page.html").write_text("<html><body><h1>edited</h1></body></html>")
                deadline = time.monotonic() + 10
                heading = None
                while time.monotonic() < deadline:
                    try:
                        heading = script("return document.querySelector('h1') && "
                                         "document.querySelector('h1').textContent")
                    except Exception:  # noqa: BLE001 - mid-navigation
                        heading = None
                    if heading == "edited":
                        break
                    time.sleep(0.1)
                assert heading == "edited"
                assert script("return window.__marker === undefined") is True  # a real reload, not a patch
            finally:
                wd.delete(f"/session/{session}")
    finally:
        driver.terminate()
        driver.wait(10)
