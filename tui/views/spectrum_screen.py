"""The spectrum screen: the eigenvalues of W_hh in the complex plane with the
unit circle and the 1/gamma circle, the singular values beside them, and the
numbers under both (engine/spectrum.py computes; spectrum_plot.py draws).

What it shows comes from a source:
- `RunSource`: the per-step view's run, whose parameters do not change;
- `TrainingSource`: the training view's training. With no cursor it follows
  the training live: theta_n, the latest parameters, redrawn a few times a
  second while the training plays. With the cursor on update u it shows
  theta_{u-1}, the parameters update u used (what the records' spectral
  radius and sigma_max of u are of), made again from the checkpoint before
  it. space, n, b, [ and ] play, step and move the training view's cursor
  from here, so the eigenvalues move update by update.

The spectrum is computed in a worker (an eigen-decomposition of H x H blocks,
and a replay from a checkpoint), never on the screen's thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from engine.spectrum import Spectrum, weight_spectrum

from ..screens import HelpScreen
from .spectrum_plot import draw_plane, draw_singular, fmt, gamma_text, legend

POLL_HZ = 5  # how often the screen asks its source whether there is something new


@dataclass(frozen=True)
class Shown:
    """One computed spectrum and what it is of."""

    spectrum: Spectrum
    what: str  # "the run's parameters", "θ_1267: the parameters update 1268 used"
    status: str = ""  # a training's update: its |grad| and status


class RunSource:
    """The per-step view's run: one spectrum."""

    live = False

    def __init__(self, run, preset) -> None:
        self.run, self.preset = run, preset
        self.config = run.config

    def token(self):
        return id(self.run)

    def compute(self) -> Shown:
        return Shown(weight_spectrum(self.config, self.run.params["weight_hh_l0"]), "the run's parameters")


class TrainingSource:
    """The training view's training: live, or at its cursor."""

    live = True

    def __init__(self, training_screen) -> None:
        self.screen = training_screen
        self.preset = training_screen.preset

    @property
    def config(self):
        t = self.screen.training
        return t.config if t is not None else self.screen.config

    def token(self):
        s, t = self.screen, self.screen.training
        if t is None:
            return None
        return (s.generation, id(t), s.cursor, t.applied if s.cursor is None else None)

    def compute(self) -> Shown | None:
        s = self.screen
        t, cursor = s.training, s.cursor
        if t is None:
            return None
        with s.lock:  # between two updates
            if cursor is None:
                n, params = t.applied, t.model.params["weight_hh_l0"].copy()
            else:
                n, params = cursor - 1, t.params_at(cursor - 1)["weight_hh_l0"]
        spectrum = weight_spectrum(t.config, params)
        if cursor is None:
            return Shown(spectrum, f"θ_{n}: the latest parameters, after {n:,} updates (live)", _update_status(t, t.records.count))
        return Shown(spectrum, f"θ_{n}: the parameters update {cursor:,} used (cursor)", _update_status(t, cursor))


def _update_status(training, u: int) -> str:
    if u < 1 or u > training.records.count:
        return "no update yet"
    r = training.records[u]
    clip = f" → {fmt(r.grad_norm)} clipped" if r.clipped else ""
    return f"update {u:,}: |grad| {fmt(r.grad_norm_raw)}{clip}, {r.status}"


def run_source(run, preset) -> RunSource:
    return RunSource(run, preset)


class Computed(Message):
    def __init__(self, token, shown: Shown) -> None:
        super().__init__()
        self.token, self.shown = token, shown


class Failed(Message):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


