"""The README's two set-up commands, run verbatim in a fresh copy of the checkout with Debian's ``python3``.

Debian's and Ubuntu's own ``python3`` refuse ``pip install`` outside a virtual
environment (PEP 668, ``EXTERNALLY-MANAGED``); the README's commands make a venv
first, so they must work there. The test copies the files git knows (as they are
in the working tree: what a clone of this commit holds), puts ``/usr/bin`` first on
``PATH``, and runs the README's commands with ``bash -c`` exactly as written: the
demo command is served and fetched, then the test command runs with
``PYTEST_ADDOPTS`` narrowing it to a few files (the whole suite inside the suite
would run everything twice; ``.ci/run`` runs the same command on the whole suite).
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import REPO_ROOT, copy_checkout, free_port

DEBIAN_PYTHON = "/usr/bin/python3"
NESTED = "MICROWEB_SETUP_TEST_NESTED"


def readme_setup_commands() -> list[str]:
    """The fenced command blocks of the README's "Set up" section, in order (demo, then tests)."""
    text = Path(REPO_ROOT, "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```(?:bash|sh|shell)?\n(.*?)```", section, re.S)]


def test_readme_has_the_two_commands_and_ci_runs_the_test_command() -> None:
    demo, tests = readme_setup_commands()
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -e ")
        assert "\n" not in command  # one line, to paste as is
    assert ".venv/bin/microweb run examples/demo.py" in demo
    assert tests.endswith(".venv/bin/python -m pytest -q")
    ci = Path(REPO_ROOT, ".ci", "run").read_text(encoding="utf-8").rstrip().splitlines()
    assert ci[-1] == tests  # .ci/run runs the README's test command verbatim, as its last step


def _externally_managed() -> str | None:
    """Why the test cannot run here, or None when Debian's python3 refuses a bare pip install."""
    if not os.path.exists(DEBIAN_PYTHON):
        return f"{DEBIAN_PYTHON} is missing (apt-get install python3 python3-venv)"
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import ensurepip, os, sysconfig; print(os.path.isfile("
                            "os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"{DEBIAN_PYTHON} has no venv/ensurepip (apt-get install python3-venv)"
    if probe.stdout.strip() != "True":
        return f"{DEBIAN_PYTHON} is not marked EXTERNALLY-MANAGED, so it proves nothing about PEP 668"
    return None


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
    env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")
    env[NESTED] = "1"
    return env


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get(NESTED)), reason="already inside the set-up test's own run")
def test_readme_setup_commands_work_with_a_python_that_refuses_pip(tmp_path: Path) -> None:
    reason = _externally_managed()
    if reason and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}; .ci/run installs python3 and python3-venv for this test")
    if reason:
        pytest.skip(reason)
    env = _environment()
    clone = tmp_path / "microweb"
    copy_checkout(clone)
    assert not (clone / ".venv").exists() and (clone / "examples" / "demo.py").is_file()

    # The premise: outside a venv, this python3 refuses pip (before any download).
    bare = subprocess.run(["python3", "-m", "pip", "install", "--no-index", "jinja2"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0 and "externally-managed-environment" in bare.stdout + bare.stderr

    demo, tests = readme_setup_commands()
    if not _port_free(8000):  # another server on this machine: the same command on another port
        demo = demo.replace("--port 8000", f"--port {free_port()}")
    port = int(re.search(r"--port (\d+)", demo).group(1))  # type: ignore[union-attr]
    log = open(tmp_path / "demo.log", "w+")
    proc = subprocess.Popen(["bash", "-c", demo], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 600  # a venv and an install from the package index first
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        log.seek(0)
        output = log.read()
        assert page is not None, f"the demo never answered:\n{output[-3000:]}"
        assert page.status_code == 200 and "microweb demo" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/css/site.css").status_code == 200
        assert f"microweb serving on http://127.0.0.1:{port}" in output
        where = subprocess.run([str(clone / ".venv/bin/python"), "-c", "import microweb; print(microweb.__file__)"],
                               capture_output=True, text=True, timeout=30, cwd="/")
        assert where.stdout.strip() == str(clone / "microweb" / "__init__.py")  # the editable install
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
        log.close()
    assert proc.returncode == 0

    env["PYTEST_ADDOPTS"] = "-p no:cacheprovider tests/test_layers.py tests/test_scaffold.py tests/test_testing.py"
    run = subprocess.run(["bash", "-c", tests], cwd=clone, env=env, capture_output=True, text=True, timeout=1200)
    errors = "\n".join(line for line in run.stderr.splitlines() if "is ignored: it is neither" not in line)
    assert run.returncode == 0, run.stdout[-3000:] + errors[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary and "error" not in summary, summary
