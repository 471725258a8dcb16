"""The views no other tool has, each a screen of the dashboard and a command
of the CLI: eigenvalues against the unit circle, gradient heatmaps, the cliff
and the phase diagram.

Each view's module (tui/views/<name>.py) provides
- `screen(app) -> Screen`: the dashboard's screen for the run (or training) on show;
- `register(cli)`: adds its headless command to the typer app.
The app's keys, palette and help come from VIEWS, so a view is added in one place.
Everything a view draws is computed in engine/; the modules only draw it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ViewEntry:
    name: str  # the module's name and the CLI command's
    key: str  # the dashboard's key
    title: str  # palette and footer
    what: str  # palette description and help


VIEWS: tuple[ViewEntry, ...] = (
    ViewEntry("spectrum", "v", "eigenvalues", "the eigenvalues of W_hh against the unit circle and 1/γ, with the singular values"),
    ViewEntry("heatmap", "h", "heatmap", "|dL/dh_t| per unit and step, and how much each input step still reaches the loss"),
    ViewEntry("cliff", "l", "the cliff", "the one-unit model's error surface, its bifurcation and SGD with and without clipping (SPEC 9)"),
    ViewEntry("sweep", "d", "phase diagram", "a saved bptt-lab sweep: mean log growth per step over two settings"),
)


def module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def register_commands(cli) -> None:
    """Give the typer app each view's headless command."""
    for view in VIEWS:
        module(view.name).register(cli)
