"""``--reload``: a change to the app's Python file restarts the server; the socket never refuses."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from conftest import free_port, start_cli, wait_for_port
from microweb.server.reload import snapshot, watch_root

SOURCE = '''
from microweb import App
app = App()

@app.route("/")
def index(request):
    return "version {n}"
'''


def test_watch_root_and_snapshot(tmp_path: Any) -> None:
    (tmp_path / "site.py").write_text("x = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "lib.py").write_text("")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "a.html").write_text("")
    assert watch_root(str(tmp_path / "site.py") + ":app") == str(tmp_path)
    files = snapshot(str(tmp_path))
    assert sorted(os.path.relpath(p, tmp_path) for p in files) == ["pkg/mod.py", "site.py"]


@pytest.mark.slow
@pytest.mark.parametrize("watcher", ["poll", "watchfiles"])
def test_reload_restarts_without_refusing(tmp_path: Any, watcher: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if watcher == "poll":
        monkeypatch.setenv("MICROWEB_RELOAD_POLL", "1")
    else:
        pytest.importorskip("watchfiles")
        monkeypatch.delenv("MICROWEB_RELOAD_POLL", raising=False)
    app_file = tmp_path / "reloadme.py"
    app_file.write_text(SOURCE.format(n=1))
    port = free_port()
    proc = start_cli("run", "reloadme:app", "--port", str(port), "--reload", "--reload-interval", "0.1",
                     cwd=str(tmp_path))
    refused: list[BaseException] = []
    seen: set[str] = set()
    done = threading.Event()

    def hammer() -> None:
        while not done.is_set():
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
                seen.add(r.text)
            except httpx.ConnectError as exc:
                refused.append(exc)
            except httpx.HTTPError:
                pass  # a keep-alive connection closed by the stopping server is not a refusal
            time.sleep(0.01)

    try:
        wait_for_port("127.0.0.1", port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/").text == "version 1":
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        thread = threading.Thread(target=hammer)
        thread.start()
        for n in (2, 3):
            time.sleep(0.5)
            app_file.write_text(SOURCE.format(n=n))
            os.utime(app_file, (time.time() + n, time.time() + n))
            deadline = time.monotonic() + 15
            while f"version {n}" not in seen and time.monotonic() < deadline:
                time.sleep(0.05)
        done.set()
        thread.join(15)
        assert {"version 1", "version 2", "version 3"} <= seen
        assert not refused
    finally:
        done.set()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "changed, restarting" in err
    assert ("using watchfiles" in err) == (watcher == "watchfiles")


def test_systemd_socket_activation(tmp_path: Any) -> None:
    """With LISTEN_PID/LISTEN_FDS set as systemd does, the server uses fd 3 instead of binding."""
    import subprocess
    import sys

    from conftest import REPO_ROOT

    (tmp_path / "sockapp.py").write_text(SOURCE.format(n="activated"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, LISTEN_FDS="1")

    def as_fd3() -> None:
        os.dup2(fd, 3)  # (3 is in pass_fds too, or the close-fds step after this would close it)

    proc = subprocess.Popen(
        ["sh", "-c", f'LISTEN_PID=$$ exec "{sys.executable}" -m microweb run sockapp:app --port 1'],
        cwd=str(tmp_path), env=env, preexec_fn=as_fd3, pass_fds=(3, fd), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    listener.close()  # only the server holds it now
    try:
        wait_for_port("127.0.0.1", port)
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "version activated"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out
