"""The header: the preset, where the backward pass is, and the run's settings,
most important first, so a narrow terminal cuts only the least important."""

from __future__ import annotations

from textual.widgets import Static

from .view import View


class HeaderBar(Static):
    DEFAULT_CSS = """
    HeaderBar {
        height: 1;
        background: $primary;
        color: $text;
        text-style: bold;
    }
    """

    def show(self, view: View) -> None:
        self.update(header_text(view))


def header_text(view: View) -> str:
    c, run = view.config, view.run
    done = f" {100 * view.building:.0f}%" if view.building is not None else ""
    if run is None:
        return f" {view.preset.name} | building the run: forward pass over T={c.steps}{done}"
    rebuilding = f" | rebuilding{done}" if view.building is not None else ""
    counter = f"k {view.shown}/{run.T}" + (f" (computed {run.k})" if run.k > view.shown else "")
    state = view.state if view.state == "done" else f"{view.state} {view.speed}"
    pause = f" | pause at {view.pause_at}" if view.pause_at else ""
    what = f"{c.cell}/{c.activation}" if c.cell_type.uses_activation else c.cell
    mode = " chain" if c.mode == "chain" else ""
    clip = f" | clip {c.clip} {c.clip_threshold:g}" if c.clip != "none" else ""
    truncate = f" | truncate {c.truncate}" if c.truncate else ""
    return f" {view.preset.name} | {counter} | {state}{pause}{rebuilding} | {what}{mode} H={c.hidden} N={c.batch} T={c.steps}{clip}{truncate}"
