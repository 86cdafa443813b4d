#!/usr/bin/env python3
"""Run every scenario of issue 6 against microweb and its peers in one run; print medians, ratios and
the targets' verdicts; write benchmarks/results/latest.json and a PNG chart of the ratios.

usage: python3 benchmarks/run.py [--quick] [--only NAMES] [--reps N] [--duration S] [--publish]

NAMES (comma-separated): hello, browser, json, pipeline, static1k, static10m, static (both), sends,
startup, c10k. ``--publish`` also writes docs/benchmark.png, docs/benchmark.json and the table in README.md;
``--from-json PATH`` prints (and with ``--publish`` publishes) a saved run without measuring.
Wrap it in ``flock /tmp/microweb-bench.lock`` when other benchmarks may run on the machine.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import harness as h  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks.scenarios import (CASES, MANY_CONNECTIONS, PIPELINE_DEPTH, PIPELINE_LUA, SCENARIOS, Case,  # noqa: E402
                                  Workspace)

RESULTS_DIR = os.path.join(h.BENCH_DIR, "results")
CHART = os.path.join(h.REPO_ROOT, "docs", "benchmark.png")
PUBLISHED_JSON = os.path.join(h.REPO_ROOT, "docs", "benchmark.json")
README = os.path.join(h.REPO_ROOT, "README.md")
README_START = "<!-- benchmark-results:start (written by benchmarks/run.py --publish) -->"
README_END = "<!-- benchmark-results:end -->"
EXTRA_NAMES = ("sends", "startup", "c10k")
ALL_NAMES = (*SCENARIOS, *EXTRA_NAMES)
# --only names that stand for scenarios: issue 16's native-core peers run in the browser scenario
ALIASES = {"static": ("static1k", "static10m"), "natives": ("browser",)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- wrk scenarios ----------------------------------------------------------------


def measure_case(case: Case, ws: Workspace, duration: float, warmup: float) -> list[h.WrkResult]:
    """Start the case's server, check one response, warm up, run wrk once, stop the server."""
    port = h.free_port()
    with h.RunningServer(case.factory(port, ws), port, ws.root) as server:
        h.check_response(server.url, case.path, case.expect, status=case.status, method=case.method)
        url = server.url + case.path
        if warmup > 0:
            h.run_wrk(url, warmup, case.script, case.script_args, case.connections)
        result = h.run_wrk(url, duration, case.script, case.script_args, case.connections)
        if server.proc.poll() is not None:
            raise h.BenchError(f"server exited during the run: {server.log_tail()}")
    return [result]


def run_cases(cases: list[Case], ws: Workspace, reps: int, duration: float, warmup: float) -> list[report.Row]:
    """Round-robin: each round runs every case once, so drift on the machine hits all of them alike."""
    results: dict[int, list[h.WrkResult]] = {i: [] for i in range(len(cases))}
    errors: dict[int, str] = {}
    for rnd in range(reps):
        for i, case in enumerate(cases):
            if i in errors:
                continue
            try:
                results[i] += measure_case(case, ws, duration, warmup)
            except (h.BenchError, OSError, subprocess.SubprocessError) as exc:
                errors[i] = str(exc)
                log(f"  {case.scenario}/{case.server}: error: {exc}")
                continue
            r = results[i][-1]
            flag = f" ({r.non_2xx} non-2xx, {r.socket_errors} socket errors)" if r.non_2xx or r.socket_errors else ""
            if case.status >= 400:
                flag = f" ({r.non_2xx}/{r.requests} answered >= 400, {r.socket_errors} socket errors)"
            log(f"  round {rnd + 1}/{reps} {case.scenario:<9} {case.server:<10} {r.rps:>12,.0f} req/s  "
                f"p99 {r.p99_ms:.2f} ms{flag}")
    rows = []
    for i, case in enumerate(cases):
        runs = results[i]
        error = errors.get(i) or wrong_statuses(case, runs)
        rows.append({
            "scenario": case.scenario, "server": case.server, "label": case.label,
            "rps": h.median(r.rps for r in runs) if runs else None,
            "p99_ms": h.median(r.p99_ms for r in runs) if runs else None,
            "p50_ms": h.median(r.p50_ms for r in runs) if runs else None,
            "bytes_per_s": h.median(r.bytes_per_s for r in runs) if runs and case.byte_rate else None,
            "runs": [vars(r) for r in runs], "error": error,
        })
    return rows


