"""The training view: a training run update by update (SPEC section 8).

The screen owns the training and the presenter's controls; the panes each
draw a `Frame`. Everything that touches the training runs in a worker
thread and talks back with messages, never with call_from_thread:

- `TrainingReady` / `TrainingRefused`: a training was built (or could not
  be; the old one stays);
- `UpdatesAdvanced`: the play worker took updates (posted a few times a
  second, not once per update) and `PlayStopped` when it ends;
- `UpdateOpened`: update u's backward pass, built as a per-step `Run`
  (`Training.run_for(u)`), for the app's per-step view;
- `SuggestionReady`, `Exported` (a `bptt-lab.train/1` snapshot, engine/export.py),
  `WorkFailed`.

A worker holds the training's lock for one update at a time, and checks for
cancellation between updates, so pausing and quitting take at most one
update. Each worker runs BLAS on one thread (blas.py): beside the screen's
thread, two BLAS threads slow an update many times on a busy 2-core machine. The records are read without the lock: a frame reads rows
1..records.count, which the engine sets after a row is complete. A redraw
timer draws the frame a few times a second, however fast the updates come.
"""

from __future__ import annotations

import io
import threading
import time
from datetime import datetime
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from engine import Config, ConfigError, export
from engine.config import CLIP_MODES
from engine.presets import Preset
from engine.run import Run
from engine.training import ThresholdSuggestion, Training, TrainingSettings, suggest_threshold

from ..presenter import SPEEDS
from .bars import TrainingHeader, TrainingSummary
from .blas import one_thread_here
from .charts import GradNormChart, LossChart, SpectrumChart
from .frame import Frame, TrainingGhost
from .updatelog import UpdateLog

REDRAW_HZ = 10
POST_SECONDS = 0.05  # the play worker tells the screen at most this often
MAX_GHOSTS = 3
DEFAULT_SPEED = 0  # updates per second; 0: as fast as the machine goes


# -- messages from the workers ----------------------------------------------------------


class TrainingReady(Message):
    """A training was built; `first` is update 1's backward pass, for a per-step view that has none."""

    def __init__(self, generation: int, training: Training, first: Run | None, note: str | None) -> None:
        super().__init__()
        self.generation, self.training, self.first, self.note = generation, training, first, note


class TrainingRefused(Message):
    def __init__(self, generation: int, message: str) -> None:
        super().__init__()
        self.generation, self.message = generation, message


class UpdatesAdvanced(Message):
    def __init__(self, generation: int, checkpoints: tuple[int, ...]) -> None:
        super().__init__()
        self.generation, self.checkpoints = generation, checkpoints


class PlayStopped(Message):
    """A play worker ended: at the end, at a divergence, after the updates it was asked for, or paused."""

    def __init__(self, generation: int, play: int, checkpoints: tuple[int, ...]) -> None:
        super().__init__()
        self.generation, self.play, self.checkpoints = generation, play, checkpoints


class UpdateOpened(Message):
    def __init__(self, generation: int, u: int, run: Run) -> None:
        super().__init__()
        self.generation, self.u, self.run = generation, u, run


class SuggestionReady(Message):
    def __init__(self, generation: int, suggestion: ThresholdSuggestion | None) -> None:
        super().__init__()
        self.generation, self.suggestion = generation, suggestion


class Exported(Message):
    """A snapshot of the training, as the files to hand over (name -> text)."""

    def __init__(self, files: dict[str, str], count: int) -> None:
        super().__init__()
        self.files, self.count = files, count


class WorkFailed(Message):
    def __init__(self, what: str, error: Exception) -> None:
        super().__init__()
        self.what, self.error = what, error


class Opening(Message):
    """How far the replay to an update's parameters has got."""

    def __init__(self, generation: int, text: str) -> None:
        super().__init__()
        self.generation, self.text = generation, text


class OpenCancelled(Exception):
    """Quitting (or another enter) made the replay pointless."""


def _checkpoints(training: Training) -> tuple[int, ...]:
    return tuple(sorted(training.checkpoints))


