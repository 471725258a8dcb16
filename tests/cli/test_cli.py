"""The `bptt-lab` command line, through typer's CliRunner (never the TUI).

Expected numbers come from the transcription of SPEC section 2 in tests/reference.py, not from the engine.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.presets import BUILTIN
from tests.reference import section_2
from tui.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def strict_json(text: str):
    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


# -- commands -------------------------------------------------------------------------


def test_version_prints_the_installed_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bptt-lab {metadata.version('bptt-lab')}"


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    commands = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2]
    assert {"run", "presets"} <= set(commands)


def test_run_help_shows_every_override_flag():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    for flag in ("--cell", "--activation", "--hidden", "-H", "--batch", "-N", "--steps", "-T", "--input-size", "--mode", "--loss",
                 "--loss-on", "--init", "--scale", "--spectral-radius", "--seed", "--forget-bias", "--clip", "--clip-threshold",
                 "--truncate", "--weights", "--preset-file", "--format", "--dump", "--plot", "--output"):
        assert flag in result.stdout, flag


def test_help_and_presets_do_not_import_textual():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from tui.cli import app\n"
        "r = CliRunner()\n"
        "assert r.invoke(app, ['--help']).exit_code == 0\n"
        "assert r.invoke(app, ['presets']).exit_code == 0\n"
        "assert r.invoke(app, ['run', '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('textual', 'textual_plotext', 'plotext') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_presets_table_lists_every_builtin_with_its_description():
    result = invoke("presets")
    assert result.exit_code == 0
    for name, preset in BUILTIN.items():
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        assert preset.description[:40] in line


def test_presets_json_carries_names_sentences_and_configs():
    result = invoke("presets", "--format", "json")
    assert result.exit_code == 0
    doc = strict_json(result.stdout)
    assert [p["name"] for p in doc] == list(BUILTIN)
    explode = doc[0]
    assert explode["look_for"] and explode["config"]["hidden"] == 3 and explode["config"]["init"] == "gaussian"


def test_run_csv_reproduces_the_reference_experiment():
    result = invoke("run", "seed-explode", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["k"]) for r in rows] == list(range(1, 21))
    assert [int(r["t"]) for r in rows] == list(range(19, -1, -1))
    np.testing.assert_allclose([float(r["grad_norm"]) for r in rows], section_2().norms, rtol=1e-12)


def test_run_json_is_strict_and_follows_the_schema():
    result = invoke("run", "seed-vanish", "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = strict_json(result.stdout)
    assert doc["schema"] == "bptt-lab.run/1" and doc["preset"] == "seed-vanish"
    assert doc["config"]["scale"] == 0.5
    np.testing.assert_allclose([s["grad_norm"] for s in doc["steps"]], section_2(0.5).norms, rtol=1e-12)
    assert doc["summary"]["regime"] == "vanishing"
    assert "params" not in doc


def test_run_json_dump_adds_parameters_by_pytorch_name():
    result = invoke("run", "seed-explode", "--format", "json", "--dump")
    doc = strict_json(result.stdout)
    assert set(doc["params"]) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}
    Wh = section_2().Wh
    np.testing.assert_array_equal(np.array(doc["params"]["weight_hh_l0"]), Wh.T)  # SPEC 7: stored transposed
    assert set(doc["grads"]) == set(doc["grads_raw"]) == set(doc["params"])
    assert np.array(doc["inputs"]).shape == (20, 2, doc["config"]["input_size"])


def test_run_table_shows_records_and_the_verdict():
    result = invoke("run", "sigmoid-quarter")
    assert result.exit_code == 0
    out = result.stdout
    assert "sigmoid-quarter: rnn/sigmoid" in out
    assert "vanishing guaranteed: sigma_max·gamma = 2.69·1/4 = 0.671 < 1." in out
    assert "\x1b[" not in out  # no colour codes when not a terminal


def test_run_plot_prints_a_log_axis_chart_without_escape_codes():
    result = invoke("run", "seed-explode", "--plot")
    assert result.exit_code == 0
    out = result.stdout
    assert "gradient norm per backward step (log10 axis)" in out
    # power-of-ten tick labels: the norm runs from 2.47 to 249 and the bound to 3.8e8
    assert "1e2" in out and "1e8" in out
    assert "\x1b[" not in out


def test_run_output_writes_the_file_and_leaves_stdout_clean(tmp_path):
    target = tmp_path / "run.json"
    result = invoke("run", "seed-explode", "--format", "json", "--output", str(target))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "wrote" in result.stderr
    assert len(strict_json(target.read_text())["steps"]) == 20


def test_overrides_reach_the_engine():
    result = invoke("run", "seed-explode", "-T", "7", "--clip", "step", "--clip-threshold", "3", "--format", "json")
    doc = strict_json(result.stdout)
    assert len(doc["steps"]) == 7 and doc["config"]["clip_threshold"] == 3.0
    # derivative clipping transcribed: once the norm exceeds 3 it is held at 3
    clipped = [s["k"] for s in doc["steps"] if s["clip"]]
    expected, dh = [], np.ones((2, 3))
    Wt = np.array(strict_json(invoke("run", "seed-explode", "--format", "json", "--dump").stdout)["params"]["weight_hh_l0"])
    for k in range(1, 8):
        dh = dh @ Wt
        n = np.linalg.norm(dh) / 2
        if n > 3:
            dh *= 3 / n
            expected.append(k)
    assert clipped == expected and expected


def test_weights_round_trip_through_the_cli(tmp_path):
    doc = strict_json(invoke("run", "clip-rescue", "--format", "json", "--dump").stdout)
    npz = tmp_path / "w.npz"
    np.savez(npz, **{k: np.array(v) for k, v in doc["params"].items()})
    again = strict_json(invoke("run", "clip-rescue", "--weights", str(npz), "--format", "json").stdout)
    assert [s["grad_norm"] for s in again["steps"]] == [s["grad_norm"] for s in doc["steps"]]


def test_a_preset_file_adds_runnable_presets(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[short-explode]\nbase = "seed-explode"\ndescription = "five steps"\nsteps = 5\n')
    listed = invoke("presets", "--preset-file", str(f))
    assert "short-explode" in listed.stdout and "five steps" in listed.stdout
    doc = strict_json(invoke("run", "short-explode", "--preset-file", str(f), "--format", "json").stdout)
    np.testing.assert_allclose([s["grad_norm"] for s in doc["steps"]], section_2(T=5).norms, rtol=1e-12)


# -- bad input: one line on stderr, exit code 2, never a traceback -------------------------


def assert_usage_error(result, *needles: str):
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bptt-lab: error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_unknown_preset_suggests_the_closest_names():
    assert_usage_error(invoke("run", "seed-exploed"), "unknown preset 'seed-exploed'", "seed-explode")


@pytest.mark.parametrize(
    "args, needles",
    [
        (("--hidden", "0"), ("--hidden", "1 to 4096", "got 0")),
        (("-T", "0"), ("--steps", "1 to 1000000")),
        (("--scale", "-2"), ("--scale", "from 0")),
        (("--clip", "norm", "--clip-threshold", "0"), ("--clip-threshold", "> 0")),
        (("--hidden", "abc"), ("--hidden", "integer", "1 to 4096")),
        (("--scale", "big"), ("--scale", "number")),
        (("--cell", "transformer"), ("--cell", "transformer")),
        (("--hiden", "3"), ("--hiden",)),
    ],
)
def test_bad_values_name_the_flag_and_the_allowed_range(args, needles):
    assert_usage_error(invoke("run", "clip-rescue", *args), *needles)


def test_a_run_too_large_for_memory_is_refused_with_the_estimate():
    assert_usage_error(invoke("run", "clip-rescue", "-T", "1000000", "-H", "4096", "-N", "4096"), "GiB", "limit")


def test_settings_that_do_not_apply_are_refused_not_dropped():
    assert_usage_error(invoke("run", "lstm-cec", "--activation", "relu"), "--activation", "rnn only")
    assert_usage_error(invoke("run", "seed-explode", "--loss", "xent"), "--loss", "chain")
    assert_usage_error(invoke("run", "seed-explode", "--dump"), "--dump")
    assert_usage_error(invoke("run", "seed-explode", "--format", "csv", "--plot"), "--plot", "--output")


def test_malformed_toml_names_file_line_and_reason(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[ok]\nsteps = 5\nhidden = = 3\n')
    assert_usage_error(invoke("presets", "--preset-file", str(f)), f"{f}:3:")
    g = tmp_path / "typo.toml"
    g.write_text('[mine]\nhiden = 3\n')
    assert_usage_error(invoke("run", "mine", "--preset-file", str(g)), f"{g}:1:", "hiden", "hidden")


def test_missing_and_misshaped_weights_are_explained(tmp_path):
    assert_usage_error(invoke("run", "seed-explode", "--weights", str(tmp_path / "none.npz")), "no such file")
    bad = tmp_path / "bad.npz"
    np.savez(bad, weight_ih_l0=np.zeros((3, 4)), weight_hh_l0=np.zeros((4, 4)), bias_ih_l0=np.zeros(3), bias_hh_l0=np.zeros(3))
    # the sizes come from the file's weight_hh_l0 (H = 4), so weight_ih_l0 is the odd one out
    assert_usage_error(invoke("run", "seed-explode", "--weights", str(bad)), "'weight_ih_l0'", "(3, 4)", "expected (4, 4)")
    short = tmp_path / "short.npz"
    np.savez(short, weight_ih_l0=np.zeros((3, 4)))
    assert_usage_error(invoke("run", "seed-explode", "--weights", str(short)), "missing key 'weight_hh_l0'", "(3, 3)")
    one = tmp_path / "one.npy"
    np.save(one, np.zeros(3))
    assert_usage_error(invoke("run", "seed-explode", "--weights", str(one)), "single array (.npy)")
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    assert_usage_error(invoke("run", "seed-explode", "--weights", str(text)), "not a .npz of arrays")


def test_an_unwritable_output_is_a_usage_error(tmp_path):
    assert_usage_error(invoke("run", "seed-explode", "--format", "csv", "--output", str(tmp_path / "no" / "dir" / "x.csv")), "--output")


def first_overflow_k(scale: float, T: int) -> int:
    """SPEC section 2's chain with Wh * scale (no inputs): the first k where the
    norm ||dh||_F / N (scaled by max|dh| before squaring) is not finite, or the
    bias gradient, the running sum of the carried gradients, stops being finite."""
    chain = section_2(scale, T, safe=True)
    db = np.zeros(3)
    with np.errstate(all="ignore"):
        for k in range(1, T + 1):
            db = db + chain.dh[k - 1].sum(axis=0)
            if not np.isfinite(chain.norms[k - 1]) or not np.all(np.isfinite(db)):
                return k
    raise AssertionError("no overflow")


def test_an_overflowing_run_is_reported_not_crashed():
    result = invoke("run", "seed-explode", "--scale", "10", "-T", "2000")
    assert result.exit_code == 0 and result.stderr == ""
    k = first_overflow_k(10.0, 2000)
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()[:1].isdigit()}
    assert "OVERFLOW" in rows[str(k)] and rows[str(k)].split()[2] == "inf"
    assert "OVERFLOW" not in rows[str(k - 1)]
    assert f"overflow at       k = {k}" in result.stdout
    assert "loss              0  [sum(h_T)]" in result.stdout  # no inputs: h stays 0


# -- the dashboard command: validated like run, never started here -------------------------


def test_tui_without_a_terminal_says_to_use_run():
    assert_usage_error(invoke("tui", "irnn"), "needs a terminal", "bptt-lab run")


@pytest.fixture
def fake_terminal(monkeypatch):
    """A terminal, as far as the CLI can tell; BpttLab.run records instead of running."""
    import tui.app
    import tui.cli as cli

    monkeypatch.setattr(cli, "_has_terminal", lambda: True)
    opened = []
    monkeypatch.setattr(tui.app.BpttLab, "run", lambda self: opened.append((self.preset.name, self.config)))
    return cli, opened


def test_bare_bptt_lab_without_a_terminal_explains():
    assert_usage_error(invoke(), "needs a terminal")


def test_tui_overrides_reach_the_app(fake_terminal):
    cli, opened = fake_terminal
    cli.launch("irnn", None, {"steps": 7, "clip": None})
    name, config = opened[0]
    assert name == "irnn" and config.steps == 7 and config.activation == "relu"


def test_tui_flags_are_validated_before_anything_opens(fake_terminal):
    cli, opened = fake_terminal
    with pytest.raises(cli.UsageError, match="--hidden/-H must be an integer from 1 to 4096"):
        cli.launch("irnn", None, {"hidden": 0})
    assert opened == []


# -- dead units and the hidden path: records, exports, table ---------------------------------------


def test_dead_units_reach_the_json_the_csv_and_the_table():
    """relu-rescue: dead = the fraction of units with net <= 0 (f' = 0), from the
    dumped weights and inputs through SPEC 7's rnn step; ReLU is never saturated."""
    doc = strict_json(invoke("run", "relu-rescue", "--format", "json", "--dump").stdout)
    P = {name: np.array(value) for name, value in doc["params"].items()}
    x = np.array(doc["inputs"])
    T, N, H = x.shape[0], x.shape[1], P["weight_hh_l0"].shape[0]
    h, dead = np.zeros((N, H)), []
    for t in range(T):
        net = x[t] @ P["weight_ih_l0"].T + P["bias_ih_l0"] + h @ P["weight_hh_l0"].T + P["bias_hh_l0"]
        dead.append(np.mean(net <= 0))
        h = np.maximum(net, 0.0)
    expected = dead[::-1]  # record k is transition T - k + 1
    assert [s["dead"] for s in doc["steps"]] == pytest.approx(expected, abs=0)
    assert all(s["saturation"] == 0 for s in doc["steps"])
    rows = list(csv.DictReader(io.StringIO(invoke("run", "relu-rescue", "--format", "csv").stdout)))
    assert [float(r["dead"]) for r in rows] == pytest.approx(expected, abs=0)
    table = invoke("run", "relu-rescue").stdout.splitlines()
    assert table[1].split()[5:7] == ["sat", "dead"]
    assert table[2].split()[5:7] == ["0%", f"{100 * expected[0]:.0f}%"]


def test_dead_does_not_apply_to_tanh():
    doc = strict_json(invoke("run", "tanh-saturation", "--format", "json").stdout)
    assert all(s["dead"] is None for s in doc["steps"])
    rows = list(csv.DictReader(io.StringIO(invoke("run", "tanh-saturation", "--format", "csv").stdout)))
    assert all(r["dead"] == "" for r in rows)
    assert "dead" not in invoke("run", "tanh-saturation").stdout.splitlines()[1].split()


def test_the_hidden_path_beside_the_cell_gradient():
    """lstm-cec: the table shows h-path beside |dL/dc|, the JSON and CSV carry
    hidden_path, and the summary says how little the hidden path alone keeps."""
    doc = strict_json(invoke("run", "lstm-cec", "--format", "json").stdout)
    path = np.array([s["hidden_path"] for s in doc["steps"]])
    sigma = np.array([s["jacobian_sigma"] for s in doc["steps"]])
    np.testing.assert_allclose(path, doc["summary"]["start_norm"] * np.cumprod(sigma), rtol=1e-12)  # the loss is on the last step
    assert doc["summary"]["final_hidden_path"] == path[-1] < 1e-20 * doc["summary"]["final_cell_norm"]
    rows = list(csv.DictReader(io.StringIO(invoke("run", "lstm-cec", "--format", "csv").stdout)))
    assert [float(r["hidden_path"]) for r in rows] == path.tolist()
    out = invoke("run", "lstm-cec").stdout
    assert out.splitlines()[1].split()[4:6] == ["|dL/dc|", "h-path"]
    assert "(the hidden path alone: at most 1.13e-27)" in out
    plot = invoke("run", "lstm-cec", "--plot").stdout
    assert "h-path only" in plot
