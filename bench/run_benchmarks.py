"""Benchmarks: the engine against a minimal numpy floor, and the CLI's wall time.

    .venv/bin/python bench/run_benchmarks.py            # full: T=1000, 5 repeats
    .venv/bin/python bench/run_benchmarks.py --quick    # T=200, 3 repeats

1. Engine vs FLOOR, for rnn (tanh) and lstm at H=256, N=32, T=1000 with the
   default Config otherwise (mode bptt, mse on the last step, xavier init).
   Engine time = `Run(config)` (parameters, data, forward pass, spectrum)
   + `run.run()` (the stepped backward pass with its per-step records).
   FLOOR time = `bench/floor.py` on the same params, inputs and targets: the
   same float64 gradients with no records. Before timing, the floor's loss and
   every gradient are checked against the engine's `run.grads_raw`
   (np.allclose, rtol 1e-9; see GRAD_RTOL/GRAD_ATOL_SCALE); a mismatch aborts.
   After one warm-up of each, repeats alternate engine, floor, engine, floor...
   in this process; the ratio is median(engine) / median(floor). The target
   (engine within TARGET_RATIO of the floor) is reported, never enforced.
2. Wall time (median of 5 subprocess runs, after one untimed run) of
   `bptt-lab --help` and `bptt-lab run seed-explode --format json` through the
   console script .venv/bin/bptt-lab; a failing command is reported as n/a.
3. The machine: CPU count, numpy and its BLAS, Python.

Prints Markdown tables and writes bench/results/latest.json (git-ignored).
Progress goes to stderr, so stdout is only the report.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402

from engine.bptt import Run  # noqa: E402
from engine.config import Config  # noqa: E402
from floor import FLOORS  # noqa: E402

TARGET_RATIO = 1.3
HIDDEN, BATCH = 256, 32
CASES = (("rnn-tanh", "rnn"), ("lstm", "lstm"))
FULL = {"steps": 1000, "repeats": 5}
QUICK = {"steps": 200, "repeats": 3}
CLI_REPEATS = 5
CLI_TIMEOUT = 120.0
CLI_COMMANDS = (("bptt-lab --help", ["--help"]), ("bptt-lab run seed-explode --format json", ["run", "seed-explode", "--format", "json"]))
RESULTS = HERE / "results" / "latest.json"

# Gradient check: elementwise |floor - engine| <= atol + rtol * |engine|, with
# atol a tiny fraction of the parameter's largest entry (entries ~1e10 below
# it come out of long cancelling sums, so a pure relative test on them only
# measures summation order: per-step accumulation vs one matmul).
GRAD_RTOL = 1e-9
GRAD_ATOL_SCALE = 1e-12


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- 3. machine context -----------------------------------------------------------


def machine() -> dict:
    blas = "unknown"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy or an unusual build: not worth failing for
        pass
    threads = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    return {
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "blas": blas,
        "blas_thread_env": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    """1/5/15-minute load: other work on a small machine shows up in every timing."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -- 1. engine vs floor ---------------------------------------------------------------


def bench_config(cell: str, steps: int) -> Config:
    return Config(cell=cell, hidden=HIDDEN, batch=BATCH, steps=steps)


def floor_applies(c: Config) -> None:
    """The floor implements exactly this slice of the engine; refuse anything else."""
    want = {"mode": "bptt", "loss": "mse", "loss_on": "last", "clip": "none", "truncate": 0}
    if c.cell == "rnn":
        want["activation"] = "tanh"
    wrong = {k: getattr(c, k) for k, v in want.items() if getattr(c, k) != v}
    if wrong or c.cell not in FLOORS:
        raise SystemExit(f"the floor does not implement this config: {wrong or c.cell}")


_TRANSITIONS = [0.0]  # seconds spent in Run._describe_transitions (sigma, saturation, gate means)
_describe = Run._describe_transitions


def _timed_describe(self, lo, hi):
    t0 = time.perf_counter()
    _describe(self, lo, hi)
    _TRANSITIONS[0] += time.perf_counter() - t0


Run._describe_transitions = _timed_describe  # called once per chunk of 32 steps: negligible overhead


def time_engine(config: Config) -> tuple[float, float, Run]:
    _TRANSITIONS[0] = 0.0
    t0 = time.perf_counter()
    run = Run(config)
    t1 = time.perf_counter()
    run.run()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, run


