"""``ServerOptions``, ``parse_size`` and ``format_size`` (``microweb/server/options.py``), and the CLI help made
from them."""
from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any

import pytest

from conftest import REPO_ROOT, run_cli
from microweb.http.parser import Limits
from microweb.server.options import ServerOptions, format_size, parse_size

FIELDS = [f.name for f in dataclasses.fields(ServerOptions)]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# -- sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, size", [
    ("0", 0), ("65536", 65536), ("64K", 64 << 10), ("64k", 64 << 10), ("64KB", 64 << 10), ("64KiB", 64 << 10),
    ("16M", 16 << 20), ("16mb", 16 << 20), ("16MiB", 16 << 20), ("1G", 1 << 30), ("2gb", 2 << 30),
    ("512b", 512), ("512B", 512), (" 8K ", 8 << 10), (4096, 4096), (0, 0),
])
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "K", "-1", "-1K", "1.5M", "16T", "16MM", "16 K B", "M16", "abc", "1e3",
                                  "16bk", "0x10"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_parse_size_rejects_negative_int_and_bool_is_not_a_number() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_size(-1)
    with pytest.raises(ValueError):
        parse_size(True)  # type: ignore[arg-type]


@pytest.mark.parametrize("size, text", [(0, "0"), (1, "1"), (1000, "1000"), (1024, "1K"), (1536, "1536"),
                                        (65536, "64K"), (16 << 20, "16M"), (1 << 30, "1G"), (3 << 30, "3G"),
                                        ((1 << 20) + 1024, "1025K"), (1 << 40, "1024G")])
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize("text", ["0", "1", "1000", "64K", "1536", "16M", "1G", "1025K", "7G"])
def test_format_size_of_parse_size_round_trips(text: str) -> None:
    assert format_size(parse_size(text)) == text


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 8192, 65535, 16 << 20, (16 << 20) + 1, 5 << 30])
def test_parse_size_of_format_size_round_trips(size: int) -> None:
    assert parse_size(format_size(size)) == size


# -- ServerOptions --------------------------------------------------------------------


def test_defaults() -> None:
    options = ServerOptions()
    assert options.host == "127.0.0.1"
    assert options.port == 8000
    assert options.max_body_size == 16 * 1024 * 1024
    assert options.max_request_line == 8192
    assert options.max_header_size == 65536
    assert options.max_header_count == 100
    assert options.keepalive_timeout == 75
    assert options.head_timeout == 10
    assert options.threads == 0 and options.workers == 0
    assert options.max_connections is None
    assert options.certfile is None and options.keyfile is None
    assert options.forwarded_allow_ips == "127.0.0.1"


def test_defaults_match_the_parser_limits() -> None:
    limits, defaults = ServerOptions().limits(), Limits()
    for name in ("max_request_line", "max_header_size", "max_header_count", "max_body_size", "max_field_line"):
        assert getattr(limits, name) == getattr(defaults, name), name


def test_sizes_given_as_strings() -> None:
    options = ServerOptions(max_body_size="64K", max_header_size="16M", high_water="1G", min_body_rate="2K")
    assert options.max_body_size == 65536
    assert options.max_header_size == 16 << 20
    assert options.high_water == 1 << 30
    assert options.min_body_rate == 2048


def test_values_are_converted() -> None:
    options = ServerOptions(port="8080", threads="4", keepalive_timeout="2.5", max_connections="10",
                            head_timeout=3)
    assert options.port == 8080 and isinstance(options.port, int)
    assert options.threads == 4
    assert options.keepalive_timeout == 2.5
    assert options.max_connections == 10
    assert options.head_timeout == 3.0 and isinstance(options.head_timeout, float)


@pytest.mark.parametrize("changes, flag_name", [
    ({"max_body_size": "lots"}, "--max-body-size"),
    ({"max_body_size": -1}, "--max-body-size"),
    ({"max_header_size": "1.5K"}, "--max-header-size"),
    ({"max_request_line": "8X"}, "--max-request-line"),
    ({"high_water": "big"}, "--high-water"),
    ({"port": 65536}, "--port"),
    ({"port": 100000}, "--port"),
    ({"port": -1}, "--port"),
    ({"port": "http"}, "--port"),
    ({"threads": -1}, "--threads"),
    ({"workers": -2}, "--workers"),
    ({"backlog": 1.5}, "--backlog"),
    ({"max_header_count": -1}, "--max-header-count"),
    ({"max_connections": -5}, "--max-connections"),
    ({"max_requests_per_connection": "many"}, "--max-requests-per-connection"),
    ({"max_pipelined": -1}, "--max-pipelined"),
    ({"keepalive_timeout": 0}, "--keepalive-timeout"),
    ({"keepalive_timeout": -1}, "--keepalive-timeout"),
    ({"head_timeout": "0"}, "--head-timeout"),
    ({"body_timeout": float("nan")}, "--body-timeout"),
    ({"write_timeout": float("inf")}, "--write-timeout"),
    ({"graceful_timeout": "soon"}, "--graceful-timeout"),
])
def test_invalid_values_name_the_flag(changes: dict[str, Any], flag_name: str) -> None:
    with pytest.raises(ValueError) as info:
        ServerOptions(**changes)
    assert str(info.value).startswith(flag_name + ":"), str(info.value)


def test_port_bounds() -> None:
    assert ServerOptions(port=0).port == 0
    assert ServerOptions(port=65535).port == 65535
    with pytest.raises(ValueError, match="65535"):
        ServerOptions(port=65536)


