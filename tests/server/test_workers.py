"""``--workers N``: a supervisor, pre-forked workers on one listener, restart, stop and reload."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import textwrap
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import free_port, start_cli, wait_for_port

APP = textwrap.dedent("""
    import os, time
    from microweb import App
    app = App(static_folder=None, template_folder=None)

    @app.get("/pid")
    def pid(request):
        return str(os.getpid())

    @app.get("/slow")
    def slow(request):
        time.sleep(float(request.args.get("s", "1")))
        return "slow done " + str(os.getpid())
""")


class Supervised:
    """``microweb run --workers N`` in a subprocess, with its log lines collected as they come."""

    def __init__(self, folder: Path, *args: str) -> None:
        (folder / "wapp.py").write_text(APP)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = start_cli("run", "wapp.py", "--port", str(self.port), *args, cwd=str(folder))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for_port("127.0.0.1", self.port)
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 0
        if workers:
            self.wait_log(r"worker \d+ started", count=workers)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        return "\n".join(self.lines)

    def started_pids(self) -> list[int]:
        return [int(m) for m in re.findall(r"worker (\d+) started", self.log())]

    def wait_log(self, pattern: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.findall(pattern, self.log())
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} x{count} not in the log:\n{self.log()}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not a worker any more.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def pids_serving(url: str, tries: int = 100) -> set[int]:
    seen = set()
    for _ in range(tries):
        with httpx.Client() as client:  # a new connection each time
            seen.add(int(client.get(url + "/pid", timeout=5).text))
        if len(seen) >= 2:
            break
    return seen


@pytest.fixture
def supervised(tmp_path: Path) -> Any:
    started: list[Supervised] = []

    def start(*args: str) -> Supervised:
        s = Supervised(tmp_path, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop(signal.SIGKILL)
        for pid in s.started_pids():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_workers_share_the_listener(supervised: Any) -> None:
    s = supervised("--workers", "2")
    pids = s.started_pids()
    assert len(pids) == 2
    assert "with 2 workers" in (s.proc.stdout.readline() if s.proc.stdout else "")
    served = pids_serving(s.url)
    assert served <= set(pids)
    assert len(served) == 2, "only one worker ever accepted"
    assert s.proc.pid not in served  # the supervisor itself serves nothing
    assert s.stop() == 0
    assert not any(alive(p) for p in pids)


def test_a_dead_worker_is_replaced(supervised: Any) -> None:
    s = supervised("--workers", "2")
    first = s.started_pids()
    os.kill(first[0], signal.SIGKILL)
    s.wait_log(r"worker %d exited unexpectedly" % first[0])
    s.wait_log(r"worker \d+ started", count=3)
    replacement = [p for p in s.started_pids() if p not in first]
    assert len(replacement) == 1 and alive(replacement[0])
    for _ in range(20):
        assert httpx.get(s.url + "/pid", timeout=5).status_code == 200
    assert s.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_is_forwarded_and_graceful(supervised: Any, signum: int) -> None:
    s = supervised("--workers", "2", "--graceful-timeout", "10")
    result: dict[str, Any] = {}

    def slow() -> None:
        result["r"] = httpx.get(s.url + "/slow?s=1", timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)  # the request is in a worker's handler
    start = time.monotonic()
    s.proc.send_signal(signum)
    t.join(10)
    assert result["r"].status_code == 200 and result["r"].text.startswith("slow done")
    assert s.stop(signum) == 0
    assert time.monotonic() - start < 5.0
    assert not any(alive(p) for p in s.started_pids())
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=1).close()


def test_sighup_reloads_workers_gracefully(supervised: Any) -> None:
    s = supervised("--workers", "2", "--threads", "2")
    old = s.started_pids()
    result: dict[str, Any] = {}

    def slow() -> None:
        result["r"] = httpx.get(s.url + "/slow?s=1.5", timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"worker \d+ started", count=4)
    new = [p for p in s.started_pids() if p not in old]
    assert len(new) == 2
    # New connections are served while the old generation finishes.
    for _ in range(10):
        assert httpx.get(s.url + "/pid", timeout=5).status_code == 200
    t.join(10)
    assert result["r"].status_code == 200 and int(result["r"].text.split()[-1]) in old
    s.wait_log(r"\(old generation\) exited with 0", count=2)
    assert not any(alive(p) for p in old)
    assert all(alive(p) for p in new)
    served = pids_serving(s.url)
    assert served <= set(new)
    assert s.stop() == 0


def test_workers_flag_usage_error() -> None:
    from conftest import run_cli

    result = run_cli("run", "x:app", "--workers", "two")
    assert result.returncode == 2 and "--workers" in result.stderr and "Traceback" not in result.stderr


def test_app_run_with_workers(tmp_path: Path) -> None:
    from conftest import REPO_ROOT

    script = tmp_path / "runw.py"
    script.write_text(APP + textwrap.dedent("""
        import sys
        app.run(port=int(sys.argv[1]), workers=2)
    """))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.Popen([sys.executable, str(script), str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port("127.0.0.1", port)
        assert httpx.get(f"http://127.0.0.1:{port}/pid", timeout=5).text.isdigit()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "with 2 workers" in out
