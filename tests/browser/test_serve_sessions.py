"""`bptt-lab serve` at the process level: sessions, the limit, and faults.

Each tab is a websocket client speaking textual-serve's protocol (see
serving.Tab), cheaper than a browser; test_serve_browser.py drives a real one.
Every test checks at its end what the server leaves behind: no app process
(zombies included), and nothing written in the server's working directory
(under the web driver an export goes to the browser, not to a file).
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request

import aiohttp  # textual-serve's own dependency: here, the websocket client
import pytest

from .serving import PATIENCE, Served, Tab, async_wait_for, wait_for

PRESET = "irnn"
DRAWN = "k 0/60"  # irnn's header once the app has drawn: `irnn | k 0/60 | paused ...`


@pytest.fixture
def serve(tmp_path):
    """Start servers for the test (bptt-lab serve irnn ...); whatever is left is stopped after it,
    and the working directory is checked to be as empty as it started."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    started: list[Served] = []

    def start(*flags: str, max_sessions: int = 2) -> Served:
        logs = tmp_path / f"logs{len(started)}"
        logs.mkdir()
        server = Served(PRESET, *flags, max_sessions=max_sessions, cwd=cwd, logs=logs)
        started.append(server)
        return server

    try:
        yield start
        for server in started:
            assert not server.leftovers(), f"app processes left behind: {server.leftovers()}"
        assert sorted(p.name for p in cwd.iterdir()) == [], "the server wrote into its working directory"
    finally:
        for server in started:
            server.close()


def run(coro):
    return asyncio.run(coro)


def index(server: Served) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(server.url + "/", timeout=PATIENCE) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def drawn_tab(server: Served) -> Tab:
    tab = await Tab.open(server.ws_url, drawn_marker=DRAWN)
    await tab.wait_text(DRAWN)
    return tab


def test_a_tab_drives_its_own_app_and_closing_it_ends_the_app(serve):
    server = serve()
    assert server.apps() == []

    async def scenario():
        tab = await drawn_tab(server)
        (app,) = server.wait_apps(1)
        await tab.wait_text(f" {PRESET} | k 0/60 | paused")
        mark = await tab.keys("n")
        await tab.wait_text("k 1/60", since=mark)
        mark = await tab.keys("e")
        await tab.wait_text("k 60/60 | done", since=mark)
        await tab.close()
        return app

    app = run(scenario())
    wait_for(app.gone, "the closed tab's app process to exit and be reaped")
    assert server.stop() == 0, server.output()


def test_two_tabs_are_two_apps_that_do_not_share_a_run(serve):
    server = serve()

    async def scenario():
        one, two = await asyncio.gather(drawn_tab(server), drawn_tab(server))
        apps = server.wait_apps(2)
        assert len({app.pid for app in apps}) == 2
        mark_two = len(two.output)
        mark = await one.keys("e")
        await one.wait_text("k 60/60 | done", since=mark)
        # The other tab's app was not told: a key it gets now starts from its own k 0.
        await two.keys("n")
        await two.wait_text("k 1/60", since=mark_two)
        assert "done" not in two.text(mark_two)
        await asyncio.gather(one.close(), two.close())
        return apps

    apps = run(scenario())
    wait_for(lambda: all(app.gone() for app in apps), "both apps to exit")
    assert server.stop() == 0, server.output()


def test_a_tab_over_the_limit_gets_the_full_page_and_no_process(serve):
    server = serve(max_sessions=2)
    status, page = index(server)
    assert status == 200 and "textual-terminal" in page

    async def scenario():
        tabs = await asyncio.gather(drawn_tab(server), drawn_tab(server))
        server.wait_apps(2)
        # A third tab: the page says the server is full (HTTP 503), ...
        status, page = await asyncio.to_thread(index, server)
        assert status == 503, page
        assert "server is full" in page and "2 of 2" in page and "--max-sessions" in page
        # ... and a websocket opened anyway (a page loaded while there was room) is
        # told so in its terminal and closed, with no third app started.
        third = await Tab.open(server.ws_url)
        await async_wait_for(lambda: third.closed_by_server, "the server to close the third websocket")
        assert "server is full" in third.text()
        await third.close()
        assert len(server.apps()) == 2
        # A place frees when a tab closes, and the next tab gets it.
        await tabs[0].close()
        await asyncio.to_thread(wait_for, lambda: len(server.apps()) == 1, "the closed tab's app to exit")
        await asyncio.to_thread(wait_for, lambda: index(server)[0] == 200, "the closed tab's place to be free")
        again = await drawn_tab(server)
        server.wait_apps(2)
        await asyncio.gather(again.close(), tabs[1].close())

    run(scenario())
    server.wait_apps(0)
    assert server.stop() == 0, server.output()


