"""The cliff (SPEC section 9, issue 11): the one-unit model's error surface, its
gradient, the bifurcation of its fixed points and SGD with and without norm
clipping. A screen of the dashboard (key l) and `bptt-lab cliff`.

The cliff runs on a `CliffSetting` (engine/cliff.py), not on the run on show:
its two parameters are the whole model. The default, `CLIFF_DEFAULT`, costs
about 0.05 s to compute (the grid's 121 x 121 BPTT passes); the screen
computes it once per process in a worker thread and draws it on every resize.
"""


import dataclasses
import json
import math
from pathlib import Path
from typing import Annotated

import typer

from engine import cliff as model
from engine.cliff import CLIFF_DEFAULT, CliffSetting
from engine.config import ConfigError

SCHEMA = "bptt-lab.cliff/1"
FLAGS = {"grid": "--grid", "w_range": "--w", "b_range": "--b", "start": "--start", "lr": "--lr", "clip_threshold": "--clip-threshold", "steps": "--steps"}
_C = "Cliff"


# -- the headless command --------------------------------------------------------------


def register(cli) -> None:
    """`bptt-lab cliff`: the trajectories and the numbers (table), the grid (CSV) or everything (JSON)."""
    from .. import cli as c

    d = CLIFF_DEFAULT

    @cli.command("cliff", cls=c._StrictCommand)
    @c._guard
    def cliff_command(
        grid: Annotated[int, typer.Option("--grid", help=f"Grid points along w and along b (2 to {model.MAX_GRID}).", metavar="N", rich_help_panel=_C)] = d.grid,
        w: Annotated[str, typer.Option("--w", help="The range of w on the grid.", metavar="MIN:MAX", rich_help_panel=_C)] = _range_text(d.w_range),
        b: Annotated[str, typer.Option("--b", help="The range of b on the grid.", metavar="MIN:MAX", rich_help_panel=_C)] = _range_text(d.b_range),
        lr: Annotated[float, typer.Option("--lr", help="SGD's learning rate (> 0).", rich_help_panel=_C)] = d.lr,
        clip_threshold: Annotated[float, typer.Option("--clip-threshold", help="The norm clip's threshold for the clipped trajectory (SPEC 3's rule, > 0).", rich_help_panel=_C)] = d.clip_threshold,
        steps: Annotated[int, typer.Option("--steps", help=f"SGD steps of each trajectory (1 to {model.MAX_STEPS}).", rich_help_panel=_C)] = d.steps,
        start: Annotated[str, typer.Option("--start", help="Where both trajectories start.", metavar="W,B", rich_help_panel=_C)] = f"{d.start[0]:g},{d.start[1]:g}",
        fmt: Annotated[c.RunFormat, typer.Option("--format", "-f", help="table: the trajectories, the wall and the saddle-nodes; csv: the grid; json: everything.", rich_help_panel=c._R)] = c.RunFormat.table,
        plot: Annotated[bool, typer.Option("--plot", help="Also print E_50 and |grad| over the grid with the trajectories, and the fixed points against b.", rich_help_panel=c._R, metavar="")] = False,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the table, CSV or JSON to this file, in full or not at all. An existing FILE is refused unless --force.", metavar="FILE", rich_help_panel=c._R)] = None,
        force: Annotated[bool, typer.Option("--force", help="With --output: overwrite FILE if it exists.", rich_help_panel=c._R, metavar="")] = False,
    ) -> None:
        """SPEC 9's one-unit model, x_t = w·σ(x_{t-1}) + b: its error surface E_50 over (w, b), the wall, the saddle-nodes at w = 5, and SGD from one start with and without norm clipping."""
        fmt = fmt.value
        if force and output is None:
            raise c.UsageError("--force applies to --output FILE only")
        if plot and fmt != "table" and output is None:
            raise c.UsageError(f"--plot with --format {fmt} needs --output FILE (the chart would corrupt the {fmt.upper()} on stdout)")
        setting = _setting(c, grid=grid, w_range=_pair(c, "--w", w, ":"), b_range=_pair(c, "--b", b, ":"), lr=lr, clip_threshold=clip_threshold, steps=steps, start=_pair(c, "--start", start, ","))
        with c._stopping_cleanly(*c.STOP_SIGNALS), c._writing(output, force) as (target, _progress):
            result = model.compute(setting)
            with c.written_to(target, output, fmt, f"{setting.grid} x {setting.grid} grid") as stream:
                {"json": write_json, "csv": write_csv, "table": write_table}[fmt](result, stream)
            if plot:
                from . import cliff_draw

                c.draw(cliff_draw.plot_text(result))


def _range_text(pair: tuple[float, float]) -> str:
    return f"{pair[0]:g}:{pair[1]:g}"


def _pair(c, flag: str, text: str, sep: str) -> tuple[float, float]:
    """Two plain, finite numbers written A<sep>B."""
    shape = "MIN:MAX" if sep == ":" else "W,B"
    parts = text.split(sep)
    if len(parts) != 2 or not all(c._PLAIN_NUMBER.fullmatch(p.strip()) for p in parts):
        raise c.UsageError(f"{flag}: {c.printable(text)!r} is not {shape} (two plain numbers, e.g. {'2:8' if sep == ':' else '4.9,-2.55'})")
    values = tuple(float(p) for p in parts)
    if not all(math.isfinite(v) for v in values):
        raise c.UsageError(f"{flag}: {c.printable(text)!r} holds a number that is not finite")
    return values


