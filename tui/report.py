"""Headless output of `bptt-lab run` and `bptt-lab presets`: a Rich table (a
long one elided, or streamed a chunk at a time), a plotext chart on a log10
axis, the preset listing, and the progress of a long run on stderr.

It formats what the engine recorded; it never recomputes a gradient.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
from rich.color import ColorSystem
from rich.console import Console
from rich.style import Style
from rich.table import Table

from engine.export import finite_or_none
from engine.presets import Preset
from engine.records import STATUSES
from engine.run import Run
from engine.training import STATUSES as UPDATE_STATUSES

from .downsample import bucket_minmax
from .format import (
    clip_text,
    log_ticks,
    num,
    percent,
    run_series,
    status_tag,
    summary_lines,
    training_summary_lines,
)

PROG = "bptt-lab"
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


# A table of up to TABLE_ROWS records is printed in full, as one Rich table
# (about 85 bytes and under a millisecond a row: 2,000 rows are ~170 KB and
# render in about a second; the README's T = 2000 overflow example shows every
# row). A longer one shows the first and last TABLE_ROWS / 2 records and one
# line saying what it left out; `--all-rows` streams every row instead, in
# fixed-width columns, a chunk at a time.
TABLE_ROWS = 2000
ALL_ROWS_CHUNK = 1024
ELIDED = "..."  # the k cell of the row that marks the elided records


def _columns(run: Run) -> list[tuple[str, str]]:
    """(header, justify) of each column, in order."""
    cell = run.config.cell_type
    columns = [("k", "right"), ("t", "right"), ("|dL/dh|", "right"), ("ratio", "right")]
    if cell.has_cell_state:
        columns += [("|dL/dc|", "right"), ("h-path", "right")]
    if cell.keep_gate:
        columns.append((cell.keep_label, "right"))
    columns.append(("sigma(J)" if run.jacobian.exact else "~sigma(J)", "right"))
    columns.append(("sat", "right"))
    if _shows_dead(run):
        columns.append(("dead", "right"))
    if run.bound_factor is not None:
        columns.append(("bound", "right"))
    columns += [("dW_hh term", "right"), ("|grad|", "right"), ("events", "left")]
    return columns


def _shows_dead(run: Run) -> bool:
    """The `dead` column applies: an activation with f' = 0 on a whole region (ReLU)."""
    c = run.config
    return c.cell_type.counts_dead(c.activation, c.leaky_slope)


def _rows(run: Run, lo: int, hi: int) -> tuple[list[tuple[str, ...]], list[str]]:
    """The cells of records lo+1..hi (a row each) and each row's style, read
    a column at a time from the record columns."""
    c, rec = run.config, run.records
    cols = rec.columns

    def column(name: str, na: str = "-") -> list[str]:
        return [num(x, na=na) for x in cols[name][lo:hi].tolist()]

    ks = range(lo + 1, hi + 1)
    cells = [[str(k) for k in ks], [str(rec.steps - k) for k in ks], column("grad_norm", "nan"), column("ratio")]
    if c.cell_type.has_cell_state:
        cells += [column("cell_norm"), column("hidden_path")]
    if c.cell_type.keep_gate:
        cells.append(column("gate_mean"))
    cells += [column("jacobian_sigma"), [percent(x) for x in cols["saturation"][lo:hi].tolist()]]
    if _shows_dead(run):
        cells.append([percent(x) for x in cols["dead"][lo:hi].tolist()])
    if run.bound_factor is not None:
        cells.append(column("bound"))
    cells += [column("contribution", "nan"), column("param_norm", "nan")]
    events, styles = [], []
    for i, code in enumerate(rec.status[lo:hi].tolist(), lo):
        status = STATUSES[code]
        clip = rec.clip(i + 1) if rec.clip_mode[i] else None
        events.append(" ".join(x for x in (clip_text(clip), _TAGS[status]) if x))
        styles.append(STATUS_STYLE[status] or ("magenta" if clip else ""))
    cells.append(events)
    return list(zip(*cells)), styles


_TAGS = {status: status_tag(SimpleNamespace(status=status)) for status in STATUSES}


def _rich_table(run: Run, preset: Preset, spans: list[tuple[int, int]]) -> Table:
    """The Rich table of records lo+1..hi of each (lo, hi) span, with an
    elision row between spans."""
    table = Table(title=_title(run, preset), title_justify="left", box=None, pad_edge=False, header_style="bold")
    columns = _columns(run)
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for n, (lo, hi) in enumerate(spans):
        if n:
            table.add_row(ELIDED, *[""] * (len(columns) - 1))
        for row, style in zip(*_rows(run, lo, hi)):
            table.add_row(*row, style=style)
    return table


