"""The sweep screen (key d): it opens the newest saved sweep in the current
folder, draws the lines where numpy's SVD and eigenvalues of the scale-1
W_hh put them, moves a cursor over the cells showing each one's numbers,
and says in one line, without crashing, when a file is not a sweep."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from textual.widgets import Input, Static

from engine import Run
from engine.presets import BUILTIN
from engine.sweep import Grid, Sweep, measure, parse_axis
from tests.tui.test_app import built
from tui.app import make_app
from tui.views import sweep_chart
from tui.views.sweep_screen import SweepScreen

pytestmark = pytest.mark.asyncio
X, Y = "scale=0.25:2.5:20", "activation=tanh,relu,sigmoid"


def make_sweep(folder, name: str = "sweep.json", x: str = X, y: str = Y) -> dict:
    """A small sweep of the phase-diagram preset (H=16, T=50), computed with the engine and saved as the CLI saves it."""
    grid = Grid.build(BUILTIN["phase-diagram"].config, parse_axis(x), parse_axis(y), {"hidden": 16, "steps": 50})
    sweep = Sweep(grid.base, grid.x, grid.y, [[measure(c) for c in row] for row in grid.configs], preset="phase-diagram")
    doc = sweep.to_dict()
    (folder / name).write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return doc


@pytest.fixture
def in_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def text(screen, name: str) -> str:
    return str(screen.query_one(f"#{name}", Static).render())


async def opened(pilot) -> SweepScreen:
    await built(pilot)
    await pilot.press("d")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, SweepScreen)
    return screen


async def test_d_opens_the_newest_sweep_with_its_lines_where_numpy_puts_them(in_a_folder):
    doc = make_sweep(in_a_folder)
    (in_a_folder / "other.json").write_text('{"schema": "bptt-lab.run/1"}')  # newer, but not a sweep
    app = make_app("seed-explode")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await opened(pilot)
        assert screen.path.name == "sweep.json" and "sweep.json" in text(screen, "sweep-head")
        lines = text(screen, "sweep-grid").splitlines()
        labelled = [line for line in lines[1:] if line[: len("activation")].strip()]  # a row is up to 3 lines tall, labelled once
        assert [line.split()[0] for line in labelled] == ["tanh", "relu", "sigmoid"] and len(lines) == 1 + 3 * 3
        grid = [lines[0], *labelled]
        # The lines: sigma_max and the radius of the scale-1 W_hh (every cell's is it times the scale).
        W1 = Run(BUILTIN["phase-diagram"].config.with_overrides(hidden=16, steps=50)).params["weight_hh_l0"]
        sigma, rho = np.linalg.svd(W1, compute_uv=False)[0], np.max(np.abs(np.linalg.eigvals(W1)))
        xs = np.array(doc["x"]["values"])
        w = sweep_chart.cell_width(screen.sweep, screen.size.width - 2)
        start = len(grid[1]) - len(xs) * w
        for row, gamma in ((1, 1.0), (2, 1.0), (3, 0.25)):
            marks = {j for j in range(len(xs)) if grid[row][start + j * w] in "|o*"}
            for where in (1 / (sigma * gamma), 1 / rho):
                if xs[0] <= where <= xs[-1]:
                    assert int(np.argmin(np.abs(xs - where))) in marks, (row, where, grid[row])
        assert "σmax·γ = 1" in text(screen, "sweep-axis") or "sigma_max*gamma = 1" in text(screen, "sweep-axis")


async def test_the_cursor_shows_each_cells_settings_and_numbers(in_a_folder):
    doc = make_sweep(in_a_folder)
    app = make_app("seed-explode")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        for key in ("right", "right", "right", "down", "l", "up", "j"):
            await pilot.press(key)
        assert screen.cursor == (1, 4)
        cell = doc["cells"][1][4]
        shown = text(screen, "sweep-cell")
        assert f"scale = {doc['x']['values'][4]:.3g}" in shown and "activation = relu" in shown
        assert f"x{10 ** cell['log10_growth']:.3g} a step" in shown and f"σmax {cell['sigma_max']:.3g}" in shown
        for _ in range(16):  # the cursor stops at the edge (column 19)
            await pilot.press("right")
        assert screen.cursor == (1, 19)
        await pilot.press("escape")
        assert not isinstance(app.screen, SweepScreen)
        await pilot.press("d")
        assert isinstance(app.screen, SweepScreen)
        await pilot.press("d")  # its own key again goes back too
        assert not isinstance(app.screen, SweepScreen)


async def test_a_grid_taller_than_the_screen_scrolls_to_the_cursor(in_a_folder):
    make_sweep(in_a_folder, x="scale=0.5:2:4", y="input_scale=0.1:3:30")
    app = make_app("seed-explode")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        scroll = screen.query_one("#sweep-scroll")
        assert scroll.size.height < 31  # the grid's 31 lines do not fit: the axis and the cell's numbers stay on screen
        assert screen.query_one("#sweep-cell").region.bottom <= 24 - 2
        for _ in range(25):
            await pilot.press("down")
        await pilot.pause()
        assert screen.cursor == (25, 0) and "input_scale = 2.6" in text(screen, "sweep-cell")
        assert scroll.scroll_y <= 26 < scroll.scroll_y + scroll.size.height  # the cursor's line (26: the axis name is line 0) is in view


@pytest.mark.parametrize(
    "content, words",
    [
        ("not json at all", "it is not JSON"),
        ('{"schema": "bptt-lab.run/1"}', "not a bptt-lab sweep"),
        ('{"schema": "bptt-lab.sweep/1", "x": {"field": "scale", "values": [1, 2]}, "y": {"field": "seed", "values": [1, 2]}, "cells": []}', "not 2 rows of 2"),
    ],
)
async def test_a_bad_file_is_said_in_one_line_and_the_sweep_on_screen_stays(in_a_folder, content, words):
    make_sweep(in_a_folder)
    (in_a_folder / "bad.json").write_text(content)
    os.utime(in_a_folder / "bad.json", (0, 0))  # older: the screen opens sweep.json first
    app = make_app("seed-explode")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.press("o")
        field = screen.query_one("#sweep-path", Input)
        assert field.has_focus
        field.value = "bad.json"
        await pilot.press("enter")
        said = text(screen, "sweep-cell")
        assert said.startswith("cannot open bad.json") and words in said and "\n" not in said.strip()
        assert screen.path.name == "sweep.json" and "tanh" in text(screen, "sweep-grid")
        await pilot.press("o")
        field.value = "missing.json"
        await pilot.press("enter")
        assert "No such file" in text(screen, "sweep-cell")


async def test_no_sweep_in_the_folder_says_how_to_make_one(in_a_folder):
    app = make_app("seed-explode")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        assert "No sweep JSON" in text(screen, "sweep-cell") and "bptt-lab sweep" in text(screen, "sweep-cell")
        await pilot.press("right", "question_mark")
        assert "vanishing guaranteed" in str(app.screen.text()) or "vanishing is guaranteed" in str(app.screen.text())


async def test_too_small_says_so(in_a_folder):
    make_sweep(in_a_folder)
    app = make_app("seed-explode")
    async with app.run_test(size=(50, 12)) as pilot:
        screen = await opened(pilot)
        assert screen.query_one("#sweep-too-small").display and not screen.query_one("#sweep-scroll").display


async def test_tui_sweep_file_opens_the_dashboard_on_it(in_a_folder):
    """bptt-lab tui --sweep FILE: the file, read before the app starts, on screen at once (not the newest in the folder)."""
    from tui.views.sweep_screen import checked_sweep, open_at_start

    make_sweep(in_a_folder, "given.json", y="activation=tanh,relu")
    make_sweep(in_a_folder, "newer.json")
    app = make_app("seed-explode")
    open_at_start(app, *checked_sweep(in_a_folder / "given.json"))
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        screen = app.screen
        assert isinstance(screen, SweepScreen) and screen.path.name == "given.json"
        assert "sigmoid" not in text(screen, "sweep-grid") and "relu" in text(screen, "sweep-grid")
        await pilot.press("escape")
        assert not isinstance(app.screen, SweepScreen)