def wrong_statuses(case: Case, runs: list[h.WrkResult]) -> str | None:
    """Why the runs do not count, judged by what wrk can tell apart: under 400 ("2xx or 3xx") or not.

    A case expecting 2xx must see no "non-2xx or 3xx" response; a case expecting an error status
    (404, 405) must see nothing else: every response counted as non-2xx.
    """
    if case.status < 400:
        return "non-2xx responses during the run" if any(r.non_2xx for r in runs) else None
    if any(r.non_2xx != r.requests for r in runs):
        return f"responses other than {case.status} during the run"
    return None


# -- the figures that are not wrk rows ----------------------------------------------


def sends_per_recv(ws: Workspace, duration: float) -> dict[str, Any]:
    """Count microweb's send and recv syscalls (strace -c) under pipelined load: one send per read?"""
    if shutil.which("strace") is None:
        raise h.BenchError("strace is not installed")
    port = h.free_port()
    out = os.path.join(ws.root, "strace.txt")
    with h.RunningServer(h.microweb_server(os.path.join(h.APPS_DIR, "hello.py"), port), port, ws.root) as srv:
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-e",
                                   "trace=recvfrom,recvmsg,read,sendto,sendmsg,write,writev",
                                   "-p", str(srv.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        wrk = h.run_wrk(srv.url + "/", duration, PIPELINE_LUA, [PIPELINE_DEPTH])
        tracer.send_signal(signal.SIGINT)
        tracer.wait(10)
    counts = parse_strace_counts(open(out).read())
    reads = sum(counts.get(n, (0, 0))[0] - counts.get(n, (0, 0))[1] for n in ("recvfrom", "recvmsg", "read"))
    sends = sum(counts.get(n, (0, 0))[0] for n in ("sendto", "sendmsg", "write", "writev"))
    return {"sends": sends, "reads": reads, "ratio": sends / reads if reads else None,
            "responses": wrk.requests, "counts": counts}


def parse_strace_counts(text: str) -> dict[str, tuple[int, int]]:
    """``strace -c`` summary -> {syscall: (calls, errors)}."""
    counts: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) in (5, 6) and re.fullmatch(r"[\d.]+", parts[0]) and parts[-1] != "total":
            errors = int(parts[4]) if len(parts) == 6 else 0
            counts[parts[-1]] = (int(parts[3]), errors)
    return counts


def time_to_first_accept(ws: Workspace, reps: int) -> list[float]:
    """Milliseconds from spawning ``microweb run`` to the first accepted connection (polled every 1 ms)."""
    times = []
    for _ in range(reps):
        port = h.free_port()
        spec = h.microweb_server(os.path.join(h.APPS_DIR, "hello.py"), port)
        env = dict(os.environ, PYTHONPATH=h.REPO_ROOT)
        with open(os.devnull, "wb") as devnull:
            start = time.perf_counter()
            argv = [*h.priority, "taskset", "-c", h.SERVER_CPU, *spec.argv]
            proc = subprocess.Popen(argv, cwd=spec.cwd, env=env, stdout=devnull, stderr=devnull)
            try:
                accepted = h.wait_for_port(h.HOST, port, 10.0, proc, interval=0.001)
            finally:
                proc.terminate()
                proc.wait(10)
        times.append((accepted - start) * 1000)
    return times


def jinja2_on_import() -> bool:
    """Whether ``import microweb`` (this checkout) pulls in jinja2."""
    code = "import sys, microweb; print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=h.REPO_ROOT,
                         env=dict(os.environ, PYTHONPATH=h.REPO_ROOT), timeout=30)
    if out.returncode != 0:
        raise h.BenchError(f"import microweb failed: {out.stderr.strip()[-200:]}")
    return out.stdout.strip() == "True"


