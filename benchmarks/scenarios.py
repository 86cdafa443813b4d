"""The scenarios of issues 6 and 16: which servers, which URL, which wrk script; and the targets over them.

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
FLOOD_LUA = os.path.join(h.BENCH_DIR, "notfound_flood.lua")
METHOD_LUA = os.path.join(h.BENCH_DIR, "method.lua")
MANY_CONNECTIONS = 1000
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
    status: int = 200  # what every response must be (wrk counts anything >= 400 as "non-2xx")
    method: str = "GET"  # for the check before the run; wrk's method comes from the script
    connections: int = h.CONNECTIONS


def _mw(app: str, *options: str) -> ServerFactory:
    return lambda port, ws: h.microweb_server(os.path.join(h.APPS_DIR, app), port, options=options)


def _mw_notfound(port: int, ws: Workspace) -> h.ServerSpec:
    # Run from the workspace, which has no templates/ folder: the 404 and 405 are the package's default pages.
    return h.microweb_server(os.path.join(h.APPS_DIR, "notfound.py"), port, cwd=ws.root,
                             env={"BENCH_STATIC_DIR": ws.static_dir})


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


def _granian(target: str, interface: str) -> ServerFactory:
    return lambda port, ws: h.granian_server(target, interface, port)


def _socketify(port: int, ws: Workspace) -> h.ServerSpec:
    return h.socketify_server(port)


def _cheroot(target: str) -> ServerFactory:
    return lambda port, ws: h.cheroot_server(target, port, threads=4)


def _gunicorn(target: str) -> ServerFactory:
    return lambda port, ws: h.gunicorn_server(target, port, threads=4)


SCENARIOS: dict[str, str] = {
    "hello": "hello world, wrk's bare request",
    "browser": "hello world, browser headers (~500 B)",
    "json": "JSON route /items/<int:id>?q=",
    "pipeline": f"hello world, pipelined depth {PIPELINE_DEPTH}",
    "static1k": "1 KB static file",
    "static10m": "10 MB static file",
    "flask": "Flask JSON route /items/<int:id>?q= hosted",
    "notfound": "404 (no route, no file, default page) and 405",
    "c1000": f"hello world, {MANY_CONNECTIONS} keep-alive connections",
}

ITEMS_PATH = "/items/42?q=hello"


def _native_cases() -> list[Case]:
    """Issue 16's peers for hello world with browser headers: servers whose HTTP core is native code."""
    return [
        Case("browser", "socketify", "socketify (uWebSockets C++), Python callback", _socketify, script=BROWSER_LUA),
        Case("browser", "granian_wsgi", "granian WSGI, 1 worker, 1 runtime thread", _granian("wsgi_hello:app", "wsgi"),
             script=BROWSER_LUA),
        Case("browser", "granian_asgi", "granian ASGI, 1 worker, 1 runtime thread", _granian("asgi_hello:app", "asgi"),
             script=BROWSER_LUA),
        Case("browser", "cheroot", "cheroot, 4 threads, raw WSGI", _cheroot("wsgi_hello:app"), script=BROWSER_LUA),
    ]


def _flask_cases() -> list[Case]:
    """The same Flask app (apps/flask_app.py) on microweb and on the WSGI servers people host it on."""
    expect = b'"id"'
    return [
        Case("flask", "microweb_threads", "Flask on microweb --threads 4", _mw("flask_app.py", "--threads", "4"),
             path=ITEMS_PATH, expect=expect),
        Case("flask", "microweb", "Flask on microweb, inline", _mw("flask_app.py"), path=ITEMS_PATH, expect=expect),
        Case("flask", "granian", "Flask on granian WSGI, 1 worker, 1 runtime thread", _granian("flask_app:app", "wsgi"),
             path=ITEMS_PATH, expect=expect),
        Case("flask", "waitress", "Flask on waitress (4 threads)", _waitress("flask_app:app"), path=ITEMS_PATH,
             expect=expect),
        Case("flask", "gunicorn", "Flask on gunicorn gthread, 1 worker x 4 threads", _gunicorn("flask_app:app"),
             path=ITEMS_PATH, expect=expect),
    ]


def _notfound_cases() -> list[Case]:
    """One microweb app (apps/notfound.py): its JSON route, then what it costs to say 404 and 405."""
    return [
        Case("notfound", "json", "microweb JSON route (the reference)", _mw_notfound, path=ITEMS_PATH, expect=b'"id"'),
        Case("notfound", "404", "404, one path repeated", _mw_notfound, path="/no-such-page.html",
             expect=b"404 Not Found", status=404),
        Case("notfound", "404_flood", "404, a new path per request", _mw_notfound, path="/no-such-page-0.html",
             script=FLOOD_LUA, expect=b"404 Not Found", status=404),
        Case("notfound", "405", "405, DELETE on a GET route", _mw_notfound, path="/items/42", script=METHOD_LUA,
             expect=b"405 Method Not Allowed", status=405, method="DELETE"),
    ]


