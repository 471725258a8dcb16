"""`bptt-lab serve`: what reaches a tab's command, what is refused, and what
the app does differently under the web driver.

- A preset name or TOML value full of shell syntax reaches the app as one
  argument: nothing is run (a shell would have created the marker file).
- Bad flags are refused before serving: one line, exit 2.
- A host other than loopback is served with a one-line warning.
- Under the web driver the terminal check lets the app start; an export
  downloads in the browser and nothing is written on the server.
- An app whose server has gone (SIGKILL: no chance to stop its apps) quits by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.processes import as_a_shell_would

from .serving import SCRIPT, Served, Tab, free_port, wait_for


WEB_ENV = {"TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver", "COLUMNS": "100", "ROWS": "30"}


def _served(tmp_path, preset: str, *flags: str) -> Served:
    cwd, logs = tmp_path / "cwd", tmp_path / "logs"
    cwd.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    return Served(preset, *flags, max_sessions=2, cwd=cwd, logs=logs)


# A name a shell would run: `;`, `$( )` and backquotes each create the marker.
HOSTILE = "mine; touch PWNED1 $(touch PWNED2) `touch PWNED3`"


def test_shell_syntax_in_a_preset_name_and_a_toml_value_runs_nothing(tmp_path):
    presets = tmp_path / "presets.toml"
    presets.write_text(f'["{HOSTILE}"]\nbase = "irnn"\ntext = "the man $(touch PWNED4) went ; touch PWNED5"\n', encoding="utf-8")
    server = _served(tmp_path, HOSTILE, "--preset-file", str(presets))

    async def tab_draws():
        tab = await Tab.open(server.ws_url, width=120, height=40)
        try:
            await tab.wait_text("k 0/")  # the app started and drew: its argv was whole
            (app,) = server.wait_apps(1)  # there already: no wait
            return app.cmdline()
        finally:
            await tab.close()

    try:
        argv = asyncio.run(tab_draws())
        assert argv[-1] == HOSTILE and argv[-2] == "--"  # one argument, after the end of the options
        assert server.stop() == 0
    finally:
        server.close()
    for root in (tmp_path, tmp_path / "cwd"):
        assert not list(root.glob("PWNED*")), "a shell ran part of the preset name or a TOML value"


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--port", "0"], "--port: 0 is not a port"),
        (["--port", "70000"], "--port: 70000 is not a port"),
        (["--max-sessions", "0"], "--max-sessions: 0 is not in 1-1000"),
        (["--speed", "7"], "--speed: 7 is not one of"),
        (["--pause-at", "never"], "--pause-at: 'never' is not one of"),
        (["-H", "0"], "hidden"),
        (["--host", "no.such.host.invalid"], "cannot serve on no.such.host.invalid"),
    ],
)
def test_bad_flags_are_refused_before_serving(flags, says):
    done = subprocess.run([SCRIPT, "serve", "irnn", *flags], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_an_unknown_preset_is_refused_with_the_closest_names():
    done = subprocess.run([SCRIPT, "serve", "irn"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "irnn" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_one_line(tmp_path):
    server = _served(tmp_path, "irnn")
    try:
        done = subprocess.run([SCRIPT, "serve", "irnn", "--port", str(server.port)], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 2 and f"cannot serve on 127.0.0.1:{server.port}" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    finally:
        server.close()


def test_serving_beyond_loopback_warns_in_one_line(tmp_path):
    port = free_port()
    proc = subprocess.Popen([SCRIPT, "serve", "irnn", "--host", "0.0.0.0", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, preexec_fn=as_a_shell_would(new_session=True))
    try:
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert first.startswith("bptt-lab serving irnn at http://0.0.0.0:")
        assert second == f"from other machines: http://{socket.gethostname()}:{port} (or this machine's address)\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warning == [f"warning: serving on 0.0.0.0: anyone who can reach port {port} can open and drive the lab"]
    loopback = subprocess.run([SCRIPT, "serve", "irnn", "--port", "0"], capture_output=True, text=True, timeout=120)
    assert "warning" not in loopback.stderr  # refused for the port, and no warning on loopback


def test_the_terminal_check_lets_the_web_driver_start_the_app(tmp_path):
    # No terminal on either end, as under textual-serve: without the web driver
    # the dashboard refuses (exit 2); with it, the app speaks the driver's protocol.
    plain = subprocess.run([SCRIPT, "tui", "irnn"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert plain.returncode == 2 and "needs a terminal" in plain.stderr
    env = {**os.environ, **WEB_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "tui.entry", "tui", "irnn"], env=env, cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"__GANGLION__\n"  # the web driver's hello to the server
        quit_packet = json.dumps({"type": "quit"}).encode()
        proc.stdin.write(b"M" + len(quit_packet).to_bytes(4, "big") + quit_packet)
        proc.stdin.flush()
        proc.stdout.read()  # to the end: the app exits
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    assert list(tmp_path.iterdir()) == []


def test_an_export_and_a_screenshot_download_in_the_browser_and_write_nothing_on_the_server(tmp_path):
    server = _served(tmp_path, "irnn")

    async def export_and_fetch():
        tab = await Tab.open(server.ws_url, width=120, height=40)
        try:
            await tab.wait_text("k 0/")
            await tab.keys("n")
            await tab.wait_text("k 1/")
            await tab.keys("x")
            await tab.keys("s")
            keys = await _delivery_keys(tab, 3)  # JSON, CSV, SVG
            bodies = {}
            for key in keys:
                async with tab.http.get(f"{server.url}/download/{key}") as response:
                    assert response.status == 200
                    name = response.headers["Content-Disposition"].split("filename=")[1]
                    bodies[name] = await response.text()
            return bodies
        finally:
            await tab.close()

    try:
        bodies = asyncio.run(export_and_fetch())
        assert server.stop() == 0
    finally:
        server.close()
    by_suffix = {name.rsplit(".", 1)[1]: text for name, text in bodies.items()}
    assert sorted(by_suffix) == ["csv", "json", "svg"]
    exported = json.loads(by_suffix["json"])
    assert exported["preset"] == "irnn" and len(exported["steps"]) == 1  # what was on screen: one step
    assert by_suffix["csv"].count("\n") == 2  # header and that step
    assert by_suffix["svg"].lstrip().startswith("<svg") and "irnn" in by_suffix["svg"]
    assert list((tmp_path / "cwd").iterdir()) == []


async def _delivery_keys(tab: Tab, n: int) -> list[str]:
    def keys():
        found = [s[1] for s in tab.strings if isinstance(s, list) and s and s[0] == "deliver_file_start"]
        return found if len(found) >= n else None

    from .serving import async_wait_for

    return await async_wait_for(keys, f"{n} file deliveries")


def test_an_app_whose_server_was_killed_quits_by_itself(tmp_path):
    server = _served(tmp_path, "irnn")

    async def open_tab():
        tab = await Tab.open(server.ws_url, width=100, height=30)
        await tab.wait_text("k 0/")
        return tab

    try:
        loop = asyncio.new_event_loop()
        tab = loop.run_until_complete(open_tab())
        (app,) = server.wait_apps(1)
        os.kill(server.proc.pid, signal.SIGKILL)  # no on_shutdown: the server cannot stop its apps
        server.proc.wait()
        wait_for(lambda: not app.running(), "the orphaned app to quit")
        loop.run_until_complete(tab._finish())
        loop.close()
    finally:
        server.close()
