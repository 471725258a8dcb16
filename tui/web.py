"""Running under textual-serve's web driver (`bptt-lab serve`): what differs.

The app talks to a browser through pipes, so there is no terminal to check;
files go to the browser (Textual's deliver_text / deliver_binary) rather than
onto the server's disk; and an app whose server has gone quits by itself.
"""

from __future__ import annotations

import os

WEB_DRIVER = "textual.drivers.web_driver:WebDriver"


def under_web_driver() -> bool:
    return os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER


def orphaned(parent: int) -> bool:
    """True once the process that started this one has gone (its children
    are handed to init or a subreaper, so the parent id changes)."""
    return os.getppid() != parent
