"""A chart of values per update u on a log10 axis: the shape the three charts
of the training view share.

It follows the per-step chart (tui/panes/chart.py) and uses its parts: log10
values on a linear axis with power-of-ten labels on evenly spaced rows
(plotext 5's yscale("log") corrupts the second draw), each series cut to
about the chart's width from a per-series cache that keeps each bucket's
least and greatest value (tui/downsample.LogSeries), the legend on its own
lines above the data, one entry per marker so series stay apart without
colour. What it adds for updates:

- levels: horizontal lines that name a value (the task's baseline, the clip
  threshold, 1/gamma), each with its own marker; the y range holds them;
- the cursor: a vertical line at the update under the cursor;
- a series that may leave the y range (`keep=False`: reach, long_share,
  ghosts) is cut at the edge, and its legend entry says from which update.

Each chart says what it draws in `series(frame, token)`; the widget (the
per-step chart's, with this layout) lays it out for its size and draws it
from the screen's redraw timer, never once per update. The text twin for tests and readers: `heading`, `legend`, `notes`,
`ticks`, `ylim`, `cursor_x`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from rich.text import Text

from ..downsample import LogSeries
from ..panes.chart import FREE_DECADES, Drawn, Entry, NormChart, Series, layout, x_ticks, y_axis
from ..panes.chart import off_edges as step_off_edges
from .frame import Frame

X_LABEL = "update u"
NOTE_PASSES = 4  # a note that costs a legend row may bring its series back in: settled in a pass or two


@dataclass(frozen=True)
class Level:
    """A horizontal line at `value`, drawn with `marker` and named in the legend."""

    value: float
    text: str
    short: str
    marker: str = "─"
    color: str = "green"


@dataclass
class UpdateScene:
    """What one frame of a chart draws, independent of the widget's size."""

    heading: str
    series: list[Series] = field(default_factory=list)  # in draw order: the last on top
    updates: int = 2  # the x axis runs 1..updates
    levels: list[Level] = field(default_factory=list)
    cursor: int | None = None


def off_edges(series: LogSeries, n: int, bottom: float, top: float) -> tuple[str, str]:
    """Where the first n values leave [bottom, top], as the per-step chart says it
    with u for k ("off the bottom from u = 45", "bottom u≥45"); empty if they never do."""
    words, brief = step_off_edges(series, n, bottom, top)
    return words.replace("k = ", "u = "), brief.replace("k", "u")


def within_reach(drawn: list[Drawn]) -> list[Drawn]:
    """The series the y range is laid out for: all it must hold, and those that
    may run off an edge if some of them lies within FREE_DECADES of those (a
    series far beyond would only widen the range and still not be drawn)."""
    kept = [d for d in drawn if d.series.keep and d.y.size]
    if not kept:
        return [d for d in drawn if d.y.size]
    lo, hi = min(float(d.y.min()) for d in kept), max(float(d.y.max()) for d in kept)
    near = [d for d in drawn if not d.series.keep and d.y.size and np.any((d.y >= lo - FREE_DECADES) & (d.y <= hi + FREE_DECADES))]
    return kept + near


