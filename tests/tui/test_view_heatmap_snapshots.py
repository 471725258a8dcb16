"""How the heatmap view looks (pytest-textual-snapshot) at 80 x 24 and 120 x 40:
a text run to its end (wig-went: the words under their columns, the zeros
truncation leaves) and a long run part way (sigmoid-quarter, T = 1000: bins,
and the steps not computed yet left blank).

Update with: .venv/bin/python -m pytest tests/tui/test_view_heatmap_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from engine.presets import BUILTIN
from tui.app import make_app

SIZES = [(80, 24), (120, 40)]
RUNS = {
    "wig-went": (BUILTIN["wig-went"].config, None),
    "sigmoid-quarter-T1000": (BUILTIN["sigmoid-quarter"].config.with_overrides(steps=1000), 600),
}


def make(name: str):
    config, upto = RUNS[name]
    app = make_app(name.split("-T")[0], config)

    async def before(pilot):
        while app.engine_run is None or app.building is not None:  # built in a worker
            await pilot.pause(0.02)
        app.set_focus(None)
        app._forward(upto or app.engine_run.T)
        app.action_open_view("heatmap")
        await pilot.pause()
        app.screen._drawn = None
        app.screen.redraw()
        await pilot.pause()

    return app, before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(RUNS))
def test_heatmap(snap_compare, name, size):
    app, before = make(name)
    assert snap_compare(app, terminal_size=size, run_before=before)
