"""The dashboard: watch BPTT step back through time.

The panes (tui/panes/) each draw a `View` of the run; this module owns the
run and the presenter's controls, and the panes talk to it with messages:

- `ParamsForm.Changed`: the user changed a setting; the run is rebuilt;
- `RunReady` / `RunRefused`: a run was built in a worker thread (the forward
  pass of a large run takes seconds; the screen and the keys stay live, and
  a progress figure shows), or could not be, and the old run stays;
- `StepsAdvanced`: the backward pass went further; auto-pause looks here.

Beside it, the training view (tui/training/, a screen of its own; t switches):
a preset with `training` settings opens there. From any update of the
training, enter opens that update's backward pass here (`show_update`: the
per-step run of `Training.run_for(u)`, the parameters and batch the update
used), and t or escape goes back to the training where it was.

The engine advances on a timer; what it recorded is drawn by a second timer
a few times a second, never once per step. The screen shows records 1..shown,
and `shown` can step back through what has been computed. Nothing here
computes a gradient: it formats what the engine recorded.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from engine import Config, ConfigError, Run
from engine import export
from engine.config import CLIP_MODES
from engine.presets import BUILTIN, DEFAULT_PRESET, Preset
from engine.run import EXPLODING, OVERFLOW, VANISHING
from engine.training import TrainingSettings

from .presenter import DEFAULT_SPEED, PAUSE_KINDS, SPEEDS
from .panes import Ghost, HeaderBar, NormChart, ParamsForm, StepLog, SummaryBar, View
from .screens import HelpScreen, PresetPicker
from . import views
from .views import VIEWS
from .web import orphaned, under_web_driver
from .training import TrainingScreen

REDRAW_HZ = 10
MAX_GHOSTS = 3
NOTE_SECONDS = 2.5
ORPHAN_CHECK_SECONDS = 1.0  # served: how soon an app notices its server has gone
# At full speed each tick steps for this long; between ticks the keys and the
# frames get their turn (a key waits at most this long).
MAX_SPEED_SLICE = 0.045
_STATUS_OF = {"VANISHED": VANISHING, "EXPLODED": EXPLODING, "OVERFLOW": OVERFLOW}
# The app's actions a view's screen (OWNS_KEYS) leaves on: quitting, the palette, a screenshot.
SHARED_ACTIONS = ("quit", "command_palette", "screenshot")


@dataclass(frozen=True)
class UpdatePreset(Preset):
    """What the per-step view shows when it opens an update of a training: the
    training's preset, the update, and what the update's backward pass started
    from (a setting changed here rebuilds the pass from these)."""

    base: str = ""
    u: int = 0
    params: dict | None = field(default=None, repr=False, compare=False)
    inputs: np.ndarray | None = field(default=None, repr=False, compare=False)
    targets: np.ndarray | None = field(default=None, repr=False, compare=False)


def training_of(preset: Preset) -> TrainingSettings | None:
    """A preset's training settings, if it has any (a training preset opens in the training view)."""
    return getattr(preset, "training", None)


def _family(preset: Preset) -> str:
    return getattr(preset, "base", "") or preset.name


class BuildCancelled(Exception):
    """A newer build (or quitting) made this one pointless."""


class RunReady(Message):
    """A run was built: show it. `field` is the setting that asked for it, if any."""

    def __init__(self, run: Run, preset: Preset, field: str | None, note: str | None) -> None:
        super().__init__()
        self.run, self.preset, self.field, self.note = run, preset, field, note


