"""The norm chart never hides the data (issue 8, item 3).

Read the way a user reads it: from the text the widget renders (legend lines
above the plot, the y axis and its power-of-ten labels, the marks in the
canvas). The scale is recovered from the rendered tick labels, never from the
chart's own attributes, and the expected numbers come from the engine's
records or from the preset's config.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from engine.presets import BUILTIN
from tui.app import make_app
from tui.downsample import LogSeries

pytestmark = pytest.mark.asyncio

SIZES = [(60, 16), (80, 24), (120, 40), (200, 50)]
BRAILLE = re.compile("[\u2801-\u28ff]")


# -- driving the app ---------------------------------------------------------------------


async def built(pilot):
    app = pilot.app
    for _ in range(300):
        await pilot.pause(0.02)
        if app.engine_run is not None and app.building is None:
            break
    assert app.engine_run is not None and app.building is None, "the run was not built"


async def run_to(pilot, shown: int | None = None):
    """Step the engine to the end, show records 1..shown (default all), draw."""
    app = pilot.app
    app.engine_run.run()
    app.shown = app.engine_run.T if shown is None else shown
    app._dirty = True
    app._redraw()
    await pilot.pause()


def app_for(preset: str, **overrides):
    config = BUILTIN[preset].config.with_overrides(**overrides) if overrides else None
    return make_app(preset, config=config)


# -- reading the chart as text ---------------------------------------------------------


class Screen:
    """The chart's rendered rows, cut into the legend above, the canvas, the axis."""

    def __init__(self, chart):
        self.rows = ["".join(segment.text for segment in chart.render_line(y)) for y in range(chart.size.height)]
        self.axis_row = next(i for i, row in enumerate(self.rows) if "└" in row)
        self.axis_col = self.rows[self.axis_row].index("└")
        top = self.axis_row
        while top > 0 and len(self.rows[top - 1]) > self.axis_col and self.rows[top - 1][self.axis_col] in "│┤├┼":
            top -= 1
        self.top = top  # first canvas row on screen
        self.canvas = [row[self.axis_col + 1 :] for row in self.rows[top : self.axis_row]]
        self.above = self.rows[:top]  # heading and legend
        self.labels = self.rows[top : self.axis_row]

    def ticks(self) -> list[tuple[int, int]]:
        """(canvas row counted from the bottom, decade) of each labelled tick."""
        out = []
        rows = len(self.canvas)
        for i, row in enumerate(self.labels):
            label = row[: self.axis_col].strip()
            if label:
                out.append((rows - 1 - i, 0 if label == "1" else int(label.removeprefix("1e"))))
        return sorted(out)

    def scale(self) -> tuple[float, float]:
        """(decade at the bottom canvas row, decades per row), from the tick labels."""
        (r0, d0), (r1, d1) = self.ticks()[0], self.ticks()[-1]
        per_row = (d1 - d0) / (r1 - r0)
        return d0 - r0 * per_row, per_row

    def row_of(self, value: float) -> int:
        """The canvas row (from the bottom) where a value is drawn."""
        bottom, per_row = self.scale()
        return math.floor(0.5 + (math.log10(value) - bottom) / per_row)

    def canvas_row(self, from_bottom: int) -> str:
        return self.canvas[len(self.canvas) - 1 - from_bottom]

    @property
    def legend(self) -> str:
        return "\n".join(self.above)


async def screen_of(pilot) -> Screen:
    await pilot.pause()
    return Screen(pilot.app.query_one("#chart"))


# -- 1. the legend sits outside the data ------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_the_legend_is_above_the_canvas_and_the_first_steps_are_drawn(size):
    app = app_for("clip-rescue")
    async with app.run_test(size=size) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        # Every series has its entry, with its marker, above the canvas ...
        config = BUILTIN["clip-rescue"].config
        for words in ("|dL/dh|", "|grad|", "bound", f"clip {config.clip_threshold:g}"):
            assert words in screen.legend.replace("clip threshold", "clip"), (words, screen.above)
        # ... and nothing of the legend is inside it.
        for row in screen.canvas:
            assert not re.search("dL|grad|bound|clip|threshold", row), row
        # The first steps are there: |dL/dh| (braille, drawn over everything) in the first column.
        assert any(BRAILLE.match(row[0]) for row in screen.canvas), screen.canvas


