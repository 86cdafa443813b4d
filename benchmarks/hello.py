#!/usr/bin/env python3
"""Issue 2's benchmark: microweb, waitress and uvicorn serving the same hello world, wrk keep-alive
with 50 connections, server on core 1 and wrk on core 0; requests/s, p99 and microweb/peer.

usage: python3 benchmarks/hello.py [--reps 3] [--duration 5] [--priority none|nice]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import harness as h  # noqa: E402
from benchmarks.run import run_cases  # noqa: E402
from benchmarks.scenarios import CASES, Workspace  # noqa: E402

SERVERS = ("microweb", "waitress", "uvicorn")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--priority", choices=sorted(h.PRIORITIES), default="none")
    args = parser.parse_args(argv)
    h.priority[:] = h.PRIORITIES[args.priority]
    ws = Workspace(tempfile.mkdtemp(prefix="microweb-hello-"))
    cases = [c for c in CASES if c.scenario == "hello" and c.server in SERVERS]
    rows = run_cases(cases, ws, args.reps, args.duration, warmup=1.0)
    shutil.rmtree(ws.root, ignore_errors=True)
    base = rows[0]
    print(f"\nhello world, wrk -t1 -c50 -d{args.duration:g}s, median of {args.reps}")
    print(f"{'server':<40} {'req/s':>10} {'p99 ms':>8} {'microweb/peer':>14}")
    for row in rows:
        if row["error"]:
            print(f"{row['label']:<40} {'error':>10}  {row['error']}")
            continue
        rel = f"{base['rps'] / row['rps']:.2f}x" if not base["error"] and row is not base else ""
        print(f"{row['label']:<40} {row['rps']:>10,.0f} {row['p99_ms']:>8.2f} {rel:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
