"""The gradient heatmap as lines of Rich Text: the dashboard's heatmap screen
and `bptt-lab heatmap --plot` draw the same picture.

Backward step k across (k = 0 is dL/dh_T, where the pass starts; record k is
h_{T-k}, as the chart's x axis), units down. A cell is log10 |dL/dh_t| of a
unit (||dL/dh_t[:, j]|| / N, engine/gradient_map.py); where the screen has
fewer columns than steps, or fewer rows than units, a cell is the largest
value of its bin (max of log10: a gradient that still arrives anywhere in the
bin shows). Under it, the strip of ||dL/dx_t|| / N: x_t sits in the column of
h_t, the state that read it (k = T - t), with the word of a text run below.

One colour scale in powers of ten for both, LEVELS shades from the smallest
value on screen to the largest, each level a whole number of decades; every
level has its own character as well as its colour, so the picture reads
without colour (NO_COLOR, a pipe): `0` is a gradient that is exactly zero
(nothing arrives), `!` one that is not finite, a blank a step not computed yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.text import Text

from engine.gradient_map import bin_starts, binned

GLYPHS = ".░▒▓█"  # level 0 (smallest) .. 4 (largest)
LEVELS = len(GLYPHS)
COLOURS = ("#4b2a8a", "#3b6fb6", "#21a18c", "#7cc653", "#fde725")  # viridis-like, dark to bright
ZERO, NOT_FINITE = "0", "!"
ZERO_STYLE, NOT_FINITE_STYLE = "grey50", "bold red"
MIN_WIDTH, MIN_HEIGHT = 60, 16
GUTTER = 7  # the row labels: unit numbers, "dL/dx"
MAX_CELL = 12  # characters per step at most (room for a word)
MAX_ROWS_PER_UNIT = 3


@dataclass(frozen=True)
class Scale:
    """LEVELS levels of `decades` decades each, the lowest starting at 10**low."""

    low: int
    decades: int

    @classmethod
    def over(cls, *arrays: np.ndarray) -> Scale:
        """The scale that holds every positive finite value of these arrays."""
        logs = [np.log10(a[np.isfinite(a) & (a > 0)]) for a in arrays]
        logs = [x for x in logs if x.size]
        if not logs:
            return cls(-LEVELS, 1)
        lo, hi = math.floor(min(x.min() for x in logs)), math.floor(max(x.max() for x in logs)) + 1
        decades = max(1, -(-(hi - lo) // LEVELS))
        return cls(hi - LEVELS * decades, decades)

    def levels(self, values: np.ndarray) -> np.ndarray:
        """Each value's level 0..LEVELS-1; -1 exactly zero, -2 not finite, -3 not computed (a negative pad)."""
        with np.errstate(all="ignore"):
            lv = np.floor((np.log10(values) - self.low) / self.decades)
        out = np.clip(np.nan_to_num(lv, nan=0.0, posinf=0.0, neginf=0.0), 0, LEVELS - 1).astype(int)
        out[values == 0] = -1
        out[~np.isfinite(values)] = -2
        out[values < 0] = -3
        return out

    def edge(self, level: int) -> str:
        return f"1e{self.low + level * self.decades:+d}".replace("+", "")

    def legend(self) -> Text:
        out = Text("scale ")
        for level, glyph in enumerate(GLYPHS):
            out.append(glyph * 2, style=COLOURS[level])
            out.append(f"{self.edge(level)} ")
        out.append(f"to {self.edge(LEVELS)}  ")
        out.append(ZERO, style=ZERO_STYLE)
        out.append(" zero  ")
        out.append(NOT_FINITE, style=NOT_FINITE_STYLE)
        out.append(" not finite")
        return out


def _glyph(level: int) -> tuple[str, str]:
    if level >= 0:
        return GLYPHS[level], COLOURS[level]
    return {-1: (ZERO, ZERO_STYLE), -2: (NOT_FINITE, NOT_FINITE_STYLE)}.get(level, (" ", ""))


def _cells(levels, width: int) -> Text:
    """One row of cells, `width` characters each, runs of one level appended at once."""
    out = Text()
    i, n = 0, len(levels)
    while i < n:
        j = i
        while j < n and levels[j] == levels[i]:
            j += 1
        glyph, style = _glyph(int(levels[i]))
        out.append(glyph * ((j - i) * width), style=style)
        i = j
    return out


@dataclass(frozen=True)
class Grid:
    """Where the steps and the units go on the screen."""

    starts: np.ndarray  # first stored column of each screen column
    cell: int  # characters per screen column
    unit_starts: np.ndarray  # first unit of each screen row block
    rows_per: int  # lines per row block


