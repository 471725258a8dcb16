"""The heatmap view (h): what a student sees, checked against numbers computed
apart from the code under test (finite differences of the loss, the units'
own values binned by hand), and the picture's binning and scale."""

from __future__ import annotations

import contextlib
import math
from types import SimpleNamespace

import numpy as np
import pytest

from engine import Config, Run
from engine.presets import BUILTIN
from tests.input_gradients import input_norms
from tui.app import make_app
from tui.views import heatmap_picture as pic
from tui.views.heatmap_screen import HeatmapHelp, HeatmapScreen

ASYNC = pytest.mark.asyncio


async def built(pilot):
    app = pilot.app
    for _ in range(500):
        if app.engine_run is not None and app.building is None:
            break
        await pilot.pause(0.02)
    assert app.engine_run is not None and app.building is None, "the run was not built"


async def drawn(pilot):
    """Let the screen's timer (or a resize) draw what changed."""
    screen = pilot.app.screen
    if isinstance(screen, HeatmapScreen):
        screen._drawn = None
        screen.redraw()
    await pilot.pause()


@contextlib.asynccontextmanager
async def heatmap(app, size: tuple[int, int], *keys: str):
    """The app with its run built, the heatmap open (h), these keys pressed and the frame drawn."""
    async with app.run_test(size=size) as pilot:
        await built(pilot)
        await pilot.press("h", *keys)
        await drawn(pilot)
        yield pilot


def picture_text(app) -> str:
    return app.screen.query_one("#hm-picture").text()


def lines_of(app) -> list[str]:
    return picture_text(app).split("\n")


def row(app, label: str) -> str:
    return next(line for line in lines_of(app) if line.startswith(label))


@ASYNC
async def test_h_opens_the_heatmap_and_escape_or_h_goes_back():
    app = make_app("wig-went")
    async with heatmap(app, (80, 24)) as pilot:
        assert isinstance(app.screen, HeatmapScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HeatmapScreen)
        await pilot.press("h")
        assert isinstance(app.screen, HeatmapScreen)
        await pilot.press("h")
        assert not isinstance(app.screen, HeatmapScreen)


@ASYNC
async def test_it_follows_the_run_as_it_steps():
    """Only records 0..shown are drawn; n steps the run from the heatmap too, b steps back."""
    app = make_app("wig-went")
    async with heatmap(app, (120, 40)) as pilot:
        assert row(app, "dL/dx").strip() == "dL/dx" and "k = 0/9" in str(app.screen.query_one("#hm-title").render())
        for _ in range(3):
            await pilot.press("n")
        await drawn(pilot)
        assert app.shown == 3 and "k = 3/9" in str(app.screen.query_one("#hm-title").render())
        first = lines_of(app)[1]
        filled = len(first[pic.GUTTER :].rstrip())
        width = (120 - pic.GUTTER) // 10  # ten columns: k = 0..9
        assert filled == 4 * width  # records 0..3
        await pilot.press("b")
        await drawn(pilot)
        assert len(lines_of(app)[1][pic.GUTTER :].rstrip()) == 3 * width


