"""The step log: one line per backward step up to the one on screen, under a
header row, in fixed columns that never run together.

The log is a window onto the records: it shows the last lines that fit, up to
the record on screen, so stepping back and forth costs a few lines a frame
whatever the length of the run.

Columns. Each number column is as wide as the longest text `num()` gives for
its quantity (all of them are >= 0, nan or inf: at most 9 characters, as in
1.23e-300; the ratio, shown as a factor, one more: x1.23e-300), and columns
are joined by a space, so no value can reach into the next one. k and t are as wide as T. Which columns a line holds depends on the
room there is: k, t, the words of a text run, |dL/dh| and the ratio always;
then, most telling first, as many of the others as leave room for the events
(VANISHED is 8 characters, TRUNCATED 9). The header row is built from the
same columns, so it always sits over them.

Words. For a text run (`config.text`, next-word prediction, engine/data.py)
the words w_1..w_n give inputs x_t = w_t, t = 1..T = n-1, and targets
y_t = w_{t+1}. h_t is the state after reading w_t (h_0: nothing read), and
record k is dL/dh_t with t = T - k (SPEC 7), so its line shows `word` = w_t
and `next` = w_{t+1}: the word h_t is trained to predict (with the loss on
every step), which is also the word read by the transition t+1 the record's
backward step has just gone through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from engine.printable import printable
from engine.records import StepRecord

from ..format import clip_text, num, percent, status_tag
from .view import View

NUM_W = 9  # the longest num() of a quantity >= 0: 1.23e-300, 1.23e+308 (the ratio: one more, x1.23e-300)
SAT_W = 4  # percent() of a fraction in [0, 1]: 100%
WORD_MAX = 12  # a longer word is cut with an ellipsis
EVENTS_MIN = len("TRUNCATED")  # the room kept for the events when columns are left out

# How each kind of event looks. Colours are theme variables (readable on light
# and dark themes); every one is also bold or reverse, so that without colour
# (NO_COLOR) a CLIP line still stands out and the tags still read as tags.
CLIP_LINE = "bold reverse $text-accent"
CROSSED = "bold underline $text-accent"
TAG_STYLE = {
    "vanishing": "bold $text-warning",
    "exploding": "bold $text-error",
    "overflow": "bold reverse $error",
    "truncated": "bold $text-secondary",
}


@dataclass(frozen=True)
class Column:
    """A column of the log: its header, width and alignment, and the text of a
    record's cell."""

    name: str
    width: int
    text: Callable[[object], str]
    left: bool = False

    def cell(self, record) -> str:
        s = self.text(record)
        if self.left:
            return set_cell_size(s, self.width)  # pads, or cuts a wide word (by display cells)
        return s.rjust(self.width)  # never cut: a number longer than its column pushes the line, it does not overwrite

    def head(self) -> str:
        return self.name.ljust(self.width) if self.left else self.name.rjust(self.width)


def words_of(config) -> list[str] | None:
    """The words w_1..w_n of a text run (as engine/data.py splits them), made safe to print; None otherwise."""
    if not getattr(config, "text", None):
        return None
    return [printable(w) for w in config.text.split()]


def word_at(words: list[str], t: int) -> str | None:
    """w_t, the word h_t has just read (1-based: w_1 = words[0]); None for h_0."""
    return words[t - 1] if 1 <= t <= len(words) else None


def next_word(words: list[str], t: int) -> str | None:
    """w_{t+1}: the target of step t, and the input of transition t+1."""
    return words[t] if 0 <= t < len(words) else None


def _fit(word: str | None, width: int) -> str:
    if word is None:
        return "-"
    return word if cell_len(word) <= width else set_cell_size(word, width - 1) + "…"


def _num(name: str, na: str = "-") -> Callable[[object], str]:
    return lambda r: num(getattr(r, name), na=na)


def _times(r) -> str:
    """The ratio as a factor, x1.26 (as the summary's growth per step); nan and inf as they are."""
    shown = num(r.ratio)
    return shown if shown in ("-", "inf") else "x" + shown


def _counts_dead(config) -> bool:
    """Whether records say how many units are dead (f' = 0 exactly: a ReLU that is off) for this config."""
    counts = getattr(config.cell_type, "counts_dead", None)
    return "dead" in StepRecord.__dataclass_fields__ and counts is not None and counts(config.activation, config.leaky_slope)


