"""The phase diagram (issue 11): the mean log growth per step of the backward
norm over a grid of two settings, one backward pass per grid cell.

    x, y = parse_axis("scale=0.25:2.5:40"), parse_axis("activation=tanh,relu,sigmoid")
    grid = Grid.build(preset_config, x, y, explicit={"hidden": 64})   # every cell's Config, validated
    sweep = run_grid(grid, jobs=2, progress=lambda done, total: ...)   # worker processes
    sweep.to_dict()                                                    # JSON: SCHEMA

What a cell reports (`log10_growth`, g): the mean over the backward pass of
log10 of the per-step ratio ||dL/dh_{T-k}|| / ||dL/dh_{T-k+1}|| (the step's
norm before any clip over the previous step's after it), over the steps whose
ratio is finite and not cut by truncation: log10 of what the dashboard's
summary calls the growth per step (`Run.mean_growth()`, a geometric mean).
With the loss on the last step and no clipping it is
(log10 ||dL/dh_0|| - log10 ||dL/dh_T||) / T. g < 0: the gradient vanishes
(by a factor 10^g per step); g > 0: it explodes. A pass that overflows
reports the growth up to the overflow (status `overflow`, `overflow_k`); a
gradient that becomes exactly 0 has g = -inf (status `zero`, JSON null).

Each cell is its own Config, seeded by the config's seed, so a scale axis
multiplies one and the same drawn W_hh: sigma_max(W_hh) * gamma and the
spectral radius are then exactly linear in the scale, and where they cross 1
is found per row by linear interpolation between the two cells around it
(exact for a scale or spectral_radius axis; an interpolation otherwise).

Cells are computed in worker processes (`run_grid`), each with one BLAS
thread (set in the environment they start with, before numpy loads), a chunk
of cells at a time; the results are put back in grid order, so they do not
depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backward import Backward
from .clipping import make_rule
from .config import SPEC, Config, ConfigError
from .data import make_data
from .forward import forward
from .model import Model
from .norms import norm as l2

SCHEMA = "bptt-lab.sweep/1"
MAX_VALUES = 400  # values on one axis
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# Free text and files: not something a grid can range over.
NOT_SWEEPABLE = ("text", "weights", "weights_prefix")
QUANTITY = "log10 growth per step: mean over the backward pass of log10(|dL/dh_(T-k)| / |dL/dh_(T-k+1)|)"
STATUSES = ("ok", "overflow", "zero", "undetermined")


class SweepError(ValueError):
    """An axis or a file that cannot be used; the message names what and why."""


# -- the axes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One setting of the grid and its values, in order. spacing: linear, log or list."""

    field: str
    values: tuple
    spacing: str = "list"

    @property
    def numeric(self) -> bool:
        return SPEC[self.field].kind in (int, float)

    def label(self, i: int) -> str:
        v = self.values[i]
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    def to_dict(self) -> dict:
        return {"field": self.field, "values": list(self.values), "spacing": self.spacing}


_RANGE = re.compile(r"(?P<lo>[^:]+):(?P<hi>[^:]+):(?P<n>[^:]+)(?::(?P<log>log))?")


def parse_axis(text: str) -> Axis:
    """FIELD=MIN:MAX:N (linear), FIELD=MIN:MAX:N:log, or FIELD=A,B,C (a list: any field)."""
    name, eq, spec = text.partition("=")
    name = name.strip().replace("-", "_")
    if not eq or not name or not spec.strip():
        raise SweepError(f"'{text}' is not FIELD=MIN:MAX:N or FIELD=A,B,... (e.g. scale=0.5:2:40, activation=tanh,relu)")
    if name not in SPEC:
        raise SweepError(f"unknown setting '{name}' (one of: {', '.join(n for n in SPEC if n not in NOT_SWEEPABLE)})")
    field = SPEC[name]
    if name in NOT_SWEEPABLE or (field.kind is str and not field.choices):
        raise SweepError(f"{name} cannot be swept (a grid ranges over numbers or choices)")
    match = _RANGE.fullmatch(spec.strip())
    if match and field.kind is not str:
        values, spacing = _range(name, match)
    else:
        values, spacing = tuple(_value(name, v.strip()) for v in spec.split(",")), "list"
    if len(values) < 2:
        raise SweepError(f"{name}: an axis needs at least two values, got {len(values)}")
    if len(set(values)) < len(values):
        raise SweepError(f"{name}: the values repeat ({spec.strip()}); give each once")
    if len(values) > MAX_VALUES:
        raise SweepError(f"{name}: at most {MAX_VALUES} values on an axis, got {len(values)}")
    return Axis(name, values, spacing)


