"""Take the screenshots checked in under docs/screenshots/: the built docs' home page and the demo site.

    .venv/bin/python tools/screenshots.py

Builds the docs site (mkdocs) into a temporary folder, serves it with
``microweb serve`` and the demo with ``microweb run examples/demo.py``, both on
free loopback ports, and has headless Chromium (Debian's ``chromium``) save a
PNG of each page. Nothing leaves the machine: the docs use no web fonts and
Chromium runs with its background networking off.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "screenshots")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"screenshots.py: nothing listening on port {port}")


def start(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "microweb", *args, "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL)
    wait_for(port)
    return proc, port


def screenshot(url: str, path: str, size: str = "1280,900") -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("screenshots.py: needs Debian's chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={size}", f"--screenshot={path}", url],
                       check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"wrote {os.path.relpath(path, ROOT)}")


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    demo, demo_port = start("run", os.path.join(ROOT, "examples", "demo.py"))
    try:  # the demo first: the docs' home page shows its screenshot
        screenshot(f"http://127.0.0.1:{demo_port}/", os.path.join(OUT, "demo.png"), size="1024,400")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(30)
    with tempfile.TemporaryDirectory() as tmp:
        site = os.path.join(tmp, "site")
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", site],
                       cwd=ROOT, check=True, timeout=300, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
        docs, docs_port = start("serve", site)
        try:
            screenshot(f"http://127.0.0.1:{docs_port}/", os.path.join(OUT, "docs-home.png"))
        finally:
            docs.send_signal(signal.SIGINT)
            docs.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
