"""The cliff's screen (key l) under Pilot, and its heatmap's cells against an
independent computation of the levels and the marks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rich.text import Text

from engine import cliff as model
from tests.reference import section_9_error
from tests.tui.test_app import built, settle
from tui.app import make_app
from tui.views import cliff_draw as draw
from tui.views.cliff_screen import CliffScreen, FixedPointsPlot, SurfaceMap


async def opened(pilot) -> CliffScreen:
    await built(pilot)
    await pilot.press("l")
    await settle(pilot, lambda: isinstance(pilot.app.screen, CliffScreen) and pilot.app.screen.cliff is not None)
    screen = pilot.app.screen
    assert isinstance(screen, CliffScreen) and screen.cliff is not None
    await pilot.pause()
    return screen


def map_text(screen) -> str:
    return screen.query_one(SurfaceMap).render().plain


def visible(screen, widget_type) -> bool:
    widget = screen.query_one(widget_type)
    return widget.display and widget.region.area > 0


@pytest.mark.asyncio
async def test_the_cliff_at_80x24():
    """l opens it; its marks and legend; e, g and f; the dashboard's keys do
    nothing here; ? explains; too small says so; escape and l go back."""
    app = make_app("seed-explode")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        text = map_text(screen)
        assert "E_50 = (σ(x_50) - 0.7)² over (w, b), log10 scale" in text
        assert "S" in text and "X" in text and "o" in text
        legend = str(screen.query_one("#cliff-legend").render())
        assert "start (w, b) = (4.9, -2.55)" in legend and "first step 2.6 long, to (6.28, -0.339)" in legend
        # the E grid's least value, 9.1e-7, is under the scale's lowest power of ten, 1e-5: drawn blank, and said
        assert "blank: the lowest level, and E below 1e-5 too (down to 9.1e-7)" in legend
        await keys_switch_the_panels(pilot, screen)
        await dashboard_keys_do_nothing(pilot, screen)
        await help_says_what_the_marks_mean(pilot, screen)
        await too_small_says_so(pilot, screen)
        await pilot.press("escape")
        assert not isinstance(app.screen, CliffScreen)
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, CliffScreen))
        assert app.screen.cliff is not None  # computed once: there at once the second time
        await pilot.press("l")
        assert not isinstance(app.screen, CliffScreen)


async def keys_switch_the_panels(pilot, screen) -> None:
    assert visible(screen, SurfaceMap) and not visible(screen, FixedPointsPlot)
    await pilot.press("g")
    await pilot.pause()
    assert "|grad E_50|" in map_text(screen)
    assert "blank: the lowest level, and |grad| below 1e-3 too (down to 2.9e-4)" in str(screen.query_one("#cliff-legend").render())  # the scale's lowest level is 1e-3
    await pilot.press("f")
    await pilot.pause()
    assert visible(screen, FixedPointsPlot) and not visible(screen, SurfaceMap)
    await pilot.press("f")
    await pilot.pause()
    assert visible(screen, SurfaceMap) and "|grad E_50|" in map_text(screen)
    await pilot.press("e")
    await pilot.pause()
    assert "E_50 = (σ(x_50)" in map_text(screen)


async def dashboard_keys_do_nothing(pilot, screen) -> None:
    app = pilot.app
    shown = app.shown
    for key in ("n", "space", "r", "c", "x"):
        await pilot.press(key)
    await pilot.pause(0.1)
    assert app.shown == shown and not app.playing and app.config.clip == "none"
    assert app.screen is screen


async def help_says_what_the_marks_mean(pilot, screen) -> None:
    app = pilot.app
    await pilot.press("question_mark")
    await pilot.pause()
    text = app.screen.text()
    assert model.CLIFF_DEFAULT.look_for in text
    assert "S: start (w, b) = (4.9, -2.55)" in text and "o: SGD lr 0.1, norm clip at 1" in text
    await pilot.press("escape")
    assert app.screen is screen


async def too_small_says_so(pilot, screen) -> None:
    await pilot.resize_terminal(58, 16)
    await pilot.pause(0.1)
    assert screen.query_one("#cliff-too-small").region.area > 0 and not visible(screen, SurfaceMap)
    assert "the cliff needs at least 60 x 18" in str(screen.query_one("#cliff-too-small").render())
    await pilot.resize_terminal(80, 24)
    await pilot.pause(0.1)
    assert visible(screen, SurfaceMap)


@pytest.mark.asyncio
async def test_wide_shows_the_map_and_the_fixed_points_and_the_numbers():
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        assert visible(screen, SurfaceMap) and visible(screen, FixedPointsPlot)
        numbers = str(screen.query_one("#cliff-numbers").render())
        assert "b = -2.6556 and b = -2.3444" in numbers
        assert "look for: " + model.CLIFF_DEFAULT.look_for[:40] in numbers


# -- the heatmap's cells (no app) ---------------------------------------------------------


plain_error = section_9_error


def test_each_cell_is_its_level_and_the_marks_sit_where_the_points_are():
    """A 9 x 9 grid drawn in 9 x 9 cells: each cell is one grid point, row 0 the largest w."""
    setting = model.CliffSetting("t", "", "", w_range=(4.0, 6.0), b_range=(-3.0, -2.0), grid=9, start=(4.25, -2.875), lr=0.01, steps=1)
    c = model.compute(setting)
    lines = draw.surface_lines(c, "E", 9 + draw.AXIS, 9 + 3)
    assert [len(line.plain) for line in lines[:9]] == [9 + draw.AXIS] * 9
    values = [[plain_error(4.0 + 0.25 * i, -3.0 + 0.125 * j) for j in range(9)] for i in range(9)]
    lo, hi = draw.decade_range(np.array(values))
    for r in range(9):
        for j in range(9):
            v = values[8 - r][j]
            level = min(9, max(0, math.floor((math.log10(v) - lo) / (hi - lo) * 10)))
            cell = lines[r].plain[draw.AXIS + j]
            if (r, j) == (7, 1):  # the start (4.25, -2.875): row 8 - 1, column 1
                assert cell == "S"
            elif cell not in "oX·":
                assert cell == draw.GLYPHS[level], (r, j, cell, level)
    assert "1e-" in lines[-1].plain  # the scale's powers of ten


def test_values_under_the_scale_are_said_only_when_the_map_has_some():
    # E over w 4..6, b -3..-2 (9 x 9) lies within 1e-5 (its least, 2.2e-5, rounded down) to 1 (0.41 rounded up): all on a 5-decade scale
    setting = model.CliffSetting("t", "", "", w_range=(4.0, 6.0), b_range=(-3.0, -2.0), grid=9, start=(4.25, -2.875), lr=0.01, steps=1)
    values = [plain_error(4.0 + 0.25 * i, -3.0 + 0.125 * j) for i in range(9) for j in range(9)]
    assert math.ceil(math.log10(max(values))) - math.floor(math.log10(min(values))) <= draw.MOST_DECADES
    assert draw.below_scale(model.compute(setting), "E") is None
    c = model.compute(model.CLIFF_DEFAULT)  # E from 9.1e-7 to 0.49: the scale keeps 1e-5 to 1
    assert draw.below_scale(c, "E") == "blank: the lowest level, and E below 1e-5 too (down to 9.1e-7)"


def test_the_grad_map_keeps_each_bucket_s_largest_value():
    grid = np.arange(36.0).reshape(6, 6)
    out = draw.resample(grid, 3, 2, keep_max=True)
    assert out.tolist() == [[32.0, 35.0], [20.0, 23.0], [8.0, 11.0]]  # row 0: the largest w


def test_the_legend_marks_are_all_different_glyphs_from_the_levels():
    assert not set(draw.GLYPHS) & {draw.START, draw.PLAIN, draw.CLIPPED, draw.PATH}
    assert isinstance(draw.scale_lines(-3, 2, 80)[0], Text)
