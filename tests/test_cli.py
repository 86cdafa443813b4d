"""The ``microweb`` command, run as a real subprocess (``python -m microweb``)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from conftest import REPO_ROOT, run_cli, start_cli

APP = textwrap.dedent("""
    from microweb import App

    app = App(template_folder=None, static_folder=None)
    other = App(template_folder=None, static_folder=None)
    not_an_app = 42

    @app.route("/")
    def index(request):
        return "served by app"

    @other.route("/")
    def other_index(request):
        return "served by other"
""")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with ``hello.py``, a package ``pkg/web.py`` and a module whose import fails."""
    (tmp_path / "hello.py").write_text(APP)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "web.py").write_text(APP)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "site.py").write_text(APP)
    # 'foobar' exists but imports a module 'foo' that does not.
    (tmp_path / "foobar.py").write_text("import foo\n")
    return tmp_path


class Running:
    """A ``microweb run`` subprocess that has printed the URL it serves."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        assert proc.stdout is not None
        self.first_line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", self.first_line)
        assert match, f"no URL in {self.first_line!r}; stderr: {self._stderr_now()}"
        self.url = match.group(0)
        self.port = int(match.group(1))

    def _stderr_now(self) -> str:
        if self.proc.poll() is not None and self.proc.stderr is not None:
            return self.proc.stderr.read()
        return "(still running)"

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, stderr = self.proc.communicate(timeout=5)
        return self.proc.returncode, stderr


@pytest.fixture
def run_server() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*args: str, cwd: Path | str | None = None) -> Running:
        proc = start_cli("run", *args, "--port", "0", cwd=str(cwd) if cwd else None)
        try:
            running = Running(proc)
        except BaseException:
            proc.kill()
            proc.communicate(timeout=5)
            raise
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# -- serving ---------------------------------------------------------------------------


def test_run_prints_its_url_and_serves(project: Path, run_server: Callable[..., Running]) -> None:
    running = run_server("hello:app", cwd=project)
    assert running.first_line.startswith("microweb serving on http://127.0.0.1:")
    assert httpx.get(running.url + "/").text == "served by app"
    status, stderr = running.stop()
    assert status == 0
    assert "Traceback" not in stderr


@pytest.mark.parametrize("spec,expected", [
    ("hello:app", "served by app"),
    ("hello", "served by app"),  # ATTR defaults to app
    ("hello:other", "served by other"),
    ("pkg.web:other", "served by other"),
    ("pkg.web", "served by app"),
    ("hello.py:other", "served by other"),
    ("hello.py", "served by app"),
    ("sub/site.py:other", "served by other"),
    ("sub/site.py", "served by app"),
])
def test_app_spec_forms(project: Path, run_server: Callable[..., Running], spec: str, expected: str) -> None:
    running = run_server(spec, cwd=project)
    assert httpx.get(running.url + "/").text == expected


def test_file_path_spec_from_another_directory(project: Path, run_server: Callable[..., Running],
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    running = run_server(str(project / "sub" / "site.py") + ":other", cwd=elsewhere)
    assert httpx.get(running.url + "/").text == "served by other"


def test_python_dash_m_microweb_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "run" in result.stdout


def test_console_script_entry_point_is_declared() -> None:
    text = Path(REPO_ROOT, "pyproject.toml").read_text()
    assert re.search(r'^microweb\s*=\s*"microweb\.cli:main"', text, re.M)


def test_host_option_is_used(project: Path) -> None:
    proc = start_cli("run", "hello:app", "--host", "127.0.0.1", "--port", "0", cwd=str(project))
    running = Running(proc)
    try:
        assert httpx.get(running.url + "/").status_code == 200
    finally:
        assert running.stop()[0] == 0


# -- errors: one line on stderr, exit 2, no traceback -------------------------------------


def assert_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("microweb: error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_unknown_module(project: Path) -> None:
    assert_usage_error(run_cli("run", "nosuchmodule:app", cwd=str(project)), "nosuchmodule")


def test_unknown_dotted_module(project: Path) -> None:
    assert_usage_error(run_cli("run", "pkg.nosuch:app", cwd=str(project)), "pkg.nosuch")


def test_missing_file(project: Path) -> None:
    assert_usage_error(run_cli("run", "missing.py:app", cwd=str(project)), "missing.py")


def test_missing_attribute(project: Path) -> None:
    assert_usage_error(run_cli("run", "hello:nosuch", cwd=str(project)), "nosuch")
    assert_usage_error(run_cli("run", "hello.py:nosuch", cwd=str(project)), "nosuch")


def test_object_that_is_not_an_app(project: Path) -> None:
    assert_usage_error(run_cli("run", "hello:not_an_app", cwd=str(project)), "not_an_app", "int")


def test_port_in_use(project: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli("run", "hello:app", "--port", str(port), cwd=str(project))
    assert_usage_error(result, str(port), "in use")


@pytest.mark.parametrize("port", ["70000", "-1", "abc", "8000x"])
def test_bad_port(project: Path, port: str) -> None:
    assert_usage_error(run_cli("run", "hello:app", f"--port={port}", cwd=str(project)))


def test_no_command() -> None:
    assert_usage_error(run_cli(), "command")


def test_unknown_command() -> None:
    assert_usage_error(run_cli("serve-all-the-things"))


def test_run_without_app_argument() -> None:
    assert_usage_error(run_cli("run"))


def test_empty_module_part(project: Path) -> None:
    assert_usage_error(run_cli("run", ":app", cwd=str(project)))


def test_module_whose_own_import_fails_is_not_called_missing(project: Path) -> None:
    # 'foobar' exists; the module it imports ('foo') does not. Saying "cannot find module
    # 'foobar'" would send the user looking in the wrong place.
    result = run_cli("run", "foobar:app", cwd=str(project))
    assert result.returncode != 0
    assert "cannot find module 'foobar'" not in result.stderr
    assert "foo" in result.stderr


# -- curl: the second request re-uses the connection ---------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (Debian package curl)")
def test_curl_reuses_the_connection(project: Path, run_server: Callable[..., Running]) -> None:
    running = run_server("hello:app", cwd=project)
    url = running.url + "/"
    result = subprocess.run(["curl", "-sS", "-v", "--noproxy", "*", url, url], capture_output=True, text=True,
                            timeout=20, env={**os.environ, "NO_PROXY": "*"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "served by app" * 2
    assert "Re-using existing connection" in result.stderr, result.stderr
    assert result.stderr.count("Connected to") == 1


# -- --version ----------------------------------------------------------------------------


def test_version_flag_prints_the_package_version() -> None:
    import microweb

    result = run_cli("--version", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"microweb {microweb.__version__}"
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?\S*", microweb.__version__)


def test_run_hosts_a_wsgi_app_with_its_own_request_class(tmp_path: Path,
                                                         run_server: Callable[..., Running]) -> None:
    """Flask apps carry a ``request_class`` (Werkzeug's Request): ``microweb run`` must not build those
    from its parser, only an App's own."""
    pytest.importorskip("flask")
    (tmp_path / "flaskapp.py").write_text(textwrap.dedent("""\
        from flask import Flask, request

        app = Flask(__name__)

        @app.route("/items/<int:item_id>")
        def item(item_id):
            return {"id": item_id, "q": request.args.get("q")}
    """))
    for threads in ((), ("--threads", "2")):
        running = run_server("flaskapp:app", *threads, cwd=tmp_path)
        response = httpx.get(running.url + "/items/42?q=hello")
        assert response.status_code == 200 and response.json() == {"id": 42, "q": "hello"}
        status, stderr = running.stop()
        assert status == 0 and "Traceback" not in stderr
