"""The phase diagram drawn as text: one coloured cell per grid cell (rows: the
y values, columns: the x values), the lines sigma_max*gamma = 1 and spectral
radius = 1 as marks in the cells where they cross, the axes labelled with
their values, and a colour scale in log10 growth per step. Used by
`bptt-lab sweep --plot` and by the dashboard's sweep screen.

The colour is diverging (vanishing blue, exploding red, white at growth 1);
without colour each cell is a glyph instead: vanishing . - v V and exploding
' + x X, from weak to strong, so the picture reads under NO_COLOR too.
"""

from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text

from engine.sweep import Sweep

VANISH = ".-vV"  # weak -> strong
EXPLODE = "'+xX"
UNKNOWN = "?"
MARK_SIGMA, MARK_RADIUS, MARK_BOTH = "|", "o", "*"
WHITE, BLUE, RED, GREY = (247, 247, 247), (33, 102, 172), (178, 24, 43), (120, 120, 120)
MAX_CELL_WIDTH = 3


def color_max(sweep: Sweep) -> float:
    """The colour scale's end: the largest |log10 growth| of a finite cell,
    rounded up to 1, 1.5, 2, 3 or 5 times a power of ten (at least 0.01)."""
    finite = [abs(c["log10_growth"]) for row in sweep.cells for c in row if math.isfinite(c["log10_growth"])]
    top = max(finite, default=0.0)
    if top <= 0.01:
        return 0.01
    power = 10.0 ** math.floor(math.log10(top))
    return next(m * power for m in (1, 1.5, 2, 3, 5, 10) if m * power >= top * (1 - 1e-12))


def level(g: float, gmax: float) -> int | None:
    """-4..4: the strength of vanishing (< 0) or exploding (> 0); 0 at growth 1 exactly; None: undetermined."""
    if math.isnan(g):
        return None
    if g == 0:
        return 0
    n = 4 if math.isinf(g) else max(1, min(4, math.ceil(4 * abs(g) / gmax)))
    return n if g > 0 else -n


def rgb(g: float, gmax: float) -> tuple[int, int, int]:
    if math.isnan(g):
        return GREY
    t = 0.15 + 0.85 * min(1.0, abs(g) / gmax) if g != 0 else 0.0
    end = RED if g > 0 else BLUE
    return tuple(round(w + (e - w) * t) for w, e in zip(WHITE, end))


def glyph(g: float, gmax: float) -> str:
    n = level(g, gmax)
    if n is None:
        return UNKNOWN
    if n == 0:
        return " "
    return EXPLODE[n - 1] if n > 0 else VANISH[-n - 1]


def marks(sweep: Sweep) -> dict[tuple[int, int], str]:
    """(row, column) -> the mark of a line crossing that cell: the cell nearest
    the interpolated crossing (in index units between its two neighbours)."""
    out: dict[tuple[int, int], str] = {}
    along = sweep.along
    if along is None:
        return out
    axis = sweep.x if along == "x" else sweep.y
    lines = sweep.lines()
    for key, mark in (("sigma_gamma", MARK_SIGMA), ("spectral_radius", MARK_RADIUS)):
        for strip, points in enumerate(lines[key]):
            for p in points:
                at = _nearest(axis.values, p)
                cell = (strip, at) if along == "x" else (at, strip)
                out[cell] = MARK_BOTH if out.get(cell, mark) != mark else mark
    return out


def _nearest(values, p: float) -> int:
    for j in range(len(values) - 1):
        a, b = values[j], values[j + 1]
        if min(a, b) <= p <= max(a, b):
            return j + round((p - a) / (b - a)) if b != a else j
    return 0 if abs(p - values[0]) <= abs(p - values[-1]) else len(values) - 1


