"""Weights files (.npz of PyTorch state_dict names) and TOML presets.

What every built-in preset's sentence promises is checked in
test_preset_sentences.py.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from engine import Config, ConfigError, Run
from engine.presets import BUILTIN, get, load_toml, registry

# -- helpers --------------------------------------------------------------------------------


def expected_shapes(cell: str, H: int, D: int, K: int | None) -> dict[str, tuple[int, ...]]:
    """SPEC section 7's table."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    shapes = {"weight_ih_l0": (G * H, D), "weight_hh_l0": (G * H, H), "bias_ih_l0": (G * H,), "bias_hh_l0": (G * H,)}
    if K is not None:
        shapes.update({"head.weight": (K, H), "head.bias": (K,)})
    return shapes


def same_bits(a: Run, b: Run) -> None:
    for name in a.records.columns:
        assert a.records.columns[name].tobytes() == b.records.columns[name].tobytes(), name
    assert a.records.status.tobytes() == b.records.status.tobytes()
    for kind in ("grads", "grads_raw"):
        ga, gb = getattr(a, kind), getattr(b, kind)
        assert ga.keys() == gb.keys()
        for n in ga:
            assert ga[n].tobytes() == gb[n].tobytes(), (kind, n)


# -- npz round trip ---------------------------------------------------------------------------


ROUND_TRIP = {
    "rnn": Config(hidden=6, batch=3, steps=15, input_size=3, output_size=2, seed=9, loss_on="all"),
    "lstm": Config(cell="lstm", hidden=5, batch=2, steps=12, seed=9, forget_bias=2.0, init="orthogonal"),
    "gru": Config(cell="gru", hidden=5, batch=2, steps=12, seed=9, init="torch", loss="xent"),
    "chain": Config(mode="chain", activation="linear", hidden=3, batch=2, steps=20, init="gaussian", seed=3),
}


def loading_config(cfg: Config, path) -> Config:
    # init / scale / spectral_radius / forget_bias do not apply with a weights file
    return dataclasses.replace(cfg, weights=str(path), init="xavier", scale=1.0, spectral_radius=0.0, forget_bias=0.0)


@pytest.mark.parametrize("kind", sorted(ROUND_TRIP))
def test_npz_round_trip(kind, tmp_path):
    cfg = ROUND_TRIP[kind]
    original = Run(cfg)
    original.run()
    path = tmp_path / "w.npz"
    np.savez(path, **original.params)
    loaded = Run(loading_config(cfg, path))
    assert loaded.params.keys() == original.params.keys()
    shapes = expected_shapes(cfg.cell, cfg.hidden, cfg.input_size, cfg.output_size if cfg.mode == "bptt" else None)
    for n, p in loaded.params.items():
        assert p.shape == shapes[n]
        assert p.dtype == np.float64
        np.testing.assert_array_equal(p, original.params[n])
    loaded.run()
    same_bits(original, loaded)


def test_npz_float32_state_dict(tmp_path):
    """A PyTorch state_dict is float32: it loads, as float64, with the same values."""
    cfg = ROUND_TRIP["rnn"]
    p32 = {n: p.astype(np.float32) for n, p in Run(cfg).params.items()}
    path = tmp_path / "w32.npz"
    np.savez(path, **p32)
    loaded = Run(loading_config(cfg, path))
    direct = Run(cfg, params={n: p.astype(np.float64) for n, p in p32.items()})
    loaded.run(), direct.run()
    same_bits(loaded, direct)


def lstm_params_and_cfg(tmp_path):
    cfg = Config(cell="lstm", hidden=5, batch=2, steps=6, input_size=3, output_size=2)
    return dict(Run(cfg).params), cfg, tmp_path / "w.npz"


