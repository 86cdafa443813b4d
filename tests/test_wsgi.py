"""The same behaviour suite against the native server, through WSGI in memory, on a live gunicorn and
through ``app.test_client()``;
then microweb serving other WSGI applications (a raw one and Flask)."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Iterator

import httpx
import pytest

from conftest import REPO_ROOT, read_response
from apps.behaviour import HERE, app as behaviour_app
from microweb.wsgi import WSGIAdapter

BLOB = open(os.path.join(HERE, "behaviour_static", "blob.bin"), "rb").read()


def start_gunicorn(spec: str, chdir: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """A gunicorn on 127.0.0.1 port 0 (gthread worker); returns the process and its base URL."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "1", "--worker-class", "gthread",
         "--threads", "2", "--chdir", chdir, "--log-level", "info", *extra, spec],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
        if m:
            url = m.group(1)
            _wait_http(url)
            return proc, url
    proc.kill()
    raise RuntimeError("gunicorn did not start:\n" + "".join(lines))


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/__ping__", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def gunicorn_url() -> Iterator[str]:
    proc, url = start_gunicorn("behaviour:app", os.path.join(REPO_ROOT, "tests", "apps"))
    yield url
    stop_process(proc)


@pytest.fixture(params=["native", "wsgi-transport", "gunicorn", "test-client"])
def client(request: Any, live_server: Callable[..., Any]) -> Iterator[httpx.Client]:
    """An httpx client talking to the behaviour app: natively, through WSGI in memory, on gunicorn, and
    through microweb's own in-memory test client."""
    if request.param == "native":
        server = live_server(behaviour_app)
        c = httpx.Client(base_url=server.url)
    elif request.param == "wsgi-transport":
        c = httpx.Client(transport=httpx.WSGITransport(app=behaviour_app), base_url="http://testserver")
    elif request.param == "gunicorn":
        c = httpx.Client(base_url=request.getfixturevalue("gunicorn_url"))
    else:
        c = behaviour_app.test_client()
    with c:
        yield c


def test_index_html(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.text == "<p>Hello</p>"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-length"] == "12"


def test_path_params_and_query_json(client: httpx.Client) -> None:
    r = client.get("/items/42", params={"q": "x y"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"id": 42, "q": "x y"}


def test_post_body_round_trip(client: httpx.Client) -> None:
    payload = os.urandom(100_000)
    r = client.post("/echo", content=payload, headers={"Content-Type": "application/x-test"})
    assert r.status_code == 201
    assert r.content == payload
    assert r.headers["x-length"] == "100000"
    assert r.headers["content-type"] == "application/x-test"


def test_request_facts(client: httpx.Client) -> None:
    r = client.get("/whoami?a=1", headers={"User-Agent": "suite/1", "Cookie": "k=v"})
    data = r.json()
    assert data["remote_addr"] == "127.0.0.1"
    assert data["scheme"] == "http"
    assert data["host"] == client.base_url.netloc.decode()
    assert (data["method"], data["path"], data["query"]) == ("GET", "/whoami", "a=1")
    assert data["agent"] == "suite/1"
    assert data["cookies"] == {"k": "v"}


def test_unicode_path(client: httpx.Client) -> None:
    r = client.get("/unicode/caf%C3%A9%20x")
    assert r.json() == {"name": "café x"}


def test_streamed_generator(client: httpx.Client) -> None:
    r = client.get("/stream")
    assert r.status_code == 200
    assert r.text == "".join(f"piece {i}\n" for i in range(5))


def test_404_template_and_json(client: httpx.Client) -> None:
    r = client.get("/nope")
    assert r.status_code == 404
    assert "Nothing at /nope" in r.text
    r = client.get("/nope", headers={"Accept": "application/json"})
    assert r.status_code == 404
    assert r.json() == {"status": 404, "error": "Not Found", "description": None}


def test_405_allow(client: httpx.Client) -> None:
    r = client.post("/items/1")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]


def test_500_without_traceback(client: httpx.Client) -> None:
    r = client.get("/boom")
    assert r.status_code == 500
    assert "Internal Server Error" in r.text
    assert "kaboom" not in r.text and "Traceback" not in r.text


def test_abort_description(client: httpx.Client) -> None:
    r = client.get("/gone")
    assert r.status_code == 410
    assert "It went away" in r.text


def test_tuple_status_and_headers(client: httpx.Client) -> None:
    r = client.get("/teapot")
    assert r.status_code == 418
    assert r.headers["x-kind"] == "teapot"
    assert r.text == "short and stout"


def test_redirect(client: httpx.Client) -> None:
    r = client.get("/go")
    assert r.status_code == 302
    assert r.headers["location"] == "/items/7"


def test_set_cookie(client: httpx.Client) -> None:
    r = client.get("/cookie")
    assert "flavour=oat" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"]


def test_static_fallback(client: httpx.Client) -> None:
    r = client.get("/style.css")
    assert r.status_code == 200
    assert r.text == "body { color: red; }\n"
    assert r.headers["content-type"].startswith("text/css")
    r = client.get("/sub/")
    assert "sub index" in r.text


def test_static_large_file(client: httpx.Client) -> None:
    r = client.get("/blob.bin")
    assert r.status_code == 200
    assert r.content == BLOB
    assert r.headers["content-length"] == str(len(BLOB))


def test_head_has_length_but_no_body(client: httpx.Client) -> None:
    r = client.head("/blob.bin")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(BLOB))
    assert r.content == b""
    r = client.head("/")
    assert r.headers["content-length"] == "12"
    assert r.content == b""


