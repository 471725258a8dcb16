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


def header(driver) -> str:
    rows = screen(driver)
    return rows[0] if rows else ""


def wait_header(driver, *needles: str) -> str:
    """Wait until the dashboard's header row holds every needle; the header then."""
    seen = [""]

    def showing():
        seen[0] = header(driver)
        return seen[0] if all(n in seen[0] for n in needles) else None

    try:
        return wait_for(showing, f"the page's header to show {needles}")
    except AssertionError as error:
        raise AssertionError(f"{error}; it shows {seen[0]!r}") from None


def test_the_dashboard_in_a_real_browser(chromium, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    server = Served(PRESET, max_sessions=2, cwd=cwd, logs=tmp_path)
    try:
        chromium.get(server.url + "/")
        wait_for(lambda: chromium.execute_script("return (window.__bpttLabTerminals || []).length > 0"), "the page's terminal (textual.js's terminal owner; see the module docstring)")
        # Drawn: the dashboard's header, as in a terminal.
        first = wait_header(chromium, f" {PRESET} | k 0/60 | paused")
        assert first.startswith(f" {PRESET} | k 0/60 | paused"), first
        rows = screen(chromium)
        assert any("backward step k" in row for row in rows), rows  # the chart's axis
        assert any("space play" in row and "n step" in row for row in rows), rows  # the footer
        (app,) = server.wait_apps(1)

        # Keys typed into the page reach this tab's app.
        chromium.find_element(By.CSS_SELECTOR, ".xterm-screen").click()
        keys = ActionChains(chromium)
        keys.send_keys("n").perform()
        wait_header(chromium, " k 1/60 | paused")
        keys.send_keys(" ").perform()  # play: the counter advances on its own
        wait_for(lambda: not header(chromium).startswith(f" {PRESET} | k 1/60 |"), "play to advance the step counter")
        keys.send_keys("e").perform()  # to the end
        wait_header(chromium, " k 60/60 | done")

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
