"""The shortcuts of the hot path give exactly what the general path gives."""
from __future__ import annotations

import json

from microweb import App, Request, Response
from microweb.http.parser import Limits, ProtocolError, RequestParser

BROWSER = (
    b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: test\r\nAccept: */*\r\nCookie: a=1; b=2\r\n\r\n"
)


def test_shared_header_block_is_reused_across_parsers() -> None:
    limits = Limits()
    first = RequestParser(limits).receive(BROWSER)[0]
    second = RequestParser(limits).receive(BROWSER)[0]
    assert first.headers is second.headers
    assert second.headers.get("cookie") == "a=1; b=2"


def test_shared_header_blocks_respect_their_own_limits() -> None:
    """A block accepted under loose limits is not reused under strict ones."""
    many = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(20)) + b"\r\n"
    assert RequestParser(Limits()).receive(many)
    strict = RequestParser(Limits(max_header_count=10))
    assert strict.receive(many) == []
    assert isinstance(strict.error, ProtocolError) and strict.error.status == 431


def test_shared_block_keeps_version_rules_apart() -> None:
    limits = Limits()
    no_host_10 = b"GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"
    assert RequestParser(limits).receive(no_host_10)
    p = RequestParser(limits)
    assert p.receive(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n") == []
    assert p.error is not None and p.error.status == 400


def _respond(app: App, raw: bytes) -> bytes:
    request = RequestParser(request_class=Request).receive(raw)[0]
    out = app.handle(request)
    assert isinstance(out, bytes)
    return out


def _split(response: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Date:")]
    return lines, body


def test_str_and_json_fast_paths_match_the_response_path() -> None:
    app = App(static_folder=None)

    @app.route("/s")
    def s(request):  # type: ignore[no-untyped-def]
        return "héllo"

    @app.route("/S")
    def big_s(request):  # type: ignore[no-untyped-def]
        return Response("héllo")

    @app.route("/j")
    def j(request):  # type: ignore[no-untyped-def]
        return {"a": [1, 2.5, None, True, "é"]}

    @app.route("/J")
    def big_j(request):  # type: ignore[no-untyped-def]
        return Response(json.dumps({"a": [1, 2.5, None, True, "é"]}, ensure_ascii=False, separators=(",", ":")),
                        content_type="application/json")

    fast, slow = _respond(app, b"GET /s HTTP/1.1\r\nHost: a\r\n\r\n"), _respond(app, b"GET /S HTTP/1.1\r\nHost: a\r\n\r\n")
    assert _split(fast) == _split(slow)
    fast, slow = _respond(app, b"GET /j HTTP/1.1\r\nHost: a\r\n\r\n"), _respond(app, b"GET /J HTTP/1.1\r\nHost: a\r\n\r\n")
    assert _split(fast) == _split(slow)
    assert json.loads(_split(fast)[1]) == {"a": [1, 2.5, None, True, "é"]}


def test_unserializable_json_is_a_500_not_a_crash() -> None:
    app = App(static_folder=None)

    @app.route("/bad")
    def bad(request):  # type: ignore[no-untyped-def]
        return {"a": object()}

    assert _respond(app, b"GET /bad HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 500 ")


def test_unknown_method_is_501_and_known_unrouted_is_405() -> None:
    app = App(static_folder=None)

    @app.route("/")
    def index(request):  # type: ignore[no-untyped-def]
        return "x"

    @app.route("/purge", methods=["PURGE"])
    def purge(request):  # type: ignore[no-untyped-def]
        return "purged"

    assert _respond(app, b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 501 ")
    assert _respond(app, b"POST / HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    assert _respond(app, b"PURGE /purge HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    assert _respond(app, b"PURGE / HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 405 ")


def test_static_shortcut_never_hides_a_new_route_or_a_changed_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "page.txt").write_text("one")
    app = App(static_folder=tmp_path, template_folder=None)
    get = b"GET /page.txt HTTP/1.1\r\nHost: a\r\n\r\n"
    assert _respond(app, get).endswith(b"one")
    assert "/page.txt" in app._static_paths
    assert _respond(app, get).endswith(b"one")  # the shortcut
    (tmp_path / "page.txt").write_text("two!")
    assert _respond(app, get).endswith(b"two!")  # changed file: never stale

    @app.route("/page.txt")
    def page(request):  # type: ignore[no-untyped-def]
        return "routed"

    assert _respond(app, get).endswith(b"routed")  # routes win, even over a cached static path


def test_static_shortcut_respects_hooks_and_methods(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.txt").write_text("file")
    app = App(static_folder=tmp_path, template_folder=None)
    get = b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n"
    assert _respond(app, get).endswith(b"file")
    assert _respond(app, b"POST /a.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").startswith(
        b"HTTP/1.1 405 ")
    seen = []

    @app.after_request
    def mark(request, response):  # type: ignore[no-untyped-def]
        seen.append(request.path)
        response.headers["X-Hook"] = "1"
        return response

    assert b"X-Hook: 1" in _respond(app, get)
    assert seen == ["/a.txt"]


def test_an_internal_error_costs_one_connection_not_the_server(live_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import socket

    import httpx

    from microweb.server.reactor import Server

    app = App(static_folder=None, template_folder=None)

    @app.route("/")
    def index(request):  # type: ignore[no-untyped-def]
        return "ok"

    @app.route("/big")
    def big(request):  # type: ignore[no-untyped-def]
        return "x" * (32 << 20)  # too large for one send: the loop must call flush later

    real = Server.flush
    armed = {"flush": True}

    def flaky_flush(self, conn):  # type: ignore[no-untyped-def]
        if armed["flush"] and conn.outbox:
            armed["flush"] = False
            raise RuntimeError("simulated bug in the send path")
        return real(self, conn)

    monkeypatch.setattr(Server, "flush", flaky_flush)
    server = live_server(app)
    victim = socket.create_connection((server.host, server.port))
    victim.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
    victim.settimeout(10)
    received = 0
    try:
        while True:
            data = victim.recv(1 << 20)
            if not data:
                break
            received += len(data)
    except ConnectionResetError:
        pass
    victim.close()
    assert not armed["flush"]  # the simulated bug fired
    assert received < (32 << 20)  # and cost that connection its response
    assert httpx.get(server.url + "/", timeout=5).text == "ok"  # the server goes on


def test_higher_minor_version_is_served_as_http11() -> None:
    """RFC 9110 2.5: HTTP/1.2 is processed as HTTP/1.1 (Host required, answered as 1.1)."""
    app = App(static_folder=None, template_folder=None)

    @app.route("/")
    def index(request):  # type: ignore[no-untyped-def]
        return request.http_version

    out = _respond(app, b"GET / HTTP/1.2\r\nHost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"HTTP/1.1")
    parser = RequestParser(request_class=Request)
    assert parser.receive(b"GET / HTTP/1.9\r\n\r\n") == []
    assert parser.error is not None and parser.error.status == 400  # still needs Host
    parser = RequestParser(request_class=Request)
    assert parser.receive(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n") == []
    assert parser.error is not None and parser.error.status == 505