def time_floor(cell: str, params, inputs, targets) -> tuple[float, float, dict]:
    floor = FLOORS[cell]
    t0 = time.perf_counter()
    loss, grads = floor(params, inputs, targets)
    t1 = time.perf_counter()
    return t1 - t0, loss, grads


def check_floor(name: str, run: Run, loss: float, grads: dict) -> dict:
    """The floor must compute the engine's numbers, or the comparison means nothing."""
    engine = run.grads_raw
    if set(grads) != set(engine):
        raise SystemExit(f"{name}: floor gradients {sorted(grads)} != engine gradients {sorted(engine)}")
    if not np.isclose(loss, run.loss, rtol=1e-12, atol=0.0):
        raise SystemExit(f"{name}: floor loss {loss!r} != engine loss {run.loss!r}")
    report = {"loss": run.loss, "rtol": GRAD_RTOL, "atol_scale": GRAD_ATOL_SCALE, "params": {}}
    for key, e in engine.items():
        f = grads[key]
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        atol = GRAD_ATOL_SCALE * scale
        ok = f.shape == e.shape and bool(np.all(np.isfinite(f))) and np.allclose(f, e, rtol=GRAD_RTOL, atol=atol)
        worst = float(np.max(np.abs(f - e))) / scale if scale > 0 and f.shape == e.shape else float("nan")
        report["params"][key] = {"max_abs": scale, "max_abs_diff_over_max_abs": worst}
        if not ok:
            raise SystemExit(f"{name}: floor gradient {key} differs from the engine's grads_raw (max |diff| / max |g| = {worst:.3g})")
    return report


def bench_case(name: str, cell: str, steps: int, repeats: int) -> dict:
    config = bench_config(cell, steps)
    floor_applies(config)

    log(f"[{name}] warm-up and gradient check (T={steps})")
    gc.collect()
    _, _, run = time_engine(config)
    params = {k: v.copy() for k, v in run.params.items()}
    inputs, targets = run.inputs.copy(), run.targets.copy()
    _, loss, grads = time_floor(cell, params, inputs, targets)
    check = check_floor(name, run, loss, grads)
    del run, grads

    fwd, bwd, eng, flo, diag = [], [], [], [], []
    for r in range(repeats):
        gc.collect()
        f, b, run = time_engine(config)
        del run
        diag.append(_TRANSITIONS[0])
        fwd.append(f)
        bwd.append(b)
        eng.append(f + b)
        gc.collect()
        t, _, grads = time_floor(cell, params, inputs, targets)
        del grads
        flo.append(t)
        log(f"[{name}] repeat {r + 1}/{repeats}: engine {eng[-1]:.3f}s (forward {f:.3f} + backward {b:.3f}), floor {t:.3f}s")
    engine_med, floor_med = statistics.median(eng), statistics.median(flo)
    ratio = engine_med / floor_med
    return {
        "case": name,
        "config": {"cell": cell, "hidden": HIDDEN, "batch": BATCH, "steps": steps},
        "repeats": repeats,
        "engine_s": eng,
        "engine_forward_s": fwd,
        "engine_backward_s": bwd,
        "floor_s": flo,
        "engine_median_s": engine_med,
        "engine_forward_median_s": statistics.median(fwd),
        "engine_backward_median_s": statistics.median(bwd),
        "floor_median_s": floor_med,
        "transition_diagnostics_s": diag,
        "transition_diagnostics_median_s": statistics.median(diag),
        "ratio_without_transition_diagnostics": statistics.median([e - d for e, d in zip(eng, diag)]) / floor_med,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
        "gradient_check": check,
    }


# -- 2. CLI wall time -----------------------------------------------------------------------


