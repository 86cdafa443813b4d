"""The rough edges a new user meets first: start-up banner, ``microweb new``/``run`` messages, the
scaffold's links, tracebacks in debug JSON, and the test client without httpx."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx
import pytest

from conftest import REPO_ROOT, free_port, run_cli, start_cli, wait_for_port
from microweb import App

APP = """
import sys
from microweb import App

app = App(static_folder="static")


@app.get("/")
def index(request):
    return "hi"


@app.get("/boom")
def boom(request):
    raise RuntimeError("secret detail")


if __name__ == "__main__":
    app.run(port=int(sys.argv[1]), **dict(arg.split("=") for arg in sys.argv[2:]))
"""


def _banner(proc: subprocess.Popen[str], port: int) -> list[str]:
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(2)]  # printed once it listens
        wait_for_port("127.0.0.1", port, timeout=20)
        # A request answered means the loop (and its SIGINT handler) is running: a signal sent
        # before that would land while the server is still starting.
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return lines


def _app_run(tmp_path: Path, port: int, *options: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "app.py", str(port), *options], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_the_banner_is_the_same_whichever_way_the_server_starts(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    static = tmp_path / "static"
    summary = f"  2 routes, static folder {static} (missing), access log off"
    banners = {}
    for name, extra in (("run", ()), ("run --threads", ("--threads", "2")), ("run --workers", ("--workers", "2"))):
        port = free_port()
        banners[name] = (port, _banner(start_cli("run", "app:app", "--port", str(port), *extra, cwd=str(tmp_path)),
                                       port))
    for name, extra in (("App.run", ()), ("App.run(workers=2)", ("workers=2",))):
        port = free_port()
        banners[name] = (port, _banner(_app_run(tmp_path, port, *extra), port))
    for name, (port, lines) in banners.items():
        workers = " with 2 workers" if "workers" in name else ""
        assert lines == [f"microweb serving on http://127.0.0.1:{port}{workers} (press Ctrl+C to quit)", summary], name

    static.mkdir()
    port = free_port()
    lines = _banner(start_cli("run", "app:app", "--port", str(port), "--debug", cwd=str(tmp_path)), port)
    assert lines[1] == f"  2 routes, static folder {static}, DEBUG mode (never in production), access log on"


def test_new_without_a_name_and_with_a_bad_one(tmp_path: Path) -> None:
    r = run_cli("new", "", cwd=str(tmp_path))
    assert r.returncode == 2 and r.stderr == "microweb: error: the project needs a name: microweb new NAME\n"
    r = run_cli("new", "./.hidden", cwd=str(tmp_path))
    assert r.returncode == 2 and r.stderr == ("microweb: error: invalid project name '.hidden': a letter or digit, "
                                              "then letters, digits, '.', '_' or '-'\n")
    assert list(tmp_path.iterdir()) == []


def test_new_dot_fills_the_empty_current_directory(tmp_path: Path) -> None:
    site = tmp_path / "blog"
    site.mkdir()
    r = run_cli("new", ".", cwd=str(site))
    assert r.returncode == 0, r.stderr
    assert (site / "app.py").is_file() and "<title>{% block title %}blog{% endblock %}</title>" in \
        (site / "templates" / "base.html").read_text()
    assert "microweb[testing]" in (site / "README.md").read_text()
    r = run_cli("new", ".", cwd=str(site))  # not empty any more
    assert r.returncode == 2 and "already exists and is not an empty directory" in r.stderr


def test_the_scaffold_links_its_stylesheet_with_url_for(tmp_path: Path) -> None:
    assert run_cli("new", "mysite", cwd=str(tmp_path)).returncode == 0
    base = (tmp_path / "mysite" / "templates" / "base.html").read_text()
    assert "/style.css\"" not in base and "url_for('static', filename='style.css')" in base
    site = str(tmp_path / "mysite")
    app = App(template_folder=os.path.join(site, "templates"), static_folder=os.path.join(site, "static"),
              static_url_path="/assets")
    app.add_route("/", lambda request: request.render_template("index.html", title="t"), name="index")
    client = app.test_client()
    page = client.get("/").text
    assert '<link rel="stylesheet" href="/assets/style.css">' in page
    assert client.get("/assets/style.css").status_code == 200  # the link works under a prefix


def test_run_a_directory_says_which_file_to_give(tmp_path: Path) -> None:
    assert run_cli("new", "myblog", cwd=str(tmp_path)).returncode == 0
    for spec in ("myblog", "myblog/", "myblog:app"):
        r = run_cli("run", spec, cwd=str(tmp_path))
        assert r.returncode == 2, spec
        assert r.stderr.startswith(f"microweb: error: {spec.split(':')[0]} is a directory, not a module or file "
                                   "with an app; try 'microweb run myblog"), (spec, r.stderr)
        assert r.stderr.count("\n") == 1 and "/app.py'" in r.stderr
    (tmp_path / "empty").mkdir()
    r = run_cli("run", "empty", cwd=str(tmp_path))
    assert r.returncode == 2 and "give the app's file (path/to/app.py) or MODULE:ATTR" in r.stderr
    # A real package (with __init__.py) is still a module.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from microweb import App\napp = App()\n")
    r = run_cli("routes", "pkg", cwd=str(tmp_path))
    assert r.returncode == 0 and "METHODS" in r.stdout


def test_debug_json_500_has_the_traceback_live(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    proc = start_cli("run", "app:app", "--port", str(port), "--debug", "--no-access-log", cwd=str(tmp_path))
    try:
        wait_for_port("127.0.0.1", port)
        r = httpx.get(f"http://127.0.0.1:{port}/boom", headers={"Accept": "application/json"})
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert r.status_code == 500
    body = r.json()
    assert body["status"] == 500 and body["error"] == "Internal Server Error"
    assert "RuntimeError: secret detail" in body["traceback"] and "Traceback (most recent call last)" in body["traceback"]


def test_json_500_without_debug_has_no_traceback() -> None:
    app = App(static_folder=None)

    @app.get("/boom")
    def boom(request: object) -> str:
        raise RuntimeError("secret detail")

    body = app.test_client().get("/boom", headers={"Accept": "application/json"}).json()
    assert body == {"status": 500, "error": "Internal Server Error", "description": None}


def test_test_client_without_httpx_says_which_extra() -> None:
    code = ("import sys; sys.modules['httpx'] = None\n"  # as if httpx were not installed
            "from microweb import App\nApp().test_client()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        "ImportError: microweb's test client needs httpx: pip install 'microweb[testing]'"
