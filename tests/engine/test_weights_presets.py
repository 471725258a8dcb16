"""Weights files (.npz of PyTorch state_dict names), TOML presets, and what
every built-in preset promises in its description / look-for sentence.

Expected numbers come from the sentences in engine/presets.py, from SPEC
section 2 (the source's matrix-chain loop, tests/reference.py) and SPEC section 5
(the truncated-BPTT loop of the language model, transcribed here), and from
numpy's own SVD / eigenvalues of the loaded weights.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pytest

from engine import Config, ConfigError, Run
from engine.export import to_csv, to_json
from engine.presets import BUILTIN, WIG, get, load_toml, registry
from tests.reference import section_2

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


def run_preset(name: str, **overrides) -> tuple[Run, dict]:
    cfg = BUILTIN[name].config.with_overrides(**overrides) if overrides else BUILTIN[name].config
    run = Run(cfg)
    return run, run.run()


def geometric_mean_ratio(norms: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(norms[1:] / norms[:-1]))))


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
    params["weight_hh_l1"] = np.zeros((20, 5))  # a second layer is not supported
    np.savez(path, **params)
    e = load_error(cfg, path)
    assert "weight_hh_l1" in e.message
    for n in expected_shapes("lstm", 5, 3, 2):
        assert n in e.message  # says what was expected


def test_npz_chain_has_no_head(tmp_path):
    """A bptt state_dict (with head.*) is refused by a chain run: unused keys, named."""
    params, _, path = lstm_params_and_cfg(tmp_path)
    cfg = Config(mode="chain", cell="lstm", hidden=5, batch=2, steps=6, input_size=3)
    np.savez(path, **params)
    e = load_error(cfg, path)
    assert "head.weight" in e.message and "head.bias" in e.message


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


# -- built-in presets ----------------------------------------------------------------------------


EXPECTED_PRESETS = {
    "seed-explode", "seed-vanish", "clip-rescue", "step-clip", "tanh-saturation", "sigmoid-quarter",
    "relu-rescue", "irnn", "orthogonal", "lstm-cec", "gru", "indrnn", "wig-sentence", "truncated",
}  # fmt: skip


def test_builtin_registry():
    assert set(BUILTIN) == EXPECTED_PRESETS
    for name, p in BUILTIN.items():
        assert p.name == name and p.description and p.look_for and isinstance(p.config, Config)


@pytest.mark.parametrize("name", sorted(EXPECTED_PRESETS))
def test_every_preset_runs_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = Run(BUILTIN[name].config)
        s = run.run()
        to_json(run, dump=True, preset=name)
        to_csv(run)
    assert s["done"] and s["steps_done"] == run.T
    assert s["overflow_k"] is None and s["forward_overflow_t"] is None
    assert np.all(np.isfinite(run.records.columns["grad_norm"]))


def test_seed_explode():
    """'sigma_max = 2.66 and spectral radius 1.26 > 1: grows about 1.26x per step, to ~250 at k = 20.'"""
    run, s = run_preset("seed-explode")
    Wh, _, norms = section_2(1.0)
    np.testing.assert_allclose(run.records.columns["grad_norm"], norms, rtol=1e-12)  # SPEC 2, to round-off
    np.testing.assert_array_equal(run.params["weight_hh_l0"], Wh.T)
    assert np.linalg.svd(Wh, compute_uv=False)[0] == pytest.approx(2.66, abs=0.005) == s["sigma_max"]
    assert np.max(np.abs(np.linalg.eigvals(Wh))) == pytest.approx(1.26, abs=0.005) == s["spectral_radius"]
    assert norms[-1] == pytest.approx(250, rel=0.01)
    assert norms[-1] / norms[-2] == pytest.approx(1.26, abs=0.01)
    assert s["regime"] == "exploding"


def test_seed_vanish():
    """'sigma_max = 1.33 > 1 yet it vanishes: the spectral radius 0.63 < 1 sets the rate.'"""
    run, s = run_preset("seed-vanish")
    Wh, _, norms = section_2(0.5)
    np.testing.assert_allclose(run.records.columns["grad_norm"], norms, rtol=1e-12)
    assert s["sigma_max"] == pytest.approx(1.33, abs=0.005) == np.linalg.svd(Wh, compute_uv=False)[0]
    assert s["spectral_radius"] == pytest.approx(0.63, abs=0.005)
    assert norms[-1] < 1e-3 * norms[0]
    assert norms[-1] / norms[-2] == pytest.approx(0.63, abs=0.01)
    assert s["regime"] == "vanishing"


def test_clip_rescue():
    """'grows ~1.1x per step; the running parameter norm crosses 5.0 early and the final rescale brings ~280 down to 5.'"""
    run, s = run_preset("clip-rescue")
    assert s["mean_growth"] == pytest.approx(1.1, abs=0.03)
    assert s["clip_events"] == 1 and s["clip_steps"] == [run.T]
    assert s["clip_crossed_k"] is not None and s["clip_crossed_k"] <= run.T // 6
    raw = np.sqrt(sum(np.sum(g**2) for g in run.grads_raw.values()))
    after = np.sqrt(sum(np.sum(g**2) for g in run.grads.values()))
    assert raw == pytest.approx(280, rel=0.02)
    assert after == pytest.approx(5.0, rel=1e-6)


def test_step_clip():
    """'CLIP events happen mid-pass, at nearly every step once the norm has reached 1.0: the curve is held at the threshold.'"""
    run, s = run_preset("step-clip")
    free, _ = run_preset("step-clip", clip="none")
    gn, gn_free = run.records.columns["grad_norm"], free.records.columns["grad_norm"]
    ks = [r.k for r in run.records if r.clip is not None]
    assert all(run.records[k].clip.mode == "step" for k in ks)
    first_reach = int(np.flatnonzero(gn_free > 1.0)[0]) + 1
    assert ks[0] == first_reach < run.T  # mid-pass
    assert len(ks) > 20
    assert np.all(gn <= 1.0 + 1e-12) and np.max(gn_free) > 10
    np.testing.assert_allclose(gn[np.array(ks) - 1], 1.0, rtol=1e-12)  # flat at the threshold where clipped
    np.testing.assert_array_equal(gn[: first_reach - 1], gn_free[: first_reach - 1])


def test_step_clip_holds_the_norm_at_the_threshold():
    """'CLIP events happen mid-pass, at nearly every step once the norm has reached 1.0: the curve is held at the threshold.'"""
    run, _ = run_preset("step-clip")
    ks = [r.k for r in run.records if r.clip is not None]
    after_first = range(ks[0], run.T + 1)
    assert ks[0] < run.T // 2
    assert len(ks) >= 0.85 * len(after_first)
    norms = run.records.columns["grad_norm"][ks[0] - 1 :]
    assert np.all(norms <= 1.0 + 1e-12) and np.median(norms) == pytest.approx(1.0)


def test_tanh_saturation():
    """'Saturation around 60% of units: the gradient collapses ~0.27x per step although sigma_max(W) * gamma > 1.'"""
    run, s = run_preset("tanh-saturation")
    sat = run.records.columns["saturation"]
    assert 0.5 < float(np.mean(sat)) < 0.7
    assert s["mean_growth"] == pytest.approx(0.27, abs=0.03)
    assert np.linalg.svd(run.params["weight_hh_l0"], compute_uv=False)[0] * 1.0 > 1
    assert s["regime"] == "vanishing" and s["first_vanishing_k"] is not None


def test_sigmoid_quarter():
    """'gamma = 1/4, so sigma_max * gamma = 0.67 < 1: vanishing is guaranteed for every input, though the spectral radius is 1.68.'"""
    run, s = run_preset("sigmoid-quarter")
    W = run.params["weight_hh_l0"]
    sigma = np.linalg.svd(W, compute_uv=False)[0]
    assert 1 < sigma < 4 and sigma == pytest.approx(2.7, abs=0.05)
    assert sigma / 4 < 1 and sigma / 4 == pytest.approx(0.67, abs=0.01)
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.68, abs=0.01)
    assert s["gamma"] == 0.25 and s["vanishing_guaranteed"] is True
    # the guarantee, step by step: ||(dh * f') W|| <= sigma_max(W) / 4 * ||dh|| (loss on the last step only)
    assert np.all(run.records.columns["ratio"] <= sigma / 4 * (1 + 1e-12))
    assert s["regime"] == "vanishing"


def test_relu_rescue():
    """'No saturation collapse: ... the norm drifts ~1.04x per step instead of 0.27x.'"""
    run, s = run_preset("relu-rescue")
    _, tanh = run_preset("tanh-saturation")
    assert s["mean_growth"] == pytest.approx(1.04, abs=0.02)
    assert tanh["mean_growth"] < 0.3
    assert s["regime"] != "vanishing" and s["first_vanishing_k"] is None
    assert run.records.columns["grad_norm"][-1] > run.records.columns["grad_norm"][0]


def test_irnn():
    """'The Jacobian is the identity on active units: ratio exactly 1.00 for most steps.'"""
    run, s = run_preset("irnn")
    ratio = run.records.columns["ratio"]
    np.testing.assert_array_equal(run.params["weight_hh_l0"], np.eye(32))
    assert np.sum(ratio == 1.0) > 0.75 * run.T
    assert np.all(ratio <= 1.0)  # an inactive unit can only remove gradient


def test_orthogonal():
    """'The norm is almost flat (~0.998x per step); compare --init xavier, which dips and then grows.'"""
    run, s = run_preset("orthogonal")
    np.testing.assert_allclose(np.linalg.svd(run.params["weight_hh_l0"], compute_uv=False), 1.0, atol=1e-12)
    gn = run.records.columns["grad_norm"]
    assert geometric_mean_ratio(np.concatenate([[s["start_norm"]], gn])) == pytest.approx(0.998, abs=0.002)
    assert 0.9 < gn[-1] / s["start_norm"] < 1.0
    xav, xs = run_preset("orthogonal", init="xavier")
    g = xav.records.columns["grad_norm"]
    low = int(np.argmin(g))
    assert 0 < low < xav.T - 1
    assert g[low] < 0.5 * xs["start_norm"] and g[-1] > 5 * xs["start_norm"]


def test_indrnn():
    """'u = 1 on every unit ... the norm holds at ~1.00x per step. --scale 0.95 vanishes ~0.95x per step,
    --scale 1.05 grows ~1.03x.' The Jacobian is diagonal: diag(u * f'), with f' <= 1 for tanh."""
    run, s = run_preset("indrnn")
    np.testing.assert_array_equal(run.params["weight_hh_l0"], np.ones(32))  # u, a vector
    assert run.params["weight_hh_l0"].shape == (32,)
    gn = run.records.columns["grad_norm"]
    assert geometric_mean_ratio(np.concatenate([[s["start_norm"]], gn])) == pytest.approx(1.0, abs=0.005)
    for scale, rate, tol in ((0.95, 0.95, 0.005), (1.05, 1.03, 0.01)):
        r, rs = run_preset("indrnn", scale=scale)
        np.testing.assert_array_equal(r.params["weight_hh_l0"], np.full(32, scale))
        g = r.records.columns["grad_norm"]
        assert geometric_mean_ratio(np.concatenate([[rs["start_norm"]], g])) == pytest.approx(rate, abs=tol)
        assert rs["spectral_radius"] == pytest.approx(scale, rel=1e-12)


