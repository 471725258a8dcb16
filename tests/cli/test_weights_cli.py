"""--weights in any of its formats, --weights-prefix, --layer and --save-weights
at the command line: every refusal one line with exit code 2, the round trip
exact, and the saved file a state_dict PyTorch loads (that test needs torch,
and is skipped with the reason where it is not installed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tui.cli import app

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weights"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def refused(*args: str) -> str:
    """The one-line error of a refused command."""
    result = invoke(*args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bptt-lab: error: "), result.stderr
    return lines[0]


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result


def saved(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118 (a safe_open, not a dict)


# -- refusals ------------------------------------------------------------------------------------


def test_every_weights_refusal_is_one_line(tmp_path, monkeypatch):
    two = tmp_path / "two.npz"
    with np.load(FIXTURES / "gru.npz") as raw:
        np.savez(two, **{k: raw[k] for k in raw.files}, **{"decoder." + k: raw[k] for k in raw.files if k.startswith("rnn.")})
    lstm2 = str(FIXTURES / "lstm2.safetensors")
    assert "'rnn.' and 'decoder.rnn.'" in refused("run", "clip-rescue", "--cell", "gru", "--weights", str(two))
    assert refused("run", "clip-rescue", "--cell", "lstm", "--weights", lstm2, "--layer", "2").endswith("--layer 2 is not in weights file " + lstm2 + ": it has layers 0, 1 under prefix 'encoder.rnn.'")
    assert "'encoder.rnn.weight_hh_l0' has shape (16, 4), expected (4, 4)" in refused("run", "clip-rescue", "--weights", lstm2)
    assert "--weights-prefix 'dec.' has no recurrent weights" in refused("run", "clip-rescue", "--cell", "lstm", "--weights", lstm2, "--weights-prefix", "dec")
    assert "--layer applies only with weights" in refused("run", "clip-rescue", "--layer", "1")
    assert "--weights-prefix applies only with weights" in refused("run", "clip-rescue", "--weights-prefix", "rnn")
    monkeypatch.setitem(sys.modules, "torch", None)
    line = refused("run", "clip-rescue", "--cell", "gru", "--weights", str(FIXTURES / "gru.pt"))
    assert "reading it needs PyTorch (pip install torch)" in line and "save_file" in line


def test_a_pickled_object_in_a_pt_file_is_one_line(tmp_path):
    torch = pytest.importorskip("torch", reason="writing a .pt file needs PyTorch")
    path = tmp_path / "model.pt"
    torch.save(torch.nn.RNN(3, 4), path)  # the whole module, not its state_dict
    line = refused("run", "clip-rescue", "--weights", str(path))
    assert "holds a pickled Python object (torch.nn.modules.rnn.RNN)" in line and "save model.state_dict()" in line


def test_save_weights_refusals(tmp_path):
    assert "--save-weights writes safetensors: give a FILE.safetensors" in refused("run", "clip-rescue", "--save-weights", str(tmp_path / "w.pt"))
    there = tmp_path / "w.safetensors"
    there.write_bytes(b"keep")
    assert "--save-weights: " in refused("run", "clip-rescue", "-T", "3", "--save-weights", str(there)) and there.read_bytes() == b"keep"
    assert "--save-weights: " in refused("run", "clip-rescue", "--save-weights", str(tmp_path / "no" / "w.safetensors"))
    assert "--force applies to --output FILE only, or --save-weights FILE" in refused("run", "clip-rescue", "--force")
    assert list(tmp_path.iterdir()) == [there]  # no temporary file left


# -- the round trip ----------------------------------------------------------------------------


def test_save_weights_writes_the_runs_parameters_under_torch_names(tmp_path):
    path = tmp_path / "w.safetensors"
    result = ok("run", "clip-rescue", "-T", "8", "--format", "json", "--dump", "--save-weights", str(path))
    doc = json.loads(result.stdout)
    tensors, meta = saved(path)
    assert sorted(tensors) == sorted(["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "head.weight", "head.bias"])
    for name, value in doc["params"].items():
        key = name if name.startswith("head.") else f"rnn.{name}"
        assert tensors[key].dtype == np.float64
        np.testing.assert_array_equal(tensors[key], np.array(value))  # JSON's repr round-trips a double exactly
    assert meta["bptt-lab.cell"] == doc["config"]["cell"] and json.loads(meta["bptt-lab.config"])["hidden"] == doc["config"]["hidden"]
    assert f"wrote {path} (safetensors, the run's parameters" in result.stderr


def test_weights_saved_then_loaded_give_the_same_run_bit_for_bit(tmp_path):
    path = tmp_path / "w.safetensors"
    first = json.loads(ok("run", "clip-rescue", "--cell", "gru", "-T", "12", "--format", "json", "--save-weights", str(path)).stdout)
    result = ok("run", "clip-rescue", "--cell", "gru", "-T", "12", "--format", "json", "--weights", str(path))
    again = json.loads(result.stdout)
    assert again["steps"] == first["steps"] and again["summary"]["loss"] == first["summary"]["loss"]
    source = again["weights_file"]
    assert (source["format"], source["prefix"], source["prefix_detected"], source["head"], source["layer"]) == ("safetensors", "rnn.", True, "head.", 0)
    assert f"weights: {path} (safetensors), prefix 'rnn.' (detected); head 'head.'" in result.stderr


def test_train_saves_the_final_or_the_last_finite_parameters(tmp_path):
    path = tmp_path / "t.safetensors"
    doc = json.loads(ok("train", "train-explode", "--updates", "20", "--format", "json", "--dump", "--save-weights", str(path)).stdout)
    final = doc["checkpoints"][-1]
    assert final["n"] == 20
    tensors, _ = saved(path)
    np.testing.assert_array_equal(tensors["rnn.weight_hh_l0"], np.array(final["params"]["weight_hh_l0"]))
    result = ok("train", "train-explode", "--lr", "5", "--updates", "50", "--format", "json", "--dump", "--save-weights", str(path), "--force")
    doc = json.loads(result.stdout)
    assert doc["summary"]["status"] == "diverged"
    last = doc["checkpoints"][-1]
    assert last["n"] == doc["summary"]["diverged_at"] - 1
    tensors, _ = saved(path)
    np.testing.assert_array_equal(tensors["rnn.weight_hh_l0"], np.array(last["params"]["weight_hh_l0"]))
    assert f"the last finite parameters, after update {last['n']}: update {last['n'] + 1} diverged" in result.stderr


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_pytorch_loads_the_saved_weights_and_steps_the_same_hidden_states(tmp_path, cell):
    torch = pytest.importorskip("torch", reason="the load_state_dict check needs PyTorch (not in the test extra: a large download)")
    from safetensors.torch import load_file

    from engine import Config, Run

    path = tmp_path / "w.safetensors"
    ok("run", "clip-rescue", "--cell", cell, "-H", "5", "--input-size", "3", "--output-size", "2", "-T", "7", "--save-weights", str(path))
    run = Run(Config(cell=cell, hidden=5, input_size=3, output_size=2, steps=7, batch=4).with_overrides(weights=str(path)))

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](3, 5)
            self.head = torch.nn.Linear(5, 2)

    m = M().double()
    m.load_state_dict(load_file(str(path)))  # strict: exactly these keys and shapes
    out = m.rnn(torch.from_numpy(run.inputs))[0].detach().numpy()
    np.testing.assert_allclose(out, run.trace.cell.h[1:], rtol=0, atol=1e-12)


def test_a_presets_weights_file_is_read_at_the_layer_the_command_line_picks(tmp_path):
    # The file is named by the TOML preset; only --layer comes from the command
    # line: the sizes are read at layer 1 (its input size is layer 0's H).
    lstm2 = FIXTURES / "lstm2.safetensors"
    presets = tmp_path / "p.toml"
    presets.write_text(f'[mine]\ncell = "lstm"\nweights = "{lstm2}"\nmode = "chain"\n', encoding="utf-8")
    layer0 = json.loads(ok("run", "mine", "--preset-file", str(presets), "--format", "json").stdout)
    layer1 = json.loads(ok("run", "mine", "--preset-file", str(presets), "--layer", "1", "--format", "json").stdout)
    with np.load(FIXTURES / "lstm2.npz") as raw:
        expected = {layer: raw[f"encoder.rnn.weight_ih_l{layer}"].shape[1] for layer in (0, 1)}
    assert (layer0["config"]["input_size"], layer1["config"]["input_size"]) == (expected[0], expected[1])
    assert layer1["config"]["layer"] == 1