def _number(name: str, text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise SweepError(f"{name}: '{text}' is not a number") from None
    if not math.isfinite(x):
        raise SweepError(f"{name}: '{text}' is not a finite number")
    return x


def _value(name: str, text: str):
    field = SPEC[name]
    if field.kind is str:
        if text not in field.choices:
            raise SweepError(f"{name}: '{text}' is not one of {', '.join(field.choices)}")
        return text
    x = _number(name, text)
    if field.kind is int:
        if not x.is_integer():
            raise SweepError(f"{name}: '{text}' is not an integer")
        return int(x)
    return x


def _range(name: str, match) -> tuple[tuple, str]:
    lo, hi = _number(name, match["lo"]), _number(name, match["hi"])
    try:
        n = int(match["n"])
    except ValueError:
        raise SweepError(f"{name}: the number of values '{match['n']}' is not an integer") from None
    if not lo < hi:
        raise SweepError(f"{name}: the range {match['lo']}:{match['hi']} is empty: give MIN < MAX")
    if n < 2:
        raise SweepError(f"{name}: an axis needs at least two values, got {n}")
    if n > MAX_VALUES:
        raise SweepError(f"{name}: at most {MAX_VALUES} values on an axis, got {n}")
    log = match["log"] is not None
    if log and lo <= 0:
        raise SweepError(f"{name}: a log-spaced range needs MIN > 0, got {match['lo']}")
    grid = np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n)
    if SPEC[name].kind is int:
        return _whole(name, match, grid, lo, hi, n, log), "log" if log else "linear"
    return tuple(float(v) for v in grid), "log" if log else "linear"


def _whole(name: str, match, grid: np.ndarray, lo: float, hi: float, n: int, log: bool) -> tuple[int, ...]:
    """An integer setting's range: every value whole (to round-off), or refused
    naming the first that is not and how to get whole ones. Never rounded: a
    rounded range is not the linear or log spacing it says it is, and its
    crossings would be interpolated between sizes it did not ask for."""
    near = np.rint(grid)
    off = np.abs(grid - near) > 1e-9 * np.maximum(1.0, np.abs(grid))
    if not off.any():
        return tuple(int(v) for v in near)
    spec = f"{match['lo']}:{match['hi']}:{match['n']}" + (":log" if log else "")
    listed = ",".join(str(int(v)) for v in dict.fromkeys(near))
    fix = f"list them: {name}={listed}"
    if not log and lo.is_integer() and hi.is_integer():
        span = int(hi - lo)
        counts = [k + 1 for k in range(1, min(span, MAX_VALUES - 1) + 1) if span % k == 0]  # whole steps
        best = min(counts, key=lambda c: (abs(c - n), -c))
        fix = f"pick N so the steps are whole ({match['lo']}:{match['hi']}:{best}) or {fix}"
    raise SweepError(f"{name} takes whole numbers: {spec} gives {grid[off][0]:.6g}; {fix}")


# -- the grid -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """configs[i][j]: the Config of row i (y.values[i]) and column j (x.values[j])."""

    base: Config
    x: Axis
    y: Axis
    configs: tuple[tuple[Config, ...], ...]

    @classmethod
    def build(cls, preset_config: Config, x: Axis, y: Axis, explicit: dict | None = None, sizes: dict | None = None) -> Grid:
        """Each cell is the preset's config with the user's explicit settings and
        the cell's two values, applied together (as `run` applies flags), so a
        setting that does not apply to a cell is an error, never dropped."""
        explicit = dict(explicit or {})
        if x.field == y.field:
            raise SweepError(f"--x and --y are both {x.field}: give two different settings")
        for axis, flag in ((x, "--x"), (y, "--y")):
            if axis.field in explicit:
                raise SweepError(f"{axis.field} is the {flag} axis: it cannot also be given as a setting")
        base = preset_config.with_overrides(sizes=sizes, **explicit)
        rows = []
        for yv in y.values:
            row = []
            for xv in x.values:
                try:
                    row.append(preset_config.with_overrides(sizes=sizes, **explicit, **{x.field: xv, y.field: yv}))
                except ConfigError as exc:
                    raise SweepError(f"the cell {x.field}={xv}, {y.field}={yv}: {exc.message}") from None
            rows.append(tuple(row))
        return cls(base, x, y, tuple(rows))

    def flat(self) -> list[Config]:
        """The cells in grid order: row by row."""
        return [c for row in self.configs for c in row]


