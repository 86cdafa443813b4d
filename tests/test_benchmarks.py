"""Smoke tests of the benchmark harness: wrk output parsing, the targets' arithmetic, the chart, the
wrk lua scripts against a live server, floor.py, and tiny end-to-end runs of run.py and c10k.py.

The parts that run wrk are skipped when wrk is not installed, and take the benchmark lock
(/tmp/microweb-bench.lock) so they never disturb a benchmark that is measuring.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest

from benchmarks import harness as h
from benchmarks import report
from benchmarks.run import measure_case, parse_only, parse_strace_counts, update_readme, wrong_statuses
from benchmarks.scenarios import (BROWSER_LUA, CASES, FLOOD_LUA, METHOD_LUA, PIPELINE_LUA, TARGETS, Workspace,
                                  met)
from microweb import App, Request

from conftest import REPO_ROOT

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
LOCK_PATH = "/tmp/microweb-bench.lock"

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:41234/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   380.12us  101.00us   4.20ms   90.00%
    Req/Sec   130.00k     3.00k  135.00k    80.00%
  Latency Distribution
     50%  359.00us
     75%  400.00us
     90%  450.00us
     99%    1.25ms
  263531 requests in 2.00s, 36.94MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec: 131665.30
Transfer/sec:     18.47MB
"""


@contextlib.contextmanager
def bench_lock(wait: float = 60.0) -> Iterator[None]:
    """Hold the benchmark lock, or skip when another benchmark keeps it longer than ``wait``."""
    with open(LOCK_PATH, "a") as f:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip("another benchmark holds /tmp/microweb-bench.lock")
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# -- pure parts ---------------------------------------------------------------------


def test_parse_wrk_reads_rate_latency_totals_and_errors() -> None:
    r = h.parse_wrk(WRK_OUTPUT)
    assert r.rps == 131665.30
    assert r.p50_ms == pytest.approx(0.359)
    assert r.p99_ms == pytest.approx(1.25)
    assert r.requests == 263531 and r.seconds == pytest.approx(2.0)
    assert r.bytes_read == pytest.approx(36.94 * 1024**2)
    assert r.socket_errors == 3 and r.non_2xx == 3


def test_parse_wrk_without_a_rate_is_an_error() -> None:
    with pytest.raises(h.BenchError):
        h.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_wrk_command_is_pinned_one_thread_fifty_connections() -> None:
    argv = h.wrk_command("http://127.0.0.1:1/", 2.0, PIPELINE_LUA, ["16"])
    assert argv[:4] == ["taskset", "-c", h.LOAD_CPU, "wrk"]
    assert "-t1" in argv and "-c50" in argv and "-d2s" in argv and "--latency" in argv
    assert argv[-2:] == ["--", "16"] and argv[argv.index("-s") + 1] == PIPELINE_LUA


def _row(scenario: str, server: str, rps: float, p99: float = 1.0) -> dict[str, Any]:
    return {"scenario": scenario, "server": server, "label": server, "rps": rps, "p99_ms": p99,
            "bytes_per_s": None, "runs": [{"rps": rps}], "error": None}


def test_targets_are_ratios_of_medians_with_verdicts() -> None:
    rows = [_row("browser", "microweb", 90_000), _row("browser", "uvicorn", 40_000),
            _row("browser", "floor", 200_000), _row("hello", "microweb", 100_000, p99=2.0),
            _row("hello", "uvicorn", 50_000, p99=1.0), _row("hello", "waitress", 20_000)]
    extras = {"ttfa_ms": 90.0, "jinja2_imported": False, "sends_per_recv": 1.0,
              "c10k": {"held": 10000, "reused": 9999, "rss_held_mb": 30.0, "rss_held_after_wrk_mb": 41.0,
                       "rps_ratio": 0.95}}
    by_id = {v["id"]: v for v in report.evaluate(rows, extras)}
    assert by_id["1a"]["value"] == pytest.approx(2.25) and by_id["1a"]["met"] is True
    assert by_id["1b"]["value"] == pytest.approx(0.45) and by_id["1b"]["met"] is False
    assert by_id["6"]["value"] == pytest.approx(2.0) and by_id["6"]["met"] is False  # lower is better
    assert by_id["i2"]["value"] == pytest.approx(5.0) and by_id["i2"]["met"] is True
    assert by_id["2a"]["value"] is None and by_id["2a"]["met"] is None  # not run
    assert by_id["5m"]["value"] == 41.0 and by_id["5m"]["met"] is False  # the larger RSS counts
    assert by_id["5r"]["met"] is True and by_id["5u"]["met"] is False
    assert by_id["7a"]["met"] is True and by_id["7b"]["met"] is True and by_id["3s"]["met"] is True
    table = report.target_table(list(by_id.values()))
    assert "2.25x" in table and "NOT met" in table and "not run" in table


