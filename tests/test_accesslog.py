"""Access log (Combined Log Format on ``microweb.access``), banner, --debug tracebacks."""
from __future__ import annotations

import logging
import re
import subprocess
from typing import Any, Callable

import httpx
import pytest

from conftest import free_port, run_cli, start_cli, wait_for_port
from microweb import App, Request
from microweb.accesslog import format_line, with_access_log
from microweb.http.datastructures import Headers

CLF = re.compile(r'^(\S+) - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "([^"]*)" (\d{3}) (\d+|-) '
                 r'"((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" (\d+\.\d{6})$')

APP_SOURCE = '''
from microweb import App
app = App()

@app.route("/")
def index(request):
    return "hello"

@app.route("/boom")
def boom(request):
    raise RuntimeError("secret detail")

@app.route("/items/<int:n>")
def item(request, n):
    return {"n": n}
'''


def make_app() -> App:
    app = App(template_folder=None, static_folder=None)

    @app.route("/")
    def index(request: Request) -> str:
        return "hello"

    @app.route("/stream")
    def stream(request: Request) -> Any:
        yield "a"

    return app


def test_format_line() -> None:
    request = Request("GET", "/a?b=1", "HTTP/1.1", Headers([("Host", "x"), ("User-Agent", 'cu"rl'),
                                                             ("Referer", "http://r/")]), True, "10.0.0.1")
    output = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!"
    line = format_line(request, output, 0.00125, 0)
    m = CLF.match(line)
    assert m, line
    assert m.groups() == ("10.0.0.1", "GET /a?b=1 HTTP/1.1", "404", "5", "http://r/", 'cu\\"rl', "0.001250")
    assert "[01/Jan/1970:00:00:00 +0000]" in line


def test_access_log_live(live_server: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    server = live_server(with_access_log(app.handle))
    with caplog.at_level(logging.INFO, logger="microweb.access"):
        with httpx.Client(base_url=server.url, headers={"User-Agent": "suite"}) as c:
            c.get("/")
            c.get("/missing")
            c.get("/stream")
            c.head("/")
    lines = [r.getMessage() for r in caplog.records if r.name == "microweb.access"]
    assert len(lines) == 4
    parsed = [CLF.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m.group(2), m.group(3), m.group(4)) for m in parsed] == [  # type: ignore[union-attr]
        ("GET / HTTP/1.1", "200", "5"), ("GET /missing HTTP/1.1", "404", parsed[1].group(4)),  # type: ignore
        ("GET /stream HTTP/1.1", "200", "-"), ("HEAD / HTTP/1.1", "200", "-")]


def test_no_access_log_by_default_means_no_wrapper() -> None:
    import argparse

    from microweb.cli import make_handler
    from microweb.server.options import ServerOptions

    app = make_app()
    args = argparse.Namespace(host="127.0.0.1", port=0, debug=False, access_log=None, no_access_log=False,
                              reload=False)
    options = ServerOptions(port=0)
    assert make_handler(app, args, options) == app.handle  # the server calls App.handle directly
    args.access_log = "-"
    args.no_access_log = True
    assert make_handler(app, args, options) == app.handle


def _run(tmp_path: Any, *flags: str) -> tuple[subprocess.Popen[str], int]:
    (tmp_path / "logapp.py").write_text(APP_SOURCE)
    port = free_port()
    proc = start_cli("run", "logapp:app", "--port", str(port), *flags, cwd=str(tmp_path))
    wait_for_port("127.0.0.1", port)
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return out, err


def test_cli_access_log_file_and_banner(tmp_path: Any) -> None:
    log_path = tmp_path / "access.log"
    proc, port = _run(tmp_path, "--access-log", str(log_path))
    try:
        httpx.get(f"http://127.0.0.1:{port}/items/3?x=1", headers={"Referer": "http://ref/"})
    finally:
        out, err = _stop(proc)
    assert f"microweb serving on http://127.0.0.1:{port}" in out
    assert "3 routes" in out and "static folder" in out and "access log on" in out
    lines = log_path.read_text().splitlines()
    assert len(lines) == 1
    m = CLF.match(lines[0])
    assert m and m.group(1) == "127.0.0.1" and m.group(2) == "GET /items/3?x=1 HTTP/1.1" and m.group(3) == "200"
    assert m.group(5) == "http://ref/"


def test_cli_default_has_no_access_log_and_no_traceback(tmp_path: Any) -> None:
    proc, port = _run(tmp_path)
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/boom")
        assert r.status_code == 500
        assert "secret detail" not in r.text and "Traceback" not in r.text
    finally:
        out, err = _stop(proc)
    assert "access log off" in out
    assert "GET /boom" not in out + err.replace("Exception on GET /boom", "")
    assert "RuntimeError: secret detail" in err  # the traceback goes to the log, on logger microweb
    assert " microweb ERROR " in err


def test_cli_debug_shows_traceback_and_logs(tmp_path: Any) -> None:
    proc, port = _run(tmp_path, "--debug")
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/boom")
        assert r.status_code == 500
        assert "RuntimeError: secret detail" in r.text
    finally:
        out, err = _stop(proc)
    assert "DEBUG mode" in out
    assert '"GET /boom HTTP/1.1" 500' in out  # --debug turns the access log on (stdout)


def test_cli_not_an_app(tmp_path: Any) -> None:
    (tmp_path / "notapp.py").write_text("app = 42\n")
    r = run_cli("run", "notapp:app", cwd=str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip() == "microweb: error: notapp:app is a int, not a microweb App or a WSGI application"


def test_cli_unwritable_access_log(tmp_path: Any) -> None:
    (tmp_path / "logapp.py").write_text(APP_SOURCE)
    r = run_cli("run", "logapp:app", "--access-log", str(tmp_path / "missing" / "x.log"), cwd=str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot write --access-log" in r.stderr
