"""``microweb serve [DIR] [--host] [--port] [--listing]``."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from conftest import free_port, run_cli, start_cli, wait_for_port


def serve(*args: str, cwd: str | None = None) -> Iterator[str]:
    port = free_port()
    proc = start_cli("serve", *args, "--port", str(port), cwd=cwd)
    try:
        wait_for_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<h1>served</h1>")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a&b.txt").write_text("ab")
    (tmp_path / ".secret").write_text("no")
    return tmp_path


def test_serve_a_folder(folder: Path) -> None:
    for url in serve(str(folder)):
        assert httpx.get(url + "/").text == "<h1>served</h1>"
        r = httpx.get(url + "/docs/a%26b.txt", headers={"Range": "bytes=0-0"})
        assert r.status_code == 206 and r.text == "a"
        assert httpx.get(url + "/.secret").status_code == 404
        r = httpx.get(url + "/docs/")
        assert r.status_code == 404 and "404 Not Found" in r.text  # no listing unless asked
        assert httpx.post(url + "/index.html").status_code == 405


def test_serve_defaults_to_the_current_directory(folder: Path) -> None:
    for url in serve(cwd=str(folder)):
        assert httpx.get(url + "/").text == "<h1>served</h1>"


def test_serve_listing(folder: Path) -> None:
    for url in serve(str(folder), "--listing"):
        r = httpx.get(url + "/docs/")
        assert r.status_code == 200
        assert 'href="a%26b.txt"' in r.text and "a&amp;b.txt" in r.text
        assert httpx.get(url + "/").text == "<h1>served</h1>"


def test_serve_rejects_a_missing_folder(tmp_path: Path) -> None:
    result = run_cli("serve", str(tmp_path / "nope"), "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == f"microweb: error: not a directory: {tmp_path / 'nope'}"
    assert "Traceback" not in result.stderr
