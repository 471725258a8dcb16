"""The norm chart: gradient norm per backward step on a log10 axis.

plotext's own log scale transforms data in place and corrupts a second draw,
so the chart plots log10 values on a linear axis with power-of-ten labels.

What it promises a reader, at every size from 60 x 16 to 200 x 50:

- the legend is outside the data area: the lines above the plot, each entry
  with its marker, so series stay apart without colour (NO_COLOR);
- |dL/dh| is drawn over the bound and the ghosts; marks on it (clips) over it;
- a series that leaves the y range is cut at the edge and its legend entry
  says where ("bound (off the top from k = 45)");
- the power-of-ten ticks land on evenly spaced rows of the actual canvas;
- a clip shows what it rescued: the norm before each step clip, or the
  parameter-gradient norm before and after the end-of-pass rescale;
- truncated BPTT shows where it cuts; zeros and overflows sit on the floor
  and ceiling rows, counted in the legend.

Series are downsampled to the canvas width (each bucket's min and max) from
a per-series cache (tui/downsample.LogSeries) that takes each new step in
once, so a frame of a 100,000-step run costs what a frame of a 100-step one
does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual_plotext import PlotextPlot

from engine.clipping import END

from ..downsample import LogSeries
from ..format import num, run_series
from .view import View

MIN_CANVAS = 4  # rows of data the legend may not squeeze below, if shorter labels can help it
HEADED_CANVAS = 8  # the heading line only where the data keep this many rows
ROOMY_CANVAS = 10  # with this many rows to spare, the x axis gets its label
FREE_DECADES = 4  # the bound and ghosts may widen the range this far beyond the run's own values
ROWS_PER_DECADE = 3  # ... as long as the run's own values keep this much detail
MOST_TICKS = 7
TICK_STEPS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000)  # decades between ticks
GAP = "  "  # between legend entries

# plotext's colour names as the ANSI colours its output uses (plotext._dict.color_codes)
_ANSI = {"gray": 8, "red": 1, "green": 2, "orange": 3, "blue": 4, "magenta": 5, "cyan": 6, "white": 15, "gray+": 7, "blue+": 12, "cyan+": 14}

# How each series of format.run_series is drawn: marker, colour, legend glyph,
# and whether the y range must hold all of it (the bound may run off an edge).
LOOK = {
    "|dL/dh|": ("braille", "blue+", "⠤", True),
    "|dL/dc|": ("+", "cyan", "+", True),
    "bound": ("dot", "green", "•", False),
    "h-path only": ("dot", "green", "•", False),  # LSTM: what the hidden path alone keeps at most, a ceiling like the bound
}
GHOST_MARKERS = ("░", "▒", "▓")  # up to three ghosts, each its own shade


@dataclass
class Series:
    """One thing drawn from per-step values (k = 1..len, NaN where nothing is drawn),
    or from explicit points `at` (k values) when `values` holds only those."""

    label: str
    values: np.ndarray
    marker: str = "braille"
    color: str | None = None
    glyph: str = ""  # what the legend shows for the marker; "" = no legend entry
    lines: bool = True  # a curve (points joined) or marks
    keep: bool = True  # the y range holds all of it; else it may run off the top or bottom
    key: object = None  # names it in the cache of log10 values; None: not cached (few points)
    main: bool = False  # its zeros and overflows are drawn on the floor and ceiling rows
    short: str | None = None  # the label where the legend must be brief
    at: np.ndarray | None = None
    rank: int = 1  # legend order: 0 |dL/dh|, 1 the run's other values, 2 clip marks, 3 the bound, 4 ghosts
    optional: bool = False  # left out (drawing and legend) where the legend must be brief


@dataclass(frozen=True)
class Entry:
    """A legend entry: a marker glyph in its colour, and words."""

    glyph: str
    color: str | None
    text: str
    short: str
    optional: bool = False  # left out of a brief legend (and its marks are not drawn)

    def plain(self, brief: bool) -> str:
        return f"{self.glyph} {self.short if brief else self.text}"


@dataclass
class Scene:
    """What one frame draws, independent of the widget's size."""

    heading: str
    series: list[Series] = field(default_factory=list)  # in draw order: the last on top
    steps: int = 2  # the x axis runs 1..steps
    threshold: float | None = None  # the clip threshold line, where it compares with a drawn series
    truncate: int | None = None  # truncated BPTT: steps k > truncate are cut