# -- the run ------------------------------------------------------------------------


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return "missing"
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else "?"


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gb: float | str = "?"
    try:
        mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        mem_gb = round(mem_kb / 1024 / 1024)
    except (OSError, StopIteration):
        pass
    from importlib import metadata

    peers = {}
    for name in ("uvicorn", "httptools", "uvloop", "starlette", "waitress", "flask", "bottle", "whitenoise",
                 "socketify", "granian", "cheroot", "gunicorn"):
        try:
            peers[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            peers[name] = "missing"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=h.REPO_ROOT).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "kernel": platform.release(),
        "python": platform.python_version(), "microweb_commit": commit,
        "wrk": _version(["wrk", "-v"]).split(" Copyright")[0], "nginx": _version(["nginx", "-v"]), **peers,
    }


def parse_only(text: str | None) -> set[str]:
    if not text:
        return set(ALL_NAMES)
    names = {n.strip() for n in text.split(",") if n.strip()}
    for alias, meant in ALIASES.items():
        if alias in names:
            names |= set(meant)
            names.discard(alias)
    unknown = names - set(ALL_NAMES)
    if unknown:
        raise SystemExit(f"run.py: error: unknown scenario(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join((*ALL_NAMES, *ALIASES))}")
    return names


def update_readme(section: str, path: str = README) -> bool:
    """Replace the text between the README's benchmark markers; False when the markers are missing."""
    with open(path) as f:
        text = f.read()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    text = text[:start + len(README_START)] + "\n" + section + "\n" + text[end:]
    with open(path, "w") as f:
        f.write(text)
    return True


def preflight() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"run.py: error: {', '.join(missing)} not installed "
                         "(apt-get install -y wrk nginx-light util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("run.py: error: needs 2 cores (server on core 1, wrk on core 0)")


