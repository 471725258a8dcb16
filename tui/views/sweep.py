"""The sweep view (issue 11, item 4): the phase diagram.

- `bptt-lab sweep [PRESET] [--x FIELD=MIN:MAX:N] [--y FIELD=A,B,C] [flags]`:
  the mean log10 growth per step of the backward norm over a grid of two
  settings, one backward pass per cell in worker processes (--jobs), as a
  table (per row: where sigma_max*gamma, the spectral radius and the growth
  cross 1), CSV (a line per cell) or strict JSON (`bptt-lab.sweep/1`), and
  with --plot the heatmap on stdout (tui/views/sweep_chart.py);
- `screen(app)`: the dashboard's screen (key d) for a saved sweep JSON
  (tui/views/sweep_screen.py).

Everything is computed by engine/sweep.py; this module only formats it.
"""


import json
import math
import os
import sys
import time
from typing import Annotated, Optional

import typer

DEFAULT_PRESET = "phase-diagram"
DEFAULT_X = "scale=0.25:2.5:40"
DEFAULT_Y = {"activation": "activation=tanh,relu,sigmoid", "keep": "forget_bias=-2:4:7"}
CSV_FIXED = ("row", "col")
CSV_CELL = (
    "log10_growth", "growth", "status", "steps_measured", "overflow_k", "forward_overflow_t",
    "start_norm", "final_norm", "sigma_max", "gamma", "sigma_gamma", "spectral_radius",
)  # fmt: skip
AXIS_HELP = (
    "{which} axis: FIELD=MIN:MAX:N (N values, linear; add :log for log-spaced), or FIELD=A,B,C for a list "
    "(choices such as activation or cell, or numbers). FIELD: a setting's name (scale, spectral_radius, forget_bias, activation, ...). "
    "Default: {default}."
)
BAR = 24


def register(cli) -> None:
    """`bptt-lab sweep`."""
    from .. import cli as c

    @cli.command("sweep", cls=c._StrictCommand, epilog=c.RULES)
    @c._guard
    @c.with_overrides
    def sweep_command(
        preset: Annotated[Optional[str], typer.Argument(help=c.PRESET_HELP + f" Default: {DEFAULT_PRESET}.", show_default=False)] = None,
        preset_file: c.PresetFile = None,
        x: Annotated[Optional[str], typer.Option("--x", help=AXIS_HELP.format(which="The x", default=DEFAULT_X), metavar="FIELD=...", rich_help_panel=c._R)] = None,
        y: Annotated[
            Optional[str],
            typer.Option("--y", help=AXIS_HELP.format(which="The y", default=f"{DEFAULT_Y['activation']} (gated cells: {DEFAULT_Y['keep']})"), metavar="FIELD=...", rich_help_panel=c._R),
        ] = None,
        jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help=f"Worker processes, one cell at a time each (default: the CPU count, {os.cpu_count()} here).", metavar="N", rich_help_panel=c._R)] = None,
        fmt: Annotated[c.RunFormat, typer.Option("--format", "-f", help="Output format.", rich_help_panel=c._R)] = c.RunFormat.table,
        plot: Annotated[bool, typer.Option("--plot", help="Also print the heatmap with the lines sigma_max*gamma = 1 and spectral radius = 1.", rich_help_panel=c._R, metavar="")] = False,
        output: Annotated[
            Optional[c.Path],
            typer.Option("--output", "-o", help="Write the table, CSV or JSON to this file, in full or not at all. An existing FILE is refused unless --force.", metavar="FILE", rich_help_panel=c._R),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="With --output: overwrite FILE if it exists.", rich_help_panel=c._R, metavar="")] = False,
        given: dict | None = None,
    ) -> None:
        """The phase diagram: the mean log10 growth per step of |dL/dh| over a grid of two settings.

        Each cell is one backward pass of the preset with the cell's two values
        (and the flags given), seeded by the preset's seed: its growth per step
        (the geometric mean of the step ratios, as the dashboard's summary), and
        sigma_max(W_hh)*gamma and the spectral radius of its W_hh. The table
        says per row where those two and the growth cross 1; the heatmap marks
        the crossings. Cells run in parallel over --jobs worker processes."""
        fmt = fmt.value
        if force and output is None:
            raise c.UsageError("--force applies to --output FILE only")
        if plot and fmt != "table" and output is None:
            raise c.UsageError(f"--plot with --format {fmt} needs --output FILE (the chart would corrupt the {fmt.upper()} on stdout)")
        if jobs is not None and not 1 <= jobs <= 256:
            raise c.UsageError(f"--jobs must be from 1 to 256, got {jobs}")
        name = preset or DEFAULT_PRESET
        grid = _grid(c, name, preset_file, given or {}, x, y)
        with c._stopping_cleanly(*c.STOP_SIGNALS):
            _sweep_to_output(c, grid, name, jobs or os.cpu_count() or 1, fmt, output, force, plot)


