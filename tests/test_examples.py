"""The examples: imported and exercised through the test client; each one also runs under ``microweb run``."""
from __future__ import annotations

import importlib.util
import os
import signal
from types import ModuleType

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port, start_cli, wait_for_port

EXAMPLES = os.path.join(REPO_ROOT, "examples")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"microweb_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hello() -> None:
    c = load("hello").app.test_client()
    assert c.get("/").text == "Hello, World!"
    assert c.get("/hello/Ada").json() == {"greeting": "Hello, Ada!"}


def test_api() -> None:
    c = load("api").app.test_client()
    assert c.get("/api/items").json()["items"][0]["name"] == "notebook"
    r = c.post("/api/items", json={"name": " pen ", "price": 2})
    assert r.status_code == 201 and r.headers["location"] == "/api/items/2"
    assert c.get(r.headers["location"]).json() == {"id": 2, "name": "pen", "price": 2.0}
    assert c.get("/api/items?limit=1").json()["items"] == [{"id": 1, "name": "notebook", "price": 4.0}]
    r = c.post("/api/items", json={"price": -1})
    assert r.status_code == 422
    assert r.json()["fields"] == {"name": "required, a non-empty string", "price": "required, a number >= 0"}
    r = c.post("/api/items", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid JSON body")
    assert c.get("/api/items/99").json() == {"status": 404, "error": "no item 99"}
    assert c.get("/api/items/abc").status_code == 404
    assert c.patch("/api/items/2", json={"price": 3}).json()["price"] == 3.0
    r = c.put("/api/items/2", json={})
    assert r.status_code == 405 and "PATCH" in r.headers["allow"]
    assert c.delete("/api/items/2").status_code == 204
    assert c.get("/api/items/2").status_code == 404


def test_forms(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("UPLOAD_DIR", str(tmp_path))
    c = load("forms").app.test_client()
    r = c.get("/")
    assert r.status_code == 200 and 'enctype="multipart/form-data"' in r.text and "nothing yet" in r.text
    r = c.post("/", data={"name": ""}, files={"document": ("", b"")})
    assert r.status_code == 400 and "Please give your name." in r.text and "Please choose a file." in r.text
    r = c.post("/", data={"name": "Ada"}, files={"document": ("../../evil name.txt", b"payload")})
    assert r.status_code == 303 and r.headers["location"] == "/?saved=evilname.txt"
    assert (tmp_path / "evilname.txt").read_bytes() == b"payload"
    page = c.get(r.headers["location"]).text
    assert "Saved evilname.txt." in page and "<li>evilname.txt</li>" in page
    r = c.post("/", data={"name": "Ada"}, files={"document": ("big.bin", b"x" * (4 * 1024 * 1024 + 1))})
    assert r.status_code == 413


def test_streaming() -> None:
    c = load("streaming").app.test_client()
    r = c.get("/count?n=3")
    assert r.text == "1\n2\n3\n" and r.headers["transfer-encoding"] == "chunked"
    with c.stream("GET", "/events?n=2") as r:
        assert r.headers["content-type"] == "text/event-stream" and r.headers["cache-control"] == "no-cache"
        events = [e for e in r.read().decode().split("\n\n") if e]
    assert events == ["retry: 2000", 'id: 0\nevent: tick\ndata: {"tick": 0}',
                      'id: 1\nevent: tick\ndata: {"tick": 1}', "event: done\ndata: {}"]
    assert '/count?n=10' in c.get("/").text


@pytest.mark.slow
@pytest.mark.parametrize("name,path,expect", [
    ("hello", "/", "Hello, World!"),
    ("api", "/api/items/1", '"notebook"'),
    ("forms", "/", "<form"),
    ("streaming", "/count?n=2", "1\n2\n"),
    ("streaming", "/events?n=1", "event: done"),
    ("chat", "/", "new WebSocket"),
    ("ticker", "/", "new WebSocket"),
])
def test_examples_run_with_microweb_run(name: str, path: str, expect: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = start_cli("run", f"examples/{name}.py", "--port", str(port), cwd=REPO_ROOT)
    try:
        wait_for_port("127.0.0.1", port)
        r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
        assert r.status_code == 200 and expect in r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_chat_room_broadcast() -> None:
    chat = load("chat")
    client = chat.app.test_client()
    assert "new WebSocket" in client.get("/").text
    with client.websocket_connect("/chat/lobby") as alice:
        assert alice.receive_text() == "someone joined (1 here)"
        with client.websocket_connect("/chat/lobby") as bob, client.websocket_connect("/chat/other") as carol:
            assert alice.receive_text() == "someone joined (2 here)"
            assert bob.receive_text() == "someone joined (2 here)"
            assert carol.receive_text() == "someone joined (1 here)"
            alice.send_text("hi all")
            assert alice.receive_text() == "hi all" and bob.receive_text() == "hi all"
            with pytest.raises(TimeoutError):
                carol.receive_text(timeout=0.2)  # another room
        assert alice.receive_text() == "someone left (1 here)"
    assert chat.rooms == {}


def test_ticker_pushes_from_a_thread() -> None:
    import json
    import threading

    ticker = load("ticker")
    client = ticker.app.test_client()
    with client.websocket_connect("/prices") as a, client.websocket_connect("/prices") as b:
        sender = threading.Thread(target=ticker.publish, args=(json.dumps({"price": 101.5}),))
        sender.start()
        sender.join(5)
        # The ticker thread's own ticks (one a second) may come first.
        for ws in (a, b):
            prices = [json.loads(ws.receive_text(timeout=3))["price"] for _ in range(3)]
            assert 101.5 in prices and all(p > 0 for p in prices)
    assert ticker.subscribers == set()


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--workers", "2"], ["--threads", "2"]])
def test_ticker_under_microweb_run_with_a_real_client(extra: list[str]) -> None:
    import contextlib
    import json

    from websockets.sync.client import connect

    port = free_port()
    proc = start_cli("run", "examples/ticker.py", "--port", str(port), *extra, cwd=REPO_ROOT)
    try:
        wait_for_port("127.0.0.1", port)
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(connect(f"ws://127.0.0.1:{port}/prices", open_timeout=10))
                       for _ in range(4)]
            for ws in clients:
                assert json.loads(ws.recv(timeout=5))["price"] > 0
                assert json.loads(ws.recv(timeout=5))["price"] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
