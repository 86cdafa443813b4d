"""``ServerOptions``: every setting of the server, its default, its check and its help text, in one place.

``App.run(**options)``, ``Server(handle, **options)``, ``microweb run``/``serve``
flags and the worker processes all take their settings from here: the command
line's flags are generated from the fields (``--max-body-size`` is the field
``max_body_size``), so a default or a help text is written once. Sizes accept
``K``/``M``/``G`` suffixes (powers of 1024) on the command line and as strings.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..http.parser import Limits

__all__ = ["ServerOptions", "parse_size", "format_size"]

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def parse_size(value: str | int) -> int:
    """``"16M"`` -> 16777216: a byte count with an optional K/M/G suffix (powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a size must not be negative, got {value}")
        return value
    text = str(value).strip().lower()
    digits = text.rstrip("kmgib")
    unit = text[len(digits):]
    if unit not in _SIZE_UNITS or not digits.strip().isdigit():
        raise ValueError(f"expected a size like 65536, 64K or 16M, got {value!r}")
    return int(digits) * _SIZE_UNITS[unit]


def format_size(size: int) -> str:
    """16777216 -> ``"16M"``: the shortest exact K/M/G form."""
    for suffix, unit in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def _count(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise ValueError(f"expected a whole number, got {value!r}")
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


def _backlog(value: Any) -> int:
    number = _count(value)
    if number > 65535:  # the kernel caps it at net.core.somaxconn anyway; listen() overflows past int
        raise ValueError(f"a backlog is at most 65535, got {number}")
    return number


def _port(value: Any) -> int:
    number = _count(value)
    if number > 65535:
        raise ValueError(f"a port is between 0 and 65535, got {number}")
    return number


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected seconds, got {value!r}") from None
    if not number > 0 or math.isinf(number):
        raise ValueError(f"must be a positive number of seconds, got {value!r}")
    return number


def _seconds_or_off(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected seconds, got {value!r}") from None
    if number < 0 or math.isnan(number) or math.isinf(number):
        raise ValueError(f"must be 0 (off) or a positive number of seconds, got {value!r}")
    return number


_SWITCHES = {"on": True, "yes": True, "true": True, "1": True, "off": False, "no": False, "false": False, "0": False}


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    setting = _SWITCHES.get(str(value).strip().lower())
    if setting is None:
        raise ValueError(f"expected on or off, got {value!r}")
    return setting


def _text(value: Any) -> str:
    return str(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_count(value: Any) -> int | None:
    return None if value is None else _count(value)


def _option(default: Any, help: str, convert: Callable[[Any], Any], *, metavar: str = "N",
            shown: str | None = None, group: str = "limits and hardening") -> Any:
    """A field with what the command line needs to know about it."""
    return field(default=default, metadata={"help": help, "convert": convert, "metavar": metavar,
                                            "shown": shown, "group": group})


@dataclass
class ServerOptions:
    """The server's settings. Every field is also a ``microweb run`` flag (``_`` written ``-``)."""

    host: str = _option("127.0.0.1", "address to listen on", _text, metavar="ADDRESS", group="listening")
    port: int = _option(8000, "port to listen on (0: any free port)", _port, metavar="PORT", group="listening")
    backlog: int = _option(1024, "connections the kernel queues before they are accepted", _backlog,
                           group="listening")
    threads: int = _option(0, "run handlers in a pool of N threads (0: inline in the reactor)", _count,
                           group="processes and threads")
    workers: int = _option(0, "pre-fork N worker processes under a supervisor (0: one process)", _count,
                           group="processes and threads")
    max_request_line: int = _option(8192, "longest request line (longer: 414)", parse_size)
    max_header_size: int = _option(65536, "largest header section (larger: 431)", parse_size)
    max_header_count: int = _option(100, "most header fields (more: 431)", _count)
    max_field_line: int = _option(8192, "longest header or trailer field line (longer: 431)", parse_size)
    max_body_size: int = _option(16 << 20, "largest request body, unless the app or the route sets its own "
                                           "(larger: 413)", parse_size)
    spool_threshold: int = _option(1 << 20, "bodies larger than this are spooled to a temporary file as they "
                                            "arrive (smaller: kept in memory)", parse_size)
    keepalive_timeout: float = _option(75.0, "seconds an idle keep-alive connection stays open", _seconds,
                                       metavar="SECONDS")
    head_timeout: float = _option(10.0, "seconds from a head's first byte to its end (then 408)", _seconds,
                                  metavar="SECONDS")
    body_timeout: float = _option(30.0, "longest pause while a body arrives, and the grace before "
                                        "--min-body-rate applies", _seconds, metavar="SECONDS")
    min_body_rate: int = _option(1024, "bytes/s a body must average after the grace (0: off)", parse_size)
    write_timeout: float = _option(30.0, "close a connection whose output makes no progress this long", _seconds,
                                   metavar="SECONDS")
    graceful_timeout: float = _option(30.0, "on SIGTERM/SIGINT, seconds to finish begun responses", _seconds,
                                      metavar="SECONDS")
    max_connections: int | None = _option(None, "concurrent connections; more wait in the backlog",
                                          _optional_count, shown="the fd limit less an eighth, at least 64")
    max_requests_per_connection: int = _option(10000, "requests one connection may make before it is closed "
                                                      "(0: no cap)", _count)
    max_pipelined: int = _option(128, "with --threads: requests queued per connection before it is no longer "
                                      "read", _count)
    high_water: int = _option(1 << 20, "queued response bytes above which a connection is not read", parse_size)
    ws_max_message: int = _option(1 << 20, "largest WebSocket message, after decompression (larger: close 1009)",
                                  parse_size, group="websockets")
    ws_ping_interval: float = _option(20.0, "seconds between the pings sent on each WebSocket (0: off)",
                                      _seconds_or_off, metavar="SECONDS", group="websockets")
    ws_ping_timeout: float = _option(20.0, "seconds a WebSocket peer has to answer a ping or a close before it "
                                           "is disconnected", _seconds, metavar="SECONDS", group="websockets")
    ws_deflate: bool = _option(True, "accept permessage-deflate compression on WebSockets (on/off)", _switch,
                               metavar="on|off", shown="on", group="websockets")
    forwarded_allow_ips: str = _option("127.0.0.1", "comma-separated proxy addresses or networks whose "
                                                    "X-Forwarded-*/Forwarded headers are trusted ('*': all, '': none)",
                                       _text, metavar="IPS", group="deployment")
    certfile: str | None = _option(None, "PEM certificate (chain) to serve HTTPS", _optional_text, metavar="FILE",
                                   shown="none: plain HTTP", group="deployment")
    keyfile: str | None = _option(None, "PEM private key for --certfile", _optional_text, metavar="FILE",
                                  shown="in the certfile", group="deployment")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            try:
                setattr(self, f.name, f.metadata["convert"](getattr(self, f.name)))
            except ValueError as exc:
                raise ValueError(f"{_flag(f.name)}: {exc}") from None
        if self.forwarded_allow_ips:
            from ..http.forwarded import TrustedProxies

            try:
                TrustedProxies(self.forwarded_allow_ips)
            except ValueError as exc:
                raise ValueError(f"--forwarded-allow-ips: {exc}") from None
        if self.keyfile and not self.certfile:
            raise ValueError("--keyfile needs --certfile")

    def replace(self, **changes: Any) -> ServerOptions:
        """A copy with ``changes`` (field names) applied and checked."""
        return dataclasses.replace(self, **changes)

    def limits(self) -> Limits:
        """The parser's size limits."""
        return Limits(self.max_request_line, self.max_header_size, self.max_header_count, self.max_body_size,
                      self.max_field_line)

    # -- the command line ---------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add a flag per field, with its help text and default, grouped as in the README."""
        groups: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            meta = f.metadata
            group = groups.get(meta["group"])
            if group is None:
                group = groups[meta["group"]] = parser.add_argument_group(meta["group"])
            shown = meta["shown"] or _show(f.default, meta["convert"])
            group.add_argument(_flag(f.name), dest=f.name, default=None, metavar=meta["metavar"],
                               type=_argparse_type(meta["convert"]), help=f"{meta['help']} (default {shown})")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, **overrides: Any) -> ServerOptions:
        """The options a parsed command line gives (flags not given keep their defaults)."""
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                 if getattr(args, f.name, None) is not None}
        given.update(overrides)
        return cls(**given)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _show(default: Any, convert: Callable[[Any], Any]) -> str:
    if convert is parse_size:
        return format_size(default)
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _argparse_type(convert: Callable[[Any], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = convert.__name__.strip("_")  # argparse names the type in its messages
    return parse