def test_each_rounds_ratio_is_reported_beside_the_ratio_of_medians() -> None:
    a = dict(_row("browser", "microweb", 90_000), runs=[{"rps": 90_000}, {"rps": 45_000}, {"rps": 100_000}])
    b = dict(_row("browser", "uvicorn", 40_000), runs=[{"rps": 30_000}, {"rps": 45_000}, {"rps": 40_000}])
    rows = [a, b]
    assert report.round_ratios(rows, ("browser", "microweb", "rps"), ("browser", "uvicorn", "rps")) == \
        pytest.approx([3.0, 1.0, 2.5])
    by_id = {v["id"]: v for v in report.evaluate(rows, {})}
    assert by_id["1a"]["value"] == pytest.approx(2.25) and by_id["1a"]["rounds"] == [3.0, 1.0, 2.5]
    assert "1.00-3.00 (3)" in report.target_table(list(by_id.values()))
    b["runs"] = b["runs"][:2]  # a case that failed part-way: its runs no longer pair up
    assert report.round_ratios(rows, ("browser", "microweb", "rps"), ("browser", "uvicorn", "rps")) == []


def test_a_failed_peer_gives_no_ratio() -> None:
    rows = [_row("json", "microweb", 50_000), dict(_row("json", "flask", 5_000), error="did not start")]
    assert report.ratio(rows, ("json", "microweb", "rps"), ("json", "flask", "rps")) is None
    assert "error" in report.scenario_table(rows)


def test_every_ratio_target_names_cases_that_exist() -> None:
    keys = {(c.scenario, c.server) for c in CASES}
    for target in TARGETS:
        for side in (target.numerator, target.denominator):
            if side:
                assert side[:2] in keys, target.id
    assert met(TARGETS[0], float("nan")) is None


