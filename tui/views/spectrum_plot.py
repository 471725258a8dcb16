"""The spectrum view's two pictures, drawn on a plotext figure: the dashboard's
PlotextPlot widgets and `bptt-lab spectrum --plot` call the same functions.

- the complex plane: the circles |lambda| = 1 and |lambda| = 1/gamma, and the
  eigenvalues of each gate block with the gate's letter as marker (readable
  without colour), on axes scaled so that a circle looks round at a
  terminal's 2:1 cell aspect;
- the singular values of each block, largest first, against the lines 1 and
  1/gamma.

The legend is not plotext's (it would cover points): `legend(spectrum)` gives
its entries for a line above the plot.
"""

from __future__ import annotations

import math

import numpy as np

from engine.spectrum import Spectrum

MARKERS = {"h": "●"}  # rnn, IndRNN; a gated cell's blocks are drawn with their letter
COLORS = ("cyan", "orange", "magenta", "green")
CIRCLE_POINTS = 240
UNIT_MARKER, GAMMA_MARKER = "braille", "·"
Y_LABELS = 7  # columns of the y tick labels and the axis, about
X_ROWS = 2  # the x axis and its tick labels


def marker(gate: str) -> str:
    return MARKERS.get(gate, gate)


def color(index: int) -> str:
    return COLORS[index % len(COLORS)]


def fmt(x: float) -> str:
    if not math.isfinite(x):
        return "not finite"
    if x == 0:
        return "0"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def gamma_text(gamma: float) -> str:
    return "1/4" if gamma == 0.25 else f"{gamma:g}"


def legend(spectrum: Spectrum) -> list[tuple[str, str, str]]:
    """(glyph, colour, text) per entry: each block's eigenvalues, then the circles."""
    if len(spectrum.blocks) == 1:
        out = [(marker(spectrum.blocks[0].gate), color(0), "eigenvalues of W_hh")]
    else:  # the first entry says what the letters are
        out = [(marker(b.gate), color(i), f"{'eigenvalues of ' if i == 0 else ''}W_{b.gate}") for i, b in enumerate(spectrum.blocks)]
    out.append(("⠶", "white", "|λ| = 1"))
    out += [(GAMMA_MARKER, "gray", f"|λ| = 1/γ = {r:g}") for r in spectrum.circles if r != 1.0]
    return out


def plane_limits(reach: float, cols: int, rows: int) -> tuple[float, float]:
    """Half-ranges (x, y) holding the disc |z| <= reach with equal lengths per
    unit on screen: a row is about twice as tall as a column is wide."""
    cols, rows = max(cols, 4), max(rows, 2)
    lx = reach * cols / (2 * rows)
    if lx >= reach:
        return lx, reach
    return reach, 2 * reach * rows / cols


def plane_reach(spectrum: Spectrum, fit: bool = False) -> float:
    """How far from 0 the plane must reach: every circle (or with `fit` the
    unit circle only) and every eigenvalue."""
    radius = spectrum.radius if spectrum.finite else 0.0
    return 1.12 * max(radius, *([1.0] if fit else spectrum.circles))


def draw_plane(plt, spectrum: Spectrum, width: int, height: int, title: str | None = None, fit: bool = False) -> tuple[float, float]:
    """The eigenvalues against the circles on a plot of `width` x `height`
    characters; returns the half-ranges (x, y) used."""
    plt.clear_data()
    reach = plane_reach(spectrum, fit)
    unit = axis_unit(reach)
    lx, ly = plane_limits(reach / unit, width - Y_LABELS, height - X_ROWS - (title is not None))
    theta = np.linspace(0.0, 2.0 * np.pi, CIRCLE_POINTS)
    for r in spectrum.circles:
        one = r == 1.0
        xs, ys = (r / unit * np.cos(theta)).tolist(), (r / unit * np.sin(theta)).tolist()
        (plt.plot if one else plt.scatter)(xs, ys, marker=UNIT_MARKER if one else GAMMA_MARKER, color="white" if one else "gray")
    if spectrum.finite:
        for i, b in enumerate(spectrum.blocks):
            z = b.eigenvalues / unit
            plt.scatter(z.real.tolist(), z.imag.tolist(), marker=marker(b.gate), color=color(i))
    plt.xlim(-lx, lx)
    plt.ylim(-ly, ly)
    plt.xticks(_ticks(lx))
    plt.yticks(_ticks(ly))
    plt.title(_titled(title, unit, width))
    return lx * unit, ly * unit


def axis_unit(reach: float) -> float:
    """1, or a power of ten to divide by when the numbers are too large for
    plotext (it draws nothing past about 1e15): the title says so."""
    return 1.0 if reach < 1e4 else 10.0 ** math.floor(math.log10(reach))


def _titled(title: str | None, unit: float, width: int) -> str | None:
    """The title, with the axes' unit; what comes before its first ", " is
    left out when it would not fit (plotext drops a title wider than the plot)."""
    if title is None:
        return None
    if unit != 1.0:
        title = f"{title} (axes ×{unit:.0e})"
    if len(title) > width - Y_LABELS - 1 and ", " in title:
        title = title.split(", ", 1)[1]
    return title


def _ticks(half: float) -> list[float]:
    """Symmetric round ticks inside [-half, half]: 0 and about two a side."""
    step = 10 ** math.floor(math.log10(half / 2)) if half > 0 else 1.0
    for m in (1, 2, 5, 10):
        if half / (m * step) <= 2.5:
            step *= m
            break
    k = int(half // step)
    return [round(i * step, 10) for i in range(-k, k + 1)]


def draw_singular(plt, spectrum: Spectrum, width: int, title: str | None = None) -> None:
    """Each block's singular values, largest first (index 1..H), as points
    against the lines 1 and 1/gamma; the y ticks name 1, 1/gamma and sigma_max."""
    plt.clear_data()
    H = spectrum.blocks[0].singular_values.size
    ticks = {0.0, *spectrum.circles}
    if spectrum.finite:
        ticks.add(spectrum.sigma_max)
    unit = axis_unit(max(ticks))
    if spectrum.finite:
        pick = np.unique(np.linspace(0, H - 1, min(H, max(8, width - Y_LABELS))).astype(int))
        for i, b in enumerate(spectrum.blocks):
            plt.scatter((pick + 1).tolist(), (b.singular_values[pick] / unit).tolist(), marker=marker(b.gate), color=color(i))
    for r in spectrum.circles:
        plt.hline(r / unit, "white" if r == 1.0 else "gray")
    shown = sorted(t for t in ticks if unit == 1.0 or t == 0 or t >= unit)  # 1 and 1/gamma sit on 0 when scaled
    plt.xlim(0.5, H + 0.5)
    plt.ylim(0, 1.1 * max(ticks) / unit)
    plt.xticks(sorted({1, (H + 1) // 2, H}))
    plt.yticks([t / unit for t in shown], [fmt(t / unit) for t in shown])
    plt.title(_titled(title, unit, width))
