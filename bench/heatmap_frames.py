"""The heatmap view's frame cost (tui/views/heatmap_screen.py), through the app under Pilot.

One frame is what the screen's 10 Hz timer does when the run moved: the
picture built from the engine's gradient map (binning to the screen, the
scale, the Rich Text) and the Static rendered to lines. Median of 30 frames,
at 80 x 24 and 120 x 40, for the issue's largest case (H = 256, T = 1000,
run to the end: the whole map binned into the screen), a text run
(wig-went) and a map past the memory budget (H = 4096, T = 20,000: stored
as 2,400 columns of the largest of 9 steps each).

    .venv/bin/python bench/heatmap_frames.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.geometry import Region  # noqa: E402

from engine import Config  # noqa: E402
from engine.presets import BUILTIN  # noqa: E402
from tui.app import make_app  # noqa: E402

CASES = {
    "rnn H=256 T=1000": ("seed-explode", Config(hidden=256, steps=1000, batch=4, init="orthogonal")),
    "wig-went (text, H=16 T=9)": ("wig-went", BUILTIN["wig-went"].config),
    "rnn H=1024 T=5000 N=1 (binned store)": ("seed-explode", Config(hidden=1024, steps=5000, batch=1, input_size=1, init="orthogonal")),
}
SIZES = [(80, 24), (120, 40)]


async def frame_cost(preset: str, config: Config, size: tuple[int, int]) -> tuple[float, int]:
    app = make_app(preset, config)
    async with app.run_test(size=size) as pilot:
        while app.engine_run is None or app.building is not None:
            await pilot.pause(0.02)
        app._forward(app.engine_run.T)
        app.action_open_view("heatmap")
        await pilot.pause()
        screen = app.screen
        box = screen.query_one("#hm-picture")
        times = []
        for _ in range(30):
            screen._drawn = None
            t0 = time.perf_counter()
            screen.redraw()
            box.render_lines(Region(0, 0, box.size.width, box.size.height))
            times.append(time.perf_counter() - t0)
            await pilot.pause()
        return statistics.median(times), app.engine_run.gradient_map.stride


def main() -> None:
    print("| case | size | frame (ms) | stride |")
    print("|---|---|---|---|")
    for name, (preset, config) in CASES.items():
        for size in SIZES:
            cost, stride = asyncio.run(frame_cost(preset, config, size))
            print(f"| {name} | {size[0]}x{size[1]} | {cost * 1e3:.1f} | {stride} |", flush=True)


if __name__ == "__main__":
    main()