class UpdateChart(NormChart):
    """The per-step chart's widget (its cache of log10 series, legend lines and
    render) with a scene and a layout of its own: x is the update u.

    Replotted from the training screen's redraw timer. A subclass says what it
    draws in `series`; `token` names the training, so that a cached series
    never outlives the run it came from."""

    DEFAULT_CSS = """
    UpdateChart {
        min-height: 6;
    }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._scene = UpdateScene("")
        self.cursor_x: float | None = None
        self._version = 0  # counts the scenes drawn: a repaint of the same one reuses its render
        self._rendered: tuple[object, Text] | None = None

    def series(self, frame: Frame, token) -> tuple[str, list[Series], list[Level]]:
        """(heading, series in draw order, levels) of a frame whose training is built."""
        raise NotImplementedError

    def _scene_of(self, frame: Frame, token) -> UpdateScene:
        if frame.training is None:
            return UpdateScene("building the training ...", updates=frame.updates)
        heading, series, levels = self.series(frame, token)
        if frame.count == 0:
            heading = "space or n to train"
        return UpdateScene(heading, series, frame.updates, levels, frame.cursor)

    def replot(self) -> None:
        self._version += 1
        super().replot()

    # -- layout and drawing for the widget's size --------------------------------------

    def _draw(self, scene: UpdateScene) -> None:
        width, height = self.size
        self._drawn_for = (width, height)
        plt = self.plt
        plt.clear_data()
        canvas_width = max(8, width - 8)
        drawn: list[Drawn] = []
        main = next((s for s in scene.series if s.main), None)
        zeros = overflow = np.empty(0, dtype=np.int64)
        for s in scene.series:
            if s.at is not None:  # a few points where they are (the evaluations)
                with np.errstate(all="ignore"):
                    y = np.log10(np.where(s.values > 0, s.values, np.nan))
                ok = np.isfinite(y)
                drawn.append(Drawn(s, s.at[ok], y[ok], None, int(np.count_nonzero(ok))))
                continue
            cached = self._cached(s.key if s.key is not None else ("once", id(s)), s.values)
            n = s.values.size
            k, y = cached.points(n, canvas_width)
            if s is main:
                zeros, overflow = cached.zeros(n), cached.not_finite(n)
            drawn.append(Drawn(s, k, y, cached, cached.count(n) if "{count}" in s.label else 0))
        levels = [lv for lv in scene.levels if lv.value > 0 and math.isfinite(lv.value)]
        held = [Drawn(Series(lv.text, np.array([lv.value])), np.array([1.0]), np.array([math.log10(lv.value)]), None, 0) for lv in levels]
        axis = within_reach(drawn + held)
        cut: dict[int, tuple[str, str]] = {}
        reserve = 0
        for _ in range(NOTE_PASSES):
            entries = self._legend(scene, drawn, levels, zeros, overflow, cut)
            lines, brief, canvas, heading, xlabel, xticks = layout(entries, width, height, bool(scene.heading), reserve)
            bottom, top, ticks = y_axis(axis, None, canvas, floor=zeros.size > 0, ceiling=overflow.size > 0)
            half = 0.49 * (top - bottom) / max(canvas - 1, 1)  # within half a row of an edge is drawn on it
            now = {id(d): off_edges(d.cached, d.series.values.size, bottom - half, top + half) for d in drawn if not d.series.keep and d.cached is not None}
            now = {key: note for key, note in now.items() if note[0]}
            if now == cut:
                break
            cut, reserve = now, max(reserve, len(lines))
        self._text_rows(scene.heading, lines, brief, heading, height - canvas - 1 - xticks - xlabel, height, width, drawn, cut)
        updates = max(2, scene.updates)
        self._axes(X_LABEL if xlabel else None, updates, x_ticks(updates, canvas_width) if xticks else [], bottom, top, ticks, canvas)
        for lv in levels:
            plt.plot([1, updates], [math.log10(lv.value)] * 2, marker=lv.marker, color=lv.color)
        self.cursor_x = None
        if scene.cursor is not None:
            self.cursor_x = float(scene.cursor)
            plt.vline(scene.cursor, "gray+")
        self._plot_series(drawn, brief, zeros, overflow, bottom, top, canvas_width)

    def _legend(self, scene: UpdateScene, drawn: list[Drawn], levels: list[Level], zeros: np.ndarray, overflow: np.ndarray, cut: dict) -> list[Entry]:
        entries = self._series_entries(drawn, cut)
        entries += [Entry(lv.marker, lv.color, lv.text, lv.short) for lv in levels]
        if scene.cursor is not None:
            entries.append(Entry("│", "gray+", f"cursor u = {scene.cursor}", f"u {scene.cursor}"))
        if zeros.size:
            entries.append(Entry("v", "red", f"{zeros.size} zero: on the floor", f"{zeros.size} zero"))
        if overflow.size:
            entries.append(Entry("^", "red", f"{overflow.size} not finite: on the ceiling", f"{overflow.size} nan/inf"))
        return entries

    def render(self):
        """The per-step chart's render; a repaint of the same scene at the same size reuses it."""
        key = (self._version, self.size, self.app.theme)
        if self._rendered is None or self._rendered[0] != key:
            self._rendered = (key, super().render())
        return self._rendered[1]
