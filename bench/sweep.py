"""The phase diagram's wall time: a 40 x 40 sweep of H=64, T=200 (the
phase-diagram preset: scale 0.25-2.5 against input_scale 0.1-2) with one
worker process and with two (and with the CPU count, if more), and the
speed-up. The same grid through the same code as `bptt-lab sweep` (engine's
run_grid: spawned workers with one BLAS thread each), timed from before the
pool starts to the last cell; the results of every worker count are checked
identical.

    .venv/bin/python bench/sweep.py [--repeats R] [--size N]     # make bench-sweep; the end of make bench

Prints a Markdown table with the load average before and after: on a shared
2-core machine another process's work shows in every number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.presets import BUILTIN  # noqa: E402
from engine.sweep import Grid, parse_axis, run_grid  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def grid(size: int) -> Grid:
    return Grid.build(BUILTIN["phase-diagram"].config, parse_axis(f"scale=0.25:2.5:{size}"), parse_axis(f"input_scale=0.1:2:{size}"))


def measure(size: int, repeats: int) -> dict:
    g = grid(size)
    counts = sorted({1, 2, os.cpu_count() or 1})
    times: dict[int, list[float]] = {n: [] for n in counts}
    docs = {}
    for _ in range(repeats):  # alternating, so a change of load falls on every count alike
        for n in counts:
            start = time.perf_counter()
            sweep = run_grid(g, n)
            times[n].append(time.perf_counter() - start)
            docs[n] = json.dumps(sweep.to_dict(), allow_nan=False)
    if len(set(docs.values())) != 1:
        raise SystemExit("the sweep's results differ between worker counts")
    return {"cells": size * size, "median_s": {n: statistics.median(t) for n, t in times.items()}, "all_s": times}


def markdown(result: dict, before: str, after: str, size: int) -> str:
    med = result["median_s"]
    one = med[1]
    lines = [
        f"Sweep: {size} x {size} = {result['cells']:,} cells of H=64 N=4 T=200 (phase-diagram), median of {len(result['all_s'][1])}; "
        f"load average before {before}, after {after}; results identical for every worker count",
        "",
        "| workers | wall time (s) | per cell (ms) | speed-up over 1 |",
        "|---:|---:|---:|---:|",
    ]
    for n, t in med.items():
        lines.append(f"| {n} | {t:.2f} | {1e3 * t / result['cells']:.2f} | {one / t:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=40, help="values on each axis (default 40)")
    args = ap.parse_args(argv)
    before = load()
    result = measure(args.size, args.repeats)
    print(markdown(result, before, load(), args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
