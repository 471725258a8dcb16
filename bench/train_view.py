"""Updates per second each training preset reaches in the dashboard's training
view while the screen redraws (10 frames a second), under Pilot at 120 x 40.

For each preset: build the app, wait until the training is built, press `e`
(train to the end at full speed) and count the updates taken in a window of
wall time (or until the training ends), and the frames drawn meanwhile. The
screen's thread (the event loop: frames, keys, messages) is timed too: `ui`
is its CPU time as a share of the wall time. Beside it, the engine alone
(Training.advance) for the same window, in a thread of the same process set
up as the dashboard's worker is: the ratio is what the screen costs the
training (the two threads share Python's GIL).

    .venv/bin/python bench/train_view.py [--seconds S] [PRESET ...]

Prints a table, with the machine's load: on this 2-core machine any other
work changes every number.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.presets import BUILTIN  # noqa: E402
from engine.training import Training  # noqa: E402
from tui.app import make_app  # noqa: E402
from tui.training.blas import one_thread_here  # noqa: E402
from tui.training.charts import LossChart  # noqa: E402


def training_presets() -> list[str]:
    return [name for name, p in BUILTIN.items() if getattr(p, "training", None) is not None]


async def in_the_dashboard(name: str, seconds: float) -> dict:
    app = make_app(name)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.training_screen is None or app.training_screen.training is None:
            await pilot.pause(0.02)
        screen = app.training_screen
        chart = screen.query_one(LossChart)
        training = screen.training
        start, ui_start, drawn = time.perf_counter(), time.thread_time(), chart._version
        await pilot.press("e")
        while time.perf_counter() - start < seconds and not training.done:
            await pilot.pause(0.05)
        wall, ui = time.perf_counter() - start, time.thread_time() - ui_start
        done, frames = training.records.count, chart._version - drawn
        await pilot.press("space")  # pause before quitting
    return {"updates": done, "wall": wall, "per_second": done / wall, "fps": frames / wall, "ui_share": ui / wall, "status": training.status}


def engine_alone(name: str, seconds: float) -> dict:
    """The same training without a screen, in a thread set up as the dashboard's
    worker is (BLAS on one thread for it)."""
    preset = BUILTIN[name]
    out = {}

    def work() -> None:
        one_thread_here()
        training = Training(preset.config, preset.training)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds and not training.done:
            training.advance(1)
        wall = time.perf_counter() - start
        out.update(updates=training.records.count, per_second=training.records.count / wall)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wall time per preset (default 10)")
    parser.add_argument("presets", nargs="*", help="default: every training preset")
    args = parser.parse_args(argv)
    names = args.presets or training_presets()
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"training view at 120x40, {args.seconds:g} s a preset, OPENBLAS_NUM_THREADS={threads}, load {os.getloadavg()[0]:.2f}")
    print(f"{'preset':<22}{'updates/s':>10}{'engine/s':>10}{'ratio':>7}{'frames/s':>9}{'ui':>6}{'updates':>9}  status")
    results = {}
    for name in names:
        view = asyncio.run(in_the_dashboard(name, args.seconds))
        alone = engine_alone(name, args.seconds)
        ratio = view["per_second"] / alone["per_second"] if alone["per_second"] else float("nan")
        print(f"{name:<22}{view['per_second']:>10.1f}{alone['per_second']:>10.1f}{ratio:>7.2f}{view['fps']:>9.1f}{view['ui_share']:>6.0%}{view['updates']:>9}  {view['status']}")
        results[name] = {"view": view, "engine": alone}
    return results


if __name__ == "__main__":
    main()
