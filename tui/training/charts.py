"""The training view's three charts, by what each draws per update u:

- LossChart: the batch's loss, the evaluation loss (every E updates), the
  task metric where it is not the loss (accuracy), against the baseline of a
  model that learned nothing (SPEC 8: 1/6 for adding, ln 4 and 25% for
  temporal order, the unigram entropy for text);
- GradNormChart: the global gradient norm before clipping, and at each
  clipped update the norm before (o) and after (x) the clip, with the
  threshold line of norm clipping;
- SpectrumChart: the spectral radius and sigma_max of W_hh (the largest over
  the gate blocks of a gated cell) against 1/gamma, and how far back the
  gradient reaches: `reach` (||dL/dh_0|| / ||dL/dh_T||) and `long_share`.

Each draws from the engine's records (rows 1..count); nothing is recomputed.
"""

from __future__ import annotations

import math

import numpy as np

from ..format import num
from ..panes.chart import GHOST_MARKERS, Series
from .chart import Level, UpdateChart
from .frame import Frame

MAIN = ("braille", "blue+", "⠤")


class Where:
    """`values` where `mask` holds, NaN elsewhere, computed only for the slices a
    cache asks for (LogSeries takes the new updates only)."""

    def __init__(self, values: np.ndarray, mask: np.ndarray) -> None:
        self.values, self.mask = values, mask
        self.size = min(values.size, mask.size)

    def __getitem__(self, index: slice) -> np.ndarray:
        return np.where(self.mask[index], self.values[index], np.nan)


class BlockMax:
    """The largest over the gate blocks of a (U, G) column, per update, on demand."""

    def __init__(self, column: np.ndarray, count: int) -> None:
        self.column, self.size = column, count

    def __getitem__(self, index: slice) -> np.ndarray:
        block = self.column[: self.size][index]
        with np.errstate(all="ignore"):
            return np.max(block, axis=1) if block.shape[0] else np.empty(0)


def _ghosts(frame: Frame, column: str) -> list[Series]:
    out = []
    for i, ghost in enumerate(frame.ghosts):
        label = "ghost: " + ghost.label(frame.config, frame.settings, frame.preset.name)
        marker = GHOST_MARKERS[i % len(GHOST_MARKERS)]
        out.append(Series(label, ghost.columns[column], marker, "gray", marker, keep=False, key=("ghost", column, id(ghost)), rank=4))
    return out


class LossChart(UpdateChart):
    """Loss and task metric per update, against the baseline."""

    def series(self, frame: Frame, token) -> tuple[str, list[Series], list[Level]]:
        t, n = frame.training, frame.count
        task, cols, rec = t.task, t.records.columns, t.records
        marker, color, glyph = MAIN
        series = _ghosts(frame, "loss")
        series.append(Series("loss (batch)", cols["loss"][:n], marker, color, glyph, key=(token, "loss"), main=True, short="loss", rank=0))
        evaluated = np.flatnonzero(rec.evaluated[:n])
        metric_is_loss = task.metric_name == task.loss  # mse: the metric is the evaluation loss
        series.append(self._evaluations(token, "eval_loss", cols["eval_loss"], evaluated, f"eval {task.metric_name if metric_is_loss else 'loss'}", "•", "green"))
        levels = [Level(task.baseline_loss, f"baseline {num(task.baseline_loss)} (no learning)", f"base {num(task.baseline_loss)}")]
        if not metric_is_loss:
            series.append(self._evaluations(token, "metric", cols["metric"], evaluated, f"eval {task.metric_name}", "+", "cyan"))
            chance = _percent(task.baseline_metric)
            levels.append(Level(task.baseline_metric, f"chance {chance} ({task.metric_name} with no learning)", f"chance {chance}", "┄", "cyan"))
        return f"loss per update ({task.name})", series, levels

    def _evaluations(self, token, name: str, column: np.ndarray, evaluated: np.ndarray, label: str, marker: str, color: str) -> Series:
        """A value taken every E updates, as points at those updates (at most ~2 a column)."""
        cached = self._cached((token, name), column[evaluated])
        k, y = cached.points(evaluated.size, max(8, self.size.width - 8))
        at = evaluated[k.astype(int) - 1] + 1.0
        return Series(label, 10.0**y, marker, color, marker, lines=False, at=at, rank=1)


class GradNormChart(UpdateChart):
    """The gradient norm per update, raw and clipped, and the threshold."""

    def series(self, frame: Frame, token) -> tuple[str, list[Series], list[Level]]:
        t, n = frame.training, frame.count
        c, cols, rec = frame.config, t.records.columns, t.records
        marker, color, glyph = MAIN
        series = _ghosts(frame, "grad_norm_raw")
        clipping = c.clip != "none"
        label = "|grad| before clipping" if clipping else "|grad|"
        series.append(Series(label, cols["grad_norm_raw"][:n], marker, color, glyph, key=(token, "raw"), main=True, short="|grad|", rank=0))
        levels = []
        if clipping:
            clipped = rec.clipped[:n]
            series.append(Series("after the clip", Where(cols["grad_norm"][:n], clipped), "x", "red", "", lines=False, key=(token, "after")))
            series.append(
                Series("clipped {count}: o before → x after", Where(cols["grad_norm_raw"][:n], clipped), "o", "red", "o→x", lines=False, key=(token, "before"), short="clipped {count}", rank=2)
            )
            if c.clip == "norm":
                levels.append(Level(c.clip_threshold, f"clip threshold {c.clip_threshold:g}", f"clip {c.clip_threshold:g}", "─", "orange"))
        return "gradient norm per update", series, levels


class SpectrumChart(UpdateChart):
    """W_hh's spectrum per update against 1/gamma, and how far back the gradient reaches."""

    def series(self, frame: Frame, token) -> tuple[str, list[Series], list[Level]]:
        t, n = frame.training, frame.count
        c, cols = frame.config, t.records.columns
        of = " (largest block)" if c.gates > 1 else ""
        series = []
        if c.loss_on == "last":  # reach and long_share need one origin: a loss on the last step only
            series += _ghosts(frame, "reach")
            series.append(Series("reach |dL/dh_0|/|dL/dh_T|", cols["reach"][:n], "+", "cyan", "+", keep=False, key=(token, "reach"), short="reach", rank=3))
            series.append(Series("long_share (> T/2 back)", cols["long_share"][:n], "x", "orange", "x", keep=False, key=(token, "long_share"), short="long", rank=3))
        series.append(Series(f"σ_max(W_hh){of}", BlockMax(cols["sigma_max"], n), "dot", "magenta", "•", key=(token, "sigma"), short="σ_max", rank=1))
        marker, color, glyph = MAIN
        series.append(Series(f"spectral radius{of}", BlockMax(cols["spectral_radius"], n), marker, color, glyph, key=(token, "radius"), short="radius", rank=0))
        levels = []
        if c.gamma:
            inverse = 1.0 / c.gamma
            levels.append(Level(inverse, f"1/γ = {inverse:g}: σ_max below it, vanishing is sure", f"1/γ {inverse:g}", "┄", "green"))
        return "W_hh spectrum; gradient reach", series, levels


def _percent(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.0f}%"
