"""Weights saved by PyTorch, in three formats, with a module prefix and layers.

The fixtures in tests/fixtures/weights/ were written by
tests/fixtures/make_weights_fixtures.py: small float64 torch.nn modules
(`encoder.rnn` a 2-layer nn.LSTM with `encoder.head`, `rnn` an nn.GRU or an
nn.RNN with `head`) saved by torch.save, safetensors.torch.save_file and
numpy.savez, and the autograd gradients of the lab's loss with one layer
stepped alone. torch is imported only by the tests that are about torch
itself (skipped, with the reason, where it is not installed).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import Config, ConfigError, Run
from engine.weights import file_sizes, load_file, sizes_from_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "weights"
MANIFEST = json.loads((FIXTURES / "cases.json").read_text())
CASES = MANIFEST["cases"]
MODELS = {m["name"]: m for m in MANIFEST["models"]}
FORMATS = ("pt", "safetensors", "npz")
PARAMS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")


def needs_torch(fmt: str) -> None:
    if fmt == "pt":
        pytest.importorskip("torch", reason="reading a .pt file needs PyTorch (not in the test extra: a large download)")


def settings_for(case: dict, fmt: str, **more) -> dict:
    return {"weights": str(FIXTURES / f"{case['model']}.{fmt}"), "layer": case["layer"], **more}


def config_for(case: dict, settings: dict) -> Config:
    base = Config(cell=case["cell"], activation=case["activation"], batch=case["N"], steps=case["T"], loss=case["loss"], loss_on=case["loss_on"])
    return base.with_overrides(sizes=file_sizes(settings), **settings)


LSTM = Config(cell="lstm", batch=2, steps=5)


def refusal(settings: dict, base: Config = LSTM) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Run(base.with_overrides(sizes=file_sizes(settings), **settings))
    assert "\n" not in info.value.message
    return info.value


# -- the gradients are PyTorch's, whatever the format ----------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_loaded_gradients_agree_with_pytorch_autograd(case, fmt):
    needs_torch(fmt)
    with np.load(FIXTURES / f"{case['name']}.case.npz", allow_pickle=False) as data:
        fx = {k: data[k] for k in data.files}
    config = config_for(case, settings_for(case, fmt))
    assert (config.hidden, config.input_size, config.output_size) == (case["H"], case["D"], case["K"])
    run = Run(config, inputs=fx["inputs"], targets=fx["targets"])
    run.run()
    assert run.loss == pytest.approx(float(fx["loss"]), rel=1e-12)
    np.testing.assert_allclose(run.trace.cell.h, fx["h"], rtol=0, atol=1e-12)
    for name in PARAMS:
        np.testing.assert_allclose(run.grads[name], fx[f"grad_{name}"], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_layer_1_of_the_encoder_is_its_l1_weights_and_the_prefix_is_detected(fmt):
    needs_torch(fmt)
    path = FIXTURES / f"lstm2.{fmt}"
    config = Config(cell="lstm", batch=2, steps=5, loss_on="all").with_overrides(sizes=file_sizes({"weights": str(path), "layer": 1}), weights=str(path), layer=1)
    params, source = load_file(path, config)
    with np.load(FIXTURES / "lstm2.npz", allow_pickle=False) as raw:  # numpy's own reading of the same state_dict
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            np.testing.assert_array_equal(params[f"{name}_l0"], raw[f"encoder.rnn.{name}_l1"])
        np.testing.assert_array_equal(params["head.weight"], raw["encoder.head.weight"])
    assert (source.prefix, source.prefix_detected, source.layer, source.layers, source.head) == ("encoder.rnn.", True, 1, (0, 1), "encoder.head.")
    assert source.ignored == 2 and source.format == fmt  # embed.weight, embed.bias
    line = source.sentence()
    assert f"weights: {path} ({fmt}), prefix 'encoder.rnn.' (detected)" in line and "layer 1 of 2" in line and "2 other keys passed over" in line


def test_a_lower_layer_read_by_the_top_layers_head_says_so():
    path = FIXTURES / "lstm2.safetensors"  # encoder.rnn layers 0 and 1, encoder.head on layer 1's output
    lower = Config(cell="lstm", batch=2, steps=5).with_overrides(sizes=file_sizes({"weights": str(path)}), weights=str(path))
    assert "; head 'encoder.head.' (trained on layer 1's output, read here from layer 0's);" in load_file(path, lower)[1].sentence()
    top = lower.with_overrides(layer=1, input_size=4)
    assert "; head 'encoder.head.';" in load_file(path, top)[1].sentence()
    chain = lower.with_overrides(mode="chain")
    assert "; no head;" in load_file(path, chain)[1].sentence()


def test_sizes_are_read_from_the_safetensors_header():
    path = FIXTURES / "lstm2.safetensors"
    assert sizes_from_file(path) == {"hidden": 4, "input_size": 3, "output_size": 2}
    assert sizes_from_file(path, layer=1) == {"hidden": 4, "input_size": 4, "output_size": 2}  # layer 1's input is layer 0's H


def test_a_given_prefix_is_used_with_or_without_its_dot():
    path = str(FIXTURES / "gru.safetensors")
    for given in ("rnn", "rnn."):
        run = Run(Config(cell="gru", batch=2, steps=5).with_overrides(sizes=file_sizes({"weights": path}), weights=path, weights_prefix=given))
        assert run.model.source.prefix == "rnn." and not run.model.source.prefix_detected


# -- refusals: one line, naming what is wrong ------------------------------------------------


def two_modules(tmp_path) -> Path:
    with np.load(FIXTURES / "gru.npz", allow_pickle=False) as raw:
        state = {k: raw[k] for k in raw.files}
    path = tmp_path / "two.npz"
    np.savez(path, **state, **{k.replace("rnn.", "decoder.rnn."): v for k, v in state.items() if k.startswith("rnn.")})
    return path


def test_two_prefixes_with_recurrent_weights_are_refused_naming_both(tmp_path):
    path = two_modules(tmp_path)
    e = refusal({"weights": str(path)}, Config(cell="gru", batch=2, steps=5))
    assert e.field == "weights" and "'rnn.' and 'decoder.rnn.'" in e.message and "--weights-prefix" in e.message
    run = Run(Config(cell="gru", batch=2, steps=5).with_overrides(sizes=file_sizes({"weights": str(path), "weights_prefix": "decoder.rnn"}), weights=str(path), weights_prefix="decoder.rnn"))
    assert run.model.source.prefix == "decoder.rnn." and run.model.source.head == "head."  # no decoder.head: the top-level one


def test_a_prefix_without_recurrent_weights_is_refused_naming_the_ones_found():
    path = str(FIXTURES / "lstm2.safetensors")
    e = refusal({"weights": path, "weights_prefix": "decoder"})
    assert e.field == "weights_prefix" and "'decoder.'" in e.message and "'encoder.rnn.'" in e.message


def test_a_layer_that_is_not_in_the_file_is_refused_naming_the_layers_found():
    e = refusal({"weights": str(FIXTURES / "lstm2.safetensors"), "layer": 2})
    assert e.field == "layer" and e.message.startswith("layer 2 is not in weights file") and "layers 0, 1 under prefix 'encoder.rnn.'" in e.message


def test_a_shape_mismatch_names_the_files_key_the_shape_found_and_expected():
    path = str(FIXTURES / "lstm2.safetensors")
    settings = {"weights": path, "layer": 1, "input_size": 3}  # layer 1's input size is 4
    e = refusal(settings)
    assert "'encoder.rnn.weight_ih_l1' has shape (16, 4), expected (16, 3)" in e.message and path in e.message
    e = refusal({"weights": path}, Config(cell="gru", batch=2, steps=5))
    assert "'encoder.rnn.weight_hh_l0' has shape (16, 4), expected (12, 4) (the file holds the weights of a lstm cell: choose it with --cell)" in e.message


def test_a_head_under_another_name_is_not_guessed(tmp_path):
    with np.load(FIXTURES / "rnn.npz", allow_pickle=False) as raw:
        state = {k.replace("head.", "fc."): raw[k] for k in raw.files}
    path = tmp_path / "fc.npz"
    np.savez(path, **state)
    e = refusal({"weights": str(path)}, Config(batch=2, steps=5))
    assert e.message.endswith(
        "no readout head: mode bptt needs 'head.weight' (K, H) with 'head.bias' (K); "
        "found 'fc.weight', 'fc.bias': rename them to 'head.weight', 'head.bias', or use --mode chain (no readout)"
    )
    chain = Run(Config(mode="chain", batch=2, steps=5).with_overrides(sizes=file_sizes({"weights": str(path)}), weights=str(path)))
    assert chain.model.source.head is None and chain.model.source.ignored == 2


def test_a_readout_under_another_name_is_told_apart_from_other_modules_by_its_shape(tmp_path):
    # An embedding (D, D) = (3, 3) beside the readout fc (K, H) = (2, 4): only fc is a readout's shape.
    with np.load(FIXTURES / "rnn.npz", allow_pickle=False) as raw:
        state = {k.replace("head.", "fc."): raw[k] for k in raw.files}
    path = tmp_path / "embed.npz"
    np.savez(path, **{"embed.weight": np.zeros((3, 3)), "embed.bias": np.zeros(3)}, **state)
    e = refusal({"weights": str(path)}, Config(batch=2, steps=5))
    assert "; found 'fc.weight', 'fc.bias': rename them to 'head.weight', 'head.bias', or use --mode chain" in e.message
    np.savez(path, **{"embed.weight": np.zeros((3, 4)), "embed.bias": np.zeros(3)}, **state)  # both (K, 4): either may be it
    e = refusal({"weights": str(path)}, Config(batch=2, steps=5))
    assert "; the file's other weights are 'embed.weight', 'fc.weight': rename your readout's weight and bias to 'head.weight', 'head.bias', or use --mode chain" in e.message


def test_a_nested_pt_readout_under_another_name_is_told_its_two_places(tmp_path):
    torch = pytest.importorskip("torch", reason="writing a .pt file needs PyTorch")
    with np.load(FIXTURES / "gru.npz", allow_pickle=False) as raw:
        state = {k.replace("rnn.", "encoder.rnn.").replace("head.", "encoder.fc."): torch.from_numpy(raw[k]) for k in raw.files}
    path = tmp_path / "nested.pt"
    torch.save({"model": state}, path)  # keys read as model.encoder.rnn.*, model.encoder.fc.*
    e = refusal({"weights": str(path)}, Config(cell="gru", batch=2, steps=5))
    assert e.message.endswith(
        "found 'model.encoder.fc.weight', 'model.encoder.fc.bias': rename them to 'model.encoder.head.weight', "
        "'model.encoder.head.bias' (or 'head.weight', 'head.bias'), or use --mode chain (no readout)"
    )


def test_a_misspelt_key_inside_the_module_is_refused(tmp_path):
    with np.load(FIXTURES / "rnn.npz", allow_pickle=False) as raw:
        state = {k: raw[k] for k in raw.files}
    path = tmp_path / "typo.npz"
    np.savez(path, **state, **{"rnn.weight_hh_lO": state["rnn.weight_hh_l0"]})
    e = refusal({"weights": str(path)}, Config(batch=2, steps=5))
    assert "unused key(s) 'rnn.weight_hh_lO'" in e.message and "expected exactly rnn.weight_ih_l0" in e.message


def test_the_reverse_direction_of_a_bidirectional_rnn_is_passed_over_and_said(tmp_path):
    with np.load(FIXTURES / "rnn.npz", allow_pickle=False) as raw:
        state = {k: raw[k] for k in raw.files}
    path = tmp_path / "bi.npz"
    np.savez(path, **state, **{f"{k}_reverse": v for k, v in state.items() if k.startswith("rnn.")})
    run = Run(Config(mode="chain", batch=2, steps=5).with_overrides(sizes=file_sizes({"weights": str(path)}), weights=str(path)))
    assert run.model.source.reverse and "the _reverse direction passed over" in run.model.source.sentence()
    np.testing.assert_array_equal(run.params["weight_hh_l0"], state["rnn.weight_hh_l0"])


def test_a_bfloat16_safetensors_tensor_is_refused_by_key(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "bf.safetensors"
    save_file({"weight_hh_l0": np.zeros((3, 3))}, str(path))
    raw = bytearray(path.read_bytes())  # relabel the tensor's 72 bytes as 36 bfloat16 (numpy cannot write one)
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    header["weight_hh_l0"].update(dtype="BF16", shape=[6, 6])  # 72 bytes: 36 bfloat16
    text = json.dumps(header, separators=(",", ":")).encode().ljust(header_len)
    assert len(text) == header_len
    path.write_bytes(bytes(raw[:8]) + text + bytes(raw[8 + header_len :]))
    e = refusal({"weights": str(path)}, Config(mode="chain", batch=2, steps=5))
    assert "'weight_hh_l0' has dtype BF16, which numpy cannot hold" in e.message


def test_a_module_numpy_cannot_hold_beside_a_readout_under_another_name_is_no_obstacle(tmp_path):
    from safetensors.numpy import save_file

    with np.load(FIXTURES / "rnn.npz", allow_pickle=False) as raw:
        state = {k.replace("head.", "fc."): raw[k] for k in raw.files}
    path = tmp_path / "bf.safetensors"
    save_file({"embed.weight": np.zeros((3, 3)), **state}, str(path))
    raw = bytearray(path.read_bytes())  # relabel embed.weight's 72 bytes as 36 bfloat16: a module the run does not use
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    header["embed.weight"].update(dtype="BF16", shape=[6, 6])
    text = json.dumps(header, separators=(",", ":")).encode().ljust(header_len)
    path.write_bytes(bytes(raw[:8]) + text + bytes(raw[8 + header_len :]))
    e = refusal({"weights": str(path)}, Config(batch=2, steps=5))
    assert "no readout head: mode bptt needs 'head.weight' (K, H) with 'head.bias' (K); the file's other weights are 'embed.weight', 'fc.weight'" in e.message


def test_a_file_in_no_known_format_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    e = refusal({"weights": str(path)})
    assert "not a readable .safetensors file" in e.message
    path.write_text("hello")
    assert "not a .npz of arrays, a .safetensors or a PyTorch .pt file" in refusal({"weights": str(path)}).message


# -- .pt: read by torch.load(weights_only=True), or a one-line way out -----------------------


def test_a_pt_file_without_torch_says_how_to_convert_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    e = refusal({"weights": str(FIXTURES / "gru.pt")}, Config(cell="gru", batch=2, steps=5))
    assert "is a PyTorch file: reading it needs PyTorch (pip install torch)" in e.message
    assert "safetensors" in e.message and "torch.load" in e.message


def test_the_conversion_names_the_files_own_path_quoted_for_the_shell(tmp_path, monkeypatch):
    import shlex
    import shutil

    path = tmp_path / "my model's.pt"  # a space and a quote: both must reach python as they are
    shutil.copy(FIXTURES / "gru.pt", path)
    has_torch = importlib.util.find_spec("torch") is not None  # asked before torch is hidden
    monkeypatch.setitem(sys.modules, "torch", None)
    e = refusal({"weights": str(path)}, Config(cell="gru", batch=2, steps=5))
    argv = shlex.split(e.message.split("where torch is installed: ", 1)[1])  # the shell's own reading
    assert argv[:2] == ["python", "-c"] and argv[3:] == [str(path), str(tmp_path / "my model's.safetensors")]
    if not has_torch:
        return  # running it needs torch
    subprocess.run([sys.executable, *argv[1:]], check=True, cwd=tmp_path)
    from safetensors.numpy import load_file as read_safetensors

    with np.load(FIXTURES / "gru.npz", allow_pickle=False) as raw:
        converted = read_safetensors(str(tmp_path / "my model's.safetensors"))
        assert set(converted) == set(raw.files)
        for key in raw.files:
            np.testing.assert_array_equal(converted[key], raw[key])


class Pickled:
    """Stands for any class a pickle could name: loading it would run its module's code."""

    def __init__(self):
        self.payload = "anything"


def test_a_pt_file_holding_a_pickled_object_is_refused_by_weights_only(tmp_path):
    torch = pytest.importorskip("torch", reason="writing and reading .pt files needs PyTorch")
    path = tmp_path / "evil.pt"
    torch.save({"rnn.weight_hh_l0": torch.zeros(3, 3), "extra": Pickled()}, path)
    e = refusal({"weights": str(path)}, Config(mode="chain", batch=2, steps=5))
    assert "holds a pickled Python object" in e.message and "Pickled" in e.message and "weights_only=True" in e.message


def test_a_legacy_pt_file_and_a_nested_checkpoint_load(tmp_path):
    torch = pytest.importorskip("torch", reason="writing and reading .pt files needs PyTorch")
    state = torch.load(FIXTURES / "rnn.pt", weights_only=True)
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}}, path, _use_new_zipfile_serialization=False)
    params, source = load_file(path, Config(batch=2, steps=5, hidden=4, input_size=3, output_size=2))
    assert source.prefix == "model.rnn." and source.head == "model.head."
    np.testing.assert_array_equal(params["weight_hh_l0"], state["rnn.weight_hh_l0"].numpy())