def even_log_ticks(
    lo: float, hi: float, rows: int, most: int = MOST_TICKS, prefer: tuple[float, float] | None = None, floor: bool = False, ceiling: bool = False
) -> tuple[float, float, list[int]]:
    """(bottom, top, ticks): a y range in log10 for a canvas of `rows` rows that
    holds [lo, hi], and the powers of ten to label, such that the ticks fall on
    evenly spaced rows. plotext puts the bottom on row 0, the top on row rows-1,
    so a tick every r rows needs the range to be (rows - 1) / r tick steps long
    and to start on a multiple of step / r. With `floor` (`ceiling`) the data
    keep the bottom (top) row clear, when there are 5 rows or more: zeros
    (overflows) are drawn there.

    Of the ranges that fit, the one with the least length x (1 + 4 x the data's
    distance from its centre, as a share of it): the finest detail that does
    not leave the data on one edge of an empty chart. `prefer` (the bound, the
    ghosts) counts as data where the range shows it, and pulls the range its
    way among those of one length."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        lo, hi = -1.0, 1.0
    rows = max(rows, 2)
    spaces = rows - 1
    below = 1 if floor and rows >= 5 else 0
    above = 1 if ceiling and rows >= 5 else 0
    least = 2 if rows >= 5 else 1  # rows from tick to tick: labels never on adjacent rows when there is room
    candidates = []
    for step in TICK_STEPS:
        for r in range(least, spaces + 1):
            if spaces // r + 1 > most + 1:
                continue
            unit = step / r  # decades per row
            if spaces * unit >= hi - lo + (below + above) * unit:
                candidates.append((spaces * unit, step, r))
    candidates.sort()

    def off_centre(bottom: float, top: float) -> float:
        a, b = lo, hi
        if prefer is not None:
            a, b = min(a, max(prefer[0], bottom)), max(b, min(prefer[1], top))
        return abs((a + b) - (bottom + top)) / (2 * (top - bottom))

    for need in (3, 2, 1) if rows >= 12 else (2, 1):  # ticks at the least: three where the rows allow
        best = None
        for length, step, r in candidates:
            if best is not None and length >= best[0]:
                break  # a score is never below the length
            unit = step / r
            m_high = math.floor(lo / unit - below + 1e-9)  # bottom = m * unit
            m_low = math.ceil(hi / unit + above - spaces - 1e-9)
            centre = (lo + hi) / (2 * unit) - spaces / 2

            def rank(m: int, unit: float = unit, centre: float = centre) -> tuple:
                shown = 0.0 if prefer is None else max(0.0, min(prefer[1], (m + spaces) * unit) - max(prefer[0], m * unit))
                return (-round(shown, 9), abs(m - centre), m)

            for m in sorted(range(m_low, m_high + 1), key=rank)[: 4 * rows]:
                first, last = -(-m // r), (m + spaces) // r  # multiples of r rows from the bottom's multiple
                if need <= last - first + 1 <= most:
                    bottom, top = m * unit, (m + spaces) * unit
                    score = length * (1 + 4 * off_centre(bottom, top))
                    if best is None or score < best[0]:
                        best = (score, bottom, top, [j * step for j in range(first, last + 1)])
                    break
        if best is not None:
            return best[1:]
    bottom, top = math.floor(lo), math.ceil(hi) + 1  # not reached for ranges a double can hold
    return bottom, top, [bottom, top]


def tick_label(decade: int) -> str:
    return "1" if decade == 0 else f"1e{decade}"


def x_ticks(steps: int, room: int) -> list[int]:
    """k = 1 and round multiples after it, as many as `room` columns hold."""
    most = max(2, min(10, room // (len(str(steps)) + 3)))
    raw = steps / most
    scale = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(s * scale for s in (1, 2, 5, 10) if s * scale >= raw)
    step = max(1, int(step))
    return [1] + [k for k in range(step, steps + 1, step) if k - 1 >= step / 2]


def wrap(entries: list[Entry], width: int, brief: bool) -> list[list[Entry]]:
    """The entries in lines of at most `width` columns, GAP apart: each in the
    first line with room for it (|dL/dh| stays first), so few lines are used."""
    lines: list[list[Entry]] = []
    used: list[int] = []
    for entry in entries:
        size = len(entry.plain(brief))
        line = next((i for i, u in enumerate(used) if u + len(GAP) + size <= width), None)
        if line is None:
            lines.append([entry])
            used.append(size)
        else:
            lines[line].append(entry)
            used[line] += len(GAP) + size
    return lines


@dataclass(eq=False)
class Drawn:
    """A series as this frame draws it: its points, and its cache (for the questions
    a legend asks: how many, where it leaves the range)."""

    series: Series
    k: np.ndarray
    y: np.ndarray
    cached: LogSeries | None
    count: int
    over_main: LogSeries | None = None  # a series that may run off: its ratio to |dL/dh|


class Ratio:
    """values / other, element by element, computed only for the slices asked for
    (LogSeries.update asks for the new steps only)."""

    def __init__(self, values: np.ndarray, other: np.ndarray) -> None:
        self.values, self.other = values, other
        self.size = min(values.size, other.size)

    def __getitem__(self, index: slice) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.values[index] / self.other[index]


def y_axis(drawn: list[Drawn], threshold: float | None, rows: int, floor: bool = False, ceiling: bool = False) -> tuple[float, float, list[int]]:
    """The y range and ticks (even_log_ticks) for a canvas of `rows` rows: all of
    the run's own values and the threshold; the bound and ghosts as far as
    FREE_DECADES beyond those if that costs at most half the rows per decade the
    run's own values would have (or leaves them ROWS_PER_DECADE), else in the
    room those leave. Beyond, they run off an edge rather than squash the run's
    values into a few rows. `floor`, `ceiling`: keep the bottom, top row for
    zeros, overflows."""

    def extent(parts: list[tuple[float, float]]) -> tuple[float, float] | None:
        return (min(a for a, _ in parts), max(b for _, b in parts)) if parts else None

    kept = extent([(float(d.y.min()), float(d.y.max())) for d in drawn if d.series.keep and d.y.size] + ([(math.log10(threshold),) * 2] if threshold else []))
    free = extent([(float(d.y.min()), float(d.y.max())) for d in drawn if not d.series.keep and d.y.size])
    if kept is None:
        kept, free = free or (-0.5, 0.5), None
    if free is None:
        return even_log_ticks(*kept, rows, floor=floor, ceiling=ceiling)
    lo, hi = kept
    narrow = even_log_ticks(lo, hi, rows, prefer=free, floor=floor, ceiling=ceiling)
    broad = even_log_ticks(min(lo, max(free[0], lo - FREE_DECADES)), max(hi, min(free[1], hi + FREE_DECADES)), rows, floor=floor, ceiling=ceiling)
    roomy = max(2 * (narrow[1] - narrow[0]), (rows - 1) / ROWS_PER_DECADE)
    return broad if broad[1] - broad[0] <= roomy + 1e-9 else narrow


def off_edges(series: LogSeries, n: int, bottom: float, top: float) -> tuple[str, str]:
    """Where the first n values leave [bottom, top], in words and briefly
    ("off the top from k = 45", "top k≥45"); empty strings if they never do."""
    words, brief = [], []
    last_drawn = series.last(n, above=-math.inf)
    for side, edge in (("top", {"above": top}), ("bottom", {"below": bottom})):
        first = series.first(n, **edge)
        if first is None:
            continue
        last = series.last(n, **edge)
        if last == last_drawn:
            words.append(f"off the {side} from k = {first + 1}")
            brief.append(f"{side} k≥{first + 1}")
        else:
            span = f"{first + 1}" if last == first else f"{first + 1}-{last + 1}"
            words.append(f"off the {side} at k = {span}")
            brief.append(f"{side} k={span}")
    return "; ".join(words), "; ".join(brief)


def said_of(d: Drawn, bottom: float, top: float, rows: int) -> tuple[str, str]:
    """What the legend says of a series that may run off an edge: where it does,
    or that it is hidden under |dL/dh| (within half a row of it all along). A
    value within half a row beyond an edge is drawn on the edge row."""
    half = 0.49 * (top - bottom) / max(rows - 1, 1)
    n = d.series.values.size
    words, brief = off_edges(d.cached, n, bottom - half, top + half)
    if not words and d.over_main is not None and d.over_main.size >= n:  # all of it beside |dL/dh|
        least, most = d.over_main.extent(n)
        if math.isfinite(least) and max(-least, most) < half:
            return "hidden under |dL/dh|: within a row of it", "hidden"
    return words, brief


def layout(entries: list[Entry], width: int, height: int, has_heading: bool, reserve: int = 0) -> tuple[list[list[Entry]], bool, int, bool, bool, bool]:
    """(legend lines, brief, canvas rows, heading shown, x label shown, x tick labels
    shown): the legend first (briefer if it would squeeze the data below
    MIN_CANVAS rows; at least `reserve` rows), then the x tick labels, the
    heading, the x axis label, as long as the data keep their rows."""
    fixed = 2  # the x axis and its tick labels
    brief = False
    lines = wrap(entries, width, brief)
    if len(lines) + fixed + MIN_CANVAS > height or any(len(e.plain(False)) > width for e in entries):
        brief = True
        lines = wrap([e for e in entries if not e.optional], width, brief)
    lines = lines[: max(0, height - fixed - 2)]
    canvas = height - fixed - max(len(lines), min(reserve, height - fixed - 2))
    xticks = canvas >= MIN_CANVAS  # else the data rows matter more than the step numbers
    canvas += not xticks
    heading = has_heading and canvas - 1 >= HEADED_CANVAS
    canvas -= heading
    xlabel = canvas - 1 >= ROOMY_CANVAS
    canvas -= xlabel
    return lines, brief, canvas, heading, xlabel, xticks


class NormChart(PlotextPlot):
    """Replotted from the app's redraw timer, never once per step.

    `show(view, token)` turns the view into a `Scene`; `replot()` draws the
    scene for the widget's current size (and again when the size changes).
    log10 of each series is cached between frames and extended by the new
    steps only; `token` names the run (it changes on reset or rebuild), so a
    cached value never outlives the run it came from.

    The text twin of what is drawn, for tests and readers: `heading`,
    `legend` (the entries' plain text), `notes` (series cut at an edge),
    `ticks` (canvas row from the bottom, label), `ylim`, `vlines`.
    """

    DEFAULT_CSS = """
    NormChart {
        height: 1fr;
        min-height: 8;
        background: $surface;
    }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._cache: dict = {}
        self._used: dict = self._cache  # the entries this frame uses; the others are dropped after it
        self._scene = Scene("")
        self._drawn_for = None  # the size the plot was laid out for
        self._lines: list[Text] = []  # heading and legend, above the plot
        self._plot_rows = 0
        self.heading = ""
        self.legend: list[str] = []
        self.notes: list[str] = []
        self.ticks: list[tuple[int, str]] = []
        self.ylim: tuple[float, float] | None = None
        self.vlines: list[float] = []

    # -- from a view to a scene -----------------------------------------------------

    def show(self, view: View, token) -> None:
        """The run's series up to the record on screen, the ghosts, what clipping
        rescued, the threshold and truncation. `token` names the run's current
        backward pass."""
        self._used = {}
        try:
            self._scene = self._scene_of(view, token)
            self.replot()
        finally:
            self._cache = self._used  # what this frame did not draw is dropped

    def _scene_of(self, view: View, token) -> Scene:
        run, k = view.run, view.shown
        name = view.preset.name
        if run is None:
            return Scene(f"{name}: building the run ...", steps=view.config.steps)
        c, rec, rule = view.config, run.records, run.clip_rule
        cols = rec.columns
        ghosts = [
            Series(ghost.label(c, name), ghost.values, GHOST_MARKERS[i % 3], "gray", GHOST_MARKERS[i % 3], keep=False, key=("ghost", id(ghost.values)), rank=4)
            for i, ghost in enumerate(view.ghosts)
        ]
        own, main = [], None
        for i, (label, values, marker) in enumerate(run_series(run, "braille")):
            marker, color, glyph, keep = LOOK.get(label, (marker, None, marker[:1], True))
            s = Series(label, values[:k], marker, color, glyph, keep=keep, key=(token, label), main=i == 0, rank=0 if i == 0 else 1 if keep else 3)
            if i == 0:
                main = s
            else:
                own.append(s)
        free = [s for s in own if not s.keep]  # the bound: under everything the run measured
        own = [s for s in own if s.keep]
        marks: list[Series] = []
        threshold = c.clip_threshold if rule is not None and rule.series is not None else None
        if rule is not None and rule.phase == END:
            own.append(Series("|grad| (params)", cols["param_norm"][:k], "*", "magenta", "*", key=(token, "param_norm"), short="|grad|"))
            marks += self._end_rescue(run, k, token)
        elif rule is not None:
            # A rule acting during the pass: each clipped step's norm before the clip (o), above the
            # curve where it was clipped (x). o is drawn last: where the two share a cell it still marks the clip.
            marks.append(Series("after the clip", rec.clip_after[:k], "x", "red", "", lines=False, key=(token, "clip_after")))
            marks.append(Series("clipped at {count} steps: before → after", rec.clip_before[:k], "o", "red", "o→x", lines=False, key=(token, "clip_before"), short="clipped {count}", rank=2))
        truncate = c.truncate if 0 < c.truncate < run.T else None
        heading = f"{name}: gradient norm per backward step k" if k else f"{name}: press space to play, n to step"
        return Scene(heading, ghosts + free + own + [main] + marks, run.T, threshold, truncate)

    def _end_rescue(self, run, k: int, token) -> list[Series]:
        """An end-of-pass rule: where its measure first crossed the threshold (on the
        running parameter-gradient norm), and at k = T the norm before and after
        the rescale, joined by a stroke."""
        rec, T = run.records, run.T
        norm = rec.columns["param_norm"]
        out = []
        crossed = self._cached((token, "clip_before"), rec.clip_before[: min(k, T - 1)]).first(min(k, T - 1), above=-math.inf)
        if crossed is not None:
            at = np.array([crossed + 1.0])
            out.append(Series(f"threshold crossed at k = {crossed + 1}", norm[crossed : crossed + 1], "!", "red", "!", lines=False, at=at, rank=2, optional=True))
        if k >= T and rec.clip_applied[T - 1]:
            before, after = float(rec.clip_before[T - 1]), float(rec.clip_after[T - 1])
            at = np.array([float(T), float(T)])
            out.append(Series("rescale", np.array([before, after]), "│", "red", "", at=at))
            words = f"rescaled {num(before)} → {num(after)}"
            out.append(Series(f"{words} at k = {T}", np.array([before]), "o", "red", "o→x", lines=False, at=at[:1], short=f"{num(before)}→{num(after)}", rank=2))
            out.append(Series("after the rescale", np.array([after]), "x", "red", "", lines=False, at=at[1:]))
        return out

    def _cached(self, key, values: np.ndarray) -> LogSeries:
        """The cache entry of a series, brought up to date with its new values."""
        entry = self._cache.get(key)
        if entry is None:
            entry = LogSeries(values)
        entry.update(values)
        self._used[key] = entry
        return entry

    # -- from a scene to the plot, for this size ----------------------------------------

    def replot(self) -> None:
        """Lay the scene out for the widget's size and draw it: plt.clear_data(), plot, refresh()."""
        self._draw(self._scene)
        self.refresh()

    def _draw(self, scene: Scene) -> None:
        width, height = self.size
        self._drawn_for = (width, height)
        plt = self.plt
        plt.clear_data()
        canvas_width = max(8, width - 8)  # less the y labels and axis
        # Each series as points to draw, with what it cannot show on a log axis.
        drawn: list[Drawn] = []
        main = next((s for s in scene.series if s.main), None)
        zeros = overflow = np.empty(0, dtype=np.int64)
        for s in scene.series:
            if s.at is not None:
                with np.errstate(all="ignore"):
                    y = np.log10(np.where(s.values > 0, s.values, np.nan))
                ok = np.isfinite(y)
                drawn.append(Drawn(s, s.at[ok], y[ok], None, int(np.count_nonzero(ok))))
                continue
            cached = self._cached(s.key if s.key is not None else ("once", id(s)), s.values)
            n = s.values.size
            k, y = cached.points(n, canvas_width)
            if s.main:
                zeros, overflow = cached.zeros(n), cached.not_finite(n)
            over = None
            if not s.keep and main is not None:
                over = self._cached((s.key, main.key), Ratio(s.values, main.values))
            drawn.append(Drawn(s, k, y, cached, cached.count(n) if "{count}" in s.label else 0, over))
        # The legend says where a series runs off an edge, the edges depend on the
        # rows the legend leaves: settle the two. The legend's rows only grow from
        # pass to pass (a note that costs a row may bring the series back in), so
        # this ends, in practice after one more pass.
        cut: dict[int, tuple[str, str]] = {}
        reserve = 0
        for _ in range(height + 2):
            entries = self._legend(scene, drawn, zeros, overflow, cut)
            lines, brief, canvas, heading, xlabel, xticks = layout(entries, width, height, bool(scene.heading), reserve)
            bottom, top, ticks = y_axis(drawn, scene.threshold, canvas, floor=zeros.size > 0, ceiling=overflow.size > 0)
            now = {id(d): said_of(d, bottom, top, canvas) for d in drawn if not d.series.keep and d.cached is not None}
            now = {key: note for key, note in now.items() if note[0]}
            if now == cut:
                break
            cut, reserve = now, max(reserve, len(lines))
        self._text_rows(scene.heading, lines, brief, heading, height - canvas - 1 - xticks - xlabel, height, width, drawn, cut)
        steps = max(2, scene.steps)
        self._axes("backward step k" if xlabel else None, steps, x_ticks(steps, canvas_width) if xticks else [], bottom, top, ticks, canvas)
        if scene.threshold:
            plt.hline(math.log10(scene.threshold), "orange")
        self.vlines = []
        if scene.truncate:
            self.vlines.append(scene.truncate + 0.5)  # between the last step it keeps whole and the first it cuts
            plt.vline(scene.truncate + 0.5, "gray+")
        self._plot_series(drawn, brief, zeros, overflow, bottom, top, canvas_width)

    def _text_rows(self, heading_text: str, lines: list[list[Entry]], brief: bool, heading: bool, rows: int, height: int, width: int, drawn: list[Drawn], cut: dict) -> None:
        """The heading and the legend above the plot, `rows` of them in all (the
        ones the legend does not fill are kept blank), and their text twin."""
        self._lines = ([Text(heading_text[:width], style="bold")] if heading else []) + [self._legend_line(line, brief, width) for line in lines]
        self._lines += [Text()] * (rows - len(self._lines))  # rows kept for the legend, unused
        self._plot_rows = height - len(self._lines)
        self.heading = heading_text
        self.legend = [e.plain(brief) for line in lines for e in line]
        self.notes = [f"{d.series.label} {cut[id(d)][0]}" for d in drawn if id(d) in cut]

    def _axes(self, x_label: str | None, x_max: int, x_tick_list: list[int], bottom: float, top: float, ticks: list[int], canvas: int) -> None:
        """The axes: left and bottom only; y ticks (decades) on evenly spaced rows; x from 1 to x_max."""
        plt = self.plt
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        plt.xlabel(x_label)
        self.ylim = (bottom, top)
        plt.ylim(bottom, top)
        plt.yticks(ticks, [tick_label(t) for t in ticks])
        spaces = max(canvas - 1, 1)
        self.ticks = [(round(spaces * (t - bottom) / (top - bottom)), tick_label(t)) for t in ticks]
        plt.xlim(1, x_max)
        plt.xticks(x_tick_list)
        # An invisible point, so plotext draws both axes with their labels even with no data yet.
        plt.scatter([1], [bottom], marker=" ")

    def _plot_series(self, drawn: list[Drawn], brief: bool, zeros: np.ndarray, overflow: np.ndarray, bottom: float, top: float, canvas_width: int) -> None:
        """The series (the optional ones left out of a brief legend), then the
        marks of exact zeros on the floor and of non-finite values at the top."""
        plt = self.plt
        for d in drawn:
            if d.y.size and not (brief and d.series.optional):
                (plt.plot if d.series.lines else plt.scatter)(d.k.tolist(), d.y.tolist(), marker=d.series.marker, color=d.series.color)
        for where, level, marker in ((zeros, bottom, "v"), (overflow, top, "^")):
            if where.size:
                pick = where[np.linspace(0, where.size - 1, min(where.size, canvas_width)).astype(int)] + 1
                plt.scatter(pick.tolist(), [level] * pick.size, marker=marker, color="red")

    def _legend(self, scene: Scene, drawn: list[Drawn], zeros: np.ndarray, overflow: np.ndarray, cut: dict) -> list[Entry]:
        """The legend entries: |dL/dh| first, then the run's other values, the clip
        marks, the bound, the ghosts, the lines; a series cut at an edge says where."""
        entries = self._series_entries(drawn, cut)
        if scene.threshold:
            entries.append(Entry("─", "orange", f"clip threshold {scene.threshold:g}", f"clip {scene.threshold:g}"))
        if scene.truncate:
            t = scene.truncate
            entries.append(Entry("│", "gray+", f"truncate {t} (k > {t} cut)", f"truncate {t}"))
        if zeros.size:
            entries.append(Entry("v", "red", f"{zeros.size} zero: on the floor", f"{zeros.size} zero"))
        if overflow.size:
            entries.append(Entry("^", "red", f"{overflow.size} overflow: on the ceiling", f"{overflow.size} overflow"))
        return entries

    @staticmethod
    def _series_entries(drawn: list[Drawn], cut: dict) -> list[Entry]:
        """A legend entry per drawn series with a glyph, by rank; one cut at an edge says where."""
        entries = []
        for d in sorted(drawn, key=lambda d: d.series.rank):
            s = d.series
            if not s.glyph:
                continue
            text, short = s.label.replace("{count}", str(d.count)), (s.short or s.label).replace("{count}", str(d.count))
            if id(d) in cut:
                note, brief = cut[id(d)]
                text, short = f"{text} ({note})", f"{short} ({brief})"
            entries.append(Entry(s.glyph, s.color, text, short, s.optional))
        return entries

    def _legend_line(self, line: list[Entry], brief: bool, width: int) -> Text:
        """One line of the legend, cut to the width (an entry wider than the chart ends in …)."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, entry in enumerate(line):
            if i:
                text.append(GAP)
            code = _ANSI.get(entry.color) if entry.color else None
            text.append(entry.glyph, Style(color=Color.from_ansi(code)) if code is not None else None)
            text.append(" " + (entry.short if brief else entry.text))
        text.truncate(max(width, 1), overflow="ellipsis")
        return text

    # -- rendering ---------------------------------------------------------------------

    def render(self):
        """The heading and legend lines, then plotext's plot in the rows left."""
        if self._drawn_for != (self.size.width, self.size.height):
            self._draw(self._scene)  # laid out for another size: the ticks would not fall on rows
        rows = max(1, self._plot_rows)
        self._plot.plotsize(self.size.width, rows)
        self._plot._set_size(self.size.width, rows)  # as PlotextPlot.render does (textual-plotext issue 5)
        self._plot.theme(self._get_plotext_theme_name(self.app.theme))
        plot = Text.from_ansi(self._plot.build())
        out = Text("\n").join([*self._lines, plot])
        out.no_wrap = True  # one rendered row per line, or the plot's rows would shift
        return out
