"""The ``microweb`` command: ``microweb run MODULE:ATTR`` and ``microweb serve [DIR]``."""
from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import logging
import os
import sys
from typing import Any, NoReturn, Sequence

__all__ = ["main", "locate_app", "UsageError"]


class UsageError(Exception):
    """A wrong command line: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _import_from_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.splitext(os.path.basename(path))[0]
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def locate_app(spec: str) -> Any:
    """Import ``MODULE[:ATTR]`` or ``path/to/file.py[:ATTR]`` and return the app object."""
    module_part, _, attr = spec.partition(":")
    attr = attr or "app"
    if not module_part:
        raise UsageError(f"expected MODULE:ATTR, got {spec!r}")
    if module_part.endswith(".py") or os.sep in module_part:
        module = _import_from_file(module_part)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            # Only the module asked for (or a package on its path) is "not found"; a missing
            # module that the app itself imports is the app's error, shown with its traceback.
            if exc.name and (exc.name == module_part or module_part.startswith(exc.name + ".")):
                raise UsageError(f"cannot find module {module_part!r}") from None
            raise
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module {module_part!r} has no attribute {attr!r}") from None
    return obj


def _check_app(obj: Any, spec: str) -> Any:
    from .app import App

    if isinstance(obj, App):
        return obj
    raise UsageError(f"{spec} is a {type(obj).__name__}, not a microweb App")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="microweb", description="microweb: a fast Python web micro-framework")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="serve an app: microweb run MODULE:ATTR")
    run.add_argument("app", metavar="MODULE:ATTR", help="module or file.py, then ':' and the app attribute (default app)")
    add_server_options(run)
    from .runner import add_run_options

    add_run_options(run)
    new = sub.add_parser("new", help="create a new site: microweb new NAME")
    new.add_argument("name", metavar="NAME", help="the directory to create")
    routes = sub.add_parser("routes", help="print the route table: microweb routes MODULE:ATTR")
    routes.add_argument("app", metavar="MODULE:ATTR", help="module or file.py, then ':' and the app attribute")
    serve_cmd = sub.add_parser("serve", help="serve a folder of static files: microweb serve [DIR]")
    serve_cmd.add_argument("directory", metavar="DIR", nargs="?", default=".", help="the folder to serve (default .)")
    serve_cmd.add_argument("--listing", action="store_true", help="list the files of folders without index.html")
    add_server_options(serve_cmd)
    return parser


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    add_limit_options(parser)


def _check_target(obj: Any, spec: str) -> Any:
    """A microweb App, or any other WSGI callable (served through ``WSGIAdapter``)."""
    from .app import App

    if isinstance(obj, App) or callable(obj):
        return obj
    raise UsageError(f"{spec} is a {type(obj).__name__}, not a microweb App or a WSGI application")


def cmd_run(args: argparse.Namespace) -> int:
    from . import runner

    runner.check_run_options(args, UsageError)
    if args.reload and not os.environ.get(runner.LISTEN_FD_ENV):
        from .reload import run_with_reloader

        return run_with_reloader(args, UsageError)
    target = _check_target(locate_app(args.app), args.app)
    return serve(runner.make_handler(target, args), args, target)


def serve(handle: Any, args: argparse.Namespace, target: Any = None) -> int:
    from . import runner
    from .reactor import Server

    if not 0 <= args.port <= 65535:
        raise UsageError(f"port must be between 0 and 65535, got {args.port}")
    options = limit_options(args)
    workers = options.pop("workers")
    options.update(runner.server_options(args))
    inherited = options.pop("sock", None)  # the listening socket a --reload supervisor holds
    try:
        if workers:
            from .reactor import create_listener

            listener = inherited or create_listener(args.host, args.port)
        else:
            server = Server.create(handle, host=args.host, port=args.port, sock=inherited, **options)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {args.port} on {args.host} is already in use") from None
        if exc.errno == errno.EACCES:
            raise UsageError(f"permission denied to listen on {args.host}:{args.port}") from None
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    if workers:
        from .workers import run_workers

        if hasattr(handle, "set_address"):  # a WSGI app: SERVER_NAME/SERVER_PORT are the real ones
            handle.set_address(*listener.getsockname()[:2])

        def listening(url: str) -> None:
            if getattr(args, "certfile", None):
                url = "https" + url[4:]
            print(f"microweb serving on {url} with {workers} workers (press Ctrl+C to quit)", flush=True)

        return run_workers(handle, args.host, args.port, workers, sock=listener, on_listening=listening, **options)
    if hasattr(handle, "set_address"):
        handle.set_address(*server.address)
    print(runner.banner(server.url, target, args), flush=True)
    server.serve_forever()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``microweb serve [DIR]``: the static-file fallback alone, with the package's error pages."""
    from .app import App
    from .static import StaticFiles

    if not os.path.isdir(args.directory):
        raise UsageError(f"not a directory: {args.directory}")
    app = App(template_folder=None, static_folder=args.directory)
    static = app.static = StaticFiles(args.directory, listing=args.listing)
    fast, handle = static.fast_response, app.handle

    def serve_file(request: Any) -> Any:
        # No routes here: a hot unchanged file skips the router; everything else takes App.handle.
        result = fast(request)
        return result if result is not None else handle(request)

    return serve(serve_file, args, app)


