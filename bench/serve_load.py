"""`bptt-lab serve` under load, on 127.0.0.1: bounded, and it stops by itself.

    make bench-serve                                   # the defaults below
    .venv/bin/python bench/serve_load.py --sessions 10 --preset irnn

1. Start `bptt-lab serve PRESET --max-sessions N` on a free loopback port, in
   a fresh temporary working directory; read its memory alone.
2. One tab alone: the time from opening its websocket to the first output,
   and to the first frame that shows the dashboard (the header's
   `PRESET | k 0/`); close it.
3. N tabs at once (N websockets opened together, as N browser tabs would):
   each one's time to its first output and to its first drawn frame; the
   memory of the server and its N apps with every tab drawn and idle (RSS,
   and PSS, which divides the pages the apps share, Python's and numpy's
   libraries, among them: the honest per-session figure); one more tab is
   refused (HTTP 503); then `e` in every tab (each app runs its preset to the
   end) and the time until all N show `done`.
4. Close every tab; the apps must all exit and be reaped; SIGINT stops the
   server (exit code 0), no process is left and nothing was written in its
   working directory. A failed check exits 1.

A tab is textual-serve's websocket protocol over aiohttp's client (the helpers
in tests/browser/serving.py, shared with the tests): what a browser sends and
receives, without the browser's own rendering cost. Every wait has a limit
(--timeout); whatever was started is killed on the way out.

Prints a Markdown table to stdout (progress to stderr) and writes
bench/results/serve_load.json (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.browser.serving: the server, its apps in /proc, a tab

from tests.browser import serving  # noqa: E402
from tests.browser.serving import Served, Tab, async_wait_for  # noqa: E402


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def index_status(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def memory(server: Served) -> dict:
    apps = server.apps()
    return {
        "apps": len(apps),
        "server_rss_kib": server.me.rss_kib(),
        "server_pss_kib": server.me.pss_kib(),
        "apps_rss_kib": [p.rss_kib() for p in apps],
        "apps_pss_kib": [p.pss_kib() for p in apps],
    }


def total(mem: dict, kind: str) -> int:
    return mem[f"server_{kind}_kib"] + sum(mem[f"apps_{kind}_kib"])


async def open_tabs(server: Served, n: int, marker: str, width: int, height: int, timeout: float) -> list[Tab]:
    tabs = await asyncio.gather(*(Tab.open(server.ws_url, width, height, drawn_marker=marker) for _ in range(n)))
    await async_wait_for(lambda: all(t.first_drawn for t in tabs), f"{n} tabs to draw {marker!r}", timeout)
    return list(tabs)


async def measure(args, server: Served) -> dict:
    marker = f"{args.preset} | k 0/"
    out: dict = {}
    out["idle"] = memory(server)

    progress("one tab alone ...")
    (tab,) = await open_tabs(server, 1, marker, args.width, args.height, args.timeout)
    out["alone"] = {"first_output_s": tab.first_byte - tab.started, "first_frame_s": tab.first_drawn - tab.started}
    await tab.close()
    await asyncio.to_thread(serving.wait_for, lambda: not server.apps(), "the tab's app to exit", args.timeout)

    progress(f"{args.sessions} tabs at once ...")
    tabs = await open_tabs(server, args.sessions, marker, args.width, args.height, args.timeout)
    out["first_output_s"] = [t.first_byte - t.started for t in tabs]
    out["first_frame_s"] = [t.first_drawn - t.started for t in tabs]
    apps = await asyncio.to_thread(server.wait_apps, args.sessions)
    out["loaded"] = memory(server)
    out["one_more_tab_status"] = await asyncio.to_thread(index_status, server.url, args.timeout)

    progress(f"e in {args.sessions} tabs ...")
    t0 = time.perf_counter()
    marks = [await t.keys("e") for t in tabs]
    await async_wait_for(lambda: all("| done" in t.text(m) for t, m in zip(tabs, marks)), f"{args.sessions} tabs to reach done", args.timeout)
    out["all_to_end_s"] = time.perf_counter() - t0

    progress("closing ...")
    await asyncio.gather(*(t.close() for t in tabs))
    await asyncio.to_thread(serving.wait_for, lambda: all(a.gone() for a in apps), "every app to exit and be reaped", args.timeout)
    out["after_close"] = memory(server)
    return out


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def report(args, out: dict, checks: dict) -> str:
    n = args.sessions
    idle, loaded = out["idle"], out["loaded"]
    frame, output = out["first_frame_s"], out["first_output_s"]
    lines = [
        f"## bptt-lab serve: {n} sessions of {args.preset} at once ({args.width}x{args.height}, 127.0.0.1)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| first frame, one tab alone | {out['alone']['first_frame_s']:.2f} s (first output {out['alone']['first_output_s']:.2f} s) |",
        f"| first frame, {n} tabs at once: median / max | {statistics.median(frame):.2f} s / {max(frame):.2f} s |",
        f"| first output, {n} tabs at once: median / max | {statistics.median(output):.2f} s / {max(output):.2f} s |",
        f"| `e` in all {n} tabs until all show done | {out['all_to_end_s']:.2f} s |",
        f"| server alone: RSS / PSS | {mib(idle['server_rss_kib'])} / {mib(idle['server_pss_kib'])} |",
        f"| server + {n} apps: RSS / PSS | {mib(total(loaded, 'rss'))} / {mib(total(loaded, 'pss'))} |",
        f"| per session (growth / {n}): RSS / PSS | {mib((total(loaded, 'rss') - total(idle, 'rss')) / n)} / {mib((total(loaded, 'pss') - total(idle, 'pss')) / n)} |",
        f"| one app: RSS median / max | {mib(statistics.median(loaded['apps_rss_kib']))} / {mib(max(loaded['apps_rss_kib']))} |",
        f"| tab {n + 1} (index page) | HTTP {out['one_more_tab_status']} |",
        f"| server after closing all: RSS / PSS | {mib(out['after_close']['server_rss_kib'])} / {mib(out['after_close']['server_pss_kib'])} |",
        f"| after closing all: apps left / server exit / leftovers / files written | {out['after_close']['apps']} / {checks['exit_code']} / {checks['leftovers']} / {checks['files_written']} |",
        "",
        f"CPUs {os.cpu_count()}, Python {platform.python_version()}, {platform.platform()}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10, help="tabs opened at once (and --max-sessions)")
    parser.add_argument("--preset", default="irnn")
    parser.add_argument("--width", type=int, default=120)
    parser.add_argument("--height", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds any one wait may take before the run fails")
    args = parser.parse_args(argv)
    if args.sessions < 1:
        parser.error("--sessions: at least 1")

    with tempfile.TemporaryDirectory(prefix="bptt-lab-serve-load-") as tmp:
        cwd, logs = Path(tmp) / "cwd", Path(tmp) / "logs"
        cwd.mkdir()
        logs.mkdir()
        progress(f"starting bptt-lab serve {args.preset} --max-sessions {args.sessions} ...")
        server = Served(args.preset, max_sessions=args.sessions, cwd=cwd, logs=logs)
        try:
            out = asyncio.run(asyncio.wait_for(measure(args, server), args.timeout * 4))
            code = server.stop()
            checks = {"exit_code": code, "leftovers": len(server.leftovers()), "files_written": len(list(cwd.iterdir()))}
        except BaseException:
            progress(server.output())
            raise
        finally:
            server.close()

    print(report(args, out, checks))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "serve_load.json").write_text(json.dumps({"args": vars(args), "results": out, "checks": checks}, indent=1))
    ok = checks == {"exit_code": 0, "leftovers": 0, "files_written": 0} and out["one_more_tab_status"] == 503 and out["after_close"]["apps"] == 0
    if not ok:
        progress(f"FAILED: {checks}, tab {args.sessions + 1}: HTTP {out['one_more_tab_status']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
