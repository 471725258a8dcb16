"""The gradient heatmap (issue 11, item 2): |dL/dh_t| per unit and per
backward step, and the input connectivity ||dL/dx_t|| per input step.

- `bptt-lab heatmap PRESET [flags] [--format table|csv|json] [--plot] [--output FILE]`:
  the run to its end, then the matrix (steps x units) and the connectivity,
  as a table, CSV or strict JSON (`bptt-lab.heatmap/1`), and with --plot the
  picture on stdout (tui/views/heatmap_picture.py);
- `screen(app)`: the dashboard's screen (key h) for the per-step view's run
  (tui/views/heatmap_screen.py).

The numbers are recorded by the engine as the pass steps (engine/gradient_map.py);
this module only formats them.
"""


import csv
import io
import json
import sys
from typing import Annotated, Optional

import typer

SCHEMA = "bptt-lab.heatmap/1"
VALUE = "||dL/dh_t[:, j]||_2 / N"  # what a unit's number is
TABLE_ROWS = 2000  # a longer table shows its first and last half


def register(cli) -> None:
    """`bptt-lab heatmap`."""
    from .. import cli as c

    @cli.command("heatmap", cls=c._StrictCommand, epilog=c.RULES)
    @c._guard
    @c.with_overrides
    def heatmap_command(
        preset: Annotated[Optional[str], typer.Argument(help=c.PRESET_HELP + f" Default: {c.DEFAULT_PRESET}.", show_default=False)] = None,
        preset_file: c.PresetFile = None,
        fmt: Annotated[c.RunFormat, typer.Option("--format", "-f", help="Output format.", rich_help_panel=c._R)] = c.RunFormat.table,
        plot: Annotated[bool, typer.Option("--plot", help="Also draw the heatmap on stdout (colours with a scale in powers of ten on a terminal; characters alone otherwise or with NO_COLOR).", rich_help_panel=c._R, metavar="")] = False,
        output: Annotated[Optional[c.Path], typer.Option("--output", "-o", help="Write the table, CSV or JSON to this file, in full or not at all. An existing FILE is refused unless --force.", metavar="FILE", rich_help_panel=c._R)] = None,
        force: Annotated[bool, typer.Option("--force", help="With --output: overwrite FILE if it exists.", rich_help_panel=c._R, metavar="")] = False,
        given: dict | None = None,
    ) -> None:
        """|dL/dh_t| per unit and backward step, and ||dL/dx_t|| per input step.

        A unit's number is ||dL/dh_t[:, j]||_2 / N (its gradient over the batch,
        divided by N, so that a row's units give the run's |dL/dh| in squares);
        ||dL/dx_t||_F / N is how much input step t can still change the loss
        (dL/dx_t = dL/dnet_t W_ih). Row k is h_t, t = T - k (k = 0: dL/dh_T),
        with x_t, the input h_t read. Past 32 MiB of units ((T+1) x H floats) a
        row holds several steps, each unit's largest (`stride`)."""
        fmt = fmt.value
        if force and output is None:
            raise c.UsageError("--force applies to --output FILE only")
        if plot and fmt != "table" and output is None:
            raise c.UsageError(f"--plot with --format {fmt} needs --output FILE (the picture would corrupt the {fmt.upper()} on stdout)")
        try:
            chosen, config = c.resolve(preset or c.DEFAULT_PRESET, preset_file, given or {})
        except c.ConfigError as exc:
            raise c.UsageError(c.config_error_text(exc)) from None
        with c._stopping_cleanly(*c.STOP_SIGNALS):
            _run_and_write(c, chosen, config, fmt, output, force, plot)


def _run_and_write(c, chosen, config, fmt: str, output, force: bool, plot: bool) -> None:
    from engine import Run

    with c._writing(output, force) as (target, progress):
        progress.setup(config)
        run = Run(config, gradient_map=True)
        progress.end("forward pass done")
        c._say_source(run.model)
        progress.backward(run)
        text = to_json(run, chosen.name) + "\n" if fmt == "json" else to_csv(run) if fmt == "csv" else to_table(run, chosen.name)
        with c.written_to(target, output, fmt, f"{run.T + 1} steps x {run.H} units") as stream:
            stream.write(text)
    if plot:
        c.draw(plot_text(run, chosen.name))


# -- the numbers ---------------------------------------------------------------------------


def rows(run):
    """(k, k_last, t, word, ||dL/dx_t||, units) per stored column: h_t with t = T - k and
    x_t, the input it read (the largest over k..k_last when a column holds several steps)."""
    m, T = run.gradient_map, run.T
    units, first = m.columns(T)
    words = run.config.text.split() if run.config.text else None
    dx = m.input_norms(T)
    for c, k in enumerate(first.tolist()):
        last = min(k + m.stride - 1, T)
        norm = float(dx[k : min(last + 1, T)].max()) if k < T else None
        word = words[T - k - 1] if words and k < T and m.stride == 1 else None
        yield k, last, T - k, word, norm, units[c]


