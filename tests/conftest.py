"""Shared fixtures: a live microweb server on a loopback port, and helpers for raw sockets."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hardening_util import ResponseReader

from microweb import App, Request
from microweb.server.reactor import Server

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# pytest has read it by now; a pytest that a test starts (the scaffold's own tests) must not
# inherit this run's selection of files (tests/test_setup.py narrows a nested run with it).
os.environ.pop("PYTEST_ADDOPTS", None)


class LiveServer:
    """A ``Server`` running in a background thread on 127.0.0.1, port chosen by the OS."""

    def __init__(self, handle: Callable[..., Any], **options: Any) -> None:
        options.setdefault("request_class", Request)
        self.server = Server(handle, host="127.0.0.1", port=0, **options)
        self.host, self.port = self.server.address
        self.url = f"http://{self.host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.server.started.wait(5)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        return sock

    def stop(self, timeout: float = 10.0) -> None:
        self.server.stop()
        self.thread.join(timeout)


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """``live_server(app_or_handle, **server_options)`` starts a server; all are stopped after the test."""
    started: list[LiveServer] = []

    def start(app: App | Callable[..., Any], **options: Any) -> LiveServer:
        handle = app.handle if isinstance(app, App) else app
        server = LiveServer(handle, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def recv_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Read until the peer closes (or ``timeout`` passes with nothing new)."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bytes]:
    """Read one Content-Length-framed response: (head, body).

    Bytes past it are dropped: to read pipelined responses one by one, use
    ``hardening_util.ResponseReader`` on the socket instead.
    """
    response = ResponseReader(sock, timeout).next()
    if response is None:
        raise ConnectionError("the server closed the connection before a full response")
    _, head, body = response
    return head, body


def run_cli(*args: str, timeout: float = 10.0, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m microweb ARGS`` with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "microweb", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def start_cli(*args: str, cwd: str | None = None) -> subprocess.Popen[str]:
    """Start ``python -m microweb ARGS`` in the background (stdout/stderr piped)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "microweb", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_checkout(dest: Path) -> None:
    """Copy the checkout to ``dest`` as a fresh clone would hold it: the files git tracks, plus new
    files it does not ignore, as they are in the working tree (no .venv, build output or caches)."""
    listed = subprocess.run(["git", "-C", REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, timeout=60)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: nothing to copy as a clone")
    for name in listed.stdout.decode().split("\0"):
        source = Path(REPO_ROOT, name)
        if name and source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def need(module: str, why: str) -> Any:
    """Import ``module`` for a test: skipped with ``why`` when it is missing, but in CI (``CI=true``,
    where ``.ci/run`` installs the test extra) a missing module fails the test instead."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        import importlib

        return importlib.import_module(module)
    return pytest.importorskip(module, reason=why)