async def test_series_stay_apart_without_colour():
    """Each legend entry has its own marker: under NO_COLOR the glyphs are all there is."""
    for preset, overrides in (("step-clip", {}), ("lstm-cec", {"clip": "norm", "clip_threshold": 0.01}), ("clip-rescue", {"truncate": 10})):
        app = app_for(preset, **overrides)
        async with app.run_test(size=(200, 50)) as pilot:
            await built(pilot)
            await run_to(pilot)
            pilot.app.action_ghost()
            pilot.app._dirty = True
            pilot.app._redraw()
            chart = app.query_one("#chart")
            glyphs = [entry.split(" ")[0] for entry in chart.legend]
            assert len(glyphs) == len(set(glyphs)) >= 4, chart.legend


# -- 2. |dL/dh| over the bound --------------------------------------------------------------


async def test_dL_dh_is_drawn_over_the_bound_on_orthogonal():
    app = app_for("orthogonal")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        run = app.engine_run
        T = run.T
        # The curve is continuous and on top: every column it spans shows braille.
        width = max(len(row.rstrip()) for row in screen.canvas)
        for col in range(width):
            assert any(BRAILLE.match(row[col]) for row in screen.canvas if col < len(row)), col
        # The bound is within a row of it all along (orthogonal W: the norm is its own bound) ...
        bound, norm = run.records.columns["bound"][:T], run.records.columns["grad_norm"][:T]
        _, per_row = screen.scale()
        assert np.max(np.abs(np.log10(bound / norm))) < per_row / 2
        # ... and the legend says where it went.
        assert "bound (hidden under |dL/dh|" in screen.legend


# -- 3. a series that leaves the range is cut, and said so ----------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_bound_is_said_to_leave_the_top_on_clip_rescue(size):
    app = app_for("clip-rescue")
    async with app.run_test(size=size) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        found = re.search(r"bound \(off the top from k = (\d+)\)", screen.legend)
        assert found, screen.above
        k = int(found.group(1))
        bound = np.log10(app.engine_run.records.columns["bound"][: app.engine_run.T])
        bottom, per_row = screen.scale()
        top = bottom + (len(screen.canvas) - 1) * per_row
        # Drawn up to half a row above the top row's decade, cut beyond.
        first = [int(np.argmax(bound > top + share * per_row)) + 1 for share in (0.55, 0.45)]
        assert first[1] <= k <= first[0]
        assert np.all(bound[k - 1 :] > top)  # "from k": it does not come back


async def test_a_narrow_chart_says_it_briefly():
    app = app_for("clip-rescue")
    async with app.run_test(size=(60, 16)) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        assert re.search(r"bound \(top k≥\d+\)", screen.legend), screen.above
        assert len(screen.canvas) >= 3


# -- 4. ticks on evenly spaced rows -------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("preset, overrides", [("clip-rescue", {}), ("orthogonal", {}), ("lstm-cec", {}), ("step-clip", {}), ("seed-explode", {"scale": 10.0, "steps": 400})])
async def test_power_of_ten_ticks_fall_on_evenly_spaced_rows(preset, overrides, size):
    app = app_for(preset, **overrides)
    async with app.run_test(size=size) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        ticks = screen.ticks()
        assert len(ticks) >= 2 or len(screen.canvas) < 5, screen.rows
        rows = [r for r, _ in ticks]
        decades = [d for _, d in ticks]
        assert len(set(np.diff(rows))) <= 1, screen.rows  # evenly spaced rows
        assert len(set(np.diff(decades))) <= 1, screen.rows  # an even step of decades
        if len(screen.canvas) >= 5:
            assert min(np.diff(rows), default=2) >= 2  # labels never on adjacent rows when there is room
        # The observed norm is inside the labelled scale.
        norm = app.engine_run.records.columns["grad_norm"][: app.engine_run.T]
        shown = norm[np.isfinite(norm) & (norm > 0)]
        assert 0 <= screen.row_of(shown.min()) and screen.row_of(shown.max()) <= len(screen.canvas) - 1


async def test_ticks_stay_even_after_a_resize():
    app = app_for("clip-rescue")
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        await run_to(pilot)
        await pilot.resize_terminal(130, 45)
        await pilot.pause(0.2)
        screen = await screen_of(pilot)
        rows = [r for r, _ in screen.ticks()]
        assert len(rows) >= 3 and len(set(np.diff(rows))) == 1, screen.rows