def _inputs(run) -> list[dict]:
    m, T = run.gradient_map, run.T
    words = run.config.text.split() if run.config.text else None
    return [{"t": T - j, "k": j + 1, "word": words[T - j - 1] if words else None, "norm": float(v)} for j, v in enumerate(m.input_norms(T))]


def to_dict(run, preset: str) -> dict:
    from engine.export import finite_or_none

    m = run.gradient_map
    units, _ = m.columns(run.T)
    from engine.norms import norm as l2

    j = int(units.argmax()) if units.size and (units == units).all() else None
    doc = {
        "schema": SCHEMA,
        "preset": preset,
        "config": run.config.to_dict(),
        "value": VALUE,
        "steps": run.T,
        "hidden": run.H,
        "batch": run.N,
        "stride": m.stride,
        "summary": {
            "start_norm": run.start_norm,
            "final_norm": l2(units[-1]) if m.stride == 1 else None,
            "largest": None if j is None else {"k": int(j // run.H) * m.stride, "unit": int(j % run.H) + 1, "value": float(units.flat[j])},
            "zero_inputs": [d["t"] for d in _inputs(run) if d["norm"] == 0.0],
        },
        "columns": [{"k": k, "k_last": last, "t": t, "units": u} for k, last, t, _, _, u in rows(run)],
        "inputs": _inputs(run),
    }
    return finite_or_none(doc)


def to_json(run, preset: str) -> str:
    return json.dumps(to_dict(run, preset), indent=1, allow_nan=False)


def _cell(x) -> str:
    return "" if x is None or x != x or abs(x) == float("inf") else repr(float(x))


def to_csv(run) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["k", "k_last", "t", "word", "dx_norm", *(f"unit_{j}" for j in range(1, run.H + 1))])
    for k, last, t, word, norm, u in rows(run):
        w.writerow([k, last, t, word or "", _cell(norm), *map(_cell, u.tolist())])
    return buf.getvalue()


def _table_row(k, t, word, norm, u, stride: int) -> str:
    from engine.norms import norm as l2

    from ..format import num

    finite = u[u == u]
    top = "not finite" if finite.size < u.size else f"{num(float(u.max()))} (unit {int(u.argmax()) + 1})" if u.max() > 0 else "0"
    low = num(float(u.min())) if finite.size == u.size else "-"
    return f"{k:>7} {t:>7} {(word or '')[:10]:<10} {num(l2(u)) if stride == 1 else '-':>10} {low:>10} {top:>20} {num(norm):>10}"


def to_table(run, preset: str) -> str:
    """One line per stored column: |dL/dh| (the units' norm), the smallest and largest unit, ||dL/dx_t||."""
    m = run.gradient_map
    head = [
        f"{preset}: |dL/dh_t| per unit ({VALUE}), H = {run.H}, T = {run.T}" + (f", {m.stride} steps a row (each unit's largest)" if m.stride > 1 else ""),
        f"{'k':>7} {'t':>7} {'word':<10} {'|dL/dh|':>10} {'min unit':>10} {'max unit':>20} {'||dL/dx_t||':>10}",
    ]
    body = [_table_row(k, t, word, norm, u, m.stride) for k, _, t, word, norm, u in rows(run)]
    if len(body) > TABLE_ROWS:
        half = TABLE_ROWS // 2
        body = body[:half] + [f"... {len(body) - TABLE_ROWS:,} rows not shown; every row: --format csv"] + body[-half:]
    zero = [d["t"] for d in _inputs(run) if d["norm"] == 0.0]
    tail = [f"inputs the loss no longer reaches (||dL/dx_t|| = 0): t = {_ranges(zero)}"] if zero else []
    return "\n".join(head + body + tail) + "\n"


def _ranges(ts: list[int]) -> str:
    """4, 3, 2, 1 -> '4..1'; runs of consecutive steps joined."""
    out, i = [], 0
    while i < len(ts):
        j = i
        while j + 1 < len(ts) and ts[j + 1] == ts[j] - 1:
            j += 1
        out.append(str(ts[i]) if i == j else f"{ts[i]}..{ts[j]}")
        i = j + 1
    return ", ".join(out)


def plot_text(run, preset: str, width: int | None = None) -> str:
    """The picture for stdout: colours on a terminal (not under NO_COLOR), characters alone otherwise."""
    from rich.console import Console

    from .. import report
    from .heatmap_picture import picture

    color = report.stdout_color()
    width = width or (min(report.output_width(), 160) if sys.stdout.isatty() else 100)
    height = min(run.H, 32) + 8
    words = run.config.text.split() if run.config.text else None
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system="256" if color else None, no_color=not color, highlight=False, markup=False, soft_wrap=True)
    console.print(f"{preset}: log10 |dL/dh_t| per unit (rows), backward step k across (t = T - k); dL/dx: ||dL/dx_t|| under h_t")
    for line in picture(run.gradient_map, run.T, width, height, words):
        console.print(line)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def screen(app):
    """The heatmap of the per-step view's run."""
    from .heatmap_screen import HeatmapScreen

    return HeatmapScreen()
