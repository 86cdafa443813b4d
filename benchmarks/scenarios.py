"""The scenarios of issue 6: which servers, which URL, which wrk script; and the targets over them.

A ``Case`` is one server in one scenario. ``CASES`` lists them all in the order they run; ``TARGETS``
says which ratio of medians each target of the issue is judged on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from . import harness as h

BROWSER_LUA = os.path.join(h.BENCH_DIR, "browser.lua")
PIPELINE_LUA = os.path.join(h.BENCH_DIR, "pipeline.lua")
PIPELINE_DEPTH = "16"
SMALL_FILE = "1k.txt"
LARGE_FILE = "10m.bin"
SMALL_SIZE = 1024
LARGE_SIZE = 10 * 1024 * 1024
HELLO = b"Hello, World!"


@dataclass
class Workspace:
    """Per-run scratch: a log directory and a static folder holding the 1 KB and 10 MB files."""

    root: str
    static_dir: str = ""

    def __post_init__(self) -> None:
        os.chmod(self.root, 0o755)  # nginx's worker (user nobody) must reach the static files
        self.static_dir = os.path.join(self.root, "static")
        os.makedirs(self.static_dir, exist_ok=True)
        small = os.path.join(self.static_dir, SMALL_FILE)
        large = os.path.join(self.static_dir, LARGE_FILE)
        if not os.path.exists(small):
            with open(small, "wb") as f:
                f.write((b"microweb static benchmark, 1 KB of text. " * 30)[:SMALL_SIZE - 1] + b"\n")
        if not os.path.exists(large):
            with open(large, "wb") as f:
                f.write(os.urandom(LARGE_SIZE))
        for path in (self.static_dir, small, large):
            os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)


ServerFactory = Callable[[int, Workspace], h.ServerSpec]


@dataclass
class Case:
    """One server under one scenario."""

    scenario: str
    server: str  # short key used in ratios, e.g. "microweb", "uvicorn"
    label: str  # what the table prints
    factory: ServerFactory
    path: str = "/"
    script: str | None = None
    script_args: list[str] = field(default_factory=list)
    expect: bytes = HELLO
    byte_rate: bool = False  # report bytes/s as well (large files)


def _mw(app: str) -> ServerFactory:
    return lambda port, ws: h.microweb_server(os.path.join(h.APPS_DIR, app), port)


def _mw_serve(port: int, ws: Workspace) -> h.ServerSpec:
    return h.microweb_serve(ws.static_dir, port)


def _mw_static(port: int, ws: Workspace) -> h.ServerSpec:
    return h.microweb_server(os.path.join(h.APPS_DIR, "static_site.py"), port, cwd=ws.root,
                             env={"BENCH_STATIC_DIR": ws.static_dir})


def _floor(port: int, ws: Workspace) -> h.ServerSpec:
    return h.floor_server(port)


def _uvicorn(target: str) -> ServerFactory:
    return lambda port, ws: h.uvicorn_server(target, port)


def _waitress(target: str) -> ServerFactory:
    return lambda port, ws: h.waitress_server(target, port, env={"BENCH_STATIC_DIR": ws.static_dir})


def _nginx(port: int, ws: Workspace) -> h.ServerSpec:
    return h.nginx_server(port, ws.static_dir, ws.root)


SCENARIOS: dict[str, str] = {
    "hello": "hello world, wrk's bare request",
    "browser": "hello world, browser headers (~500 B)",
    "json": "JSON route /items/<int:id>?q=",
    "pipeline": f"hello world, pipelined depth {PIPELINE_DEPTH}",
    "static1k": "1 KB static file",
    "static10m": "10 MB static file",
}

ITEMS_PATH = "/items/42?q=hello"


def _hello_cases(scenario: str, script: str | None, peers: bool) -> list[Case]:
    cases = [
        Case(scenario, "microweb", "microweb @app.route", _mw("hello.py"), script=script),
        Case(scenario, "floor", "bare selectors loop (floor.py)", _floor, script=script),
        Case(scenario, "nginx", "nginx, one worker, fixed response", _nginx, path="/hello", script=script),
        Case(scenario, "uvicorn", "uvicorn+httptools+uvloop, raw ASGI", _uvicorn("asgi_hello:app"), script=script),
        Case(scenario, "starlette", "Starlette on uvicorn+uvloop", _uvicorn("starlette_app:app"), script=script),
        Case(scenario, "waitress", "waitress, raw WSGI", _waitress("wsgi_hello:app"), script=script),
        Case(scenario, "bottle", "Bottle on waitress", _waitress("bottle_app:app"), script=script),
    ]
    return cases if peers else [c for c in cases if c.server not in ("starlette", "bottle")]


CASES: list[Case] = [
    *_hello_cases("hello", None, peers=True),
    *_hello_cases("browser", BROWSER_LUA, peers=False),
    Case("json", "microweb", "microweb @app.route", _mw("items.py"), path=ITEMS_PATH, expect=b'"id"'),
    Case("json", "flask", "Flask on waitress", _waitress("flask_app:app"), path=ITEMS_PATH, expect=b'"id"'),
    Case("json", "starlette", "Starlette on uvicorn+uvloop", _uvicorn("starlette_app:app"), path=ITEMS_PATH,
         expect=b'"id"'),
    Case("pipeline", "microweb", "microweb @app.route", _mw("hello.py"), script=PIPELINE_LUA,
         script_args=[PIPELINE_DEPTH]),
    Case("pipeline", "floor", "bare selectors loop (floor.py)", _floor, script=PIPELINE_LUA,
         script_args=[PIPELINE_DEPTH]),
    Case("pipeline", "uvicorn", "uvicorn+httptools+uvloop, raw ASGI", _uvicorn("asgi_hello:app"),
         script=PIPELINE_LUA, script_args=[PIPELINE_DEPTH]),
    Case("static1k", "microweb", "microweb serve DIR", _mw_serve, path="/" + SMALL_FILE, expect=b"microweb"),
    Case("static1k", "microweb_app", "microweb App static-folder fallback", _mw_static, path="/" + SMALL_FILE,
         expect=b"microweb"),
    Case("static1k", "nginx", "nginx, one worker", _nginx, path="/" + SMALL_FILE, expect=b"microweb"),
    Case("static1k", "whitenoise", "whitenoise on waitress", _waitress("whitenoise_app:app"),
         path="/" + SMALL_FILE, expect=b"microweb"),
    Case("static10m", "microweb", "microweb serve DIR", _mw_serve, path="/" + LARGE_FILE, expect=b"",
         byte_rate=True),
    Case("static10m", "nginx", "nginx, one worker", _nginx, path="/" + LARGE_FILE, expect=b"", byte_rate=True),
]


@dataclass
class Target:
    """One target of issue 6 (or issue 2): a measured value compared with a bound."""

    id: str
    what: str
    op: str  # ">=" or "<="
    bound: float
    unit: str  # "x" for ratios of medians, else the value's unit
    numerator: tuple[str, str, str] | None = None  # (scenario, server, metric) for ratio targets
    denominator: tuple[str, str, str] | None = None


TARGETS: list[Target] = [
    Target("1a", "hello, browser headers: microweb / uvicorn raw ASGI", ">=", 2.0, "x",
           ("browser", "microweb", "rps"), ("browser", "uvicorn", "rps")),
    Target("1b", "hello, browser headers: microweb / floor.py", ">=", 0.5, "x",
           ("browser", "microweb", "rps"), ("browser", "floor", "rps")),
    Target("2a", "JSON route: microweb / Flask on waitress", ">=", 8.0, "x",
           ("json", "microweb", "rps"), ("json", "flask", "rps")),
    Target("2b", "JSON route: microweb / Starlette on uvicorn", ">=", 2.0, "x",
           ("json", "microweb", "rps"), ("json", "starlette", "rps")),
    Target("3", "pipelined x16: microweb / uvicorn raw ASGI", ">=", 3.0, "x",
           ("pipeline", "microweb", "rps"), ("pipeline", "uvicorn", "rps")),
    Target("3s", "pipelined x16: microweb sends per recv (one send per read)", "<=", 1.0, "sends/recv"),
    Target("4a", "1 KB static: microweb / nginx", ">=", 0.6, "x",
           ("static1k", "microweb", "rps"), ("static1k", "nginx", "rps")),
    Target("4b", "10 MB static: microweb / nginx", ">=", 0.95, "x",
           ("static10m", "microweb", "rps"), ("static10m", "nginx", "rps")),
    Target("5m", "10k idle conns held: microweb RSS", "<=", 40.0, "MB"),
    Target("5r", "10k idle conns held: rps with / without", ">=", 0.9, "x"),
    Target("5u", "10k idle conns: share that answer again afterwards", ">=", 1.0, "x"),
    Target("6", "p99 at 50 conns, bare hello: microweb / uvicorn", "<=", 1.0, "x",
           ("hello", "microweb", "p99_ms"), ("hello", "uvicorn", "p99_ms")),
    Target("7a", "microweb run: time to first accept", "<=", 150.0, "ms"),
    Target("7b", "import microweb imports jinja2 (0 = no)", "<=", 0, "bool"),
    Target("i2", "issue 2: hello, bare: microweb / waitress", ">=", 3.0, "x",
           ("hello", "microweb", "rps"), ("hello", "waitress", "rps")),
]


def met(target: Target, value: float | None) -> bool | None:
    """Whether ``value`` meets ``target`` (None when it was not measured)."""
    if value is None or value != value:
        return None
    return value >= target.bound if target.op == ">=" else value <= target.bound
