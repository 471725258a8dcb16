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

from engine.clipping import END

from ..downsample import bucket_minmax, log10_positive
from ..format import log_ticks, run_series
from .view import View

FLOOR_EXP = -300  # zero norms are drawn here and said so


@dataclass
class Series:
    label: str
    values: np.ndarray  # per step k = 1..len
    marker: str = "hd"
    color: str | None = None


class NormChart(PlotextPlot):
    """Replotted from the app's redraw timer, never once per step.

    log10 of each series is kept between frames and extended by the new steps
    only; `token` names the run (it changes on reset or rebuild), so a cached
    value never outlives the run it came from.
    """

    DEFAULT_CSS = """
    NormChart {
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._logs: dict = {}

    def show(self, view: View, token) -> None:
        """The run's series up to the record on screen, the ghosts, the clip marks
        and threshold. `token` names the run's current backward pass."""
        run, k = view.run, view.shown
        name = view.preset.name
        if run is None:
            self.replot(f"{name}: building the run ...", [], view.config.steps, token=token)
            return
        series = [Series(label, values[:k], marker) for label, values, marker in run_series(run, "braille")]
        for ghost in view.ghosts:
            series.append(Series(ghost.label(view.config, name), ghost.values, "o", "gray"))
        rule, cols = run.clip_rule, run.records.columns
        at_end = rule is not None and rule.phase == END
        if at_end:
            # End-of-pass rules act on the parameter gradients: show their running norm.
            series.append(Series("|grad| (params)", cols["param_norm"][:k], "+", "magenta"))
        marks = np.flatnonzero(run.records.clip_mode[:k] > 0) + 1
        marked = series[-1] if at_end else series[0]
        # The threshold line where it compares with a drawn series: dL/dh (step) or the parameter norm (norm).
        threshold = view.config.clip_threshold if rule is not None and rule.series is not None else None
        title = f"{name}: gradient norm per backward step" if k else f"{name}: press space to play, n to step"
        self.replot(title, series, run.T, threshold, marks, token=token, marked=marked)

    def _log10(self, token, s: Series) -> np.ndarray:
        cache = self._logs
        key = (token, s.label)
        old = cache.get(key)
        n = s.values.size
        if old is None or old.size > n:
            y = log10_positive(s.values)
        else:
            y = np.concatenate([old, log10_positive(s.values[old.size :])])
        for stale in [k for k in cache if k[0] != token]:
            del cache[stale]
        cache[key] = y
        return y

    def on_mount(self) -> None:
        super().on_mount()
        self.plt.xlabel("backward step k")

    def replot(
        self, title: str, series: list[Series], steps: int, threshold: float | None = None, marks: np.ndarray | None = None, token=None, marked: Series | None = None
    ) -> None:
        """Draw the series; zero or non-finite values of the first one are left
        out and counted in the title (a log axis cannot show them)."""
        plt = self.plt
        plt.clear_data()
        width = max(10, self.size.width - 10)
        lows, highs = [], []
        notes = []
        main_lo = main_hi = None
        zeros = overflow = np.empty(0)
        for i, s in enumerate(series):
            k, y, dropped = bucket_minmax(s.values, width, self._log10(("ghost", id(s.values)) if s.label.startswith("ghost") else token, s) if token is not None else None)
            if dropped and i == 0:
                # A log axis cannot show them: zeros go on the floor, overflows on the ceiling.
                zeros = np.flatnonzero(s.values == 0) + 1
                overflow = np.flatnonzero(~np.isfinite(s.values)) + 1
                if zeros.size:
                    notes.append(f"{zeros.size} zero: on the floor")
                if overflow.size:
                    notes.append(f"{overflow.size} overflow: on the ceiling")
            if y.size == 0:
                continue
            if i == 0:
                main_lo, main_hi = float(y.min()), float(y.max())
            lows.append(float(y.min()))
            highs.append(float(y.max()))
            plt.plot(k.tolist(), y.tolist(), label=s.label, marker=s.marker, color=s.color)
        plt.title(title + (f" ({'; '.join(notes)})" if notes else ""))
        if threshold is not None and threshold > 0:
            y0 = math.log10(threshold)
            plt.hline(y0, "orange")
            lows.append(y0)
            highs.append(y0)
        on = marked or (series[0] if series else None)
        if marks is not None and marks.size and on is not None and on.values.size:
            if marks.size > width:  # at most one mark per column
                marks = marks[np.linspace(0, marks.size - 1, width).astype(int)]
            v = on.values[marks - 1]
            ok = np.isfinite(v) & (v > 0)
            if ok.any():
                plt.scatter(marks[ok].tolist(), np.log10(v[ok]).tolist(), marker="x", color="red", label="clip")
        if not lows and (zeros.size or overflow.size):
            lows, highs = [-1.0], [1.0]
        if main_lo is not None:
            # Centre on |dL/dh|: other series (the bound) may run off the top or bottom
            # rather than squash it into a few rows.
            lows = [max(v, main_lo - 4) for v in lows]
            highs = [min(v, main_hi + 4) for v in highs]
        if lows:
            lo, hi, ticks, labels = log_ticks(lows, highs, most=6)
            plt.yticks(ticks, labels)
            plt.ylim(lo, hi)
            for where, level, marker, label in ((zeros, lo, "v", "zero"), (overflow, hi, "^", "overflow")):
                if where.size:
                    pick = where[np.linspace(0, where.size - 1, min(where.size, width)).astype(int)]
                    plt.scatter(pick.tolist(), [level] * pick.size, marker=marker, color="red", label=label)
        plt.xlim(1, max(2, steps))
        xstep = max(1, math.ceil(steps / 6))
        plt.xticks(list(range(1, steps + 1, xstep)))
        self.refresh()
