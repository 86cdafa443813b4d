"""Turn a benchmark run's results into the printed table, the targets' verdicts, JSON, a PNG chart and
the README's Markdown table. Pure functions over plain dicts, so they are tested without running wrk.

A result row: ``{"scenario", "server", "label", "rps", "p99_ms", "bytes_per_s", "runs": [...], "error"}``
(medians in ``rps``/``p99_ms``/``bytes_per_s``). ``extras`` holds the figures that are not wrk rows:
``sends_per_recv``, ``ttfa_ms``, ``jinja2_imported`` and ``c10k`` (see c10k.py).
"""
from __future__ import annotations

import math
import os
from typing import Any

from .scenarios import SCENARIOS, TARGETS, Target, met

Row = dict[str, Any]


def find(rows: list[Row], scenario: str, server: str) -> Row | None:
    for row in rows:
        if row["scenario"] == scenario and row["server"] == server and not row.get("error"):
            return row
    return None


def ratio(rows: list[Row], num: tuple[str, str, str], den: tuple[str, str, str]) -> float | None:
    """The ratio of two medians, or None when either is missing."""
    a, b = find(rows, num[0], num[1]), find(rows, den[0], den[1])
    if a is None or b is None:
        return None
    x, y = a.get(num[2]), b.get(den[2])
    if x is None or y is None or not y or x != x or y != y:
        return None
    return float(x) / float(y)


def round_ratios(rows: list[Row], num: tuple[str, str, str], den: tuple[str, str, str]) -> list[float]:
    """The ratio within each round (run i of the numerator over run i of the denominator).

    Both cases run in the same round, minutes apart at most, so a slow spell on a shared machine
    tends to hit both: the spread of these says how far the ratio of medians can be trusted.
    Empty when either case is missing or their runs do not pair up (one failed part-way).
    """
    a, b = find(rows, num[0], num[1]), find(rows, den[0], den[1])
    if a is None or b is None or len(a.get("runs", [])) != len(b.get("runs", [])):
        return []
    pairs = zip((r.get(num[2]) for r in a["runs"]), (r.get(den[2]) for r in b["runs"]))
    return [float(x) / float(y) for x, y in pairs if x is not None and y and x == x and y == y]


def _extra_value(target: Target, extras: dict[str, Any]) -> float | None:
    c10k = extras.get("c10k")
    if target.id == "3s":
        return extras.get("sends_per_recv")
    if target.id == "7a":
        return extras.get("ttfa_ms")
    if target.id == "7b":
        imported = extras.get("jinja2_imported")
        return None if imported is None else float(imported)
    if c10k and target.id == "5m":
        return max(c10k["rss_held_mb"], c10k.get("rss_held_after_wrk_mb", 0.0))
    if c10k and target.id == "5r":
        return c10k["rps_ratio"]
    if c10k and target.id == "5u":
        return c10k["reused"] / c10k["held"] if c10k["held"] else 0.0
    return None


