"""How the cliff is drawn (engine/cliff.py computes it), shared by the dashboard's
screen and `bptt-lab cliff --plot`:

- `surface_lines`: E_50 or |grad| over (w, b) as a terminal heatmap, b across
  and w up, a cell per bucket of grid points (|grad| keeps each bucket's
  largest, so the thin wall survives; E the value at its centre), a level
  per half decade shown by colour and by a glyph of the ramp " .:-=+*#%@"
  (readable under NO_COLOR), the two SGD trajectories and their start on
  top, and the scale in powers of ten beneath;
- `bifurcation_into`: the fixed points against b into a plotext figure
  (the dashboard's PlotextPlot or plotext itself);
- `facts`: the numbers beside the pictures, as text.
"""

from __future__ import annotations

import math

import numpy as np
from rich.style import Style
from rich.text import Text

from engine import cliff as model

GLYPHS = " .:-=+*#%@"  # level 0 (lowest) .. 9
PALETTE = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")  # viridis
MOST_DECADES = 5
AXIS = 7  # the w labels' column
# Marks over the map, least to most important (a later one wins a cell).
PATH, CLIPPED, PLAIN, START = "·", "o", "X", "S"
MARK_STYLE = {PATH: "bold white", CLIPPED: "bold black on #7fdbff", PLAIN: "bold white on #d7005f", START: "bold black on white"}
MAPS = {"E": "E_50 = (σ(x_50) - 0.7)²", "grad": "|grad E_50| = |(dE/dw, dE/db)|"}


def decade_range(values: np.ndarray) -> tuple[int, int]:
    """Whole powers of ten around the positive values, at most MOST_DECADES apart (the top kept)."""
    positive = values[(values > 0) & np.isfinite(values)]
    if not positive.size:
        return -1, 0
    hi = math.ceil(math.log10(float(positive.max())))
    lo = max(math.floor(math.log10(float(positive.min()))), hi - MOST_DECADES)
    return (lo, hi) if lo < hi else (hi - 1, hi)


