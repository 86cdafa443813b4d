"""Trusted-proxy headers: X-Forwarded-For/-Proto/-Host and RFC 7239 Forwarded."""
from __future__ import annotations

from typing import Any, Callable

import httpx
import pytest

from microweb import App, Request
from microweb.http.forwarded import ProxyRequestParser, TrustedProxies, apply_forwarded, parse_forwarded
from microweb.http.parser import Limits, RequestParser
from microweb.http.datastructures import Headers


def make_app() -> App:
    app = App(template_folder=None, static_folder=None)

    @app.route("/who")
    def who(request: Request) -> dict[str, Any]:
        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host,
                "external": request.url_for("who", _external=True, page=2),
                "app_external": app.url_for("who", _external=True, _request=request)}

    return app


def _request(headers: list[tuple[str, str]], remote: str = "127.0.0.1") -> Request:
    return Request("GET", "/", "HTTP/1.1", Headers([("Host", "backend:8000"), *headers]), True, remote)


def test_parse_forwarded() -> None:
    value = 'for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711";Host="ex.com"'
    assert parse_forwarded(value) == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"},
        {"for": "[2001:db8:cafe::17]:4711", "host": "ex.com"},
    ]
    assert parse_forwarded("garbage;;, for=1.2.3.4") == [{"for": "1.2.3.4"}]


def test_trusted_proxies() -> None:
    trusted = TrustedProxies("127.0.0.1, 10.0.0.0/8, ::1")
    assert "127.0.0.1" in trusted and "::ffff:127.0.0.1" in trusted and "10.2.3.4" in trusted
    assert "::1" in trusted and "11.0.0.1" not in trusted and "" not in trusted
    assert "anything" in TrustedProxies("*")
    assert not TrustedProxies("")
    with pytest.raises(ValueError):
        TrustedProxies("not-an-ip")


def test_x_forwarded_headers() -> None:
    trusted = TrustedProxies("127.0.0.1")
    r = _request([("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"),
                  ("X-Forwarded-Host", "www.example.com")])
    assert apply_forwarded(r, trusted)
    assert (r.remote_addr, r.scheme, r.host) == ("203.0.113.9", "https", "www.example.com")


def test_client_is_rightmost_untrusted_hop() -> None:
    """A client cannot pick its address by sending its own X-Forwarded-For: the proxy appends."""
    trusted = TrustedProxies("127.0.0.1, 10.0.0.0/8")
    r = _request([("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.0.0.5")])
    apply_forwarded(r, trusted)
    assert r.remote_addr == "198.51.100.7"
    r = _request([("X-Forwarded-For", "10.0.0.9, 10.0.0.5")])
    apply_forwarded(r, trusted)
    assert r.remote_addr == "10.0.0.9"  # all trusted: the leftmost


def test_forwarded_header_wins_and_gives_proto_host() -> None:
    trusted = TrustedProxies("127.0.0.1")
    r = _request([("Forwarded", 'for="[2001:db8::1]:4711";proto=https;host=site.example'),
                  ("X-Forwarded-For", "1.1.1.1")])
    apply_forwarded(r, trusted)
    assert (r.remote_addr, r.scheme, r.host) == ("2001:db8::1", "https", "site.example")


def test_bad_values_are_ignored() -> None:
    trusted = TrustedProxies("127.0.0.1")
    r = _request([("X-Forwarded-Proto", "gopher"), ("X-Forwarded-Host", "evil host/x")])
    apply_forwarded(r, trusted)
    assert (r.scheme, r.host) == ("http", "backend:8000")


def test_no_headers_no_work() -> None:
    """A trusted connection without forwarding headers looks at each header block once."""
    calls: list[Any] = []

    class CountingProxies(TrustedProxies):
        def apply(self, request: Any) -> None:
            calls.append(request)
            super().apply(request)

    parser = ProxyRequestParser(Limits(), "127.0.0.1", CountingProxies("127.0.0.1"))
    requests = parser.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 3)
    assert len(requests) == 3 and all(r.remote_addr == "127.0.0.1" for r in requests)
    assert calls == []  # no forwarding fields: never looked at
    requests = parser.receive(b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n" * 2)
    assert len(calls) == 2 and all(r.remote_addr == "203.0.113.9" for r in requests)


def test_untrusted_peer_gets_plain_parser(live_server: Callable[..., Any]) -> None:
    server = live_server(make_app(), forwarded_allow_ips="10.1.1.1")
    make = server.server.make_parser
    assert type(make(Limits(), "127.0.0.1")) is RequestParser
    assert type(make(Limits(), "10.1.1.1")) is ProxyRequestParser
    r = httpx.get(server.url + "/who", headers={"X-Forwarded-For": "9.9.9.9", "X-Forwarded-Proto": "https",
                                                 "X-Forwarded-Host": "evil.example"})
    data = r.json()
    assert data["addr"] == "127.0.0.1" and data["scheme"] == "http"
    assert data["host"] == f"127.0.0.1:{server.port}"
    assert data["external"] == f"http://127.0.0.1:{server.port}/who?page=2"


def test_trusted_proxy_live_and_url_for_external(live_server: Callable[..., Any]) -> None:
    server = live_server(make_app())  # the default trusts 127.0.0.1
    headers = {"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
    with httpx.Client(base_url=server.url) as client:
        data = client.get("/who", headers=headers).json()
        assert data == {"addr": "203.0.113.50", "scheme": "https", "host": "shop.example",
                        "external": "https://shop.example/who?page=2", "app_external": "https://shop.example/who"}
        plain = client.get("/who").json()  # same connection, no headers: nothing carried over
        assert plain["addr"] == "127.0.0.1" and plain["scheme"] == "http"
        data = client.get("/who", headers={"Forwarded": "for=198.51.100.1;proto=https;host=a.example"}).json()
        assert (data["addr"], data["external"]) == ("198.51.100.1", "https://a.example/who?page=2")


def test_url_for_external_needs_a_request() -> None:
    app = make_app()
    with pytest.raises(ValueError):
        app.url_for("who", _external=True)
    assert app.url_for("who", _external=True, _host="x.example", _scheme="https") == "https://x.example/who"
    assert app.url_for("who") == "/who"


def test_cli_forwarded_allow_ips_flag() -> None:
    from conftest import run_cli

    r = run_cli("run", "tests/apps/behaviour.py", "--forwarded-allow-ips", "nonsense", "--port", "0")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--forwarded-allow-ips" in r.stderr
