"""How the dashboard looks, at 80 x 24 and 120 x 40 (pytest-textual-snapshot).

Sync tests (snap_compare runs the app itself); runs are driven directly in
run_before, not by timers, and nothing is focused, so no cursor blinks.
Update with: .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations


import pytest

from tui.app import make_app

SIZES = [(80, 24), (120, 40)]


def finished(app):
    app.engine_run.run()
    app._dirty = True
    app._redraw()


def make(preset: str, steps_done: str):
    app = make_app(preset)

    async def before(pilot):
        app.set_focus(None)
        if steps_done == "all":
            finished(app)
        await pilot.pause()

    return app, before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "preset, steps_done",
    [("seed-explode", "none"), ("seed-explode", "all"), ("clip-rescue", "all"), ("lstm-cec", "all")],
    ids=["default-at-start", "seed-explode-done", "clip-rescue-done", "lstm-cec-done"],
)
def test_looks(snap_compare, preset, steps_done, size):
    app, before = make(preset, steps_done)
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_readable_without_colour(snap_compare, monkeypatch):
    """NO_COLOR: series and severities stay apart by marker and text, not colour."""
    monkeypatch.setenv("NO_COLOR", "1")
    app, before = make("clip-rescue", "all")
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare, size):
    app, before = make("irnn", "none")
    assert snap_compare(app, terminal_size=size, run_before=before, press=["question_mark"])