def levels(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The level 0..9 of each value on a log10 scale from 10^lo to 10^hi (below: 0)."""
    with np.errstate(all="ignore"):
        logs = np.log10(np.where(values > 0, values, 10.0 ** (lo - 1)))
    n = len(GLYPHS)
    return np.clip(np.floor((logs - lo) / (hi - lo) * n), 0, n - 1).astype(int)


def _buckets(n: int, cells: int) -> np.ndarray:
    """The first grid index of each of `cells` equal buckets over n points (repeated when cells > n)."""
    return np.minimum((np.arange(cells) * n) // cells, n - 1)


def resample(values: np.ndarray, rows: int, cols: int, keep_max: bool) -> np.ndarray:
    """values (nw, nb) -> (rows, cols), row 0 the largest w: each cell the largest
    value of its bucket (keep_max) or the value at its centre."""
    nw, nb = values.shape
    if keep_max and nw >= rows and nb >= cols:
        out = np.maximum.reduceat(np.maximum.reduceat(values, _buckets(nw, rows), axis=0), _buckets(nb, cols), axis=1)
    else:
        wi = np.minimum(((np.arange(rows) + 0.5) * nw / rows).astype(int), nw - 1)
        bj = np.minimum(((np.arange(cols) + 0.5) * nb / cols).astype(int), nb - 1)
        out = values[np.ix_(wi, bj)]
    return out[::-1]


def _cell_style(level: int) -> Style:
    """The level's colour, its glyph a shade darker (light colours) or lighter (dark ones):
    a texture in colour, the whole message without it."""
    bg = PALETTE[level]
    rgb = [int(bg[i : i + 2], 16) for i in (1, 3, 5)]
    toward = 0 if level >= 6 else 255
    fg = "#" + "".join(f"{round(v + 0.35 * (toward - v)):02x}" for v in rgb)
    return Style(color=fg, bgcolor=bg)


def _mark_style(mark: str, level: int) -> Style:
    """A mark's own style; the path's dots keep the cell's colour beneath."""
    style = Style.parse(MARK_STYLE[mark])
    return style + Style(bgcolor=PALETTE[level]) if mark == PATH else style


def _place(c: model.Cliff, point, rows: int, cols: int) -> tuple[int, int] | None:
    """(row, col) of a (w, b) point on the map, or None off it."""
    (w0, w1), (b0, b1) = c.setting.w_range, c.setting.b_range
    w, b = float(point[0]), float(point[1])
    if not (w0 <= w <= w1 and b0 <= b <= b1):
        return None
    col = min(int((b - b0) / (b1 - b0) * cols), cols - 1)
    row = rows - 1 - min(int((w - w0) / (w1 - w0) * rows), rows - 1)
    return row, col


def marks(c: model.Cliff, rows: int, cols: int) -> dict[tuple[int, int], str]:
    """The trajectories' cells: the first unclipped step's path dotted, then the points."""
    out: dict[tuple[int, int], str] = {}
    a, z = c.plain.points[0], c.plain.points[1]
    span = 2 * (rows + cols)
    for f in np.linspace(0.0, 1.0, span):
        at = _place(c, a + f * (z - a), rows, cols)
        if at is not None:
            out[at] = PATH
    for mark, points in ((CLIPPED, c.clipped.points[1:]), (PLAIN, c.plain.points[1:]), (START, c.plain.points[:1])):
        for p in points:
            at = _place(c, p, rows, cols)
            if at is not None:
                out[at] = mark
    return out


def surface_lines(c: model.Cliff, which: str, width: int, height: int) -> list[Text]:
    """The map of E ("E") or |grad| ("grad") in `width` x `height` cells: the map
    and its w axis, the b axis, the scale and its labels (3 lines below the map)."""
    s = c.surface
    values = s.E if which == "E" else s.grad_norm
    rows, cols = max(1, height - 3), max(4, width - AXIS)
    lo, hi = decade_range(values)
    grid = levels(resample(values, rows, cols, keep_max=which == "grad"), lo, hi)
    on_top = marks(c, rows, cols)
    lines = []
    (w0, w1), (b0, b1) = c.setting.w_range, c.setting.b_range
    labelled = {0: f"w {w1:.3g}", rows - 1: f"{w0:.3g}"}
    at = _place(c, (c.bifurcation.w, b0), rows, cols)
    if at is not None and at[0] not in labelled:
        labelled[at[0]] = f"{c.bifurcation.w:g} ─"  # the row of the fixed points' w
    for r in range(rows):
        line = Text(labelled[r].rjust(AXIS - 1) + " " if r in labelled else " " * AXIS)
        for col in range(cols):
            mark = on_top.get((r, col))
            level = int(grid[r, col])
            line.append(mark or GLYPHS[level], _mark_style(mark, level) if mark else _cell_style(level))
        lines.append(line)
    lines.append(_b_axis(b0, b1, cols))
    lines.extend(scale_lines(lo, hi, width))
    return lines


def _b_axis(b0: float, b1: float, cols: int) -> Text:
    mid = f"b {(b0 + b1) / 2:.3g}"
    left, right = f"{b0:.3g}", f"{b1:.3g}"
    gap = cols - len(left) - len(right) - len(mid)
    if gap < 2:
        return Text(" " * AXIS + (left + " b " + right).center(cols))
    return Text(" " * AXIS + left + " " * (gap // 2) + mid + " " * (gap - gap // 2) + right)


def scale_lines(lo: int, hi: int, width: int) -> list[Text]:
    """The levels as cells (colour and glyph) with the powers of ten beneath."""
    n = len(GLYPHS)
    cell = max(2, min(6, (width - AXIS - 2) // n))
    bar = Text(" " * AXIS)
    for level in range(n):
        bar.append(GLYPHS[level] * cell, _cell_style(level))
    labels = [" "] * (AXIS + n * cell + 6)
    for d in range(lo, hi + 1):
        text = power(d)
        x = AXIS + round((d - lo) / (hi - lo) * n * cell) - (len(text) // 2 if d > lo else 0)
        x = min(x, len(labels) - len(text))
        if all(ch == " " for ch in labels[max(0, x - 1) : x + len(text)]):
            labels[x : x + len(text)] = text
    return [bar, Text("".join(labels).rstrip())]


def power(d: int) -> str:
    """10^d as the scale labels it: 1e-5, 1, 1e2."""
    return "1" if d == 0 else f"1e{d}"


def below_scale(c: model.Cliff, which: str) -> str | None:
    """What the map of `which` holds under its scale's lowest power of ten, or
    None: those values are drawn as the lowest level (blank), which the scale
    alone does not say (the scale spans at most MOST_DECADES decades)."""
    values = c.surface.E if which == "E" else c.surface.grad_norm
    lo, _ = decade_range(values)
    below = values[~(values >= 10.0**lo)]  # zeros and non-finite values too
    if not below.size:
        return None
    finite = below[np.isfinite(below)]
    least = f" (down to {float(finite.min()):.1e})".replace("e-0", "e-").replace("e+0", "e") if finite.size else ""  # 9.1e-7, as the scale writes powers
    return f"blank: the lowest level, and {'E' if which == 'E' else '|grad|'} below {power(lo)} too{least}"


def legend(c: model.Cliff) -> list[tuple[str, str]]:
    """(mark, what it means) of the marks on the maps."""
    s, plain = c.setting, c.plain
    w1, b1 = plain.points[1]
    where = "" if _place(c, plain.points[1], 10, 10) else " (off the map)"
    return [
        (START, f"start (w, b) = ({s.start[0]:g}, {s.start[1]:g})"),
        (PLAIN, f"SGD lr {s.lr:g}, no clipping: first step {plain.first_step():.3g} long, to ({w1:.3g}, {b1:.3g}){where}"),
        (PATH, "that first step's path"),
        (CLIPPED, f"SGD lr {s.lr:g}, norm clip at {s.clip_threshold:g}: steps ≤ {s.lr * s.clip_threshold:.3g}"),
    ]


def facts(c: model.Cliff) -> list[str]:
    """The numbers the pictures show, a line each."""
    s, bif = c.setting, c.bifurcation
    ww, wb, wg, we = c.surface.wall()
    nodes = " and ".join(f"b = {b:.4f}" for b, _ in bif.saddle_nodes) or "none (w ≤ 4: one fixed point for every b)"
    cross = 0.5 - bif.w * float(model.sigmoid(0.5))
    lines = [
        f"wall: the grid's largest |grad| is {wg:.3g} at (w, b) = ({ww:.4g}, {wb:.4g}), E = {we:.2g}",
        f"w = {bif.w:g}: saddle-nodes (w σ'(x*) = 1) at {nodes}; three fixed points between, one outside",
        f"x_0 = 0.5 is the unstable fixed point at b = {cross:.4f}: the wall's b for w = {bif.w:g}",
        model.story(c),
    ]
    if s == model.CLIFF_DEFAULT:
        lines.append(f"look for: {s.look_for}")
    return lines


def bifurcation_into(plt, c: model.Cliff, color: bool = True) -> None:
    """The fixed points x* against b for the setting's w into the plotext figure `plt`
    (data only: the caller sets its size and builds it): stable branches in braille dots,
    the unstable one "x", the saddle-nodes as vertical lines with their b, x_0 = 0.5 as a line."""
    bif = c.bifurcation
    for stable, marker, label in ((True, "braille", "stable"), (False, "x", "unstable")):
        pick = (bif.stable == stable) & ~np.isnan(bif.x)
        rows, branch = np.nonzero(pick)
        if rows.size:
            plt.scatter(bif.b[rows].tolist(), bif.x[rows, branch].tolist(), marker=marker, label=label, color="green" if stable else "red")
    b0, b1 = float(bif.b[0]), float(bif.b[-1])
    plt.plot([b0, b1], [model.X0, model.X0], marker="-", label="x_0 = 0.5", color="blue")
    heights = (float(np.nanmin(bif.x)), float(np.nanmax(bif.x)))  # the two labels apart: one low, one high
    for (b, _), y in zip(bif.saddle_nodes, heights):
        if b0 <= b <= b1:
            plt.vline(b, "orange")
            plt.text(f"b={b:.4f}", b, y, alignment="center", color="orange")
    plt.title(f"fixed points x* = {bif.w:g}·σ(x*) + b against b")
    plt.xlabel("b")


def plot_text(c: model.Cliff, width: int | None = None, height: int = 22) -> str:
    """`bptt-lab cliff --plot`: both maps with the trajectories and their legend,
    then the fixed points against b; colour on a terminal without NO_COLOR."""
    import io
    import shutil

    import plotext as plt
    from rich.console import Console

    from ..report import stdout_color

    color = stdout_color()
    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    buf = io.StringIO()
    console = Console(file=buf, color_system="256" if color else None, no_color=not color, width=width, highlight=False, markup=False, soft_wrap=True)
    for which, title in MAPS.items():
        console.print(Text(f"{title} over (w, b), log10 scale", style="bold"))
        for line in surface_lines(c, which, width, height):
            console.print(line)
        note = below_scale(c, which)
        if note:
            console.print(Text(" " * AXIS + note))
        console.print()
    for mark, what in legend(c):
        console.print(Text.assemble((mark, _mark_style(mark, 0)), f" {what}"))
    plt.clear_figure()
    plt.plot_size(width, height)
    if not color:
        plt.theme("clear")
    bifurcation_into(plt, c)
    chart = plt.build()
    plt.clear_figure()
    return buf.getvalue() + "\n" + (chart if color else plt.uncolorize(chart)) + "\n"
