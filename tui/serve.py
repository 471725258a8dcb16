"""`bptt-lab serve`: the dashboard in a browser, one app process per tab.

textual-serve does the serving (the page, the websocket protocol, file
deliveries). Three things are ours:

- Each tab's app is started from an argument list with exec, never through a
  shell, so a preset name or a TOML value cannot become a command.
- At most `max_sessions` apps run at once; more tabs get a page that says the
  server is full instead of another process.
- A tab that closes, an app that dies, and the server stopping each leave no
  process behind: the app is asked to quit, then terminated, then killed, and
  always waited for.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import logging
import os
import signal
import socket
import sys

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

log = logging.getLogger("bptt-lab.serve")

QUIT_GRACE = 3.0  # seconds an app has to quit when asked, before SIGTERM
TERM_GRACE = 2.0  # and after SIGTERM, before SIGKILL

FULL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bptt-lab: server full</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>This bptt-lab server is full</h1>
<p>{count} of {limit} sessions are open; each browser tab runs its own lab.
Close another tab, or try again in a moment.</p>
<p>Whoever started the server can allow more with <code>--max-sessions</code>.</p>
</body></html>
"""


def is_loopback(host: str) -> bool:
    """True for names and addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Session(AppService):
    """One browser tab's app: started with exec from `argv`, and reaped."""

    def __init__(self, argv: list[str], **kwargs) -> None:
        super().__init__(" ".join(argv), **kwargs)
        self.argv = argv

    async def _open_app_process(self, width: int = 80, height: int = 24):
        self._process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),  # the web driver's
            start_new_session=True,  # a Ctrl-C at the server's terminal reaches the server only
        )
        self._stdin = self._process.stdin
        return self._process

    async def run(self) -> None:
        """Relay the app's output until it ends, then close the tab's websocket:
        an app that quits says so itself, but one that dies (a crash, SIGKILL)
        cannot, and its tab would hang on, frozen, holding a place."""
        await super().run()
        try:
            await self.remote_close()
        except Exception:  # the browser has gone already
            pass

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def stop(self) -> None:
        """Ask the app to quit; terminate, then kill, what does not; wait for it."""
        try:
            await asyncio.wait_for(super().stop(), QUIT_GRACE)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            await self._reap()

    async def _reap(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            if process is not None:
                await process.wait()
            return
        for sig, grace in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, None)):
            try:
                # os.kill, not process.send_signal: that polls the child first and
                # can reap it behind asyncio's watcher ("Unknown child process pid").
                os.kill(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                await asyncio.wait_for(process.wait(), grace)
                return
            except asyncio.TimeoutError:
                continue
        await process.wait()


class LabServer(Server):
    """textual-serve's Server, with exec-started sessions and a session limit."""

    def __init__(self, argv: list[str], *, host: str, port: int, max_sessions: int, preset: str) -> None:
        super().__init__(" ".join(argv), host=host, port=port, title=f"bptt-lab: {preset}")
        self.argv = argv
        self.preset = preset
        self.max_sessions = max_sessions
        self.sessions: set[Session] = set()

    @property
    def full(self) -> bool:
        return len(self.sessions) >= self.max_sessions

    def _full_response(self) -> web.Response:
        text = FULL_PAGE.format(count=len(self.sessions), limit=html.escape(str(self.max_sessions)))
        return web.Response(status=503, text=text, content_type="text/html", headers={"Retry-After": "10"})

    async def handle_index(self, request: web.Request):
        if self.full:
            return self._full_response()
        # The page points its websocket and scripts at public_url: make it the
        # address this browser used (a hall's laptops reach 0.0.0.0 by the
        # machine's name or address). No await before the page is rendered,
        # so no other request sees this value.
        self.public_url = f"{request.scheme}://{request.host}"
        return await super().handle_index(request)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        if self.full:
            # The page was loaded while a place was free; it has gone since.
            await websocket.send_bytes(full_notice(len(self.sessions), self.max_sessions))
            await websocket.close()
            return websocket
        width = _int(request.query.get("width"), 80)
        height = _int(request.query.get("height"), 24)
        session = Session(
            self.argv,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
        )
        self.sessions.add(session)
        try:
            await session.start(width, height)
            log.info("session %s started (pid %s; %d of %d)", session.app_service_id[:8], session.pid, len(self.sessions), self.max_sessions)
            await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a broken websocket must not take the server down
            log.warning("session %s: %s", session.app_service_id[:8], error)
        finally:
            await asyncio.shield(self._end(session, websocket))
        return websocket

    async def _end(self, session: Session, websocket: web.WebSocketResponse) -> None:
        try:
            await session.stop()
        finally:
            self.sessions.discard(session)
            log.info("session %s ended (%d open)", session.app_service_id[:8], len(self.sessions))
            if not websocket.closed:
                await websocket.close()

    async def on_startup(self, app: web.Application) -> None:
        pass  # textual-serve prints its banner here; ours waits for the port (announce)

    def announce(self, *_args) -> None:
        """Called by aiohttp once the port is bound."""
        if not is_loopback(self.host):
            print(f"warning: serving on {self.host}: anyone who can reach port {self.port} can open and drive the lab", file=sys.stderr, flush=True)
        print(f"bptt-lab serving {self.preset} at {self.public_url}", flush=True)
        if self.host in ("0.0.0.0", "::"):  # every address: say one a browser can type
            print(f"from other machines: http://{socket.gethostname()}:{self.port} (or this machine's address)", flush=True)
        print(f"one lab per browser tab, at most {self.max_sessions} at once; Ctrl-C stops the server", flush=True)

    async def on_shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(session.stop() for session in list(self.sessions)), return_exceptions=True)

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT or SIGTERM, then stop every session."""
        self.debug = debug
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.request_exit)
        web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop, print=self.announce, access_log=None)


def full_notice(count: int, limit: int) -> bytes:
    """What a websocket refused for lack of room shows in its terminal."""
    text = f"bptt-lab: this server is full ({count} of {limit} sessions); close another tab or try again in a moment."
    return ("\x1b[2J\x1b[H" + text + "\r\n").encode()


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value is not None else default
    except ValueError:
        return default


def app_argv(preset: str, flags: list[str]) -> list[str]:
    """The command one tab runs: this Python, this package, the tui command."""
    return [sys.executable, "-m", "tui.entry", "tui", *flags, "--", preset]  # "--": a name is never a flag


def serve(preset: str, flags: list[str], *, host: str, port: int, max_sessions: int) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # ten tabs on two cores: one BLAS thread each
    LabServer(app_argv(preset, flags), host=host, port=port, max_sessions=max_sessions, preset=preset).serve()
