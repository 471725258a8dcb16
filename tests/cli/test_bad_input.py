"""Bad input and faults at the command line: each gets one line on stderr and
exit code 2 (130 for Ctrl-C), a correct run, or a documented decision; never
a traceback, and never a silently different run.

Process-level cases (closed streams, a narrow encoding, SIGINT) run the
installed console script in a subprocess, as a user's shell would.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.processes import stop_while_writing
from tests.reference import batch_norm, section_2
from tui.cli import app

runner = CliRunner()
SCRIPT = str(Path(sys.executable).with_name("bptt-lab"))
ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def refused(result, *words: str) -> str:
    """The one-line error of a refused command; `words` must all be in it."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert "\n" not in err and err.startswith("bptt-lab: error: "), err
    assert "Traceback" not in result.output
    for w in words:
        assert w in err, (w, err)
    return err


def shell(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([SCRIPT, *args], capture_output=True, env=full_env, timeout=120, **kw)


# -- numbers as typed ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args, flag",
    [
        (("-H", "3_2"), "--hidden"),  # Python's int() reads 32
        (("--scale", "1_0"), "--scale"),  # float() reads 10.0
        (("-H", "３２"), "--hidden"),  # full-width digits: int() reads 32
        (("--seed", "0x10"), "--seed"),
    ],
)
def test_a_number_is_read_as_typed_or_refused(args, flag):
    refused(invoke("run", "seed-explode", *args), flag, repr(args[1]))


@pytest.mark.parametrize("args", [("-H", "3", "-H", "4"), ("-H", "3", "--hidden", "4"), ("--scale=2", "--scale", "3"), ("--format", "json", "--dump", "--dump")])
def test_an_option_given_twice_is_refused_not_last_wins(args):
    err = refused(invoke("run", "seed-explode", *args), "given 2 times")
    assert "once" in err


def test_the_help_states_the_rules_it_enforces():
    out = invoke("run", "--help").stdout
    flat = " ".join(out.split())
    assert "repeated option is refused" in flat
    assert "dL/dh_T itself, straight from the loss, is not clipped" in flat


# -- settings that would be silently ignored, whatever their value ---------------------


def test_explicit_settings_that_do_not_apply_are_refused_even_at_their_default(tmp_path):
    w = tmp_path / "w.npz"
    H, D, K = 4, 4, 4
    rng = np.random.default_rng(0)
    np.savez(w, weight_ih_l0=rng.standard_normal((H, D)), weight_hh_l0=rng.standard_normal((H, H)), bias_ih_l0=np.zeros(H), bias_hh_l0=np.zeros(H), **{"head.weight": rng.standard_normal((K, H)), "head.bias": np.zeros(K)})
    refused(invoke("run", "orthogonal", "--weights", str(w), "--init", "xavier"), "--init", "weights")  # xavier is the default
    refused(invoke("run", "seed-explode", "--loss", "mse"), "--loss", "chain")  # mse is the default
    refused(invoke("run", "seed-explode", "--cell", "lstm", "--activation", "tanh"), "--activation")  # tanh is the default


# -- texts ---------------------------------------------------------------------------


def test_an_empty_text_is_refused_not_run_on_random_inputs():
    refused(invoke("run", "wig-sentence", "--text", ""), "--text", "empty")
    refused(invoke("run", "seed-vanish", "--mode", "bptt", "--text", "   "), "--text", "empty")


def test_a_text_of_one_distinct_word_is_refused_one_class_has_nothing_to_predict():
    refused(invoke("run", "wig-sentence", "--text", "a a a"), "--text", "two different words")


def test_a_vocabulary_beyond_the_input_size_limit_is_refused():
    words = " ".join(f"w{i}" for i in range(6000))
    refused(invoke("run", "wig-sentence", "--text", words), "--text", "6000 different words", "4096")


# -- unsafe text -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x\x1b]0;pwned\x07y", "clear\x1b[2Jscreen", "two\nlines", "c1\x9bcontrol"])
def test_a_user_string_never_reaches_the_terminal_raw(name):
    err = refused(invoke("run", name), "unknown preset")
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in err), repr(err)
    assert "\\x1b" in err or "\\n" in err or "\\x9b" in err


# -- statuses agree with the records ----------------------------------------------------------


def test_a_gradient_that_becomes_exactly_zero_is_vanishing_not_undetermined():
    """lstm-cec with inputs of 1e6: every gate saturates, so dL/dh is exactly 0 from k = 1."""
    import json

    result = invoke("run", "lstm-cec", "-T", "5", "--input-scale", "1e6", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["grad_norm"] for s in doc["steps"]] == [0.0] * 5
    assert doc["summary"]["start_norm"] > 0
    assert doc["summary"]["regime"] == "vanishing"
    assert doc["summary"]["mean_growth"] == 0.0


def test_a_truncated_gradient_is_not_called_vanishing():
    """Truncation zeroes the carried gradient on purpose: that says nothing about the Jacobians."""
    import json

    result = invoke("run", "clip-rescue", "--clip", "none", "--truncate", "5", "--format", "json")
    doc = json.loads(result.stdout)
    assert [s["status"] for s in doc["steps"]][5:] == ["truncated"] * (60 - 5)
    assert doc["summary"]["regime"] != "vanishing"