@ASYNC
async def test_the_words_and_the_input_connectivity_of_wig_went():
    """At 120 x 40 every word is under its column with ||dL/dx_t|| in figures: 0 from
    'wore' back, and for 'head' .. 'a' the loss's gradient by finite differences."""
    app = make_app("wig-went")
    async with heatmap(app, (120, 40), "e") as pilot:
        words = row(app, "word").split()[1:]
        assert words == ["head", "his", "on", "wig", "a", "wore", "who", "man", "The", "-"]
        figures = lines_of(app)[lines_of(app).index(row(app, "word")) + 1].split()
        full = input_norms(app.engine_run)  # t = 9..1, without truncation
        assert figures[:5] == [f"{v:.2g}" for v in full[:5]]
        assert figures[5:] == ["0"] * 4
        assert set(row(app, "dL/dx")[pic.GUTTER :].rstrip()[-4 * ((120 - pic.GUTTER) // 10) :]) == {pic.ZERO}  # man's column and the others: exactly 0
        numbers = str(app.screen.query_one("#hm-numbers").render())
        assert "k = 9, t = 0" in numbers and "exactly 0" in numbers


@ASYNC
async def test_truncate_zero_reaches_man():
    config = BUILTIN["wig-went"].config.with_overrides(truncate=0)
    app = make_app("wig-went", config)
    async with heatmap(app, (120, 40), "e") as pilot:
        figures = lines_of(app)[lines_of(app).index(row(app, "word")) + 1].split()
        assert figures == [f"{v:.2g}" for v in input_norms(app.engine_run)]
        assert pic.ZERO not in row(app, "dL/dx")[pic.GUTTER :]


@ASYNC
async def test_help_quit_and_too_small():
    app = make_app("lstm-cec")
    async with heatmap(app, (80, 24), "question_mark") as pilot:
        assert isinstance(app.screen, HeatmapHelp)
        assert "largest value of its bin" in app.screen.text() and "dL/dx" in app.screen.text()
        await pilot.press("escape")
        assert isinstance(app.screen, HeatmapScreen)
        await pilot.resize_terminal(50, 14)
        await drawn(pilot)
        assert "Too small" in picture_text(app)
        await pilot.press("q")
    assert app.return_code == 0


@ASYNC
async def test_readable_without_colour(monkeypatch):
    """NO_COLOR: each level still has its own character, and the legend names them in powers of ten."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app("lstm-cec")
    async with heatmap(app, (80, 24), "e") as pilot:
        text = picture_text(app)
        legend = lines_of(app)[0]
        assert all(f"{g}{g}1e-" in legend for g in pic.GLYPHS[:3])
        assert len(set(text) & set(pic.GLYPHS)) >= 3


# -- the picture without the app ------------------------------------------------------


def fake_map(units: np.ndarray, dx: np.ndarray):
    """What the picture reads of a GradientMap, with values chosen here."""
    C, H = units.shape
    return SimpleNamespace(
        units=units, stride=1, H=H, T=C - 1,
        columns=lambda upto: (units[: upto + 1], np.arange(upto + 1)),
        input_norms=lambda upto: dx[:upto],
    )  # fmt: skip


def test_bins_keep_the_largest_value_and_cover_every_unit_and_step():
    """300 steps x 64 units on 80 x 24: every bin is the max of its units and steps, so one
    large value in the last unit at the last step shows in the bottom right cell."""
    units = np.full((301, 64), 1e-6)
    units[300, 63] = 1.0
    units[0, 0] = 1e-3
    m = fake_map(units, np.full(300, 1e-6))
    lines = [str(line) for line in pic.picture(m, 300, 80, 22, None)]
    grid = [line[pic.GUTTER :] for line in lines[1:] if line[: pic.GUTTER].strip() not in ("k", "dL/dx")]
    scale = pic.Scale.over(units)
    top = pic.GLYPHS[scale.levels(np.array([1.0]))[0]]
    assert grid[-1].rstrip()[-1] == top and top not in grid[-1].rstrip()[:-1]
    assert grid[0][0] == pic.GLYPHS[scale.levels(np.array([1e-3]))[0]]
    assert all(top not in line for line in grid[:-1])


def test_the_scale_is_in_powers_of_ten_and_holds_every_value():
    for lo, hi in ((1e-27, 0.3), (0.01, 0.9), (2.0, 3e5)):
        s = pic.Scale.over(np.array([lo, hi]))
        levels = s.levels(np.array([lo, hi]))
        assert levels[0] >= 0 and levels[1] == pic.LEVELS - 1
        assert 10.0**s.low <= lo and hi < 10.0 ** (s.low + pic.LEVELS * s.decades)
    s = pic.Scale.over(np.array([1e-3, 1.0]))
    assert list(s.levels(np.array([0.0, math.inf, math.nan, -1.0]))) == [-1, -2, -2, -3]


def test_a_stored_map_past_the_budget_draws(monkeypatch):
    from engine import gradient_map

    monkeypatch.setattr(gradient_map, "BUDGET", 64 * 50)
    run = Run(Config(hidden=64, steps=400, seed=2), gradient_map=True)
    run.advance(237)
    lines = [str(line) for line in pic.picture(run.gradient_map, 237, 100, 30, None)]
    m = run.gradient_map
    assert m.stride == 9 and m.units.shape == (45, 64)  # ceil(401 * 64 / 3200) steps a column
    cell = (100 - pic.GUTTER) // 45
    assert len(lines[1][pic.GUTTER :].rstrip()) == (237 // 9 + 1) * cell  # the columns holding records 0..237
    assert all(pic.NOT_FINITE not in line for line in lines[1:])
