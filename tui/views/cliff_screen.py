"""The cliff's screen (key l): the error surface or its gradient's magnitude as a
heatmap with the SGD trajectories, the fixed points against b, and the numbers.

Below 110 columns one picture at a time (e the surface, g |grad|, f the fixed
points); wider, the map and the fixed points side by side. The cliff is
computed once per process in a worker thread (about 0.05 s) and drawn again
on every resize; nothing is computed while it is drawn.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from engine import cliff as model

from ..screens import HelpScreen
from . import cliff_draw as draw

_computed: dict[model.CliffSetting, model.Cliff] = {}  # computed once per process


class CliffReady(Message):
    def __init__(self, cliff: model.Cliff) -> None:
        super().__init__()
        self.cliff = cliff


class SurfaceMap(Widget):
    """E_50 or |grad| over (w, b), drawn for the widget's size on each render."""

    DEFAULT_CSS = "SurfaceMap { height: 1fr; text-wrap: nowrap; text-overflow: clip; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cliff: model.Cliff | None = None
        self.which = "E"

    def show(self, cliff: model.Cliff | None, which: str) -> None:
        self.cliff, self.which = cliff, which
        self.refresh()

    @property
    def title(self) -> str:
        return f"{draw.MAPS[self.which]} over (w, b), log10 scale"

    def render(self):
        from rich.text import Text

        if self.cliff is None:
            return Text("computing the surface ...")
        size = self.content_size
        lines = draw.surface_lines(self.cliff, self.which, size.width, size.height - 1)
        return Text("\n").join([Text(self.title, style="bold"), *lines])


class FixedPointsPlot(PlotextPlot):
    """The fixed points against b (plotext), stable in braille dots, unstable "x"."""

    def show(self, cliff: model.Cliff) -> None:
        self.plt.clear_data()
        self.plt.clear_figure()
        draw.bifurcation_into(self.plt, cliff)
        self.refresh()


class CliffHelp(HelpScreen):
    """What the cliff's marks, levels and keys mean."""

    def __init__(self, cliff: model.Cliff | None) -> None:
        ModalScreen.__init__(self)
        self.cliff = cliff

    def sections(self):
        s = model.CLIFF_DEFAULT
        marks = draw.legend(self.cliff) if self.cliff is not None else []
        return [
            ("The cliff (SPEC 9)", [("model", "x_t = w·σ(x_{t-1}) + b, x_0 = 0.5, T = 50, E = (σ(x_50) - 0.7)²"), ("shows", s.description), ("look for", s.look_for)]),
            ("The maps", [
                ("levels", f"a level per half decade (log10 scale, the powers of ten under the map): colour and the glyphs '{draw.GLYPHS}' low to high, readable without colour; values under the lowest power of ten are drawn as the lowest level (blank), which the legend says when the map has any"),
                ("|grad| map", "each cell is the largest |grad| of the grid points it covers, so the thin wall survives; the E map shows the value at each cell's centre"),
                ("the wall", "where x_0 = 0.5 sits on the unstable fixed point (b = 0.5 - w σ(0.5)); E jumps across it. Above w ≈ 5 it is thinner than the grid's spacing (about 1e-3 in b at w = 5, 5e-5 at w = 6): the |grad| map misses it there, the E map still shows the jump"),
                *marks,
            ]),
            ("The fixed points", [("⠤ (dots)", "a stable fixed point: |w σ'(x*)| < 1"), ("x", "an unstable one"), ("b=…", "the saddle-nodes, where w σ'(x*) = 1"), ("--", "x_0 = 0.5: where it crosses the unstable branch is the wall")]),
            ("Keys", [("e", "the error surface E_50"), ("g", "the gradient's magnitude |grad|"), ("f", "the fixed points against b (beside the map when wide)"), ("escape, l", "back to the dashboard"), ("?", "this help"), ("q", "quit")]),
        ]


class CliffScreen(Screen):
    CSS_PATH = "cliff.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-too-narrow"), (60, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-too-short"), (18, "-short"), (34, "-tall")]
    BINDINGS = [
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "app.quit", "quit"),
        Binding("escape", "back", "back", key_display="esc"),
        Binding("l", "back", "back", show=False),
        Binding("e", "panel('E')", "error E"),
        Binding("g", "panel('grad')", "|grad|"),
        Binding("f", "panel('fixed')", "fixed pts"),
    ]

    def __init__(self, setting: model.CliffSetting = model.CLIFF_DEFAULT) -> None:
        super().__init__()
        self._quiet_the_dashboard()
        self.setting = setting
        self.cliff: model.Cliff | None = _computed.get(setting)
        self.which = "E"  # the map: E or grad
        self.fixed = False  # below 110 columns: the fixed points instead of the map

    def compose(self) -> ComposeResult:
        yield Static("the cliff (SPEC 9): x_t = w·σ(x_{t-1}) + b, x_0 = 0.5, T = 50", id="cliff-title", markup=False)
        with Horizontal(id="cliff-body"):
            yield SurfaceMap(id="cliff-map")
            yield FixedPointsPlot(id="cliff-fixed")
        with Vertical(id="cliff-facts"):
            yield Static(id="cliff-legend")
            yield Static(id="cliff-numbers", markup=False)
        yield Static("Terminal too small: the cliff needs at least 60 x 18.", id="cliff-too-small")
        yield Footer(compact=True, show_command_palette=False)

    def _quiet_the_dashboard(self) -> None:
        """The per-step view's keys (space plays, n steps, ...) would act on the run
        behind this screen: here they do nothing and leave the footer. The views'
        keys still open the other views."""
        from ..app import BpttLab
        from . import VIEWS

        kept = {"question_mark", "q", "escape", *(view.key for view in VIEWS), *(b.key.split(",")[-1] for b in self.BINDINGS)}
        for binding in BpttLab.BINDINGS:
            for key in binding.key.split(","):
                if key not in kept:
                    self._bindings.bind(key, "nothing", show=False)

    def action_nothing(self) -> None:
        """A dashboard key with no meaning on this screen."""

    def on_mount(self) -> None:
        if self.cliff is None:
            self.compute()
        self._show()

    @work(thread=True, exclusive=True)
    def compute(self) -> None:
        self.post_message(CliffReady(model.compute(self.setting)))

    def on_cliff_ready(self, message: CliffReady) -> None:
        _computed[self.setting] = self.cliff = message.cliff
        self._show()

    def _show(self) -> None:
        self.set_class(self.fixed, "-fixed")
        self.query_one(SurfaceMap).show(self.cliff, self.which)
        if self.cliff is None:
            return
        self.query_one(FixedPointsPlot).show(self.cliff)
        self.query_one("#cliff-legend", Static).update(self.legend_text())
        self.query_one("#cliff-numbers", Static).update("\n".join(draw.facts(self.cliff)))

    def legend_text(self):
        from rich.text import Text

        lines = [Text.assemble((mark, draw._mark_style(mark, 0)), f" {what}") for mark, what in draw.legend(self.cliff)]
        note = draw.below_scale(self.cliff, self.which)
        return Text("\n").join([*lines, Text(note)] if note else lines)

    def action_panel(self, panel: str) -> None:
        """e, g: that map (instead of the fixed points, when narrow); f: the fixed points or back."""
        if panel == "fixed":
            self.fixed = not self.fixed
        else:
            self.which, self.fixed = panel, False
        self._show()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        self.app.push_screen(CliffHelp(self.cliff))