def grid(total_columns: int, H: int, width: int, rows: int, stride: int) -> Grid:
    room = max(1, width - GUTTER)
    starts = bin_starts(total_columns, room)
    cell = max(1, min(room // len(starts), MAX_CELL))
    unit_starts = bin_starts(H, max(1, rows))
    rows_per = max(1, min(rows // len(unit_starts), MAX_ROWS_PER_UNIT))
    return Grid(starts, cell, unit_starts, rows_per)


def _label(text: str) -> Text:
    return Text(text[: GUTTER - 1].ljust(GUTTER), style="dim")


def _unit_labels(g: Grid, H: int) -> list[str]:
    """Unit numbers (1-based) on the first line of the first and last block and every fifth block."""
    blocks = len(g.unit_starts)
    ends = list(g.unit_starts[1:]) + [H]
    labels = []
    for b, (lo, hi) in enumerate(zip(g.unit_starts, ends)):
        shown = b in (0, blocks - 1) or b % 5 == 0
        labels.append((f"{lo + 1}" if hi - lo == 1 else f"{lo + 1}-{hi}") if shown else "")
    return labels


def _k_axis(g: Grid, stride: int) -> Text:
    """k at the first step of a screen column, where the label fits."""
    line, at = [" "] * (len(g.starts) * g.cell), 0
    for i, c in enumerate(g.starts):
        label = str(int(c) * stride)
        pos = i * g.cell
        if pos >= at and pos + len(label) <= len(line):
            line[pos : pos + len(label)] = label
            at = pos + len(label) + 2
    return _label("k") + Text("".join(line), style="dim")


def _short(v: float) -> str:
    if not math.isfinite(v):
        return "inf" if v > 0 else "nan"
    if v == 0:
        return "0"
    return f"{v:.2g}" if 1e-3 <= v < 100 else f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")


def _under(g: Grid, texts: list[str]) -> Text:
    """One text per screen column, cut to the column's width less one."""
    return Text("".join(t[: g.cell - 1].ljust(g.cell) for t in texts))


def picture(gmap, shown: int, width: int, height: int, words: list[str] | None = None) -> list[Text]:
    """The heatmap of records 0..shown of `gmap` (engine GradientMap) in width x height characters."""
    if width < MIN_WIDTH or height < MIN_HEIGHT - 6:
        return [Text(f"Too small for the heatmap: it needs at least {MIN_WIDTH} x {MIN_HEIGHT}.")]
    units, _ = gmap.columns(shown)
    dx = gmap.input_norms(shown)
    total, stride, H = gmap.units.shape[0], gmap.stride, gmap.H
    text_rows = 2 if words else 1  # the words, and the numbers when they fit; else the k of each input
    g = grid(total, H, width, height - 3 - text_rows, stride)
    cols, _ = binned(units, len(g.starts), axis=0, total=total)  # (screen columns so far, H)
    cols, _ = binned(cols, len(g.unit_starts), axis=1)
    strip = _strip_values(g, dx, stride)
    scale = Scale.over(cols, strip)  # what is on screen
    levels = scale.levels(_padded(cols, len(g.starts)))
    lines = [scale.legend()]
    for label, row in zip(_unit_labels(g, H), levels.T):
        for i in range(g.rows_per):
            lines.append(_label(label if i == 0 else "") + _cells(row, g.cell))
    lines.append(_k_axis(g, stride))
    lines.extend(_strip(g, scale, strip, dx, gmap.T, stride, words))
    return lines


def _padded(values: np.ndarray, n: int) -> np.ndarray:
    """values (m, ...) followed by n - m entries of -1: not computed yet."""
    return np.concatenate([values, np.full((n - values.shape[0], *values.shape[1:]), -1.0)])


def _strip_values(g: Grid, dx: np.ndarray, stride: int) -> np.ndarray:
    """||dL/dx_t|| / N per screen column computed so far (dx[k] is x_{T-k}, under h_{T-k}),
    the largest of the column's steps."""
    k_starts = g.starts * stride
    have = k_starts[k_starts < dx.size]
    return np.maximum.reduceat(dx, have) if have.size else np.empty(0)


def _strip(g: Grid, scale: Scale, per: np.ndarray, dx: np.ndarray, T: int, stride: int, words: list[str] | None) -> list[Text]:
    """The strip under the map (k = T, h_0, has no input); the words (and numbers) of a text run under it."""
    out = [_label("dL/dx") + _cells(scale.levels(_padded(per, len(g.starts))), g.cell)]
    exact = stride == 1 and len(g.starts) == T + 1  # one screen column per step
    if words and exact and g.cell >= 3:
        out.append(_label("word") + _under(g, [words[T - k - 1] if k < T else "-" for k in range(T + 1)]))
        if g.cell >= 6:
            out.append(_label("") + _under(g, [_short(float(v)) for v in dx]))
    return out
