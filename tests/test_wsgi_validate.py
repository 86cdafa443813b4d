"""``wsgiref.validate`` both ways (issue 15), plus the WSGI hosting fixes it found.

1. A validator-wrapped WSGI application under ``microweb run`` (inline and ``--threads``).
2. A validator-wrapped microweb ``App`` under gunicorn and under ``wsgiref.simple_server``.

Each for GET, HEAD, POST (Content-Length and chunked), a streamed body and files. The
validator raises ``AssertionError`` inside the application on any breach (a 500) and
warns (``WSGIWarning``) on doubtful use; both are checked for.
"""
from __future__ import annotations

import os
import socket
import textwrap
import threading
from typing import Any, Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.validate import validator

import httpx
import pytest

from apps.behaviour import HERE, app as behaviour_app
from conftest import free_port, read_response, recv_until_closed, start_cli, wait_for_port
from microweb import redirect
from test_wsgi import start_gunicorn, stop_process

BLOB_PATH = os.path.join(HERE, "behaviour_static", "blob.bin")
BLOB = open(BLOB_PATH, "rb").read()
PAYLOAD = bytes(range(256)) * 40  # 10 KiB


def chunked_post(host: str, port: int, path: str, body: bytes, http11_close: bool = True) -> tuple[bytes, bytes]:
    """POST ``body`` with ``Transfer-Encoding: chunked`` over a raw socket; (head, body) of the answer."""
    pieces = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 3000]), body[i:i + 3000]) for i in range(0, len(body), 3000))
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n%s0\r\n\r\n" % (path.encode(), pieces))
        data = recv_until_closed(sock, timeout=10)
    head, _, rest = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while rest:
            line, _, rest = rest.partition(b"\r\n")
            size = int(line, 16)
            if not size:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        rest = out
    return head, rest


# -- 1. a validated WSGI application under `microweb run` -----------------------------------------

VALIDATED_WSGI_APP = textwrap.dedent(f'''
    from wsgiref.validate import validator

    BLOB_PATH = {BLOB_PATH!r}

    def app(environ, start_response):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == "/":
            body = b"hello " + method.encode()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/head-aware":  # what Werkzeug does: Content-Length of the GET body, no body for HEAD
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
            return [] if method == "HEAD" else [b"abcde"]
        if path == "/echo":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = environ["wsgi.input"].read(length)
            start_response("201 Created", [("Content-Type", "application/octet-stream"),
                                           ("Content-Length", str(len(data)))])
            return [data]
        if path == "/stream":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (("%d\\n" % i).encode() for i in range(100))
        if path == "/file":
            f = open(BLOB_PATH, "rb")
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return environ["wsgi.file_wrapper"](f, 8192)
        if path == "/reason":
            start_response("299 Everything Fine", [("Content-Type", "text/plain")])
            return [b"ok"]
        if path == "/found":
            start_response("302 FOUND", [("Content-Type", "text/plain"), ("Location", "/")])
            return [b"moved"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"nope"]

    application = validator(app)
''')


@pytest.fixture(params=[0, 2], ids=["inline", "threads"], scope="module")
def microweb_run(request: Any, tmp_path_factory: Any) -> Iterator[tuple[str, int, Any]]:
    folder = tmp_path_factory.mktemp("validated")
    (folder / "validated_wsgi.py").write_text(VALIDATED_WSGI_APP)
    port = free_port()
    args = ["run", "validated_wsgi:application", "--port", str(port)]
    if request.param:
        args += ["--threads", str(request.param)]
    proc = start_cli(*args, cwd=str(folder))
    try:
        wait_for_port("127.0.0.1", port)
        yield "127.0.0.1", port, proc
    finally:
        stop_process(proc)  # type: ignore[arg-type]
    _, stderr = proc.communicate(timeout=10)
    for bad in ("AssertionError", "WSGIWarning", "Traceback"):
        assert bad not in stderr, stderr  # the validator found nothing, not even at garbage collection


