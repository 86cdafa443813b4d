"""WebSocket routes in the framework, through the in-memory test client (no socket)."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from microweb import App, Response, WebSocket, WebSocketClosed
from microweb.testing import WebSocketDenied


def make_app(**kwargs: Any) -> App:
    app = App(static_folder=None, **kwargs)
    closes: list[tuple[int, str]] = []
    app.closes = closes  # type: ignore[attr-defined]

    @app.websocket("/echo")
    def echo(request: Any, ws: WebSocket) -> None:
        ws.on_message(ws.send)
        ws.on_close(lambda code, reason: closes.append((code, reason)))

    @app.websocket("/rooms/<int:room>", subprotocols=["chat.v2", "chat.v1"])
    def room(request: Any, ws: WebSocket, room: int) -> None:
        ws.send(f"room {room} via {ws.subprotocol} for {ws.request.path}")
        ws.on_message(lambda message: ws.send(message.upper() if isinstance(message, str) else message))

    @app.websocket("/blocking")
    def blocking(request: Any, ws: WebSocket) -> None:
        total = 0
        for message in ws:
            if message == "end":
                ws.send(f"total {total}")
                ws.close(4000, "done")
                return
            total += int(message)

    @app.websocket("/hello")
    def hello(request: Any, ws: WebSocket) -> None:
        ws.send("hello and goodbye")  # registers nothing: closed with 1000 when it returns

    @app.websocket("/fails")
    def fails(request: Any, ws: WebSocket) -> None:
        raise RuntimeError("handler bug")

    @app.get("/plain")
    def plain(request: Any) -> str:
        return "plain page"

    return app


def test_echo_event_style() -> None:
    app = make_app()
    with app.test_client().websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_bytes() == b"\x00\x01"
        ws.close(4001, "bye")
    assert app.closes == [(4001, "bye")]  # type: ignore[attr-defined]


def test_path_params_subprotocol_and_request() -> None:
    with make_app().test_client().websocket_connect("/rooms/7", subprotocols=["chat.v1", "chat.v2"]) as ws:
        # The client's order of preference wins among the protocols the route speaks.
        assert ws.subprotocol == "chat.v1"
        assert ws.receive_text() == "room 7 via chat.v1 for /rooms/7"
        ws.send_text("shout")
        assert ws.receive_text() == "SHOUT"
    with make_app().test_client().websocket_connect("/rooms/1", subprotocols=["other"]) as ws:
        assert ws.subprotocol is None
        assert ws.receive_text() == "room 1 via None for /rooms/1"


def test_blocking_style_runs_in_a_thread_and_closes_with_its_code() -> None:
    with make_app().test_client().websocket_connect("/blocking") as ws:
        for n in ("1", "2", "39"):
            ws.send_text(n)
        ws.send_text("end")
        assert ws.receive_text() == "total 42"
        with pytest.raises(WebSocketClosed) as info:
            ws.receive_text()
        assert (info.value.code, info.value.reason) == (4000, "done")


def test_a_handler_that_registers_nothing_is_closed_with_1000() -> None:
    with make_app().test_client().websocket_connect("/hello") as ws:
        assert ws.receive_text() == "hello and goodbye"
        with pytest.raises(WebSocketClosed) as info:
            ws.receive_text()
        assert info.value.code == 1000


def test_a_failing_handler_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    with make_app().test_client().websocket_connect("/fails") as ws:
        with pytest.raises(WebSocketClosed) as info:
            ws.receive()
        assert info.value.code == 1011
    assert "handler bug" in caplog.text


def test_deflate_in_memory() -> None:
    with make_app().test_client().websocket_connect("/echo", deflate=True) as ws:
        assert ws.extensions is not None and ws.extensions.startswith("permessage-deflate")
        text = "compress me " * 500
        ws.send_text(text)
        assert ws.receive_text() == text


def test_plain_get_on_a_websocket_route_is_426() -> None:
    r = make_app().test_client().get("/echo")
    assert r.status_code == 426
    assert r.headers["upgrade"] == "websocket" and r.headers["sec-websocket-version"] == "13"
    assert "WebSocket endpoint" in r.text


def test_bad_version_and_key_through_the_app() -> None:
    client = make_app().test_client()
    base = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    r = client.get("/echo", headers={**base, "Sec-WebSocket-Version": "12"})
    assert r.status_code == 426 and r.headers["sec-websocket-version"] == "13"
    r = client.get("/echo", headers={**base, "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "short"})
    assert r.status_code == 400 and "Sec-WebSocket-Key" in r.text


def test_a_plain_route_answers_an_upgrade_request_as_usual() -> None:
    r = make_app().test_client().get("/plain", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert r.status_code == 200 and r.text == "plain page"


def test_websocket_connect_to_a_missing_route_is_denied() -> None:
    with pytest.raises(WebSocketDenied) as info:
        make_app().test_client().websocket_connect("/nowhere")
    assert info.value.status_code == 404


def test_origins_app_wide_and_per_route() -> None:
    app = make_app(websocket_origins=["https://good.example"])

    @app.websocket("/open", origins=["*"])
    def anyone(request: Any, ws: WebSocket) -> None:
        ws.on_message(ws.send)

    client = app.test_client()
    with pytest.raises(WebSocketDenied) as info:
        client.websocket_connect("/echo", headers={"Origin": "https://evil.example"})
    assert info.value.status_code == 403 and "evil.example" in info.value.response.text
    with client.websocket_connect("/echo", headers={"Origin": "https://GOOD.example"}) as ws:
        ws.send_text("ok")
        assert ws.receive_text() == "ok"
    with client.websocket_connect("/echo") as ws:  # no Origin: not a browser, allowed
        ws.send_text("ok")
        assert ws.receive_text() == "ok"
    with client.websocket_connect("/open", headers={"Origin": "https://evil.example"}) as ws:
        ws.send_text("ok")
        assert ws.receive_text() == "ok"


def test_hooks_run_and_their_headers_reach_the_101() -> None:
    app = make_app()
    seen: list[str] = []

    @app.before_request
    def auth(request: Any) -> Any:
        seen.append(request.path)
        if request.args.get("token") != "t":
            return Response("no token", 401)
        return None

    @app.after_request
    def cookie(request: Any, response: Response) -> Response:
        response.headers["X-Hook"] = "yes"
        return response

    client = app.test_client()
    with pytest.raises(WebSocketDenied) as info:
        client.websocket_connect("/echo")
    assert info.value.status_code == 401
    with client.websocket_connect("/echo?token=t") as ws:
        ws.send_text("in")
        assert ws.receive_text() == "in"
    assert seen == ["/echo", "/echo"]
    upgrade = app.handle(_handshake_request(app, "/echo?token=t"))
    assert b"X-Hook: yes\r\n" in upgrade.response_head(None)  # type: ignore[union-attr]


def _handshake_request(app: App, path: str) -> Any:
    from microweb.http.parser import RequestParser
    from microweb.http.websocket import client_handshake

    raw, _ = client_handshake(path, "testserver")
    return RequestParser(request_class=app.request_class).receive(raw)[0]


def test_messages_before_on_message_wait_in_order() -> None:
    app = App(static_folder=None)
    ready = threading.Event()

    @app.websocket("/late")
    def late(request: Any, ws: WebSocket) -> None:
        ready.wait(5)  # the client sends before the handler registers its callback
        ws.on_message(lambda m: ws.send("got " + m))

    with app.test_client().websocket_connect("/late") as ws:
        ws.send_text("one")
        ws.send_text("two")
        ready.set()
        assert ws.receive_text() == "got one"
        assert ws.receive_text() == "got two"
        ws.send_text("three")
        assert ws.receive_text() == "got three"


def test_websocket_route_under_wsgi_says_it_needs_microweb() -> None:
    app = make_app()
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/echo", "SERVER_NAME": "x", "SERVER_PORT": "80",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "HTTP_HOST": "x",
               "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade", "HTTP_SEC_WEBSOCKET_VERSION": "13",
               "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==", "wsgi.input": None}
    statuses: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    assert statuses == ["501 Not Implemented"]
    assert b"microweb's own server" in body


def test_server_options_and_generated_flags() -> None:
    import argparse

    from microweb.server.options import ServerOptions

    defaults = ServerOptions()
    assert (defaults.ws_max_message, defaults.ws_ping_interval, defaults.ws_ping_timeout, defaults.ws_deflate) == (
        1 << 20, 20.0, 20.0, True)
    parser = argparse.ArgumentParser()
    ServerOptions.add_arguments(parser)
    args = parser.parse_args(["--ws-max-message", "2M", "--ws-ping-interval", "0", "--ws-ping-timeout", "5",
                              "--ws-deflate", "off"])
    options = ServerOptions.from_arguments(args)
    assert (options.ws_max_message, options.ws_ping_interval, options.ws_ping_timeout, options.ws_deflate) == (
        2 << 20, 0.0, 5.0, False)
    with pytest.raises(ValueError, match="--ws-deflate"):
        ServerOptions(ws_deflate="maybe")
    with pytest.raises(ValueError, match="--ws-ping-interval"):
        ServerOptions(ws_ping_interval=-1)
    assert "--ws-max-message" in parser.format_help()


def test_compact_headers_behave_like_headers() -> None:
    from microweb.http.datastructures import CompactHeaders, Headers

    fields = [("Host", "a"), ("Cookie", "x=1"), ("cookie", "y=2"), ("X-Many", "1"), ("x-many", "2")]
    full, compact = Headers(fields), Headers(fields).compact()
    assert isinstance(compact, CompactHeaders) and compact.compact() is compact
    for name in ("host", "HOST", "cookie", "x-many", "missing"):
        assert compact.get(name) == full.get(name)
        assert compact.getlist(name) == full.getlist(name)
        assert (name in compact) == (name in full)
    assert compact["Cookie"] == "x=1; y=2" and compact.items() == full.items() and len(compact) == 5
    assert compact.by_name == full.by_name
    assert compact == full


def test_ws_request_keeps_the_fields_but_the_handshake_ones() -> None:
    app = App(static_folder=None)
    seen: dict[str, Any] = {}

    @app.websocket("/h")
    def h(request: Any, ws: WebSocket) -> None:
        seen.update(cookie=ws.request.cookies.get("s"), agent=ws.request.headers.get("user-agent"),
                    key=ws.request.headers.get("sec-websocket-key"), host=ws.request.host)
        ws.on_message(ws.send)

    with app.test_client().websocket_connect("/h", headers={"Cookie": "s=abc", "User-Agent": "t"}) as ws:
        ws.send_text("x")
        assert ws.receive_text() == "x"
    assert seen == {"cookie": "abc", "agent": "t", "key": None, "host": "testserver"}
