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


def stop_while_writing(command: list[str], folder, sig: str, cwd=None) -> tuple[int, bytes]:
    """Start `command` (which writes --output into `folder`), wait (up to a
    minute, not a fixed time) for its temporary file, send the signal named
    `sig`; returns the exit code and stderr."""
    import subprocess
    import time

    import pytest

    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=as_a_shell_would(), cwd=cwd)
    try:
        for _ in range(6000):
            if list(folder.glob(".*.part")):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the temporary output file never appeared")
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err
