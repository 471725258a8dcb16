"""How the training view looks (pytest-textual-snapshot): a training that
diverges, the same one clipped with the unclipped one pinned as a ghost and
the cursor on an update, and an LSTM on the adding task, at 80 x 24 and
120 x 40; the training view's help. These files are the record of what a
student sees.

The trainings are small ones defined here (a relu RNN that explodes under
SGD with momentum, as train-explode; the same clipped, as train-clip), so
that recalibrating the presets does not move them. Updates are taken in
run_before on the main thread, not by the play worker, and nothing is
focused, so every run draws the same frame.
Update with: .venv/bin/python -m pytest tests/tui/test_training_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from engine import Config
from engine.presets import BUILTIN, Preset
from engine.training import TrainingSettings
from tui.app import make_app

SIZES = [(80, 24), (120, 40)]
RELU = Config(activation="relu", init="orthogonal", hidden=16, batch=16, steps=20, seed=3)
EXPLODE = TrainingSettings(task="adding", optimizer="sgd", lr=0.4, momentum=0.9, updates=120, eval_every=10, checkpoint_every=20)
LSTM = Config(cell="lstm", hidden=16, batch=16, steps=30, seed=3, forget_bias=1.0)
ADAM = TrainingSettings(task="adding", optimizer="adam", lr=0.01, updates=150, eval_every=10, checkpoint_every=25)


def make(name: str, config: Config, settings: TrainingSettings, updates: int, ghost_of: Config | None = None, cursor: int | None = None):
    preset = Preset(name, f"{name}: a training for the snapshots", "the loss against its baseline", config)
    app = make_app(name, config, presets={**BUILTIN, name: preset}, training=settings)

    async def before(pilot):
        while app.training_screen is None or app.training_screen.training is None or app.engine_run is None:
            await pilot.pause(0.02)
        screen = app.training_screen
        if ghost_of is not None:  # the other training first, pinned
            await reopened(pilot, ghost_of)
            screen.training.advance(updates)
            screen.action_ghost()
            await reopened(pilot, config)
        screen.training.advance(updates)
        screen.checkpoints = tuple(sorted(screen.training.checkpoints))
        screen.cursor = cursor
        await settled(pilot)  # the per-step view's build, and any note it brings, come first
        app.clear_notifications()
        screen.set_focus(None)
        screen.draw()
        await pilot.pause()

    async def reopened(pilot, trained: Config) -> None:
        """Open a training of `trained` and wait until it is the one on screen:
        busy is set by the worker, so it alone cannot tell the build has begun."""
        screen, old = app.training_screen, app.training_screen.training
        app.open_training(preset, trained, settings)
        while screen.training is old or screen.training is None or screen.busy is not None:
            await pilot.pause(0.02)

    async def settled(pilot) -> None:
        while app.building is not None or app.engine_run is None or app.training_screen.busy is not None:
            await pilot.pause(0.02)
        await pilot.pause()

    return app, before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_training_that_diverges(snap_compare, size):
    app, before = make("explode", RELU, EXPLODE, EXPLODE.updates)
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_same_training_clipped_against_its_ghost_with_a_cursor(snap_compare, size):
    clipped = RELU.with_overrides(clip="norm", clip_threshold=1.0)
    app, before = make("clip", clipped, EXPLODE, EXPLODE.updates, ghost_of=RELU, cursor=60)
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_an_lstm_on_the_adding_task(snap_compare, size):
    app, before = make("lstm", LSTM, ADAM, ADAM.updates)
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_the_training_view_s_help(snap_compare):
    app, before = make("explode", RELU, EXPLODE, 10)
    assert snap_compare(app, terminal_size=(80, 24), run_before=before, press=["question_mark"])
