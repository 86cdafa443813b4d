"""Issue 15's protocol items: chunk lines, request-target forms, absolute-form authority, the field-line cap.

What is refused is in the hostile table (``test_hostile.py``: each case's status, and
nothing after it answered, live); here is what must still be accepted and what the
accepted requests say.
"""
from __future__ import annotations

from typing import Any, Callable

import httpx
import pytest

from conftest import read_response, recv_until_closed
from microweb import App
from microweb.http.parser import Limits, ProtocolError, RequestParser
from microweb.http.request import HTTPRequest, target_authority
from microweb.server.options import ServerOptions
from microweb.wsgi import WSGIAdapter


def parse(data: bytes, limits: Limits | None = None) -> tuple[list[HTTPRequest], ProtocolError | None]:
    parser = RequestParser(limits or Limits())
    got = parser.receive(data)
    return got, parser.error


def chunked(body: bytes) -> bytes:
    return b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body


# -- chunk lines --------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    b"5", b"05", b"5;a", b"5;a=b", b'5;a="b c"', b'5;a="q\\"d"', b"5 ;a=b", b"5\t;a", b"5; a", b"5;a =b", b"5;a= b",
    b"5;a;b=1;c=\"\"", b"5;a=\"\xe9\"",
])
def test_chunk_lines_the_grammar_allows(line: bytes) -> None:
    got, error = parse(chunked(line + b"\r\nhello\r\n0\r\n\r\n"))
    assert error is None and [r.body for r in got] == [b"hello"]


@pytest.mark.parametrize("line", [b"5 ", b"5\t", b"5  ", b"5;", b"5; ", b"5;=b", b'5;a="b', b"5;a=\x01", b"5;a=b c",
                                  b"5;a=b;", b"5;a==b", b"5 x", b'5;a="b"c'])
def test_chunk_lines_outside_the_grammar(line: bytes) -> None:
    got, error = parse(chunked(line + b"\r\nhello\r\n0\r\n\r\n"))
    assert got == [] and error is not None and error.status == 400, line


def test_last_chunk_with_whitespace_is_refused() -> None:
    got, error = parse(chunked(b"5\r\nhello\r\n0 \r\n\r\n"))
    assert got == [] and error is not None and error.status == 400


# -- request-target forms --------------------------------------------------------------------------

def test_the_four_forms_are_accepted() -> None:
    data = (b"GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET http://abs.example:8080/p?q=1 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
            b"CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n")
    got, error = parse(data)
    assert error is None
    assert [(r.method, r.path, r.query_string) for r in got] == [
        ("GET", "/a", "b"), ("GET", "/p", "q=1"), ("OPTIONS", "*", ""), ("CONNECT", "tunnel.example:443", "")]


@pytest.mark.parametrize("target", ["HTTPS://x/", "http://x", "http://x:8080", "http://[::1]:8000/a", "http://x?q",
                                    "http://x.example/a%20b?c=d#e", "http://a-b.c_d~e/"])
def test_absolute_forms(target: str) -> None:
    got, error = parse(b"GET %s HTTP/1.1\r\nHost: other\r\n\r\n" % target.encode())
    assert error is None and len(got) == 1


@pytest.mark.parametrize("target", ["ftp://x/", "http:/x", "http//x/", "mailto:a@b", "x.example:80", "http://x y/",
                                    "http://u:p@x/", "http://[zz]/", "?a", "#a"])
def test_targets_in_no_form(target: str) -> None:
    got, error = parse(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
    assert got == [] and error is not None and error.status == 400, target


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "DELETE", "CONNECT", "FOO"])
def test_asterisk_is_only_for_options(method: str) -> None:
    got, error = parse(b"%s * HTTP/1.1\r\nHost: x\r\n\r\n" % method.encode())
    assert got == [] and error is not None and error.status == 400


@pytest.mark.parametrize("target", ["x:443", "127.0.0.1:8080", "[::1]:443", "a.b.c:1"])
def test_authority_form_with_connect(target: str) -> None:
    got, error = parse(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target.encode(), target.encode()))
    assert error is None and len(got) == 1
    assert got[0].host == target and got[0].url == "http://" + target


