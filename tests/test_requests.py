"""Request: every public attribute, lazy parsing, JSON errors (in memory; a live server for remote_addr)."""
from __future__ import annotations

import httpx
import pytest

from microweb import App, HTTPError, Headers, MultiDict, Request
from microweb.requests import _UNSET
from tests.conftest import read_response


def req(target: str = "/", method: str = "GET", headers: dict | None = None, body: bytes = b"") -> Request:
    hdrs = Headers({"Host": "example.com:8080", **(headers or {})})
    return Request(method, target, "HTTP/1.1", hdrs, True, "10.0.0.1", "https", body)


def test_basic_fields() -> None:
    r = req("/a%20b/c?x=1&y=%C3%A9&x=2&flag&plus=a+b")
    assert (r.method, r.path, r.query_string) == ("GET", "/a b/c", "x=1&y=%C3%A9&x=2&flag&plus=a+b")
    assert r.args["x"] == "1" and r.args.getlist("x") == ["1", "2"] and r.args.get("y") == "é"
    assert r.args.get("flag") == "" and r.args.get("plus") == "a b" and r.args.get("nope", "d") == "d"
    assert r.args.get("x", type=int) == 1 and r.args.get("y", -1, type=int) == -1
    assert (r.remote_addr, r.scheme, r.host, r.http_version) == ("10.0.0.1", "https", "example.com:8080", "HTTP/1.1")
    assert r.url == "https://example.com:8080/a%20b/c?x=1&y=%C3%A9&x=2&flag&plus=a+b"
    assert r.path_params == {}


def test_headers_are_a_case_insensitive_multidict() -> None:
    h = Headers([("Accept", "a"), ("X-Many", "1"), ("x-many", "2"), ("Cookie", "a=1"), ("cookie", "b=2")])
    assert h["accept"] == h.get("ACCEPT") == "a"
    assert h.getlist("X-MANY") == ["1", "2"] and h["x-many"] == "1, 2"
    assert h["cookie"] == "a=1; b=2" and "Accept" in h and "nope" not in h
    assert h.get("nope") is None and h.get("nope", "d") == "d"
    with pytest.raises(KeyError):
        h["nope"]
    assert len(h) == 5 and h.keys()[0] == "Accept"


def test_multidict() -> None:
    m = MultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    assert m["a"] == "1" and m.getlist("a") == ["1", "3"] and m.getlist("zz") == []
    assert m.getlist("a", type=int) == [1, 3] and dict(m) == {"a": "1", "b": "2"}
    assert m.items_multi() == [("a", "1"), ("a", "3"), ("b", "2")]


def test_cookies() -> None:
    r = req(headers={"Cookie": 'session=abc; quoted="q v"; enc=a%20b; dup=1; dup=2; junk'})
    assert r.cookies == {"session": "abc", "quoted": "q v", "enc": "a b", "dup": "1"}
    assert req().cookies == {}


def test_body_text_json() -> None:
    r = req(method="POST", headers={"Content-Type": "application/json"}, body=b'{"a": [1, 2]}')
    assert r.body == b'{"a": [1, 2]}' and r.text == '{"a": [1, 2]}' and r.json == {"a": [1, 2]}
    r = req(method="POST", headers={"Content-Type": "text/plain; charset=latin-1"}, body=b"caf\xe9")
    assert r.text == "café"
    assert req().json is None  # no body
    with pytest.raises(HTTPError) as info:
        _ = req(body=b"{bad").json
    assert info.value.status == 400 and info.value.description.startswith("Invalid JSON body")
    with pytest.raises(HTTPError):
        _ = req(body=b"\xff\xfe\x00").json


def test_form_urlencoded_and_files_empty() -> None:
    r = req(method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}, body=b"a=1&a=2&b=%C3%A9+x")
    assert r.form.getlist("a") == ["1", "2"] and r.form["b"] == "é x" and r.files == {}
    assert req(method="POST", body=b"a=1").form == {}  # no form content type: no form
    with pytest.raises(HTTPError) as info:
        _ = req(method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}, body=b"\xff").form
    assert info.value.status == 400


def test_parsing_is_lazy() -> None:
    """A handler that never asks for the form, args, cookies or JSON pays nothing for them."""
    app = App(template_folder=None, static_folder=None)
    seen: list[Request] = []

    @app.post("/")
    def index(request):  # type: ignore[no-untyped-def]
        seen.append(request)
        return "ok"

    body = b"--B\r\nbroken multipart that would be a 400 if parsed"
    r = app.test_client().post("/?a=1", content=body, headers={"content-type": "multipart/form-data; boundary=B",
                                                                "cookie": "a=1"})
    assert r.text == "ok"
    request = seen[0]
    assert request._form is None and request._files is None and request._args is None
    assert request._cookies is None and request._json is _UNSET and request.body == body


def test_invalid_json_is_400_and_keeps_the_connection(live_server) -> None:  # type: ignore[no-untyped-def]
    app = App(template_folder=None, static_folder=None)

    @app.post("/j")
    def j(request):  # type: ignore[no-untyped-def]
        return {"got": request.json, "remote": request.remote_addr}

    server = live_server(app)
    sock = server.connect()
    try:
        for body, status in ((b"{oops", b"400"), (b'{"a": 1}', b"200"), (b"[1,", b"400"), (b"2", b"200")):
            sock.sendall(b"POST /j HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            head, payload = read_response(sock)
            assert head.split(b" ")[1] == status, (body, head, payload)
            if status == b"400":
                assert b"Invalid JSON body" in payload
            else:
                assert b'"remote":"127.0.0.1"' in payload.replace(b" ", b"")
    finally:
        sock.close()
    assert httpx.post(server.url + "/j", json=[1]).json()["got"] == [1]


def test_missing_field_is_a_400_key_error() -> None:
    app = App(template_folder=None, static_folder=None)

    @app.post("/")
    def index(request):  # type: ignore[no-untyped-def]
        return request.form["name"]

    @app.get("/q")
    def q(request):  # type: ignore[no-untyped-def]
        try:
            return request.args["x"]
        except KeyError:  # still an ordinary KeyError for code that catches it
            return "caught"

    c = app.test_client()
    assert c.post("/", data={"name": "ada"}).text == "ada"
    r = c.post("/", data={"other": "x"}, headers={"accept": "application/json"})
    assert r.status_code == 400 and r.json()["description"] == "The request has no field 'name'"
    assert c.get("/q").text == "caught"
    assert MultiDict().get("x") is None and "x" not in MultiDict()


def test_url_of_an_absolute_form_target() -> None:
    r = req("http://example.com:8080/a%20b?x=1")
    assert (r.path, r.query_string) == ("/a b", "x=1")
    assert r.url == "https://example.com:8080/a%20b?x=1"


@pytest.mark.parametrize("target", ["/", "/a/b", "/a?x=1", "/%41b?c=%20", "http://h:8/p?q", "*", "/?"])
def test_request_builds_the_same_protocol_fields_as_httprequest(target: str) -> None:
    """``Request.__init__`` writes out ``HTTPRequest.__init__`` for speed: they must agree."""
    from microweb.http.request import HTTPRequest

    args = ("POST", target, "HTTP/1.0", Headers([("Host", "h")]), False, "10.0.0.1", "https", b"body")
    ours, base = Request(*args), HTTPRequest(*args)
    for name in HTTPRequest.__slots__:
        if name != "__weakref__":
            assert getattr(ours, name) == getattr(base, name), name
    assert (ours.host, ours.url) == (base.host, base.url)