class PlanePlot(PlotextPlot):
    """The complex plane; laid out again when its size changes (the axes keep circles round)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown: Shown | None = None
        self.fit = False  # z: fit the eigenvalues instead of the largest circle
        self._drawn_for = None
        self.limits: tuple[float, float] | None = None

    def show(self, shown: Shown | None) -> None:
        self.shown = shown
        self._drawn_for = None
        self.refresh()

    def _draw(self) -> None:
        self._drawn_for = tuple(self.size)
        if self.shown is None:
            self.plt.clear_data()
            return
        s = self.shown.spectrum
        self.limits = draw_plane(self.plt, s, self.size.width, self.size.height, f"eigenvalues, radius {fmt(s.radius)}", fit=self.fit)

    def render(self):
        if self._drawn_for != tuple(self.size):
            self._draw()
        return super().render()


class SingularPlot(PlotextPlot):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown: Shown | None = None
        self._drawn_for = None

    def show(self, shown: Shown | None) -> None:
        self.shown = shown
        self._drawn_for = None
        self.refresh()

    def render(self):
        if self._drawn_for != tuple(self.size):
            self._drawn_for = tuple(self.size)
            if self.shown is None:
                self.plt.clear_data()
            else:
                s = self.shown.spectrum
                draw_singular(self.plt, s, self.size.width, f"singular values, σ_max {fmt(s.sigma_max)}")
        return super().render()


def numbers(shown: Shown) -> str:
    """The text under the pictures: the radius, sigma_max, gamma, per block for a gated cell, and the verdict."""
    s = shown.spectrum
    H = s.blocks[0].eigenvalues.size
    lines = []
    if len(s.blocks) == 1:
        b = s.blocks[0]
        out = f" ({b.outside(1.0)} of {H} outside |λ| = 1)" if s.finite else ""
        lines.append(f"radius {fmt(s.radius)}{out} · σ_max {fmt(s.sigma_max)} · γ {gamma_text(b.gamma)} ({b.activation}) · σ_max·γ {fmt(b.bound)}")
    else:
        lines.append(f"radius {fmt(s.radius)} · σ_max {fmt(s.sigma_max)} (largest block)")
        lines.append("  ".join(f"{b.gate}: ρ {fmt(b.radius)} σ {fmt(b.sigma_max)} σγ {fmt(b.bound)}" for b in s.blocks))
    lines.append(s.verdict())
    return "\n".join(lines)


class SpectrumHelpScreen(HelpScreen):
    def sections(self):
        return [
            ("The spectrum view: eigenvalues of W_hh", SPECTRUM_HELP),
            ("Keys", SPECTRUM_KEYS),
        ]


SPECTRUM_HELP = [
    ("● or a letter", "an eigenvalue λ of W_hh; a gated cell's blocks by their gate's letter (LSTM i f g o, GRU r z n), IndRNN: u itself"),
    ("⠶ circle", "|λ| = 1: a linear chain's gradient grows (outside) or shrinks (inside) by its largest |λ| a step (SPEC 2)"),
    ("· circle", "|λ| = 1/γ (4 for a sigmoid): with every singular value inside it, ||J_t|| <= σ_max·γ < 1 and the gradient vanishes for every input (SPEC 1)"),
    ("radius", "the spectral radius: the largest |λ| (of any block)"),
    ("σ_max", "the largest singular value; the right chart: every singular value, largest first, against 1 and 1/γ"),
    ("γ", "sup |f'| of the nonlinearity a block feeds: tanh, relu 1; sigmoid 1/4 (LSTM i f o, GRU r z); for a gated cell "
     "σ_max·γ bounds that block's own path only: the cell path diag(f) (GRU diag(z)) carries the gradient beside it"),
    ("live / cursor", "from the training view: the latest parameters as it trains, or θ_{u-1}, the parameters update u under the cursor used"),
]
SPECTRUM_KEYS = [
    ("escape, v", "back"),
    ("z", "zoom: fit the eigenvalues, or show the 1/γ circle whole"),
    ("space n b [ ]", "from the training view: train or pause, one update on, cursor back, checkpoints"),
    ("q", "quit"),
]


class SpectrumScreen(Screen):
    CSS_PATH = "spectrum.tcss"
    OWNS_KEYS = True  # the app's per-step keys are off here (tui/app.py check_action)
    BINDINGS = [
        Binding("escape,v", "back", "back", key_display="esc"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "app.quit", "quit"),
        Binding("z", "zoom", "zoom"),
        Binding("space", "training('toggle_play')", "train"),
        Binding("n,right", "training('step')", "step", key_display="n"),
        Binding("b,left", "training('back')", "prev", key_display="b"),
        Binding("left_square_bracket", "training('checkpoint', -1)", "checkpoint", key_display="[", show=False),
        Binding("right_square_bracket", "training('checkpoint', 1)", "next checkpoint", key_display="]", show=False),
    ]

    def __init__(self, source) -> None:
        super().__init__()
        self.source = source
        self.shown: Shown | None = None
        self._token = object()  # what is on screen (or being computed)

    def compose(self) -> ComposeResult:
        yield Static(id="spec-head", markup=False)
        yield Static(id="spec-legend")
        with Horizontal(id="spec-plots"):
            yield PlanePlot(id="spec-plane")
            yield SingularPlot(id="spec-sv")
        yield Static("computing the eigenvalues…", id="spec-numbers", markup=False)
        yield Static("Terminal too small: bptt-lab needs at least 60 x 16.", id="spec-too-small")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._poll()
        self.set_interval(1 / POLL_HZ, self._poll)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "training":
            return self.source.live
        return True

    # -- computing ----------------------------------------------------------------------

    def _poll(self) -> None:
        token = self.source.token()
        if token is not None and token != self._token:
            self._token = token
            self._compute(token)

    @work(thread=True, exclusive=True, group="spectrum")
    def _compute(self, token) -> None:
        from ..training.blas import one_thread_here

        one_thread_here()
        try:
            shown = self.source.compute()
        except Exception as exc:  # the screen stays up whatever the engine says
            self.post_message(Failed(exc))
            return
        if shown is not None:
            self.post_message(Computed(token, shown))

    @on(Computed)
    def _computed(self, message: Computed) -> None:
        if message.token != self._token:
            return
        if self.shown is None:  # a gated cell's eigenvalues crowd inside its 1/gamma circle: fit them first
            self.query_one(PlanePlot).fit = message.shown.spectrum.gated
        self.shown = message.shown
        self.draw()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.app.notify(f"cannot compute the spectrum: {message.error}", severity="error")

    def draw(self) -> None:
        shown = self.shown
        c = self.source.config
        head = f"eigenvalues of W_hh · {self.source.preset.name} · {c.cell}{'' if c.gates > 1 else ' ' + c.activation}, H = {c.hidden}"
        self.query_one("#spec-head", Static).update(f"{head} · {shown.what}" + (f" · {shown.status}" if shown.status else ""))
        self.query_one("#spec-legend", Static).update(_legend_text(shown.spectrum))
        self.query_one(PlanePlot).show(shown)
        self.query_one(SingularPlot).show(shown)
        self.query_one("#spec-numbers", Static).update(numbers(shown))

    # -- actions ------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        self.app.push_screen(SpectrumHelpScreen(self.source.preset, None, self.source.config))

    def action_zoom(self) -> None:
        plane = self.query_one(PlanePlot)
        plane.fit = not plane.fit
        plane.show(plane.shown)

    def action_training(self, name: str, *args) -> None:
        """A key of the training view, done there: the cursor or the training moves, this screen follows."""
        getattr(self.source.screen, f"action_{name}")(*args)


def _legend_text(spectrum: Spectrum):
    from rich.text import Text

    text = Text(no_wrap=True, overflow="ellipsis")
    for i, (glyph, color, what) in enumerate(legend(spectrum)):
        # no styled segment starts with a space: rsvg (the README's PNG) drops it
        text.append(glyph + " ", style=_RICH.get(color, ""))
        text.append(what + "   ")
    return text


_RICH = {"cyan": "cyan", "orange": "dark_orange", "magenta": "magenta", "green": "green", "white": "", "gray": "grey50"}