def update_run(training: Training, u: int, progress) -> Run:
    """`training.run_for(u)`: theta_{u-1} on update u's batch, with the replay from
    the checkpoint before u reporting progress(done, total) after each update
    (what raises there stops it: quitting does not wait for a long replay)."""
    n = u - 1
    if n == training.applied:
        return training.run_for(u)
    base = training.checkpoints[max(k for k in training.checkpoints if k <= n)]
    return Run(training.config, training.replay(base, n, progress), *training.batch(u), gradient_map=True)


class TrainingScreen(Screen):
    """The training view. The app switches to it with t and opens an update's
    backward pass from it (enter) in the per-step view."""

    DEFAULT_CSS = """
    TrainingScreen #train-charts {
        height: 1fr;
    }
    TrainingScreen #train-charts > UpdateChart {
        width: 1fr;
    }
    """

    # The footer shows these first, in this order, and cuts the end on a narrow
    # terminal (the app's p and s follow): what only this view has comes early.
    BINDINGS = [
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "app.quit", "quit"),
        Binding("space", "toggle_play", "train"),
        Binding("n,right", "step", "step", key_display="n"),
        Binding("b,left", "back", "back", key_display="b"),
        Binding("enter", "open", "open"),
        Binding("t", "steps", "steps"),
        Binding("c", "cycle_clip", "clip"),
        Binding("u", "suggested", "suggest"),
        Binding("g", "ghost", "ghost"),
        Binding("x", "export", "export"),
        Binding("e", "to_end", "end"),
        Binding("r", "reset", "reset"),
        Binding("v", "app.open_view('spectrum')", "eigenvalues", show=False),
        Binding("left_square_bracket", "checkpoint(-1)", "checkpoint", key_display="[", show=False),
        Binding("right_square_bracket", "checkpoint(1)", "next checkpoint", key_display="]", show=False),
        Binding("G", "clear_ghosts", "clear ghosts", show=False),
        Binding("plus,equals_sign", "faster", "faster", key_display="+", show=False),
        Binding("minus", "slower", "slower", key_display="-", show=False),
    ]

    def __init__(self, preset: Preset, config: Config, settings: TrainingSettings, export_dir: Path | None = None, speed: int = DEFAULT_SPEED):
        super().__init__()
        self.preset, self.config, self.settings = preset, config, settings
        self.export_dir = Path(export_dir) if export_dir is not None else Path.cwd()
        self.speed_index = SPEEDS.index(speed) if speed in SPEEDS else len(SPEEDS) - 1
        self.training: Training | None = None
        self.lock = threading.Lock()  # held by a worker for one update (or one replay) at a time
        self.generation = 0  # names the training; messages about an older one are dropped
        self.play = 0  # names the play worker
        self.playing = False
        self.cursor: int | None = None
        self.checkpoints: tuple[int, ...] = ()
        self.ghosts: list[TrainingGhost] = []
        self.busy: str | None = None
        self.wants_first = False  # hand update 1's backward pass to the app's per-step view when built
        self.default_settings = False  # the preset has no training: its model trains with the defaults
        self._speed_before_end: int | None = None
        self._dirty = True

    # -- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TrainingHeader(id="train-header")
        with Horizontal(id="train-charts"):
            yield LossChart(id="train-loss")
            yield GradNormChart(id="train-norm")
            yield SpectrumChart(id="train-spectrum")
        yield UpdateLog(id="train-log")
        yield TrainingSummary(id="train-summary")
        yield Static("Terminal too small: bptt-lab needs at least 60 x 16.", id="train-too-small")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.set_interval(1 / REDRAW_HZ, self._redraw)
        self.rebuild(self.preset, self.config, self.settings, first=self.wants_first)

    def on_screen_resume(self) -> None:
        self._dirty = True

    # -- building a training (in a worker) ----------------------------------------------

    def rebuild(self, preset: Preset, config: Config, settings: TrainingSettings, note: str | None = None, first: bool = False) -> None:
        """Stop the training on screen and build another; until it is built the old one stays."""
        self._stop()
        self.generation += 1
        if self.ghosts and settings.task != self.settings.task:
            self.ghosts = []
            note = (note + "; " if note else "") + "ghosts cleared (another task)"
        if preset is not self.preset:
            self.default_settings = False
        self.preset, self.config, self.settings = preset, config, settings
        self.busy = "building the training"
        self._dirty = True
        self._build_worker(self.generation, config, settings, note, first)

    @work(thread=True, exclusive=True, group="build")
    def _build_worker(self, generation: int, config: Config, settings: TrainingSettings, note: str | None, first: bool) -> None:
        one_thread_here()
        try:
            training = Training(config, settings)
            # Update 1's backward pass, as run_for(1) will give it: theta_0 on update 1's batch.
            run = Run(training.config, training.params_at(0), *training.batch(1), gradient_map=True) if first else None
        except ConfigError as exc:
            self.post_message(TrainingRefused(generation, exc.message))
            return
        except Exception as exc:  # the engine cannot take these settings: say so, keep the old training
            self.post_message(TrainingRefused(generation, f"{type(exc).__name__}: {exc}"))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(TrainingReady(generation, training, run, note))

    @on(TrainingReady)
    def _training_ready(self, message: TrainingReady) -> None:
        if message.generation != self.generation:
            return
        self.training = message.training
        self.lock = threading.Lock()
        self.cursor = None
        self.checkpoints = _checkpoints(message.training)
        self.busy = None
        self._dirty = True
        if message.first is not None:
            self.app.show_first_update(message.first, self.preset)
        if message.note:
            self.app.say(message.note)

    @on(TrainingRefused)
    def _training_refused(self, message: TrainingRefused) -> None:
        if message.generation != self.generation:
            return
        self.busy = None
        self._dirty = True
        self.app.training_refused(self, message.message)

    # -- the play worker ----------------------------------------------------------------

    def _play(self, limit: int | None) -> None:
        """Take updates in a worker: up to `limit`, or to the end (None)."""
        self.play += 1
        self.playing = True
        self.cursor = None
        self._dirty = True
        self._play_worker(self.generation, self.play, self.training, self.lock, limit)

    @work(thread=True, exclusive=True, group="train")
    def _play_worker(self, generation: int, play: int, training: Training, lock: threading.Lock, limit: int | None) -> None:
        worker = get_current_worker()
        one_thread_here()
        taken, paced, speed, start, told = 0, 0, None, 0.0, 0.0
        try:
            while not worker.is_cancelled and not training.done and (limit is None or taken < limit):
                now_speed = SPEEDS[self.speed_index] if limit is None else 0
                if now_speed != speed:  # a new speed: pace from here
                    speed, start, paced = now_speed, time.monotonic(), 0
                if speed:
                    due = start + paced / speed
                    while not worker.is_cancelled and (wait := due - time.monotonic()) > 0:
                        time.sleep(min(wait, 0.05))
                    if worker.is_cancelled:
                        break
                with lock:
                    training.advance(1)
                taken += 1
                paced += 1
                now = time.monotonic()
                if now - told >= POST_SECONDS:
                    told = now
                    self.post_message(UpdatesAdvanced(generation, _checkpoints(training)))
        except Exception as exc:  # the app stays up whatever the engine says
            self.post_message(WorkFailed("engine error", exc))
        self.post_message(PlayStopped(generation, play, _checkpoints(training)))

    @on(UpdatesAdvanced)
    def _updates_advanced(self, message: UpdatesAdvanced) -> None:
        if message.generation == self.generation:
            self.checkpoints = message.checkpoints
            self._dirty = True

    @on(PlayStopped)
    def _play_stopped(self, message: PlayStopped) -> None:
        if message.generation != self.generation:
            return
        self.checkpoints = message.checkpoints
        self._dirty = True
        if message.play != self.play:
            return
        self.playing = False
        t = self.training
        if self._speed_before_end is not None and t is not None and t.done:
            self.speed_index, self._speed_before_end = self._speed_before_end, None
        if t is not None and t.divergence is not None:
            d = t.divergence
            # Brief: the summary names the divergence for good, and the charts under the note are the point now.
            self.app.say(f"diverged at u = {d.u} (the summary says why); enter opens it")

    def _stop(self) -> None:
        """Pause: the worker stops before its next update."""
        self.workers.cancel_group(self, "train")
        if self.playing:
            self.play += 1
            self.playing = False
            self._dirty = True

    # -- drawing ------------------------------------------------------------------------

    def frame(self) -> Frame:
        t = self.training
        count = t.records.count if t is not None else 0
        if t is None:
            state = "building"
        elif t.divergence is not None and count >= t.divergence.u:
            state = "diverged"
        elif t.done and count >= t.u:
            state = "done"
        else:
            state = "playing" if self.playing else "paused"
        speed = SPEEDS[self.speed_index]
        return Frame(
            preset=self.preset,
            config=t.config if t is not None else self.config,
            settings=t.settings if t is not None else self.settings,
            training=t,
            count=count,
            cursor=self.cursor,
            state=state,
            speed="max" if speed == 0 else f"{speed}/s",
            ghosts=list(self.ghosts),
            checkpoints=self.checkpoints,
            suggestion=t.suggestion() if t is not None else None,
            busy=self.busy,
        )

    def _redraw(self) -> None:
        if not self._dirty or not self.is_active or self.app._exit:
            return
        self._dirty = False
        frame = self.frame()
        token = (id(frame.training), self.generation)
        self.query_one(TrainingHeader).show(frame)
        for chart in (LossChart, GradNormChart, SpectrumChart):
            self.query_one(chart).show(frame, token)
        self.query_one(UpdateLog).show(frame)
        self.query_one(TrainingSummary).show(frame)

    def draw(self) -> None:
        """Draw now (tests, screenshots)."""
        self._dirty = True
        self._redraw()

    # -- actions ------------------------------------------------------------------------

    def _have_training(self) -> bool:
        if self.training is None:
            self.app.say("the training is still being built")
            return False
        return True

    @property
    def count(self) -> int:
        return self.training.records.count if self.training is not None else 0

    def action_toggle_play(self) -> None:
        if not self._have_training():
            return
        if self.playing:
            self._stop()
            return
        if self.training.done:
            self.app.say("the training is over: r starts it again, b and [ ] move the cursor")
            return
        self._play(None)

    def action_step(self) -> None:
        """One update on: through the updates taken first (the cursor), then a new one."""
        if not self._have_training():
            return
        self._stop()
        if self.cursor is not None and self.cursor < self.count:
            self.cursor += 1
            self._dirty = True
            return
        if self.training.done:
            self.app.say("the training is over: r starts it again")
            return
        self._play(1)

    def action_back(self) -> None:
        if not self._have_training():
            return
        self._stop()
        at = self.count if self.cursor is None else self.cursor
        if at <= 1:
            self.app.say("at the first update" if at else "no update yet: n takes one")
            return
        self.cursor = at - 1
        self._dirty = True

    def action_checkpoint(self, direction: int) -> None:
        """The cursor to the update whose parameters a checkpoint kept (theta_n: update n + 1)."""
        if not self._have_training():
            return
        self._stop()
        count = self.count
        if count == 0:
            self.app.say("no update yet: n takes one")
            return
        at = count if self.cursor is None else self.cursor
        targets = sorted({min(n + 1, count) for n in self.checkpoints})
        ahead = [u for u in targets if (u - at) * direction > 0]
        if not ahead:
            self.app.say("no checkpoint " + ("after" if direction > 0 else "before") + f" u = {at}")
            return
        self.cursor = ahead[0] if direction > 0 else ahead[-1]
        self._dirty = True
        self.app.say(f"u = {self.cursor}: its parameters, theta_{self.cursor - 1}, are kept (enter opens it at once)")

    def action_to_end(self) -> None:
        if not self._have_training():
            return
        if self.training.done:
            self.app.say("the training is over: r starts it again")
            return
        if self._speed_before_end is None:
            self._speed_before_end = self.speed_index
        self.speed_index = len(SPEEDS) - 1
        if not self.playing:
            self._play(None)

    def action_reset(self) -> None:
        if not self._have_training():
            return
        self.rebuild(self.preset, self.config, self.settings, note="reset: the same seed, data and initial weights")

    def action_faster(self) -> None:
        self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
        self._dirty = True

    def action_slower(self) -> None:
        self.speed_index = max(self.speed_index - 1, 0)
        self._dirty = True

    def action_cycle_clip(self) -> None:
        self.set_clip(CLIP_MODES[(CLIP_MODES.index(self.config.clip) + 1) % len(CLIP_MODES)])

    def set_clip(self, mode: str, threshold: float | None = None, why: str = "") -> None:
        try:
            config = self.config.with_overrides(clip=mode, **({"clip_threshold": threshold} if threshold is not None else {}))
        except ConfigError as exc:
            self.app.say(exc.message, severity="error")
            return
        note = f"clip: {mode}" + (f" (threshold {config.clip_threshold:g})" if mode != "none" else "") + why + "; the training starts over"
        self.rebuild(self.preset, config, self.settings, note=note)

    def action_suggested(self) -> None:
        """Norm clipping at the suggested threshold, from an unclipped warm-up (in a worker)."""
        self.busy = f"warm-up for the threshold ({self.settings.warmup} updates)"
        self._dirty = True
        self._suggest_worker(self.generation, self.config, self.settings)

    @work(thread=True, exclusive=True, group="suggest")
    def _suggest_worker(self, generation: int, config: Config, settings: TrainingSettings) -> None:
        one_thread_here()
        try:
            suggestion = suggest_threshold(config, settings)
        except Exception as exc:
            self.post_message(WorkFailed("no suggestion", exc))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(SuggestionReady(generation, suggestion))

    @on(SuggestionReady)
    def _suggestion_ready(self, message: SuggestionReady) -> None:
        self.busy = None
        self._dirty = True
        if message.generation != self.generation:
            return
        s = message.suggestion
        if s is None:
            self.app.say("no suggestion: no warm-up update was unclipped and finite", severity="warning")
            return
        self.set_clip("norm", s.threshold, f", suggested: the mean norm of {s.updates} warm-up updates (range {s.low:.3g}-{s.high:.3g})")

    def action_ghost(self) -> None:
        t = self.training
        if t is None or self.count == 0:
            self.app.say("nothing to pin yet: train first")
            return
        ghost = TrainingGhost.of(t, self.preset.name, self.count)
        self.ghosts = (self.ghosts + [ghost])[-MAX_GHOSTS:]
        self._dirty = True
        self.app.say(f"pinned this training as a ghost ({ghost.count} updates; {len(self.ghosts)} of {MAX_GHOSTS}); change the clip (c) or the preset (p) to compare, G clears")

    def action_clear_ghosts(self) -> None:
        if self.ghosts:
            self.ghosts = []
            self._dirty = True
            self.app.say("ghosts cleared")

    def action_export(self) -> None:
        if not self._have_training():
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self._export_worker(self.training, self.lock, self.preset.name, f"bptt-lab-train-{self.preset.name}-{stamp}")

    @work(thread=True, group="export")
    def _export_worker(self, training: Training, lock: threading.Lock, preset: str, base: str) -> None:
        """`bptt-lab.train/1` JSON and CSV of one snapshot: taken between two updates
        (the play worker waits meanwhile); the app writes or delivers them."""
        json_text, csv_text = io.StringIO(), io.StringIO()
        with lock:
            count = training.records.count
            export.write_training_json(training, json_text, preset=preset)
            export.write_training_csv(training, csv_text, hi=count)
        self.post_message(Exported({f"{base}.json": json_text.getvalue() + "\n", f"{base}.csv": csv_text.getvalue()}, count))

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        self.app.hand_over(message.files, f"exported {message.count} updates to", "export")

    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        self.busy = None
        self._dirty = True
        self.app.say(f"{message.what}: {message.error}", severity="error")

    def action_open(self) -> None:
        """Update u's backward pass (u: the cursor's, else the latest) in the per-step view."""
        if not self._have_training():
            return
        self._stop()
        u = self.count if self.cursor is None else self.cursor
        if u == 0:
            self.app.say("no update yet: n takes one")
            return
        self.cursor = u
        self.busy = f"opening update {u}"
        self._dirty = True
        self._open_worker(self.generation, self.training, self.lock, u)

    @work(thread=True, exclusive=True, group="open")
    def _open_worker(self, generation: int, training: Training, lock: threading.Lock, u: int) -> None:
        worker = get_current_worker()
        one_thread_here()
        told = [0.0]

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:
                raise OpenCancelled
            now = time.monotonic()
            if now - told[0] >= 0.1:
                told[0] = now
                self.post_message(Opening(generation, f"opening update {u}: replaying {done}/{total} updates from a checkpoint"))

        try:
            with lock:  # between two updates: the parameters are not being written
                run = update_run(training, u, progress)
            run.live()  # the spectrum, computed here rather than on the first frame
        except OpenCancelled:
            return
        except Exception as exc:
            self.post_message(WorkFailed(f"cannot open update {u}", exc))
            return
        if not worker.is_cancelled:
            self.post_message(UpdateOpened(generation, u, run))

    @on(Opening)
    def _opening(self, message: Opening) -> None:
        if message.generation == self.generation and self.busy is not None:
            self.busy = message.text
            self._dirty = True

    @on(UpdateOpened)
    def _update_opened(self, message: UpdateOpened) -> None:
        self.busy = None
        self._dirty = True
        if message.generation == self.generation:
            self.app.show_update(message.run, self.preset, message.u)

    def action_steps(self) -> None:
        self.app.action_steps_view()

    def action_help(self) -> None:
        from ..screens import TrainingHelpScreen

        help_screen = TrainingHelpScreen(self.preset, None, self.training.config if self.training else self.config)
        help_screen.defaults = self.default_settings
        self.app.push_screen(help_screen)

    # -- the palette ----------------------------------------------------------------------

    def commands(self):
        yield SystemCommand("Train / pause", "Play or pause the training (space)", self.action_toggle_play)
        yield SystemCommand("One update", "Take one update, or move the cursor on (n)", self.action_step)
        yield SystemCommand("Cursor back", "Move the cursor to the previous update (b)", self.action_back)
        yield SystemCommand("Previous checkpoint", "The cursor to the update before whose parameters were kept ([)", lambda: self.action_checkpoint(-1))
        yield SystemCommand("Next checkpoint", "The cursor to the next update whose parameters were kept (])", lambda: self.action_checkpoint(1))
        yield SystemCommand("Open update", "The backward pass of the update under the cursor, in the per-step view (enter)", self.action_open)
        yield SystemCommand("Eigenvalues", "W_hh's eigenvalues against the unit circle, update by update, live or at the cursor (v)", lambda: self.app.action_open_view("spectrum"))
        yield SystemCommand("Per-step view", "Back to the per-step view (t)", self.action_steps)
        yield SystemCommand("Train to end", "Train to the end at full speed (e)", self.action_to_end)
        yield SystemCommand("Reset training", "Start the training over: same seed, data and weights (r)", self.action_reset)
        for mode in CLIP_MODES:
            yield SystemCommand(f"Training clip: {mode}", f"Train again with clip mode {mode} (c cycles)", lambda m=mode: self.set_clip(m))
        yield SystemCommand("Suggested threshold", "Norm clipping at the threshold a warm-up suggests (u)", self.action_suggested)
        yield SystemCommand("Training ghost", "Pin this training's curves to compare with the next (g)", self.action_ghost)
        yield SystemCommand("Clear training ghosts", "Remove the pinned curves (G)", self.action_clear_ghosts)
        yield SystemCommand("Export training", f"Write the updates so far as JSON and CSV to {self.app.export_place} (x)", self.action_export)
        yield SystemCommand("Faster", "More updates per second (+)", self.action_faster)
        yield SystemCommand("Slower", "Fewer updates per second (-)", self.action_slower)
        yield SystemCommand("Training help", "What the charts, the columns and the keys mean (?)", self.action_help)
