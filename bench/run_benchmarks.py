"""Benchmarks: the engine against a minimal numpy floor and PyTorch, and the CLI's wall time.

    make bench                                          # installs the `bench` extra (CPU torch), then the full run
    .venv/bin/python bench/run_benchmarks.py            # full: T as below, 5 repeats
    .venv/bin/python bench/run_benchmarks.py --quick    # T / 5, 3 repeats: a check, about a minute

1. Four ways to the same float64 gradients, on rnn (tanh), lstm and gru at
   H=256, N=32, T=1000 and rnn (tanh) at H=1024, N=16, T=200, with the default
   Config otherwise (mode bptt, mse on the last step, xavier init):
   - RECORDED: `Run(config, params, inputs, targets)` (forward pass) +
     `run.advance(T)` (the stepped backward pass with its per-step records;
     what a record shows of the forward pass alone, sigma, saturation, gate
     mean and the bound, is computed when read, and reading it for every
     record is timed apart, as is `run.summary()`);
   - LEAN: `engine.lean_gradients(config, params, inputs, targets)`, the
     engine's gradient-only path ("n/a" while the engine has none);
   - FLOOR: `bench/floor.py`, a minimal numpy BPTT with no records;
   - PYTORCH: `bench/torch_peer.py`, nn.RNN / nn.LSTM / nn.GRU + nn.Linear
     with autograd (forward + loss + backward), same parameters and data.
   Before timing, each one's loss and every gradient are checked against the
   engine's `run.grads_raw` (floor and PyTorch: np.allclose, rtol 1e-9; lean:
   rtol 1e-13; see check_grads); a mismatch aborts. After one warm-up of
   each, repeats alternate recorded, lean, floor, PyTorch, recorded, ... in
   this process; the table shows medians and ratios of medians, each ratio
   beside its target (TARGETS: reported, never enforced).
   numpy's BLAS and torch use the same number of threads (--threads, default
   the machine's CPU count): the BLAS variables below are set before numpy is
   imported (and threadpoolctl, if installed, limits the loaded pools too),
   torch.set_num_threads for torch.
2. Wall time (median of 5 subprocess runs, after one untimed run) of
   `bptt-lab --help` and `bptt-lab run seed-explode --format json` through the
   console script .venv/bin/bptt-lab; a failing command is reported as n/a.
3. One training update against PyTorch's (bench/train_update.py), when torch is installed.
4. The dashboard's frame cost and a long run (bench/tui_frames.py).
5. The machine: CPU count, numpy and its BLAS, torch, threads, Python.

Prints Markdown tables and writes bench/results/latest.json (git-ignored).
Progress goes to stderr, so stdout is only the report.
"""

from __future__ import annotations

import os
import sys


