"""The dashboard's frame cost and a long run, through the app under Pilot.

- one redraw frame (`_redraw` plus the chart's plotext build, which is what
  rendering costs) with 100 and with 100,000 steps of history, median of 30,
  in the worst case: the seed chain with step clipping at 10 (a clip mark on
  nearly every step), the bound, and a pinned 100,000-step ghost;
- "run to the end" of a T = 100,000 chain: wall time, the ratio to the
  engine's own time for the same work (stepping to the end, and computing what
  the log shows), and the resident memory sampled every 10% of the way;
- the first frame of a large run (lstm H=256 T=5000), which is built in a
  worker: the time to the first frame and to the run being ready.
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
from engine import Run
from tui.panes import NormChart

LONG = 100_000


async def built(pilot) -> None:
    app = pilot.app
    while app.engine_run is None or app.building is not None:
        await pilot.pause(0.01)


async def frame_costs() -> dict:
    """The worst case for a frame: every series drawn (norm, bound, threshold), a
    clip mark on nearly every step, and a pinned ghost as long as the run."""
    config = BUILTIN["seed-explode"].config.with_overrides(steps=LONG, clip="step", clip_threshold=10.0)
    app = make_app("seed-explode", config)
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        chart = app.query_one(NormChart)
        app._forward(LONG)
        app.action_ghost()
        for history in (100, LONG):
            app.action_reset()
            app._forward(history)
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


async def run_to_end() -> tuple[float, list[float]]:
    """Wall seconds of `e` on a T = 100,000 chain, and the RSS (MiB) at each 10% of the way."""
    config = BUILTIN["seed-vanish"].config.with_overrides(steps=LONG)
    app = make_app("seed-vanish", config)
    rss = []
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        t0 = time.perf_counter()
        await pilot.press("e")
        while app.shown < LONG:
            await pilot.pause(0.05)
            if app.shown >= (len(rss) + 1) * LONG // 10:
                rss.append(rss_mib())
        wall = time.perf_counter() - t0
    return wall, rss


def engine_alone() -> tuple[float, float]:
    """The engine's own time for what run-to-end asks of it: (stepping to the end,
    stepping plus the per-transition numbers the log shows, computed on read)."""
    config = BUILTIN["seed-vanish"].config.with_overrides(steps=LONG)
    run = Run(config)
    t0 = time.perf_counter()
    run.advance(LONG)
    t1 = time.perf_counter()
    run.records.columns["jacobian_sigma"]
    return t1 - t0, time.perf_counter() - t0


async def first_frame() -> tuple[float, float]:
    """(seconds to the first frame, seconds until the run is ready) of lstm H=256 T=5000."""
    config = BUILTIN["lstm-cec"].config.with_overrides(hidden=256, steps=5000)
    t0 = time.perf_counter()
    app = make_app("lstm-cec", config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        first = time.perf_counter() - t0
        assert "building" in str(app.query_one("#header").render())
        await built(pilot)
        return first, time.perf_counter() - t0


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def long_run_in_a_fresh_process() -> tuple[float, float, list[float]]:
    """(wall seconds, peak RSS in MiB, RSS at each 10%) of a process that only opens
    the app and runs T = 100,000 to the end: its whole memory, Python and Textual included."""
    out = subprocess.run([sys.executable, __file__, "--long-run"], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1]), [float(x) for x in out[2:]]


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
    wall, peak_mib, rss = long_run_in_a_fresh_process()
    stepping, with_log = engine_alone()
    first, ready = asyncio.run(first_frame())
    return {
        "frame_100_s": frames[100],
        "frame_100k_s": frames[LONG],
        "frame_ratio": frames[LONG] / frames[100],
        "run_to_end_100k_s": wall,
        "engine_stepping_100k_s": stepping,
        "engine_with_log_numbers_100k_s": with_log,
        "run_to_end_over_engine": wall / with_log,
        "peak_rss_mib": peak_mib,
        "rss_every_10pct_mib": rss,
        "first_frame_large_s": first,
        "large_run_ready_s": ready,
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["--long-run"]:
        wall, rss = asyncio.run(run_to_end())
        print(wall, peak_rss_mib(), *rss)
        sys.exit(0)
    r = main()
    print(
        f"frame at 100 steps {1e3 * r['frame_100_s']:.2f} ms, at 100,000 {1e3 * r['frame_100k_s']:.2f} ms (x{r['frame_ratio']:.2f}); "
        f"run to the end of T = 100,000: {r['run_to_end_100k_s']:.1f} s ({r['run_to_end_over_engine']:.2f}x the engine's "
        f"{r['engine_with_log_numbers_100k_s']:.1f} s), peak RSS {r['peak_rss_mib']:.0f} MiB, RSS every 10%: "
        + " ".join(f"{x:.0f}" for x in r["rss_every_10pct_mib"])
        + f"; first frame of lstm H=256 T=5000 after {r['first_frame_large_s']:.2f} s, ready after {r['large_run_ready_s']:.1f} s"
    )