def _summary_into(console: Console, run: Run) -> None:
    console.print()
    for line in summary_lines(run.summary()):
        console.print(line)


def table_text(run: Run, preset: Preset, color: bool = False) -> str:
    """The step records as a table, then the summary (every row: for short runs)."""
    console, buf = _console(color)
    console.print(_rich_table(run, preset, [(0, run.k)]))
    _summary_into(console, run)
    return _text(buf)


def write_table(run: Run, preset: Preset, stream, color: bool = False, all_rows: bool = False, progress=None) -> None:
    """The table for `bptt-lab run`, written to `stream`.

    Up to TABLE_ROWS records: `table_text`. Longer: the first and last
    TABLE_ROWS / 2 records and one line on what was left out, or with
    `all_rows` every record in fixed-width columns, a chunk at a time (memory
    bounded by the chunk). `progress(rows written, rows)` follows the chunks."""
    if run.k <= TABLE_ROWS:
        stream.write(table_text(run, preset, color))
    elif not all_rows:
        stream.write(_elided_text(run, preset, color))
    else:
        _write_all_rows(run, preset, stream, color, progress)


def _elided_text(run: Run, preset: Preset, color: bool) -> str:
    half, n = TABLE_ROWS // 2, run.k
    console, buf = _console(color)
    console.print(_rich_table(run, preset, [(0, half), (n - half, n)]))
    _summary_into(console, run)
    note = f"{ELIDED} {n - 2 * half:,} rows not shown (k = {half + 1} to {n - half}); every row: --all-rows, or --format csv"
    lines = _text(buf).splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if _plain(line).strip() == ELIDED)
    lines[at] = note + "\n"
    return "".join(lines)


def _plain(line: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


def _write_all_rows(run: Run, preset: Preset, stream, color: bool, progress) -> None:
    """Every record, in columns as wide as the widest value any record can have
    (`num` writes at most 9 characters for these non-negative numbers; a wider
    one pushes its row out rather than being cut)."""
    columns = _columns(run)
    digits = len(str(run.records.steps))
    widths = [max(len(name), digits if i < 2 else 4 if name in ("sat", "dead") else 9) for i, (name, _) in enumerate(columns[:-1])]

    def line(cells) -> str:
        return ("  ".join(cell.rjust(w) for cell, w in zip(cells, widths)) + "  " + cells[-1]).rstrip()

    codes = {style: _sgr(style) if color else ("", "") for style in {"", "magenta", *STATUS_STYLE.values()}}
    title, header = _sgr("italic"), _sgr("bold")
    out = []
    if color:
        out.append(f"{title[0]}{_title(run, preset)}{title[1]}\n{header[0]}{line([name for name, _ in columns])}{header[1]}\n")
    else:
        out.append(f"{_title(run, preset)}\n{line([name for name, _ in columns])}\n")
    n = run.k
    for lo in range(0, n, ALL_ROWS_CHUNK):
        hi = min(lo + ALL_ROWS_CHUNK, n)
        for cells, style in zip(*_rows(run, lo, hi)):
            on, off = codes[style]
            out.append(f"{on}{line(cells)}{off}\n")
        stream.write("".join(out))
        out.clear()
        if progress is not None:
            progress(hi, n)
    console, buf = _console(color)
    _summary_into(console, run)
    stream.write(_text(buf))


def _sgr(style: str) -> tuple[str, str]:
    """The escape codes Rich writes around text in `style` (standard colours)."""
    if not style:
        return "", ""
    rendered = Style.parse(style).render("\0", color_system=ColorSystem.STANDARD)
    on, _, off = rendered.partition("\0")
    return on, off


def _title(run: Run, preset: Preset) -> str:
    c = run.config
    what = f"{c.cell}/{c.activation}" if c.cell_type.uses_activation else c.cell
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

    series = run_series(run, "hd")
    notes = []
    plt.clear_figure()
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)  # COLUMNS or the terminal
    plt.plot_size(width, height)
    color = stdout_color()
    if not color:
        plt.theme("clear")
    lows, highs = [], []
    for label, values, marker in series:
        k, y, dropped = bucket_minmax(values, width)  # a long run is cut to the chart's width; spikes survive
        if not y.size:
            continue
        lows.append(y.min())
        highs.append(y.max())
        plt.plot(k.tolist(), y.tolist(), label=label, marker=marker)
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