def _threads_from_argv(argv: list[str]) -> int:
    """--threads N / --threads=N, read before argparse: the BLAS reads its variables
    when numpy is imported, which is below."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--threads=") else argv[i + 1] if arg == "--threads" and i + 1 < len(argv) else None
        if value is not None:
            try:
                n = int(value)
            except ValueError:
                raise SystemExit(f"--threads: expected a positive integer, got {value!r}") from None
            if n < 1:
                raise SystemExit(f"--threads: expected a positive integer, got {value!r}")
            return n
    return os.cpu_count() or 1


THREADS = _threads_from_argv(sys.argv[1:])
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for _var in THREAD_VARS:
    os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402

import engine  # noqa: E402
from engine import Config, Run  # noqa: E402
from engine.data import make_data  # noqa: E402
from engine.records import ON_READ  # noqa: E402  (what a record shows of the forward pass alone: computed when read)
from engine.weights import init_params  # noqa: E402
from floor import FLOORS  # noqa: E402

try:  # optional: limits pools already loaded and reports them; the variables above suffice without it
    import threadpoolctl  # noqa: E402

    _POOLS = threadpoolctl.threadpool_limits(THREADS)
except ImportError:
    threadpoolctl = None

LEAN = getattr(engine, "lean_gradients", None)
LEAN_MISSING = "n/a (engine has no lean path yet)"

# (name, cell, H, N, T of the full run, {ratio: target}); --quick divides T by QUICK_STEP_DIVISOR.
# The targets are reported beside the ratios, never enforced.
CASES = (
    ("rnn-tanh", "rnn", 256, 32, 1000, {"recorded/torch": 0.8, "lean/torch": 0.5, "lean/floor": 1.3}),
    ("lstm", "lstm", 256, 32, 1000, {"recorded/torch": 0.8}),
    ("gru", "gru", 256, 32, 1000, {"recorded/torch": 0.8}),
    ("rnn-tanh", "rnn", 1024, 16, 200, {"recorded/torch": 0.8}),
)
RATIOS = (("recorded", "torch"), ("lean", "torch"), ("lean", "floor"), ("recorded", "floor"))
WAYS = ("recorded", "lean", "floor", "torch")
FULL = {"repeats": 5}
QUICK = {"repeats": 3}
QUICK_STEP_DIVISOR = 5
CLI_REPEATS = 5
CLI_TIMEOUT = 120.0
CLI_COMMANDS = (("bptt-lab --help", ["--help"]), ("bptt-lab run seed-explode --format json", ["run", "seed-explode", "--format", "json"]))
RESULTS = HERE / "results" / "latest.json"

# Gradient check: elementwise |other - engine| <= atol + rtol * |engine|, with
# atol a tiny fraction of the parameter's largest entry (entries ~1e10 below
# it come out of long cancelling sums, so a pure relative test on them only
# measures summation order: per-step accumulation vs one matmul).
GRAD_RTOL = 1e-9  # floor and PyTorch
GRAD_ATOL_SCALE = 1e-12
LEAN_RTOL = 1e-13  # the engine's own gradient-only path: the same numbers up to summation order
LEAN_ATOL_SCALE = 1e-13
LOSS_RTOL = 1e-12


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- 4. machine context -----------------------------------------------------------


def machine(torch_peer) -> dict:
    blas = "unknown"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy or an unusual build: not worth failing for
        pass
    threads = {k: os.environ[k] for k in THREAD_VARS if k in os.environ}
    pools = None
    if threadpoolctl is not None:
        pools = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "filepath")} for p in threadpoolctl.threadpool_info()]
    return {
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "blas": blas,
        "threads": THREADS,
        "blas_thread_env": threads,
        "threadpool_pools": pools,
        "openblas_reports_threads": _openblas_threads(),
        "torch": torch_peer.torch.__version__ if torch_peer else None,
        "torch_threads": torch_peer.torch.get_num_threads() if torch_peer else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": _loadavg(),
    }


def _openblas_threads() -> int | None:
    """The thread count numpy's bundled OpenBLAS reports (a check that the variables
    took effect), or None for another BLAS or layout."""
    import ctypes

    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for lib in sorted(libs.glob("libscipy_openblas*")) if libs.is_dir() else []:
        for symbol in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads"):
            try:
                return int(getattr(ctypes.CDLL(str(lib)), symbol)())
            except (OSError, AttributeError):
                continue
    return None


def _loadavg() -> list[float] | None:
    """1/5/15-minute load: other work on a small machine shows up in every timing."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def load_peer():
    """bench/torch_peer.py with torch limited to THREADS, or None without torch."""
    try:
        import torch_peer
    except ImportError as exc:
        log(f"[torch] not available ({exc}); `make bench` installs the bench extra. The PyTorch column is n/a.")
        return None
    torch_peer.torch.set_num_threads(THREADS)
    return torch_peer


# -- 1. recorded, lean, floor and PyTorch ------------------------------------------------


def bench_config(cell: str, hidden: int, batch: int, steps: int) -> Config:
    return Config(cell=cell, hidden=hidden, batch=batch, steps=steps)


