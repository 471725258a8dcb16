"""The training view under Pilot: every key and control does what it says.

Trainings here are small and fast (a few milliseconds an update), defined in
this file from a Config and TrainingSettings so that the tests do not move
when the training presets are recalibrated. Expected values come from the
engine run separately (another Training of the same settings), or from
SPEC 8's definitions (the threshold heuristic, the baselines); the
assertions are on what the screen shows and on what the engine recorded.
The app builds the training in a worker thread, so a test first waits for
it (`trained`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
from dataclasses import replace

import numpy as np
import pytest

from engine import Config
from engine.clipping import global_norm
from engine.presets import BUILTIN, Preset
from engine.training import Training, TrainingSettings
from tui.app import make_app
from tui.training import TrainingScreen
from tui.training import screen as screen_module

pytestmark = pytest.mark.asyncio

RELU = Config(activation="relu", init="orthogonal", hidden=16, batch=16, steps=20, seed=3)
SGD = TrainingSettings(task="adding", optimizer="sgd", lr=0.3, momentum=0.9, updates=120, eval_every=10, checkpoint_every=20, warmup=20)
DIVERGING = TrainingSettings(task="adding", optimizer="sgd", lr=0.4, momentum=0.9, updates=120, eval_every=10, checkpoint_every=20)


def preset(name: str = "tiny-adding", config: Config = RELU) -> Preset:
    return Preset(name, f"{name}: a small training for the tests", "look at the loss", config)


def app_for(settings: TrainingSettings = SGD, config: Config = RELU, name: str = "tiny-adding", **kwargs):
    p = preset(name, config)
    return make_app(name, config, presets={**BUILTIN, name: p}, training=settings, **kwargs)


async def settle(pilot, until, rounds: int = 500):
    for _ in range(rounds):
        await pilot.pause(0.02)
        if until():
            return
    raise AssertionError("the condition never held")


async def trained(pilot) -> TrainingScreen:
    """Wait until the training view's training is built; returns the screen."""
    app = pilot.app
    await settle(pilot, lambda: app.training_screen is not None and app.training_screen.training is not None and app.training_screen.busy is None)
    return app.training_screen


async def stopped(pilot, screen: TrainingScreen) -> None:
    """Wait until no worker of the screen is taking updates."""
    await settle(pilot, lambda: not screen.playing and not any(w.group == "train" and not w.is_finished for w in screen.workers))


async def take(pilot, screen: TrainingScreen, updates: int) -> None:
    """`updates` more updates, one key press each (n), as a user would."""
    for _ in range(updates):
        before = screen.count
        await pilot.press("n")
        await settle(pilot, lambda: screen.count == before + 1 and not screen.playing)


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


def summary(screen: TrainingScreen) -> str:
    screen.draw()
    return str(screen.query_one("#train-summary").render())


def header(screen: TrainingScreen) -> str:
    screen.draw()
    return str(screen.query_one("#train-header").render())


def log_lines(screen: TrainingScreen) -> list[str]:
    screen.draw()
    return screen.query_one("#train-log").lines()


def alone(settings: TrainingSettings = SGD, config: Config = RELU, updates: int | None = None) -> Training:
    """The same training, run by the engine alone (no dashboard)."""
    t = Training(config, settings)
    t.advance(settings.updates if updates is None else updates)
    return t


# -- switching views ----------------------------------------------------------------------


async def test_a_training_opens_in_the_training_view_and_t_switches_to_the_per_step_view_and_back():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        assert app.screen is screen
        assert "tiny-adding | u 0/120 | paused" in header(screen)
        # The per-step view has update 1's backward pass: theta_0 on update 1's batch.
        await settle(pilot, lambda: app.engine_run is not None)
        await pilot.press("t")
        await pilot.pause()
        assert app.screen is not screen
        assert app.preset.name == "tiny-adding u1"
        await pilot.press("t")
        await pilot.pause()
        assert app.screen is screen


