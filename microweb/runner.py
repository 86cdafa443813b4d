"""What ``microweb run`` adds around the server: the deployment and development flags.

``add_run_options`` declares them; ``make_handler`` turns the target (a microweb
``App`` or any WSGI callable) into the reactor's ``handle`` with debug mode and
the access log applied; ``server_options`` gives the ``Server`` keywords (trusted
proxies, TLS, an inherited listening socket under ``--reload``); ``banner`` is
what is printed at start-up.
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Callable

__all__ = ["add_run_options", "make_handler", "server_options", "banner", "LISTEN_FD_ENV"]

log = logging.getLogger("microweb")

# Set by the --reload supervisor for its child: the listening socket's file descriptor.
LISTEN_FD_ENV = "MICROWEB_LISTEN_FD"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("deployment and development")
    group.add_argument("--forwarded-allow-ips", default="127.0.0.1", metavar="IPS",
                       help="comma-separated proxy addresses or networks whose X-Forwarded-*/Forwarded headers "
                            "are trusted ('*': all, '': none; default 127.0.0.1)")
    group.add_argument("--certfile", help="PEM certificate (chain) to serve HTTPS")
    group.add_argument("--keyfile", help="PEM private key for --certfile (default: in the certfile)")
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


def check_run_options(args: argparse.Namespace, error: Callable[[str], Exception]) -> None:
    """Reject inconsistent flags with a one-line usage error."""
    if getattr(args, "keyfile", None) and not getattr(args, "certfile", None):
        raise error("--keyfile needs --certfile")
    for name in ("certfile", "keyfile"):
        path = getattr(args, name, None)
        if path and not os.path.isfile(path):
            raise error(f"--{name}: no such file: {path}")
    certfile = getattr(args, "certfile", None)
    if certfile:
        import ssl

        from .reactor import make_ssl_context

        try:
            make_ssl_context(certfile, getattr(args, "keyfile", None))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise error(f"cannot load --certfile/--keyfile as a PEM certificate and its private key: {exc}") from None
    access = getattr(args, "access_log", None)
    if access and access != "-" and not getattr(args, "no_access_log", False):
        try:
            with open(access, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise error(f"cannot write --access-log {access}: {exc.strerror or exc}") from None
    if getattr(args, "reload_interval", 0.5) <= 0:
        raise error("--reload-interval must be positive")
    ips = getattr(args, "forwarded_allow_ips", None)
    if ips:
        from .forwarded import TrustedProxies

        try:
            TrustedProxies(ips)
        except ValueError as exc:
            raise error(f"--forwarded-allow-ips: {exc}") from None


def make_handler(target: Any, args: argparse.Namespace) -> Callable[..., Any]:
    """The reactor handler for ``target``: ``app.handle`` for an App, a ``WSGIAdapter`` for a WSGI callable."""
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

        handle = WSGIAdapter(target, args.host, args.port, multithread=bool(getattr(args, "threads", 0)))
    access = getattr(args, "access_log", None)
    if access is None and debug:
        access = "-"
    if access and not getattr(args, "no_access_log", False):
        from .accesslog import configure_access_log, with_access_log

        configure_access_log(access)
        handle = with_access_log(handle)
    return handle


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Server`` keywords for the deployment flags."""
    options: dict[str, Any] = {"forwarded_allow_ips": getattr(args, "forwarded_allow_ips", "127.0.0.1") or None}
    certfile = getattr(args, "certfile", None)
    if certfile:
        from .reactor import make_ssl_context

        options["ssl_context"] = make_ssl_context(certfile, getattr(args, "keyfile", None))
    fd = os.environ.pop(LISTEN_FD_ENV, None)
    if not fd and os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS", "0") != "0":
        fd = "3"  # systemd socket activation: the first passed socket is fd 3 (sd_listen_fds(3))
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)  # not for our children
    if fd:
        from .reactor import listener_from_fd

        options["sock"] = listener_from_fd(int(fd))
    return options


def banner(url: str, target: Any, args: argparse.Namespace) -> str:
    """The start-up lines: where to point a browser, and what is being served."""
    from .app import App

    lines = [f"microweb serving on {url} (press Ctrl+C to quit)"]
    details = []
    if isinstance(target, App):
        routes = [r for r in target.router.routes if not r.name.startswith("__microweb")]
        details.append(f"{len(routes)} route{'s' if len(routes) != 1 else ''}")
        details.append(f"static folder {target.static_folder}" if target.static_folder else "no static folder")
    else:
        details.append(f"WSGI application {getattr(args, 'app', '?')}")
    if getattr(args, "debug", False):
        details.append("DEBUG mode (never in production)")
    if getattr(args, "reload", False) or os.environ.get("MICROWEB_RELOADER"):
        details.append("reloading on change")
    logging_on = bool((getattr(args, "access_log", None) or getattr(args, "debug", False))
                      and not getattr(args, "no_access_log", False))
    details.append("access log on" if logging_on else "access log off")
    lines.append("  " + ", ".join(details))
    return "\n".join(lines)