def test_validated_wsgi_app_under_microweb_run(microweb_run: tuple[str, int, Any]) -> None:
    host, port, _ = microweb_run
    with httpx.Client(base_url=f"http://{host}:{port}") as client:
        r = client.get("/")
        assert (r.status_code, r.text) == (200, "hello GET")
        r = client.head("/")
        assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "10")
        r = client.post("/echo", content=PAYLOAD)
        assert (r.status_code, r.content) == (201, PAYLOAD)
        r = client.get("/stream")
        assert r.text == "".join(f"{i}\n" for i in range(100)) and r.headers["transfer-encoding"] == "chunked"
        r = client.get("/file")  # the validator wraps the file_wrapper: streamed, not sent with sendfile
        assert r.content == BLOB
        assert client.head("/file").content == b""
        assert client.get("/missing").status_code == 404
    head, body = chunked_post(host, port, "/echo", PAYLOAD)
    assert head.startswith(b"HTTP/1.1 201 ") and body == PAYLOAD


def test_head_keeps_the_connection(microweb_run: tuple[str, int, Any]) -> None:
    """A HEAD whose app sends Content-Length but no body (Werkzeug does) closed the connection,
    losing the GET pipelined after it."""
    host, port, _ = microweb_run
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"HEAD /head-aware HTTP/1.1\r\nHost: x\r\n\r\nGET /head-aware HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        data = b""
        while not data.endswith(b"abcde"):
            piece = sock.recv(65536)
            assert piece, data
            data += piece
    first, _, second = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 5" in first and b"close" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"\r\n\r\nabcde")


def test_reason_phrase_is_passed_through(microweb_run: tuple[str, int, Any]) -> None:
    host, port, _ = microweb_run
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /reason HTTP/1.1\r\nHost: x\r\n\r\nGET /found HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        data = b""
        while not data.endswith(b"moved\r\n0\r\n\r\n"):  # the validator's iterator makes both chunked
            piece = sock.recv(65536)
            assert piece, data
            data += piece
    assert data.startswith(b"HTTP/1.1 299 Everything Fine\r\n") and b"\r\n2\r\nok\r\n0\r\n\r\n" in data
    assert b"\r\n\r\nHTTP/1.1 302 FOUND\r\n" in data


def test_head_and_reason_in_process(live_server: Callable[..., Any]) -> None:
    """The same two fixes on an in-process server (the fixture above runs a subprocess)."""
    from microweb.wsgi import WSGIAdapter

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/reason":
            start_response("299 Everything Fine", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"abcde"]

    server = live_server(WSGIAdapter(app))
    with server.connect() as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /reason HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        data = b""
        while not data.endswith(b"\r\n\r\nok"):
            piece = sock.recv(65536)
            assert piece, data  # the HEAD closed the connection: the GET after it was lost
            data += piece
    head, _, second = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 5" in head and b"close" not in head.lower()
    assert second.startswith(b"HTTP/1.1 299 Everything Fine\r\n")


@pytest.mark.parametrize("status", ["200 OK\r\nX-Injected: 1", "200 O\x00K", "200 \n", "2000 OK", "20x OK", "OK"])
def test_bad_wsgi_status_is_a_500(live_server: Callable[..., Any], status: str) -> None:
    from microweb.wsgi import WSGIAdapter

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain")])
        return [b"never"]

    server = live_server(WSGIAdapter(app))
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 500 ") and b"Injected" not in head and body != b"never"


# -- 2. a validated microweb App under gunicorn and wsgiref ----------------------------------------

VALIDATED_APP_MODULE = "validated_app"