async def test_t_in_a_per_step_preset_trains_its_model_and_a_chain_is_refused_with_a_reason():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, lambda: app.engine_run is not None and app.building is None)
        await pilot.press("t")
        screen = await trained(pilot)
        assert app.screen is screen and screen.training.config.hidden == BUILTIN["clip-rescue"].config.hidden
        assert screen.training.task.name == "adding"
        await pilot.press("c")  # trained again, still with the defaults
        screen = await trained(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert "no training of its own" in app.screen.text()  # its 'look for' is about the per-step view
    app = make_app("seed-explode")  # mode chain: no readout, nothing to train
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, lambda: app.engine_run is not None and app.building is None)
        await pilot.press("t")
        await settle(pilot, lambda: any("cannot train" in m for m in messages(app)))
        assert app.training_screen is None and not isinstance(app.screen, TrainingScreen)
        assert any("mode bptt" in m for m in messages(app))


# -- playing, pausing, one update, the cursor --------------------------------------------


async def test_space_trains_in_the_background_and_space_pauses():
    app = app_for(replace(SGD, updates=5000))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await trained(pilot)
        await pilot.press("space")
        assert screen.playing
        await settle(pilot, lambda: screen.count >= 20)
        await pilot.press("space")
        assert not screen.playing
        await stopped(pilot, screen)
        count = screen.count
        await pilot.pause(0.3)
        assert screen.count == count  # paused: no more updates
        assert 20 <= count < 5000
        assert f"u {count}/5000 | paused" in header(screen)


async def test_n_takes_one_update_at_a_time_and_the_log_shows_each_with_its_loss():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await take(pilot, screen, 3)
        assert screen.count == 3
        expected = alone(updates=3)
        lines = log_lines(screen)
        assert [line.split()[0] for line in lines] == ["1", "2", "3"]
        from tui.format import num

        for line, record in zip(lines, expected.records):
            assert line.split()[1] == num(record.loss)  # the same loss as the engine alone


async def test_b_moves_a_cursor_back_and_n_forward_through_the_updates_taken_first():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await take(pilot, screen, 5)
        await pilot.press("b", "left")
        assert screen.cursor == 3 and screen.count == 5
        assert log_lines(screen)[-1].split()[:2] == ["▸", "3"]  # the log ends at the cursor, marked
        assert "u 3/120 (latest 5)" in header(screen)
        assert screen.query_one("#train-loss").cursor_x == 3.0  # the charts draw it
        await pilot.press("n")  # through what was taken: no new update
        assert screen.cursor == 4 and screen.count == 5
        await pilot.press("n", "n")  # then a new one
        await settle(pilot, lambda: screen.count == 6)
        assert screen.cursor is None


async def test_brackets_jump_to_the_updates_whose_parameters_are_kept():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        screen._play(50)
        await stopped(pilot, screen)
        assert screen.count == 50
        kept = sorted(alone(updates=50).checkpoints)
        assert kept == [0, 20, 40]  # the first, then every checkpoint_every
        await pilot.press("left_square_bracket")
        assert screen.cursor == 41  # the update that starts from theta_40
        await pilot.press("left_square_bracket")
        assert screen.cursor == 21
        await pilot.press("right_square_bracket")
        assert screen.cursor == 41
        await pilot.press("right_square_bracket")
        assert screen.cursor == 41 and any("no checkpoint after u = 41" in m for m in messages(app))


async def test_e_trains_to_the_end_and_r_starts_over_with_the_same_numbers():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await pilot.press("e")
        await stopped(pilot, screen)
        assert screen.count == SGD.updates and screen.training.status == "done"
        first = screen.training.records.columns["loss"].copy()
        assert "done" in header(screen)
        await pilot.press("r")
        screen = await trained(pilot)
        assert screen.count == 0
        await pilot.press("e")
        await stopped(pilot, screen)
        assert np.array_equal(screen.training.records.columns["loss"], first)


async def test_plus_and_minus_change_the_speed_and_the_header_says_it():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        assert "paused max" in header(screen)
        await pilot.press("minus", "minus")
        assert "paused 500/s" in header(screen)
        await pilot.press("plus")
        assert "paused 1000/s" in header(screen)


