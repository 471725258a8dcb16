"""`bptt-lab serve` in a real browser: headless Chromium opens the page, the
dashboard draws in it, keys typed into the page drive it, closing the tab
ends its app, and SIGINT stops the server with nothing left running.

Reading the screen. textual-serve's page (static/js/textual.js) draws with
xterm.js's WebGL renderer, or its canvas renderer where WebGL fails (as with
--disable-gpu): the text is pixels, not DOM (there is no `.xterm-rows`). The
page keeps its terminal in a local variable, but the object that owns it
sets `this.websocket_url` in its constructor; a setter for that name on
Object.prototype, installed before the page's scripts run
(Page.addScriptToEvaluateOnNewDocument), records the object on
`window.__bpttLabTerminals` and then defines the property as a plain one, so
the page behaves as before. The test reads xterm.js's own screen buffer
(terminal.buffer.active, public API: getLine(y).translateToString()), which
is the text the canvas shows, cell for cell. (The alternatives: decoding the
websocket frames means emulating a terminal in the test; OCR of a screenshot
is neither exact nor deterministic.) If a textual-serve release renames that
property, the test fails saying the terminal was not found.

The browser: Debian's /usr/bin/chromium and /usr/bin/chromedriver, named to
Selenium explicitly, with SE_OFFLINE=1 so Selenium Manager never downloads a
browser or a driver; every host but 127.0.0.1 resolves to nothing, so the
page's Google Fonts link fails at once (offline, the page would otherwise
wait on it before it connects). Missing any of these, the test skips and
says why (`make test` installs them as root; see the Makefile).

BPTT_LAB_SAVE_PNG=1 also saves the page, as the test leaves it, to
docs/serve.png (the README shows it); the PNG is always saved in the test's
tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from .serving import Served, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PRESET = "irnn"
WINDOW = (1400, 900)

# Before the page's scripts: keep a reference to textual.js's terminal owner (see the docstring).
HOOK = r"""
(() => {
  const owners = (window.__bpttLabTerminals = []);
  Object.defineProperty(Object.prototype, "websocket_url", {
    configurable: true,
    set(value) {
      Object.defineProperty(this, "websocket_url", {value, writable: true, enumerable: true, configurable: true});
      owners.push(this);
    },
  });
})();
"""
# The terminal's screen, one string per row (null until the page has made its terminal).
SCREEN = r"""
const owner = (window.__bpttLabTerminals || [])[0];
if (!owner || !owner.terminal) return null;
const term = owner.terminal, buffer = term.buffer.active, rows = [];
for (let y = 0; y < term.rows; y++) {
  const line = buffer.getLine(buffer.viewportY + y);
  rows.push(line ? line.translateToString(true) : "");
}
return rows;
"""


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found: install Debian's {package} (make test does, as root with apt-get)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]' (make test does)"
    return None


@pytest.fixture
def chromium(tmp_path):
    reason = _missing()
    if reason:
        pytest.skip(f"browser test: {reason}")
    os.environ["SE_OFFLINE"] = "1"  # Selenium Manager: never download a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path / "chromium-profile"
    for flag in (
        "--headless",
        "--no-sandbox",  # as root
        "--disable-gpu",
        "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MB: too small for Chromium
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        # Offline and deterministic: only the server under test resolves.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
        yield driver
    finally:
        try:
            driver.quit()  # the test quits it already, to close the tab
        except Exception:
            pass
        shutil.rmtree(profile, ignore_errors=True)


def screen(driver) -> list[str]:
    return driver.execute_script(SCREEN) or []


def header(rows: list[str]) -> str:
    return rows[0] if rows else ""


def wait_screen(driver, what: str, *conditions) -> list[str]:
    """Wait until every condition holds of the screen's rows (the app draws a
    frame in pieces: the header can be there before the chart); the rows then."""
    seen: list[list[str]] = [[]]

    def showing():
        seen[0] = screen(driver)
        return seen[0] if seen[0] and all(condition(seen[0]) for condition in conditions) else None

    try:
        return wait_for(showing, f"the page to show {what}")
    except AssertionError as error:
        raise AssertionError(f"{error}; it shows:\n" + "\n".join(seen[0])) from None


def painted(driver) -> None:
    """Wait for the page's next two animation frames: xterm.js paints what is in
    its buffer on an animation frame, and a screenshot should show what was read."""
    driver.execute_async_script("const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done()));")


def shown_k(rows: list[str]) -> int:
    """The header's step counter: `irnn | k 12/60 | ...` -> 12 (-1 before it shows)."""
    found = re.search(r"\| k (\d+)/\d+ \|", header(rows))
    return int(found.group(1)) if found else -1


def header_has(text: str):
    return lambda rows: text in header(rows)


def a_row_has(*texts: str):
    return lambda rows: any(all(t in row for t in texts) for row in rows)


def test_the_dashboard_in_a_real_browser(chromium, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    server = Served(PRESET, max_sessions=2, cwd=cwd, logs=tmp_path)
    try:
        chromium.get(server.url + "/")
        wait_for(lambda: chromium.execute_script("return (window.__bpttLabTerminals || []).length > 0"), "the page's terminal (textual.js's terminal owner; see the module docstring)")
        # Drawn: the dashboard as in a terminal: header, chart, step log, footer.
        wait_screen(
            chromium,
            "the dashboard",
            header_has(f" {PRESET} | k 0/60 | paused"),
            a_row_has("backward step k"),  # the chart's axis
            a_row_has("|dL/dh|", "ratio", "events"),  # the step log's column heads
            a_row_has("space play", "n step", "e end"),  # the footer
        )
        (app,) = server.wait_apps(1)

        # Keys typed into the page reach this tab's app.
        chromium.find_element(By.CSS_SELECTOR, ".xterm-screen").click()


        def press(key: str) -> None:
            ActionChains(chromium).send_keys(key).perform()

        press("n")  # one step
        wait_screen(chromium, "k 1 after n", header_has(f" {PRESET} | k 1/60 | paused"))
        press(" ")  # play: the counter advances by itself
        wait_screen(chromium, "play advancing the step counter", lambda rows: shown_k(rows) > 1)
        press("e")  # to the end
        wait_screen(
            chromium,
            "the run at its end after e",
            header_has(f" {PRESET} | k 60/60 | done"),
            lambda rows: any(re.search(r"(^|\u2502)\s*60\s+0\s", row) for row in rows),  # the log's last row: k 60, t 0
        )
        painted(chromium)

        png = tmp_path / "serve.png"
        assert chromium.save_screenshot(str(png))
        assert png.stat().st_size > 10_000
        if os.environ.get("BPTT_LAB_SAVE_PNG") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copyfile(png, ROOT / "docs" / "serve.png")

        # Closing the tab ends its app (reaped, not a zombie); the server goes on.
        chromium.quit()
        wait_for(app.gone, "the closed tab's app process to exit and be reaped")
        assert server.proc.poll() is None, server.output()

        assert server.stop(signal.SIGINT) == 0, server.output()
        assert server.leftovers() == []
        assert list(cwd.iterdir()) == [], "the server wrote into its working directory"
    finally:
        server.close()
