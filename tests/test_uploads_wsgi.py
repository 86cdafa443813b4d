"""Large bodies when an App is hosted by another WSGI server: the same limits, decided before
``wsgi.input`` is read, the body read in ``read(size)`` steps and spooled, under
``wsgiref.validate`` on gunicorn and on wsgiref's own server."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
from typing import Any, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.validate import validator

import httpx
import pytest
from test_wsgi import start_gunicorn, stop_process

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.urandom(6 << 20)  # over the 1 MiB spool threshold
SHA = hashlib.sha256(DATA).hexdigest()


def check_uploads(url: str, chunked: bool) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post("/raw", content=DATA).json()
        assert answer == {"sha256": SHA, "size": len(DATA), "spooled": True}
        if chunked:
            answer = client.post("/raw", content=iter([DATA[:1000], DATA[1000:]])).json()
            assert answer == {"sha256": SHA, "size": len(DATA), "spooled": True}
        answer = client.post("/form", files={"f": ("a.bin", DATA)}, data={"x": "y"}).json()
        assert answer["sha256"] == SHA and answer["moved"] and answer["field"] == "y"
        assert client.post("/small", content=b"x" * 100).json() == {"size": 100}
        assert client.get("/state").json()["spool"] == []
    # Over /small's limit (the 16 MiB default): 413 before the body is read; the client is
    # answered while it still sends.
    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (1 << 30))
        data = b""
        while b"\r\n\r\n" not in data:
            got = sock.recv(65536)
            assert got, data
            data += got
    assert data.startswith(b"HTTP/1.1 413 ") or data.startswith(b"HTTP/1.0 413 ")


def _validated_module(tmp_path: Any) -> str:
    (tmp_path / "validated_uploads.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {HERE!r})\n"
        "from wsgiref.validate import validator\n"
        "from apps.uploads_app import app as microweb_app\n"
        "app = validator(microweb_app)\n")
    return "validated_uploads:app"


def test_validated_app_under_gunicorn(tmp_path: Any) -> None:
    proc, url = start_gunicorn(_validated_module(tmp_path), str(tmp_path))
    try:
        check_uploads(url, chunked=True)
    finally:
        stop_process(proc)
    assert proc.stdout is not None
    output = proc.stdout.read()
    for bad in ("AssertionError", "WSGIWarning", "Traceback"):
        assert bad not in output, output


def test_gunicorn_worker_memory_stays_bounded(tmp_path: Any) -> None:
    """The issue's 300 MB upload took a gunicorn worker to 366 MB: now the worker spools it."""
    proc, url = start_gunicorn(_validated_module(tmp_path), str(tmp_path))
    try:
        before = httpx.post(url + "/reset-peak").json()
        size = 64 << 20
        block = DATA[:1 << 20]
        digest = hashlib.sha256()

        def body() -> Iterator[bytes]:
            for _ in range(size // len(block)):
                digest.update(block)
                yield block

        answer = httpx.post(url + "/raw", content=body(), headers={"content-length": str(size)}, timeout=60).json()
        after = httpx.get(url + "/state").json()
    finally:
        stop_process(proc)
    assert answer == {"sha256": digest.hexdigest(), "size": size, "spooled": True}
    assert after["hwm"] - before["rss"] < 32 << 20


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_validated_app_under_wsgiref(recwarn: Any) -> None:
    """wsgiref's server passes no chunked bodies (no wsgi.input_terminated): those are checked under gunicorn."""
    import sys

    sys.path.insert(0, HERE)
    from apps.uploads_app import app

    errors: list[str] = []

    class Handler(_Quiet):
        def log_exception(self, exc_info: Any) -> None:  # pragma: no cover - only on failure
            errors.append(repr(exc_info[1]))

    server: WSGIServer = make_server("127.0.0.1", 0, validator(app), handler_class=Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        check_uploads(f"http://127.0.0.1:{server.server_port}", chunked=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    from wsgiref.validate import WSGIWarning

    assert not [w for w in recwarn if issubclass(w.category, WSGIWarning)]
    assert errors == []


def test_oversize_content_length_is_refused_before_reading() -> None:
    """413 for an oversize CONTENT_LENGTH without reading a byte of wsgi.input; the app's own page."""
    import io

    from microweb import App

    app = App(static_folder=None, template_folder=None)

    @app.post("/up", max_body_size="1K")
    def up(request):  # type: ignore[no-untyped-def]
        return "ok"

    @app.errorhandler(413)
    def too_large(request, error):  # type: ignore[no-untyped-def]
        return "custom 413", 413

    class Input(io.RawIOBase):
        read_total = 0

        def read(self, size: int = -1) -> bytes:  # type: ignore[override]
            Input.read_total += size
            return b"x" * size

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/up", "SERVER_NAME": "x", "SERVER_PORT": "80",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": Input(),
               "CONTENT_LENGTH": "2048"}
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    assert seen == ["413 Content Too Large"] and body == b"custom 413" and Input.read_total == 0
    environ.update(CONTENT_LENGTH="10", PATH_INFO="/nowhere")
    seen.clear()
    b"".join(app(environ, lambda status, headers, exc_info=None: seen.append(status)))
    assert seen == ["404 Not Found"] and Input.read_total == 0
    environ.update(CONTENT_LENGTH="1000", PATH_INFO="/up")
    seen.clear()
    assert b"".join(app(environ, lambda status, headers, exc_info=None: seen.append(status))) == b"ok"
    assert Input.read_total == 1000


def test_flask_app_hosted_by_microweb_run_takes_a_large_upload(tmp_path: Any) -> None:
    """``microweb run flask_app:app``: Flask's ``request_class`` (a Werkzeug class) must not be
    taken for the class the parser builds requests with."""
    pytest.importorskip("flask")
    from conftest import free_port, start_cli, wait_for_port

    (tmp_path / "flask_uploads.py").write_text(
        "import hashlib\n"
        "from flask import Flask, request\n"
        "app = Flask(__name__)\n"
        "@app.post('/up')\n"
        "def up():\n"
        "    f = request.files['f']\n"
        "    return {'sha256': hashlib.sha256(f.read()).hexdigest(), 'x': request.form['x']}\n"
        "@app.post('/raw')\n"
        "def raw():\n"
        "    return {'sha256': hashlib.sha256(request.stream.read()).hexdigest()}\n")
    port = free_port()
    proc = start_cli("run", "flask_uploads:app", "--port", str(port), cwd=str(tmp_path))
    try:
        wait_for_port("127.0.0.1", port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            r = client.post("/up", files={"f": ("a.bin", DATA)}, data={"x": "y"})
            assert r.status_code == 200, r.text
            assert r.json() == {"sha256": SHA, "x": "y"}
            assert client.post("/raw", content=DATA).json() == {"sha256": SHA}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err, err