# -- a divergence is a status ---------------------------------------------------------------


async def test_a_divergence_is_a_status_on_screen_never_an_exception():
    expected = alone(DIVERGING)
    d = expected.divergence
    assert d is not None and d.u < DIVERGING.updates  # the settings diverge: what this test is about
    app = app_for(DIVERGING)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await trained(pilot)
        await pilot.press("e")
        await stopped(pilot, screen)
        assert screen.count == d.u
        assert f"DIVERGED at u = {d.u}: the {d.what} is not finite" in summary(screen)
        assert "| diverged |" in header(screen)
        last = log_lines(screen)[-1]
        assert last.split()[0] == str(d.u) and "DIVERGED" in last
        assert any(f"diverged at u = {d.u}" in m for m in messages(app))
        assert app.is_running
        await pilot.press("space")  # nothing more to train: it says so
        assert any("the training is over" in m for m in messages(app))


# -- an update's backward pass ----------------------------------------------------------------


async def open_update(pilot, screen: TrainingScreen) -> None:
    app = pilot.app
    await pilot.press("enter")
    await settle(pilot, lambda: app.screen is not screen and app.engine_run is not None and app.building is None and app.preset.name.endswith(f"u{screen.cursor}"))


async def test_enter_opens_the_latest_update_s_backward_pass_with_the_gradient_the_update_used():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await take(pilot, screen, 7)
        used = {k: v.copy() for k, v in screen.training.last.raw.items()}  # what update 7 computed
        await open_update(pilot, screen)
        assert app.preset.name == "tiny-adding u7"
        run = app.engine_run
        assert run.k == 0  # stepped from the start, one timestep at a time
        app._forward(run.T)
        assert run.done
        for name, grad in used.items():
            assert np.allclose(run.grads_raw[name], grad, rtol=1e-12, atol=1e-14), name


@pytest.mark.parametrize("u", [1, 13, 20, 21, 33])
async def test_enter_at_a_cursor_opens_that_update_with_the_norm_it_recorded(u):
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        screen._play(40)
        await stopped(pilot, screen)
        screen.cursor = u
        await open_update(pilot, screen)
        app._forward(app.engine_run.T)
        recorded = screen.training.records[u].grad_norm_raw
        assert math.isclose(global_norm(app.engine_run.grads_raw), recorded, rel_tol=1e-12)
        # ... and an independent training's update u used the same gradient.
        other = Training(RELU, SGD)
        other.advance(u)
        assert np.allclose(app.engine_run.grads_raw["weight_hh_l0"], other.last.raw["weight_hh_l0"], rtol=1e-12, atol=1e-14)


async def test_the_diverged_update_opens_too_and_overflows_on_screen():
    app = app_for(DIVERGING)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await pilot.press("e")
        await stopped(pilot, screen)
        await open_update(pilot, screen)
        assert app.preset.name == f"tiny-adding u{screen.training.divergence.u}"
        app._forward(app.engine_run.T)
        assert not math.isfinite(global_norm(app.engine_run.grads_raw))


async def test_t_and_escape_come_back_to_the_training_where_it_was():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await take(pilot, screen, 6)
        await pilot.press("b", "b")
        await open_update(pilot, screen)
        await pilot.press("n", "n")  # step the backward pass
        assert app.shown == 2
        await pilot.press("t")
        assert app.screen is screen and screen.cursor == 4 and screen.count == 6
        await open_update(pilot, screen)
        await pilot.press("escape")
        assert app.screen is screen and screen.cursor == 4


async def test_a_setting_changed_on_an_opened_update_keeps_its_parameters_and_batch():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await take(pilot, screen, 4)
        await open_update(pilot, screen)
        before = app.engine_run
        await pilot.press("c")  # clip none -> norm: the same update's pass, clipped
        await settle(pilot, lambda: app.engine_run is not before and app.building is None)
        run = app.engine_run
        assert run.config.clip == "norm"
        for name, p in before.params.items():
            assert np.array_equal(run.params[name], p), name
        assert np.array_equal(run.inputs, before.inputs)