def test_file_response_download(client: httpx.Client) -> None:
    r = client.get("/download")
    assert r.content == BLOB
    assert "blob.bin" in r.headers["content-disposition"]


def test_204_no_body(client: httpx.Client) -> None:
    r = client.delete("/empty")
    assert r.status_code == 204
    assert r.content == b""


def test_file_wrapper_is_used_under_wsgi() -> None:
    """A static file under a WSGI server goes out through the server's wsgi.file_wrapper."""
    wrapped: list[Any] = []

    class Wrapper:
        def __init__(self, f: io.BufferedReader, block: int) -> None:
            wrapped.append(f)
            self.f = f

        def __iter__(self) -> Iterator[bytes]:
            return iter(lambda: self.f.read(8192), b"")

        def close(self) -> None:
            self.f.close()

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/blob.bin", "SERVER_NAME": "x", "SERVER_PORT": "80",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
               "wsgi.file_wrapper": Wrapper}
    seen: list[Any] = []
    body = behaviour_app(environ, lambda status, headers, exc_info=None: seen.append((status, headers)))
    data = b"".join(body)
    body.close()  # type: ignore[attr-defined]
    assert data == BLOB and len(wrapped) == 1 and wrapped[0].closed
    status, headers = seen[0]
    assert status == "200 OK"
    names = {k.lower() for k, _ in headers}
    assert "content-length" in names and "date" not in names and "connection" not in names


# -- microweb serving WSGI applications --------------------------------------------

closed_iterables: list[str] = []


class _ClosingBody:
    def __init__(self, pieces: list[bytes], tag: str) -> None:
        self.pieces = pieces
        self.tag = tag

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.pieces)

    def close(self) -> None:
        closed_iterables.append(self.tag)


def raw_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    path = environ["PATH_INFO"]
    if path == "/list":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello ", b"wsgi"]
    if path == "/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _ClosingBody([b"a", b"", b"b", b"c"], "gen")
    if path == "/sized-gen":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return (p for p in [b"abc", b"def"])
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written,")
        return [b"returned"]
    if path == "/file":
        f = open(os.path.join(HERE, "behaviour_static", "blob.bin"), "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 8192)
    if path == "/environ":
        body = environ["wsgi.input"].read()
        keys = ["REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "REMOTE_ADDR",
                "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_X_CUSTOM", "wsgi.url_scheme", "SCRIPT_NAME"]
        text = "\n".join(f"{k}={environ.get(k)}" for k in keys) + f"\nbody={body.decode()}"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "keep-alive")])
        return [text.encode()]
    if path == "/error":
        raise ValueError("app failed")
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not here"]


def test_raw_wsgi_app_on_microweb(live_server: Callable[..., Any]) -> None:
    server = live_server(WSGIAdapter(raw_wsgi_app))
    closed_iterables.clear()
    with httpx.Client(base_url=server.url) as c:
        r = c.get("/list")
        assert (r.status_code, r.text, r.headers["content-length"]) == (200, "hello wsgi", "10")
        r = c.get("/gen")
        assert r.text == "abc" and r.headers["transfer-encoding"] == "chunked"
        r = c.get("/sized-gen")
        assert r.text == "abcdef" and r.headers["content-length"] == "6"
        assert c.get("/write").text == "written,returned"
        r = c.get("/file")
        assert r.content == BLOB and r.headers["content-length"] == str(len(BLOB))
        r = c.post("/environ?x=1", content=b"payload", headers={"X-Custom": "yes", "Content-Type": "text/plain"})
        lines = dict(line.split("=", 1) for line in r.text.splitlines())
        assert lines["REQUEST_METHOD"] == "POST" and lines["PATH_INFO"] == "/environ"
        assert lines["QUERY_STRING"] == "x=1" and lines["SERVER_PROTOCOL"] == "HTTP/1.1"
        assert lines["REMOTE_ADDR"] == "127.0.0.1" and lines["HTTP_X_CUSTOM"] == "yes"
        assert lines["CONTENT_LENGTH"] == "7" and lines["body"] == "payload"
        assert lines["wsgi.url_scheme"] == "http" and lines["SCRIPT_NAME"] == ""
        assert "connection" not in r.headers  # hop-by-hop header from the app is not passed on
        assert c.get("/error").status_code == 500
        assert c.get("/other").status_code == 404
    assert closed_iterables == ["gen"]