def test_lstm_cec():
    """'Jacobian sigma stays near 0.55, yet the cell-state gradient survives 100 steps; --forget-bias 0 makes both vanish ~0.64x per step.'"""
    run, s = run_preset("lstm-cec")
    cn = run.records.columns["cell_norm"]
    assert run.T == 100
    assert float(np.mean(run.records.columns["jacobian_sigma"])) == pytest.approx(0.55, abs=0.05)
    assert cn[99] > cn[0] / 10
    assert float(np.mean(run.records.columns["gate_mean"])) == pytest.approx(0.93, abs=0.02)  # f ~ 0.93
    off, s0 = run_preset("lstm-cec", forget_bias=0.0)
    c0, h0 = off.records.columns["cell_norm"], off.records.columns["grad_norm"]
    assert c0[0] / c0[99] > 1e6
    assert geometric_mean_ratio(c0) == pytest.approx(0.64, abs=0.03)
    assert geometric_mean_ratio(h0) == pytest.approx(0.64, abs=0.03)


def test_gru():
    """'The direct path diag(z) carries the gradient: ~0.95x per step, where --forget-bias 0 (z ~ 0.5) gives ~0.66x.'"""
    run, s = run_preset("gru")
    assert s["mean_growth"] == pytest.approx(0.95, abs=0.02)
    assert float(np.mean(run.records.columns["gate_mean"])) == pytest.approx(0.93, abs=0.02)
    off, s0 = run_preset("gru", forget_bias=0.0)
    assert s0["mean_growth"] == pytest.approx(0.66, abs=0.03)
    assert float(np.mean(off.records.columns["gate_mean"])) == pytest.approx(0.5, abs=0.03)
    # much slower decay: after 100 steps the biased GRU keeps orders of magnitude more
    ratio_fb3 = run.records.columns["grad_norm"][-1] / s["start_norm"]
    ratio_fb0 = off.records.columns["grad_norm"][-1] / s0["start_norm"]
    assert ratio_fb3 / ratio_fb0 > 1e10