# -- compare, clip, suggestion ----------------------------------------------------------------


async def test_a_ghost_is_labelled_by_what_differs_clip_and_preset():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await pilot.press("e")
        await stopped(pilot, screen)
        await pilot.press("g")
        assert len(screen.ghosts) == 1 and screen.ghosts[0].count == SGD.updates
        await pilot.press("c")  # clip none -> norm: the same seed and data, clipped
        screen = await trained(pilot)
        assert screen.training.config.clip == "norm" and screen.ghosts
        await pilot.press("e")
        await stopped(pilot, screen)
        screen.draw()
        for chart in ("#train-loss", "#train-norm"):
            legend = " ".join(screen.query_one(chart).legend)
            assert "ghost: clip none" in legend and "clip_threshold" not in legend, legend
        # The same training, another preset name (an LSTM against an RNN, say): named by the preset.
        lstm = Preset("tiny-lstm", "an LSTM", "look", RELU.with_overrides(cell="lstm"))
        app.presets["tiny-lstm"] = lstm
        app.open_training(lstm, lstm.config, SGD)
        screen = await trained(pilot)
        assert screen.training.config.cell == "lstm"
        await pilot.press("n")
        await settle(pilot, lambda: screen.count == 1)
        screen.draw()
        legend = " ".join(screen.query_one("#train-loss").legend)
        assert "ghost: tiny-adding" in legend
        await pilot.press("G")
        assert screen.ghosts == []


async def test_c_cycles_the_clip_mode_and_trains_again_on_the_same_data():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        modes = []
        for _ in range(5):
            await pilot.press("c")
            screen = await trained(pilot)
            modes.append(screen.training.config.clip)
        assert modes == ["norm", "value", "step", "agc", "none"]
        assert screen.count == 0


async def test_u_clips_at_the_suggested_threshold_half_to_ten_times_the_mean_warm_up_norm():
    # SPEC 8: the mean gradient norm over the unclipped warm-up updates.
    warm = Training(RELU, SGD)
    warm.advance(SGD.warmup)
    norms = warm.records.columns["grad_norm_raw"][: SGD.warmup]
    mean = float(np.mean(norms))
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await pilot.press("u")
        await settle(pilot, lambda: screen.training is not None and screen.training.config.clip == "norm" and screen.busy is None)
        assert math.isclose(screen.training.config.clip_threshold, mean, rel_tol=1e-12)
        assert any(f"range {0.5 * mean:.3g}-{10 * mean:.3g}" in m for m in messages(app))  # half to ten times
        screen._play(SGD.warmup)
        await stopped(pilot, screen)
        assert "suggested clip" in summary(screen)


# -- export ---------------------------------------------------------------------------------


