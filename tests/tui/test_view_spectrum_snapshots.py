"""How the spectrum view looks (pytest-textual-snapshot): over the per-step
view (a sigmoid RNN whose eigenvalues leave the unit circle but whose
singular values stay inside 1/gamma = 4; an LSTM's four gate blocks) and over
the training view (a small relu training that explodes, live and at the
cursor), at 80 x 24 and 120 x 40, and NO_COLOR.
Update with: .venv/bin/python -m pytest tests/tui/test_view_spectrum_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from tests.tui.test_training_snapshots import EXPLODE, RELU
from tests.tui.test_training_snapshots import make as make_training
from tui.app import make_app

SIZES = [(80, 24), (120, 40)]


async def shown(pilot) -> None:
    """Press v and wait until the spectrum is computed (in a worker) and drawn."""
    app = pilot.app
    await pilot.press("v")
    while getattr(app.screen, "shown", None) is None:
        await pilot.pause(0.02)
    app.screen.set_focus(None)
    await pilot.pause()


def per_step(preset: str):
    app = make_app(preset)

    async def before(pilot):
        while app.engine_run is None or app.building is not None:
            await pilot.pause(0.02)
        app.set_focus(None)
        await shown(pilot)

    return app, before


def training(updates: int, cursor: int | None):
    app, trained = make_training("tiny-explode", RELU, EXPLODE, updates, cursor=cursor)

    async def before(pilot):
        await trained(pilot)
        await shown(pilot)

    return app, before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_sigmoid_quarter(snap_compare, size):
    app, before = per_step("sigmoid-quarter")
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_lstm_gate_blocks(snap_compare):
    app, before = per_step("lstm-cec")
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_training_live(snap_compare, size):
    app, before = training(12, None)
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_training_at_the_cursor(snap_compare):
    app, before = training(12, 5)
    assert snap_compare(app, terminal_size=(120, 40), run_before=before)


def test_readable_without_colour(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app, before = per_step("lstm-cec")
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_too_small(snap_compare):
    app, before = per_step("seed-explode")
    assert snap_compare(app, terminal_size=(50, 14), run_before=before)
