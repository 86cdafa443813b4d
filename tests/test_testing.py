"""The test client: same answers as a live server, cookies, streaming, files, protocol errors."""
from __future__ import annotations

import httpx
import pytest

from microweb import App, FileResponse, Response, abort
from microweb.testing import AppTransport, serialize_request


def make_app(tmp_path) -> App:  # type: ignore[no-untyped-def]
    app = App(template_folder=None, static_folder=None)
    data_file = tmp_path / "data.bin"
    data_file.write_bytes(bytes(range(256)) * 1000)

    @app.get("/")
    def index(request):  # type: ignore[no-untyped-def]
        return "hello"

    @app.route("/echo", methods=["POST", "PUT"])
    def echo(request):  # type: ignore[no-untyped-def]
        return {"method": request.method, "body": request.text, "ctype": request.content_type,
                "args": request.args.getlist("a"), "remote": request.remote_addr, "url": request.url}

    @app.get("/login")
    def login(request):  # type: ignore[no-untyped-def]
        r = Response("in")
        r.set_cookie("session", "abc", httponly=True)
        return r

    @app.get("/whoami")
    def whoami(request):  # type: ignore[no-untyped-def]
        return request.cookies.get("session", "nobody")

    @app.get("/logout")
    def logout(request):  # type: ignore[no-untyped-def]
        r = Response("out")
        r.delete_cookie("session")
        return r

    @app.get("/stream")
    def stream(request):  # type: ignore[no-untyped-def]
        return (f"line {i}\n" for i in range(int(request.args.get("n", "3"))))

    @app.get("/broken-stream")
    def broken(request):  # type: ignore[no-untyped-def]
        def gen():  # type: ignore[no-untyped-def]
            yield "start\n"
            raise RuntimeError("midway")
        return gen()

    @app.get("/file")
    def file(request):  # type: ignore[no-untyped-def]
        return FileResponse(data_file)

    @app.get("/teapot")
    def teapot(request):  # type: ignore[no-untyped-def]
        abort(418, "short and stout")

    return app


def test_basic_and_headers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with make_app(tmp_path).test_client() as c:
        r = c.get("/")
        assert isinstance(c, httpx.Client)
        assert r.status_code == 200 and r.text == "hello"
        assert r.headers["content-type"] == "text/html; charset=utf-8" and r.headers["content-length"] == "5"
        assert r.http_version == "HTTP/1.1" and r.reason_phrase == "OK"
        r = c.post("/echo?a=1&a=2", json={"x": 1})
        assert r.json() == {"method": "POST", "body": '{"x":1}', "ctype": "application/json", "args": ["1", "2"],
                            "remote": "127.0.0.1", "url": "http://testserver/echo?a=1&a=2"}
        r = c.get("/teapot", headers={"Accept": "application/json"})
        assert r.status_code == 418 and r.json()["description"] == "short and stout"


def test_cookies_persist_in_the_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    c = make_app(tmp_path).test_client()
    assert c.get("/whoami").text == "nobody"
    r = c.get("/login")
    assert "HttpOnly" in r.headers["set-cookie"]
    assert c.get("/whoami").text == "abc"
    c.get("/logout")
    assert c.get("/whoami").text == "nobody"


def test_streaming_is_chunked_and_lazy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    c = make_app(tmp_path).test_client()
    r = c.get("/stream?n=4")
    assert r.headers["transfer-encoding"] == "chunked" and "content-length" not in r.headers
    assert r.text == "line 0\nline 1\nline 2\nline 3\n"
    with c.stream("GET", "/stream?n=1000000") as r:  # a million pieces: only what we read is produced
        pieces = []
        for piece in r.iter_raw():
            pieces.append(piece)
            if len(pieces) == 3:
                break
    assert pieces == [b"line 0\n", b"line 1\n", b"line 2\n"]


def test_stream_that_raises_midway_cuts_the_body(tmp_path) -> None:  # type: ignore[no-untyped-def]
    c = make_app(tmp_path).test_client()
    with pytest.raises(httpx.RemoteProtocolError):
        c.get("/broken-stream")
    assert c.get("/").text == "hello"


def test_file_response(tmp_path) -> None:  # type: ignore[no-untyped-def]
    c = make_app(tmp_path).test_client()
    r = c.get("/file")
    assert r.content == bytes(range(256)) * 1000
    assert r.headers["content-length"] == str(256 * 1000) and r.headers["content-type"] == "application/octet-stream"
    assert "last-modified" in r.headers
    r = c.head("/file")
    assert r.content == b"" and r.headers["content-length"] == "256000"


def test_request_goes_through_the_real_parser(tmp_path) -> None:  # type: ignore[no-untyped-def]
    c = make_app(tmp_path).test_client()
    # A header the strict parser rejects is answered as the server would: 400 and the message.
    r = c.get("/", headers={"Bad Name": "x"})
    assert r.status_code == 400 and b"Invalid header line" in r.content
    # A chunked upload (httpx streams an iterator as Transfer-Encoding: chunked).
    r = c.put("/echo", content=iter([b"ab", b"cd"]))
    assert r.json()["body"] == "abcd" and r.json()["method"] == "PUT"


def test_serialize_request() -> None:
    request = httpx.Request("POST", "http://h/p%20q?x=1", content=b"body")
    raw = serialize_request(request)
    assert raw.startswith(b"POST /p%20q?x=1 HTTP/1.1\r\n") and raw.endswith(b"\r\n\r\nbody")
    assert b"\r\nContent-Length: 4\r\n" in raw.replace(b"content-length", b"Content-Length")


def test_transport_can_be_used_directly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(transport=AppTransport(make_app(tmp_path)), base_url="http://example.org") as c:
        assert c.post("/echo", content=b"").json()["url"] == "http://example.org/echo"


def test_same_answers_as_a_live_server(tmp_path, live_server) -> None:  # type: ignore[no-untyped-def]
    app = make_app(tmp_path)
    server = live_server(app)
    paths = ["/", "/stream?n=5", "/file", "/missing", "/teapot", "/login"]
    with httpx.Client(base_url=server.url) as live, app.test_client() as memory:
        for path in paths:
            a, b = live.get(path), memory.get(path)
            assert (a.status_code, a.content) == (b.status_code, b.content), path
            drop = {"date"}
            assert {k: v for k, v in a.headers.items() if k not in drop} == \
                {k: v for k, v in b.headers.items() if k not in drop}, path
