"""The dashboard under Pilot: every binding does what it says.

Assertions are on the engine's state and on what the widgets show; the
engine's numbers themselves are tested in tests/engine.
"""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input, RichLog, Static

from engine.presets import BUILTIN
from tui.app import SPEEDS, make_app

pytestmark = pytest.mark.asyncio


def log_lines(app) -> list[str]:
    return [strip.text for strip in app.query_one("#log", RichLog).lines]


def step_and_draw(app, steps: int) -> None:
    """Step a few at a time with a frame after each, so every step reaches the log."""
    for _ in range(steps):
        app._advance(1)
        app._redraw()


async def settle(pilot, until=lambda: False, rounds: int = 200):
    for _ in range(rounds):
        await pilot.pause(0.02)
        if until():
            return


async def test_n_and_right_step_once_each():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await pilot.press("right")
        await pilot.pause()
        assert app.engine_run.k == 2
        await settle(pilot, lambda: len(log_lines(app)) == 2)
        lines = log_lines(app)
        assert lines[0].split()[0] == "1" and lines[1].split()[0] == "2"
        assert "k 2/20" in str(app.query_one("#header", Static).render())


async def test_space_plays_and_pauses():
    app = make_app("seed-explode", speed=50)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("space")
        await settle(pilot, lambda: app.engine_run.k >= 3)
        await pilot.press("space")
        k = app.engine_run.k
        assert 3 <= k <= 20
        await pilot.pause(0.3)
        assert app.engine_run.k == k  # paused: no more steps


async def test_e_runs_to_the_end_and_r_resets():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e")
        await settle(pilot, lambda: app.engine_run.done)
        assert app.engine_run.done and app.engine_run.k == 60
        await pilot.press("r")
        await pilot.pause()
        assert app.engine_run.k == 0 and not app.engine_run.done
        assert len(log_lines(app)) == 0


async def test_plus_and_minus_change_the_speed():
    app = make_app("seed-explode", speed=10)
    async with app.run_test(size=(120, 40)) as pilot:
        start = app.speed_index
        await pilot.press("plus")
        assert SPEEDS[app.speed_index] > SPEEDS[start]
        await pilot.press("minus", "minus")
        assert SPEEDS[app.speed_index] < SPEEDS[start]


async def test_c_cycles_the_clip_mode_of_the_engine():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.engine_run.config.clip == "norm"
        await pilot.press("c")
        assert app.engine_run.config.clip == "value"
        assert app.engine_run.config.clip_threshold == 1.0  # value's own default, not norm's 5
        await pilot.press("c", "c", "c")
        assert app.engine_run.config.clip == "none"


async def test_clip_tags_appear_on_the_steps_the_engine_clipped():
    app = make_app("step-clip")
    async with app.run_test(size=(120, 40)) as pilot:
        step_and_draw(app, 60)
        await pilot.pause()
        assert len(log_lines(app)) == 60
        tagged = [int(line.split()[0]) for line in log_lines(app) if "CLIP" in line]
        clipped = [r.k for r in app.engine_run.records if r.clip is not None]
        assert tagged == clipped and len(clipped) > 20


async def test_g_pins_a_ghost():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", "n", "n", "g")
        assert app.ghost is not None and app.ghost.values.size == 3
        assert "ghost" in app.ghost.label