def test_every_null_bound_is_explained_by_the_summary():
    """seed-explode --scale 10: the bound start * sigma_max^k passes the largest double
    at a step computed here from SPEC section 2, while |dL/dh| is still finite."""
    import json

    result = invoke("run", "seed-explode", "--scale", "10", "-T", "2000", "--format", "json")
    doc = json.loads(result.stdout)
    Wh = section_2(10.0).Wh
    sigma = np.linalg.svd(Wh, compute_uv=False)[0]
    start = batch_norm(np.ones((2, 3)), 2)
    k_gone = math.floor((math.log(sys.float_info.max) - math.log(start)) / math.log(sigma)) + 1
    summary, steps = doc["summary"], doc["steps"]
    assert summary["bound_overflow_k"] == k_gone
    assert all(s["bound"] is not None for s in steps[: k_gone - 1])
    assert all(s["bound"] is None for s in steps[k_gone - 1 :])
    assert steps[k_gone - 1]["grad_norm"] is not None and steps[k_gone - 1]["status"] == "exploding"
    assert doc["summary"]["overflow_k"] > k_gone


def test_step_clipping_leaves_the_starting_gradient_as_the_loss_gave_it():
    """The decision stated in the help: with T = 1 the only parameter-gradient term
    uses dL/dh_T, so a step clip (whatever its threshold) changes no parameter gradient."""
    import json

    def grads(*extra):
        result = invoke("run", "clip-rescue", "-T", "1", "--format", "json", "--dump", *extra)
        return json.loads(result.stdout)

    plain = grads("--clip", "none")
    clipped = grads("--clip", "step", "--clip-threshold", "1e-6")
    assert clipped["summary"]["start_norm"] == plain["summary"]["start_norm"] > 1e-6
    assert clipped["steps"][0]["clip"]["applied"]  # dL/dh_0 is clipped as usual
    assert clipped["grads"] == plain["grads"]


# -- the process's edges --------------------------------------------------------------------


def test_closed_stdout_is_one_line_and_exit_2():
    done = shell("run", "seed-explode", stdout=None, pass_fds=(), preexec_fn=lambda: os.close(1))
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.count("\n") == 1 and "standard output is closed" in err and "--output" in err


def test_closed_stdin_does_not_stop_a_headless_run():
    done = shell("run", "seed-explode", stdin=None, preexec_fn=lambda: os.close(0))
    assert done.returncode == 0, done.stderr
    assert b"seed-explode" in done.stdout


def test_an_ascii_terminal_gets_ascii_spellings_not_a_unicode_error():
    done = shell("run", "seed-explode", env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode("ascii")  # raises if anything else slipped through
    assert "sigma_max*gamma = 2.66*1 = 2.66 > 1" in out


def test_ctrl_c_during_start_up_exits_130_quietly():
    """A real SIGINT, delivered while the engine's numpy is being imported."""
    code = (
        "import builtins, os, signal, sys\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a CI runner may start us with SIGINT\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # blocked or ignored\n"
        "real = builtins.__import__\n"
        "def spy(name, *a, **k):\n"
        "    if name == 'numpy':\n"
        "        builtins.__import__ = real\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = spy\n"
        "sys.argv = ['bptt-lab', 'run', 'seed-explode']\n"
        "from tui.entry import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, timeout=120)
    assert done.returncode == 130, done
    assert b"Traceback" not in done.stderr and b"KeyboardInterrupt" not in done.stderr
    assert done.stdout == b""


# -- output that cannot be written whole --------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_a_short_write_to_stdout_is_an_error_not_a_truncated_file(tmp_path, fmt):
    """A file-size limit (or a full disk) cuts a write short: CPython's buffered
    stdout would drop the rest and exit 0; the command must say so and exit 2."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    with open(tmp_path / "out.txt", "wb") as out:
        done = subprocess.run([SCRIPT, "run", "seed-explode", "-T", "50", "-f", fmt], stdout=out, stderr=subprocess.PIPE, preexec_fn=limit, timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.count("\n") == 1 and "File too large" in err and "Traceback" not in err


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_kill_during_output_leaves_no_temporary_file(tmp_path, sig):
    import signal

    target = tmp_path / "out.json"
    code, err = stop_while_writing([SCRIPT, "run", "seed-vanish", "-T", "1000000", "-f", "json", "-o", str(target)], tmp_path, sig)
    assert code == 128 + getattr(signal, sig), err
    assert b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_long_forward_pass_is_never_silent(monkeypatch):
    """The forward pass runs inside Run(config) and cannot count its steps: while it
    runs, a line says it still does (every 30 s without a terminal; here 10 ms)."""
    import io
    import time

    from tui import report

    monkeypatch.setattr(report, "_LINE_EVERY", 0.01)
    err = io.StringIO()
    progress = report.Progress(stream=err, after=0.0)
    progress.begin()
    progress._beat("forward pass")
    for _ in range(1000):  # up to 10 s for two heartbeats, however busy the machine
        if err.getvalue().count("still computing") >= 2:
            break
        time.sleep(0.01)
    progress.end("forward pass done")
    lines = err.getvalue().splitlines()
    assert sum("forward pass: still computing" in x for x in lines) >= 2
    assert lines[-1].startswith("bptt-lab: forward pass done in")
    quiet = len(err.getvalue())
    time.sleep(0.05)
    assert len(err.getvalue()) == quiet  # the heartbeat stopped with the phase


def test_a_stop_signal_swallowed_by_compiled_code_still_stops_the_run(tmp_path, monkeypatch):
    """The handler's exception can be lost inside compiled code (it was, in
    numpy.random's first import): the signal is recorded and raised again at the
    next phase boundary, so the run still stops and leaves no file."""
    import os
    import signal

    from tui import report

    real_setup = report.Progress.setup

    def swallowing_setup(self, config):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes, here
                pass
        except BaseException:  # what the compiled code did with it
            pass
        real_setup(self, config)

    monkeypatch.setattr(report.Progress, "setup", swallowing_setup)
    before = signal.getsignal(signal.SIGTERM)
    result = invoke("run", "seed-explode", "-f", "json", "-o", str(tmp_path / "out.json"))
    assert result.exit_code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before  # the command gives the handlers back