def _many_connection_cases() -> list[Case]:
    """microweb and nginx at 50 and at 1,000 keep-alive connections.

    nginx's own 1,000/50 ratio shows what the load generator (one wrk thread on one core) loses at
    1,000 connections whatever the server; its p99 at 1,000 is the one microweb's is reported beside.
    """
    return [
        Case("c1000", "microweb", f"microweb @app.route, {h.CONNECTIONS} connections", _mw("hello.py")),
        Case("c1000", "microweb_c1000", f"microweb @app.route, {MANY_CONNECTIONS} connections", _mw("hello.py"),
             connections=MANY_CONNECTIONS),
        Case("c1000", "nginx", f"nginx, one worker, fixed response, {h.CONNECTIONS} connections", _nginx,
             path="/hello"),
        Case("c1000", "nginx_c1000", f"nginx, one worker, fixed response, {MANY_CONNECTIONS} connections", _nginx,
             path="/hello", connections=MANY_CONNECTIONS),
    ]


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
    *_native_cases(),
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
    *_flask_cases(),
    *_notfound_cases(),
    *_many_connection_cases(),
]


@dataclass
class Target:
    """One target of issue 6, 16 (or 2): a measured value compared with a bound.

    ``op`` "info" is a figure the issue asks to see beside another (a p99 beside nginx's): reported, not judged.
    """

    id: str
    what: str
    op: str  # ">=", "<=" or "info"
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
    # issue 16: ahead of the native-code servers too
    Target("16.1a", "hello, browser headers: microweb / socketify", ">=", 1.1, "x",
           ("browser", "microweb", "rps"), ("browser", "socketify", "rps")),
    Target("16.1b", "hello, browser headers: microweb / granian WSGI", ">=", 1.6, "x",
           ("browser", "microweb", "rps"), ("browser", "granian_wsgi", "rps")),
    Target("16.1c", "hello, browser headers: microweb / floor.py", ">=", 0.7, "x",
           ("browser", "microweb", "rps"), ("browser", "floor", "rps")),
    Target("16.2a", "Flask: on microweb --threads 4 / on granian WSGI", ">=", 1.3, "x",
           ("flask", "microweb_threads", "rps"), ("flask", "granian", "rps")),
    Target("16.2b", "Flask: on microweb inline / on granian WSGI", ">=", 1.3, "x",
           ("flask", "microweb", "rps"), ("flask", "granian", "rps")),
    Target("16.2c", "Flask: on microweb --threads 4 / on gunicorn gthread", ">=", 2.0, "x",
           ("flask", "microweb_threads", "rps"), ("flask", "gunicorn", "rps")),
    Target("16.2d", "Flask: on microweb inline / on gunicorn gthread", ">=", 2.0, "x",
           ("flask", "microweb", "rps"), ("flask", "gunicorn", "rps")),
    Target("16.3a", "404, one path repeated / JSON route (same app)", ">=", 0.5, "x",
           ("notfound", "404", "rps"), ("notfound", "json", "rps")),
    Target("16.3b", "404, a new path per request / JSON route", ">=", 0.5, "x",
           ("notfound", "404_flood", "rps"), ("notfound", "json", "rps")),
    Target("16.3c", "405, wrong method on a route / JSON route", ">=", 0.5, "x",
           ("notfound", "405", "rps"), ("notfound", "json", "rps")),
    Target("16.4", f"hello: microweb at {MANY_CONNECTIONS} conns / at {h.CONNECTIONS}", ">=", 0.9, "x",
           ("c1000", "microweb_c1000", "rps"), ("c1000", "microweb", "rps")),
    Target("16.4p", f"p99 at {MANY_CONNECTIONS} conns: microweb / nginx (reported)", "info", 1.0, "x",
           ("c1000", "microweb_c1000", "p99_ms"), ("c1000", "nginx_c1000", "p99_ms")),
    Target("16.4n", f"hello: nginx at {MANY_CONNECTIONS} conns / at {h.CONNECTIONS} (wrk's own loss)", "info",
           1.0, "x", ("c1000", "nginx_c1000", "rps"), ("c1000", "nginx", "rps")),
]


def met(target: Target, value: float | None) -> bool | None:
    """Whether ``value`` meets ``target`` (None when it was not measured)."""
    if value is None or value != value or target.op == "info":
        return None
    return value >= target.bound if target.op == ">=" else value <= target.bound