def all_columns(run) -> tuple[list[Column], list[Column]]:
    """(the columns every line has, the others in the order they are given room).

    `run` needs config, T, jacobian.exact and bound_factor (a Run has them)."""
    c, cell, T = run.config, run.config.cell_type, run.T
    w = max(1, len(str(T)))
    always = [Column("k", w, lambda r: str(r.k)), Column("t", w, lambda r: str(r.t))]
    words = words_of(c)
    if words:
        ww = max(4, min(WORD_MAX, max(cell_len(x) for x in words)))
        always += [
            Column("word", ww, lambda r: _fit(word_at(words, r.t), ww), left=True),
            Column("next", ww, lambda r: _fit(next_word(words, r.t), ww), left=True),
        ]
    always += [Column("|dL/dh|", NUM_W, _num("grad_norm", "nan")), Column("ratio", NUM_W + 1, _times)]
    optional = []
    if cell.keep_gate:
        optional.append(Column(f"{cell.keep_gate}-gate", NUM_W, _num("gate_mean")))
    optional.append(Column("σ(J)" if run.jacobian.exact else "~σ(J)", NUM_W, _num("jacobian_sigma")))
    if _counts_dead(c):  # a ReLU's f' is 1 or 0: dead units are what stops its gradient, sat reads 0%
        optional.append(Column("dead", SAT_W, lambda r: percent(getattr(r, "dead", float("nan")))))
    if cell.has_cell_state:
        optional.append(Column("|dL/dc|", NUM_W, _num("cell_norm", "nan")))
    optional.append(Column("sat", SAT_W, lambda r: percent(r.saturation)))
    if cell.has_cell_state and "hidden_path" in StepRecord.__dataclass_fields__:
        optional.append(Column("h-path", NUM_W, _num("hidden_path")))
    if run.bound_factor is not None:
        optional.append(Column("bound", NUM_W, _num("bound")))
    optional.append(Column("contrib", NUM_W, _num("contribution", "nan")))
    optional.append(Column("|grad|", NUM_W, _num("param_norm", "nan")))
    return always, optional


ORDER = ("k", "t", "word", "next", "|dL/dh|", "ratio", "|dL/dc|", "h-path", "f-gate", "z-gate", "σ(J)", "~σ(J)", "sat", "dead", "bound", "contrib", "|grad|")


def layout(run, width: int | None = None) -> list[Column]:
    """The columns of this run's log in `width` cells (None: all of them),
    in the order of ORDER."""
    always, optional = all_columns(run)
    chosen = list(always)
    used = line_width(chosen)
    for col in optional:
        if width is None or used + 1 + col.width + 1 + EVENTS_MIN <= width:
            chosen.append(col)
            used += 1 + col.width
    return sorted(chosen, key=lambda col: ORDER.index(col.name))


def line_width(cols: list[Column]) -> int:
    """Cells taken by the columns and the spaces between them (the events not counted)."""
    return sum(col.width for col in cols) + len(cols) - 1


def header_line(cols: list[Column]) -> str:
    return " ".join(col.head() for col in cols) + " events"


def header_content(cols: list[Column]) -> Content:
    """header_line with each name underlined on its own, so that names stay apart."""
    parts: list = []
    for col in cols:
        pad = col.width - cell_len(col.name)
        parts += [" " * pad if not col.left else "", (col.name, "underline"), " " * pad if col.left else "", " "]
    return Content.assemble(*parts, ("events", "underline"))


def events(r) -> list[tuple[str, str]]:
    """(text, style) of the record's events: the status tag first (it survives a
    narrow screen), then the clip or the crossing of a clip threshold."""
    out = []
    tag = status_tag(r)
    if tag:
        out.append((tag, TAG_STYLE[r.status]))
    if r.clip is not None:
        out.append((clip_text(r.clip, short=True), "" if r.clip.applied else CROSSED))
    return out


def step_line(r, cols: list[Column]) -> str:
    """One record in the columns of header_line; events (VANISHED, CLIP ...) at the end."""
    text = " ".join(col.cell(r) for col in cols)
    tags = " ".join(t for t, _ in events(r))
    return text + (f" {tags}" if tags else "")


def step_content(r, cols: list[Column]) -> Content:
    """step_line with its styles: a CLIP line in reverse video, each tag bold in its colour."""
    parts: list = [" ".join(col.cell(r) for col in cols)]
    for text, style in events(r):
        parts += [" ", (text, style) if style else text]
    line = Content.assemble(*parts)
    if r.clip is not None and r.clip.applied:
        line = line.stylize_before(CLIP_LINE)
    return line


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
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    StepLog > #log-body {
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._drawn = None  # what the body shows now: skip a frame that would draw the same
        self._view: View | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="log-header", markup=False)
        yield Static("", id="log-body", markup=False)

    def lines(self) -> list[str]:
        """The text of the body's lines (what a test reads)."""
        return [line for line in str(self.query_one("#log-body", Static).render()).split("\n") if line]

    def header(self) -> str:
        """The text of the header row."""
        return str(self.query_one("#log-header", Static).render())

    def on_resize(self) -> None:
        if self._view is not None:  # the columns and the lines that fit depend on the size
            self.show(self._view)

    def show(self, view: View) -> None:
        self._view = view
        run = view.run
        body = self.query_one("#log-body", Static)
        size = self.content_size  # the body's: all of it but the header row (read here, not from the body, which may not be laid out yet)
        height = max(1, size.height - 1)
        width = size.width or None  # before the first layout: every column
        key = (id(run), view.shown, height, width, run.k if run else 0)
        if key == self._drawn:
            return
        self._drawn = key
        if run is None:
            self.query_one("#log-header", Static).update("")
            body.update("")
            return
        cols = layout(run, width)
        self.query_one("#log-header", Static).update(header_content(cols))
        first = max(1, view.shown - height + 1)
        lines = [step_content(run.records[k], cols) for k in range(first, view.shown + 1)]
        body.update(Content("\n").join(lines))

