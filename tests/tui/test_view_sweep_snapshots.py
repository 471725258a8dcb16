"""How the sweep screen looks (key d) at 80 x 24 and 120 x 40, and under
NO_COLOR, on a small sweep of the phase-diagram preset saved in the test's
folder (tests/tui/test_view_sweep.py makes it with the engine).

Update with: .venv/bin/python -m pytest tests/tui/test_view_sweep_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from tests.tui.test_view_sweep import make_sweep
from tui.app import make_app

SIZES = [(80, 24), (120, 40)]


def make(folder):
    make_sweep(folder)
    app = make_app("seed-explode")

    async def before(pilot):
        while app.engine_run is None or app.building is not None:  # built in a worker
            await pilot.pause(0.02)
        await pilot.press("d")
        await pilot.press("right", "right", "right", "right", "right", "down")
        app.set_focus(None)
        await pilot.pause()

    return app, before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sweep_screen(snap_compare, tmp_path, monkeypatch, size):
    monkeypatch.chdir(tmp_path)
    app, before = make(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_sweep_screen_without_colour(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    app, before = make(tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
