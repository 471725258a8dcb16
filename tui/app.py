"""The dashboard: watch BPTT step back through time.

The engine advances on a timer (`_advance_timer`); what it records is drawn
by a second timer a few times a second (`_redraw`), never once per step: the
data rate is decoupled from the frame rate. Nothing here computes a gradient;
it formats what the engine recorded.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from textual import on
from textual.app import App, ComposeResult
from textual.command import Hit, Hits, Provider
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from rich.text import Text
from textual.widgets import Footer, Input, Label, RichLog, Select, Static

from engine import Config, ConfigError, Run
from engine.clipping import END
from engine.config import CLIP_MODES, GROUPS, SPEC
from engine import export
from engine.presets import BUILTIN, DEFAULT_PRESET, Preset

from .format import clip_text, num, percent, run_series, status_tag, verdict
from .norm_chart import NormChart, Series
from .screens import HelpScreen, PresetPicker

# Steps per second; 0 = as fast as the machine goes.
SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 0)
REDRAW_HZ = 10
LOG_LINES = 500
LOG_FLUSH = 40  # most lines written in one frame (the log shows at most ~30)
# The form, generated from the SPEC table: per group, (Config field, label, kind)
# for the fields that have a form label; kind is the choices or "int"/"float".
FORM = tuple(
    (group, rows)
    for group in GROUPS
    if (rows := tuple((name, f.label, f.choices or f.kind.__name__) for name, f in SPEC.items() if f.group == group and f.label))
)


class PresetCommands(Provider):
    """The presets in the command palette (ctrl+p)."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.app
        for preset in BUILTIN.values():
            score = matcher.match(f"preset {preset.name}")
            if score > 0:
                yield Hit(score, matcher.highlight(f"preset {preset.name}"), lambda p=preset: app.open_preset(p), help=preset.description)