@pytest.mark.parametrize("target", ["/", "x", "x:", "x:port", ":443", "x:443/p", "http://x:443", "x:123456"])
def test_connect_needs_host_and_port(target: str) -> None:
    got, error = parse(b"CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
    assert got == [] and error is not None and error.status == 400, target


def test_connect_is_501_unless_a_route_serves_it(live_server: Callable[..., Any]) -> None:
    app = App(static_folder=None)

    @app.get("/")
    def index(request: Any) -> str:
        return "home"

    server = live_server(app)
    with server.connect() as sock:
        sock.sendall(b"CONNECT x.example:443 HTTP/1.1\r\nHost: x.example:443\r\n\r\n")
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 501 ")
    with server.connect() as sock:  # an origin-form CONNECT is a malformed request, not an unserved method
        sock.sendall(b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_until_closed(sock).startswith(b"HTTP/1.1 400 ")


# -- the absolute-form's authority wins over Host (RFC 9112 3.2.2) ---------------------------------

def test_absolute_form_authority_wins_over_host() -> None:
    got, error = parse(b"GET http://Target.example:8080/a/b?x=1 HTTP/1.1\r\nHost: header.example\r\n\r\n")
    assert error is None
    request = got[0]
    assert request.host == "Target.example:8080"
    assert request.url == "http://Target.example:8080/a/b?x=1"
    assert request.path == "/a/b" and request.query_string == "x=1"


def test_origin_form_still_uses_host() -> None:
    got, _ = parse(b"GET /a HTTP/1.1\r\nHost: header.example\r\n\r\n")
    assert got[0].host == "header.example" and got[0].url == "http://header.example/a"


def test_absolute_form_still_needs_host_in_http11() -> None:
    got, error = parse(b"GET http://x.example/ HTTP/1.1\r\n\r\n")
    assert got == [] and error is not None and error.status == 400 and "Host" in error.message


def test_absolute_form_in_http10_without_host() -> None:
    got, error = parse(b"GET http://x.example/a HTTP/1.0\r\n\r\n")
    assert error is None and got[0].host == "x.example" and got[0].url == "http://x.example/a"


@pytest.mark.parametrize("target, authority", [
    ("/a", None), ("*", None), ("http://a.b/c", "a.b"), ("http://a.b:1?q", "a.b:1"), ("https://[::1]:2/", "[::1]:2"),
    ("http://a.b#f", "a.b"), ("x.y:443", "x.y:443"),
])
def test_target_authority(target: str, authority: str | None) -> None:
    assert target_authority(target) == authority


def test_live_app_and_wsgi_see_the_target_authority(live_server: Callable[..., Any]) -> None:
    app = App(static_folder=None)

    @app.get("/where")
    def where(request: Any) -> dict[str, str]:
        return {"host": request.host, "url": request.url}

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["HTTP_HOST"].encode()]

    native = live_server(app)
    wsgi = live_server(WSGIAdapter(wsgi_app))
    request = b"GET http://target.example:81/where HTTP/1.1\r\nHost: header.example\r\n\r\n"
    with native.connect() as sock:
        sock.sendall(request)
        _, body = read_response(sock)
    assert httpx.Response(200, content=body).json() == {"host": "target.example:81",
                                                        "url": "http://target.example:81/where"}
    with wsgi.connect() as sock:
        sock.sendall(request)
        _, body = read_response(sock)
    assert body == b"target.example:81"
    with wsgi.connect() as sock:  # HTTP/1.0 with no Host field at all
        sock.sendall(b"GET http://ten.example/where HTTP/1.0\r\n\r\n")
        _, body = read_response(sock)
    assert body == b"ten.example"


# -- one field line's cap (max_field_line) ---------------------------------------------------------

def test_field_line_cap_default_and_limit() -> None:
    assert Limits().max_field_line == 8192 and ServerOptions().max_field_line == 8192
    line = b"Cookie: " + b"a" * (8192 - 8)
    got, error = parse(b"GET / HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n")
    assert error is None and len(got) == 1  # exactly 8192 bytes: allowed
    got, error = parse(b"GET / HTTP/1.1\r\nHost: x\r\n" + line + b"a\r\n\r\n")
    assert got == [] and error is not None and error.status == 431


def test_field_line_cap_is_configurable(live_server: Callable[..., Any]) -> None:
    assert ServerOptions(max_field_line="16K").max_field_line == 16384
    assert ServerOptions().limits().max_field_line == 8192
    app = App(static_folder=None)

    @app.get("/")
    def index(request: Any) -> str:
        return str(len(request.headers["cookie"]))

    cookie = "a" * 12000
    small = live_server(app)
    assert httpx.get(small.url, headers={"Cookie": cookie}).status_code == 431
    large = live_server(app, max_field_line="16K")
    r = httpx.get(large.url, headers={"Cookie": cookie})
    assert (r.status_code, r.text) == (200, "12000")
    assert httpx.get(large.url, headers={"Cookie": "a" * 17000}).status_code == 431


def test_field_line_cap_applies_to_a_partial_head() -> None:
    parser = RequestParser(Limits(max_field_line=100))
    assert parser.receive(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 90) == []
    assert parser.error is None
    parser.receive(b"a" * 20)
    assert parser.error is not None and parser.error.status == 431


def test_field_line_cap_applies_to_trailers() -> None:
    limits = Limits(max_field_line=100)
    got, error = parse(chunked(b"0\r\nX-T: " + b"t" * 90 + b"\r\n\r\n"), limits)
    assert error is None and len(got) == 1
    got, error = parse(chunked(b"0\r\nX-T: " + b"t" * 120 + b"\r\n\r\n"), limits)
    assert got == [] and error is not None and error.status == 431


# -- a non-ASCII digit in Range (values.parse_ranges) ------------------------------------------------

@pytest.mark.parametrize("value", [b"bytes=\xb2-", b"bytes=0-\xb3", b"bytes=-\xb9"])
def test_range_with_a_non_ascii_digit_is_ignored_not_a_500(live_server: Callable[..., Any], tmp_path: Any,
                                                           value: bytes) -> None:
    (tmp_path / "f.txt").write_bytes(b"0123456789")
    server = live_server(App(static_folder=str(tmp_path)))
    with server.connect() as sock:
        sock.sendall(b"GET /f.txt HTTP/1.1\r\nHost: x\r\nRange: " + value + b"\r\n\r\n")
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"0123456789"  # an invalid Range is ignored


def test_an_empty_expect_expects_nothing() -> None:
    """``Expect:`` with no value is an empty list (RFC 9110 5.6.1): no 417 (the fuzzer found it)."""
    got, error = parse(b"GET / HTTP/1.1\r\nHost: x\r\nExpect:\r\n\r\n")
    assert error is None and len(got) == 1
    got, error = parse(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n")
    assert error is not None and error.status == 417