def floor_applies(c: Config) -> None:
    """The floor and the peer implement exactly this slice of the engine; refuse anything else."""
    want = {"mode": "bptt", "loss": "mse", "loss_on": "last", "clip": "none", "truncate": 0}
    if c.cell == "rnn":
        want["activation"] = "tanh"
    wrong = {k: getattr(c, k) for k, v in want.items() if getattr(c, k) != v}
    if wrong or c.cell not in FLOORS:
        raise SystemExit(f"the floor does not implement this config: {wrong or c.cell}")




def time_recorded(config: Config, params, inputs, targets) -> tuple[dict, Run]:
    """RECORDED is `Run(...)` (forward pass) + stepping to the end (gradients and
    every stepped record). What a record shows of the forward pass alone
    (sigma of each Jacobian, saturation, gate mean, the bound) is computed when
    read: timed apart, reading it for every record, as is `summary()` (the
    spectrum of W_hh: SVD and eigenvalues)."""
    t0 = time.perf_counter()
    run = Run(config, params, inputs, targets)
    t1 = time.perf_counter()
    run.advance(config.steps)
    t2 = time.perf_counter()
    for name in ON_READ:
        run.records.columns[name]
    t3 = time.perf_counter()
    run.summary()
    t4 = time.perf_counter()
    return {"forward": t1 - t0, "backward": t2 - t1, "read_all": t3 - t2, "summary": t4 - t3}, run


def time_lean(config: Config, params, inputs, targets) -> tuple[float, float, dict]:
    t0 = time.perf_counter()
    loss, grads = LEAN(config, params, inputs, targets)
    return time.perf_counter() - t0, loss, grads


def time_floor(cell: str, params, inputs, targets) -> tuple[float, float, dict]:
    floor = FLOORS[cell]
    t0 = time.perf_counter()
    loss, grads = floor(params, inputs, targets)
    return time.perf_counter() - t0, loss, grads


def time_torch(peer) -> tuple[float, float]:
    peer.zero_grad()
    t0 = time.perf_counter()
    loss = peer.step()
    return time.perf_counter() - t0, loss


def check_grads(name: str, who: str, run: Run, loss: float, grads: dict, rtol: float, atol_scale: float) -> dict:
    """`who` must compute the engine's numbers, or the comparison means nothing."""
    engine_grads = run.grads_raw
    if set(grads) != set(engine_grads):
        raise SystemExit(f"{name}: {who} gradients {sorted(grads)} != engine gradients {sorted(engine_grads)}")
    if not np.isclose(loss, run.loss, rtol=LOSS_RTOL, atol=0.0):
        raise SystemExit(f"{name}: {who} loss {loss!r} != engine loss {run.loss!r}")
    report = {"loss": run.loss, "rtol": rtol, "atol_scale": atol_scale, "params": {}}
    for key, e in engine_grads.items():
        f = np.asarray(grads[key])
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        ok = f.shape == e.shape and bool(np.all(np.isfinite(f))) and np.allclose(f, e, rtol=rtol, atol=atol_scale * scale)
        worst = float(np.max(np.abs(f - e))) / scale if scale > 0 and f.shape == e.shape else float("nan")
        report["params"][key] = {"max_abs": scale, "max_abs_diff_over_max_abs": worst}
        if not ok:
            raise SystemExit(f"{name}: {who} gradient {key} differs from the engine's grads_raw (max |diff| / max |g| = {worst:.3g})")
    return report


def _median(xs: list[float] | None) -> float | None:
    return statistics.median(xs) if xs else None


