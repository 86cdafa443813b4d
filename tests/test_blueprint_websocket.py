"""``@bp.websocket``: a blueprint's websocket routes, under its prefix, with the app's origins."""
from __future__ import annotations

import pytest

from microweb import App, Blueprint
from microweb.testing import WebSocketDenied


def make_app() -> App:
    bp = Blueprint("live", url_prefix="/live")

    @bp.websocket("/echo/<room>")
    def echo(request, ws, room):  # type: ignore[no-untyped-def]
        @ws.on_message
        def got(message):  # type: ignore[no-untyped-def]
            ws.send(f"{room}:{message}")

    app = App(template_folder=None, static_folder=None, websocket_origins=["https://good.example"])
    app.register_blueprint(bp)
    return app


def test_a_blueprint_websocket_route_echoes_under_its_prefix() -> None:
    app = make_app()
    assert app.url_for("live.echo", room="a") == "/live/echo/a"
    with app.test_client().websocket_connect("/live/echo/a") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "a:hi"


def test_a_blueprint_websocket_route_uses_the_apps_origins() -> None:
    client = make_app().test_client()
    with pytest.raises(WebSocketDenied):
        with client.websocket_connect("/live/echo/a", headers={"Origin": "https://evil.example"}):
            pass
    with client.websocket_connect("/live/echo/b", headers={"Origin": "https://good.example"}) as ws:
        ws.send_text("x")
        assert ws.receive_text() == "b:x"
