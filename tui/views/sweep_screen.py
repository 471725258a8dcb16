"""The sweep screen (key d): a saved `bptt-lab sweep --format json` drawn as
the phase diagram (tui/views/sweep_chart.py), with a cursor over the cells
that shows each cell's settings and numbers.

It opens the newest sweep JSON in the current folder (a .json file that
names the schema bptt-lab.sweep/1 at its start); the path field under the
picture opens another (o, then enter). A file that cannot be read or is not
a sweep is said in one line; what was on screen stays.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from engine.printable import printable
from engine.sweep import SCHEMA, Sweep, SweepError

from ..screens import HelpScreen
from . import sweep_chart
from .sweep import title

MAX_BYTES = 64 * 2**20
HEAD_BYTES = 200  # a sweep JSON names its schema within its first bytes
MIN_WIDTH = 60
AROUND_GRID = 11  # lines of the screen that are not the grid


def newest_sweep(folder: Path) -> Path | None:
    """The most recently changed bptt-lab sweep JSON in `folder`, if any."""
    found = []
    for path in folder.glob("*.json"):
        try:
            with open(path, "rb") as f:
                head = f.read(HEAD_BYTES)
            found.append((path.stat().st_mtime, path.name, path))
        except OSError:
            continue
        if SCHEMA.encode() not in head:
            found.pop()
    return max(found)[2] if found else None


def read_sweep(path: Path) -> Sweep:
    """The sweep in `path`, or SweepError saying in one line why not."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SweepError(f"it is larger than {MAX_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise SweepError("it is not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SweepError(f"it is not JSON ({exc})") from None
    return Sweep.from_dict(doc)


def checked_sweep(path: Path) -> tuple[Path, Sweep]:
    """`tui --sweep FILE`: the file read and checked before the dashboard starts (a UsageError otherwise)."""
    from ..cli import UsageError

    try:
        return path, read_sweep(path)
    except SweepError as exc:
        raise UsageError(printable(f"--sweep {path}: {exc}", 300)) from None


def open_at_start(app, path: Path, sweep: Sweep) -> None:
    """Queue the sweep screen on `sweep` for when the app has started (called before app.run())."""
    app.call_later(lambda: app.push_screen(SweepScreen(opened=(path, sweep))))


def cell_text(sweep: Sweep, i: int, j: int) -> str:
    """The cell under the cursor: its two settings and what it measured."""
    c = sweep.cells[i][j]
    g = c["log10_growth"]
    where = f"{sweep.x.field} = {sweep.x.label(j)}, {sweep.y.field} = {sweep.y.label(i)}"
    if math.isnan(g):
        growth = "growth undetermined"
    elif g == -math.inf:
        growth = "the gradient became exactly 0"
    else:
        verdict = "vanishing" if g < 0 else "exploding" if g > 0 else "steady"
        growth = f"x{10**g:.3g} a step (log10 {g:+.3f}): {verdict}"
    if c["status"] == "overflow":
        growth += f", up to the overflow at k = {c.get('overflow_k')}" if c.get("overflow_k") else ", the forward pass overflowed"
    spectrum = f"σmax {_num(c.get('sigma_max'))}"
    if c.get("sigma_gamma") is not None:
        spectrum += f" · σmax·γ {_num(c['sigma_gamma'])}" + (" < 1: vanishing guaranteed" if c["sigma_gamma"] < 1 else "")
    if c.get("spectral_radius") is not None:
        spectrum += f" · radius {_num(c['spectral_radius'])}"
    return f"{where}: {growth}\n{spectrum}"


def _num(x) -> str:
    return "-" if x is None else f"{x:.3g}"


class SweepHelpScreen(HelpScreen):
    def __init__(self) -> None:
        from engine.presets import BUILTIN

        super().__init__(BUILTIN["phase-diagram"])

    def sections(self):
        return [("The phase diagram: a saved bptt-lab sweep", SWEEP_HELP), ("Keys", SWEEP_KEYS)]


SWEEP_HELP = [
    ("a cell", "one backward pass of the sweep's preset with that row's and column's settings: its mean log10 growth per step "
     "of |dL/dh| (the summary's growth per step, as a power of ten)"),
    ("colour", "blue: the gradient vanishes, red: it explodes, white: growth 1 a step; the scale under the picture is in log10 growth per step"),
    ("no colour", f"vanishing {sweep_chart.VANISH} and exploding {sweep_chart.EXPLODE}, weak to strong; ? undetermined"),
    (sweep_chart.MARK_SIGMA, "σmax(W_hh)·γ = 1: where it is below 1, every Jacobian shrinks the gradient: vanishing is guaranteed (SPEC 1)"),
    (sweep_chart.MARK_RADIUS, "spectral radius = 1: the growth per step of the pure matrix chain (SPEC 2)"),
    (sweep_chart.MARK_BOTH, "both lines in one cell"),
    ("lines", "each crossing interpolated between the two neighbouring cells and marked in the nearer one (exact on a scale axis)"),
    ("file", "the newest bptt-lab sweep JSON in the current folder; bptt-lab sweep --format json --output FILE makes one"),
]
SWEEP_KEYS = [
    ("arrows, h j k l", "move the cursor over the cells"),
    ("o", "type a sweep file's path, enter opens it"),
    ("escape, d", "back"),
    ("q", "quit"),
]


class SweepScreen(Screen):
    CSS_PATH = "sweep.tcss"
    OWNS_KEYS = True  # the app's per-step keys are off here (tui/app.py check_action)
    AUTO_FOCUS = None  # the keys move the cursor; o focuses the path field
    BINDINGS = [
        Binding("escape,d", "back", "back", key_display="esc"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "app.quit", "quit"),
        Binding("o", "open", "open file"),
        Binding("left,h", "move(0, -1)", "←", show=False),
        Binding("right,l", "move(0, 1)", "→", show=False),
        Binding("up,k", "move(-1, 0)", "↑", show=False),
        Binding("down,j", "move(1, 0)", "↓", show=False),
    ]

    def __init__(self, folder: Path | None = None, opened: tuple[Path, Sweep] | None = None) -> None:
        """`opened`: a sweep read already (tui --sweep FILE); else the newest in `folder` (default: the current one)."""
        super().__init__()
        self.folder = folder or Path.cwd()
        self.opened = opened
        self.sweep: Sweep | None = None
        self.path: Path | None = None
        self.cursor = (0, 0)
        self.note = ""

    def compose(self) -> ComposeResult:
        yield Static(id="sweep-head", markup=False)
        with VerticalScroll(id="sweep-scroll", can_focus=False):  # the arrows move the cursor, not the scroll
            yield Static(id="sweep-grid")
        yield Static(id="sweep-axis")
        yield Static(id="sweep-cell", markup=False)
        yield Input(placeholder="a sweep JSON: bptt-lab sweep -f json -o sweep.json", id="sweep-path")
        yield Static(f"Terminal too small: the phase diagram needs at least {MIN_WIDTH} x 16.", id="sweep-too-small")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        if self.opened is not None:
            self.path, self.sweep = self.opened
            self.query_one("#sweep-path", Input).value = str(self.path)
            self.redraw()
            return
        found = newest_sweep(self.folder)
        if found is None:
            self.note = f"No sweep JSON in {printable(str(self.folder))}: make one with bptt-lab sweep -f json -o sweep.json, then o to open it."
        else:
            shown = os.path.relpath(found, self.folder) if found.parent == self.folder else str(found)
            self.query_one("#sweep-path", Input).value = shown
            self.open(found, shown)
        self.redraw()

    def on_screen_resume(self) -> None:
        self.call_after_refresh(self.set_focus, None)  # nothing focused: the keys are the cursor's

    def on_resize(self) -> None:
        self.redraw()

    # -- opening a file ---------------------------------------------------------------

    def open(self, path: Path, shown: str | None = None) -> None:
        """Read `path` (`shown`: its name as the user gave it) and draw it; a bad file is said in one line."""
        try:
            sweep = read_sweep(path)
        except SweepError as exc:
            self.note = printable(f"cannot open {shown or path}: {exc}", 300)
        else:
            self.sweep, self.path, self.cursor, self.note = sweep, path, (0, 0), ""
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            path = Path(text).expanduser()
            self.open(path if path.is_absolute() else self.folder / path, text)
        self.set_focus(None)

    def action_open(self) -> None:
        self.query_one("#sweep-path", Input).focus()

    # -- the cursor ---------------------------------------------------------------------

    def action_move(self, di: int, dj: int) -> None:
        if self.sweep is None:
            return
        i = min(max(self.cursor[0] + di, 0), len(self.sweep.y.values) - 1)
        j = min(max(self.cursor[1] + dj, 0), len(self.sweep.x.values) - 1)
        self.cursor = (i, j)
        self.redraw()
        h = self._row_height()
        self._keep_in_view(1 + i * h, 1 + (i + 1) * h - 1)  # line 0 is the axis's name

    def _keep_in_view(self, first: int, last: int) -> None:
        scroll = self.query_one("#sweep-scroll", VerticalScroll)
        top, shown = round(scroll.scroll_y), scroll.size.height
        if first < top:
            scroll.scroll_to(y=first, animate=False)
        elif shown and last >= top + shown:
            scroll.scroll_to(y=last - shown + 1, animate=False)

    def _room(self) -> int:
        """Lines the grid may take: what the lines around it leave."""
        return max(3, self.size.height - AROUND_GRID)

    def _row_height(self) -> int:
        """Lines per row: up to 3 while all rows fit, so a few rows still make a picture."""
        rows = len(self.sweep.y.values) if self.sweep is not None else 1
        return max(1, min(3, (self._room() - 1) // rows))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        self.app.push_screen(SweepHelpScreen())

    # -- drawing --------------------------------------------------------------------------

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        head, grid, axis, cell = self.query_one("#sweep-head", Static), self.query_one("#sweep-grid", Static), self.query_one("#sweep-axis", Static), self.query_one("#sweep-cell", Static)
        if self.sweep is None:
            head.update("phase diagram: no sweep open")
            grid.update("")
            axis.update("")
            cell.update(self.note)
            return
        width = max(MIN_WIDTH, self.size.width - 2)
        # The grid scrolls in what the lines under it leave (the head, axis, scale, legend, cell, path and footer).
        self.query_one("#sweep-scroll").styles.max_height = self._room()
        color = "NO_COLOR" not in os.environ
        s = self.sweep
        head.update(printable(f"{self.path.name}: " + title(s), 400))
        grid.update(Text("\n").join(sweep_chart.grid_lines(s, width, color, self.cursor, self._row_height())))
        below = Text("\n".join(sweep_chart.x_axis_lines(s, width)) + "\n")
        below.append_text(sweep_chart.scale_line(s, color))
        below.append("\n" + sweep_chart.legend(short=self.size.width < 100))
        axis.update(below)
        cell.update(self.note or cell_text(s, *self.cursor))