def _grid(c, name: str, preset_file, given: dict, x: str | None, y: str | None):
    """The validated grid: the preset with the flags, and the two axes (one-line errors)."""
    from enum import Enum

    from engine.config import ConfigError
    from engine.sweep import Grid, SweepError, parse_axis
    from engine.weights import file_sizes

    try:
        chosen, config = c.resolve(name, preset_file, given)
    except ConfigError as exc:
        raise c.UsageError(c.config_error_text(exc)) from None
    explicit = {k: (v.value if isinstance(v, Enum) else v) for k, v in given.items() if v is not None}
    if "weights" in explicit:
        explicit["weights"] = str(explicit["weights"])
    x, y = _default_axes(config, x, y)
    axes = {}
    for flag, text in (("--x", x), ("--y", y)):
        try:
            axes[flag] = parse_axis(text)
        except SweepError as exc:
            raise c.UsageError(f"{flag} {text}: {exc}") from None
    try:
        return Grid.build(chosen.config, axes["--x"], axes["--y"], explicit, sizes=file_sizes(explicit))
    except SweepError as exc:
        raise c.UsageError(str(exc)) from None


def _default_axes(config, x: str | None, y: str | None) -> tuple[str, str]:
    """The axes not given: scale across, and the activation (a gated cell: the
    keep-gate bias) down; never the same setting as the one given."""
    second = DEFAULT_Y["activation"] if config.cell_type.uses_activation else DEFAULT_Y["keep"]
    if x is None and y is None:
        return DEFAULT_X, second
    given = (x or y).partition("=")[0].strip().replace("-", "_")
    other = DEFAULT_X if given != "scale" else second
    return (x, y or other) if x is not None else (other, y)


def _sweep_to_output(c, grid, name: str, jobs: int, fmt: str, output, force: bool, plot: bool) -> None:
    from engine.sweep import SweepError, run_grid

    with c._writing(output, force) as (target, progress):
        progress.begin()
        start = time.monotonic()
        total = len(grid.x.values) * len(grid.y.values)
        tell = _progress(progress, total)
        try:
            sweep = run_grid(grid, jobs, tell, hold=c._stops_held)
        except SweepError as exc:
            raise c.UsageError(str(exc)) from None
        sweep.preset = name
        progress.end(f"sweep done: {total:,} cells on {min(jobs, total)} worker(s)")
        c._stop_if_signalled()
        with c.written_to(target, output, fmt, f"{total:,} cells, {time.monotonic() - start:.1f} s on {min(jobs, total)} worker(s)") as stream:
            write(sweep, fmt, stream, color=target is None and _color())
        if plot:
            c.draw(plot_text(sweep))


def _progress(progress, total: int):
    """The progress callback: on a terminal a bar, redrawn; otherwise a plain line each 10%."""

    def tell(done: int, _total: int) -> None:
        what = "sweep"
        if progress.tty:
            filled = BAR * done // total
            what = f"sweep [{'#' * filled}{'.' * (BAR - filled)}]"
        progress.update(what, done, total, "cells")

    return tell


def _color() -> bool:
    from .. import report

    return report.stdout_color()


# -- the formats -------------------------------------------------------------------------------


def write(sweep, fmt: str, stream, color: bool = False) -> None:
    if fmt == "json":
        stream.write(json.dumps(sweep.to_dict(), indent=1, allow_nan=False) + "\n")
    elif fmt == "csv":
        write_csv(sweep, stream)
    else:
        stream.write(table_text(sweep, color))