def test_chart_and_markdown_are_written(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    rows = [_row("browser", "microweb", 90_000), _row("browser", "uvicorn", 40_000)]
    verdicts = report.evaluate(rows, {})
    machine = {"cpu": "Test CPU", "cores": 2, "memory_gb": 1, "kernel": "6", "python": "3.11", "date": "today"}
    path = tmp_path / "chart.png"
    report.draw_chart(verdicts, machine, {}, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = report.markdown(rows, verdicts, machine, {"reps": 3, "duration": 5.0, "server_cpu": "1",
                                                   "load_cpu": "0"}, {})
    assert "Test CPU" in md and "| 1a. " in md and "2.25x" in md


def test_readme_section_is_replaced_between_markers(tmp_path: Any) -> None:
    from benchmarks.run import README_END, README_START

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n## Benchmarks\n{README_START}\nold\n{README_END}\nafter\n")
    assert update_readme("new table", str(readme))
    text = readme.read_text()
    assert "old" not in text and "new table" in text and text.endswith(f"{README_END}\nafter\n")
    bare = tmp_path / "bare.md"
    bare.write_text("# no markers\n")
    assert update_readme("x", str(bare)) is False and bare.read_text() == "# no markers\n"
    with open(REPO_ROOT + "/README.md") as f:
        assert README_START in f.read(), "the repo README must carry the benchmark markers"


def test_a_saved_run_prints_without_measuring(tmp_path: Any, capsys: Any) -> None:
    from benchmarks.run import main

    saved = tmp_path / "run.json"
    rows = [_row("json", "microweb", 60_000), _row("json", "flask", 5_000)]
    saved.write_text(json.dumps({"results": rows, "extras": {}, "machine": {}, "settings": {}}))
    assert main(["--from-json", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "12.00x" in out and "JSON route" in out


def test_parse_strace_counts() -> None:
    text = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 55.00    0.100000           2     50000           sendto
 45.00    0.080000           1     50010        10 recvfrom
------ ----------- ----------- --------- --------- ----------------
100.00    0.180000           1    100010        10 total
"""
    assert parse_strace_counts(text) == {"sendto": (50000, 0), "recvfrom": (50010, 10)}


def test_only_accepts_known_names() -> None:
    assert parse_only("static,json") == {"static1k", "static10m", "json"}
    assert parse_only("natives,flask,notfound,c1000") == {"browser", "flask", "notfound", "c1000"}
    with pytest.raises(SystemExit):
        parse_only("hello,nonsense")


def test_issue16_targets_judge_the_native_peers_flask_hosts_errors_and_many_connections() -> None:
    rows = [_row("browser", "microweb", 66_000), _row("browser", "socketify", 60_000),
            _row("browser", "granian_wsgi", 40_000), _row("browser", "floor", 100_000),
            _row("flask", "microweb_threads", 6_000), _row("flask", "microweb", 5_000),
            _row("flask", "granian", 4_000), _row("flask", "gunicorn", 2_000),
            _row("notfound", "json", 40_000), _row("notfound", "404", 20_000), _row("notfound", "404_flood", 10_000),
            _row("notfound", "405", 30_000), _row("c1000", "microweb", 100_000),
            _row("c1000", "microweb_c1000", 95_000, p99=30.0), _row("c1000", "nginx_c1000", 120_000, p99=10.0)]
    by_id = {v["id"]: v for v in report.evaluate(rows, {})}
    assert by_id["16.1a"]["value"] == pytest.approx(1.1) and by_id["16.1a"]["met"] is True
    assert by_id["16.1b"]["value"] == pytest.approx(1.65) and by_id["16.1b"]["met"] is True
    assert by_id["16.1c"]["value"] == pytest.approx(0.66) and by_id["16.1c"]["met"] is False
    assert by_id["16.2a"]["value"] == pytest.approx(1.5) and by_id["16.2b"]["value"] == pytest.approx(1.25)
    assert by_id["16.2b"]["met"] is False and by_id["16.2c"]["met"] is True and by_id["16.2d"]["met"] is True
    assert by_id["16.3a"]["met"] is True and by_id["16.3b"]["value"] == pytest.approx(0.25)
    assert by_id["16.3b"]["met"] is False and by_id["16.3c"]["met"] is True
    assert by_id["16.4"]["value"] == pytest.approx(0.95) and by_id["16.4"]["met"] is True
    # p99 beside nginx's: reported, never judged
    assert by_id["16.4p"]["value"] == pytest.approx(3.0) and by_id["16.4p"]["met"] is None
    table = report.target_table(list(by_id.values()))
    assert "reported" in table and "16.4p" in table
    assert report.fmt_value(0.6994, "x", 0.7) == "0.699x" and report.fmt_value(0.72, "x", 0.7) == "0.72x"


def _wrk(requests: int, non_2xx: int) -> h.WrkResult:
    return h.WrkResult(rps=1.0, p50_ms=1.0, p99_ms=1.0, requests=requests, seconds=1.0, bytes_read=0.0,
                       socket_errors=0, non_2xx=non_2xx)


def test_a_case_expecting_an_error_status_is_judged_on_it() -> None:
    ok = next(c for c in CASES if c.scenario == "notfound" and c.server == "json")
    missing = next(c for c in CASES if c.server == "404_flood")
    assert wrong_statuses(ok, [_wrk(100, 0)]) is None
    assert "non-2xx" in (wrong_statuses(ok, [_wrk(100, 0), _wrk(100, 3)]) or "")
    assert wrong_statuses(missing, [_wrk(100, 100)]) is None
    assert "other than 404" in (wrong_statuses(missing, [_wrk(100, 99)]) or "")


def test_fd_limit_is_raised_for_a_thousand_connections() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        limit = h.raise_fd_limit(4096)
        assert limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert limit >= min(4096, hard) if hard != resource.RLIM_INFINITY else limit >= 4096
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_lua_scripts_and_floor_ship_with_the_repo() -> None:
    for path in (BROWSER_LUA, PIPELINE_LUA, FLOOD_LUA, METHOD_LUA, os.path.join(h.BENCH_DIR, "floor.py")):
        assert os.path.isfile(path) and path.startswith(REPO_ROOT)
    with open(BROWSER_LUA) as f:
        headers = [line.split('"')[1] for line in f if line.startswith("wrk.headers")]
    assert headers == ["User-Agent", "Accept", "Accept-Language", "Accept-Encoding", "Cookie", "Referer",
                       "Sec-Fetch-Mode", "Sec-Fetch-Site", "Upgrade-Insecure-Requests"]


# -- live parts ---------------------------------------------------------------------


def _recording_app(heads: list[Request]) -> App:
    app = App(static_folder=None)

    @app.route("/")
    def index(request: Request) -> str:
        if len(heads) < 5:
            heads.append(request)
        return "Hello, World!"

    return app


@needs_wrk
def test_browser_lua_sends_the_nine_headers_about_500_bytes(live_server: Any) -> None:
    seen: list[Request] = []
    server = live_server(_recording_app(seen))
    with bench_lock():
        result = h.run_wrk(server.url + "/", 1, BROWSER_LUA, connections=2)
    assert result.rps > 0 and result.non_2xx == 0 and seen
    req = seen[0]
    for name in ("user-agent", "accept", "accept-language", "accept-encoding", "cookie", "referer",
                 "sec-fetch-mode", "sec-fetch-site", "upgrade-insecure-requests"):
        assert req.headers.get(name), name
    head = "GET / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in req.headers.items()) + "\r\n"
    assert 400 <= len(head) <= 650, len(head)


@needs_wrk
def test_pipeline_lua_sends_sixteen_requests_back_to_back(live_server: Any) -> None:
    server = live_server(_recording_app([]))
    with bench_lock():
        result = h.run_wrk(server.url + "/", 1, PIPELINE_LUA, ["16"], connections=2)
    assert result.requests > 16 and result.non_2xx == 0 and result.socket_errors == 0


@needs_wrk
def test_flood_lua_asks_a_new_path_per_request_and_method_lua_deletes(live_server: Any) -> None:
    paths: list[str] = []
    methods: list[str] = []
    app = App(static_folder=None)

    @app.route("/<name>", methods=["GET", "DELETE"])
    def anything(request: Request, name: str) -> str:
        paths.append(request.path)
        methods.append(request.method)
        return "ok"

    server = live_server(app)
    with bench_lock():
        flood = h.run_wrk(server.url + "/", 1, FLOOD_LUA, connections=2)
        # the server may have answered one or two more than wrk counted when its clock stopped
        assert flood.requests > 10 and len(set(paths)) == len(paths) >= flood.requests
        assert all(p.startswith("/no-such-page-") and p.endswith(".html") for p in paths)
        assert set(methods) == {"GET"}
        methods.clear()
        deleted = h.run_wrk(server.url + "/x", 1, METHOD_LUA, connections=2)
    assert deleted.requests > 0 and set(methods) == {"DELETE"}


def test_floor_answers_every_pipelined_head() -> None:
    port = h.free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(h.BENCH_DIR, "floor.py"), str(port)])
    try:
        h.wait_for_port(h.HOST, port, 10, proc)  # type: ignore[arg-type]
        with socket.create_connection((h.HOST, port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
            data = b""
            while data.count(b"Hello, World!") < 3:
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
        assert data.count(b"HTTP/1.1 200 OK\r\n") == 3 and data.endswith(b"\r\n\r\nHello, World!")
    finally:
        proc.terminate()
        proc.wait(10)


def test_microweb_starts_with_its_cli_and_stops_cleanly(tmp_path: Any) -> None:
    port = h.free_port()
    spec = h.microweb_server(os.path.join(h.APPS_DIR, "hello.py"), port)
    server = h.RunningServer(spec, port, str(tmp_path))
    try:
        h.check_response(server.url, "/", b"Hello, World!")
        with pytest.raises(h.BenchError):
            h.check_response(server.url, "/nope", b"Hello")
    finally:
        status = server.stop()
    assert status == 0, server.log_tail()
    assert server.ready_after < 10


@needs_wrk
@pytest.mark.slow
def test_run_py_end_to_end_one_scenario(tmp_path: Any) -> None:
    for peer in ("waitress", "flask", "uvicorn", "starlette", "httptools", "uvloop", "matplotlib"):
        pytest.importorskip(peer, reason=f"{peer} is not installed (pip install -e '.[bench]')")
    out = tmp_path / "r.json"
    with bench_lock():
        proc = subprocess.run([sys.executable, os.path.join(h.BENCH_DIR, "run.py"), "--only", "json,startup",
                               "--reps", "1", "--duration", "1", "--output", str(out)],
                              capture_output=True, text=True, timeout=180, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = {r["server"]: r for r in data["results"]}
    assert set(rows) == {"microweb", "flask", "starlette"}
    assert all(r["error"] is None and r["rps"] > 0 for r in rows.values()), rows
    by_id = {t["id"]: t for t in data["targets"]}
    assert by_id["2a"]["value"] > 0 and by_id["7a"]["value"] > 0 and by_id["7b"]["met"] is not None
    assert "JSON route" in proc.stdout and "2a" in proc.stdout
    assert (tmp_path / "latest.png").exists()


@needs_wrk
@pytest.mark.slow
def test_c10k_small() -> None:
    from benchmarks.c10k import run_c10k

    affinity = os.sched_getaffinity(0)
    try:
        with bench_lock():
            r = run_c10k(connections=300, duration=1, reps=1)
    finally:
        os.sched_setaffinity(0, affinity)
    assert r["held"] == 300 and r["first_ok"] == 300 and r["reused"] == 300
    assert r["rps_without"] > 0 and r["rps_with"] > 0 and r["rss_held_mb"] > 0 and r["server_alive"]


@pytest.mark.slow
def test_websocket_bench_small() -> None:
    """The WebSocket benchmark's idle and broadcast scenarios, small: every socket echoes, all get the message."""
    import tempfile

    from benchmarks import websocket_bench as wb

    with tempfile.TemporaryDirectory() as logdir:
        idle = wb.bench_idle(200, logdir)
        assert idle["echoed"] == 200 and idle["rss_mb"] > 0
        result = wb.bench_broadcast(100, logdir, repeats=2)
        assert result["sockets"] == 100 and len(result["all_ms"]) == 2


# -- issue 16's peers and cases, live ---------------------------------------------------


def _case(scenario: str, server: str) -> Any:
    return next(c for c in CASES if c.scenario == scenario and c.server == server)


PEER_CASES = [("browser", "socketify", "socketify"), ("browser", "granian_wsgi", "granian"),
              ("browser", "granian_asgi", "granian"), ("browser", "cheroot", "cheroot"),
              ("flask", "microweb_threads", "flask"), ("flask", "microweb", "flask"), ("flask", "granian", "granian"),
              ("flask", "gunicorn", "gunicorn")]


@pytest.mark.parametrize("scenario,server,module", PEER_CASES)
def test_each_new_peer_starts_answers_and_stops(tmp_path: Any, scenario: str, server: str, module: str) -> None:
    """Every issue-16 server starts with its real command line and answers the case's check."""
    pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[bench]')")
    if scenario == "flask":
        pytest.importorskip("flask", reason="flask is not installed (pip install -e '.[bench]')")
    case = _case(scenario, server)
    ws = Workspace(str(tmp_path))
    port = h.free_port()
    with h.RunningServer(case.factory(port, ws), port, str(tmp_path)) as running:
        h.check_response(running.url, case.path, case.expect, status=case.status, method=case.method)
    assert running.proc.poll() is not None


@needs_wrk
def test_notfound_flood_and_405_measure_their_status(tmp_path: Any) -> None:
    """Tiny runs of the 404 flood and the 405 case: every response is the expected error, none is an error."""
    ws = Workspace(str(tmp_path))
    with bench_lock():
        for server, status in (("404_flood", 404), ("405", 405)):
            case = _case("notfound", server)
            [result] = measure_case(case, ws, duration=1, warmup=0)
            assert result.requests > 0 and result.non_2xx == result.requests, (server, result)
            assert wrong_statuses(case, [result]) is None and case.status == status


@needs_wrk
@pytest.mark.slow
def test_thousand_connection_case_runs(tmp_path: Any) -> None:
    """wrk -c1000 against microweb with the fd limit raised: no socket errors, all 2xx."""
    h.raise_fd_limit()
    ws = Workspace(str(tmp_path))
    case = _case("c1000", "microweb_c1000")
    assert case.connections == 1000
    with bench_lock():
        [result] = measure_case(case, ws, duration=1, warmup=0)
    assert result.requests > 1000 and result.non_2xx == 0 and result.socket_errors == 0, result
