"""The update log: one line per update up to the one the screen is about,
under a header row, in the step log's fixed columns (tui/panes/steplog.py).

Columns: u, the batch's loss, the task metric where it was evaluated (every
E updates), the gradient norm before clipping; then, as the width allows,
reach and long_share, the spectral radius and sigma_max of W_hh (every
diagnostics_every updates); then the events: CLIP before->after (or the number of
steps a `step` rule clipped), DIVERGED with what was not finite. The line
under the cursor is marked with ▸ in the gutter.

Like the step log (whose widget it is) it is a window: the last lines that fit, ending at the
cursor (or the latest update), so a frame costs a few lines whatever the
length of the training.
"""

from __future__ import annotations

import numpy as np
from textual.content import Content
from textual.widgets import Static

from engine.training import DIVERGED

from ..format import num
from ..panes.steplog import CLIP_LINE, NUM_W, TAG_STYLE, Column, StepLog, header_content, line_width
from .frame import Frame

EVENTS_MIN = len("DIVERGED (parameters)")
DIVERGED_STYLE = TAG_STYLE["overflow"]
CURSOR = "▸"


class Row:
    """Update u's values, read from the records' columns (what a Column formats)."""

    def __init__(self, frame: Frame, u: int) -> None:
        t = frame.training
        rec, cols, i = t.records, t.records.columns, u - 1
        self.u = u
        self.cursor = frame.cursor == u
        self.loss = float(cols["loss"][i])
        self.metric = float(cols["metric"][i]) if rec.evaluated[i] else None
        self.grad_norm_raw = float(cols["grad_norm_raw"][i])
        self.grad_norm = float(cols["grad_norm"][i])
        with np.errstate(all="ignore"):
            self.radius = float(np.max(cols["spectral_radius"][i]))
            self.sigma_max = float(np.max(cols["sigma_max"][i]))
        self.reach = float(cols["reach"][i])
        self.long_share = float(cols["long_share"][i])
        self.clipped = bool(rec.clipped[i])
        self.clip_steps = int(rec.clip_steps[i])
        self.diverged = rec.status[i] == DIVERGED
        self.what = t.divergence.what if self.diverged and t.divergence is not None else None


def _percent(x: float | None) -> str:
    return "" if x is None else "nan" if x != x else f"{100 * x:.1f}%"


def columns(frame: Frame) -> tuple[list[Column], list[Column]]:
    """(the columns every line has, the others in the order they are given room)."""
    t = frame.training
    w = max(1, len(str(t.settings.updates)))
    task = t.task
    if task.metric_name == "accuracy":
        metric = Column("eval acc", 8, lambda r: _percent(r.metric))
    else:
        metric = Column(f"eval {task.metric_name}", NUM_W, lambda r: "" if r.metric is None else num(r.metric, na="nan"))
    always = [
        Column("", 1, lambda r: CURSOR if r.cursor else " "),
        Column("u", w, lambda r: str(r.u)),
        Column("loss", NUM_W, lambda r: num(r.loss, na="nan")),
        metric,
        Column("|grad|", NUM_W, lambda r: num(r.grad_norm_raw, na="nan")),
    ]
    # reach and long_share first: the right chart keeps the spectrum's detail and often
    # leaves them off its bottom edge, so these columns are where they can be read.
    optional = []
    if t.config.loss_on == "last":
        optional += [Column("reach", NUM_W, lambda r: num(r.reach)), Column("long", 5, lambda r: "-" if r.long_share != r.long_share else f"{100 * r.long_share:.0f}%")]
    optional += [Column("radius", NUM_W, lambda r: num(r.radius)), Column("σ_max", NUM_W, lambda r: num(r.sigma_max))]
    return always, optional


def layout(frame: Frame, width: int | None) -> list[Column]:
    """The columns that fit in `width` cells with room for the events (None: all)."""
    always, optional = columns(frame)
    chosen = list(always)
    used = line_width(chosen)
    for col in optional:
        if width is None or used + 1 + col.width + 1 + EVENTS_MIN <= width:
            chosen.append(col)
            used += 1 + col.width
    return chosen


def events(r: Row) -> list[tuple[str, str]]:
    out = []
    if r.diverged:
        out.append((f"DIVERGED ({r.what or 'not finite'})", DIVERGED_STYLE))
    if r.clipped:
        text = f"CLIP {r.clip_steps} steps" if r.clip_steps else f"CLIP {num(r.grad_norm_raw)}->{num(r.grad_norm)}"
        out.append((text, ""))
    return out


def line_text(r: Row, cols: list[Column]) -> str:
    tags = " ".join(t for t, _ in events(r))
    return " ".join(col.cell(r) for col in cols) + (f" {tags}" if tags else "")


def line_content(r: Row, cols: list[Column]) -> Content:
    parts: list = [" ".join(col.cell(r) for col in cols)]
    for text, style in events(r):
        parts += [" ", (text, style) if style else text]
    line = Content.assemble(*parts)
    if r.clipped:
        line = line.stylize_before(CLIP_LINE)
    if r.cursor:
        line = line.stylize_before("bold")
    return line


class UpdateLog(StepLog):
    """The step log's widget (header row, body, what a test reads) drawing a Frame."""

    DEFAULT_CSS = """
    UpdateLog {
        height: 8;
    }
    """

    def show(self, frame: Frame) -> None:
        self._view = frame  # drawn again on a resize
        body = self.query_one("#log-body", Static)
        size = self.content_size
        height = max(1, size.height - 1)
        width = size.width or None
        t = frame.training
        key = (id(t), frame.count, frame.cursor, height, width, t.divergence if t else None)
        if key == self._drawn:
            return
        self._drawn = key
        head = self.query_one("#log-header", Static)
        if t is None:
            head.update("", layout=False)
            body.update("", layout=False)
            return
        cols = layout(frame, width)
        head.update(header_content(cols), layout=False)
        last = frame.at
        rows = [Row(frame, u) for u in range(max(1, last - height + 1), last + 1)]
        body.update(Content("\n").join([line_content(r, cols) for r in rows]), layout=False)