# -- the wig sentence and truncation ------------------------------------------------------------


def spec5_grads(params, ids: np.ndarray, targets: np.ndarray, truncate: int) -> dict[str, np.ndarray]:
    """SPEC section 5's loop (no biases), output by output, newest first."""
    U, W, V = params["weight_ih_l0"], params["weight_hh_l0"], params["head.weight"]
    H, K = W.shape[0], V.shape[0]
    T = len(ids)
    bptt_truncate = truncate if truncate else T  # truncate >= T: exact BPTT
    s = np.zeros((T + 1, H))  # s[t] is s_t; s[-1] (index T) is the initial state
    o = np.zeros((T, K))
    for t in range(T):
        s[t] = np.tanh(U[:, ids[t]] + W @ s[t - 1])
        z = V @ s[t]
        o[t] = np.exp(z - z.max()) / np.sum(np.exp(z - z.max()))
    dU, dW, dV = np.zeros_like(U), np.zeros_like(W), np.zeros_like(V)
    for t in range(T - 1, -1, -1):
        delta_o = o[t].copy()
        delta_o[targets[t]] -= 1.0
        dV += np.outer(delta_o, s[t])
        delta = (V.T @ delta_o) * (1 - s[t] ** 2)
        for step in range(t, max(0, t - bptt_truncate) - 1, -1):
            dW += np.outer(delta, s[step - 1])
            dU[:, ids[step]] += delta
            delta = (W.T @ delta) * (1 - s[step - 1] ** 2)
    return {"weight_ih_l0": dU, "weight_hh_l0": dW, "head.weight": dV}