def evaluate(rows: list[Row], extras: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured value and verdict (``met`` None: not measured in this run)."""
    verdicts = []
    for target in TARGETS:
        rounds: list[float] = []
        if target.numerator and target.denominator:
            value = ratio(rows, target.numerator, target.denominator)
            rounds = round_ratios(rows, target.numerator, target.denominator)
        else:
            value = _extra_value(target, extras)
        verdicts.append({"id": target.id, "what": target.what, "op": target.op, "bound": target.bound,
                         "unit": target.unit, "value": value, "met": met(target, value),
                         "rounds": [round(r, 3) for r in rounds]})
    return verdicts


# -- text -------------------------------------------------------------------------


def fmt_value(value: float | None, unit: str, bound: float | None = None) -> str:
    if value is None or value != value:
        return "-"
    if unit == "x":
        # a third decimal when two would print the bound itself (0.699 is not 0.70)
        close = bound is not None and f"{value:.2f}" == f"{bound:.2f}" and value != bound
        return f"{value:.3f}x" if close else f"{value:.2f}x"
    if unit == "bool":
        return "yes" if value else "no"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "ms":
        return f"{value:.0f} ms"
    return f"{value:.2f} {unit}"


def fmt_bound(v: dict[str, Any]) -> str:
    if v["op"] == "info":
        return "(none)"
    if v["unit"] == "bool":
        return "no"
    bound = v["bound"]
    text = f"{bound:g}x" if v["unit"] == "x" else f"{bound:g} {v['unit']}"
    return f"{v['op']} {text}"


def verdict_word(v: dict[str, Any]) -> str:
    if v["op"] == "info":
        return "reported" if v["value"] is not None else "not run"
    return {True: "met", False: "NOT met", None: "not run"}[v["met"]]


def fmt_rounds(rounds: list[float] | None) -> str:
    """Each round's ratio when there are several: ``0.95-1.20 (5)``, the range and the count."""
    if not rounds or len(rounds) < 2:
        return ""
    return f"{min(rounds):.2f}-{max(rounds):.2f} ({len(rounds)})"


def fmt_rate(row: Row) -> str:
    if row.get("error"):
        return "error"
    text = f"{row['rps']:,.0f}"
    if row.get("bytes_per_s"):
        text += f" ({row['bytes_per_s'] / 1e9:.2f} GB/s)"
    return text


def scenario_table(rows: list[Row]) -> str:
    """The per-server medians, grouped by scenario, with each run's requests/s."""
    lines = [f"{'scenario / server':<54} {'req/s (median)':>24} {'p99 ms':>8}   runs (req/s)"]
    for scenario, title in SCENARIOS.items():
        group = [r for r in rows if r["scenario"] == scenario]
        if not group:
            continue
        lines.append(title)
        for row in group:
            runs = " ".join(f"{r['rps'] / 1000:.1f}k" for r in row.get("runs", []))
            p99 = "-" if row.get("error") or not row.get("p99_ms") else f"{row['p99_ms']:.2f}"
            note = f"  {row['error']}" if row.get("error") else ""
            lines.append(f"  {row['label']:<52} {fmt_rate(row):>24} {p99:>8}   {runs}{note}")
    return "\n".join(lines)


def target_table(verdicts: list[dict[str, Any]]) -> str:
    lines = [f"{'target':<6} {'what':<62} {'measured':>10} {'target':>12}  {'verdict':<8}  per round"]
    for v in verdicts:
        lines.append(f"{v['id']:<6} {v['what']:<62} {fmt_value(v['value'], v['unit'], v['bound']):>10} "
                     f"{fmt_bound(v):>12}  {verdict_word(v):<8}  {fmt_rounds(v.get('rounds'))}".rstrip())
    return "\n".join(lines)


def markdown(rows: list[Row], verdicts: list[dict[str, Any]], machine: dict[str, Any],
             settings: dict[str, Any], extras: dict[str, Any]) -> str:
    """The README's section body: machine, the medians, the targets."""
    out = [f"Measured {machine.get('date', '')} on {machine_line(machine)}; "
           f"{settings['reps']} runs of {settings['duration']:g} s each, medians; "
           f"server on core {settings['server_cpu']}, `wrk -t1 -c50` on core {settings['load_cpu']} "
           f"(`-c1000` where a row says 1000 connections).", "",
           "| scenario | server | requests/s | p99 |", "|---|---|---:|---:|"]
    for scenario, title in SCENARIOS.items():
        for row in (r for r in rows if r["scenario"] == scenario):
            p99 = "-" if row.get("error") or not row.get("p99_ms") else f"{row['p99_ms']:.2f} ms"
            out.append(f"| {title} | {row['label']} | {fmt_rate(row)} | {p99} |")
    out.append("(wrk reports no meaningful latency for pipelined requests.)")
    out += ["", "| target | measured | needed | | each round |", "|---|---:|---:|---|---|"]
    for v in verdicts:
        out.append(f"| {v['id']}. {v['what']} | {fmt_value(v['value'], v['unit'], v['bound'])} | {fmt_bound(v)} | "
                   f"{verdict_word(v)} | {fmt_rounds(v.get('rounds'))} |")
    c10k = extras.get("c10k")
    if c10k:
        from .c10k import format_line

        out += ["", f"`{format_line(c10k)}`"]
    return "\n".join(out)


def machine_line(machine: dict[str, Any]) -> str:
    return (f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('memory_gb', '?')} GB, "
            f"Linux {machine.get('kernel', '?')}, Python {machine.get('python', '?')}")


# -- chart ------------------------------------------------------------------------


def draw_chart(verdicts: list[dict[str, Any]], machine: dict[str, Any], extras: dict[str, Any],
               path: str) -> None:
    """A horizontal bar per ratio target (log scale), its bound marked; green met, red not met."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [v for v in verdicts if v["unit"] == "x" and v["op"] != "info" and v["value"] is not None
            and v["value"] > 0]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(bars) + 2.2), dpi=110)
    labels = [f"{v['id']}. {v['what']}" for v in bars][::-1]
    values = [v["value"] for v in bars][::-1]
    colors = ["#2e7d32" if v["met"] else "#c62828" for v in bars][::-1]
    ys = range(len(bars))
    ax.barh(list(ys), values, color=colors, height=0.6)
    for y, v in zip(ys, bars[::-1]):
        ax.plot([v["bound"], v["bound"]], [y - 0.4, y + 0.4], color="black", linewidth=2)
        label = f"{v['value']:.2f}x (need {v['op']} {v['bound']:g}x)"
        ax.text(max(v["value"], v["bound"]) * 1.06, y, label, va="center", fontsize=8)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    hi = max(values + [v["bound"] for v in bars] + [1.0])
    lo = min(values + [v["bound"] for v in bars] + [1.0])
    ax.set_xlim(lo / 1.5, hi * 4)
    ax.axvline(1.0, color="grey", linewidth=0.5)
    ax.set_xlabel("ratio of medians (log scale); black tick = target; green met, red not met")
    ax.set_title("microweb vs peers, one run of benchmarks/run.py", fontsize=10)
    notes = []
    if extras.get("ttfa_ms") is not None:
        notes.append(f"time to first accept {extras['ttfa_ms']:.0f} ms")
    if extras.get("c10k"):
        c = extras["c10k"]
        notes.append(f"10k idle conns: RSS {max(c['rss_held_mb'], c.get('rss_held_after_wrk_mb', 0)):.1f} MB, "
                     f"reused {c['reused']}/{c['held']}")
    fig.text(0.01, 0.01, machine_line(machine) + ("; " + "; ".join(notes) if notes else ""), fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def finite(value: Any) -> Any:
    """JSON has no NaN: map NaN/inf to None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
