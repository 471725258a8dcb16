"""What the `bptt-lab serve` tests (and bench/serve_load.py) share.

- `Served`: a `bptt-lab serve` process on a free loopback port, in a session
  of its own, with its output in files (never a pipe nobody reads), started
  in a working directory the tests can check stays empty.
- Its app processes, read from /proc (the children of the server), each
  known by its pid *and* start time, so a pid the kernel hands out again is
  never mistaken for the app that had it.
- `Tab`: a browser tab as the server sees one: textual-serve's websocket
  protocol over aiohttp's client (the page's textual.js does the same: it
  connects to /ws?width=..&height=.., sends JSON ["stdin", keys] and
  ["resize", {...}], and receives the app's terminal output as binary frames).
- `wait_for`: every wait is on a condition, with a generous limit (CI is a
  loaded 2-core machine); nothing asserts how long anything took.

Whatever a test started is stopped in `Served.close` (the server's process
group, then any app process still there: the apps run in sessions of their
own), pass or fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SCRIPT = str(Path(sys.executable).with_name("bptt-lab"))
SERVING = re.compile(r"^bptt-lab serving (.+) at (http://\S+)$", re.M)  # a preset name may hold spaces
# How long a condition may take before a test fails: generous, a loaded CI
# machine starts a Python app with numpy and Textual in seconds, not minutes.
PATIENCE = 60.0
STOP_STATES = ("Z", "X")  # zombie, dead: exited, whether or not reaped yet


def wait_for(condition: Callable[[], object], what: str, timeout: float = PATIENCE, every: float = 0.05):
    """Poll `condition` until it returns something truthy, and return that;
    fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        time.sleep(every)


async def async_wait_for(condition: Callable[[], object], what: str, timeout: float = PATIENCE, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        await asyncio.sleep(every)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- processes, from /proc ----------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state is [0], start time [19])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


@dataclass(frozen=True)
class Proc:
    pid: int
    start: str  # start time in clock ticks since boot: a reused pid has another

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        fields = _stat(pid)
        return None if fields is None else cls(pid, fields[19])

    def state(self) -> str | None:
        """R, S, D, Z, ...; None once the process is gone entirely (reaped)."""
        fields = _stat(self.pid)
        if fields is None or fields[19] != self.start:
            return None
        return fields[0]

    def gone(self) -> bool:
        """Reaped: not even a zombie is left."""
        return self.state() is None

    def running(self) -> bool:
        return self.state() not in (None, *STOP_STATES)

    def cmdline(self) -> list[str]:
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return []
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]

    def pss_kib(self) -> int:
        """Proportional set size: resident memory, the pages shared with other
        processes (numpy's and Python's libraries) divided among them; 0 once gone."""
        try:
            for line in Path(f"/proc/{self.pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
        return 0

    def rss_kib(self) -> int:
        """Resident memory (VmRSS), 0 once gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
        return 0

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.running():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


def children(pid: int) -> list[Proc]:
    """The direct children of `pid` (every thread's: a child belongs to the thread that forked it)."""
    found = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return []
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return [p for p in map(Proc.of, sorted(set(found))) if p is not None]


def is_app(proc: Proc) -> bool:
    """A tab's app: `python -m tui.entry tui PRESET ...`."""
    argv = proc.cmdline()
    return "tui.entry" in argv and "tui" in argv[argv.index("tui.entry") + 1 : argv.index("tui.entry") + 2]


# --- the server -----------------------------------------------------------------------


class Served:
    """`bptt-lab serve PRESET ... --max-sessions N` on a free loopback port."""

    def __init__(self, preset: str, *flags: str, max_sessions: int, cwd: Path, logs: Path):
        from tests.processes import as_a_shell_would

        self.port = free_port()
        self.cwd = cwd
        self.out_path = logs / "serve.out"
        self.err_path = logs / "serve.err"
        self.argv = [SCRIPT, "serve", preset, *flags, "--host", "127.0.0.1", "--port", str(self.port), "--max-sessions", str(max_sessions)]
        self.seen_apps: set[Proc] = set()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            # A session of its own: the finally can stop its whole group.
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, preexec_fn=as_a_shell_would(new_session=True))
        self.me = Proc.of(self.proc.pid)
        try:
            line = wait_for(self._serving_line, f"the serving line on stdout of {' '.join(self.argv[1:])}")
        except BaseException:
            self.close()
            raise
        self.url = line.group(2).rstrip("/")
        self.ws_url = "ws" + self.url[len("http") :] + "/ws"

    def _serving_line(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"bptt-lab serve exited with {self.proc.returncode} before serving:\n{self.output()}")
        return SERVING.search(self.out_path.read_text(errors="replace"))

    def output(self) -> str:
        return f"stdout:\n{self.out_path.read_text(errors='replace')}\nstderr:\n{self.err_path.read_text(errors='replace')}"

    def apps(self) -> list[Proc]:
        """The app processes running now (not the exited ones a server has yet to reap)."""
        found = [p for p in children(self.proc.pid) if is_app(p) and p.running()]
        self.seen_apps.update(found)
        return found

    def wait_apps(self, n: int, what: str = "") -> list[Proc]:
        """Wait until exactly `n` app processes run; they."""

        def exactly():
            apps = self.apps()
            return (apps,) if len(apps) == n else None

        return wait_for(exactly, what or f"exactly {n} app processes of the server")[0]

    def rss_kib(self) -> int:
        """The server's resident memory and its apps'."""
        return self.me.rss_kib() + sum(p.rss_kib() for p in self.apps())

    def stop(self, sig: int = signal.SIGINT, timeout: float = PATIENCE) -> int:
        """Send `sig` and wait for the server to exit; its exit code."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"bptt-lab serve did not exit within {timeout:.0f}s of signal {sig}:\n{self.output()}") from None

    def leftovers(self) -> list[Proc]:
        """Every app process this server ever had that is still there, zombies included."""
        self.apps()
        return [p for p in self.seen_apps if not p.gone()]

    def close(self) -> None:
        """Stop whatever is left, pass or fail: the server's group, then its apps."""
        try:
            self.apps()
        except Exception:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        for app in self.seen_apps:
            app.kill()


# --- a tab, as the server sees it ------------------------------------------------------

_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[()][0-9A-Za-z]|[@-Z\\-_])")


