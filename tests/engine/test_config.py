"""Config validation, with_overrides, text-derived shapes and reproducibility.

A ConfigError must name the field (`.field`) and say what is allowed; the
ranges asserted here are the ones documented for the user (hidden/batch
1..4096, steps 1..1e6, scale >= 0, seed 0..2^32-1, the choice lists).
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Config, ConfigError, Run, RunComplete
from engine.config import SPEC
from engine.presets import get
from engine.weights import file_sizes


def error(**kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Config(**kw)
    return info.value


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, must_mention",
    [
        ("hidden", 0, ["1", "4096"]),
        ("hidden", 5000, ["1", "4096"]),
        ("steps", -1, ["1", "1000000"]),
        ("batch", 10**6, ["1", "4096"]),
        ("scale", -1, ["0"]),
        ("scale", -0.5, ["0"]),
        ("seed", -1, ["0", "4294967295"]),
        ("seed", 2**32, ["0", "4294967295"]),
        ("leaky_slope", 1.5, ["0", "1"]),
        ("explode_threshold", 0.5, ["1"]),
        ("vanish_threshold", 2.0, ["0", "1"]),
        ("truncate", -3, ["0"]),
    ],
)
def test_out_of_range_names_field_and_range(field, value, must_mention):
    extra = {"activation": "leaky_relu"} if field == "leaky_slope" else {}
    e = error(**{field: value}, **extra)
    assert e.field == field
    assert field in e.message
    assert str(value) in e.message or f"{value:g}" in e.message
    for token in must_mention:
        assert re.search(rf"(?<![\d.]){re.escape(token)}(?![\d.])", e.message), (token, e.message)
    assert str(e) == e.message


@pytest.mark.parametrize(
    "field, value, choices",
    [
        ("mode", "train", ["bptt", "chain"]),
        ("cell", "transformer", ["rnn", "lstm", "gru"]),
        ("activation", "gelu", ["tanh", "sigmoid", "relu", "leaky_relu", "linear"]),
        ("loss", "l1", ["mse", "xent"]),
        ("loss_on", "first", ["last", "all"]),
        ("init", "kaiming", ["gaussian", "xavier", "orthogonal", "identity", "torch"]),
        ("clip", "Norm", ["none", "norm", "value", "step", "agc"]),
    ],
)
def test_bad_choice_lists_the_choices(field, value, choices):
    e = error(**{field: value})
    assert e.field == field
    assert repr(value) in e.message or value in e.message
    for c in choices:
        assert c in e.message


@pytest.mark.parametrize("field", ["hidden", "batch", "steps", "input_size", "output_size", "truncate", "seed"])
@pytest.mark.parametrize("value", [16.0, 2.5, True, "16"])
def test_non_integers_for_integer_fields(field, value):
    e = error(**{field: value})
    assert e.field == field
    assert "integer" in e.message
    if value == 16.0:
        assert "decimal point" in e.message


@pytest.mark.parametrize("field", ["scale", "input_scale", "leaky_slope", "forget_bias", "spectral_radius", "explode_threshold", "vanish_threshold"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats(field, value):
    extra = {"activation": "leaky_relu"} if field == "leaky_slope" else {"cell": "lstm"} if field == "forget_bias" else {}
    e = error(**{field: value}, **extra)
    assert e.field == field
    assert field in e.message and "finite" in e.message


def test_non_finite_float_message_states_the_range():
    e = error(scale=math.nan)
    assert "from 0 to 1e+06" in e.message


def test_non_finite_clip_threshold():
    e = error(clip="norm", clip_threshold=math.nan)
    assert e.field == "clip_threshold"
    e = error(clip="norm", clip_threshold=0.0)
    assert e.field == "clip_threshold" and "> 0" in e.message


def test_floats_accept_integers():
    assert Config(scale=10).scale == 10
    assert Config(input_scale=0).input_scale == 0


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_out_of_range_property(data):
    """Any numeric field given a value outside its documented range is refused, by name."""
    ranges = {
        "hidden": (1, 4096),
        "batch": (1, 4096),
        "steps": (1, 1_000_000),
        "input_size": (1, 4096),
        "output_size": (1, 4096),
        "truncate": (0, 1_000_000),
        "seed": (0, 2**32 - 1),
    }
    name = data.draw(st.sampled_from(sorted(ranges)))
    low, high = ranges[name]
    value = data.draw(st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1)))
    e = error(**{name: value})
    assert e.field == name and str(low) in e.message and str(high) in e.message


def test_memory_estimate_refuses_huge_runs():
    T, N, H = 1_000_000, 64, 512
    e = error(steps=T, batch=N, hidden=H)
    assert e.field == "steps"
    assert "GiB" in e.message
    # the hidden states alone are T * N * H float64s: the estimate cannot be lower
    m = re.search(r"([\d.]+)\s*GiB", e.message)
    assert m and float(m.group(1)) >= T * N * H * 8 / 2**30
    # a modest run is accepted
    Config(steps=10_000, batch=4, hidden=16)


# -- with_overrides -------------------------------------------------------------------------


def test_inherited_forget_bias_falls_back_when_switching_to_rnn():
    base = get("lstm-cec").config
    assert base.forget_bias == 3.0
    c = base.with_overrides(cell="rnn")
    assert c.cell == "rnn" and c.forget_bias == 0.0
    assert c.hidden == base.hidden and c.steps == base.steps  # the rest is inherited
    Run(c)  # and it is usable


def test_inherited_relu_falls_back_when_switching_to_lstm():
    base = get("irnn").config
    assert base.activation == "relu"
    c = base.with_overrides(cell="lstm")
    assert c.cell == "lstm" and c.activation == "tanh"
    assert c.init == "identity" and c.batch == base.batch


def saved_weights(tmp_path, **sizes) -> str:
    """A real .npz with the parameters of Config(**sizes)."""
    path = tmp_path / "w.npz"
    np.savez(path, **Run(Config(**sizes)).params)
    return str(path)


def test_fallback_cascades(tmp_path):
    """leaky_slope depends on activation, which depends on cell: both fall back."""
    c = Config(activation="leaky_relu", leaky_slope=0.2).with_overrides(cell="gru")
    assert (c.activation, c.leaky_slope) == ("tanh", 0.01)
    w = saved_weights(tmp_path)
    c = Config(init="orthogonal", scale=1.5, spectral_radius=1.1).with_overrides(sizes=file_sizes({"weights": w}), weights=w)
    assert (c.init, c.scale, c.spectral_radius) == ("xavier", 1.0, 0.0)


def test_sizes_come_from_the_weights_file_unless_given(tmp_path):
    w = saved_weights(tmp_path, hidden=7, input_size=3, output_size=5)
    c = get("clip-rescue").config.with_overrides(sizes=file_sizes({"weights": w}), weights=w)
    assert (c.hidden, c.input_size, c.output_size) == (7, 3, 5)
    with pytest.raises(ConfigError) as info:
        Run(get("clip-rescue").config.with_overrides(sizes=file_sizes({"weights": w}), weights=w, hidden=8))
    assert "'weight_ih_l0' has shape (7, 3), expected (8, 3)" in info.value.message


@pytest.mark.parametrize(
    "preset, explicit, field",
    [
        ("lstm-cec", dict(cell="rnn", forget_bias=3.0), "forget_bias"),
        ("lstm-cec", dict(cell="rnn", forget_bias=1.0), "forget_bias"),
        ("irnn", dict(cell="lstm", activation="relu"), "activation"),
        ("seed-explode", dict(leaky_slope=0.3), "leaky_slope"),
        ("seed-explode", dict(loss="xent"), "loss"),
        ("orthogonal", dict(clip_threshold=2.0), "clip_threshold"),
        ("orthogonal", dict(weights="WEIGHTS", scale=2.0), "scale"),
        ("wig-sentence", dict(steps=4), "steps"),
    ],
)
def test_explicit_inapplicable_setting_is_an_error(preset, explicit, field, tmp_path):
    if explicit.get("weights") == "WEIGHTS":
        explicit = {**explicit, "weights": saved_weights(tmp_path, hidden=32, batch=4)}
    with pytest.raises(ConfigError) as info:
        get(preset).config.with_overrides(**explicit)
    assert info.value.field == field
    assert field in info.value.message


def test_explicit_default_valued_setting_that_text_overrides_is_an_error():
    with pytest.raises(ConfigError) as info:
        get("wig-sentence").config.with_overrides(loss="mse")
    assert info.value.field == "loss"


def test_unknown_override_names_it():
    with pytest.raises(ConfigError) as info:
        Config().with_overrides(hiden=3)
    assert info.value.field == "hiden" and "hiden" in info.value.message


@pytest.mark.parametrize("new", ["none", "norm", "value", "step", "agc"])
@pytest.mark.parametrize("preset", ["clip-rescue", "step-clip", "seed-explode"])
def test_changing_clip_picks_the_new_default_threshold(preset, new):
    base = get(preset).config
    c = base.with_overrides(clip=new)
    assert c.clip == new
    assert c.clip_threshold == Config(clip=new).clip_threshold
    if new == "norm":
        assert c.clip_threshold == 5.0  # the source's max_norm (SPEC section 3)
    if new == "none":
        assert c.clip_threshold == 0.0
    # an explicit threshold is kept
    if new != "none":
        assert base.with_overrides(clip=new, clip_threshold=0.25).clip_threshold == 0.25


def test_threshold_alone_keeps_the_clip_mode():
    c = get("step-clip").config.with_overrides(clip_threshold=2.0)
    assert (c.clip, c.clip_threshold) == ("step", 2.0)


def test_overrides_do_not_touch_the_base():
    base = get("lstm-cec").config
    before = dataclasses.asdict(base)
    base.with_overrides(cell="rnn", hidden=8)
    assert dataclasses.asdict(base) == before


# -- text -------------------------------------------------------------------------------------


def test_text_sets_steps_and_vocabulary():
    words = "the cat sat on the mat".split()
    c = Config(text=" ".join(words))
    vocab = tuple(sorted(set(words)))
    assert c.vocabulary == vocab == ("cat", "mat", "on", "sat", "the")
    assert c.steps == len(words) - 1
    assert c.input_size == c.output_size == len(vocab)
    assert c.batch == 1 and c.loss == "xent"
    run = Run(c)
    assert run.inputs.shape == (5, 1, 5)
    ids = [vocab.index(w) for w in words]
    # one-hot inputs are words 1..n-1, targets words 2..n
    np.testing.assert_array_equal(run.inputs.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(run.inputs.argmax(axis=-1)[:, 0], ids[:-1])
    np.testing.assert_array_equal(np.asarray(run.targets)[:, 0], ids[1:])
    run.run()


def test_text_override_on_text_preset_rederives_shapes():
    c = get("wig-sentence").config.with_overrides(text="a b a c")
    assert c.steps == 3 and c.vocabulary == ("a", "b", "c") and c.input_size == 3 and c.output_size == 3


def test_text_too_short_and_conflicting_shapes():
    assert error(text="one").field == "text"
    e = error(text="a b c", steps=5)
    assert e.field == "steps" and "2" in e.message


# -- reproducibility --------------------------------------------------------------------------


REPRO = [
    Config(hidden=6, batch=3, steps=20, seed=11),
    Config(cell="lstm", hidden=5, batch=2, steps=15, seed=11, forget_bias=1.0, loss_on="all", clip="agc"),
    Config(cell="gru", hidden=5, batch=2, steps=15, seed=11, init="torch", loss="xent", clip="norm", clip_threshold=0.1),
    Config(mode="chain", activation="linear", hidden=3, batch=2, steps=20, init="gaussian", seed=11, clip="step", clip_threshold=2.0),
    Config(text="a b c a b d", hidden=4, seed=11, loss_on="all", truncate=2, init="orthogonal"),
    # H > 32: jacobian_sigma is a warm-started power iteration, whose state must reset too
    Config(hidden=40, batch=2, steps=10, seed=11),
]
REPRO_IDS = ["rnn", "lstm-agc", "gru-xent-norm", "chain-step", "text-truncate", "power-iteration"]


def snapshot(run: Run) -> dict[str, np.ndarray]:
    rec = run.records
    out = {f"col:{n}": c for n, c in rec.columns.items()}
    out.update(
        {
            "status": rec.status,
            "clip_mode": rec.clip_mode,
            "clip_applied": rec.clip_applied,
            "clip_before": rec.clip_before,
            "clip_after": rec.clip_after,
            "clip_factor": rec.clip_factor,
            "inputs": run.inputs,
        }
    )
    if run.targets is not None:
        out["targets"] = np.asarray(run.targets)
    for kind in ("params", "grads", "grads_raw"):
        for n, a in getattr(run, kind).items():
            out[f"{kind}:{n}"] = a
    return {k: np.array(v, copy=True) for k, v in out.items()}


def assert_same_bits(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        # bitwise: compare the raw bytes (NaN == NaN, -0.0 != 0.0)
        assert a[k].tobytes() == b[k].tobytes(), k


@pytest.mark.parametrize("cfg", REPRO, ids=REPRO_IDS)
def test_same_seed_same_bits(cfg):
    r1, r2 = Run(cfg), Run(cfg)
    s1, s2 = r1.run(), r2.run()
    assert_same_bits(snapshot(r1), snapshot(r2))
    assert s1 == s2 or repr(s1) == repr(s2)


@pytest.mark.parametrize("cfg", REPRO[:4], ids=["rnn", "lstm-agc", "gru-xent-norm", "chain-step"])
def test_different_seed_differs(cfg):
    r1 = Run(cfg)
    r2 = Run(dataclasses.replace(cfg, seed=cfg.seed + 1))
    r1.run(), r2.run()
    assert not np.array_equal(r1.params["weight_hh_l0"], r2.params["weight_hh_l0"])
    assert not np.array_equal(r1.records.columns["grad_norm"], r2.records.columns["grad_norm"])
    assert not np.array_equal(r1.grads_raw["weight_hh_l0"], r2.grads_raw["weight_hh_l0"])
    if cfg.mode == "bptt":
        assert not np.array_equal(r1.inputs, r2.inputs)


def test_init_choice_does_not_change_the_inputs():
    a = Run(Config(seed=5, init="xavier"))
    b = Run(Config(seed=5, init="orthogonal"))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)


@pytest.mark.parametrize("cfg", REPRO, ids=REPRO_IDS)
def test_reset_then_run_again_is_identical(cfg):
    run = Run(cfg)
    run.run()
    first = snapshot(run)
    run.reset()
    assert len(run.records) == 0 and run.grads_raw is None and not run.done
    run.run()
    assert_same_bits(first, snapshot(run))
    # a reset in the middle of a pass too
    run.reset()
    for _ in range(3):
        run.step()
    run.reset()
    run.run()
    assert_same_bits(first, snapshot(run))
    with pytest.raises(RunComplete):
        run.step()


def test_spec_table_covers_every_field():
    init_fields = {f.name for f in dataclasses.fields(Config) if f.init}
    assert init_fields == set(SPEC)