@pytest.mark.parametrize("size", [(60, 16), (80, 24)])
async def test_before_the_first_step_the_axes_and_the_threshold_are_drawn(size):
    app = app_for("step-clip")
    async with app.run_test(size=size) as pilot:
        await built(pilot)
        pilot.app._dirty = True
        pilot.app._redraw()
        screen = await screen_of(pilot)
        rows = [r for r, _ in screen.ticks()]
        assert len(rows) >= 2 and len(set(np.diff(rows))) == 1, screen.rows
        threshold = BUILTIN["step-clip"].config.clip_threshold
        assert "───" in screen.canvas_row(screen.row_of(threshold))


async def test_the_smallest_chart_keeps_rows_for_data_with_a_ghost_pinned():
    app = app_for("clip-rescue")
    async with app.run_test(size=(60, 16)) as pilot:
        await built(pilot)
        await run_to(pilot)
        pilot.app.action_ghost()
        await run_to(pilot, shown=30)
        screen = await screen_of(pilot)
        chart = app.query_one("#chart")
        assert len(screen.rows) == chart.size.height and all(len(row) <= chart.size.width for row in screen.rows)
        assert len(screen.canvas) >= 4, screen.rows
        assert "░ ghost" in screen.legend
        # The ghost runs past the 30 steps on screen: it is not "hidden" under |dL/dh|.
        assert "hidden" not in screen.legend and "░" in "".join(screen.canvas)


# -- 5. the threshold line has its entry --------------------------------------------------------


@pytest.mark.parametrize("preset", ["clip-rescue", "step-clip"])
async def test_the_clip_threshold_line_is_in_the_legend_and_at_its_value(preset):
    app = app_for(preset)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        threshold = BUILTIN[preset].config.clip_threshold
        assert f"─ clip threshold {threshold:g}" in screen.legend
        assert "─────" in screen.canvas_row(screen.row_of(threshold))


# -- 6. what a clip rescued -------------------------------------------------------------------


@pytest.mark.parametrize("preset, overrides", [("step-clip", {}), ("seed-explode", {"clip": "step", "clip_threshold": 10.0})])
async def test_step_clipping_shows_the_norm_before_each_clip(preset, overrides):
    app = app_for(preset, **overrides)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        records = list(app.engine_run.records)
        clipped = [r for r in records if r.clip is not None and r.clip.applied]
        assert clipped
        assert f"o→x clipped at {len(clipped)} steps" in screen.legend
        # Each step's norm before its clip is above the threshold; the largest is drawn as an o on its row.
        threshold = app.engine_run.config.clip_threshold
        before = max(r.clip.before for r in clipped)
        assert before > threshold
        assert "o" in screen.canvas_row(screen.row_of(before))
        rows_with_o = [i for i in range(len(screen.canvas)) if "o" in screen.canvas_row(i)]
        assert min(rows_with_o) >= screen.row_of(threshold)
        # After the clip the norm is the threshold: the marks (x, or o where the rescue is under a row) are on its row.
        assert re.search("[xo]", screen.canvas_row(screen.row_of(threshold)))