def plain(data: bytes) -> str:
    """The terminal output's text without its escape sequences (cursor moves, colours)."""
    return _ESCAPES.sub("", data.decode("utf-8", errors="replace"))


class Tab:
    """One websocket session: what a browser tab is to the server."""

    def __init__(self, http, ws, started: float):
        self.http = http
        self.ws = ws
        self.started = started
        self.output = bytearray()  # every binary frame, in order
        self.strings: list = []  # the JSON text frames (pong, deliver_file_start, ...)
        self.first_byte: float | None = None  # perf_counter when the first output arrived
        self.first_drawn: float | None = None  # and when `drawn_marker` first had
        self.closed_by_server = False
        self.drawn_marker: str | None = None
        self._reader: asyncio.Task | None = None

    @classmethod
    async def open(cls, ws_url: str, width: int = 120, height: int = 40, drawn_marker: str | None = None) -> Tab:
        import aiohttp

        started = time.perf_counter()
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(f"{ws_url}?width={width}&height={height}", autoping=True, max_msg_size=0)
            # What textual.js sends as the socket opens.
            await ws.send_str(json.dumps(["resize", {"width": width, "height": height}]))
        except BaseException:
            await http.close()
            raise
        tab = cls(http, ws, started)
        tab.drawn_marker = drawn_marker
        tab._reader = asyncio.create_task(tab._read())
        return tab

    async def _read(self) -> None:
        import aiohttp

        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                if self.first_byte is None:
                    self.first_byte = time.perf_counter()
                self.output += message.data
                if self.first_drawn is None and self.drawn_marker and self.drawn_marker in plain(bytes(self.output)):
                    self.first_drawn = time.perf_counter()
            elif message.type == aiohttp.WSMsgType.TEXT:
                self.strings.append(json.loads(message.data))
        self.closed_by_server = True

    def text(self, since: int = 0) -> str:
        return plain(bytes(self.output[since:]))

    async def wait_text(self, needle: str, since: int = 0, timeout: float = PATIENCE) -> None:
        await async_wait_for(lambda: needle in self.text(since), f"{needle!r} in the tab's terminal output", timeout)

    async def keys(self, keys: str) -> int:
        """Type `keys`; returns where the output stood before, for wait_text(since=...)."""
        mark = len(self.output)
        await self.ws.send_str(json.dumps(["stdin", keys]))
        return mark

    async def close(self) -> None:
        """The tab closes: a websocket close handshake."""
        await self.ws.close()
        await self._finish()

    async def drop(self) -> None:
        """The connection goes away with no close handshake (a browser killed, a network gone)."""
        sock = self.ws.get_extra_info("socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        await self._finish()

    async def _finish(self) -> None:
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, PATIENCE)
            except Exception:
                pass
        await self.http.close()
