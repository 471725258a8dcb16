"""The dashboard under Pilot: every binding and control does what it says.

Assertions are on the engine's state and on what the widgets show; the
engine's numbers themselves are tested in tests/engine. The app builds each
run in a worker thread, so a test first waits until it is built (`built`).
"""

from __future__ import annotations

import json
import threading

from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, Static

from engine.presets import BUILTIN, Preset
from tui.app import MAX_GHOSTS, make_app
from tui.presenter import SPEEDS

pytestmark = pytest.mark.asyncio


def log_lines(app) -> list[str]:
    return app.query_one("#log").lines()


def header(app) -> str:
    return str(app.query_one("#header", Static).render())


def draw(app) -> None:
    app._dirty = True
    app._redraw()


async def settle(pilot, until=lambda: False, rounds: int = 300):
    for _ in range(rounds):
        await pilot.pause(0.02)
        if until():
            return


async def built(pilot):
    """Wait until the run the app asked for last is built (or refused)."""
    app = pilot.app
    await settle(pilot, lambda: app.engine_run is not None and app.building is None)
    await pilot.pause()
    assert app.engine_run is not None and app.building is None, "the run was not built"


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


# -- stepping, playing, stepping back ---------------------------------------------------


async def test_n_and_right_step_once_each():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("n", "right")
        await pilot.pause()
        assert app.engine_run.k == 2 and app.shown == 2
        draw(app)
        lines = log_lines(app)
        assert [line.split()[0] for line in lines] == ["1", "2"]
        assert "k 2/20" in header(app)


async def test_b_steps_back_through_what_was_computed_without_recomputing():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("n", "n", "n", "n", "b", "left")
        assert app.shown == 2 and app.engine_run.k == 4
        draw(app)
        assert [line.split()[0] for line in log_lines(app)] == ["1", "2"]
        assert "k 2/20 (computed 4)" in header(app)
        norm_2 = app.engine_run.records[2].grad_norm
        summary = str(app.query_one("#summary", Static).render())
        from tui.format import num

        assert f"|dL/dh| {num(norm_2)}" in summary  # the summary follows the record on screen
        await pilot.press("n")  # forward through the computed records: the engine does not move
        assert app.shown == 3 and app.engine_run.k == 4
        await pilot.press("n", "n")
        assert app.shown == 5 and app.engine_run.k == 5


async def test_space_plays_and_pauses():
    app = make_app("seed-explode", speed=50)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("space")
        await settle(pilot, lambda: app.shown >= 3)
        await pilot.press("space")
        k = app.shown
        assert 3 <= k <= 20
        await pilot.pause(0.3)
        assert app.shown == k  # paused: no more steps


async def test_e_runs_to_the_end_and_r_resets():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("e")
        await settle(pilot, lambda: app.engine_run.done and app.shown == 60)
        assert app.engine_run.done and app.engine_run.k == 60 and app.shown == 60
        await pilot.press("r")
        await pilot.pause()
        assert app.engine_run.k == 0 and not app.engine_run.done and app.shown == 0
        draw(app)
        assert log_lines(app) == []


async def test_e_restores_the_speed_when_the_run_is_complete():
    app = make_app("seed-explode", speed=10)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("e")
        await settle(pilot, lambda: app.engine_run.done)
        await pilot.pause()
        assert SPEEDS[app.speed_index] == 10


async def test_plus_and_minus_change_the_speed():
    app = make_app("seed-explode", speed=10)
    async with app.run_test(size=(120, 40)) as pilot:
        start = app.speed_index
        await pilot.press("plus")
        assert SPEEDS[app.speed_index] > SPEEDS[start]
        await pilot.press("minus", "minus")
        assert SPEEDS[app.speed_index] < SPEEDS[start]


async def test_play_pauses_at_the_first_event_of_the_chosen_kind():
    app = make_app("step-clip", speed=0, pause_at="CLIP")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("space")
        await settle(pilot, lambda: not app.playing)
        first_clip = min(r.k for r in _all_records(app) if r.clip is not None)
        assert app.shown == first_clip and not app.playing
        assert any(f"paused at k = {first_clip}: CLIP" in m for m in messages(app))
        await pilot.press("space")  # play on: it does not stop at the next one
        await settle(pilot, lambda: not app.playing)
        assert app.shown == app.engine_run.T


