"""The ``microweb`` command: ``run``, ``serve``, ``routes``, ``new``.

The server's flags are generated from ``ServerOptions`` (``server/options.py``); the
development flags (``--reload``, ``--debug``, the access log) are declared here. A
wrong command line is one line on stderr and exit status 2 (``UsageError``).
"""
from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import logging
import math
import os
import sys
from typing import Any, Callable, NoReturn, Sequence

from .server.listeners import LISTEN_FD_ENV
from .server.options import ServerOptions

__all__ = ["main", "locate_app", "UsageError", "build_parser"]


class UsageError(Exception):
    """A wrong command line: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _directory_error(path: str) -> UsageError:
    """What to say when ``microweb run`` is given a directory instead of a module or a file."""
    candidates = [name for name in ("app.py", "main.py", "wsgi.py") if os.path.isfile(os.path.join(path, name))]
    hint = f"; try 'microweb run {os.path.join(path, candidates[0])}'" if candidates else \
        "; give the app's file (path/to/app.py) or MODULE:ATTR"
    return UsageError(f"{path} is a directory, not a module or file with an app{hint}")


def _import_from_file(path: str) -> Any:
    if os.path.isdir(path):
        raise _directory_error(path)
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
        if os.path.isdir(module_part) and not os.path.isfile(os.path.join(module_part, "__init__.py")):
            raise _directory_error(module_part)  # it would import as an empty namespace package
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
    from . import __version__

    parser = _Parser(prog="microweb", description="microweb: a fast Python web micro-framework")
    parser.add_argument("--version", action="version", version=f"microweb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="serve an app: microweb run MODULE:ATTR")
    run.add_argument("app", metavar="MODULE:ATTR", help="module or file.py, then ':' and the app attribute (default app)")
    ServerOptions.add_arguments(run)
    add_development_options(run)
    new = sub.add_parser("new", help="create a new site: microweb new NAME")
    new.add_argument("name", metavar="NAME", help="the directory to create")
    routes = sub.add_parser("routes", help="print the route table: microweb routes MODULE:ATTR")
    routes.add_argument("app", metavar="MODULE:ATTR", help="module or file.py, then ':' and the app attribute")
    serve_cmd = sub.add_parser("serve", help="serve a folder of static files: microweb serve [DIR]")
    serve_cmd.add_argument("directory", metavar="DIR", nargs="?", default=".", help="the folder to serve (default .)")
    serve_cmd.add_argument("--listing", action="store_true", help="list the files of folders without index.html")
    ServerOptions.add_arguments(serve_cmd)
    return parser


def add_development_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("development and logging")
    group.add_argument("--reload", action="store_true",
                       help="restart when a Python file of the app changes (the socket stays open)")
    group.add_argument("--reload-interval", type=float, default=0.5, metavar="SECONDS",
                       help="how often --reload polls for changes (default 0.5)")
    group.add_argument("--debug", action="store_true",
                       help="tracebacks on 500 pages, template reload, browser live reload, access log on")
    group.add_argument("--access-log", metavar="-|FILE", default=None,
                       help="write a Combined Log Format line per request to stdout (-) or FILE (default: off; "
                            "on with --debug)")
    group.add_argument("--no-access-log", action="store_true", help="no access log, even with --debug")


def server_options(args: argparse.Namespace) -> ServerOptions:
    """The ``ServerOptions`` of a command line, checked: a bad combination is a ``UsageError``."""
    try:
        options = ServerOptions.from_arguments(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for name in ("certfile", "keyfile"):
        path = getattr(options, name)
        if path and not os.path.isfile(path):
            raise UsageError(f"--{name}: no such file: {path}")
    if options.certfile:
        from .server.tls import check_certificate

        try:
            check_certificate(options.certfile, options.keyfile)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return options


def check_development_options(args: argparse.Namespace) -> None:
    access = getattr(args, "access_log", None)
    if access and access != "-" and not getattr(args, "no_access_log", False):
        try:
            with open(access, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write --access-log {access}: {exc.strerror or exc}") from None
    interval = getattr(args, "reload_interval", 0.5)
    if not 0 < interval < math.inf:  # also refuses nan
        raise UsageError(f"--reload-interval must be a positive number of seconds, got {interval}")


def _check_target(obj: Any, spec: str) -> Any:
    """A microweb App, or any other WSGI callable (served through ``WSGIAdapter``)."""
    from .app import App

    if isinstance(obj, App) or callable(obj):
        return obj
    raise UsageError(f"{spec} is a {type(obj).__name__}, not a microweb App or a WSGI application")


def cmd_run(args: argparse.Namespace) -> int:
    options = server_options(args)
    check_development_options(args)
    if args.reload and not os.environ.get(LISTEN_FD_ENV):
        from .server.reload import run_with_reloader

        try:
            return run_with_reloader(args.app, options, args.reload_interval)
        except OSError as exc:
            raise _listen_error(exc, options) from None
    target = _check_target(locate_app(args.app), args.app)
    return serve(make_handler(target, args, options), options, args, target)


def make_handler(target: Any, args: argparse.Namespace, options: ServerOptions) -> Callable[..., Any]:
    """The server's handler for ``target``: ``app.handle`` for an App, a ``WSGIAdapter`` for a WSGI callable,
    with debug mode and the access log applied as the flags say."""
    from .app import App

    debug = bool(getattr(args, "debug", False))
    if isinstance(target, App):
        if debug:
            from .debug import enable_debug

            enable_debug(target)
        elif getattr(args, "reload", False) or os.environ.get(LISTEN_FD_ENV):
            target.templates.set_auto_reload(True)  # templates are picked up without a restart
        handle: Callable[..., Any] = target.handle
    else:
        from .wsgi import WSGIAdapter

        handle = WSGIAdapter(target, options.host, options.port, multithread=options.threads > 0)
    access = getattr(args, "access_log", None)
    if access is None and debug:
        access = "-"
    if access and not getattr(args, "no_access_log", False):
        from .accesslog import configure_access_log, with_access_log

        configure_access_log(access)
        handle = with_access_log(handle)
    return handle


def serve(handle: Any, options: ServerOptions, args: argparse.Namespace, target: Any = None) -> int:
    """Start the server (``server.start.serve``) and print the banner once it listens."""
    from .app import App
    from .requests import Request
    from .server.start import serve as start

    # An App may name its own Request subclass; a WSGI app's ``request_class`` (Flask has one) is its
    # own business, not what our parser builds.
    request_class = target.request_class if isinstance(target, App) else Request

    def on_listening(url: str, address: tuple[str, int]) -> None:
        if hasattr(handle, "set_address"):  # a WSGI app: SERVER_NAME/SERVER_PORT are the real ones
            handle.set_address(*address)
        print(banner(url, target, args, options), flush=True)

    try:
        return start(handle, options, request_class=request_class, on_listening=on_listening)
    except OSError as exc:
        raise _listen_error(exc, options) from None


def _listen_error(exc: OSError, options: ServerOptions) -> UsageError:
    where = f"{options.host}:{options.port}"
    if exc.errno == errno.EADDRINUSE:
        return UsageError(f"port {options.port} on {options.host} is already in use")
    if exc.errno == errno.EACCES:
        return UsageError(f"permission denied to listen on {where}")
    return UsageError(f"cannot listen on {where}: {exc.strerror or exc}")


def banner(url: str, target: Any, args: argparse.Namespace, options: ServerOptions) -> str:
    """The start-up lines, with what the development flags turned on."""
    from .app import banner as app_banner

    debug = bool(getattr(args, "debug", False))
    return app_banner(
        url, target, options, debug=debug,
        reloading=bool(getattr(args, "reload", False) or os.environ.get("MICROWEB_RELOADER")),
        access_log=bool((getattr(args, "access_log", None) or debug) and not getattr(args, "no_access_log", False)),
        wsgi_name=getattr(args, "app", "?"))


def cmd_serve(args: argparse.Namespace) -> int:
    """``microweb serve [DIR]``: the static-file fallback alone, with the package's error pages."""
    from .app import App
    from .static import StaticFiles

    options = server_options(args)
    if not os.path.isdir(args.directory):
        raise UsageError(f"not a directory: {args.directory}")
    app = App(template_folder=None, static_folder=args.directory)
    static = app.static = StaticFiles(args.directory, listing=args.listing)
    fast, handle = static.fast_response, app.handle

    def serve_file(request: Any) -> Any:
        # No routes here: a hot unchanged file skips the router; everything else takes App.handle.
        result = fast(request)
        return result if result is not None else handle(request)

    return serve(serve_file, options, args, app)


