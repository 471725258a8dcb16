"""The dashboard as a process in a real (pseudo) terminal: it starts, quits and
gives the terminal back, whatever ends it.

Each test starts `bptt-lab tui` on a pty of 80 x 24, waits for the first
frame (by its text, never for a fixed time), acts, then reads until the
process has exited. What a terminal needs back: the alternate screen left
(ESC[?1049l after the last ESC[?1049h) and mouse tracking off (ESC[?1000l
after the last ESC[?1000h).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.processes import as_a_shell_would

SCRIPT = str(Path(sys.executable).with_name("bptt-lab"))


class Terminal:
    def __init__(self, *args: str, cwd: Path | None = None):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen([SCRIPT, "tui", *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, preexec_fn=as_a_shell_would(new_session=True), close_fds=True)
        os.close(slave)
        self.out = b""

    def read(self, seconds: float = 0.2) -> None:
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            try:
                self.out += os.read(self.master, 65536)
            except OSError:  # the child closed its side
                pass

    def wait_for(self, text: bytes, limit: float = 60.0) -> None:
        end = time.monotonic() + limit
        while text not in self.out and time.monotonic() < end:
            self.read()
        assert text in self.out, f"never saw {text!r}; last output: {self.out[-400:]!r}"

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self, limit: float = 60.0) -> int:
        end = time.monotonic() + limit
        while self.proc.poll() is None and time.monotonic() < end:
            self.read()
        if self.proc.poll() is None:
            self.proc.kill()
            pytest.fail(f"the app did not exit; last output: {self.out[-400:]!r}")
        for _ in range(20):
            self.read(0.05)
        os.close(self.master)
        return self.proc.returncode


def gave_the_terminal_back(out: bytes) -> bool:
    def after(on: bytes, off: bytes) -> bool:
        return out.rfind(off) > out.rfind(on) if on in out else True

    return after(b"\x1b[?1049h", b"\x1b[?1049l") and after(b"\x1b[?1000h", b"\x1b[?1000l")


def test_q_while_playing_an_lstm_exits_and_leaves_no_process():
    term = Terminal("lstm-cec")
    term.wait_for(b"lstm-cec |")
    term.wait_for(b"paused")
    term.send(b" ")
    term.wait_for(b"playing")
    term.send(b"q")
    assert term.finish() == 0
    assert gave_the_terminal_back(term.out)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_gives_the_terminal_back(sig, code):
    term = Terminal("seed-explode")
    term.wait_for(b"seed-explode |")
    term.wait_for(b"paused")
    term.proc.send_signal(sig)
    assert term.finish() == code
    assert b"\x1b[?1049h" in term.out and gave_the_terminal_back(term.out)


def test_q_while_a_large_run_is_still_being_built_exits_promptly():
    term = Terminal("lstm-cec", "-H", "256", "-T", "5000")
    term.wait_for(b"building the run")
    term.send(b"q")
    assert term.finish() == 0
    assert gave_the_terminal_back(term.out)
