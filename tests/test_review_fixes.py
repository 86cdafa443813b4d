"""Bugs an independent review found after the merges, each with the test that shows it fixed."""
from __future__ import annotations

import hmac
import socket
import time

import pytest

from microweb import App
from microweb.server.options import ServerOptions
from microweb.sessions import CookieSessionInterface
from tests.conftest import run_cli
from tests.hardening_util import ResponseReader


def _get(path: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


def test_a_deferred_upgrade_request_keeps_pipelined_responses_in_order(live_server) -> None:  # type: ignore[no-untyped-def]
    """Behind two large responses the upgrade request waits in ``conn.deferred``; the request after
    it must not be answered before it (it was, inline: big, BBBB, big, AAAA)."""
    app = App(template_folder=None, static_folder=None)
    big = "x" * (4 << 20)
    app.add_route("/big", lambda request: big, name="big")
    app.add_route("/a", lambda request: "AAAA", name="a")
    app.add_route("/b", lambda request: "BBBB", name="b")
    server = live_server(app, high_water="1K")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    sock.sendall(_get(b"/big") + _get(b"/big") + _get(b"/a", b"Upgrade: foo\r\nConnection: upgrade\r\n")
                 + _get(b"/b"))
    time.sleep(0.5)  # let the server fill the socket and defer the rest
    reader = ResponseReader(sock, timeout=10)
    bodies = []
    for _ in range(4):
        response = reader.next()
        assert response is not None
        bodies.append(response[2][:4])
    sock.close()
    assert bodies == [b"xxxx", b"xxxx", b"AAAA", b"BBBB"]


@pytest.mark.parametrize("secret", [8675309, True, 12.5, ["a"]])
def test_a_secret_key_that_is_not_text_is_refused_not_turned_into_nul_bytes(secret: object) -> None:
    app = App(template_folder=None, static_folder=None)
    app.config["SECRET_KEY"] = secret

    @app.get("/me")
    def me(request):  # type: ignore[no-untyped-def]
        return {"user": request.session.get("user")}

    # bytes(8675309) was the HMAC key: a cookie signed with NUL bytes was accepted.
    forged = CookieSessionInterface().sign(hmac.digest(b"\0" * 8675309, b"microweb.session", "sha256"),
                                           {"user": "admin"}, app.json_dumps)
    r = app.test_client().get("/me", headers={"cookie": "session=" + forged})
    assert r.status_code == 500 and "admin" not in r.text


def test_a_secret_key_from_the_environment_as_a_quoted_string_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROWEB_SECRET_KEY", '"93841029384710293847102938471029"')
    app = App(template_folder=None, static_folder=None)
    app.config.from_prefixed_env()

    @app.get("/set")
    def set_(request):  # type: ignore[no-untyped-def]
        request.session["n"] = 1
        return "ok"

    assert app.test_client().get("/set").status_code == 200


def test_clearing_the_session_deletes_the_cookie_with_the_attributes_it_was_set_with() -> None:
    app = App(template_folder=None, static_folder=None)
    app.config.update(SECRET_KEY="k" * 32, SESSION_COOKIE_NAME="__Host-session")

    @app.get("/set")
    def set_(request):  # type: ignore[no-untyped-def]
        request.session["user"] = "a"
        return "ok"

    @app.get("/logout")
    def logout(request):  # type: ignore[no-untyped-def]
        request.session.clear()
        return "bye"

    client = app.test_client(base_url="https://testserver")
    assert "Secure" in client.get("/set").headers["set-cookie"]
    deleted = client.get("/logout").headers["set-cookie"]
    assert deleted.startswith("__Host-session=;") and "Max-Age=0" in deleted
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in deleted


@pytest.mark.parametrize("flags", [["--reload", "--reload-interval", "nan"], ["--reload", "--reload-interval", "inf"],
                                   ["--backlog", "99999999999999999999"], ["--threads", "1e400"]])
def test_out_of_range_numbers_on_the_command_line_are_usage_errors(flags: list[str]) -> None:
    r = run_cli("run", "tests/apps/behaviour.py", "--port", "0", *flags)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("microweb: error:") and len(r.stderr.strip().splitlines()) == 1


def test_server_options_refuse_infinite_counts_with_value_error() -> None:
    with pytest.raises(ValueError, match="--threads"):
        ServerOptions(threads=float("inf"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--backlog"):
        ServerOptions(backlog=1 << 40)