def write_csv(sweep, stream) -> None:
    """One line per cell in grid order (row by row); an empty field: null in the JSON."""
    import csv

    from engine.export import finite_or_none

    w = csv.writer(stream, lineterminator="\n")
    w.writerow([*CSV_FIXED, sweep.y.field, sweep.x.field, *CSV_CELL])
    for i, row in enumerate(sweep.cells):
        for j, cell in enumerate(row):
            values = [finite_or_none(cell.get(k)) for k in CSV_CELL]
            w.writerow([i, j, sweep.y.values[i], sweep.x.values[j], *("" if v is None else v for v in values)])


def title(sweep) -> str:
    b = sweep.base if isinstance(sweep.base, dict) else sweep.base.to_dict()
    what = f"{b.get('cell')}, H={b.get('hidden')} N={b.get('batch')} T={b.get('steps')}, init {b.get('init')}, seed {b.get('seed')}"
    return f"phase diagram of {sweep.preset or 'a sweep'}: log10 growth per step of |dL/dh| ({what})"


def _where(points: list[float]) -> str:
    return ", ".join(f"{p:.3g}" for p in points) if points else "-"


def table_rows(sweep) -> list[tuple[str, ...]]:
    """Per strip (a row along x, or a column along y): its value, the growth's
    range, and where sigma_max*gamma, the radius and the growth cross 1."""
    lines = sweep.lines()
    along = sweep.along
    other = sweep.y if along != "y" else sweep.x
    strips = sweep.cells if along != "y" else [list(col) for col in zip(*sweep.cells)]
    rows = []
    for s, strip in enumerate(strips):
        g = [cell["log10_growth"] for cell in strip]
        finite = [v for v in g if math.isfinite(v)]
        span = f"{min(finite):+.3f} .. {max(finite):+.3f}" if finite else "-"
        rows.append((other.label(s), span, *(_where(lines[key][s]) if along else "-" for key in ("sigma_gamma", "spectral_radius", "log10_growth"))))
    return rows


def table_text(sweep, color: bool = False) -> str:
    from rich.table import Table

    from .. import report

    along = sweep.along
    axis = sweep.x if along != "y" else sweep.y
    other = sweep.y if along != "y" else sweep.x
    table = Table(title=title(sweep), title_justify="left", box=None, header_style="bold")
    for head in (other.field, "log10 growth/step", f"σmax·γ = 1 at {axis.field}", f"radius = 1 at {axis.field}", f"growth = 1 at {axis.field}"):
        table.add_column(head, justify="right")
    for row in table_rows(sweep):
        table.add_row(*row)
    console, buf = report._console(color, width=max(100, report.output_width() if sys.stdout.isatty() else 160))
    console.print(table)
    cells = sum(len(r) for r in sweep.cells)
    overflow = sum(c["status"] == "overflow" for r in sweep.cells for c in r)
    console.print(
        f"{cells:,} cells ({len(sweep.x.values)} {sweep.x.field} x {len(sweep.y.values)} {sweep.y.field}); "
        f"{overflow} overflowed (growth up to the overflow). Crossings: linear interpolation between neighbouring cells"
        + ("." if along else "; none: neither axis is numeric.")
    )
    return report._text(buf)


def plot_text(sweep, width: int | None = None) -> str:
    """The heatmap for stdout: colour on a terminal (not under NO_COLOR), glyphs otherwise."""
    from rich.console import Console

    from . import sweep_chart

    color = _color()
    width = width or (min(os.get_terminal_size().columns, 160) if sys.stdout.isatty() else 100)
    # 16 colours cannot draw a diverging scale: at least 256 (what the terminal says, if it says truecolor)
    system = "truecolor" if color and Console(force_terminal=True).color_system == "truecolor" else "256"
    console = Console(width=max(width, 60), color_system=system if color else None, no_color=not color, highlight=False, markup=False, soft_wrap=True, force_terminal=color)
    with console.capture() as captured:
        console.print(sweep_chart.chart(sweep, title(sweep), width, color))
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def screen(app):
    from .sweep_screen import SweepScreen

    return SweepScreen()
