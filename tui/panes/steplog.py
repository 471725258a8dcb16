"""The step log: one line per backward step up to the one on screen, under a
header row, in fixed columns that never run together.

The log is a window onto the records: it shows the last lines that fit, up to
the record on screen, so stepping back and forth costs a few lines a frame
whatever the length of the run.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..format import clip_text, num, percent, status_tag
from .view import View

# (header, width, what ? says about it); the gate column only for cells with a keep gate.
NORM_W, RATIO_W, SIGMA_W, SAT_W, GATE_W = 9, 9, 7, 4, 6


def columns(cell, steps: int) -> list[tuple[str, int]]:
    w = max(2, len(str(steps)))
    cols = [("k", w), ("t", w), ("|dL/dh|", NORM_W), ("ratio", RATIO_W), ("σ(J)", SIGMA_W), ("sat", SAT_W)]
    if cell.keep_gate:
        cols.append((f"{cell.keep_gate}-gate", GATE_W))
    return cols


def header_line(cell, steps: int) -> str:
    return " ".join(f"{name:>{width}}" for name, width in columns(cell, steps)) + " events"


def step_line(r, cell, steps: int) -> str:
    """One record in the columns of header_line; tags (CLIP, VANISHED, ...) at the end."""
    w = max(2, len(str(steps)))
    cells = [
        f"{r.k:>{w}}",
        f"{r.t:>{w}}",
        f"{num(r.grad_norm, na='nan'):>{NORM_W}}",
        f"{'x' + num(r.ratio):>{RATIO_W}}",
        f"{num(r.jacobian_sigma):>{SIGMA_W}}",
        f"{percent(r.saturation):>{SAT_W}}",
    ]
    if cell.keep_gate:
        cells.append(f"{num(r.gate_mean):>{GATE_W}}")
    tags = " ".join(x for x in (clip_text(r.clip, short=True), status_tag(r)) if x)
    return " ".join(cells) + (f" {tags}" if tags else "")


class StepLog(Vertical):
    DEFAULT_CSS = """
    StepLog {
        height: 9;
        border-top: solid $primary-darken-2;
    }
    StepLog > #log-header {
        height: 1;
        color: $text-muted;
        text-style: bold;
    }
    StepLog > #log-body {
        height: 1fr;
    }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._drawn = None  # what the body shows now: skip a frame that would draw the same

    def compose(self) -> ComposeResult:
        yield Static("", id="log-header")
        yield Static("", id="log-body")

    def lines(self) -> list[str]:
        """The text of the body's lines (what a test reads)."""
        return [line for line in str(self.query_one("#log-body", Static).render()).split("\n") if line]

    def show(self, view: View) -> None:
        run = view.run
        body = self.query_one("#log-body", Static)
        height = max(1, body.size.height or 1)
        key = (id(run), view.shown, height, self.app.current_theme.name, run.k if run else 0)
        if key == self._drawn:
            return
        self._drawn = key
        if run is None:
            self.query_one("#log-header", Static).update("")
            body.update("")
            return
        cell, T = run.config.cell_type, run.T
        self.query_one("#log-header", Static).update(header_line(cell, T))
        theme = self.app.current_theme
        colour = {"vanishing": theme.warning, "exploding": theme.error, "overflow": theme.error, "truncated": theme.secondary}
        text = Text(no_wrap=True, overflow="ellipsis")
        first = max(1, view.shown - height + 1)
        for k in range(first, view.shown + 1):
            r = run.records[k]
            style = colour.get(r.status) or ""
            if r.clip is not None:
                style = f"bold reverse {theme.accent or ''}".strip()  # stands out without colour too
            text.append(step_line(r, cell, T), style=style)
            if k < view.shown:
                text.append("\n")
        body.update(text)
