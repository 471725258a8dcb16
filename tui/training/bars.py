"""The training view's header and summary bars.

The header: the preset, the update on screen, the state and the settings,
most important first, so a narrow terminal cuts only the least important.
The summary: the status (a divergence named, with the update it happened at
and the parameters kept), the evaluation against the baseline, the clip
count; then the threshold suggestion and the checkpoints.
"""

from __future__ import annotations

import numpy as np
from textual.widgets import Static

from ..format import num
from .frame import Frame


class Bar(Static):
    """A bar of fixed height, redrawn only when its text changes."""

    _shown: str | None = None

    def text(self, frame: Frame) -> str:
        raise NotImplementedError

    def show(self, frame: Frame) -> None:
        text = self.text(frame)
        if text != self._shown:
            self._shown = text
            self.update(text, layout=False)  # its height is fixed, whatever it says


class TrainingHeader(Bar):
    DEFAULT_CSS = """
    TrainingHeader {
        height: 1;
        background: $primary;
        color: $text;
        text-style: bold;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def text(self, frame: Frame) -> str:
        return header_text(frame)


def header_text(frame: Frame) -> str:
    c, s, t = frame.config, frame.settings, frame.training
    busy = f" | {frame.busy} ..." if frame.busy else ""
    if t is None:
        return f" {frame.preset.name} | training | building{busy}"
    counter = f"u {frame.at}/{s.updates}" + (f" (latest {frame.count})" if frame.cursor is not None and frame.cursor < frame.count else "")
    state = frame.state if frame.state in ("done", "diverged") else f"{frame.state} {frame.speed}"
    what = f"{c.cell}/{c.activation}" if c.cell_type.uses_activation else c.cell
    optimizer = f"{s.optimizer} lr {s.lr:g}" + (f" momentum {s.momentum:g}" if s.momentum else "")
    clip = f" | clip {c.clip} {c.clip_threshold:g}" if c.clip != "none" else " | no clipping"
    truncate = f" | truncate {c.truncate}" if c.truncate else ""
    return f" {frame.preset.name} | {counter} | {state}{busy} | {t.task.name} | {what} H={c.hidden} N={t.N} T={c.steps} | {optimizer}{clip}{truncate}"


class TrainingSummary(Bar):
    DEFAULT_CSS = """
    TrainingSummary {
        height: 2;
        background: $boost;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def text(self, frame: Frame) -> str:
        return summary_text(frame)


def status_text(frame: Frame) -> str:
    t, n = frame.training, frame.count
    if t is None:
        return "building the training ..."
    d = t.divergence
    if d is not None and n >= d.u:
        kept = f"weights after u = {d.u - 1} kept" if d.u > 1 else "the initial weights kept"
        return f"DIVERGED at u = {d.u}: the {d.what} is not finite; {kept}"
    if n == 0:
        return "not started: space trains, n takes one update, ? explains"
    if frame.state == "done":
        return f"done: {n} updates"
    return f"{n}/{t.settings.updates} updates"


def evaluation_text(frame: Frame) -> str:
    """The task metric at the last evaluation up to the update on screen, beside the baseline."""
    t = frame.training
    if t is None or frame.at == 0:
        return ""
    evaluated = np.flatnonzero(t.records.evaluated[: frame.at])
    if not evaluated.size:
        return ""
    i = int(evaluated[-1])
    task = t.task
    value = float(t.records.columns["metric"][i])
    if task.metric_name == "accuracy":
        return f"accuracy {100 * value:.1f}% at u = {i + 1} (chance {100 * task.baseline_metric:.0f}%)"
    return f"eval {task.metric_name} {num(value, na='nan')} at u = {i + 1} (baseline {num(task.baseline_metric)})"


def suggestion_text(frame: Frame) -> str:
    t, s = frame.training, frame.suggestion
    if t is None:
        return ""
    if s is None:
        return f"suggested clip: after unclipped warm-up updates (up to {t.settings.warmup})"
    return f"suggested clip {num(s.low)}-{num(s.high)} (u: {num(s.mean)}, the mean of {s.updates} unclipped)"


def summary_text(frame: Frame) -> str:
    t = frame.training
    if t is None:
        return status_text(frame)
    first = [status_text(frame), evaluation_text(frame)]
    clips = int(np.count_nonzero(t.records.clipped[: frame.count]))
    if frame.config.clip != "none":
        first.append(f"clips {clips}")
    second = [suggestion_text(frame), f"checkpoints {len(frame.checkpoints)} ([ ])"]
    return "  ".join(p for p in first if p) + "\n" + "  ".join(p for p in second if p)