class RunRefused(Message):
    """The engine could not build a run with these settings; the old run stays."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__()
        self.field, self.message = field, message


class BuildProgress(Message):
    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction


class StepsAdvanced(Message):
    """Records first..last were computed just now."""

    def __init__(self, first: int, last: int) -> None:
        super().__init__()
        self.first, self.last = first, last


class BpttLab(App):
    CSS_PATH = "app.tcss"
    TITLE = "bptt-lab"
    HORIZONTAL_BREAKPOINTS = [(0, "-too-narrow"), (60, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-too-short"), (16, "-short"), (30, "-tall")]

    # The footer shows these in order and cuts the end on a narrow terminal:
    # help and quit come first so they are always there.
    BINDINGS = [
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
        Binding("space", "toggle_play", "play"),
        Binding("n,right", "step", "step", key_display="n"),
        Binding("b,left", "step_back", "back", key_display="b"),
        Binding("e", "to_end", "end"),
        Binding("t", "training_view", "training"),
        Binding("r", "reset", "reset"),
        Binding("c", "cycle_clip", "clip"),
        Binding("a", "cycle_pause", "pause at"),
        Binding("p", "pick_preset", "preset"),
        Binding("g", "ghost", "ghost"),
        Binding("G", "clear_ghosts", "clear ghosts", show=False),
        Binding("x", "export", "export"),
        Binding("s", "screenshot", "screenshot", show=False),
        Binding("plus,equals_sign", "faster", "faster", key_display="+", show=False),
        Binding("minus", "slower", "slower", key_display="-", show=False),
        Binding("o", "toggle_params", "params", show=False),
        Binding("escape", "leave_field", "leave field", show=False),
        *(Binding(view.key, f"open_view('{view.name}')", view.title, show=False) for view in VIEWS),
    ]

    def __init__(
        self,
        preset: Preset,
        config: Config | None = None,
        speed: int = DEFAULT_SPEED,
        export_dir: Path | None = None,
        presets: dict[str, Preset] | None = None,
        pause_at: str | None = None,
        training: TrainingSettings | None = None,
    ):
        """`training`: train this config with these settings, in the training
        view (default: the preset's own training settings, if it has any)."""
        super().__init__()
        self.presets = presets or BUILTIN
        self.preset = preset
        self.config = config or preset.config
        self.speed_index = SPEEDS.index(speed) if speed in SPEEDS else 3
        self.export_dir = Path(export_dir) if export_dir is not None else Path.cwd()
        self.pause_at = pause_at
        self.engine_run: Run | None = None
        self.shown = 0  # records 1..shown are on screen
        self.playing = False
        self.ghosts: list[Ghost] = []
        self.building: float | None = None  # fraction of a build's forward pass, while one runs
        self._budget = 0.0
        self._resets = 0  # names the run's current backward pass, for the chart's cache
        self._speed_before_end: int | None = None
        self._paused_at: set[str] = set()  # kinds already paused at in this pass
        self._dirty = True
        self.training = training or training_of(preset)
        self.training_screen: TrainingScreen | None = None

    # -- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Horizontal(id="body"):
            yield ParamsForm(self.config, self.preset.look_for, id="params")
            with Vertical(id="main"):
                yield NormChart(id="chart")
                yield StepLog(id="log")
        yield SummaryBar(id="summary")
        yield Static("Terminal too small: bptt-lab needs at least 60 x 16.", id="too-small")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.set_interval(1 / REDRAW_HZ, self._redraw)
        self._advance_timer = self.set_interval(1 / 30, self._tick, pause=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:  # leave the terminal as it was found: quit through Textual, which restores it
                loop.add_signal_handler(sig, self.exit, None, 128 + sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        if under_web_driver():
            parent = os.getppid()
            self.set_interval(ORPHAN_CHECK_SECONDS, lambda: orphaned(parent) and self.exit(None, 1))
        if self.training is not None:
            self.building = 0.0  # the per-step view gets update 1's backward pass once the training is built
            self.open_training(self.preset, self.config, self.training)
        else:
            self._build(self.config, self.preset, None, None)
        self._redraw()

    # -- building a run (in a worker) ----------------------------------------------

    def _build(self, config: Config, preset: Preset, field: str | None, note: str | None) -> None:
        """Build a run in a thread; the screen keeps the old one meanwhile. A newer
        build cancels an older one (exclusive), and quitting cancels it too."""
        self.building = 0.0
        self._dirty = True
        self._build_worker(config, preset, field, note)

    @work(thread=True, exclusive=True, group="build")
    def _build_worker(self, config: Config, preset: Preset, field: str | None, note: str | None) -> None:
        worker = get_current_worker()
        last = [0.0]

        def progress(t: int, T: int) -> None:
            if worker.is_cancelled:
                raise BuildCancelled
            now = time.monotonic()
            if now - last[0] > 0.1:
                last[0] = now
                self.post_message(BuildProgress(t / max(T, 1)))

        try:
            if isinstance(preset, UpdatePreset):  # an update's backward pass: its parameters and batch
                run = Run(config, preset.params, preset.inputs, preset.targets, progress=progress, gradient_map=True)
            else:
                run = Run(config, progress=progress, gradient_map=True)
            run.live()  # the spectrum, computed here rather than on the first frame
        except BuildCancelled:
            return
        except ConfigError as exc:
            self.post_message(RunRefused(field, exc.message))
            return
        except Exception as exc:  # the engine cannot take these settings: say so, keep the old run
            self.post_message(RunRefused(field, f"{type(exc).__name__}: {exc}"))
            return
        if not worker.is_cancelled:
            self.post_message(RunReady(run, preset, field, note))

    @on(BuildProgress)
    def _build_progress(self, message: BuildProgress) -> None:
        if self.building is not None:
            self.building = message.fraction
            self._dirty = True

    @on(RunReady)
    def _run_ready(self, message: RunReady) -> None:
        run = message.run
        preset_changed = message.preset is not self.preset
        family_changed = _family(message.preset) != _family(self.preset)  # two updates of one training compare
        self.engine_run, self.config, self.preset = run, run.config, message.preset
        self.building = None
        form = self.query_one(ParamsForm)
        form.fill(run.config, message.preset.look_for if preset_changed else None)
        if family_changed and self.ghosts:
            self.ghosts = []
            message.note = (message.note + "; " if message.note else "") + "ghosts cleared (a new preset)"
        self._restart()
        if message.field is not None:
            self.screen.set_focus(None)  # the keys are the app's again
        source = getattr(run.model, "source", None)
        if source is not None and (preset_changed or message.field in ("weights", "weights_prefix", "layer", None)):
            # Which of the file's keys the lab steps (prefix, layer, head): a weights file's run says it once.
            message.note = source.sentence() + ("; " + message.note if message.note else "")
        if message.note:
            self.say(message.note)

    @on(RunRefused)
    def _run_refused(self, message: RunRefused) -> None:
        self.building = None
        self._dirty = True
        form = self.query_one(ParamsForm)
        if self.engine_run is None:  # the very first run: nothing to fall back on
            self.exit(message=f"bptt-lab: {message.message}", return_code=2)
            return
        form.fill(self.config)
        form.refuse(message.field, message.message)
        self.say(f"not applied: {message.message}", severity="warning")

    def _start(self, config: Config, preset: Preset | None = None, field: str | None = None, note: str | None = None) -> None:
        """Rebuild the run from a config (and a preset) and start over."""
        self._build(config, preset or self.preset, field, note)

    # -- the backward pass and the view of it --------------------------------------

    def _restart(self) -> None:
        self._resets += 1
        self.playing = False
        self._advance_timer.pause()
        self.shown = 0
        self._paused_at.clear()
        self._dirty = True

    def _have_run(self) -> bool:
        if self.engine_run is None:
            self.say("the run is still being built")
            return False
        return True

    def _forward(self, steps: int) -> None:
        """Move the screen `steps` records on: through what was computed, then by
        stepping the engine. Play pauses at the first event of the chosen kind."""
        run = self.engine_run
        target = min(self.shown + steps, run.T)
        if target > run.k:
            first = run.k + 1
            try:
                run.advance(target - run.k)
            except Exception as exc:  # the app stays up whatever the engine says
                self._stop_playing()
                self.say(f"engine error: {exc}", severity="error")
                target = run.k
            if run.k >= first:
                self.post_message(StepsAdvanced(first, run.k))
        event = self._pause_event(self.shown + 1, target)
        if event is not None:
            target = event
        self.shown = target
        self._dirty = True
        if self.shown >= run.T or event is not None:
            self._stop_playing()
            if self._speed_before_end is not None and (run.done or event is not None):
                self.speed_index, self._speed_before_end = self._speed_before_end, None
        if event is not None:
            self.say(f"paused at k = {event}: {self.pause_at} (a continues)")

    def _pause_event(self, first: int, last: int) -> int | None:
        """The first record in first..last of the kind play pauses at, once per pass."""
        kind = self.pause_at
        if kind is None or kind in self._paused_at or last < first:
            return None
        rec = self.engine_run.records
        window = slice(first - 1, last)
        hits = np.flatnonzero(rec.clip_mode[window] > 0) if kind == "CLIP" else np.flatnonzero(rec.status[window] == _STATUS_OF[kind])
        if not hits.size:
            return None
        self._paused_at.add(kind)
        return first + int(hits[0])

    @on(StepsAdvanced)
    def _steps_advanced(self, message: StepsAdvanced) -> None:
        self._dirty = True

    def _stop_playing(self) -> None:
        self.playing = False
        self._advance_timer.pause()

    def _tick(self) -> None:
        if self.engine_run is None:
            return
        speed = SPEEDS[self.speed_index]
        if speed == 0:
            deadline = time.perf_counter() + MAX_SPEED_SLICE
            while self.playing and self.shown < self.engine_run.T and time.perf_counter() < deadline:
                self._forward(64)
            return
        self._budget += speed / 30
        steps = int(self._budget)
        self._budget -= steps
        if steps:
            self._forward(steps)

    # -- drawing --------------------------------------------------------------------

    def view(self) -> View:
        run = self.engine_run
        if run is None:
            state = "building"
        elif self.shown >= run.T:
            state = "done"
        else:
            state = "playing" if self.playing else "paused"
        speed = SPEEDS[self.speed_index]
        return View(
            preset=self.preset,
            config=self.config,
            run=run,
            shown=self.shown,
            state=state,
            speed="max" if speed == 0 else f"{speed}/s",
            pause_at=self.pause_at,
            ghosts=list(self.ghosts),
            building=self.building,
        )

    def _redraw(self) -> None:
        if not self._dirty or not self.is_running or self._exit:
            return
        self._dirty = False
        view = self.view()
        self.query_one(HeaderBar).show(view)
        self.query_one(StepLog).show(view)
        self.query_one(NormChart).show(view, token=(id(view.run), self._resets))
        self.query_one(SummaryBar).show(view)

    def say(self, text: str, severity: str = "information") -> None:
        """A brief notification, one at a time, at the top (never over the verdict)."""
        self.clear_notifications()
        self.notify(text, severity=severity, timeout=NOTE_SECONDS if severity == "information" else 2 * NOTE_SECONDS)

    # -- actions --------------------------------------------------------------------

    def action_toggle_play(self) -> None:
        if not self._have_run():
            return
        if self.shown >= self.engine_run.T:
            self.say("the run is complete: r resets it, b steps back")
            return
        self.playing = not self.playing
        (self._advance_timer.resume if self.playing else self._advance_timer.pause)()
        self._dirty = True

    def action_step(self) -> None:
        if not self._have_run():
            return
        if self.shown >= self.engine_run.T:
            self.say("the run is complete: r resets it, b steps back")
            return
        self._forward(1)

    def action_step_back(self) -> None:
        if not self._have_run():
            return
        self._stop_playing()
        if self.shown == 0:
            self.say("at the start: nothing to step back to")
            return
        self.shown -= 1
        self._dirty = True

    def action_to_end(self) -> None:
        """Run to the end in slices, so the screen keeps updating and q still quits;
        the speed goes back to what it was when the run is complete."""
        if not self._have_run():
            return
        if self._speed_before_end is None:
            self._speed_before_end = self.speed_index
        self.speed_index = len(SPEEDS) - 1
        if not self.playing and self.shown < self.engine_run.T:
            self.action_toggle_play()

    def action_reset(self) -> None:
        if not self._have_run():
            return
        self.engine_run.reset()
        self._restart()

    def action_faster(self) -> None:
        self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
        self._dirty = True

    def action_slower(self) -> None:
        self.speed_index = max(self.speed_index - 1, 0)
        self._dirty = True

    def action_cycle_clip(self) -> None:
        self.set_clip(CLIP_MODES[(CLIP_MODES.index(self.config.clip) + 1) % len(CLIP_MODES)])

    def set_clip(self, mode: str) -> None:
        try:
            config = self.config.with_overrides(clip=mode)
        except ConfigError as exc:
            self.say(str(exc), severity="error")
            return
        self._start(config, note=f"clip: {mode}" + (f" (threshold {config.clip_threshold:g})" if mode != "none" else ""))

    def action_cycle_pause(self) -> None:
        order = (None, *PAUSE_KINDS)
        self.set_pause(order[(order.index(self.pause_at) + 1) % len(order)])

    def set_pause(self, kind: str | None) -> None:
        self.pause_at = kind
        self._paused_at.clear()
        self._dirty = True
        self.say(f"play pauses at the first {kind}" if kind else "play does not pause at events")

    def open_preset(self, preset: Preset) -> None:
        """A preset with training settings opens in the training view, the others here."""
        settings = training_of(preset)
        if settings is not None:
            self.open_training(preset, preset.config, settings)
            return
        self.action_steps_view()
        self._start(preset.config, preset, note=f"preset {preset.name}")

    def action_pick_preset(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.open_preset(self.presets[name])

        self.push_screen(PresetPicker(list(self.presets.values())), chosen)

    def action_ghost(self) -> None:
        run = self.engine_run
        if run is None or self.shown == 0:
            self.say("nothing to pin yet: step first")
            return
        ghost = Ghost(self.config, self.preset.name, run.records.columns["grad_norm"][: self.shown].copy())
        self.ghosts = (self.ghosts + [ghost])[-MAX_GHOSTS:]
        self._dirty = True
        self.say(f"pinned this run as a ghost ({self.shown} steps; {len(self.ghosts)} of {MAX_GHOSTS}); change a setting to compare, G clears")

    def action_clear_ghosts(self) -> None:
        if self.ghosts:
            self.ghosts = []
            self._dirty = True
            self.say("ghosts cleared")

    def action_export(self) -> None:
        if not self._have_run():
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"bptt-lab-{self.preset.name}-{stamp}"
        files = {
            f"{base}.json": export.to_json(self.engine_run, preset=self.preset.name) + "\n",
            f"{base}.csv": export.to_csv(self.engine_run),
        }
        self.hand_over(files, f"exported {self.engine_run.k} steps to", "export")

    def action_screenshot(self) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.hand_over({f"bptt-lab-{self.preset.name}-{stamp}.svg": self.export_screenshot()}, "screenshot saved to", "screenshot")

    @property
    def export_place(self) -> str:
        return "your browser's downloads" if under_web_driver() else str(self.export_dir)

    def hand_over(self, files: dict[str, str], what: str, failing: str) -> None:
        """Give the user text files: downloads in a browser (bptt-lab serve,
        nothing is written on the server), files in the export folder in a
        terminal. Says where they went."""
        if under_web_driver():
            for name, text in files.items():
                self.deliver_text(io.StringIO(text), save_filename=name, open_method="download")
            self.say(f"{what} your browser's downloads: {' and '.join(files)}")
            return
        written = []
        try:
            for name, text in files.items():
                path = (self.export_dir / name).resolve()
                path.write_text(text, encoding="utf-8")
                written.append(str(path))
        except OSError as exc:
            self.say(f"{failing} failed: {exc}", severity="error")
            return
        self.say(f"{what} {' and '.join(written)}")

    def action_leave_field(self) -> None:
        """Give the keys back to the app after typing in a parameter field; with
        none to leave, go back to the training an update was opened from."""
        if not isinstance(self.screen.focused, Input) and isinstance(self.preset, UpdatePreset) and self.training_screen is not None:
            self.action_training_view()
            return
        self.screen.set_focus(None)

    def action_toggle_params(self) -> None:
        self.query_one(ParamsForm).toggle_class("hidden")

    def action_open_view(self, name: str) -> None:
        """One of the views (tui/views): a screen of its own over the dashboard."""
        opened = views.module(name).screen(self)
        if opened is None:
            self.say(f"the {name} view is not built yet")
            return
        self.push_screen(opened)

    def action_help(self) -> None:
        config = self.engine_run.config if self.engine_run else self.config
        self.push_screen(HelpScreen(self.preset, config.cell_type, config))

    # -- the training view ----------------------------------------------------------

    def open_training(self, preset: Preset, config: Config, settings: TrainingSettings, first: bool = True) -> None:
        """Train `config` with `settings` in the training view (built in its worker).
        `first`: the per-step view gets update 1's backward pass, unless it shows this training already."""
        if self.training_screen is None:
            self.training_screen = TrainingScreen(preset, config, settings, export_dir=self.export_dir)
            self.training_screen.wants_first = first
            self.install_screen(self.training_screen, "training")
        else:
            self.training_screen.rebuild(preset, config, settings, note=f"preset {preset.name}", first=first)
        if self.screen is not self.training_screen:
            self.push_screen("training")

    def action_training_view(self) -> None:
        """To the training view: the training on screen there, or one of the
        per-step view's config (the preset's training settings or the defaults)."""
        if self.training_screen is not None:
            if self.screen is not self.training_screen:
                self.push_screen("training")
            return
        config = self.engine_run.config if self.engine_run is not None else self.config
        settings = training_of(self.preset) or (TrainingSettings(task="text") if config.text else TrainingSettings())
        self.open_training(self.preset, config, settings, first=False)  # the per-step view keeps its run
        self.training_screen.default_settings = training_of(self.preset) is None
        self.say(f"training {self.preset.name} on the {settings.task} task; t comes back here")

    def action_steps_view(self) -> None:
        """Back to the per-step view from the training view."""
        if self.training_screen is not None and self.screen is self.training_screen:
            self.pop_screen()
            self._dirty = True

    def training_refused(self, screen: TrainingScreen, message: str) -> None:
        """The training view's settings could not be trained: keep what was there."""
        if screen.training is not None:
            self.say(f"not applied: {message}", severity="warning")
            return
        if self.engine_run is None:  # the very first training: nothing to fall back on
            self.exit(message=f"bptt-lab: {message}", return_code=2)
            return
        self.action_steps_view()
        self.uninstall_screen(screen)
        self.training_screen = None
        self.say(f"cannot train this: {message}", severity="warning")

    def show_update(self, run: Run, preset: Preset, u: int) -> None:
        """Update u's backward pass of the training `preset`, here, stepped one timestep at a time."""
        self.post_message(RunReady(run, self._update_preset(run, preset, u), None, f"update {u}'s backward pass, the gradient it used: t or escape goes back"))
        self.action_steps_view()

    def show_first_update(self, run: Run, preset: Preset) -> None:
        """Update 1's backward pass, for a per-step view that shows no update of this training."""
        if self.engine_run is None or _family(self.preset) != preset.name:
            self.post_message(RunReady(run, self._update_preset(run, preset, 1), None, None))

    @staticmethod
    def _update_preset(run: Run, preset: Preset, u: int) -> UpdatePreset:
        return UpdatePreset(
            f"{preset.name} u{u}",
            f"update {u} of {preset.name}: its backward pass, on the parameters before it (theta_{u - 1}) and its batch",
            preset.look_for,
            run.config,
            preset.source,
            base=preset.name,
            u=u,
            params={k: v.copy() for k, v in run.params.items()},
            inputs=run.inputs,
            targets=run.targets,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """In the training view, the per-step view's own settings are not offered."""
        if isinstance(self.screen, TrainingScreen) and action in ("cycle_pause", "toggle_params", "leave_field", "training_view"):
            return False
        if getattr(self.screen, "OWNS_KEYS", False) and action not in SHARED_ACTIONS:
            return False  # a view's screen (tui/views): the per-step view's keys would act on what is hidden
        return True

    # -- the palette: every action, each clip mode and pause kind, every preset ------

    def get_system_commands(self, screen):
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":  # Textual's writes to a Downloads folder a server may not have
                yield command
        if isinstance(screen, TrainingScreen):
            yield from screen.commands()
            yield SystemCommand("Screenshot", f"Save an SVG of the screen to {self.export_place} (s)", self.action_screenshot)
            for preset in self.presets.values():
                yield SystemCommand(f"Preset: {preset.name}", preset.description, lambda p=preset: self.open_preset(p))
            return
        yield SystemCommand("Training view", "Train this model, update by update (t)", self.action_training_view)
        yield SystemCommand("Play / pause", "Play or pause the backward pass (space)", self.action_toggle_play)
        yield SystemCommand("Step", "One backward step (n)", self.action_step)
        yield SystemCommand("Step back", "Show the previous record; nothing is recomputed (b)", self.action_step_back)
        yield SystemCommand("Run to end", "Run the backward pass to the end (e)", self.action_to_end)
        yield SystemCommand("Reset", "Start the backward pass over (r)", self.action_reset)
        for mode in CLIP_MODES:
            yield SystemCommand(f"Clip: {mode}", f"Rebuild the run with clip mode {mode} (c cycles)", lambda m=mode: self.set_clip(m))
        for kind in (*PAUSE_KINDS, None):
            yield SystemCommand(
                f"Pause at: {kind or 'nothing'}", f"Play pauses at the first {kind} (a cycles)" if kind else "Play does not pause at events", lambda k=kind: self.set_pause(k)
            )
        yield SystemCommand("Ghost", "Pin this run's curve to compare with the next (g)", self.action_ghost)
        yield SystemCommand("Clear ghosts", "Remove the pinned curves (G)", self.action_clear_ghosts)
        yield SystemCommand("Export", f"Write the run as JSON and CSV to {self.export_place} (x)", self.action_export)
        yield SystemCommand("Screenshot", f"Save an SVG of the screen to {self.export_place} (s)", self.action_screenshot)
        yield SystemCommand("Parameters pane", "Show or hide the parameters (o)", self.action_toggle_params)
        for view in VIEWS:
            yield SystemCommand(f"View: {view.title}", f"{view.what} ({view.key})", lambda n=view.name: self.action_open_view(n))
        yield SystemCommand("Help", "What every column, symbol and key means (?)", self.action_help)
        for preset in self.presets.values():
            yield SystemCommand(f"Preset: {preset.name}", preset.description, lambda p=preset: self.open_preset(p))

    # -- the form -------------------------------------------------------------------

    @on(ParamsForm.Changed)
    def _setting_changed(self, message: ParamsForm.Changed) -> None:
        form = self.query_one(ParamsForm)
        form.clear_error(message.field)
        if getattr(self.config, message.field) == message.value:
            return
        try:
            config = self.config.with_overrides(**{message.field: message.value})
        except ConfigError as exc:
            form.refuse(message.field, exc.message)
            self.say(f"not applied: {exc.message}", severity="warning")
            return
        self._start(config, field=message.field, note=f"{message.field} = {message.value}: run rebuilt")


def make_app(
    preset_name: str = DEFAULT_PRESET, config: Config | None = None, presets: dict[str, Preset] | None = None, **kwargs
) -> BpttLab:
    """The app, un-run: shared by the CLI and the tests. `training=TrainingSettings(...)`
    opens the training view on `config` (a training preset opens there anyway)."""
    presets = presets or BUILTIN
    return BpttLab(presets[preset_name], config, presets=presets, **kwargs)