def cell_width(sweep: Sweep, width: int) -> int:
    """Characters per cell: up to 3, or for a list of choices across, as wide as its longest name."""
    x = sweep.x
    most = MAX_CELL_WIDTH if x.numeric else max(MAX_CELL_WIDTH, 1 + max(len(x.label(j)) for j in range(len(x.values))))
    return max(1, min(most, (width - label_width(sweep) - 1) // len(x.values)))


def label_width(sweep: Sweep) -> int:
    return max(len(sweep.y.field), *(len(sweep.y.label(i)) for i in range(len(sweep.y.values))))


def grid_lines(sweep: Sweep, width: int, color: bool, cursor: tuple[int, int] | None = None, row_height: int = 1) -> list[Text]:
    """`row_height` lines per y value, top to bottom in the axis's order: its
    label (on the middle line), then the cells; the first line names the axis."""
    gmax, w, lw = color_max(sweep), cell_width(sweep, width), label_width(sweep)
    marked = marks(sweep)
    lines = [Text(sweep.y.field.rjust(lw), style="bold")]
    for i, row in enumerate(sweep.cells):
        for k in range(row_height):
            line = Text((sweep.y.label(i) if k == row_height // 2 else "").rjust(lw) + " ")
            for j, cell in enumerate(row):
                line.append(*_cell(cell["log10_growth"], gmax, w, color, marked.get((i, j)), cursor == (i, j)))
            lines.append(line)
    return lines


def _cell(g: float, gmax: float, w: int, color: bool, mark: str | None, under_cursor: bool) -> tuple[str, Style]:
    if color:
        r, gr, b = rgb(g, gmax)
        dark = 0.299 * r + 0.587 * gr + 0.114 * b < 140
        text = (mark or " ").ljust(w) if w > 1 or mark else " " * w
        style = Style(bgcolor=f"rgb({r},{gr},{b})", color="white" if dark else "black", bold=True, reverse=under_cursor)
        return text, style
    text = (mark or glyph(g, gmax)) + glyph(g, gmax) * (w - 1)
    return text, Style(bold=mark is not None, reverse=under_cursor)


def x_axis_lines(sweep: Sweep, width: int) -> list[str]:
    """The x values under their columns (as many as fit without touching), and the axis's name."""
    w, lw = cell_width(sweep, width), label_width(sweep)
    n = len(sweep.x.values)
    buf = [" "] * (lw + 1 + n * w + 12)
    longest = max(len(sweep.x.label(j)) for j in range(n))
    every = max(1, math.ceil((longest + 1) / w))
    for j in range(0, n, every):
        label, at = sweep.x.label(j), lw + 1 + j * w
        buf[at : at + len(label)] = list(label)
    ticks = "".join(buf).rstrip()
    return [ticks, " " * (lw + 1) + f"{sweep.x.field} ->"]


def scale_line(sweep: Sweep, color: bool) -> Text:
    """The colour scale in log10 growth per step, from -gmax (vanishing) to +gmax (exploding)."""
    gmax = color_max(sweep)
    steps = [-gmax * k / 4 for k in range(4, 0, -1)] + [0.0] + [gmax * k / 4 for k in range(1, 5)]
    line = Text(f"log10 growth/step  -{gmax:g} ")
    for g in steps:
        line.append(*_cell(g, gmax, 2, color, None, False))
    line.append(f" +{gmax:g}  (x{10 ** -gmax:.3g}..x1..x{10 ** gmax:.3g} a step)")
    return line


def legend(short: bool = False) -> str:
    if short:
        return f"{MARK_SIGMA} σmax·γ = 1 (< 1: vanishing guaranteed)  {MARK_RADIUS} radius = 1  {MARK_BOTH} both"
    return (
        f"{MARK_SIGMA} sigma_max*gamma = 1 (where it is < 1, vanishing is guaranteed)   "
        f"{MARK_RADIUS} spectral radius = 1   {MARK_BOTH} both"
    )


def chart(sweep: Sweep, title: str, width: int, color: bool) -> Text:
    """The whole picture for stdout: title, grid, x axis, colour scale, legend."""
    out = Text()
    out.append(title + "\n", style="bold")
    for line in grid_lines(sweep, width, color):
        out.append_text(line)
        out.append("\n")
    out.append("\n".join(x_axis_lines(sweep, width)) + "\n")
    out.append_text(scale_line(sweep, color))
    out.append("\n" + legend() + ("" if color else f"\nno colour: vanishing {VANISH} and exploding {EXPLODE}, weak to strong; ? undetermined"))
    return out
