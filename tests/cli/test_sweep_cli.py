"""bptt-lab sweep: the formats (strict JSON, CSV, the table, the heatmap on
stdout), the same output with one worker or two, bad axes as one line with
exit code 2, and a Ctrl-C or SIGTERM to the whole process group (as a
terminal sends it) mid-sweep: the exit code, no traceback, no worker left,
no output file."""

from __future__ import annotations

import csv
import io
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import Config, Run
from tests.cli.test_train import invoke, ok, strict_json
from tests.processes import as_a_shell_would

SCRIPT = str(Path(sys.executable).with_name("bptt-lab"))
SMALL = ("sweep", "seed-explode", "--x", "scale=0.3:2.4:6", "--y", "seed=1,2,3")


def test_json_is_strict_and_its_cells_are_single_runs():
    doc = strict_json(ok(*SMALL, "--format", "json").stdout)
    assert doc["schema"] == "bptt-lab.sweep/1" and doc["preset"] == "seed-explode"
    assert doc["x"] == {"field": "scale", "values": pytest.approx([0.3, 0.72, 1.14, 1.56, 1.98, 2.4]), "spacing": "linear"}
    assert doc["y"]["values"] == [1, 2, 3] and len(doc["cells"]) == 3 and all(len(r) == 6 for r in doc["cells"])
    cell = doc["cells"][2][4]  # seed 3, scale 1.98: the chain of SPEC 2 with Wh x 1.98
    config = Config(mode="chain", activation="linear", hidden=3, batch=2, steps=20, init="gaussian", seed=3, input_scale=0.0, scale=1.98)
    run = Run(config)
    run.run()
    expected = (math.log10(run.records.columns["grad_norm"][19]) - math.log10(run.start_norm)) / 20
    assert cell["log10_growth"] == pytest.approx(expected, rel=1e-9)
    assert set(doc["lines"]) == {"along", "sigma_gamma", "spectral_radius", "log10_growth"}


def test_the_same_output_with_one_worker_or_two():
    one = ok(*SMALL, "--format", "json", "--jobs", "1").stdout
    two = ok(*SMALL, "--format", "json", "--jobs", "2").stdout
    assert one == two


def test_csv_has_a_line_per_cell_in_grid_order():
    rows = list(csv.DictReader(io.StringIO(ok(*SMALL, "--format", "csv").stdout)))
    assert len(rows) == 18
    assert [(r["row"], r["col"], r["seed"]) for r in rows[:7]] == [("0", str(j), "1") for j in range(6)] + [("1", "0", "2")]
    doc = strict_json(ok(*SMALL, "--format", "json").stdout)
    assert float(rows[16]["log10_growth"]) == pytest.approx(doc["cells"][2][4]["log10_growth"], rel=1e-12)


def test_the_table_says_where_each_line_crosses():
    out = ok(*SMALL).stdout
    assert "σmax·γ = 1 at scale" in out and "radius = 1 at scale" in out and "18 cells" in out


def test_plot_draws_the_heatmap_with_marks_axes_and_scale(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = ok(*SMALL, "--plot").stdout
    lines = out.splitlines()
    grid = [line for line in lines if line.strip()[:1] in "123" and len(line.split()) == 2 and line.strip()[1:2] == " "]
    assert len(grid) == 3  # a line per seed
    assert any("|" in line for line in grid) and any("o" in line or "*" in line for line in grid)
    assert "scale ->" in out and "log10 growth/step" in out and "\x1b[" not in out


def test_the_default_is_the_phase_diagram_preset():
    out = ok("sweep", "--x", "scale=0.5:2:3", "-T", "20", "-H", "8").stdout
    assert "phase-diagram" in out and "activation" in out and "sigmoid" in out


@pytest.mark.parametrize(
    "args, words",
    [
        (("--x", "colour=1:2:3"), "unknown setting 'colour'"),
        (("--x", "hidden=1:4:3"), "--x hidden=1:4:3: hidden takes whole numbers: 1:4:3 gives 2.5; pick N so the steps are whole (1:4:4) or list them: hidden=1,2,4"),
        (("--x", "scale=2:1:4"), "MIN < MAX"),
        (("--x", "scale=1"), "at least two values"),
        (("--y", "activation=tanh"), "at least two values"),
        (("--x", "scale=1,2", "--y", "scale=3,4"), "two different settings"),
        (("--x", "scale=1,2", "--scale", "2"), "axis"),
        (("--x", "cell=rnn,lstm", "--activation", "relu"), "cell=lstm"),
        (("--jobs", "0"), "--jobs"),
        (("--format", "json", "--plot"), "--plot with --format json needs --output"),
        (("--x", "spectral_radius=0.5,2", "--y", "seed=1,2", "--init", "identity", "--scale", "0"), "the cell spectral_radius=0.5, seed=1: cannot rescale"),  # refused in a worker
    ],
)
def test_bad_input_is_one_line_exit_2(args, words):
    result = invoke("sweep", "seed-explode", *args)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert "\n" not in err and err.startswith("bptt-lab: error: ") and words in err, err
    assert "Traceback" not in result.output


def group_members(pgid: int) -> list[str]:
    return subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()


@pytest.mark.parametrize(("sig", "code", "when"), [(signal.SIGINT, 130, "computing"), (signal.SIGTERM, 143, "starting")])
def test_a_stop_mid_sweep_leaves_no_worker_and_no_file(tmp_path, sig, code, when):
    """The signal goes to the whole process group, workers included, as a terminal's Ctrl-C does:
    once the first progress line says cells are being computed, or as soon as the workers exist."""
    command = [SCRIPT, "sweep", "--x", "scale=0.25:2.5:60", "--y", "input_scale=0.1:2:60", "-f", "json", "-o", "out.json", "--jobs", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, preexec_fn=as_a_shell_would(new_session=True))
    try:
        if when == "computing":
            first = proc.stderr.readline()  # the first progress line (after 2 s): the workers are computing cells
            assert b"cells" in first, first
        for _ in range(6000):
            if len(group_members(proc.pid)) >= 3:  # the command and its two workers at least
                break
            time.sleep(0.01)
        assert len(group_members(proc.pid)) >= 3
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert b"Traceback" not in err and b"Warning" not in err and len(err.splitlines()) <= 1, err
    assert list(tmp_path.iterdir()) == []
    for _ in range(500):  # the pool's helper process ends once the command has: wait for it, not a fixed time
        if not group_members(proc.pid):
            break
        time.sleep(0.01)
    assert group_members(proc.pid) == []


def test_tui_sweep_takes_a_saved_sweep_and_refuses_anything_else(tmp_path, monkeypatch):
    """The dashboard is not started here (tui.cli.launch is replaced): what it would get is checked."""
    import tui.cli

    launched = {}
    monkeypatch.setattr(tui.cli, "launch", lambda *args, **kw: launched.update(kw))
    good, bad = tmp_path / "s.json", tmp_path / "bad.json"
    ok(*SMALL, "--format", "json", "--output", str(good))
    bad.write_text('{"schema": "bptt-lab.run/1"}')
    ok("tui", "--sweep", str(good))
    path, sweep = launched["sweep"]
    assert path == good and sweep.x.field == "scale" and sweep.y.values == (1, 2, 3)
    for target, words in ((bad, "not a bptt-lab sweep"), (tmp_path / "none.json", "No such file")):
        result = invoke("tui", "--sweep", str(target))
        assert result.exit_code == 2 and result.stderr.startswith("bptt-lab: error: --sweep") and words in result.stderr, result.output