@pytest.mark.parametrize("how", ["close", "drop"])
def test_a_tab_that_goes_away_mid_play_leaves_no_process(serve, how):
    """close: the tab closes (a websocket close handshake); drop: the connection
    just ends (a browser killed, a laptop lid shut), no handshake."""
    server = serve()

    async def scenario():
        tab = await drawn_tab(server)
        (app,) = server.wait_apps(1)
        mark = await tab.keys(" ")
        await tab.wait_text("playing", since=mark)
        await (tab.close() if how == "close" else tab.drop())
        return app

    app = run(scenario())
    wait_for(app.gone, f"the app of a tab that went away ({how}) mid-play to exit and be reaped")
    # The server is still there for the next tab.
    status, _ = index(server)
    assert status == 200

    async def next_tab():
        tab = await drawn_tab(server)
        await tab.close()

    run(next_tab())
    assert server.stop() == 0, server.output()


def test_an_app_killed_with_sigkill_is_reaped_and_the_server_goes_on(serve):
    server = serve(max_sessions=3)

    async def scenario():
        tab = await drawn_tab(server)
        (app,) = server.wait_apps(1)
        app.kill(signal.SIGKILL)
        # Reaped: not left a zombie (a zombie still has its /proc entry).
        await asyncio.to_thread(wait_for, app.gone, "the killed app to be reaped by the server")
        # The server goes on: two more tabs, each with its own app.
        status, _ = await asyncio.to_thread(index, server)
        assert status == 200
        tabs = await asyncio.gather(drawn_tab(server), drawn_tab(server))
        server.wait_apps(2)
        await asyncio.gather(tab.close(), *(t.close() for t in tabs))

    run(scenario())
    server.wait_apps(0)
    assert server.stop() == 0, server.output()


def test_the_tab_of_a_killed_app_is_told_and_its_place_freed(serve):
    server = serve(max_sessions=1)

    async def scenario():
        tab = await drawn_tab(server)
        (app,) = server.wait_apps(1)
        app.kill(signal.SIGKILL)
        await asyncio.to_thread(wait_for, app.gone, "the killed app to be reaped by the server")
        try:
            # The page shows textual-serve's "Session ended" when its websocket closes.
            await async_wait_for(lambda: tab.closed_by_server, "the server to close the killed app's websocket", timeout=15)
            # The server frees the place once it has reaped the app, a moment after the close.
            await asyncio.to_thread(wait_for, lambda: index(server)[0] == 200, "the dead session to give up the only place")
        finally:
            await tab.close()

    run(scenario())
    assert server.stop() == 0, server.output()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_server_stops_every_app(serve, sig):
    server = serve()

    async def scenario():
        tabs = await asyncio.gather(drawn_tab(server), drawn_tab(server))
        apps = server.wait_apps(2)
        mark = await tabs[0].keys(" ")  # one playing, one paused
        await tabs[0].wait_text("playing", since=mark)
        code = await asyncio.to_thread(server.stop, sig)
        for tab in tabs:
            await async_wait_for(lambda: tab.closed_by_server, "the stopping server to close the websocket")
            await tab.close()
        return apps, code

    apps, code = run(scenario())
    assert code == 0, server.output()
    assert [app for app in apps if not app.gone()] == [], "app processes outlived the server"


def test_exports_and_screenshots_go_to_the_browser_not_to_the_servers_disk(serve):
    """x and s in a served app: each file is delivered through the websocket
    (a deliver_file_start message, then GET /download/KEY), and nothing is
    written where the server runs (the fixture checks its working directory
    stays empty)."""
    server = serve()

    def delivered(tab: Tab) -> list[str]:
        return [s[1] for s in tab.strings if isinstance(s, list) and s[:1] == ["deliver_file_start"]]

    async def scenario():
        tab = await drawn_tab(server)
        mark = await tab.keys("e")
        await tab.wait_text("k 60/60 | done", since=mark)
        await tab.keys("x")  # the run: a .json and a .csv
        await async_wait_for(lambda: len(delivered(tab)) >= 2, "the export's two deliver_file_start messages")
        await tab.keys("s")  # the screen: an .svg
        await async_wait_for(lambda: len(delivered(tab)) >= 3, "the screenshot's deliver_file_start message")
        files = {}
        for key in delivered(tab):
            async with tab.http.get(f"{server.url}/download/{key}", timeout=aiohttp.ClientTimeout(total=PATIENCE)) as response:
                assert response.status == 200
                name = response.headers.get("Content-Disposition", "").partition("filename=")[2]
                assert response.headers.get("Content-Disposition", "").startswith("attachment"), response.headers
                files[name] = await response.text()
        await tab.close()
        return files

    files = run(scenario())
    by_kind = {name.rsplit(".", 1)[-1]: text for name, text in files.items()}
    assert sorted(by_kind) == ["csv", "json", "svg"], sorted(files)
    assert all(name.startswith(f"bptt-lab-{PRESET}-") for name in files), sorted(files)
    assert json.loads(by_kind["json"])  # whole, not cut short
    assert len(by_kind["csv"].strip().splitlines()) > 60  # a head and the 60 steps
    assert by_kind["svg"].lstrip().startswith("<svg") and by_kind["svg"].rstrip().endswith("</svg>")
    server.wait_apps(0)
    assert server.stop() == 0, server.output()
