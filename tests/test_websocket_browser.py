"""Headless Chromium running a page's JavaScript WebSocket against a live server: echo and the chat example."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
from typing import Any, Callable

import pytest

from microweb import WebSocket
from tests.conftest import REPO_ROOT, LiveServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PROBE = """<!doctype html><meta charset="utf-8"><title>probe</title><script>
const results = {};
const base = `ws://${location.host}`;
function done() { fetch("/result", {method: "POST", body: JSON.stringify(results)}); }
const echo = new WebSocket(base + "/echo");
const big = "x".repeat(100000) + "end";
echo.onopen = () => { results.extensions = echo.extensions; echo.send("hello"); };
echo.onmessage = (event) => {
  if (event.data === "hello") { results.echo = event.data; echo.send(big); }
  else { results.big = event.data === big; echo.close(4000, "page done"); }
};
echo.onclose = (event) => {
  results.echoClose = event.code;
  const alice = new WebSocket(base + "/chat/room"), bob = new WebSocket(base + "/chat/room");
  const heard = [];
  let open = 0;
  const ready = () => { if (++open === 2) setTimeout(() => alice.send("hi bob"), 100); };
  alice.onopen = ready; bob.onopen = ready;
  bob.onmessage = (event) => {
    heard.push(event.data);
    if (event.data === "hi bob") { results.chat = heard; done(); }
  };
};
setTimeout(() => { results.timeout = true; done(); }, 20000);
</script>"""


def load_chat() -> Any:
    spec = importlib.util.spec_from_file_location("microweb_example_chat_browser",
                                                  os.path.join(REPO_ROOT, "examples", "chat.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian package chromium")
def test_chromium_echo_and_chat(live_server: Callable[..., LiveServer]) -> None:
    chat = load_chat()
    app = chat.app
    results: dict[str, Any] = {}
    got = threading.Event()

    @app.get("/probe")
    def probe(request: Any) -> str:
        return PROBE

    @app.post("/result")
    def result(request: Any) -> str:
        results.update(json.loads(request.body))
        got.set()
        return "ok"

    closes: list[tuple[int, str]] = []

    @app.websocket("/echo")
    def echo(request: Any, ws: WebSocket) -> None:
        ws.on_message(ws.send)
        ws.on_close(lambda code, reason: closes.append((code, reason)))

    server = live_server(app)
    profile = tempfile.mkdtemp(prefix="microweb-chromium-")
    browser = subprocess.Popen(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", server.url + "/probe"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert got.wait(60), "the page never reported"
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait(5)
        shutil.rmtree(profile, ignore_errors=True)
    assert "timeout" not in results, results
    assert results["echo"] == "hello" and results["big"] is True
    assert "permessage-deflate" in results["extensions"]
    assert results["echoClose"] == 4000 and closes == [(4000, "page done")]
    assert results["chat"][-1] == "hi bob"
