"""The dashboard's frame cost and a long run, through the app under Pilot.

- one redraw frame (`_redraw` plus the chart's plotext build, which is what
  rendering costs) with 100 and with 100,000 steps of history, median of 30,
  in the worst case: the seed chain with step clipping at 10 (a clip mark on
  nearly every step), the bound, and a pinned 100,000-step ghost;
- "run to the end" of a T = 100,000 chain, wall time and peak memory.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import subprocess
import sys
import time

from engine.presets import BUILTIN
from tui.app import make_app
from tui.norm_chart import NormChart

LONG = 100_000


async def frame_costs() -> dict:
    """The worst case for a frame: every series drawn (norm, bound, threshold), a
    clip mark on nearly every step, and a pinned ghost as long as the run."""
    config = BUILTIN["seed-explode"].config.with_overrides(steps=LONG, clip="step", clip_threshold=10.0)
    app = make_app("seed-explode", config)
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        chart = app.query_one(NormChart)
        app.engine_run.run()
        app.action_ghost()
        for history in (100, LONG):
            app.action_reset()
            app.engine_run.advance(history)
            app._logged = app.engine_run.k  # the log flush is measured elsewhere: frames only
            times = []
            for _ in range(30):
                app._dirty = True
                t0 = time.perf_counter()
                app._redraw()
                chart.plt.build()
                times.append(time.perf_counter() - t0)
            out[history] = statistics.median(times)
            await pilot.pause()
    return out


async def run_to_end() -> float:
    config = BUILTIN["seed-vanish"].config.with_overrides(steps=LONG)
    app = make_app("seed-vanish", config)
    async with app.run_test(size=(120, 40)) as pilot:
        t0 = time.perf_counter()
        await pilot.press("e")
        while not app.engine_run.done:
            await pilot.pause(0.05)
        return time.perf_counter() - t0


def long_run_in_a_fresh_process() -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of a process that only opens the app and runs
    T = 100,000 to the end: its whole memory, Python and Textual included."""
    out = subprocess.run([sys.executable, __file__, "--long-run"], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def peak_rss_mib() -> float:
    """This process's own peak RSS. Not getrusage's ru_maxrss: Linux carries the
    parent's peak over fork and exec into it, so a child of the benchmark (which
    holds PyTorch) would report the parent's ~1.5 GiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> dict:
    frames = asyncio.run(frame_costs())
    wall, peak_mib = long_run_in_a_fresh_process()
    return {"frame_100_s": frames[100], "frame_100k_s": frames[LONG], "frame_ratio": frames[LONG] / frames[100], "run_to_end_100k_s": wall, "peak_rss_mib": peak_mib}


if __name__ == "__main__":
    if sys.argv[1:] == ["--long-run"]:
        wall = asyncio.run(run_to_end())
        print(wall, peak_rss_mib())
        sys.exit(0)
    r = main()
    print(f"frame at 100 steps {1e3 * r['frame_100_s']:.2f} ms, at 100,000 {1e3 * r['frame_100k_s']:.2f} ms (x{r['frame_ratio']:.2f}); "
          f"run to the end of T = 100,000: {r['run_to_end_100k_s']:.1f} s, peak RSS {r['peak_rss_mib']:.0f} MiB")