def load_error(cfg, path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Run(dataclasses.replace(cfg, weights=str(path)))
    assert info.value.field == "weights"
    return info.value


def test_npz_missing_key(tmp_path):
    params, cfg, path = lstm_params_and_cfg(tmp_path)
    del params["weight_hh_l0"]
    np.savez(path, **params)
    e = load_error(cfg, path)
    assert "weight_hh_l0" in e.message and "(20, 5)" in e.message and str(path) in e.message


def test_npz_wrong_shape(tmp_path):
    params, cfg, path = lstm_params_and_cfg(tmp_path)
    params["bias_ih_l0"] = np.zeros(15)  # a GRU's 3H where the LSTM needs 4H
    np.savez(path, **params)
    e = load_error(cfg, path)
    assert "bias_ih_l0" in e.message and "(20,)" in e.message and "(15,)" in e.message


def test_npz_wrong_shape_transposed_head(tmp_path):
    params, cfg, path = lstm_params_and_cfg(tmp_path)
    params["head.weight"] = params["head.weight"].T
    np.savez(path, **params)
    e = load_error(cfg, path)
    assert "head.weight" in e.message and "(2, 5)" in e.message


def test_npz_unused_extra_key(tmp_path):
    params, cfg, path = lstm_params_and_cfg(tmp_path)
    params["weight_hh_lO"] = np.zeros((20, 5))  # a misspelt name (letter O), not a layer
    np.savez(path, **params)
    e = load_error(cfg, path)
    assert "unused key(s) 'weight_hh_lO'" in e.message
    for n in expected_shapes("lstm", 5, 3, 2):
        assert n in e.message  # says what was expected


def test_npz_another_layer_is_passed_over_and_an_incomplete_one_refused(tmp_path):
    """A second layer's keys belong to the RNN: layer 0 loads without them;
    --layer 1 names the first of its keys that is missing."""
    params, cfg, path = lstm_params_and_cfg(tmp_path)
    params["weight_hh_l1"] = np.zeros((20, 5))
    np.savez(path, **params)
    run = Run(dataclasses.replace(cfg, weights=str(path)))
    assert run.model.source.layers == (0, 1) and run.model.source.layer == 0
    with pytest.raises(ConfigError) as info:
        Run(dataclasses.replace(cfg, weights=str(path), layer=1))
    assert "missing key 'weight_ih_l1' (expected shape (20, 3))" in info.value.message


def test_npz_chain_passes_the_head_over_and_says_so(tmp_path):
    """A bptt state_dict (with head.*) in a chain run: the head is not used, and the source counts it."""
    params, _, path = lstm_params_and_cfg(tmp_path)
    cfg = Config(mode="chain", cell="lstm", hidden=5, batch=2, steps=6, input_size=3)
    np.savez(path, **params)
    source = Run(dataclasses.replace(cfg, weights=str(path))).model.source
    assert source.head is None and source.ignored == 2
    assert "no head" in source.sentence() and "2 other keys passed over" in source.sentence()


def test_npz_non_finite(tmp_path):
    params, cfg, path = lstm_params_and_cfg(tmp_path)
    params["weight_ih_l0"][0, 0] = np.nan
    np.savez(path, **params)
    e = load_error(cfg, path)
    assert "weight_ih_l0" in e.message and "finite" in e.message


def test_npz_missing_file(tmp_path):
    _, cfg, _ = lstm_params_and_cfg(tmp_path)
    path = tmp_path / "nope.npz"
    e = load_error(cfg, path)
    assert str(path) in e.message and "no such file" in e.message


@pytest.mark.parametrize("content", [b"not a zip file at all", b"", b"PK\x03\x04 truncated"])
def test_npz_not_an_npz(tmp_path, content):
    _, cfg, _ = lstm_params_and_cfg(tmp_path)
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    e = load_error(cfg, path)
    assert str(path) in e.message and ".npz" in e.message


def test_npz_given_an_npy_file(tmp_path):
    params, cfg, _ = lstm_params_and_cfg(tmp_path)
    path = tmp_path / "weights.npy"
    np.save(path, params["weight_hh_l0"])
    e = load_error(cfg, path)
    assert str(path) in e.message


# -- TOML presets -------------------------------------------------------------------------------


def write(tmp_path, text: str):
    path = tmp_path / "presets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_toml_base_and_overrides(tmp_path):
    path = write(
        tmp_path,
        """
[my-lstm]
description = "LSTM without a forget bias"
look-for = "the cell gradient dies as fast as the hidden one"
base = "lstm-cec"
forget-bias = 0.0
steps = 30

[my-lstm-clipped]
base = "my-lstm"
clip = "norm"
clip_threshold = 0.5

[plain]
hidden = 8
""",
    )
    presets = load_toml(path)
    assert list(presets) == ["my-lstm", "my-lstm-clipped", "plain"]
    p = presets["my-lstm"]
    assert p.description == "LSTM without a forget bias"
    assert p.look_for == "the cell gradient dies as fast as the hidden one"
    assert p.source == str(path)
    base = BUILTIN["lstm-cec"].config
    assert p.config == base.with_overrides(forget_bias=0.0, steps=30)
    assert (p.config.cell, p.config.hidden, p.config.forget_bias, p.config.steps) == ("lstm", base.hidden, 0.0, 30)
    q = presets["my-lstm-clipped"]
    assert (q.config.clip, q.config.clip_threshold, q.config.steps, q.config.cell) == ("norm", 0.5, 30, "lstm")
    assert q.description == p.description  # inherited from its base
    assert presets["plain"].config == Config(hidden=8)
    # the registry adds them to the built-ins; a file may not silently replace a built-in
    reg = registry(path)
    assert set(BUILTIN) | set(presets) == set(reg)
    shadow = write(tmp_path, '[irnn]\nbase = "irnn"\nsteps = 10\n')
    with pytest.raises(ConfigError, match="'irnn' is a built-in preset"):
        registry(shadow)
    assert BUILTIN["irnn"].config.steps == 60


def test_load_toml_malformed_names_file_and_line(tmp_path):
    path = write(tmp_path, "[a]\nhidden = 8\nsteps = = 3\n")
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    assert re.match(rf"^{re.escape(str(path))}:3: \S", info.value.message), info.value.message


def test_load_toml_duplicate_table(tmp_path):
    path = write(tmp_path, "[a]\nhidden = 8\n\n[a]\nsteps = 3\n")
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    assert re.match(rf"^{re.escape(str(path))}:4: \S", info.value.message), info.value.message


@pytest.mark.parametrize("key, hint", [("hiden", "hidden"), ("forget_bais", "forget-bias"), ("clip-treshold", "clip-threshold")])
def test_load_toml_unknown_key_suggests(tmp_path, key, hint):
    path = write(tmp_path, f"\n[mine]\nhidden = 8\n{key} = 3\n")
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    msg = info.value.message
    m = re.match(rf"^{re.escape(str(path))}:(\d+): ", msg)
    assert m and int(m.group(1)) in (2, 4), msg  # the preset's table (line 2) or the key (line 4)
    assert f"'{key}'" in msg and f"'{hint}'" in msg and "mine" in msg


def test_load_toml_unknown_base(tmp_path):
    path = write(tmp_path, '[mine]\nbase = "seed-exploed"\n')
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    assert "seed-exploed" in info.value.message and "seed-explode" in info.value.message.split("seed-exploed", 1)[1]
    path = write(tmp_path, '[mine]\nbase = "zzzzzz"\n')
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    assert "unknown base 'zzzzzz'" in info.value.message


def test_load_toml_invalid_value_names_preset_and_field(tmp_path):
    path = write(tmp_path, "[mine]\nhidden = 0\n")
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    assert "mine" in info.value.message and "hidden" in info.value.message and "4096" in info.value.message


def test_load_toml_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_toml(tmp_path / "absent.toml")
    assert "absent.toml" in info.value.message


def test_get_suggests():
    with pytest.raises(ConfigError) as info:
        get("seed-exploed")
    assert info.value.field == "preset"
    assert "did you mean" in info.value.message and "seed-explode" in info.value.message
    assert get("seed-explode") is BUILTIN["seed-explode"]