def cmd_routes(args: argparse.Namespace) -> int:
    app = _check_app(locate_app(args.app), args.app)
    print(format_routes(app))
    return 0


def format_routes(app: Any) -> str:
    """The route table in the order the router tries it: literal paths, then dynamic rules, then static files."""
    router = app.router
    literal = [r for r in router.routes if r.is_literal]
    rows = [("METHODS", "PATH", "ENDPOINT")]
    for route in literal + list(router.dynamic):
        rows.append((", ".join(sorted(route.methods)), route.rule, route.name))
    if app.static_folder is not None:
        rows.append(("GET, HEAD", f"{app.static_url_path}/<path:filename>", f"(static files: {app.static_folder})"))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{m:<{widths[0]}}  {p:<{widths[1]}}  {e}" for m, p, e in rows)




# -- limits and hardening flags (README "Limits and hardening") ------------------

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """``"16M"`` -> 16777216: a byte count with an optional K/M/G suffix (powers of 1024)."""
    value = text.strip().lower()
    digits = value.rstrip("kmgib")
    unit = value[len(digits):]
    if unit not in _SIZE_UNITS or not digits.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a size like 65536, 64K or 16M, got {text!r}")
    return int(digits) * _SIZE_UNITS[unit]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


# (flag, Server keyword, type, help); None defaults leave the Server's own default.
LIMIT_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--max-request-line", "max_request_line", parse_size, "longest request line (default 8K; longer: 414)"),
    ("--max-header-size", "max_header_size", parse_size, "largest header section (default 64K; larger: 431)"),
    ("--max-header-count", "max_header_count", _count, "most header fields (default 100; more: 431)"),
    ("--max-body-size", "max_body_size", parse_size, "largest request body (default 16M; larger: 413)"),
    ("--keepalive-timeout", "keepalive_timeout", _seconds, "idle keep-alive seconds (default 75)"),
    ("--head-timeout", "head_timeout", _seconds, "seconds from a head's first byte to its end (default 10; then 408)"),
    ("--body-timeout", "body_timeout", _seconds, "longest pause while a body arrives, and the grace before "
                                                 "--min-body-rate applies (default 30)"),
    ("--min-body-rate", "min_body_rate", parse_size, "bytes/s a body must average after the grace "
                                                     "(default 1K; 0: off)"),
    ("--write-timeout", "write_timeout", _seconds, "close a connection whose output makes no progress this long "
                                                   "(default 30)"),
    ("--graceful-timeout", "graceful_timeout", _seconds, "on SIGTERM/SIGINT, seconds to finish begun responses "
                                                         "(default 30)"),
    ("--max-connections", "max_connections", _count, "concurrent connections; more wait in the backlog "
                                                     "(default: the fd limit less headroom)"),
    ("--max-requests-per-connection", "max_requests_per_connection", _count,
     "requests one connection may make before it is closed (default 10000; 0: no cap)"),
    ("--max-pipelined", "max_pipelined", _count, "with --threads: requests queued per connection before it "
                                                 "is no longer read (default 128)"),
    ("--threads", "threads", _count, "run handlers in a pool of N threads (default 0: inline in the reactor)"),
    ("--workers", "workers", _count, "pre-fork N worker processes under a supervisor (default 0: one process)"),
]


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("limits and hardening")
    for flag, dest, kind, text in LIMIT_FLAGS:
        group.add_argument(flag, dest=dest, type=kind, default=None, metavar="N", help=text)


def limit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Server keywords given on the command line (``workers`` always present)."""
    options = {dest: getattr(args, dest) for _, dest, _, _ in LIMIT_FLAGS if getattr(args, dest, None) is not None}
    options.setdefault("workers", 0)
    return options



def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import create_project

    try:
        files = create_project(args.name)
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    print(f"created {args.name}/: " + ", ".join(files))
    print(f"next: cd {args.name} && microweb run app:app --debug --reload   (tests: python -m pytest -q)")
    return 0


COMMANDS = {"run": cmd_run, "routes": cmd_routes, "new": cmd_new, "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            raise UsageError("missing command; try 'microweb run MODULE:ATTR' (see --help)")
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"microweb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