def _failure_line(stderr: str) -> str:
    """The first line of stderr; for a Python traceback its last line (the exception),
    since the first is always 'Traceback (most recent call last):'."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "no stderr"
    if lines[0].startswith("Traceback") and len(lines) > 1:
        return lines[-1]
    return lines[0]


def bench_cli(label: str, args: list[str], repeats: int) -> dict:
    exe = ROOT / ".venv" / "bin" / "bptt-lab"
    out = {"command": label, "repeats": repeats, "wall_s": [], "median_s": None, "error": None}
    if not exe.exists():
        out["error"] = f"{exe.relative_to(ROOT)} not found"
        return out
    log(f"[cli] {label}")
    for r in range(repeats + 1):  # run 0 is an untimed warm-up (bytecode, file cache)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            out["error"] = f"timed out after {CLI_TIMEOUT:g}s"
            return out
        except OSError as exc:
            out["error"] = str(exc)
            return out
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            out["error"] = f"exit {proc.returncode}: {_failure_line(proc.stderr)}"
            return out
        if r:
            out["wall_s"].append(elapsed)
    out["median_s"] = statistics.median(out["wall_s"])
    return out


# -- report ---------------------------------------------------------------------------------


def markdown(ctx: dict, cases: list[dict], cli: list[dict], mode: str) -> str:
    lines = [
        f"Machine: {ctx['cpu_count']} CPUs | numpy {ctx['numpy']} (BLAS: {ctx['blas']}) | Python {ctx['python']}"
        + (f" | {' '.join(f'{k}={v}' for k, v in ctx['blas_thread_env'].items())}" if ctx["blas_thread_env"] else "")
        + (f" | load average at start {ctx['load_average_at_start'][0]:.2f}" if ctx["load_average_at_start"] else ""),
        "",
    ]
    if cases:
        c0 = cases[0]
        lines += [
            f"Engine vs floor ({mode}: H={HIDDEN}, N={BATCH}, T={c0['config']['steps']}, "
            f"median of {c0['repeats']} interleaved repeats after one warm-up; gradients checked equal, rtol {GRAD_RTOL:g})",
            "",
            "| case | engine median (s) | forward / backward (s) | of which sigma, saturation, gates (s) | floor median (s) | ratio | ratio without sigma etc. | target <= 1.3x |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for c in cases:
            lines.append(
                f"| {c['case']} | {c['engine_median_s']:.3f} | {c['engine_forward_median_s']:.3f} / {c['engine_backward_median_s']:.3f} "
                f"| {c['transition_diagnostics_median_s']:.3f} | {c['floor_median_s']:.3f} | {c['ratio']:.2f}x "
                f"| {c['ratio_without_transition_diagnostics']:.2f}x | {'met' if c['target_met'] else 'not met'} |"
            )
        lines.append("")
    if cli:
        lines += [f"CLI wall time (median of {CLI_REPEATS} runs after one untimed run)", "", "| command | median wall (s) |", "|---|---:|"]
        for c in cli:
            value = f"{c['median_s']:.3f}" if c["error"] is None else f"n/a (command failed: {c['error']})"
            lines.append(f"| `{c['command']}` | {value} |")
        lines.append("")
    if cases:
        met = [c["case"] for c in cases if c["target_met"]]
        missed = [f"{c['case']} {c['ratio']:.2f}x" for c in cases if not c["target_met"]]
        verdict = "met for all cases" if not missed else f"NOT met: {', '.join(missed)}" + (f" (met: {', '.join(met)})" if met else "")
        lines.append(f"Target engine <= {TARGET_RATIO}x floor: {verdict}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"T={QUICK['steps']}, {QUICK['repeats']} repeats")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per case (default 5, or 3 with --quick)")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI wall-time measurements")
    args = ap.parse_args(argv)
    preset = QUICK if args.quick else FULL
    repeats = args.repeats or preset["repeats"]
    mode = "quick" if args.quick else "full"

    ctx = machine()
    started = time.perf_counter()
    cases = [bench_case(name, cell, preset["steps"], repeats) for name, cell in CASES]
    cli = [] if args.no_cli else [bench_cli(label, a, CLI_REPEATS) for label, a in CLI_COMMANDS]
    log("[tui] redraw frames at 100 and 100,000 steps; run to the end of T = 100,000")
    import tui_frames

    tui = tui_frames.main()
    total = time.perf_counter() - started

    print(markdown(ctx, cases, cli, mode))
    print(
        "\nDashboard (the app under Pilot at 120 x 40, median of 30 frames; a frame = the redraw plus the chart's plotext build)\n\n"
        "| measure | value |\n|---|---:|\n"
        f"| frame with 100 steps of history | {1e3 * tui['frame_100_s']:.2f} ms |\n"
        f"| frame with 100,000 steps of history | {1e3 * tui['frame_100k_s']:.2f} ms |\n"
        f"| ratio (target <= 1.5x) | {tui['frame_ratio']:.2f}x |\n"
        f"| run to the end of a T = 100,000 chain | {tui['run_to_end_100k_s']:.1f} s |\n"
        f"| peak RSS of a process doing only that run (Python and Textual included) | {tui['peak_rss_mib']:.0f} MiB |"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "mode": mode,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": ctx,
        "cases": cases,
        "cli": cli,
        "tui": tui,
        "total_wall_s": total,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {RESULTS.relative_to(ROOT)} ({total:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