def cmd_routes(args: argparse.Namespace) -> int:
    app = _check_app(locate_app(args.app), args.app)
    print(format_routes(app))
    return 0


def format_routes(app: Any) -> str:
    """The route table in the order the router tries it: mounts, literal paths, dynamic rules, then
    static files; a BLUEPRINT column when the app has blueprints."""
    router = app.router
    literal = [r for r in router.routes if r.is_literal]
    with_blueprints = bool(getattr(app, "blueprints", None))
    rows = [("METHODS", "PATH", "ENDPOINT", "BLUEPRINT")]
    for prefix, sub, adapter in getattr(app, "mounts", []):
        target = sub if sub is not None else adapter.app
        rows.append(("*", f"{prefix}/...", f"(mounted: {_describe(target)})", "-"))
    for route in literal + list(router.dynamic):
        rows.append((", ".join(sorted(route.methods)), route.rule, route.name, route.blueprint or "-"))
    if app.static_folder is not None:
        rows.append(("GET, HEAD", f"{app.static_url_path}/<path:filename>", f"(static files: {app.static_folder})",
                     "-"))
    if not with_blueprints:
        return "\n".join(_table([row[:3] for row in rows]))
    return "\n".join(_table(rows))


def _describe(target: Any) -> str:
    name = getattr(target, "import_name", None) or getattr(target, "__name__", None)
    kind = type(target).__name__
    return f"{kind} {name}" if isinstance(name, str) and kind not in ("function", "type") else str(name or kind)


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [("  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:-1])) + "  " + row[-1]).rstrip()
            for row in rows]


def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import create_project

    try:
        files = create_project(args.name)
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    print(f"created {args.name}/: " + ", ".join(files))
    where = f"cd {args.name} && " if os.path.abspath(args.name) != os.getcwd() else ""
    print(f"next: {where}microweb run app:app --debug --reload   "
          "(tests: python -m pytest -q, with microweb[testing]: see README.md)")
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
