"""How the dashboard looks: every preset run to the end at 80 x 24 and 120 x 40,
the start, NO_COLOR and the help (pytest-textual-snapshot). These files are the
record of what a student sees.

Sync tests (snap_compare runs the app itself); runs are driven directly in
run_before, not by timers, and nothing is focused, so no cursor blinks.
Update with: .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from engine.presets import BUILTIN
from tui.app import make_app

SIZES = [(80, 24), (120, 40)]


def make(preset: str, to_the_end: bool):
    app = make_app(preset)

    async def before(pilot):
        while app.engine_run is None or app.building is not None:  # built in a worker
            await pilot.pause(0.02)
        app.set_focus(None)
        if to_the_end:
            app._forward(app.engine_run.T)
        app._dirty = True
        app._redraw()
        await pilot.pause()

    return app, before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("preset", [name for name, p in BUILTIN.items() if p.training is None])
def test_every_preset_run_to_the_end(snap_compare, preset, size):
    """Every per-step preset; the training presets open in the training view,
    whose snapshots are in test_training_snapshots.py."""
    app, before = make(preset, True)
    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_default_at_the_start(snap_compare, size):
    app, before = make("seed-explode", False)
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_readable_without_colour(snap_compare, monkeypatch):
    """NO_COLOR: series and severities stay apart by marker and text, not colour."""
    monkeypatch.setenv("NO_COLOR", "1")
    app, before = make("clip-rescue", True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare, size):
    app, before = make("irnn", False)
    assert snap_compare(app, terminal_size=size, run_before=before, press=["question_mark"])