async def test_an_end_of_pass_rescale_shows_the_norm_before_and_after():
    app = app_for("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        run = app.engine_run
        before = math.sqrt(sum(float(np.sum(g.astype(float) ** 2)) for g in run.grads_raw.values()))
        after = math.sqrt(sum(float(np.sum(g.astype(float) ** 2)) for g in run.grads.values()))
        assert f"rescaled {before:.3g} → {after:.3g} at k = {run.T}" in screen.legend
        right = max(len(row.rstrip()) for row in screen.canvas) - 1  # k = T
        assert screen.canvas_row(screen.row_of(before))[right] == "o"
        assert screen.canvas_row(screen.row_of(after))[right] == "x"


async def test_the_rescale_is_drawn_only_once_it_has_happened():
    app = app_for("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot, shown=app.engine_run.T - 1 if app.engine_run else 59)
        screen = await screen_of(pilot)
        assert "rescaled" not in screen.legend and "threshold crossed at k = " in screen.legend


# -- 7. truncation ------------------------------------------------------------------------------


async def test_truncation_is_marked_between_the_last_whole_step_and_the_first_cut():
    app = app_for("truncated")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        truncate = BUILTIN["truncated"].config.truncate
        assert f"│ truncate {truncate}" in screen.legend
        first_cut = next(r.k for r in app.engine_run.records if r.status == "truncated")
        chart = app.query_one("#chart")
        assert chart.vlines and first_cut - 1 < chart.vlines[0] < first_cut
        # A vertical line across the canvas, its foot on the x axis.
        cols = [c for c in range(len(screen.canvas[0])) if sum(row[c] == "│" for row in screen.canvas if c < len(row)) >= 0.7 * len(screen.canvas)]
        assert len(cols) == 1
        assert screen.rows[screen.axis_row][screen.axis_col + 1 + cols[0]] == "┴"


async def test_a_loss_cut_to_zero_by_truncation_is_on_the_floor_and_counted():
    app = app_for("clip-rescue", truncate=10)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        zeros = sum(r.grad_norm == 0 for r in app.engine_run.records)
        assert zeros > 0
        assert f"v {zeros} zero: on the floor" in screen.legend
        assert "v" in screen.canvas_row(0) and "truncate 10" in screen.legend


# -- 8. zeros and overflows -------------------------------------------------------------------


async def test_overflow_is_on_the_ceiling_and_counted():
    app = app_for("seed-explode", scale=10.0, steps=400)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot)
        screen = await screen_of(pilot)
        overflowed = sum(not math.isfinite(r.grad_norm) for r in app.engine_run.records)
        assert overflowed > 100
        assert f"^ {overflowed} overflow: on the ceiling" in screen.legend
        assert screen.canvas_row(len(screen.canvas) - 1).count("^") > 10


# -- what is on screen, and what a frame costs ----------------------------------------------------


async def test_only_the_records_on_screen_are_drawn():
    app = app_for("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot, shown=30)
        monitor = app.query_one("#chart").plt.monitor
        assert max(max(x) for x in monitor.x if x) <= 30


async def test_a_long_run_is_drawn_with_as_many_points_as_a_short_one():
    """The chart draws at most ~2 points per column per series, however long the run."""
    app = app_for("seed-explode", steps=100_000, clip="step", clip_threshold=10.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await run_to(pilot)
        pilot.app.action_ghost()
        pilot.app._dirty = True
        pilot.app._redraw()
        chart = app.query_one("#chart")
        monitor = chart.plt.monitor
        assert max(len(x) for x in monitor.x) <= 2 * chart.size.width + 2
        assert "o→x clipped at" in " ".join(chart.legend)


async def test_log_series_answers_as_a_scan_of_the_values_would():
    """LogSeries, taken in piece by piece, against a direct computation over the
    prefix: points, extent, where values leave a range, zeros, overflows, counts."""
    rng = np.random.default_rng(8)
    for _ in range(300):
        size = int(rng.integers(1, 3000))
        values = np.exp(rng.normal(0, 30, size))  # spans +-100 decades and beyond: 0 and inf by underflow and overflow
        for special, share in ((0.0, 0.05), (math.inf, 0.03), (math.nan, 0.03)):
            values[rng.random(size) < share] = special
        series = LogSeries()
        for cut in sorted(rng.integers(0, size + 1, 4).tolist()) + [size]:
            series.update(values[:cut])
        n, width = int(rng.integers(0, size + 1)), int(rng.integers(2, 120))
        with np.errstate(all="ignore"):
            y = np.log10(np.where(values[:n] > 0, values[:n], np.nan))
        drawn = np.isfinite(y)
        k, points = series.points(n, width)
        assert np.all(np.diff(k) > 0) and np.array_equal(points, y[k.astype(int) - 1])
        assert k.size <= (n if n <= 2 * width else 2 * width + 2)
        if drawn.any():
            assert points.min() == y[drawn].min() and points.max() == y[drawn].max()
            assert series.extent(n) == (y[drawn].min(), y[drawn].max())
        for bar in rng.normal(0, 30, 3):
            above, below = np.flatnonzero(drawn & (np.nan_to_num(y) > bar)), np.flatnonzero(drawn & (np.nan_to_num(y) < bar))
            assert series.first(n, above=bar) == (above[0] if above.size else None)
            assert series.last(n, above=bar) == (above[-1] if above.size else None)
            assert series.first(n, below=bar) == (below[0] if below.size else None)
            assert series.last(n, below=bar) == (below[-1] if below.size else None)
        assert np.array_equal(series.zeros(n), np.flatnonzero(values[:n] == 0))
        assert np.array_equal(series.not_finite(n), np.flatnonzero(~np.isfinite(values[:n])))
        assert series.count(n) == drawn.sum()