# -- bptt-lab train: a line per E updates, the summary, the charts -----------------------

DIVERGENCE_TAIL = 5  # after a divergence, the last updates get a line each


def training_title(training, preset_name: str) -> str:
    """What is trained, on what, how: one line."""
    c, s = training.config, training.settings
    what = f"{c.cell}/{c.activation}" if c.cell_type.uses_activation else c.cell
    if c.forget_bias and c.cell_type.keep_gate:
        what += f" forget bias {c.forget_bias:g}"
    opt = ", ".join(f"{name} {getattr(s, name):g}" for name in s.optimizer_settings() if name == "lr" or getattr(s, name) != type(s).__dataclass_fields__[name].default)
    extras = [f"clip {c.clip} {num(c.clip_threshold)}"] if c.clip != "none" else []
    if c.truncate:
        extras.append(f"truncate {c.truncate}")
    tail = "".join(f", {x}" for x in extras)
    return f"{preset_name}: {what}, init {c.init}, H={c.hidden} N={training.N} T={c.steps}, {training.task.name}, {s.optimizer} {opt}, {s.updates:,} updates{tail}"


class TrainingTable:
    """The table of `bptt-lab train`, written as the training goes: a line
    per `eval_every` updates (the update's own loss, evaluation and norm, the
    largest norm and the clips since the line before, the latest spectrum and
    long_share), the last updates before a divergence a line each, then the
    summary. It formats the records; it computes nothing."""

    def __init__(self, training, preset_name: str, stream, color: bool = False):
        self.training, self.stream, self.color = training, stream, color
        self.preset_name = preset_name
        self.shown = 0  # updates covered by the lines so far
        self.metric = training.task.metric_name != training.task.loss  # accuracy beside the loss; mse is the loss itself
        U = training.settings.updates
        self.columns = [("u", len(str(U))), ("loss", 9), ("eval loss", 9)]
        if self.metric:
            self.columns.append((training.task.metric_name, 8))
        self.columns += [("|grad|", 9), ("peak |grad|", 11), ("at u", max(4, len(str(U)))), ("clips", 5), ("rho(W_hh)", 9), ("reach", 9), ("long_share", 10), ("status", 0)]

    def _line(self, cells: list[str]) -> str:
        return ("  ".join(cell.rjust(w) for cell, (_, w) in zip(cells[:-1], self.columns)) + "  " + cells[-1]).rstrip()

    def _write(self, text: str, style: str = "") -> None:
        on, off = _sgr(style) if self.color and style else ("", "")
        self.stream.write(f"{on}{text}{off}\n")

    def header(self) -> None:
        t = self.training
        self._write(training_title(t, self.preset_name), "italic")
        self._write(self._line([name for name, _ in self.columns]), "bold")
        loss, metric = t.initial_eval
        cells = ["0", "-", num(loss, na="nan")] + ([_metric(t, metric)] if self.metric else []) + ["-"] * 7 + ["before the first update"]
        self._write(self._line(cells))

    def follow(self) -> None:
        """Lines for the updates recorded since the last call: one per
        `eval_every` boundary passed, one at the end, and after a divergence
        the last DIVERGENCE_TAIL updates one each."""
        t, E = self.training, self.training.settings.eval_every
        n = t.records.count
        ends = list(range((self.shown // E + 1) * E, n + 1, E))
        if t.done and (not ends or ends[-1] != n):
            ends.append(n)
        if t.divergence is not None and t.done:
            tail = max(self.shown, n - DIVERGENCE_TAIL)
            ends = [u for u in ends if u < tail] + [tail] + list(range(tail + 1, n + 1))
        for end in sorted({u for u in ends if u > self.shown}):
            self._block(self.shown, end)
            self.shown = end
        self.stream.flush()

    def _block(self, lo: int, hi: int) -> None:
        """The line of updates lo+1..hi: what update hi gave, what the block held."""
        t = self.training
        rec, cols, i = t.records, t.records.columns, hi - 1
        raw = cols["grad_norm_raw"][lo:hi]
        finite = np.where(np.isfinite(raw), raw, -np.inf)
        peak = int(np.argmax(finite)) if np.isfinite(finite).any() else None
        every = t.settings.diagnostics_every
        m = (hi - hi % every if hi % every else hi) if every else 0  # the latest update with the spectrum and long_share (u = 1 and multiples)
        m = m or (1 if every else 0)
        rho = float(np.max(cols["spectral_radius"][m - 1])) if m else math.nan
        share = float(cols["long_share"][m - 1]) if m else math.nan
        evaluated = bool(rec.evaluated[i])
        status = UPDATE_STATUSES[rec.status[i]]
        clips = int(np.count_nonzero(rec.clipped[lo:hi]))
        cells = [str(hi), num(cols["loss"][i], na="nan"), num(cols["eval_loss"][i], na="nan") if evaluated else "-"]
        if self.metric:
            cells.append(_metric(t, cols["metric"][i]) if evaluated else "-")
        cells += [
            num(raw[-1], na="nan"),
            num(raw[peak]) if peak is not None else "nan",
            str(lo + peak + 1) if peak is not None else "-",
            str(clips),
            num(rho, na="nan" if m else "-"),
            num(cols["reach"][i]),
            num(share),
        ]
        if status == "diverged":
            cells.append(f"DIVERGED ({t.divergence.what} not finite)")
        else:
            cells.append(status)
        self._write(self._line(cells), "bold red" if status == "diverged" else "")

    def finish(self, notes: list[str] = (), suggestion=None) -> None:
        """The summary, after the last line (`suggestion`: see Training.summary)."""
        self.follow()
        self.stream.write("\n")
        for line in training_summary_lines(self.training.summary(suggestion=suggestion), self.training.config, list(notes)):
            self.stream.write(line + "\n")
        self.stream.flush()


def _metric(training, x: float) -> str:
    return percent(x) if training.task.metric_name == "accuracy" else num(x, na="nan")


def training_chart_text(training, preset_name: str, width: int | None = None, height: int = 18) -> str:
    """The loss and the gradient norm per update, each on a log10 axis
    labelled in powers of ten (log10 values on a linear axis: plotext's own
    log scale corrupts a second draw). Long trainings are cut to the chart's
    width keeping each bucket's min and max, so a spike survives."""
    t = training
    n = t.records.count
    cols, rec = t.records.columns, t.records
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    evaluated = np.flatnonzero(rec.evaluated[:n])
    loss_series = [("loss (batch)", np.arange(1, n + 1), cols["loss"][:n], "dot"), ("eval loss", np.concatenate([[0], evaluated + 1]), np.concatenate([[t.initial_eval[0]], cols["eval_loss"][evaluated]]), "hd")]
    loss_lines = [(f"baseline {num(t.task.baseline_loss)}", t.task.baseline_loss)]
    norm_series = [("|grad| raw", np.arange(1, n + 1), cols["grad_norm_raw"][:n], "hd")]
    clipped = np.flatnonzero(rec.clipped[:n])
    if clipped.size:
        norm_series.append(("after the clip", clipped + 1, cols["grad_norm"][clipped], "x"))
    c = t.config
    norm_lines = [(f"clip threshold {num(c.clip_threshold)}", c.clip_threshold)] if c.clip == "norm" else []
    notes = []
    if t.divergence is not None:
        notes.append(f"DIVERGED at u = {t.divergence.u} ({t.divergence.what} not finite): not drawn")
    charts = [
        _update_chart(f"{preset_name}: loss per update (log10 axis)", loss_series, loss_lines, n, width, height),
        _update_chart(f"{preset_name}: gradient norm per update (log10 axis)", norm_series, norm_lines, n, width, height),
    ]
    return "\n".join(charts) + ("\n" + "\n".join(notes) if notes else "")


def _update_chart(title: str, series, lines, n: int, width: int, height: int) -> str:
    """One plotext chart against update u: (label, u, values, marker) series and (label, y) horizontal lines, log10."""
    import plotext as plt

    plt.clear_figure()
    plt.plot_size(width, height)
    color = stdout_color()
    if not color:
        plt.theme("clear")
    lows, highs = [], []
    for label, u, values, marker in series:
        k, y, _ = bucket_minmax(np.asarray(values, dtype=float), width)
        if not y.size:
            continue
        x = np.asarray(u)[k.astype(int) - 1]
        lows.append(y.min())
        highs.append(y.max())
        plt.plot(x.tolist(), y.tolist(), label=label, marker=marker)
    for label, value in lines:
        if value > 0 and math.isfinite(value):
            y = math.log10(value)
            plt.plot([0, max(1, n)], [y, y], label=label, marker="-")
            lows.append(y)
            highs.append(y)
    if lows:
        lo, hi, ticks, labels = log_ticks(lows, highs)
        plt.yticks(ticks, labels)
        plt.ylim(lo, hi)
    plt.xlim(0, max(1, n))
    plt.xticks(sorted({round(n * i / 4) for i in range(5)}))  # whole updates, not 317.5
    plt.title(title)
    plt.xlabel("update u")
    out = plt.build()
    plt.clear_figure()
    return out if color else plt.uncolorize(out)


# -- progress of a long headless run, on stderr ---------------------------------------

PROGRESS_AFTER = 2.0  # seconds: a run that is done sooner prints nothing on stderr
_REDRAW = 0.1  # a terminal's progress line is redrawn at most this often (seconds)
_LINE_EVERY = 30.0  # without a terminal: a line each 10% of a phase, and at least this often
_SPECTRUM_TIMED_ABOVE = 64  # H: below, the spectrum of W_hh takes milliseconds
_TIMED = 0.05  # seconds: the shortest timing behind an estimate


def duration(seconds: float) -> str:
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def setup_estimate(config, clock=time.perf_counter) -> float:
    """Roughly how many seconds `Run(config)` takes: the forward pass and the
    spectrum of W_hh, timed on a small version of the same work on this
    machine and scaled (per step: T times; the recurrent matmul: H^2; the
    eigenvalue and singular value problems: H^3). 0 for a run that is clearly
    quick, without timing anything."""
    from engine.cells import CELLS
    from engine.diagnostics import weight_spectrum

    T, N, H, G, D = config.steps, config.batch, config.hidden, config.gates, config.input_size
    if T <= 20_000 and H <= 256 and T * N * G * H * (H + D) <= 10**8:
        return 0.0
    rng = np.random.default_rng(0)
    with np.errstate(all="ignore"):
        # Per step: the cell's own forward loop at a small width (the per-step overhead) ...
        h, s = min(H, 16), min(T, 256)
        params = {name: rng.standard_normal(shape) / math.sqrt(shape[-1]) for name, shape in config.cell_type.param_shapes(h, D).items()}
        cell = CELLS[config.cell](params, config.activation, config.leaky_slope, config.gamma or 1.0)
        while True:  # timed over at least _TIMED seconds, so that a busy machine shows in the estimate
            x = rng.standard_normal((s, N, D))
            start = clock()
            cell.forward(x)
            spent = clock() - start
            if spent >= _TIMED or s == T:
                break
            s = min(T, 4 * s)
        per_step = spent / s
        # ... plus the recurrent matmul h_t W_hh^T at up to 1024 wide, scaled by H^2.
        if H > h:
            w = min(H, 1024)
            a, W = rng.standard_normal((N, w)), rng.standard_normal((w, G * w))
            reps, start = 0, clock()
            while reps < 3 or clock() - start < _TIMED:
                a @ W
                reps += 1
            per_step += (clock() - start) / reps * (H / w) ** 2
        forward = T * per_step
        # The spectrum: singular values of the whole W_hh and eigenvalues of each block, scaled by H^3.
        spectrum = 0.0
        if H > _SPECTRUM_TIMED_ABOVE:
            n = min(H, 256)
            start = clock()
            weight_spectrum(rng.standard_normal((G, n, n)) / math.sqrt(n))
            spectrum = (clock() - start) * (H / n) ** 3
    return forward + spectrum


class Progress:
    """How far a long headless run is, on stderr (the CLI formats; the engine
    records). Nothing for a run done within PROGRESS_AFTER seconds; after
    that, each phase (forward pass, backward pass, writing the output) says
    how far it is and roughly how long is left: one line redrawn in place on
    a terminal, otherwise a plain line each 10% (and at least every 30 s),
    and a line when the phase is done."""

    def __init__(self, stream=None, clock=time.monotonic, after: float | None = None):
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError, OSError):
            self.tty = False
        self.clock = clock
        self.after = PROGRESS_AFTER if after is None else after
        self.start = clock()
        self.live = False  # a progress line is on the terminal, not yet ended
        self.phase_start = self.start
        self.shown = False  # this phase has said something
        self.last_draw, self.last_percent = -math.inf, -math.inf
        self._stop_beat: threading.Event | None = None

    def _put(self, text: str, final: bool) -> None:
        if self.stream is None:
            return
        try:
            if self.tty:
                self.stream.write("\r" + text + "\x1b[K" + ("\n" if final else ""))
                self.live = not final
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            self.stream, self.live = None, False  # stderr is gone: the run and its output go on without it
        self.shown = True

    def say(self, text: str) -> None:
        """A line of its own (on a terminal it replaces the progress line)."""
        self._put(f"{PROG}: {text}", final=True)

    def begin(self) -> None:
        self.phase_start, self.shown = self.clock(), False
        self.last_draw, self.last_percent = -math.inf, -math.inf

    def update(self, what: str, done: int, total: int, unit: str) -> None:
        now = self.clock()
        if now - self.start < self.after or done >= total:
            return
        percent = 100 * done // total
        if self.tty:
            if now - self.last_draw < _REDRAW:
                return
        elif percent < self.last_percent + 10 and now - self.last_draw < _LINE_EVERY:
            return
        self.last_draw, self.last_percent = now, percent
        spent = now - self.phase_start
        left = f", ~{duration(spent * (total - done) / done)} left" if done else ""
        self._put(f"{PROG}: {what} {done:,}/{total:,} {unit} ({percent}%){left}", final=False)

    def end(self, what: str) -> None:
        """The phase is done: say so (and how long it took) if it said anything."""
        self._stop_beating()
        if self.shown or self.live:
            self._put(f"{PROG}: {what} in {duration(self.clock() - self.phase_start)}", final=True)

    def close(self) -> None:
        """End a progress line left in place (an interrupted phase)."""
        self._stop_beating()
        if self.live:
            self.live = False
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                self.stream = None

    # -- the phases of `bptt-lab run` --

    def setup(self, config) -> None:
        """Before Run(config): say what is computed and roughly how long it takes, if long."""
        self.begin()
        estimate = setup_estimate(config)
        if estimate >= self.after:
            c = config
            what = f"the forward pass ({c.steps:,} steps, N={c.batch}, H={c.hidden})"
            if c.hidden > _SPECTRUM_TIMED_ABOVE:
                what += f" and the spectrum of W_hh ({c.gates * c.hidden} x {c.hidden})"
            self.say(f"computing {what}: roughly {duration(estimate)} (scaled from a small timing)")
            self._beat("forward pass")

    def _beat(self, what: str) -> None:
        """While a phase that cannot report its own progress runs (the forward
        pass happens inside Run(config)), say every so often that it still runs."""
        stop = self._stop_beat = threading.Event()

        def beat() -> None:
            while not stop.wait(_REDRAW if self.tty else _LINE_EVERY):
                self._put(f"{PROG}: {what}: still computing, {duration(self.clock() - self.phase_start)} so far", final=False)

        self._beating = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
        self._beating.start()

    def _stop_beating(self) -> None:
        if self._stop_beat is not None:
            self._stop_beat.set()
            self._beating.join()  # its last line, if any, is out before the phase's end
            self._stop_beat = None

    def backward(self, run) -> None:
        """Step the backward pass to the end in chunks of about 50 ms, saying how far it is."""
        self.begin()
        n = 16
        while not run.done:
            start = self.clock()
            run.advance(n)
            spent = self.clock() - start
            if spent < 0.025:
                n *= 2
            elif spent > 0.1 and n > 1:
                n //= 2
            self.update("backward pass", run.k, run.T, "steps")
        self.end(f"backward pass done: {run.T:,} steps")

    def writing(self, fmt: str):
        """A writer's progress callback for `fmt` (the phase begins now)."""
        self.begin()
        return lambda done, total: self.update(f"writing {fmt}", done, total, "records")


def presets_table(presets: dict[str, Preset], color: bool = False) -> str:
    """Name, lab (`step`: one backward pass, `bptt-lab run`; `train`: a training, `bptt-lab train`) and description."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("preset", no_wrap=True)
    table.add_column("lab", no_wrap=True)
    table.add_column("what it shows")
    for p in presets.values():
        source = "" if p.source == "built-in" else f" [from {p.source}]"
        table.add_row(p.name, "train" if p.training else "step", p.description + source)
    console, buf = _console(color)
    console.print(table)
    return _text(buf)


def presets_json(presets: dict[str, Preset]) -> str:
    doc = [
        {
            "name": p.name,
            "description": p.description,
            "look_for": p.look_for,
            "source": p.source,
            "config": p.config.to_dict(),
            "training": p.training.to_dict() if p.training else None,
        }
        for p in presets.values()
    ]
    return json.dumps(finite_or_none(doc), indent=2, allow_nan=False) + "\n"