async def test_a_cycles_the_kind_play_pauses_at():
    app = make_app("tanh-saturation")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        kinds = []
        for _ in range(5):
            await pilot.press("a")
            kinds.append(app.pause_at)
        assert kinds == ["CLIP", "VANISHED", "EXPLODED", "OVERFLOW", None]
        await pilot.press("a", "a")  # VANISHED
        await pilot.press("e")
        await settle(pilot, lambda: not app.playing)
        statuses = [r.status for r in _all_records(app)]
        assert app.shown == statuses.index("vanishing") + 1
        assert "pause at VANISHED" in (draw(app) or header(app))


def _all_records(app):
    """Every record of a copy of the app's run, run to the end (the app's own run stays where it is)."""
    from engine import Run

    run = Run(app.engine_run.config)
    run.run()
    return list(run.records)


# -- building runs in a worker ----------------------------------------------------------


async def test_a_large_run_is_built_in_a_worker_while_the_screen_and_keys_stay_live(monkeypatch):
    import tui.app
    from engine import Run

    ended = []
    finished, quit_done = threading.Event(), threading.Event()

    class Watched(Run):
        """The real Run, whose forward pass cannot finish before the app has quit."""

        def __init__(self, *args, progress, **kwargs):
            def held(t, T):
                quit_done.wait(timeout=60)
                progress(t, T)

            try:
                super().__init__(*args, progress=held, **kwargs)
                ended.append("built")
            except BaseException as exc:
                ended.append(type(exc).__name__)
                raise
            finally:
                finished.set()

    monkeypatch.setattr(tui.app, "Run", Watched)
    app = make_app("lstm-cec")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.engine_run is None and app.building is not None
        draw(app)
        assert "building the run" in header(app)
        await pilot.press("n")  # handled, not echoed: it says why nothing moves
        assert any("still being built" in m for m in messages(app))
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.press("q")
    quit_done.set()
    # Quitting cancelled the build: the forward pass stopped, nothing keeps the process alive.
    assert finished.wait(timeout=60)
    assert ended == ["BuildCancelled"]


async def test_a_setting_the_engine_cannot_take_is_refused_inline_and_the_run_stays():
    app = make_app("orthogonal")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("n")
        radius = app.query_one("#f-spectral_radius", Input)
        radius.value = "1"
        await radius.action_submit()
        await built(pilot)
        before = app.engine_run
        scale = app.query_one("#f-scale", Input)
        scale.value = "0"
        await scale.action_submit()
        await built(pilot)
        assert app.is_running and app.engine_run is before
        assert app.config.scale == before.config.scale
        error = str(app.query_one("#form-error", Static).render())
        assert "not applied" in error and "spectral radius" in error
        assert scale.has_class("invalid")


