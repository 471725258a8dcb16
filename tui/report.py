"""Headless output of `bptt-lab run` and `bptt-lab presets`: a Rich table, a
plotext chart on a log10 axis, the preset listing.

It formats what the engine recorded; it never recomputes a gradient.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import sys

import numpy as np
from rich.console import Console
from rich.table import Table

from engine.bptt import Run
from engine.export import finite_or_none
from engine.presets import Preset

from .format import clip_text, log_ticks, num, percent, run_series, status_tag, summary_lines

STATUS_STYLE = {"ok": "", "vanishing": "yellow", "exploding": "red", "overflow": "bold red", "truncated": "cyan"}


def stdout_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def output_width() -> int:
    """The terminal's width when stdout is one; otherwise wide enough never to wrap a row."""
    return shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else 250


def _console(color: bool, width: int | None = None) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    console = Console(
        file=buf, color_system="standard" if color else None, no_color=not color, width=width or output_width(), highlight=False, markup=False, soft_wrap=False
    )
    return console, buf


def _text(buf: io.StringIO) -> str:
    """Rendered text without the padding Rich adds to the right of short rows."""
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def table_text(run: Run, preset: Preset, color: bool = False) -> str:
    """The step records as a table, then the summary."""
    c = run.config
    gated = c.cell != "rnn"
    table = Table(title=_title(run, preset), title_justify="left", box=None, pad_edge=False, header_style="bold")
    for name, justify in (("k", "right"), ("t", "right"), ("|dL/dh|", "right"), ("ratio", "right")):
        table.add_column(name, justify=justify)
    if c.cell == "lstm":
        table.add_column("|dL/dc|", justify="right")
    if gated:
        table.add_column("forget f" if c.cell == "lstm" else "update z", justify="right")
    table.add_column("sigma(J)" if run.jacobian.exact else "~sigma(J)", justify="right")
    table.add_column("sat", justify="right")
    if not gated:
        table.add_column("bound", justify="right")
    table.add_column("dW_hh term", justify="right")
    table.add_column("|grad|", justify="right")
    table.add_column("events")
    for r in run.records:
        row = [str(r.k), str(r.t), num(r.grad_norm, na="nan"), num(r.ratio)]
        if c.cell == "lstm":
            row.append(num(r.cell_norm))
        if gated:
            row.append(num(r.gate_mean))
        row += [num(r.jacobian_sigma), percent(r.saturation)]
        if not gated:
            row.append(num(r.bound))
        row += [num(r.contribution, na="nan"), num(r.param_norm, na="nan"), " ".join(x for x in (clip_text(r.clip), status_tag(r)) if x)]
        table.add_row(*row, style=STATUS_STYLE[r.status] or ("magenta" if r.clip else ""))
    console, buf = _console(color)
    console.print(table)
    console.print()
    for line in summary_lines(run.summary()):
        console.print(line)
    return _text(buf)


def _title(run: Run, preset: Preset) -> str:
    c = run.config
    what = c.cell if c.cell != "rnn" else f"rnn/{c.activation}"
    extras = []
    if c.clip != "none":
        extras.append(f"clip {c.clip} {c.clip_threshold:g}")
    if c.truncate:
        extras.append(f"truncate {c.truncate}")
    tail = f", {', '.join(extras)}" if extras else ""
    return f"{preset.name}: {what}, {c.mode}, H={c.hidden} N={c.batch} T={c.steps}{tail}"


def chart_text(run: Run, preset: Preset, width: int | None = None, height: int = 22) -> str:
    """The per-step norm against backward step k on a log10 axis labelled in powers of ten.

    plotext's own log scale corrupts a second draw, so the data are log10
    values on a linear axis. Zero and non-finite values cannot be drawn on a
    log axis: they are left out and said so under the chart.
    """
    import plotext as plt

    k = np.arange(1, run.k + 1)
    series = run_series(run, "hd")
    notes = []
    plt.clear_figure()
    plt.plot_size(width or min(shutil.get_terminal_size((100, 24)).columns, 120), height)  # COLUMNS or the terminal
    color = stdout_color()
    if not color:
        plt.theme("clear")
    lows, highs = [], []
    for label, values, marker in series:
        ok = np.isfinite(values) & (values > 0)
        if not ok.any():
            continue
        y = np.log10(values[ok])
        lows.append(y.min())
        highs.append(y.max())
        plt.plot(k[ok].tolist(), y.tolist(), label=label, marker=marker)
        dropped = run.k - int(ok.sum())
        if dropped and label == "|dL/dh|":
            notes.append(f"{dropped} step(s) not drawn (zero or not finite: see the status column)")
    c = run.config
    if c.clip == "step":
        y = math.log10(c.clip_threshold)
        plt.hline(y)
        lows.append(y)
        highs.append(y)
        notes.append(f"horizontal line: step-clip threshold {c.clip_threshold:g}")
    if lows:
        lo, hi, ticks, labels = log_ticks(lows, highs)
        plt.yticks(ticks, labels)
        plt.ylim(lo, hi)
    plt.xlim(1, max(2, run.k))
    xstep = max(1, math.ceil(run.k / 8))
    plt.xticks(list(range(1, run.k + 1, xstep)))
    plt.title(f"{preset.name}: gradient norm per backward step (log10 axis)")
    plt.xlabel("backward step k (record k = dL/dh at t = T - k)")
    out = plt.build()
    plt.clear_figure()
    if not color:
        out = plt.uncolorize(out)
    return out + ("\n" + "\n".join(notes) if notes else "")


def presets_table(presets: dict[str, Preset], color: bool = False) -> str:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("preset", no_wrap=True)
    table.add_column("what it shows")
    for p in presets.values():
        source = "" if p.source == "built-in" else f" [from {p.source}]"
        table.add_row(p.name, p.description + source)
    console, buf = _console(color)
    console.print(table)
    return _text(buf)


def presets_json(presets: dict[str, Preset]) -> str:
    doc = [
        {"name": p.name, "description": p.description, "look_for": p.look_for, "source": p.source, "config": p.config.to_dict()}
        for p in presets.values()
    ]
    return json.dumps(finite_or_none(doc), indent=2, allow_nan=False) + "\n"
