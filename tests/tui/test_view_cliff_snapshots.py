"""How the cliff's screen looks (pytest-textual-snapshot): the error surface at
80 x 24 and 120 x 40, the fixed points at 80 x 24, and the |grad| map without colour.
Update with: .venv/bin/python -m pytest tests/tui/test_view_cliff_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from tui.app import make_app
from tui.views.cliff_screen import CliffScreen

SIZES = [(80, 24), (120, 40)]


def make(*keys: str):
    app = make_app("seed-explode")

    async def before(pilot):
        while app.engine_run is None or app.building is not None:  # built in a worker
            await pilot.pause(0.02)
        await pilot.press("l")
        while not isinstance(app.screen, CliffScreen) or app.screen.cliff is None:  # computed in a worker
            await pilot.pause(0.02)
        for key in keys:
            await pilot.press(key)
        app.set_focus(None)
        await pilot.pause()

    return app, before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_error_surface(snap_compare, size):
    app, before = make()
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_the_fixed_points_when_narrow(snap_compare):
    app, before = make("f")
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_the_gradient_without_colour(snap_compare, monkeypatch):
    """NO_COLOR: the levels stay apart by glyph, the marks by letter."""
    monkeypatch.setenv("NO_COLOR", "1")
    app, before = make("g")
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