def bench_case(spec: tuple, quick: bool, repeats: int, peer_mod) -> dict:
    name, cell, hidden, batch, full_steps, targets = spec
    steps = max(1, full_steps // QUICK_STEP_DIVISOR) if quick else full_steps
    label = f"{name} H={hidden} N={batch} T={steps}"
    config = bench_config(cell, hidden, batch, steps)
    floor_applies(config)
    params = init_params(config)
    inputs, targets_data = make_data(config)

    log(f"[{label}] warm-up and gradient checks")
    checks = {}
    gc.collect()
    _, run = time_recorded(config, params, inputs, targets_data)
    if LEAN is not None:
        gc.collect()
        _, loss, grads = time_lean(config, params, inputs, targets_data)
        checks["lean"] = check_grads(label, "lean path", run, loss, grads, LEAN_RTOL, LEAN_ATOL_SCALE)
    gc.collect()
    _, loss, grads = time_floor(cell, params, inputs, targets_data)
    checks["floor"] = check_grads(label, "floor", run, loss, grads, GRAD_RTOL, GRAD_ATOL_SCALE)
    peer = None
    if peer_mod is not None:
        peer = peer_mod.Peer(cell, params, inputs, targets_data)
        gc.collect()
        _, loss = time_torch(peer)
        checks["torch"] = check_grads(label, "PyTorch", run, loss, peer.grads(), GRAD_RTOL, GRAD_ATOL_SCALE)
        peer.zero_grad()
    del run, grads

    times = {w: [] for w in WAYS}
    parts = {"forward": [], "backward": [], "read_all": [], "summary": []}
    for r in range(repeats):
        gc.collect()
        part, run = time_recorded(config, params, inputs, targets_data)
        del run
        for key, value in part.items():
            parts[key].append(value)
        times["recorded"].append(part["forward"] + part["backward"])
        if LEAN is not None:
            gc.collect()
            t, _, grads = time_lean(config, params, inputs, targets_data)
            del grads
            times["lean"].append(t)
        gc.collect()
        t, _, grads = time_floor(cell, params, inputs, targets_data)
        del grads
        times["floor"].append(t)
        if peer is not None:
            gc.collect()
            t, _ = time_torch(peer)
            peer.zero_grad()
            times["torch"].append(t)
        log(f"[{label}] repeat {r + 1}/{repeats}: " + ", ".join(f"{w} {ts[-1]:.3f}s" for w, ts in times.items() if ts))
    medians = {w: _median(ts) for w, ts in times.items()}
    ratios = {f"{a}/{b}": medians[a] / medians[b] if medians[a] and medians[b] else None for a, b in RATIOS}
    floor_med = medians["floor"]
    return {
        "case": name,
        "label": label,
        "config": {"cell": cell, "hidden": hidden, "batch": batch, "steps": steps},
        "repeats": repeats,
        "threads": THREADS,
        "times_s": times,
        "medians_s": medians,
        "lean": "ok" if LEAN is not None else LEAN_MISSING,
        "torch": "ok" if peer is not None else "n/a (torch not installed)",
        "ratios": ratios,
        "targets": {k: {"target": v, "ratio": ratios[k], "met": None if ratios[k] is None else ratios[k] <= v} for k, v in targets.items()},
        "recorded_parts_s": parts,
        "recorded_parts_median_s": {key: statistics.median(v) for key, v in parts.items()},
        "everything_over_torch": (
            statistics.median([sum(p) for p in zip(*parts.values())]) / medians["torch"] if medians["torch"] else None
        ),
        "gradient_checks": checks,
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


def _s(x: float | None, missing: str = "n/a") -> str:
    return f"{x:.3f}" if x is not None else missing


def _ratio_cell(c: dict, key: str) -> str:
    r = c["ratios"][key]
    t = c["targets"].get(key)
    text = f"{r:.2f}x" if r is not None else "n/a"
    if t is not None:
        text += f" (target <= {t['target']:g}x" + ("" if t["met"] is None else ": met" if t["met"] else ": missed") + ")"
    return text


def markdown(ctx: dict, cases: list[dict], cli: list[dict], mode: str) -> str:
    torch_part = f" | torch {ctx['torch']} ({ctx['torch_threads']} threads)" if ctx["torch"] else " | torch not installed"
    lines = [
        f"Machine: {ctx['cpu_count']} CPUs | numpy {ctx['numpy']} (BLAS: {ctx['blas']}) | Python {ctx['python']}{torch_part}"
        + f" | threads {ctx['threads']} ({' '.join(f'{k}={v}' for k, v in ctx['blas_thread_env'].items())}"
        + (", threadpoolctl" if ctx["threadpool_pools"] else "")
        + (f"; OpenBLAS reports {ctx['openblas_reports_threads']}" if ctx["openblas_reports_threads"] is not None else "")
        + ")"
        + (f" | load average at start {ctx['load_average_at_start'][0]:.2f}" if ctx["load_average_at_start"] else "")
        + (f", at end {ctx['load_average_at_end'][0]:.2f}" if ctx.get("load_average_at_end") else ""),
        "",
    ]
    if cases:
        c0 = cases[0]
        lines += [
            f"Recorded, lean, floor and PyTorch ({mode}; float64; {ctx['threads']} threads each; median of {c0['repeats']} "
            f"interleaved repeats after one warm-up each; gradients checked equal to the engine's first: floor and PyTorch "
            f"rtol {GRAD_RTOL:g}, lean rtol {LEAN_RTOL:g})",
            "",
            "| shape | recorded (s) | lean (s) | floor (s) | PyTorch (s) | recorded / PyTorch | lean / PyTorch | lean / floor | recorded / floor |",
            "|---|---:|---:|---:|---:|---|---|---|---|",
        ]
        for c in cases:
            m = c["medians_s"]
            lines.append(
                f"| {c['label']} | {_s(m['recorded'])} | {_s(m['lean'], c['lean'])} | {_s(m['floor'])} | {_s(m['torch'], c['torch'])} | "
                + " | ".join(_ratio_cell(c, f"{a}/{b}") for a, b in RATIOS)
                + " |"
            )
        lines += [
            "",
            "Where the recorded path's time goes, and what a reader adds (medians): reading sigma, saturation, gate "
            "mean and the bound for every record (computed on read), and `summary()` (the spectrum of W_hh)",
            "",
            "| shape | forward `Run(...)` (s) | stepping to the end (s) | reading every record (s) | summary (s) | all of it / PyTorch |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for c in cases:
            p = c["recorded_parts_median_s"]
            everything = c["everything_over_torch"]
            lines.append(
                f"| {c['label']} | {p['forward']:.3f} | {p['backward']:.3f} | {p['read_all']:.3f} | {p['summary']:.3f} | "
                + (f"{everything:.2f}x |" if everything is not None else "n/a |")
            )
        lines.append("")
    if cli:
        lines += [f"CLI wall time (median of {CLI_REPEATS} runs after one untimed run)", "", "| command | median wall (s) |", "|---|---:|"]
        for c in cli:
            value = f"{c['median_s']:.3f}" if c["error"] is None else f"n/a (command failed: {c['error']})"
            lines.append(f"| `{c['command']}` | {value} |")
        lines.append("")
    if cases:
        met, missed, unknown = [], [], []
        for c in cases:
            for key, t in c["targets"].items():
                item = f"{c['label']} {key} <= {t['target']:g}x"
                if t["met"] is None:
                    unknown.append(item)
                elif t["met"]:
                    met.append(f"{item} ({t['ratio']:.2f}x)")
                else:
                    missed.append(f"{item} ({t['ratio']:.2f}x)")
        lines.append(f"Targets (reported, not enforced{'; judged on the full run, this is --quick' if mode == 'quick' else ''}):")
        lines.append(f"- met: {'; '.join(met) or 'none'}")
        lines.append(f"- missed: {'; '.join(missed) or 'none'}")
        if unknown:
            lines.append(f"- not measurable here: {'; '.join(unknown)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"T / {QUICK_STEP_DIVISOR}, {QUICK['repeats']} repeats")
    ap.add_argument("--repeats", type=int, default=None, help=f"timed repeats per case (default {FULL['repeats']}, or {QUICK['repeats']} with --quick)")
    ap.add_argument("--threads", type=int, default=THREADS, help="threads for numpy's BLAS and for torch (default: the CPU count)")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI wall-time measurements")
    ap.add_argument("--no-tui", action="store_true", help="skip the dashboard measurements")
    args = ap.parse_args(argv)
    preset = QUICK if args.quick else FULL
    repeats = args.repeats or preset["repeats"]
    mode = "quick" if args.quick else "full"

    started = time.perf_counter()
    peer_mod = load_peer()
    ctx = machine(peer_mod)
    log(
        f"[threads] {THREADS}: {' '.join(f'{k}={v}' for k, v in ctx['blas_thread_env'].items())} set before numpy's import"
        + (f"; threadpoolctl limits {len(ctx['threadpool_pools'])} pool(s)" if ctx["threadpool_pools"] else "; threadpoolctl not installed")
        + (f"; OpenBLAS reports {ctx['openblas_reports_threads']}" if ctx["openblas_reports_threads"] is not None else "")
        + (f"; torch.set_num_threads({THREADS}) -> {ctx['torch_threads']}" if peer_mod else "")
    )
    if LEAN is None:
        log(f"[lean] {LEAN_MISSING}")
    cases = [bench_case(spec, args.quick, repeats, peer_mod) for spec in CASES]
    training = None
    if peer_mod is not None:
        log("[train] one training update, engine against PyTorch")
        import train_update

        training = train_update.main(repeats=10 if args.quick else 30)
    cli = [] if args.no_cli else [bench_cli(label, a, CLI_REPEATS) for label, a in CLI_COMMANDS]
    tui = None
    if not args.no_tui:
        log("[tui] redraw frames at 100 and 100,000 steps; run to the end of T = 100,000")
        import tui_frames

        tui = tui_frames.main()
    total = time.perf_counter() - started
    ctx["load_average_at_end"] = _loadavg()

    print(markdown(ctx, cases, cli, mode))
    if training is not None:
        print("\n" + train_update.markdown(training))
    if tui is not None:
        print(
            "\nDashboard (the app under Pilot at 120 x 40, median of 30 frames; a frame = the redraw plus the chart's plotext build)\n\n"
            "| measure | value |\n|---|---:|\n"
            f"| frame with 100 steps of history | {1e3 * tui['frame_100_s']:.2f} ms |\n"
            f"| frame with 100,000 steps of history | {1e3 * tui['frame_100k_s']:.2f} ms |\n"
            f"| ratio (target <= 1.5x) | {tui['frame_ratio']:.2f}x |\n"
            f"| run to the end of a T = 100,000 chain | {tui['run_to_end_100k_s']:.1f} s |\n"
            f"| the engine alone on the same run: stepping, and stepping plus the numbers the log shows | "
            f"{tui['engine_stepping_100k_s']:.1f} s, {tui['engine_with_log_numbers_100k_s']:.1f} s |\n"
            f"| run to the end / the engine alone | {tui['run_to_end_over_engine']:.2f}x |\n"
            f"| peak RSS of a process doing only that run (Python and Textual included) | {tui['peak_rss_mib']:.0f} MiB |\n"
            f"| its RSS at each 10% of the run | {' '.join(f'{x:.0f}' for x in tui['rss_every_10pct_mib'])} MiB |\n"
            f"| first frame of a large run (lstm H=256 T=5000, built in a worker) | {tui['first_frame_large_s']:.2f} s (run ready after {tui['large_run_ready_s']:.1f} s) |"
        )
    print(f"\nBenchmark wall time: {total:.1f} s ({mode})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "mode": mode,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": ctx,
        "targets": {f"{c[0]} H={c[2]} N={c[3]} T={c[4]}": c[5] for c in CASES},
        "cases": cases,
        "cli": cli,
        "training_update": training,
        "tui": tui,
        "total_wall_s": total,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {RESULTS.relative_to(ROOT)} ({total:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