def republish(path: str, publish: bool) -> int:
    """Print (and with ``publish``, chart and write into README) a run saved by an earlier ``run.py``."""
    with open(path) as f:
        data = json.load(f)
    rows, extras, machine, settings = data["results"], data["extras"], data["machine"], data["settings"]
    verdicts = report.evaluate(rows, extras)
    print(report.scenario_table(rows) + "\n\n" + report.target_table(verdicts))
    if publish:
        report.draw_chart(verdicts, machine, extras, CHART)
        updated = update_readme(report.markdown(rows, verdicts, machine, settings, extras))
        if os.path.abspath(path) != PUBLISHED_JSON:
            shutil.copyfile(path, PUBLISHED_JSON)
        print(f"wrote {os.path.relpath(CHART)}, {os.path.relpath(PUBLISHED_JSON)}"
              + (" and README.md's table" if updated else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run per case instead of 5 (about 2.5 minutes in all)")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated subset of: {', '.join(ALL_NAMES)}")
    parser.add_argument("--reps", type=int, help="runs per case (default 5; --quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 2)")
    parser.add_argument("--connections", type=int, default=10000, help="c10k: idle connections (default 10000)")
    parser.add_argument("--publish", action="store_true", help="also write docs/benchmark.png and README's table")
    parser.add_argument("--priority", choices=sorted(h.PRIORITIES), default="none",
                        help="nice: run the server and wrk under nice -n -10 (a busy machine)")
    parser.add_argument("--output", default=os.path.join(RESULTS_DIR, "latest.json"), help="JSON results path")
    parser.add_argument("--from-json", metavar="PATH", help="measure nothing: print and publish a saved run")
    args = parser.parse_args(argv)
    if args.from_json:
        return republish(args.from_json, args.publish)
    names = parse_only(args.only)
    reps = args.reps or (1 if args.quick else 5)
    duration = args.duration or 2.0
    warmup = 1.0
    preflight()
    h.priority[:] = h.PRIORITIES[args.priority]
    fd_limit = h.raise_fd_limit()  # inherited by servers and wrk: the c1000 and c10k scenarios need it
    os.sched_setaffinity(0, {int(h.LOAD_CPU)})  # our own polling stays off the server's core
    machine = machine_info()
    settings = {"reps": reps, "duration": duration, "warmup": warmup, "connections": h.CONNECTIONS,
                "server_cpu": h.SERVER_CPU, "load_cpu": h.LOAD_CPU, "quick": args.quick, "only": sorted(names),
                "priority": args.priority, "fd_limit": fd_limit}
    ws = Workspace(tempfile.mkdtemp(prefix="microweb-bench-"))
    log(f"microweb benchmark: {reps} x {duration:g} s per case; logs in {ws.root}")
    started = time.monotonic()
    cases = [c for c in CASES if c.scenario in names]
    rows = run_cases(cases, ws, reps, duration, warmup) if cases else []
    extras: dict[str, Any] = {}
    if "sends" in names:
        try:
            counted = sends_per_recv(ws, min(duration, 2.0))
            extras["sends_per_recv"] = counted["ratio"]
            extras["sends_detail"] = counted
            log(f"  pipelined x{PIPELINE_DEPTH} under strace: {counted['sends']} sends / {counted['reads']} reads")
        except (h.BenchError, OSError, subprocess.SubprocessError) as exc:
            log(f"  sends per recv: error: {exc}")
    if "startup" in names:
        try:
            times = time_to_first_accept(ws, 3 if args.quick else 7)
            extras["ttfa_ms"] = h.median(times)
            extras["ttfa_runs_ms"] = [round(t, 1) for t in times]
            extras["jinja2_imported"] = jinja2_on_import()
            log(f"  time to first accept: {extras['ttfa_ms']:.0f} ms (runs {extras['ttfa_runs_ms']}); "
                f"import microweb imports jinja2: {extras['jinja2_imported']}")
        except (h.BenchError, OSError, subprocess.SubprocessError) as exc:
            log(f"  startup: error: {exc}")
    if "c10k" in names:
        from benchmarks.c10k import format_line, run_c10k

        try:
            extras["c10k"] = run_c10k(args.connections, duration, reps, logdir=ws.root)
            log("  " + format_line(extras["c10k"]))
        except (h.BenchError, OSError, subprocess.SubprocessError) as exc:
            log(f"  c10k: error: {exc}")
    verdicts = report.evaluate(rows, extras)
    elapsed = time.monotonic() - started
    print(f"\nmicroweb benchmark, {machine['date']}, {report.machine_line(machine)}")
    print(f"{reps} run(s) x {duration:g} s per case, medians; server on core {h.SERVER_CPU}, "
          f"wrk -t1 -c{h.CONNECTIONS} (-c{MANY_CONNECTIONS} where a row says so) on core {h.LOAD_CPU}; "
          f"took {elapsed:.0f} s\n")
    print(report.scenario_table(rows))
    print()
    print(report.target_table(verdicts))
    if "c10k" in extras:
        from benchmarks.c10k import format_line

        print("\n" + format_line(extras["c10k"]))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    data = {"machine": machine, "settings": settings, "elapsed_s": round(elapsed, 1), "results": rows,
            "extras": extras, "targets": verdicts}
    with open(args.output, "w") as f:
        json.dump(report.finite(data), f, indent=2)
    chart = os.path.join(os.path.dirname(os.path.abspath(args.output)), "latest.png")
    report.draw_chart(verdicts, machine, extras, chart)
    print(f"\nwrote {os.path.relpath(args.output)} and {os.path.relpath(chart)}")
    if args.publish:
        shutil.copyfile(chart, CHART)
        shutil.copyfile(args.output, PUBLISHED_JSON)
        section = report.markdown(rows, verdicts, machine, settings, extras)
        updated = update_readme(section)
        print(f"wrote {os.path.relpath(CHART)}" + (" and README.md's table" if updated else
                                                   "; README.md has no benchmark markers, table not written"))
    if any(row.get("error") for row in rows):
        print(f"server logs kept in {ws.root}")
    else:
        shutil.rmtree(ws.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
