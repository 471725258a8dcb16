"""What the tests that start bptt-lab as a process share."""

from __future__ import annotations

import os
import signal

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def as_a_shell_would(new_session: bool = False):
    """A preexec_fn: the child gets the stop signals as a shell gives them
    (unblocked, default), whatever the test runner was started with (CI may
    start it with SIGINT ignored or SIGHUP blocked); with `new_session`, in a
    session of its own (to own a pty as its terminal)."""

    def setup() -> None:
        if new_session:
            os.setsid()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOPS))
        for sig in STOPS:
            signal.signal(sig, signal.SIG_DFL)

    return setup
