"""``microweb run --reload``: a supervisor that restarts the server when the app's Python files change.

The supervisor opens the listening socket itself and hands it to each server
process it starts (``MICROWEB_LISTEN_FD``, passed with ``pass_fds``), so while
one server stops and the next imports the app, connections wait in the socket's
backlog instead of being refused. It watches the ``*.py`` files under the app's
own directory (not all of ``sys.path``; hidden folders, ``__pycache__``,
virtualenvs and ``node_modules`` are skipped): with ``watchfiles`` when it is
installed (inotify, no polling; ``MICROWEB_RELOAD_POLL=1`` turns it off), else by
polling their modification times every ``--reload-interval`` seconds. Templates and static files need no
restart: in a reloading server templates are re-read when they change and
static files are read from disk on each request.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any, Iterator

from .listeners import LISTEN_FD_ENV, create_listener
from .options import ServerOptions

__all__ = ["run_with_reloader", "watch_root", "snapshot", "changes"]

log = logging.getLogger("microweb")

SKIP_DIRS = frozenset({"__pycache__", "node_modules", "venv", "site-packages", "build", "dist"})
MAX_FILES = 20000  # a bound on what one poll stats


def watch_root(spec: str) -> str:
    """The directory holding the app named by ``MODULE[:ATTR]`` or ``file.py[:ATTR]``."""
    module_part = spec.partition(":")[0]
    if module_part.endswith(".py") or os.sep in module_part:
        return os.path.dirname(os.path.abspath(module_part))
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        found = importlib.util.find_spec(module_part.split(".")[0])
    except (ImportError, ValueError):
        found = None
    origin = getattr(found, "origin", None) if found is not None else None
    if not origin or origin in ("built-in", "frozen"):
        return cwd
    path = os.path.dirname(os.path.abspath(origin))
    if found is not None and found.submodule_search_locations:  # a package: watch it and its neighbours
        path = os.path.dirname(path)
    return path


def snapshot(root: str, suffix: str = ".py", skip_dirs: frozenset[str] = SKIP_DIRS,
             limit: int = MAX_FILES) -> dict[str, int]:
    """``{path: mtime_ns}`` of the files under ``root`` whose names end with ``suffix``
    (dot-folders and ``skip_dirs`` left out; at most ``limit`` files)."""
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in skip_dirs]
        for name in filenames:
            if name.endswith(suffix):
                path = os.path.join(dirpath, name)
                try:
                    found[path] = os.stat(path).st_mtime_ns
                except OSError:
                    continue
                if len(found) >= limit:
                    return found
    return found


def _changed(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def changes(root: str, interval: float, stop: threading.Event) -> Iterator[list[str]]:
    """Batches of changed ``*.py`` paths under ``root`` until ``stop`` is set ([] when nothing changed,
    at least every ``interval`` seconds, so the caller can look at its child too)."""
    watchfiles: Any = None
    if not os.environ.get("MICROWEB_RELOAD_POLL"):
        try:
            import watchfiles
        except ImportError:
            watchfiles = None
    if watchfiles is not None:
        log.info("reloader using watchfiles on %s", root)
        for batch in watchfiles.watch(root, watch_filter=watchfiles.PythonFilter(), stop_event=stop,
                                      rust_timeout=max(100, int(interval * 1000)), yield_on_timeout=True,
                                      debounce=200, raise_interrupt=False):
            yield sorted(path for _, path in batch)
        return
    log.info("reloader polling %s every %.2gs", root, interval)
    files = snapshot(root)
    while not stop.wait(interval):
        current = snapshot(root)
        changed = _changed(files, current)
        files = current
        yield changed


def _child_argv() -> list[str]:
    args = [a for a in sys.argv[1:] if a != "--reload"]
    return [sys.executable, "-m", "microweb", *args]


def run_with_reloader(spec: str, options: ServerOptions, interval: float = 0.5) -> int:
    """Hold the socket, run the server in a child process, restart it on change; exit on SIGINT/SIGTERM.

    The child is this command line again without ``--reload`` (``sys.argv``); ``spec`` is the
    app it serves (``MODULE:ATTR`` or a file), whose directory is watched. Binding errors
    (``OSError``) are raised before anything starts.
    """
    listener = create_listener(options.host, options.port, options.backlog)
    listener.set_inheritable(True)
    fd = listener.fileno()
    root = watch_root(spec)
    env = dict(os.environ, **{LISTEN_FD_ENV: str(fd), "MICROWEB_RELOADER": "1"})
    argv = _child_argv()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = [(s, signal.signal(s, on_signal)) for s in (signal.SIGINT, signal.SIGTERM)]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=env, pass_fds=(fd,))

    child = start()
    try:
        # A child that exits on its own (a syntax error, say) is restarted at the next change.
        for changed in changes(root, interval, stop):
            if stop.is_set():
                break
            if changed:
                log.info("%s changed, restarting", os.path.relpath(changed[0], root))
                _stop(child)
                child = start()
    finally:
        _stop(child)
        listener.close()
        for signum, handler in previous:
            signal.signal(signum, handler)
    return 0


def _stop(child: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