async def test_x_exports_json_and_csv(tmp_path):
    app = make_app("seed-explode", export_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", "n", "x")
        await pilot.pause()
    files = sorted(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".csv", ".json"]
    doc = json.loads(files[1].read_text())
    assert doc["preset"] == "seed-explode" and len(doc["steps"]) == 2
    assert files[0].read_text().count("\n") == 3  # header + 2 rows


async def test_help_opens_and_closes():
    app = make_app("irnn")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        assert app.screen.__class__.__name__ != "HelpScreen"


async def test_p_picks_another_preset():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        assert app.screen.__class__.__name__ == "PresetPicker"
        await pilot.press("down", "enter")  # the second preset
        await pilot.pause()
        assert app.preset.name == list(BUILTIN)[1]
        assert app.engine_run.config.scale == 0.5


async def test_a_bad_parameter_is_refused_and_the_run_is_unchanged():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
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
        field = app.query_one("#f-steps", Input)
        field.value = "25"
        await field.action_submit()
        await pilot.pause()
        assert app.engine_run.T == 25 and app.engine_run.k == 0


async def test_q_quits_even_mid_play():
    app = make_app("seed-explode", speed=1)
    exits = []
    real_exit = app.exit
    app.exit = lambda *args, **kwargs: (exits.append(True), real_exit(*args, **kwargs))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("space")
        assert app.playing
        await pilot.press("q")
        await pilot.pause()
        assert exits == [True]


async def test_it_fits_80_by_24_with_all_three_panes():
    app = make_app("lstm-cec")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await pilot.pause(0.2)
        for pane in ("#params", "#chart", "#log", "#summary"):
            widget = app.query_one(pane)
            assert widget.region.width > 0 and widget.region.height > 0, pane


async def test_an_overflowing_run_is_drawn_capped_and_annotated():
    app = make_app("seed-explode", BUILTIN["seed-explode"].config.with_overrides(scale=10.0, steps=400))
    async with app.run_test(size=(120, 40)) as pilot:
        app.engine_run.run()
        app._dirty = True
        app._redraw()
        await pilot.pause()
        chart = app.query_one("#chart")
        text = chart.plt.build()
        overflowed = sum(r.status == "overflow" for r in app.engine_run.records)
        assert overflowed > 100
        assert f"{overflowed} overflow: on the ceiling" in text


async def test_an_engine_error_is_a_notification_and_the_app_stays_up():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        def broken(steps):
            raise FloatingPointError("simulated failure")

        app.engine_run.advance = broken
        await pilot.press("n")
        await pilot.pause()
        assert any("engine error: simulated failure" in n.message for n in app._notifications)
        assert app.is_running and app.screen is not None
        await pilot.press("question_mark")  # still responsive
        assert app.screen.__class__.__name__ == "HelpScreen"


async def test_clip_rescue_marks_the_crossing_and_the_final_rescale():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        step_and_draw(app, 60)
        await pilot.pause()
        lines = {int(line.split()[0]): line for line in log_lines(app)}
        crossed = app.engine_run.summary()["clip_crossed_k"]
        assert "norm crossed" in lines[crossed] and "CLIP" in lines[60]
        assert sum("CLIP" in line for line in lines.values()) == 1


async def test_escape_leaves_a_parameter_field_and_the_keys_work_again():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one("#f-hidden", Input).focus()
        await pilot.press("n")  # typed into the field, not a step
        assert app.engine_run.k == 0
        await pilot.press("escape", "n")
        assert app.engine_run.k == 1


async def test_e_restores_the_speed_when_the_run_is_complete():
    app = make_app("seed-explode", speed=10)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e")
        await settle(pilot, lambda: app.engine_run.done)
        await pilot.pause()
        assert SPEEDS[app.speed_index] == 10


async def test_enter_in_a_field_applies_it_and_gives_the_keys_back():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        field = app.query_one("#f-steps", Input)
        field.focus()
        field.value = ""
        await pilot.press("2", "5", "enter")
        await pilot.pause()
        assert app.engine_run.T == 25
        await pilot.press("n")
        assert app.engine_run.k == 1


async def test_a_refusal_is_cleared_once_a_valid_value_is_entered():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
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


async def test_a_long_jump_lists_the_last_steps_and_says_how_many_were_skipped():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        app.engine_run.run()
        app._dirty = True
        app._redraw()
        await pilot.pause()
        lines = log_lines(app)
        assert lines[0].strip() == "... 20 steps not listed ..."
        assert [int(line.split()[0]) for line in lines[1:]] == list(range(21, 61))


async def test_settings_that_do_not_apply_are_greyed_out_with_the_reason():
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.query_one("#f-forget_bias").disabled  # an rnn has no forget gate
        assert not app.query_one("#f-clip_threshold").disabled
        await pilot.press("c", "c", "c", "c")  # norm -> value -> step -> agc -> none
        assert app.engine_run.config.clip == "none"
        assert app.query_one("#f-clip_threshold").disabled
        assert "needs a clip mode" in str(app.query_one("#f-clip_threshold").tooltip)


async def test_shift_g_clears_the_ghost():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", "g")
        assert app.ghost is not None
        await pilot.press("G")
        assert app.ghost is None
