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
            if exc.name and module_part.startswith(exc.name):
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
    serve_cmd = sub.add_parser("serve", help="serve a folder of static files: microweb serve [DIR]")
    serve_cmd.add_argument("directory", metavar="DIR", nargs="?", default=".", help="the folder to serve (default .)")
    serve_cmd.add_argument("--listing", action="store_true", help="list the files of folders without index.html")
    add_server_options(serve_cmd)
    return parser


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")


def cmd_run(args: argparse.Namespace) -> int:
    app = _check_app(locate_app(args.app), args.app)
    return serve(app.handle, args)


def serve(handle: Any, args: argparse.Namespace) -> int:
    from .reactor import Server

    if not 0 <= args.port <= 65535:
        raise UsageError(f"port must be between 0 and 65535, got {args.port}")
    try:
        server = Server(handle, host=args.host, port=args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {args.port} on {args.host} is already in use") from None
        if exc.errno == errno.EACCES:
            raise UsageError(f"permission denied to listen on {args.host}:{args.port}") from None
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print(f"microweb serving on {server.url} (press Ctrl+C to quit)", flush=True)
    server.serve_forever()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``microweb serve [DIR]``: the static-file fallback alone, with the package's error pages."""
    from .app import App
    from .static import StaticFiles

    if not os.path.isdir(args.directory):
        raise UsageError(f"not a directory: {args.directory}")
    app = App(template_folder=None, static_folder=args.directory)
    app.static = StaticFiles(args.directory, listing=args.listing)
    return serve(app.handle, args)


COMMANDS = {"run": cmd_run, "serve": cmd_serve}


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