def test_raw_wsgi_keep_alive_and_head(live_server: Callable[..., Any]) -> None:
    server = live_server(WSGIAdapter(raw_wsgi_app))
    with server.connect() as sock:
        for _ in range(3):
            sock.sendall(b"GET /list HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200") and body == b"hello wsgi"
        sock.sendall(b"HEAD /list HTTP/1.1\r\nHost: x\r\n\r\nGET /list HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        data = sock.recv(65536)
        first, _, rest = data.partition(b"\r\n\r\n")
        assert b"Content-Length: 10" in first
        assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"\r\n\r\nhello wsgi")


def test_underscore_headers_are_not_passed(live_server: Callable[..., Any]) -> None:
    """``X_Custom`` would otherwise arrive as HTTP_X_CUSTOM, spoofing ``X-Custom``."""
    server = live_server(WSGIAdapter(raw_wsgi_app))
    r = httpx.get(server.url + "/environ", headers={"X_Custom": "spoof"})
    assert "HTTP_X_CUSTOM=None" in r.text


def test_flask_app_on_microweb(live_server: Callable[..., Any]) -> None:
    flask = pytest.importorskip("flask")
    fapp = flask.Flask(__name__)

    @fapp.route("/")
    def hello() -> str:
        return "Hello from Flask"

    @fapp.route("/json/<int:n>", methods=["GET", "POST"])
    def as_json(n: int) -> Any:
        return flask.jsonify(n=n, body=flask.request.get_data(as_text=True), ip=flask.request.remote_addr)

    @fapp.route("/stream")
    def stream() -> Any:
        return flask.Response((f"{i}," for i in range(4)), mimetype="text/plain")

    @fapp.route("/redirect")
    def redir() -> Any:
        return flask.redirect(flask.url_for("hello"))

    server = live_server(WSGIAdapter(fapp))
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/").text == "Hello from Flask"
        r = c.post("/json/5", content=b"data")
        assert r.json() == {"n": 5, "body": "data", "ip": "127.0.0.1"}
        assert c.get("/stream").text == "0,1,2,3,"
        assert c.get("/redirect").headers["location"] == "/"
        assert c.get("/missing").status_code == 404
        r = c.head("/")
        assert r.content == b"" and r.headers["content-length"] == "16"


def test_cli_runs_a_wsgi_app(tmp_path: Any) -> None:
    from conftest import start_cli, free_port, wait_for_port

    (tmp_path / "wsgimod.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'plain wsgi ' + environ['PATH_INFO'].encode()]\n")
    port = free_port()
    proc = start_cli("run", "wsgimod:application", "--port", str(port), cwd=str(tmp_path))
    try:
        wait_for_port("127.0.0.1", port)
        assert httpx.get(f"http://127.0.0.1:{port}/abc").text == "plain wsgi /abc"
    finally:
        stop_process(proc)  # type: ignore[arg-type]
    assert proc.returncode == 0


def test_wsgi_app_in_threads_does_not_block_others(live_server: Callable[..., Any]) -> None:
    """With a thread pool, a WSGI call that blocks for 1 s does not delay another client."""
    import threading

    def slow_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            time.sleep(1.0)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode() + b" " + str(environ["wsgi.multithread"]).encode()]

    server = live_server(WSGIAdapter(slow_app, multithread=True), threads=4)
    slow_result: list[str] = []
    t = threading.Thread(target=lambda: slow_result.append(httpx.get(server.url + "/slow", timeout=10).text))
    t.start()
    time.sleep(0.1)
    start = time.monotonic()
    assert httpx.get(server.url + "/fast").text == "/fast True"
    assert time.monotonic() - start < 0.5
    t.join(10)
    assert slow_result == ["/slow True"]