def _setting(c, **given) -> CliffSetting:
    """The default setting with the user's values; a bad one is a one-line error naming its flag."""
    try:
        return dataclasses.replace(CLIFF_DEFAULT, **given)
    except ConfigError as exc:
        flag = FLAGS.get(exc.field, exc.field or "")
        msg = exc.message
        raise c.UsageError(flag + msg[len(exc.field) :] if exc.field and msg.startswith(exc.field) else msg) from None


# -- the outputs ------------------------------------------------------------------------


def to_dict(c: model.Cliff) -> dict:
    """Everything computed, JSON-ready (non-finite numbers become null on writing)."""
    s, surface, bif = c.setting, c.surface, c.bifurcation
    ww, wb, wg, we = surface.wall()
    return {
        "schema": SCHEMA,
        "model": {"x0": model.X0, "steps": model.STEPS, "target": model.TARGET, "map": "x_t = w*sigmoid(x_{t-1}) + b", "error": "E = (sigmoid(x_T) - target)^2"},
        "setting": {
            "name": s.name, "w_range": list(s.w_range), "b_range": list(s.b_range), "grid": s.grid, "start": list(s.start), "lr": s.lr,
            "steps": s.steps, "clip_threshold": s.clip_threshold, "bifurcation_w": s.bifurcation_w, "bifurcation_b": list(s.bifurcation_b),
            "look_for": s.look_for if s == CLIFF_DEFAULT else None,
        },
        "wall": {"w": ww, "b": wb, "grad_norm": wg, "E": we},
        "saddle_nodes": [{"b": b, "x": x} for b, x in bif.saddle_nodes],
        "story": model.story(c),
        "trajectories": {"no_clip": _trajectory(c.plain), "clipped": _trajectory(c.clipped)},
        "fixed_points": {"w": bif.w, "b": bif.b, "x": bif.x, "stable": bif.stable},
        "grid": {"w": surface.w, "b": surface.b, "E": surface.E, "dE_dw": surface.dE_dw, "dE_db": surface.dE_db},
    }


def _trajectory(t: model.Trajectory) -> dict:
    return {"clip_threshold": t.clip_threshold, "w": t.points[:, 0], "b": t.points[:, 1], "E": t.E, "grad_norm": t.grad_norm, "step_length": t.step_length, "clipped": t.clipped}


def write_json(c: model.Cliff, stream) -> None:
    from engine.export import finite_or_none

    json.dump(finite_or_none(to_dict(c)), stream, allow_nan=False, separators=(",", ":"))
    stream.write("\n")


CSV_COLUMNS = ("w", "b", "E", "dE_dw", "dE_db", "grad_norm")


def write_csv(c: model.Cliff, stream) -> None:
    """The grid, a row per (w, b) point, w the outer loop; numbers in shortest round-trip form."""
    s = c.surface
    norm = s.grad_norm
    stream.write(",".join(CSV_COLUMNS) + "\n")
    for i, w in enumerate(s.w.tolist()):
        stream.write("".join(f"{w!r},{b!r},{e!r},{dw!r},{db!r},{n!r}\n" for b, e, dw, db, n in zip(s.b.tolist(), s.E[i].tolist(), s.dE_dw[i].tolist(), s.dE_db[i].tolist(), norm[i].tolist())))


def write_table(c: model.Cliff, stream) -> None:
    from . import cliff_draw

    s = c.setting
    out = [
        (
            f"cliff: x_t = w·σ(x_(t-1)) + b, x_0 = {model.X0:g}, T = {model.STEPS}, E = (σ(x_T) - {model.TARGET:g})²; "
            f"grid {s.grid} x {s.grid} over w {_range_text(s.w_range)}, b {_range_text(s.b_range)}"
        ),
        *cliff_draw.facts(c),
        "",
        f"SGD from (w, b) = ({s.start[0]:g}, {s.start[1]:g}), lr {s.lr:g}: without clipping | with norm clipping at {s.clip_threshold:g}",
        f"{'step':>5} {'w':>10} {'b':>10} {'E':>10} {'|grad|':>10} | {'w':>10} {'b':>10} {'E':>10} {'|grad|':>10} {'clipped':>8}",
    ]
    a, z = c.plain, c.clipped
    for u in range(s.steps + 1):
        clipped = ("yes" if z.clipped[u] else "no") if u < s.steps else ""
        out.append(f"{u:>5} {_n(a.points[u, 0])} {_n(a.points[u, 1])} {_n(a.E[u])} {_n(a.grad_norm[u])} | {_n(z.points[u, 0])} {_n(z.points[u, 1])} {_n(z.E[u])} {_n(z.grad_norm[u])} {clipped:>8}")
    stream.write("\n".join(out) + "\n")


def _n(x: float) -> str:
    return f"{x:>10.4g}" if math.isfinite(x) else f"{'nan' if math.isnan(x) else 'inf':>10}"


# -- the dashboard's screen -------------------------------------------------------------


def screen(app):
    from .cliff_screen import CliffScreen

    return CliffScreen()
