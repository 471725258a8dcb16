"""Regenerate docs/screenshot.svg: clip-rescue run to the end at 120 x 40.

    .venv/bin/python docs/make_screenshot.py
"""

import asyncio
from pathlib import Path

from tui.app import make_app

HERE = Path(__file__).resolve().parent


async def main() -> None:
    app = make_app("clip-rescue")
    async with app.run_test(size=(120, 40)) as pilot:
        while app.engine_run is None or app.building is not None:  # built in a worker
            await pilot.pause(0.02)
        app.set_focus(None)
        app._forward(app.engine_run.T)
        app._dirty = True
        app._redraw()
        await pilot.pause(0.2)
        app.save_screenshot(str(HERE / "screenshot.svg"))


asyncio.run(main())