async def test_changing_the_size_of_a_loaded_weights_file_is_refused_inline(tmp_path):
    from engine import Run

    config = BUILTIN["clip-rescue"].config
    run = Run(config)
    path = tmp_path / "w.npz"
    np.savez(path, **run.params)
    app = make_app("clip-rescue", config.with_overrides(weights=str(path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        before = app.engine_run
        field = app.query_one("#f-hidden", Input)
        field.value = "8"
        await field.action_submit()
        await built(pilot)
        assert app.is_running and app.engine_run is before
        assert "not applied" in str(app.query_one("#form-error", Static).render())


async def test_a_weights_file_s_run_says_which_keys_the_lab_steps():
    # A PyTorch state_dict with a module prefix and two layers (tests/fixtures/weights):
    # the notification names the detected prefix and the layer, as the CLI does.
    lstm2 = Path(__file__).resolve().parents[1] / "fixtures" / "weights" / "lstm2.safetensors"
    config = BUILTIN["lstm-cec"].config.with_overrides(sizes={"hidden": 4, "input_size": 4, "output_size": 2}, weights=str(lstm2), layer=1, steps=20)
    app = make_app("lstm-cec", config)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        said = " ".join(messages(app))
        assert "prefix 'encoder.rnn.' (detected)" in said and "layer 1 of 2" in said


# -- clip modes, presets, the form ------------------------------------------------------


async def test_c_cycles_the_clip_mode_of_the_engine():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        assert app.engine_run.config.clip == "norm"
        await pilot.press("c")
        await built(pilot)
        assert app.engine_run.config.clip == "value"
        assert app.engine_run.config.clip_threshold == 1.0  # value's own default, not norm's 5
        for _ in range(3):
            await pilot.press("c")
            await built(pilot)
        assert app.engine_run.config.clip == "none"


async def test_clip_tags_appear_on_the_steps_the_engine_clipped():
    app = make_app("step-clip")
    async with app.run_test(size=(120, 60)) as pilot:
        await built(pilot)
        app.query_one("#log").styles.height = 70
        await pilot.pause()
        app._forward(60)
        draw(app)
        await pilot.pause()
        lines = log_lines(app)
        assert len(lines) == 60
        tagged = [int(line.split()[0]) for line in lines if "CLIP" in line]
        clipped = [r.k for r in app.engine_run.records if r.clip is not None]
        assert tagged == clipped and len(clipped) > 20


async def test_clip_rescue_marks_the_crossing_and_the_final_rescale():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        app._forward(60)
        draw(app)
        lines = {int(line.split()[0]): line for line in log_lines(app)}
        crossed = app.engine_run.summary()["clip_crossed_k"]
        assert "CLIP" in lines[60]
        app.shown = crossed  # step back to the crossing
        draw(app)
        assert "norm crossed" in log_lines(app)[-1]


async def test_p_picks_another_preset():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("p")
        assert app.screen.__class__.__name__ == "PresetPicker"
        await pilot.press("down", "enter")  # the second preset
        await built(pilot)
        assert app.preset.name == list(BUILTIN)[1]
        assert app.engine_run.config == BUILTIN[list(BUILTIN)[1]].config


async def test_presets_from_a_preset_file_are_in_the_picker_and_the_palette():
    mine = Preset("my-lstm", "an LSTM without forget bias", "watch f", BUILTIN["lstm-cec"].config.with_overrides(forget_bias=0.0), source="mine.toml")
    presets = {**BUILTIN, mine.name: mine}
    app = make_app("seed-explode", presets=presets)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Preset: my-lstm" in titles
        await pilot.press("p")
        picker = app.screen
        ids = [picker.query_one("OptionList").get_option_at_index(i).id for i in range(len(presets))]
        assert "my-lstm" in ids
        await pilot.press("escape")
        next(c for c in app.get_system_commands(app.screen) if c.title == "Preset: my-lstm").callback()
        await built(pilot)
        assert app.preset.name == "my-lstm" and app.engine_run.config.forget_bias == 0.0


async def test_the_palette_offers_every_action():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        wanted = {"Play / pause", "Step", "Step back", "Run to end", "Reset", "Ghost", "Clear ghosts", "Export", "Screenshot", "Theme", "Help"}
        wanted |= {f"Clip: {m}" for m in ("none", "norm", "value", "step", "agc")}
        wanted |= {f"Pause at: {k}" for k in ("CLIP", "VANISHED", "EXPLODED", "OVERFLOW", "nothing")}
        assert wanted <= titles
        assert sum(t == "Screenshot" for t in titles) == 1  # ours, which writes where it can
        next(c for c in app.get_system_commands(app.screen) if c.title == "Step").callback()
        assert app.shown == 1


async def test_a_bad_parameter_is_refused_and_the_run_is_unchanged():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("n")
        before = app.engine_run
        field = app.query_one("#f-hidden", Input)
        field.value = "0"
        await field.action_submit()
        await pilot.pause()
        assert app.engine_run is before and app.engine_run.k == 1
        assert "hidden must be an integer from 1 to 4096" in str(app.query_one("#form-error", Static).render())
        assert field.has_class("invalid")


async def test_a_good_parameter_rebuilds_the_run():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        field = app.query_one("#f-steps", Input)
        field.value = "25"
        await field.action_submit()
        await built(pilot)
        assert app.engine_run.T == 25 and app.engine_run.k == 0


async def test_escape_leaves_a_parameter_field_and_the_keys_work_again():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        app.query_one("#f-hidden", Input).focus()
        await pilot.press("n")  # typed into the field, not a step
        assert app.engine_run.k == 0
        await pilot.press("escape", "n")
        assert app.engine_run.k == 1


async def test_enter_in_a_field_applies_it_and_gives_the_keys_back():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        field = app.query_one("#f-steps", Input)
        field.focus()
        field.value = ""
        await pilot.press("2", "5", "enter")
        await built(pilot)
        assert app.engine_run.T == 25
        await pilot.press("n")
        assert app.engine_run.k == 1


async def test_a_refusal_is_cleared_once_a_valid_value_is_entered():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        field = app.query_one("#f-hidden", Input)
        field.focus()
        field.value = "0"
        await pilot.press("enter")
        assert field.has_class("invalid")
        field.value = "32"  # the value the run already has
        await pilot.press("enter")
        await pilot.pause()
        assert not field.has_class("invalid")
        assert str(app.query_one("#form-error", Static).render()) == ""


async def test_settings_that_do_not_apply_are_greyed_out_with_the_reason():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        assert app.query_one("#f-forget_bias").disabled  # an rnn has no forget gate
        assert not app.query_one("#f-clip_threshold").disabled
        for _ in range(4):  # norm -> value -> step -> agc -> none
            await pilot.press("c")
            await built(pilot)
        assert app.engine_run.config.clip == "none"
        assert app.query_one("#f-clip_threshold").disabled
        assert "needs a clip mode" in str(app.query_one("#f-clip_threshold").tooltip)


# -- ghosts, export, screenshot, notifications ----------------------------------------


async def test_ghosts_are_named_by_what_differs_and_at_most_three_are_kept():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("n", "n", "n", "g")
        assert len(app.ghosts) == 1 and app.ghosts[0].values.size == 3
        await pilot.press("c")  # clip none -> norm: the ghost is the unclipped run
        await built(pilot)
        label = app.ghosts[0].label(app.config, app.preset.name)
        assert label.startswith("ghost: ") and "clip none" in label
        for _ in range(MAX_GHOSTS + 1):
            await pilot.press("n", "g")
        assert len(app.ghosts) == MAX_GHOSTS


async def test_a_preset_switch_clears_the_ghosts_and_says_so():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("n", "g")
        app.open_preset(BUILTIN["lstm-cec"])
        await built(pilot)
        assert app.ghosts == []
        assert any("ghosts cleared" in m for m in messages(app))


async def test_shift_g_clears_the_ghosts():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("n", "g")
        assert app.ghosts
        await pilot.press("G")
        assert app.ghosts == []


async def test_x_exports_json_and_csv_and_names_the_folder(tmp_path):
    app = make_app("seed-explode", export_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("n", "n", "x")
        await pilot.pause()
        assert any(str(tmp_path.resolve()) in m for m in messages(app))
    files = sorted(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".csv", ".json"]
    doc = json.loads(files[1].read_text())
    assert doc["preset"] == "seed-explode" and len(doc["steps"]) == 2
    assert files[0].read_text().count("\n") == 3  # header + 2 rows


async def test_s_saves_an_svg_screenshot_in_the_export_folder(tmp_path):
    app = make_app("seed-explode", export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        await pilot.press("n", "s")
        await pilot.pause()
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".svg"
    assert "<svg" in files[0].read_text()


async def test_notifications_come_one_at_a_time_and_never_cover_the_verdict():
    app = make_app("seed-explode")
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        for _ in range(3):
            await pilot.press("c")
            await built(pilot)
        await pilot.pause()
        assert len(app._notifications) == 1
        summary = app.query_one("#summary").region
        for toast in app.screen.query("Toast"):
            assert not toast.region.overlaps(summary)


async def test_help_opens_and_closes():
    app = make_app("irnn")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        assert app.screen.__class__.__name__ != "HelpScreen"


async def test_q_quits_even_mid_play():
    app = make_app("lstm-cec", speed=1)
    exits = []
    real_exit = app.exit
    app.exit = lambda *args, **kwargs: (exits.append(True), real_exit(*args, **kwargs))
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        await pilot.press("space")
        assert app.playing
        await pilot.press("q")
        await pilot.pause()
        assert exits == [True]


# -- fitting the screen, faults -----------------------------------------------------


async def test_it_fits_80_by_24_with_all_panes():
    app = make_app("lstm-cec")
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        await pilot.press("n")
        await pilot.pause(0.2)
        for pane in ("#params", "#chart", "#log", "#summary"):
            widget = app.query_one(pane)
            assert widget.region.width > 0 and widget.region.height > 0, pane


@pytest.mark.parametrize("preset", ["clip-rescue", "truncated", "step-clip"])
async def test_at_80_columns_the_header_keeps_the_step_counter(preset):
    app = make_app(preset)
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        await pilot.press("n")
        draw(app)
        await pilot.pause()
        visible = str(app.query_one("#header").render())[:80]
        assert f"k 1/{app.engine_run.T}" in visible


async def test_at_60_by_16_the_footer_keeps_help_and_quit():
    app = make_app("seed-explode")
    async with app.run_test(size=(60, 16)) as pilot:
        await built(pilot)
        footer = app.query_one("Footer")
        shown = [key for key in footer.query("FooterKey") if key.region.width > 0 and key.region.right <= 60]
        keys = {k.key_display or k.key for k in shown}
        assert "?" in keys and "q" in keys


async def test_an_overflowing_run_is_drawn_capped_and_annotated():
    app = make_app("seed-explode", BUILTIN["seed-explode"].config.with_overrides(scale=10.0, steps=400))
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        app._forward(400)
        draw(app)
        await pilot.pause()
        legend = "\n".join(app.query_one("#chart").legend)
        overflowed = sum(r.status == "overflow" for r in app.engine_run.records)
        assert overflowed > 100
        assert f"{overflowed} overflow: on the ceiling" in legend


async def test_an_engine_error_is_a_notification_and_the_app_stays_up():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)

        def broken(steps):
            raise FloatingPointError("simulated failure")

        app.engine_run.advance = broken
        await pilot.press("n")
        await pilot.pause()
        assert any("engine error: simulated failure" in m for m in messages(app))
        assert app.is_running and app.screen is not None
        await pilot.press("question_mark")  # still responsive
        assert app.screen.__class__.__name__ == "HelpScreen"


@pytest.mark.parametrize("width", [80, 120])
async def test_the_verdict_shows_whole_sentences_at_any_width(width):
    # sigmoid-quarter: "vanishing guaranteed: ... < 1." then "Sufficient for every
    # input (...)": at 80 columns only the first fits, and it is never cut mid-sentence.
    app = make_app("sigmoid-quarter")
    async with app.run_test(size=(width, 24)) as pilot:
        await built(pilot)
        await pilot.press("n")
        await pilot.pause()
        verdict_line = str(app.query_one("#summary", Static).render()).splitlines()[1].strip()
        room = app.query_one("#summary").size.width - 2
        assert verdict_line.startswith("vanishing guaranteed: sigma_max·gamma = 2.69·1/4 = 0.671 < 1.")
        assert verdict_line.endswith(".") and len(verdict_line) <= room
        assert ("Sufficient for every input" in verdict_line) == (width >= 120)


async def test_the_verdict_never_ends_on_a_colon_whose_sequel_did_not_fit():
    from tui.panes.summary import fit_sentences

    said = ["explodes: linear chain, spectral radius 1.26 > 1 decides.", "sigma_max·gamma = 2.66·1 = 2.66 > 1 guarantees nothing:", "< 1 is sufficient for vanishing, not necessary."]
    assert fit_sentences(said, 118) == said[0]
    assert fit_sentences(said, 200) == " ".join(said)