def check_app_under(base: str, chunked: bool) -> None:
    """The behaviour app's GET, HEAD, POST, stream and file answers through a WSGI server."""
    with httpx.Client(base_url=base, timeout=10) as client:
        r = client.get("/")
        assert (r.status_code, r.text) == (200, "<p>Hello</p>")
        r = client.head("/")
        assert (r.status_code, r.content) == (200, b"") and r.headers["content-type"].startswith("text/html")
        r = client.get("/items/3?q=x")
        assert r.json() == {"id": 3, "q": "x"}
        r = client.post("/echo", content=PAYLOAD, headers={"Content-Type": "application/octet-stream"})
        assert (r.status_code, r.content, r.headers["x-length"]) == (201, PAYLOAD, str(len(PAYLOAD)))
        r = client.get("/stream")
        assert r.text == "".join(f"piece {i}\n" for i in range(5))
        r = client.get("/download")
        assert r.content == BLOB
        r = client.get("/blob.bin")
        assert r.content == BLOB and r.headers["content-length"] == str(len(BLOB))
        assert client.head("/blob.bin").content == b""
        r = client.get("/go")
        assert r.status_code == 302 and r.headers["location"] == "/items/7"
        assert r.headers["content-type"].startswith("text/html") and '<a href="/items/7">' in r.text
        r = client.get("/sub")  # the static folder's directory redirect (301)
        assert r.status_code == 301 and r.headers["content-type"].startswith("text/html")
        assert client.get("/missing").status_code == 404
        assert client.get("/teapot").status_code == 418
    if chunked:
        host, port = base.removeprefix("http://").split(":")
        head, body = chunked_post(host, int(port), "/echo", PAYLOAD)
        assert head.split(b"\r\n")[0].endswith(b"201 Created") and body == PAYLOAD, head


def test_validated_app_under_gunicorn(tmp_path: Any) -> None:
    (tmp_path / f"{VALIDATED_APP_MODULE}.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {os.path.dirname(HERE)!r})\n"
        "from wsgiref.validate import validator\n"
        "from apps.behaviour import app as microweb_app\n"
        "app = validator(microweb_app)\n")
    proc, url = start_gunicorn(f"{VALIDATED_APP_MODULE}:app", str(tmp_path))
    try:
        check_app_under(url, chunked=True)
    finally:
        stop_process(proc)
    assert proc.stdout is not None
    output = proc.stdout.read()
    for bad in ("AssertionError", "WSGIWarning", "Traceback"):
        assert bad not in output, output


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_validated_app_under_wsgiref(recwarn: Any) -> None:
    """wsgiref's server speaks HTTP/1.0 and passes no chunked bodies (no wsgi.input_terminated),
    so the chunked POST is checked under gunicorn only."""
    errors: list[str] = []

    class Handler(_QuietHandler):
        def log_exception(self, exc_info: Any) -> None:  # pragma: no cover - only on failure
            errors.append(repr(exc_info[1]))

    server: WSGIServer = make_server("127.0.0.1", 0, validator(behaviour_app), handler_class=Handler)
    server.timeout = 0.5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        check_app_under(f"http://127.0.0.1:{server.server_port}", chunked=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    from wsgiref.validate import WSGIWarning

    assert not [w for w in recwarn if issubclass(w.category, WSGIWarning)]
    assert errors == []


def test_oversize_body_under_a_wsgi_server_is_413() -> None:
    """An App under another WSGI server reads at most MAX_BODY_SIZE, in read(size) steps."""
    import io

    from microweb import wsgi

    class Input(io.RawIOBase):
        """An endless body that counts what was read, and refuses a bare read()."""

        def __init__(self) -> None:
            self.read_total = 0

        def read(self, size: int = -1) -> bytes:  # type: ignore[override]
            assert size is not None and size >= 0, "read() without a size"
            self.read_total += size
            return b"x" * size

    stream = Input()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/echo", "SERVER_NAME": "x", "SERVER_PORT": "80",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": stream,
               "wsgi.input_terminated": True}
    seen: list[str] = []
    body = b"".join(behaviour_app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    assert seen == ["413 Content Too Large"] and b"too large" in body
    assert stream.read_total <= wsgi.MAX_BODY_SIZE + 65536
    environ = dict(environ)
    environ["wsgi.input"] = Input()
    environ["CONTENT_LENGTH"] = str(wsgi.MAX_BODY_SIZE + 1)
    seen.clear()
    b"".join(behaviour_app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    assert seen == ["413 Content Too Large"]


def test_redirect_has_a_body_and_a_type() -> None:
    response = redirect("/a?b=<c>", 303)
    assert response.status == 303 and response.headers["location"] == "/a?b=<c>"
    assert response.content_type == "text/html; charset=utf-8"
    assert b'<a href="/a?b=&lt;c&gt;">/a?b=&lt;c&gt;</a>' in response.body  # type: ignore[operator]