@pytest.mark.parametrize("name", ["wig-sentence", "truncated"])
def test_sentence_presets_match_spec_section_5(name):
    run, _ = run_preset(name)
    for b in ("bias_ih_l0", "bias_hh_l0", "head.bias"):
        assert not np.any(run.params[b])  # the SPEC 5 model has no biases: the comparison is exact
    words = WIG.split()
    vocab = sorted(set(words))
    ids = np.array([vocab.index(w) for w in words])
    ref = spec5_grads(run.params, ids[:-1], ids[1:], run.config.truncate)
    for n, g in ref.items():
        np.testing.assert_allclose(run.grads_raw[n], g, rtol=1e-10, atol=1e-14, err_msg=n)


def went_reaches_man(truncate: int) -> bool:
    """Does the loss that predicts 'went' change the gradient at the input 'man'?

    'man' is input word 2 (one-hot), so column 'man' of dL/dW_ih is exactly the
    gradient at the step that reads 'man'. Change only the target 'went'.
    """
    cfg = BUILTIN["wig-sentence"].config.with_overrides(truncate=truncate)
    words = WIG.split()
    vocab = list(cfg.vocabulary)
    run = Run(cfg)
    targets = np.array(run.targets, copy=True)
    i_went = words.index("went") - 1  # target index of the word 'went'
    assert targets[i_went, 0] == vocab.index("went")
    targets[i_went, 0] = vocab.index("inside")
    other = Run(cfg, inputs=run.inputs, targets=targets)
    run.run(), other.run()
    man = vocab.index("man")
    col, col2 = run.grads_raw["weight_ih_l0"][:, man], other.grads_raw["weight_ih_l0"][:, man]
    assert np.any(col)  # 'man' gets gradient from nearer losses in every case
    return not np.allclose(col, col2, rtol=0, atol=1e-15)


def test_wig_sentence():
    """'Every word adds its own gradient; the loss that predicts went reaches the input man only through 7 Jacobians.'"""
    run, s = run_preset("wig-sentence")
    assert run.T == len(WIG.split()) - 1 == 10 and run.config.loss_on == "all"
    assert all(r.status != "truncated" for r in run.records)
    assert went_reaches_man(0)  # full BPTT
    assert went_reaches_man(7)  # 7 Jacobians are enough ...
    assert not went_reaches_man(6)  # ... and exactly 7 are needed


def test_truncated():
    """'Steps past k = 4 are TRUNCATED: the loss that predicts went no longer reaches man (7 steps back).'"""
    run, s = run_preset("truncated")
    statuses = [r.status for r in run.records]
    assert statuses[4:] == ["truncated"] * (run.T - 4)
    assert "truncated" not in statuses[:4]
    assert not went_reaches_man(4)
    full, _ = run_preset("wig-sentence")
    assert not np.allclose(run.grads_raw["weight_hh_l0"], full.grads_raw["weight_hh_l0"])
