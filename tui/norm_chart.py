"""The norm chart: gradient norm per backward step on a log10 axis.

plotext's own log scale transforms data in place and corrupts a second draw,
so the chart plots log10 values on a linear axis with power-of-ten labels.
Series are downsampled to about the chart's width, keeping each bucket's
minimum and maximum so spikes survive; the cost of a redraw does not grow
with the length of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from textual_plotext import PlotextPlot

from .format import log_ticks

FLOOR_EXP = -300  # zero norms are drawn here and said so


@dataclass
class Series:
    label: str
    values: np.ndarray  # per step k = 1..len
    marker: str = "hd"
    color: str | None = None


def bucket_minmax(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(k, log10 values) with at most ~2 * width points: each bucket's min and max."""
    k = np.arange(1, values.size + 1, dtype=float)
    with np.errstate(all="ignore"):
        y = np.log10(np.where(values > 0, values, np.nan))
    ok = np.isfinite(y)
    k, y = k[ok], y[ok]
    if y.size <= 2 * width:
        return k, y
    edges = np.linspace(0, y.size, width + 1).astype(int)
    starts = edges[:-1]
    lo = np.minimum.reduceat(y, starts)
    hi = np.maximum.reduceat(y, starts)
    lo_k = k[starts + np.array([np.argmin(y[a:b]) for a, b in zip(edges[:-1], edges[1:])])]
    hi_k = k[starts + np.array([np.argmax(y[a:b]) for a, b in zip(edges[:-1], edges[1:])])]
    order = np.argsort(np.concatenate([lo_k, hi_k]), kind="stable")
    return np.concatenate([lo_k, hi_k])[order], np.concatenate([lo, hi])[order]


class NormChart(PlotextPlot):
    """Replotted from the app's redraw timer, never once per step."""

    def on_mount(self) -> None:
        super().on_mount()
        self.plt.xlabel("backward step k")

    def replot(self, title: str, series: list[Series], steps: int, threshold: float | None = None, marks: np.ndarray | None = None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title(title)
        width = max(10, self.size.width - 10)
        lows, highs = [], []
        for s in series:
            k, y = bucket_minmax(s.values, width)
            if y.size == 0:
                continue
            lows.append(float(y.min()))
            highs.append(float(y.max()))
            plt.plot(k.tolist(), y.tolist(), label=s.label, marker=s.marker, color=s.color)
        if threshold is not None and threshold > 0:
            y0 = math.log10(threshold)
            plt.hline(y0, "orange")
            lows.append(y0)
            highs.append(y0)
        if marks is not None and marks.size and series and series[0].values.size:
            v = series[0].values[marks - 1]
            ok = np.isfinite(v) & (v > 0)
            if ok.any():
                plt.scatter(marks[ok].tolist(), np.log10(v[ok]).tolist(), marker="x", color="red", label="clip")
        if lows:
            lo, hi, ticks, labels = log_ticks(lows, highs, most=6)
            plt.yticks(ticks, labels)
            plt.ylim(lo, hi)
        plt.xlim(1, max(2, steps))
        xstep = max(1, math.ceil(steps / 6))
        plt.xticks(list(range(1, steps + 1, xstep)))
        self.refresh()
