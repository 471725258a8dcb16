"""The heatmap screen (h in the per-step view): |dL/dh_t| per unit and step,
and the strip of ||dL/dx_t|| per input step, for the run on show.

It follows the run as it plays: the app's keys (space, n, b, e, ...) still
step it, and a timer at the dashboard's frame rate redraws records 0..shown
when they, or the screen's size, changed. The picture is tui/views/heatmap_picture.py's;
the line under it gives the numbers of the record on show.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Static

from engine.norms import norm as l2

from ..format import num
from ..panes.steplog import word_at, words_of
from ..screens import HelpScreen
from . import heatmap_picture as pic

REDRAW_HZ = 10  # the dashboard's frame rate (tui/app.py)


def marks() -> list[tuple[str, str]]:
    """What every mark of the heatmap means (the help, and a test, read this)."""
    return [
        ("cell", "log10 |dL/dh_t| of one unit: ||dL/dh_t[:, j]|| / N, the unit's gradient over the batch divided by N, "
         "so the units of one column add up (in squares) to the log's |dL/dh|. Rows: units 1..H, top down."),
        ("k", "across: the backward step, as on the chart. Column k is h_t with t = T - k; k = 0 is dL/dh_T, "
         "where the pass starts, k = T the initial state h_0."),
        ("scale", f"one colour and one character per level ({' '.join(pic.GLYPHS)}, smallest to largest), each level "
         "a whole number of decades, from the smallest value on screen to the largest; it follows the run as it plays."),
        ("bins", "when there are more steps than columns or more units than rows, a cell is the largest value of its "
         "bin (the max of log10): a gradient that still arrives anywhere in the bin shows."),
        (pic.ZERO, "exactly zero: nothing arrives (truncation has cut every output's gradient, or every unit is dead)."),
        (pic.NOT_FINITE, "not finite: the gradient overflowed."),
        ("blank", "a step the backward pass has not computed yet."),
        ("dL/dx", "the input connectivity ||dL/dx_t|| / N: how much input step t can still change the loss "
         "(dL/dx_t = dL/dnet_t W_ih, the gates' pre-activations summed). x_t sits in the column of h_t, the state that "
         "read it, so it is known one step after h_t. Same scale as the map."),
        ("word", "text runs: the word read at t, and ||dL/dx_t|| in figures when the columns are wide enough."),
        ("h, escape", "back to the per-step view; space, n, b, e play and step the run from here too; q quits."),
    ]


class HeatmapHelp(HelpScreen):
    def sections(self):
        p = self.preset
        return [(p.name, [("shows", p.description), ("look for", p.look_for)]), ("The heatmap", marks())]


class Canvas(Widget):
    """Lines of Rich Text drawn as they are, through the line API (no wrapping or
    layout of the text: a frame of 40 lines of cells costs the strips, not a Static's layout)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: list[Text] = []
        self._strips: list[Strip] = []

    def show(self, lines: list[Text]) -> None:
        console = self.app.console
        self.lines = lines
        self._strips = [Strip(list(line.render(console))) for line in lines]
        self.refresh()

    def text(self) -> str:
        return "\n".join(line.plain for line in self.lines)

    def render_line(self, y: int) -> Strip:
        strip = self._strips[y] if y < len(self._strips) else Strip.blank(0)
        return strip.crop_extend(0, self.size.width, self.rich_style).apply_style(self.rich_style)


class HeatmapScreen(Screen):
    CSS_PATH = "heatmap.tcss"
    BINDINGS = [
        Binding("escape,h", "back", "back"),
        Binding("question_mark", "help", "help"),
        Binding("q", "app.quit", "quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._drawn = None

    def compose(self) -> ComposeResult:
        yield Static(id="hm-title", markup=False)
        yield Canvas(id="hm-picture")
        yield Static(id="hm-numbers", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.set_interval(1 / REDRAW_HZ, self.redraw)
        self.redraw()

    def on_resize(self) -> None:
        self._drawn = None
        self.call_after_refresh(self.redraw)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        app = self.app
        self.app.push_screen(HeatmapHelp(app.preset, app.config.cell_type, app.config))

    def redraw(self) -> None:
        """Draw records 0..shown when they or the size changed (cheap otherwise)."""
        app, box = self.app, self.query_one("#hm-picture", Canvas)
        run = app.engine_run
        key = (id(run), run.k if run else None, app.shown, box.size)
        if key == self._drawn or not box.size.width:
            return
        self._drawn = key
        if run is None:
            self.query_one("#hm-title", Static).update("heatmap: the run is being built")
            return
        words = words_of(run.config)
        self.query_one("#hm-title", Static).update(self.title_text(run, app))
        box.show(pic.picture(run.gradient_map, app.shown, box.size.width, box.size.height, words))
        self.query_one("#hm-numbers", Static).update(numbers(run, app.shown, words))

    @staticmethod
    def title_text(run, app) -> str:
        m = run.gradient_map
        binned = "" if m.stride == 1 else f"; {m.stride} steps a stored column"
        return (f"heatmap · {app.preset.name} · k = {app.shown}/{run.T} · log10 |dL/dh_t| per unit (1..{run.H} down), "
                f"backward step k across (t = T - k){binned} · ? marks")


def numbers(run, shown: int, words: list[str] | None) -> str:
    """The record on show in figures: its units' range, the largest unit, and the input it reached last."""
    m = run.gradient_map
    units, _ = m.columns(shown)
    if m.stride > 1 or not units.shape[0]:
        return ""
    u, t = units[-1], run.T - shown
    norm = l2(u)  # the units' own norm: the log's |dL/dh|, without underflow
    line = f"k = {shown}, t = {t}: |dL/dh| {num(norm)}, " + (
        f"units {num(float(u.min()))} to {num(float(u.max()))} (largest: unit {int(u.argmax()) + 1})" if u.max() > 0 else "exactly 0: nothing arrives"
    )
    if shown:
        word = word_at(words, t + 1) if words else None
        line += f" · x_{t + 1}" + (f" '{word}'" if word else "") + f": ||dL/dx|| {num(float(m.input_norms(shown)[-1]))}"
    return line


def screen(app) -> HeatmapScreen:
    return HeatmapScreen()
