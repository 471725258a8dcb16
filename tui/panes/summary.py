"""The summary bar: where the gradient is on screen, and the verdict."""

from __future__ import annotations

import math

from textual.widgets import Static

from ..format import num, verdict
from .view import View


class SummaryBar(Static):
    DEFAULT_CSS = """
    SummaryBar {
        height: 2;
        background: $boost;
        padding: 0 1;
    }
    """

    def show(self, view: View) -> None:
        self.update(summary_text(view))


def summary_text(view: View) -> str:
    """Two lines: the gradient at the record on screen, then the verdict of the vanishing condition."""
    run = view.run
    if run is None:
        return "building the run ..."
    k = view.shown
    s = run.live(k)
    growth = run.mean_growth(last=10, upto=k)
    parts = [f"|dL/dh| {num(s['norm'], na='nan') if k else '-'}"]
    parts.append(f"x{growth:.3f}/step (last 10)" if math.isfinite(growth) else "x-/step")
    parts.append(f"clips {s['clip_events']}")
    if s["spectral_radius"] is not None:
        parts.append(f"radius {num(s['spectral_radius'])}")
    parts.append(f"sigma_max {num(s['sigma_max'])}")
    return "  ".join(parts) + "\n" + verdict(s)
