"""Response, cookies, redirect, FileResponse (sendfile) and streaming, checked on a live server."""
from __future__ import annotations

import logging
import os
import time

import httpx
import pytest

import microweb.server.reactor
from microweb import App, FileResponse, Request, Response, redirect
from microweb.http.datastructures import Headers
from tests.conftest import read_response, recv_until_closed


def head_of(response: Response, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    out = response.encode(Request(method, "/", version, Headers({"Host": "x"})))
    assert isinstance(out, bytes)
    return out


def test_response_defaults() -> None:
    r = Response()
    assert (r.body, r.status, r.content_type) == (b"", 200, None)
    r = Response("é", 201, {"X-A": "1"}, content_type="text/plain")
    assert (r.body, r.status, r.headers["x-a"], r.content_type) == ("é".encode(), 201, "1", "text/plain")
    assert Response("x").content_type == "text/html; charset=utf-8"
    assert Response(b"x").content_type == "application/octet-stream"
    raw = head_of(Response("hi", 404, {"X-B": "2"}))
    assert raw.startswith(b"HTTP/1.1 404 Not Found\r\n") and b"\r\nX-B: 2\r\n" in raw and raw.endswith(b"\r\n\r\nhi")
    assert b"Content-Length: 2\r\n" in raw
    assert head_of(Response("hi"), "HEAD").endswith(b"Content-Length: 2\r\n\r\n")
    assert b"Content-Length" not in head_of(Response(b"", 204))


def test_header_injection_is_refused() -> None:
    app = App(template_folder=None, static_folder=None)
    app.add_route("/", lambda r: Response("x", headers={"X-Evil": "a\r\nSet-Cookie: pwned=1"}), name="evil")
    r = app.test_client().get("/")
    assert r.status_code == 500 and "pwned" not in r.headers.get("set-cookie", "")


def test_set_cookie_attributes() -> None:
    r = Response("x")
    r.set_cookie("s", "a b;c", max_age=60, expires=0, path="/app", domain="example.com", secure=True,
                 httponly=True, samesite="lax")
    assert r.headers["set-cookie"] == ("s=a%20b%3Bc; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                                       "Domain=example.com; Path=/app; Secure; HttpOnly; SameSite=Lax")
    r.set_cookie("plain", "v")
    assert r.headers.getlist("set-cookie")[1] == "plain=v; Path=/"
    r.delete_cookie("s")
    assert r.headers.getlist("set-cookie")[2] == "s=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"
    with pytest.raises(ValueError):
        r.set_cookie("x", "y", samesite="sometimes")


def test_redirect() -> None:
    r = redirect("/there")
    assert (r.status, r.headers["location"]) == (302, "/there")
    assert redirect("https://e.org/", 307).status == 307


def test_file_response_uses_sendfile(tmp_path, live_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    payload = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "blob.bin").write_bytes(payload)
    (tmp_path / "page.html").write_text("<p>hi</p>")
    calls = []
    real_sendfile = os.sendfile

    def counting_sendfile(*args):  # type: ignore[no-untyped-def]
        calls.append(args[3])
        return real_sendfile(*args)

    monkeypatch.setattr(microweb.server.reactor.os, "sendfile", counting_sendfile)
    app = App(template_folder=None, static_folder=None)
    app.add_route("/blob", lambda r: FileResponse(tmp_path / "blob.bin"), name="blob")
    app.add_route("/page", lambda r: FileResponse(tmp_path / "page.html"), name="page")
    app.add_route("/dl", lambda r: FileResponse(tmp_path / "page.html", download_name="report 1.html"), name="dl")
    app.add_route("/missing", lambda r: FileResponse(tmp_path / "nope"), name="missing")
    server = live_server(app)
    with httpx.Client(base_url=server.url) as c:
        r = c.get("/blob")
        assert r.content == payload and r.headers["content-type"] == "application/octet-stream"
        assert sum(calls) >= len(payload)  # every byte went through os.sendfile
        r = c.get("/page")
        assert r.text == "<p>hi</p>" and r.headers["content-type"] == "text/html; charset=utf-8"
        assert c.get("/dl").headers["content-disposition"] == "attachment; filename*=UTF-8''report%201.html"
        assert c.get("/missing").status_code == 404


def stream_app() -> App:
    app = App(template_folder=None, static_folder=None)

    @app.get("/gen")
    def gen(request):  # type: ignore[no-untyped-def]
        return (f"piece {i};" for i in range(int(request.args.get("n", "5"))))

    @app.get("/big")
    def big(request):  # type: ignore[no-untyped-def]
        block = b"x" * 65536
        return (block for _ in range(64))  # 4 MiB, far more than the socket buffers hold

    @app.get("/broken")
    def broken(request):  # type: ignore[no-untyped-def]
        def pieces():  # type: ignore[no-untyped-def]
            yield "first;"
            yield "second;"
            raise RuntimeError("generator failed midway")
        return pieces()

    @app.get("/fails-at-once")
    def fails_at_once(request):  # type: ignore[no-untyped-def]
        def pieces():  # type: ignore[no-untyped-def]
            raise RuntimeError("before the first piece")
            yield "never"
        return pieces()

    @app.get("/")
    def index(request):  # type: ignore[no-untyped-def]
        return "index"

    return app


def test_stream_chunked_in_http11_raw(live_server) -> None:  # type: ignore[no-untyped-def]
    server = live_server(stream_app())
    sock = server.connect()
    try:
        sock.sendall(b"GET /gen?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        sock.settimeout(5)
        while not buf.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            assert data, buf
            buf += data
        head, _, body = buf.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
        assert body == b"8\r\npiece 0;\r\n8\r\npiece 1;\r\n8\r\npiece 2;\r\n0\r\n\r\n"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive after a stream
        assert read_response(sock)[1] == b"index"
    finally:
        sock.close()


def test_stream_close_delimited_in_http10(live_server) -> None:  # type: ignore[no-untyped-def]
    server = live_server(stream_app())
    sock = server.connect()
    try:
        sock.sendall(b"GET /gen?n=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        raw = recv_until_closed(sock)
    finally:
        sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in head
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert body == b"piece 0;piece 1;piece 2;"


def test_stream_large_body_with_httpx_and_a_slow_reader(live_server) -> None:  # type: ignore[no-untyped-def]
    server = live_server(stream_app())
    with httpx.Client(base_url=server.url) as c:
        with c.stream("GET", "/big") as r:
            pieces = r.iter_bytes()
            first = next(pieces)
            # While this client is not reading, the server still answers others.
            with httpx.Client(base_url=server.url) as other:
                t0 = time.monotonic()
                assert other.get("/").text == "index"
                assert time.monotonic() - t0 < 2
            rest = b"".join(pieces)
        assert len(first) + len(rest) == 64 * 65536
        assert c.get("/gen?n=2").text == "piece 0;piece 1;"


def test_stream_that_raises_midway(live_server, caplog) -> None:  # type: ignore[no-untyped-def]
    server = live_server(stream_app())
    sock = server.connect()
    with caplog.at_level(logging.ERROR, logger="microweb"):
        try:
            sock.sendall(b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = recv_until_closed(sock)  # the server closes the connection
        finally:
            sock.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"200 OK" in head and body.startswith(b"6\r\nfirst;\r\n")
        assert not body.endswith(b"0\r\n\r\n")  # no last chunk: the client can tell the body is cut
        with httpx.Client(base_url=server.url) as c:
            with pytest.raises(httpx.RemoteProtocolError):
                c.get("/broken")
            assert c.get("/").text == "index"  # the server goes on
    assert "generator failed midway" in caplog.text


def test_stream_that_fails_before_its_first_piece_is_a_500(live_server) -> None:  # type: ignore[no-untyped-def]
    server = live_server(stream_app())
    with httpx.Client(base_url=server.url) as c:
        r = c.get("/fails-at-once")
        assert r.status_code == 500 and "500 Internal Server Error" in r.text
        assert c.get("/").text == "index"


def test_head_of_a_stream_has_no_body(live_server) -> None:  # type: ignore[no-untyped-def]
    server = live_server(stream_app())
    sock = server.connect()
    try:
        sock.sendall(b"HEAD /gen HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        buf = b""
        while b"index" not in buf:
            data = sock.recv(65536)
            assert data
            buf += data
    finally:
        sock.close()
    first, _, second = buf.partition(b"\r\n\r\n")
    assert b"200 OK" in first and second.startswith(b"HTTP/1.1 200 OK")