# -- one cell -------------------------------------------------------------------------------


class _Skipped:
    """The accumulate stage, skipped: the growth needs the carried gradient's norms only
    (the parameter gradients do not feed back into them)."""

    def add(self, *args) -> None:
        return None


def measure(config: Config) -> dict:
    """One cell: the forward pass and the backward pass without records or
    parameter gradients (the carried dL/dh is the same as a Run's), the growth
    and the spectrum of W_hh."""
    model = Model.from_config(config)
    inputs, targets = make_data(config)
    T, N = config.steps, config.batch
    before, after, cut = np.empty(T), np.empty(T), np.zeros(T, dtype=bool)
    with np.errstate(all="ignore"):
        trace = forward(model, inputs, targets)
        back = Backward(model, trace, _Skipped(), make_rule(config.clip, config.clip_threshold))
        start = l2(trace.injection[T], N)
        for i in range(T):
            step = back.step()
            before[i], after[i], cut[i] = step.before, step.norm, step.cut
        cell = _growth(start, before, after, cut)
    cell["forward_overflow_t"] = trace.overflow_t
    if trace.overflow_t is not None:
        cell["status"] = "overflow"
    cell.update(_spectrum(model, config))
    return cell


def _growth(start: float, before: np.ndarray, after: np.ndarray, cut: np.ndarray) -> dict:
    previous = np.concatenate(([start], after[:-1]))
    ratio = np.where(previous > 0, before / np.where(previous > 0, previous, 1.0), np.nan)
    r = ratio[np.isfinite(ratio) & ~cut]
    bad = np.flatnonzero(~np.isfinite(after))
    overflow_k = int(bad[0]) + 1 if bad.size else None
    if r.size and np.any(r == 0.0):
        g, status = -math.inf, "zero"  # a zero factor: the gradient became exactly 0
    elif r.size == 0:
        g, status = math.nan, "undetermined"
    else:
        g, status = float(np.mean(np.log10(r))), "ok"
    if overflow_k is not None:
        status = "overflow"
    return {
        "log10_growth": g,
        "growth": 10.0**g if math.isfinite(g) else (0.0 if g == -math.inf else math.nan),
        "status": status,
        "steps_measured": int(r.size),
        "overflow_k": overflow_k,
        "start_norm": float(start),
        "final_norm": float(after[-1]),
    }


def _spectrum(model: Model, config: Config) -> dict:
    sp = model.spectrum()
    gamma = config.gamma
    return {
        "sigma_max": sp["sigma_max"],
        "gamma": gamma,
        "sigma_gamma": sp["sigma_max"] * gamma if gamma is not None else None,
        "spectral_radius": sp["block_radii"][0] if config.gates == 1 else None,
    }


# -- the cells in worker processes -------------------------------------------------------------


def _measure_at(item: tuple[int, Config]) -> tuple[int, dict | str]:
    """A cell, or what its config refused (a weight drawn that cannot be used): said, not raised, across the pipe."""
    i, config = item
    try:
        return i, measure(config)
    except ConfigError as exc:
        return i, exc.message