class BpttLab(App):
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {PresetCommands}
    TITLE = "bptt-lab"
    HORIZONTAL_BREAKPOINTS = [(0, "-too-narrow"), (60, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-too-short"), (16, "-short"), (30, "-tall")]

    BINDINGS = [
        Binding("space", "toggle_play", "play"),
        Binding("n", "step", "step"),
        Binding("right", "step", "step", show=False),
        Binding("e", "to_end", "end"),
        Binding("r", "reset", "reset"),
        Binding("plus,equals_sign", "faster", "faster", key_display="+", show=False),
        Binding("minus", "slower", "slower", key_display="-", show=False),
        Binding("c", "cycle_clip", "clip"),
        Binding("p", "pick_preset", "preset"),
        Binding("g", "ghost", "ghost"),
        Binding("G", "clear_ghost", "clear ghost", show=False),
        Binding("x", "export", "export"),
        Binding("o", "toggle_params", "params", show=False),
        Binding("escape", "leave_field", "leave field", show=False),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, preset: Preset, config: Config | None = None, speed: int = 10, export_dir: Path | None = None):
        super().__init__()
        self.preset = preset
        self.config = config or preset.config
        self.speed_index = SPEEDS.index(speed) if speed in SPEEDS else 3
        self.export_dir = export_dir or Path.cwd()
        self.playing = False
        self.ghost: Series | None = None
        self._budget = 0.0
        self._resets = 0  # names the run's current backward pass, for the chart's cache
        self._speed_before_end: int | None = None
        self._dirty = True
        self._logged = 0
        self.engine_run: Run = Run(self.config)

    # -- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="body"):
            with VerticalScroll(id="params"):
                yield Static(self.preset.look_for, id="look-for")
                for group, rows in FORM:
                    yield Label(group, classes="group")
                    for field, label, kind in rows:
                        with Horizontal(classes="row"):
                            yield Label(label, classes="name")
                            value = getattr(self.config, field)
                            if isinstance(kind, tuple):
                                yield Select([(c, c) for c in kind], value=value, allow_blank=False, id=f"f-{field}", compact=True)
                            else:
                                yield Input(_show(value), id=f"f-{field}", compact=True, type="number" if kind == "float" else "integer")
                yield Static("", id="form-error")
            with Vertical(id="main"):
                yield NormChart(id="chart")
                yield RichLog(id="log", max_lines=LOG_LINES, auto_scroll=True, wrap=False, min_width=0)
        yield Static(id="summary")
        yield Static("Terminal too small: bptt-lab needs at least 60 x 16.", id="too-small")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._fill_form()
        self.set_interval(1 / REDRAW_HZ, self._redraw)
        self._advance_timer = self.set_interval(1 / 30, self._tick, pause=True)
        self._redraw()

    # -- the run --------------------------------------------------------------------

    def _start(self, config: Config, preset: Preset | None = None) -> None:
        """Rebuild the run from a config and start over."""
        self.engine_run = Run(config)
        self.config = config
        if preset is not None:
            self.preset = preset
            self.query_one("#look-for", Static).update(preset.look_for)
        self._fill_form()
        self._restart()

    def _restart(self) -> None:
        self._resets += 1
        self.playing = False
        self._advance_timer.pause()
        self.query_one("#log", RichLog).clear()
        self._logged = 0
        self._dirty = True

    def _advance(self, steps: int) -> None:
        """Step the engine up to `steps` times; an engine error becomes a notification."""
        run = self.engine_run
        try:
            run.advance(steps)
        except Exception as exc:  # the app stays up whatever the engine says
            self.playing = False
            self._advance_timer.pause()
            self.notify(f"engine error: {exc}", severity="error")
        self._dirty = True
        if run.done and self.playing:
            self.playing = False
            self._advance_timer.pause()
        if run.done and self._speed_before_end is not None:
            self.speed_index, self._speed_before_end = self._speed_before_end, None

    def _tick(self) -> None:
        speed = SPEEDS[self.speed_index]
        if speed == 0:
            deadline = time.perf_counter() + 0.028  # of each 33 ms tick: the rest keeps keys and frames live
            while not self.engine_run.done and time.perf_counter() < deadline:
                self._advance(16)
            return
        self._budget += speed / 30
        steps = int(self._budget)
        self._budget -= steps
        if steps:
            self._advance(steps)

    # -- drawing --------------------------------------------------------------------

    def _redraw(self) -> None:
        if not self._dirty or not self.is_running or self._exit:
            return
        self._dirty = False
        run, c = self.engine_run, self.config
        self.query_one("#header", Static).update(self._header_text())
        self._flush_log()
        cols = run.records.columns
        k = run.k
        series = [Series(*s) for s in run_series(run, "braille")]
        if self.ghost is not None:
            series.append(self.ghost)
        rule = run.clip_rule
        at_end = rule is not None and rule.phase == END
        if at_end:
            # End-of-pass rules act on the parameter gradients: show their running norm.
            series.append(Series("|grad| (params)", cols["param_norm"][:k], "+", "magenta"))
        marks = np.flatnonzero(run.records.clip_mode[:k] > 0) + 1
        marked = series[-1] if at_end else series[0]
        # The threshold line where it compares with a drawn series: dL/dh (step) or the parameter norm (norm).
        threshold = c.clip_threshold if rule is not None and rule.series is not None else None
        title = f"{self.preset.name}: gradient norm per backward step" if k else f"{self.preset.name}: press space to play, n to step"
        self.query_one(NormChart).replot(title, series, run.T, threshold, marks, token=(id(run), self._resets), marked=marked)
        self.query_one("#summary", Static).update(self._summary_text())

    def _header_text(self) -> str:
        c, run = self.config, self.engine_run
        what = f"{c.cell}/{c.activation}" if c.cell_type.uses_activation else c.cell
        state = "done" if run.done else ("playing" if self.playing else "paused")
        speed = SPEEDS[self.speed_index]
        rate = "max" if speed == 0 else f"{speed}/s"
        extra = "".join(
            part for part in (f" | clip {c.clip} {c.clip_threshold:g}" if c.clip != "none" else "", f" | truncate {c.truncate}" if c.truncate else "")
        )
        mode = " chain" if c.mode == "chain" else ""
        return f" {self.preset.name} | {what}{mode} | H={c.hidden} N={c.batch} T={c.steps}{extra} | {state} {rate} | k {run.k}/{run.T}"

    def _summary_text(self) -> str:
        """Two lines: where the gradient is now, then the verdict of the vanishing condition."""
        run = self.engine_run
        s = run.live()
        growth = run.mean_growth(last=10)
        parts = [f"|dL/dh| {num(s['norm'], na='nan') if run.k else '-'}"]
        parts.append(f"x{growth:.3f}/step (last 10)" if math.isfinite(growth) else "x-/step")
        parts.append(f"clips {s['clip_events']}")
        if s["spectral_radius"] is not None:
            parts.append(f"radius {num(s['spectral_radius'])}")
        parts.append(f"sigma_max {num(s['sigma_max'])}")
        return "  ".join(parts) + "\n" + verdict(s)

    def _flush_log(self) -> None:
        """Write the records since the last frame, coloured by severity (theme colours).
        After a long jump only the last LOG_FLUSH lines are written, with a marker."""
        run = self.engine_run
        if self._logged >= run.k:
            return
        log = self.query_one("#log", RichLog)
        start = self._logged + 1
        if run.k - start + 1 > LOG_FLUSH:
            skipped = run.k - LOG_FLUSH - start + 1
            log.write(Text(f"... {skipped} steps not listed ...", style=self.current_theme.secondary or ""))
            start = run.k - LOG_FLUSH + 1
        theme = self.current_theme
        colour = {"vanishing": theme.warning, "exploding": theme.error, "overflow": theme.error, "truncated": theme.secondary}
        for k in range(start, run.k + 1):
            r = run.records[k]
            style = colour.get(r.status) or (theme.accent if r.clip is not None else None)
            log.write(Text(step_line(r, run.config.cell_type), style=style or ""))
        self._logged = run.k

    # -- actions --------------------------------------------------------------------

    def action_toggle_play(self) -> None:
        if self.engine_run.done:
            self.notify("the run is complete: r resets it")
            return
        self.playing = not self.playing
        (self._advance_timer.resume if self.playing else self._advance_timer.pause)()
        self._dirty = True

    def action_step(self) -> None:
        if self.engine_run.done:
            self.notify("the run is complete: r resets it")
            return
        self._advance(1)

    def action_to_end(self) -> None:
        """Run to the end in slices, so the screen keeps updating and q still quits;
        the speed goes back to what it was when the run is complete."""
        if self._speed_before_end is None:
            self._speed_before_end = self.speed_index
        self.speed_index = len(SPEEDS) - 1
        if not self.playing and not self.engine_run.done:
            self.action_toggle_play()

    def action_reset(self) -> None:
        self.engine_run.reset()
        self._restart()

    def action_faster(self) -> None:
        self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
        self._dirty = True

    def action_slower(self) -> None:
        self.speed_index = max(self.speed_index - 1, 0)
        self._dirty = True

    def action_cycle_clip(self) -> None:
        nxt = CLIP_MODES[(CLIP_MODES.index(self.config.clip) + 1) % len(CLIP_MODES)]
        try:
            self._start(self.config.with_overrides(clip=nxt))
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"clip: {nxt}" + (f" (threshold {self.config.clip_threshold:g})" if nxt != "none" else ""))

    def open_preset(self, preset: Preset) -> None:
        self._start(preset.config, preset)
        self.notify(f"preset {preset.name}")

    def action_pick_preset(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.open_preset(BUILTIN[name])

        self.push_screen(PresetPicker(list(BUILTIN.values())), chosen)

    def action_ghost(self) -> None:
        run = self.engine_run
        if run.k == 0:
            self.notify("nothing to pin yet: step first")
            return
        c = self.config
        label = f"ghost: {self.preset.name} {c.cell}{'' if c.clip == 'none' else ' ' + c.clip}"
        self.ghost = Series(label, run.records.columns["grad_norm"][: run.k].copy(), "o", "gray")
        self._dirty = True
        self.notify(f"pinned {label} ({run.k} steps)")

    def action_clear_ghost(self) -> None:
        if self.ghost is not None:
            self.ghost = None
            self._dirty = True
            self.notify("ghost cleared")

    def action_export(self) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = self.export_dir / f"bptt-lab-{self.preset.name}-{stamp}"
        try:
            Path(f"{base}.json").write_text(export.to_json(self.engine_run, preset=self.preset.name) + "\n", encoding="utf-8")
            Path(f"{base}.csv").write_text(export.to_csv(self.engine_run), encoding="utf-8")
        except OSError as exc:
            self.notify(f"export failed: {exc}", severity="error")
            return
        self.notify(f"exported {base.name}.json and .csv ({self.engine_run.k} steps)")

    def action_leave_field(self) -> None:
        """Give the keys back to the app after typing in a parameter field."""
        self.screen.set_focus(None)

    def action_toggle_params(self) -> None:
        self.query_one("#params").toggle_class("hidden")

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.preset))

    # -- the form -------------------------------------------------------------------

    def _fill_form(self) -> None:
        with self.prevent(Select.Changed, Input.Submitted):
            for _group, rows in FORM:
                for field, _label, kind in rows:
                    widget = self.query_one(f"#f-{field}")
                    value = getattr(self.config, field)
                    if isinstance(kind, tuple):
                        widget.value = value
                    else:
                        widget.value = _show(value)
                    widget.remove_class("invalid")
                    # A setting this run would not use is shown but greyed out, with the reason.
                    reason = self.config.why_not(field)
                    widget.disabled = reason is not None
                    widget.tooltip = reason
        self.query_one("#form-error", Static).update("")

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        self._apply(event.select.id[2:], event.value)

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        field = event.input.id[2:]
        kind = "int" if event.input.type == "integer" else "float"
        text = event.value.strip()
        try:
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            self._refuse(event.input, f"{field}: '{text}' is not {'an integer' if kind == 'int' else 'a number'}")
            return
        self._apply(field, value, event.input)

    def _apply(self, field: str, value, widget=None) -> None:
        widget = widget or self.query_one(f"#f-{field}")
        widget.remove_class("invalid")
        self.query_one("#form-error", Static).update("")
        if getattr(self.config, field) == value:
            return
        try:
            config = self.config.with_overrides(**{field: value})
        except ConfigError as exc:
            self._refuse(widget, exc.message)
            return
        self._start(config)
        self.screen.set_focus(None)  # the keys are the app's again
        self.notify(f"{field} = {value}: run rebuilt")

    def _refuse(self, widget, message: str) -> None:
        widget.add_class("invalid")
        self.query_one("#form-error", Static).update(f"not applied: {message}")
        self.notify(f"not applied: {message}", severity="warning")


def step_line(r, cell) -> str:
    """One log line per backward step: k, t (= T - k), norm, x ratio, Jacobian sigma,
    saturation, the keep gate's mean (cell: the cell's class), tags."""
    line = f"{r.k:>4} {r.t:>4} {num(r.grad_norm, na='nan'):>8} x{num(r.ratio):<5} σ{num(r.jacobian_sigma):<5}{percent(r.saturation):>3}"
    if cell.keep_gate:
        line += f" {cell.keep_gate}{num(r.gate_mean):<5}"
    tags = " ".join(x for x in (clip_text(r.clip, short=True), status_tag(r)) if x)
    return line + (f" {tags}" if tags else "")


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def make_app(preset_name: str = DEFAULT_PRESET, config: Config | None = None, presets: dict[str, Preset] | None = None, **kwargs) -> BpttLab:
    """The app, un-run: shared by the CLI and the tests."""
    presets = presets or BUILTIN
    preset = presets[preset_name]
    return BpttLab(preset, config, **kwargs)