def test_zero_counts_are_allowed() -> None:
    options = ServerOptions(threads=0, workers=0, max_requests_per_connection=0, min_body_rate=0)
    assert options.max_requests_per_connection == 0
    assert options.min_body_rate == 0


def test_keyfile_needs_certfile() -> None:
    with pytest.raises(ValueError, match="--keyfile needs --certfile"):
        ServerOptions(keyfile="key.pem")
    options = ServerOptions(certfile="cert.pem", keyfile="key.pem")
    assert (options.certfile, options.keyfile) == ("cert.pem", "key.pem")
    assert ServerOptions(certfile="both.pem").keyfile is None


@pytest.mark.parametrize("ips", ["not an address", "10.0.0.0/33", "300.1.1.1", "10.0.0.1,,nonsense"])
def test_bad_forwarded_allow_ips(ips: str) -> None:
    with pytest.raises(ValueError) as info:
        ServerOptions(forwarded_allow_ips=ips)
    assert str(info.value).startswith("--forwarded-allow-ips:")


@pytest.mark.parametrize("ips", ["", "*", "127.0.0.1", "10.0.0.0/8, 192.168.1.1", "::1", "fd00::/8"])
def test_good_forwarded_allow_ips(ips: str) -> None:
    assert ServerOptions(forwarded_allow_ips=ips).forwarded_allow_ips == ips


def test_replace_applies_and_checks_changes() -> None:
    options = ServerOptions(port=9000)
    changed = options.replace(max_body_size="1M", threads=2)
    assert changed is not options
    assert changed.max_body_size == 1 << 20 and changed.threads == 2
    assert changed.port == 9000  # kept
    assert options.max_body_size == 16 << 20 and options.threads == 0  # the original is untouched
    with pytest.raises(ValueError, match="^--port:"):
        options.replace(port=70000)
    with pytest.raises(TypeError):
        options.replace(no_such_option=1)


def test_limits_has_the_same_values() -> None:
    options = ServerOptions(max_request_line="4K", max_header_size="32K", max_header_count=50,
                            max_body_size="2M")
    limits = options.limits()
    assert isinstance(limits, Limits)
    assert limits.max_request_line == 4096
    assert limits.max_header_size == 32768
    assert limits.max_header_count == 50
    assert limits.max_body_size == 2 << 20


# -- the command line ------------------------------------------------------------------


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test")
    ServerOptions.add_arguments(parser)
    return parser


def test_every_field_has_a_flag_with_its_default_in_the_help() -> None:
    parser = make_parser()
    actions = {a.dest: a for a in parser._actions}
    for name in FIELDS:
        action = actions.get(name)
        assert action is not None, name
        assert action.option_strings == [flag(name)]
        assert action.default is None  # "not given", so from_arguments keeps the dataclass default
        assert action.help and "(default " in action.help, (name, action.help)
    assert actions["max_body_size"].help.endswith("(default 16M)")
    assert actions["keepalive_timeout"].help.endswith("(default 75)")
    assert actions["port"].help.endswith("(default 8000)")
    assert actions["host"].help.endswith("(default 127.0.0.1)")
    assert actions["max_header_size"].help.endswith("(default 64K)")


def test_the_help_renders() -> None:
    text = make_parser().format_help()  # a stray '%' in a help text would break this
    for name in FIELDS:
        assert flag(name) in text


def test_from_arguments_with_no_flags_gives_the_defaults() -> None:
    assert ServerOptions.from_arguments(make_parser().parse_args([])) == ServerOptions()


def test_from_arguments_round_trips() -> None:
    args = make_parser().parse_args([
        "--host", "0.0.0.0", "--port", "0", "--threads", "3", "--max-body-size", "64K",
        "--max-header-size", "1M", "--keepalive-timeout", "5.5", "--max-connections", "200",
        "--forwarded-allow-ips", "*", "--certfile", "c.pem", "--keyfile", "k.pem",
    ])
    options = ServerOptions.from_arguments(args)
    assert options == ServerOptions(host="0.0.0.0", port=0, threads=3, max_body_size=65536,
                                    max_header_size=1 << 20, keepalive_timeout=5.5, max_connections=200,
                                    forwarded_allow_ips="*", certfile="c.pem", keyfile="k.pem")
    assert options.workers == 0  # not given: the default


def test_from_arguments_overrides_win() -> None:
    args = make_parser().parse_args(["--port", "8080"])
    assert ServerOptions.from_arguments(args, port=9090).port == 9090


def test_every_default_round_trips_through_its_flag() -> None:
    defaults = ServerOptions()
    argv: list[str] = []
    for name in FIELDS:
        value = getattr(defaults, name)
        if value is None:
            continue
        if name in ("max_request_line", "max_header_size", "max_body_size", "min_body_rate", "high_water"):
            value = format_size(value)
        argv += [flag(name), str(value)]
    assert ServerOptions.from_arguments(make_parser().parse_args(argv)) == defaults


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--max-body-size", "huge"], ["--threads", "-1"],
                                  ["--keepalive-timeout", "0"]])
def test_bad_flag_values_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        make_parser().parse_args(argv)
    assert info.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_microweb_run_help_lists_every_option() -> None:
    result = run_cli("run", "--help", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    for name in FIELDS:
        # In the option listing (an indented line starting with the flag), not only in the usage line.
        assert re.search(rf"^\s+{re.escape(flag(name))}\b", result.stdout, re.MULTILINE), name
    assert "(default 16M)" in result.stdout


def test_microweb_serve_help_lists_every_option() -> None:
    result = run_cli("serve", "--help", cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    for name in FIELDS:
        assert re.search(rf"^\s+{re.escape(flag(name))}\b", result.stdout, re.MULTILINE), name