def _serve(conn) -> None:
    """A worker: chunks of (i, config) in, their cells out, until None or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the command, which ends the workers itself
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # started blocked: a pending one is dropped
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        conn.send([_measure_at(item) for item in chunk])


@contextlib.contextmanager
def _worker_environment():
    """Workers start with one BLAS thread each (read when numpy loads in them)
    and with SIGINT blocked until they ignore it; this process's own settings
    come back afterwards."""
    saved = {name: os.environ.get(name) for name in THREAD_VARS}
    os.environ.update(dict.fromkeys(THREAD_VARS, "1"))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    # A spawned worker runs the program's main module again before its first
    # task unless that module is hidden from it: the workers need nothing from
    # it (their task is this module's), and a script without a __main__ guard
    # would start workers of its own in them.
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Workers:
    """Spawned worker processes, each with a pipe of its own: no queue or lock is
    shared, so ending them at any moment (Ctrl-C) cannot leave one held."""

    def __init__(self, jobs: int):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.procs, self.conns = [], []
        for _ in range(jobs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(theirs,), daemon=True)
            self.procs.append(proc)  # before start: a stop during it still ends it
            self.conns.append(mine)
            proc.start()
            theirs.close()

    def end(self) -> None:
        """Terminate any worker still running and wait for all."""
        for proc in self.procs:
            if proc.pid is not None and proc.exitcode is None:
                proc.terminate()
        for proc in self.procs:
            if proc.pid is not None:
                proc.join()
        for conn in self.conns:
            conn.close()


def _chunks(configs: list[Config], jobs: int) -> list[list[tuple[int, Config]]]:
    items = list(enumerate(configs))
    size = max(1, min(16, len(items) // (jobs * 8)))
    return [items[k : k + size] for k in range(0, len(items), size)]


def _collect(conn, busy: dict, todo, out: list) -> int:
    """A worker's finished chunk into `out`, and its next chunk (or None: done) to it; how many cells came."""
    proc = busy[conn]
    try:
        if not conn.poll():
            raise EOFError
        results = conn.recv()
        chunk = next(todo, None)
        conn.send(chunk)
    except (EOFError, OSError):
        proc.join(1.0)
        code = f" (exit code {proc.exitcode})" if proc.exitcode is not None else ""
        raise SweepError(f"a worker process ended unexpectedly{code}") from None
    if chunk is None:
        del busy[conn]
    for i, cell in results:
        out[i] = cell
    return len(results)


def run_cells(configs: list[Config], jobs: int, progress: Callable[[int, int], None] | None = None, hold=contextlib.nullcontext) -> list[dict]:
    """measure() of each config in `jobs` worker processes, a chunk at a time;
    results in the order given. progress(done, total) after each chunk. Any
    exception here (Ctrl-C included) ends the workers before it goes on.
    `hold()`: a context in which a stop signal is held back (the caller's),
    around starting the workers."""
    from multiprocessing.connection import wait

    total = len(configs)
    out: list = [None] * total
    todo = iter(_chunks(configs, max(1, min(jobs, total))))
    workers = None
    try:
        with hold(), _worker_environment():  # a stop held here is raised on the way out: the workers are ended below
            workers = _Workers(max(1, min(jobs, total)))
        busy = {}
        for conn, proc in zip(workers.conns, workers.procs):
            chunk = next(todo, None)
            if chunk is not None:
                conn.send(chunk)
                busy[conn] = proc
        done = 0
        while busy:
            ready = wait([*busy, *(p.sentinel for p in busy.values())])
            for conn in [c for c in busy if c in ready or busy[c].sentinel in ready]:
                done += _collect(conn, busy, todo, out)
                if progress is not None:
                    progress(done, total)
    finally:
        if workers is not None:
            workers.end()
    refused = [i for i, cell in enumerate(out) if isinstance(cell, str)]
    if refused:
        raise CellError(refused[0], out[refused[0]])  # the first in grid order, whatever the workers' timing
    return out


class CellError(Exception):
    """Cell i (in grid order) could not be computed: its config refused something."""

    def __init__(self, i: int, message: str):
        super().__init__(message)
        self.i, self.message = i, message


def run_grid(grid: Grid, jobs: int, progress=None, hold=contextlib.nullcontext) -> Sweep:
    """Every cell of the grid (SweepError naming the cell if one cannot be computed)."""
    try:
        cells = run_cells(grid.flat(), jobs, progress, hold)
    except CellError as exc:
        i, j = divmod(exc.i, len(grid.x.values))
        raise SweepError(f"the cell {grid.x.field}={grid.x.values[j]}, {grid.y.field}={grid.y.values[i]}: {exc.message}") from None
    nx = len(grid.x.values)
    return Sweep(grid.base, grid.x, grid.y, [cells[i : i + nx] for i in range(0, len(cells), nx)])


# -- the result ---------------------------------------------------------------------------------


def crossings(coords, values, level: float) -> list[float]:
    """Where the piecewise-linear interpolation of values (at coords) crosses
    `level`: a coordinate per sign change between neighbours, or a point
    exactly at the level. A non-finite value (or None) breaks the line."""
    out: list[float] = []

    def add(x) -> None:
        if not out or out[-1] != x:
            out.append(float(x))

    finite = [v is not None and math.isfinite(v) for v in values]
    for j, a in enumerate(values):
        if not finite[j]:
            continue
        if a == level:
            add(coords[j])
        elif j + 1 < len(values) and finite[j + 1] and (a - level) * (values[j + 1] - level) < 0:
            add(coords[j] + (level - a) * (coords[j + 1] - coords[j]) / (values[j + 1] - a))
    return out


