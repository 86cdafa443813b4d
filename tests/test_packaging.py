"""The package as a user gets it: ``python -m build`` makes an sdist and a wheel, ``twine check`` passes,
and the wheel (not an editable install) serves the demo and ``microweb serve`` from a fresh venv."""
from __future__ import annotations

import email.parser
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import httpx
import pytest

import microweb
from conftest import REPO_ROOT, copy_checkout, free_port, need, wait_for_port

pytestmark = pytest.mark.slow


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH or outer venv: the wheel's own copy must be the one imported."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel built from a fresh copy of the checkout (the wheel built from the sdist, as build does)."""
    need("build", "the packaging test needs 'build' (the test extra)")
    root = tmp_path_factory.mktemp("pkg")
    source = root / "src"
    copy_checkout(source)
    out = root / "dist"
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], capture_output=True,
                       text=True, timeout=600, env=_clean_env())
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return out


def _wheel(dist: Path) -> Path:
    wheels = list(dist.glob("microweb-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_build_makes_an_sdist_and_a_wheel_of_this_version(dist: Path) -> None:
    version = microweb.__version__
    assert (dist / f"microweb-{version}.tar.gz").is_file()
    assert _wheel(dist).name == f"microweb-{version}-py3-none-any.whl"


def test_wheel_contents_and_metadata(dist: Path) -> None:
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        names = set(wheel.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(wheel.read(info).decode("utf-8"))
        entry_points = wheel.read(info.replace("METADATA", "entry_points.txt")).decode()
    for name in ("microweb/__init__.py", "microweb/app.py", "microweb/py.typed", "microweb/templates/404.html",
                 "microweb/templates/500.html", "microweb/templates/error.html", "microweb/http/parser.py",
                 "microweb/server/reactor.py", "microweb/server/start.py"):
        assert name in names, name
    assert not any(n.startswith(("tests/", "benchmarks/", "examples/")) for n in names)
    assert metadata["Name"] == "microweb" and metadata["Version"] == microweb.__version__
    assert metadata["License-Expression"] == "MIT" and metadata["License-File"] == "LICENSE"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert metadata["Requires-Python"] == ">=3.11"
    assert "web" in metadata["Keywords"].split(",")
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers and "Topic :: Internet :: WWW/HTTP :: HTTP Servers" in classifiers
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("jinja2") for r in requires)
    assert any(r.startswith("httpx") and 'extra == "testing"' in r for r in requires)
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "microweb = microweb.cli:main" in entry_points


def test_twine_check_is_clean(dist: Path) -> None:
    need("twine", "twine check needs twine (the test extra)")
    files = [str(p) for p in dist.iterdir()]
    r = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("PASSED") == 2, r.stdout


@pytest.fixture(scope="module")
def wheel_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel installed (jinja2 from the index, nothing editable)."""
    venv = tmp_path_factory.mktemp("wheelvenv") / "venv"
    env = _clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    r = subprocess.run([str(venv / "bin/pip"), "install", "-q", str(_wheel(dist))], capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    yield venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=_clean_env())


def test_the_wheel_is_what_the_venv_imports(wheel_venv: Path, tmp_path: Path) -> None:
    r = _run(wheel_venv, "python", "-c", "import microweb, os; print(microweb.__file__); "
             "print(os.path.isfile(os.path.join(os.path.dirname(microweb.__file__), 'py.typed')))", cwd=tmp_path)
    where, typed = r.stdout.split()
    assert where.startswith(str(wheel_venv)) and "site-packages" in where and typed == "True"
    assert _run(wheel_venv, "microweb", "--version", cwd=tmp_path).stdout.strip() == \
        f"microweb {microweb.__version__}"


def test_test_client_without_httpx_names_the_extra(wheel_venv: Path, tmp_path: Path) -> None:
    r = _run(wheel_venv, "python", "-c", "from microweb import App; App().test_client()", cwd=tmp_path)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last == "ImportError: microweb's test client needs httpx: pip install 'microweb[testing]'"


def _serve(venv: Path, cwd: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen([str(venv / "bin/microweb"), *args, "--port", str(port)], cwd=cwd, env=_clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
    except TimeoutError:
        proc.kill()
        raise AssertionError(proc.communicate()[1])
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out


def test_the_wheel_serves_the_demo(wheel_venv: Path, tmp_path: Path) -> None:
    proc, port = _serve(wheel_venv, tmp_path, "run", os.path.join(REPO_ROOT, "examples", "demo.py"))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            page = client.get("/")
            assert page.status_code == 200 and "microweb demo" in page.text
            assert client.get("/api/hello").json() == {"hello": "world"}
            assert client.get("/css/site.css").headers["content-type"] == "text/css; charset=utf-8"
            assert client.get("/no/such/page").status_code == 404
    finally:
        out = _stop(proc)
    assert f"microweb serving on http://127.0.0.1:{port}" in out and "1 route" in out


def test_the_wheel_serves_a_folder_with_its_own_error_pages(wheel_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>home</h1>")
    proc, port = _serve(wheel_venv, tmp_path, "serve", "site")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "<h1>home</h1>"
        missing = httpx.get(f"http://127.0.0.1:{port}/nope")
        # The package's templates/404.html, from the wheel (the folder has none of its own).
        assert missing.status_code == 404 and "404" in missing.text and "Not Found" in missing.text
        assert missing.headers["content-type"] == "text/html; charset=utf-8"
    finally:
        _stop(proc)
