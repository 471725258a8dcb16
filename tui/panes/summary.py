"""The summary bar: where the gradient is on screen, and the verdict."""

from __future__ import annotations

import math

from textual.widgets import Static

from ..format import num, verdict_sentences
from .view import View


class SummaryBar(Static):
    DEFAULT_CSS = """
    SummaryBar {
        height: 2;
        background: $boost;
        padding: 0 1;
    }
    """

    _view: View | None = None

    def show(self, view: View) -> None:
        self._view = view
        self.update(summary_text(view, self.size.width - 2))

    def on_resize(self) -> None:
        if self._view is not None:
            self.show(self._view)


def summary_text(view: View, width: int | None = None) -> str:
    """Two lines: the gradient at the record on screen, then the verdict of the
    vanishing condition, as many of its sentences as fit in `width` (whole ones)."""
    run = view.run
    if run is None:
        return "building the run ..."
    k = view.shown
    s = run.live(k)
    growth = run.mean_growth(last=10, upto=k)
    parts = [f"|dL/dh| {num(s['norm'], na='nan') if k else '-'}"]
    parts.append(f"x{growth:.3f}/step (last {min(10, k)})" if math.isfinite(growth) else "x-/step")
    parts.append(f"clips {s['clip_events']}")
    if s["spectral_radius"] is not None:
        parts.append(f"radius {num(s['spectral_radius'])}")
    parts.append(f"sigma_max {num(s['sigma_max'])}")
    return "  ".join(parts) + "\n" + fit_sentences(verdict_sentences(s), width)


def fit_sentences(sentences: list[str], width: int | None) -> str:
    """The sentences that fit in `width`, whole and in order (the decisive one
    first), never ending on a colon whose sequel is left out; the first alone,
    cut with an ellipsis, when even it does not fit."""
    text, shown = sentences[0], 1
    for sentence in sentences[1:]:
        if width and len(text) + 1 + len(sentence) > width:
            break
        text, shown = text + " " + sentence, shown + 1
    if shown > 1 and shown < len(sentences) and text.endswith(":"):  # what the colon announces did not fit
        text = text[: text.rindex(" " + sentences[shown - 1])]
    return text if not width or len(text) <= width else text[: width - 1] + "…"