# What the lines are drawn for: (key in a cell, level, what it means).
LINES = (
    ("sigma_gamma", 1.0, "sigma_max*gamma = 1"),
    ("spectral_radius", 1.0, "spectral radius = 1"),
    ("log10_growth", 0.0, "observed growth = 1 per step"),
)


@dataclass
class Sweep:
    """A computed (or read) sweep: cells[i][j] is row i (y) and column j (x)."""

    base: Config | dict
    x: Axis
    y: Axis
    cells: list[list[dict]]
    preset: str | None = None

    @property
    def along(self) -> str | None:
        """The axis the lines are found along: x when numeric, else y when numeric."""
        return "x" if self.x.numeric else "y" if self.y.numeric else None

    def lines(self) -> dict:
        """{key: one list of crossings per row (along x) or per column (along y)}."""
        along = self.along
        if along is None:
            return {key: [] for key, _, _ in LINES}
        axis = self.x if along == "x" else self.y
        strips = self.cells if along == "x" else [list(col) for col in zip(*self.cells)]
        return {key: [crossings(axis.values, [c[key] for c in strip], level) for strip in strips] for key, level, _ in LINES}

    def to_dict(self) -> dict:
        from .export import finite_or_none

        base = self.base.to_dict() if isinstance(self.base, Config) else self.base
        return finite_or_none(
            {
                "schema": SCHEMA,
                "preset": self.preset,
                "quantity": QUANTITY,
                "config": base,
                "x": self.x.to_dict(),
                "y": self.y.to_dict(),
                "cells": self.cells,
                "lines": {"along": self.along, **self.lines()},
            }
        )

    @classmethod
    def from_dict(cls, doc: Any) -> Sweep:
        """A sweep read back from its JSON (SweepError naming what is wrong)."""
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise SweepError(f"not a bptt-lab sweep (its schema is not {SCHEMA})")
        x, y = _read_axis(doc.get("x"), "x"), _read_axis(doc.get("y"), "y")
        cells = doc.get("cells")
        if not isinstance(cells, list) or len(cells) != len(y.values) or any(not isinstance(r, list) or len(r) != len(x.values) for r in cells):
            raise SweepError(f"its cells are not {len(y.values)} rows of {len(x.values)}")
        return cls(doc.get("config") or {}, x, y, [[_read_cell(c) for c in row] for row in cells], doc.get("preset"))


def _read_axis(d: Any, name: str) -> Axis:
    if not isinstance(d, dict) or d.get("field") not in SPEC or not isinstance(d.get("values"), list) or len(d["values"]) < 2:
        raise SweepError(f"its {name} axis is not a setting with two values or more")
    kind = SPEC[d["field"]].kind
    ok = all(isinstance(v, str) for v in d["values"]) if kind is str else all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in d["values"])
    if not ok:
        raise SweepError(f"its {name} axis ({d['field']}) has values of the wrong kind")
    return Axis(d["field"], tuple(d["values"]), str(d.get("spacing", "list")))


_CELL_NUMBERS = ("log10_growth", "growth", "sigma_max", "gamma", "sigma_gamma", "spectral_radius", "start_norm", "final_norm")


def _read_cell(c: Any) -> dict:
    """JSON's nulls back to what they stood for: a zero gradient's -inf, else NaN (None where not applicable)."""
    if not isinstance(c, dict) or c.get("status") not in STATUSES:
        raise SweepError("a cell is not a sweep cell (no known status)")
    out = dict(c)
    for key in _CELL_NUMBERS:
        v = c.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise SweepError(f"a cell's {key} is not a number")
        if key in ("log10_growth", "growth"):
            out[key] = float(v) if v is not None else (-math.inf if key == "log10_growth" and c["status"] == "zero" else (0.0 if c["status"] == "zero" else math.nan))
    return out


__all__ = ["SCHEMA", "Axis", "Grid", "Sweep", "SweepError", "crossings", "measure", "parse_axis", "run_cells", "run_grid"]
