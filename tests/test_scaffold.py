"""``microweb new NAME``: the scaffold is complete, its own tests pass, and it serves."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx

from conftest import REPO_ROOT, free_port, run_cli, start_cli, wait_for_port


def test_new_creates_a_working_site(tmp_path: Any) -> None:
    r = run_cli("new", "mysite", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    site = tmp_path / "mysite"
    for relative in ("app.py", "templates/base.html", "templates/index.html", "templates/404.html",
                     "static/style.css", "test_app.py"):
        assert (site / relative).is_file(), relative
    assert "app.test_client()" in (site / "test_app.py").read_text()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
                           cwd=str(site), env=env, capture_output=True, text=True, timeout=60)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout

    port = free_port()
    proc = start_cli("run", "app:app", "--port", str(port), cwd=str(site))
    try:
        wait_for_port("127.0.0.1", port)
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert "<h1>mysite</h1>" in page.text and "<title>mysite</title>" in page.text
        missing = httpx.get(f"http://127.0.0.1:{port}/nope")
        assert missing.status_code == 404 and "<code>/nope</code>" in missing.text
        assert "font-family" in httpx.get(f"http://127.0.0.1:{port}/style.css").text
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_new_refuses_existing_and_bad_names(tmp_path: Any) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    r = run_cli("new", "taken", cwd=str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "already exists" in r.stderr
    r = run_cli("new", "bad name!", cwd=str(tmp_path))
    assert r.returncode == 2 and "invalid project name" in r.stderr
    assert (tmp_path / "taken" / "file").read_text() == "x"