async def test_x_exports_a_consistent_snapshot_even_mid_training(tmp_path):
    long = replace(SGD, updates=20000)
    app = app_for(long, export_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await pilot.press("space")
        await settle(pilot, lambda: screen.count >= 30)
        await pilot.press("x")  # while training
        await settle(pilot, lambda: any("exported" in m for m in messages(app)))
        assert any("exported" in m and str(tmp_path.resolve()) in m for m in messages(app))  # the folder, in full
        assert screen.playing
        await pilot.press("space")
        await stopped(pilot, screen)
        records = screen.training.records
        files = sorted(tmp_path.iterdir())
        assert [f.suffix for f in files] == [".csv", ".json"]
        doc = json.loads(files[1].read_text())
        assert doc["schema"] == "bptt-lab.train/1" and doc["preset"] == "tiny-adding"
        updates = doc["updates"]
        n = len(updates)
        assert 30 <= n <= screen.count
        assert doc["summary"]["updates_done"] == n  # the summary is of the same update as the rows
        assert [u["u"] for u in updates] == list(range(1, n + 1))
        for u in (1, n // 2, n):
            assert updates[u - 1]["loss"] == records[u].loss
            assert updates[u - 1]["grad_norm_raw"] == records[u].grad_norm_raw
        rows = list(csv.DictReader(io.StringIO(files[0].read_text())))
        assert len(rows) == n and float(rows[-1]["loss"]) == records[n].loss


# -- help, palette, the metric of a classification task -----------------------------------------


async def test_question_mark_explains_the_training_view_s_charts_columns_and_keys():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await take(pilot, screen, 2)
        names = screen.query_one("#train-log").header().split()
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert help_screen.__class__.__name__ == "TrainingHelpScreen"
        terms = " ".join(term for _, entries in help_screen.sections() for term, _ in entries)
        for name in names:
            assert name in terms, name
        shown = {"question_mark": "?", "plus": "+", "equals_sign": "=", "minus": "-", "left_square_bracket": "[", "right_square_bracket": "]"}
        for binding in TrainingScreen.BINDINGS:
            for key in binding.key.split(","):
                assert shown.get(key, key) in terms, key
        words = help_screen.text()
        for term in ("baseline", "1/γ", "reach", "long_share", "DIVERGED", "CLIP", "ghost", "checkpoint"):
            assert term in words, term
        await pilot.press("escape")
        assert app.screen is screen


async def test_the_palette_offers_every_action_of_the_training_view():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        titles = {c.title for c in app.get_system_commands(screen)}
        wanted = {"Train / pause", "One update", "Cursor back", "Previous checkpoint", "Next checkpoint", "Open update", "Per-step view",
                  "Train to end", "Reset training", "Suggested threshold", "Training ghost", "Clear training ghosts", "Export training",
                  "Faster", "Slower", "Training help", "Screenshot"}
        wanted |= {f"Training clip: {m}" for m in ("none", "norm", "value", "step", "agc")}
        assert wanted <= titles
        next(c for c in app.get_system_commands(screen) if c.title == "One update").callback()
        await settle(pilot, lambda: screen.count == 1)


async def test_temporal_order_shows_accuracy_against_chance():
    order = TrainingSettings(task="temporal-order", optimizer="adam", lr=0.01, updates=20, eval_every=5)
    config = Config(hidden=8, batch=8, steps=20, seed=3)
    app = app_for(order, config, name="tiny-order")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        screen._play(5)
        await stopped(pilot, screen)
        screen.draw()
        legend = " ".join(screen.query_one("#train-loss").legend)
        assert "chance 25%" in legend and "eval accuracy" in legend
        assert f"baseline {math.log(4):.3g}" in legend  # ln 4: chance's cross-entropy
        assert "eval acc" in screen.query_one("#train-log").header()
        accuracy = alone(order, config, updates=5).records[5].metric
        assert f"accuracy {100 * accuracy:.1f}% at u = 5 (chance 25%)" in summary(screen)


# -- quitting --------------------------------------------------------------------------------


async def test_q_mid_training_quits_at_once_and_leaves_no_thread_taking_updates(monkeypatch):
    ended = threading.Event()
    taken_after_quit = []

    class Watched(screen_module.PlayStopped):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            ended.set()  # the play worker's last act: its loop is over

    monkeypatch.setattr(screen_module, "PlayStopped", Watched)
    long = replace(SGD, updates=200000, eval_every=100)
    app = app_for(long)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await trained(pilot)
        await pilot.press("space")
        await settle(pilot, lambda: screen.count >= 20)
        training = screen.training
        await pilot.press("q")
        at_quit = training.records.count
    assert ended.wait(timeout=30)  # cancelled between two updates: the worker's loop ended
    taken_after_quit.append(training.records.count - at_quit)
    assert taken_after_quit[0] <= 1  # at most the update it was in
    assert training.records.count < long.updates


# -- presets, fitting the screen ----------------------------------------------------------


async def test_p_picks_a_training_preset_here_and_another_preset_in_the_per_step_view():
    other = Preset("tiny-clip", "clipped", "look", RELU.with_overrides(clip="norm", clip_threshold=1.0), training=SGD)
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        await settle(pilot, lambda: app.engine_run is not None and app.building is None)
        app.open_preset(other)
        screen = await trained(pilot)
        assert app.screen is screen and screen.preset is other and screen.training.config.clip == "norm"
        await settle(pilot, lambda: app.preset.name == "tiny-clip u1")  # the per-step view follows
        app.open_preset(BUILTIN["lstm-cec"])
        await settle(pilot, lambda: app.engine_run is not None and app.preset.name == "lstm-cec" and app.building is None)
        assert not isinstance(app.screen, TrainingScreen)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_it_fits_with_every_pane_the_counter_and_the_view_s_own_keys(size):
    app = app_for(DIVERGING)
    async with app.run_test(size=size) as pilot:
        screen = await trained(pilot)
        await pilot.press("e")
        await stopped(pilot, screen)
        screen.draw()
        await pilot.pause()
        width = size[0]
        for pane in ("#train-header", "#train-loss", "#train-norm", "#train-spectrum", "#train-log", "#train-summary"):
            region = screen.query_one(pane).region
            assert region.width > 0 and region.height > 0 and region.right <= width, pane
        assert f"u {screen.count}/{DIVERGING.updates}" in header(screen)[:width]
        assert "DIVERGED at u" in summary(screen).splitlines()[0][: width - 2]
        assert len(log_lines(screen)) >= 5
        for chart in ("#train-loss", "#train-norm", "#train-spectrum"):
            canvas = screen.query_one(chart)
            assert len(canvas.ticks) >= 2, chart  # a y axis a student can read
        footer = screen.query_one("Footer")
        keys = {k.key_display or k.key for k in footer.query("FooterKey") if k.region.width > 0 and k.region.right <= width}
        assert {"?", "q", "space", "n", "b", "t"} <= keys and ("⏎" in keys or "enter" in keys), keys


async def test_below_60_by_16_it_says_the_terminal_is_too_small():
    app = app_for()
    async with app.run_test(size=(50, 14)) as pilot:
        screen = await trained(pilot)
        await pilot.pause()
        assert screen.query_one("#train-too-small").region.height > 0
        assert screen.query_one("#train-charts").region.height == 0


async def test_q_mid_training_in_a_real_terminal_exits_and_gives_the_terminal_back():
    """`bptt-lab tui train-explode` in a pseudo-terminal (as tests/tui/test_terminal.py does)."""
    from tests.tui.test_terminal import Terminal, gave_the_terminal_back

    term = Terminal("train-explode")
    term.wait_for(b"train-explode |")
    term.wait_for(b"paused")
    term.send(b" ")
    term.wait_for(b"playing")
    term.send(b"q")
    assert term.finish() == 0
    assert gave_the_terminal_back(term.out)


@pytest.mark.parametrize("name", [name for name, p in BUILTIN.items() if getattr(p, "training", None) is not None])
async def test_every_training_preset_opens_in_the_training_view_and_trains(name):
    app = make_app(name)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await trained(pilot)
        assert app.screen is screen and screen.preset.name == name
        await take(pilot, screen, 2)
        assert [line.split()[0] for line in log_lines(screen)] == ["1", "2"]
        await settle(pilot, lambda: app.engine_run is not None and app.preset.name == f"{name} u1")


async def test_q_during_a_long_replay_to_an_update_stops_the_replay(monkeypatch):
    started, ended, outcome = threading.Event(), threading.Event(), []
    real = screen_module.update_run

    def watched(training, u, progress):
        def slow(done, total):  # a replay long enough to quit in the middle of
            started.set()
            threading.Event().wait(0.01)
            progress(done, total)

        try:
            run = real(training, u, slow)
            outcome.append("finished")
            return run
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise
        finally:
            ended.set()

    monkeypatch.setattr(screen_module, "update_run", watched)
    sparse = replace(SGD, updates=400, checkpoint_every=1000)  # theta_0 and the last: update 300 is 299 updates away
    app = app_for(sparse)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await trained(pilot)
        screen._play(320)
        await stopped(pilot, screen)
        screen.cursor = 300
        await pilot.press("enter")
        await settle(pilot, started.is_set)
        await settle(pilot, lambda: "replaying" in header(screen))  # it says how far it has got
        await pilot.press("q")
    assert ended.wait(timeout=30)
    assert outcome == ["OpenCancelled"]
