"""The heatmap's data (engine/gradient_map.py), recorded as the backward pass steps:
|dL/dh_t| per unit against PyTorch's total gradient dL/dh_t (tests/fixtures/torch),
||dL/dx_t|| against finite differences of the forward pass's loss, the binning
and the memory bound."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import Config, Run
from engine import gradient_map
from engine.gradient_map import binned, unit_norms
from engine.presets import BUILTIN
from tests.input_gradients import input_norms

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "torch"
CASES = json.loads((FIXTURES / "cases.json").read_text())["cases"]
PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")


def fixture_run(case: dict) -> tuple[Run, dict]:
    with np.load(FIXTURES / case["file"], allow_pickle=False) as data:
        fx = {key: data[key] for key in data.files}
    keys = dict(cell="cell", activation="activation", hidden="H", batch="N", steps="T", input_size="D", output_size="K", loss="loss", loss_on="loss_on")
    config = Config(**{name: case[key] for name, key in keys.items()})
    run = Run(config, params={name: fx[name] for name in PARAM_NAMES}, inputs=fx["inputs"], targets=fx["targets"], gradient_map=True)
    run.run()
    return run, fx


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_units_are_torch_total_gradient_per_unit(case):
    """Column k is ||dL/dh_{T-k}[:, j]||_2 / N of autograd's dL/dh_t (h_t retain_grad)."""
    run, fx = fixture_run(case)
    T, N = run.T, run.N
    expected = np.array([np.sqrt(np.sum(fx["dh"][T - k] ** 2, axis=0)) / N for k in range(T + 1)])
    units, first = run.gradient_map.columns(T)
    assert list(first) == list(range(T + 1))
    np.testing.assert_allclose(units, expected, rtol=1e-9, atol=1e-300)


FD_CASES = ["rnn_relu_mse_all", "lstm_mse_all", "gru_xent_last", "indrnn_tanh_xent_all"]


@pytest.mark.parametrize("name", FD_CASES)
def test_input_connectivity_is_the_loss_gradient_by_finite_differences(name):
    """||dL/dx_t||_F / N for every input step, gated cells included (the gates' pre-activations summed)."""
    run, _ = fixture_run(next(c for c in CASES if c["name"] == name))
    np.testing.assert_allclose(run.gradient_map.input_norms(run.T), input_norms(run), rtol=1e-5)


@pytest.mark.parametrize("name", ["seed-explode", "step-clip", "lstm-cec", "gru", "indrnn", "truncated", "relu-rescue"])
def test_each_column_has_the_logs_norm(name):
    """sqrt(sum_j u_j^2) = ||dL/dh_t||_F / N: the record's grad_norm (after a step clip), and the start norm at k = 0."""
    run = Run(BUILTIN[name].config, gradient_map=True)
    run.run()
    units, _ = run.gradient_map.columns(run.T)
    logged = np.concatenate([[run.start_norm], run.records.columns["grad_norm"]])
    np.testing.assert_allclose(np.sqrt(np.sum(units**2, axis=1)), logged, rtol=1e-12)


def test_the_map_follows_the_pass_and_reset():
    run = Run(BUILTIN["wig-went"].config.with_overrides(truncate=0), gradient_map=True)
    assert run.gradient_map.columns(run.T)[0].shape == (1, 16) and run.gradient_map.input_norms(run.T).size == 0
    run.advance(3)
    assert run.gradient_map.columns(run.T)[0].shape == (4, 16)
    assert run.gradient_map.columns(2)[0].shape == (3, 16)
    assert run.gradient_map.input_norms(run.T).size == 3 and run.gradient_map.input_norms(2).size == 2
    first = run.gradient_map.input_norms(3).copy()
    run.run()
    whole = run.gradient_map.columns(run.T)[0].copy()
    run.reset()
    assert run.gradient_map.input_norms(run.T).size == 0
    run.run()
    np.testing.assert_array_equal(run.gradient_map.columns(run.T)[0], whole)
    np.testing.assert_array_equal(run.gradient_map.input_norms(3), first)


def test_a_map_past_the_budget_keeps_the_largest_of_each_run_of_steps(monkeypatch):
    config = BUILTIN["lstm-cec"].config  # T = 100, H = 32
    full = Run(config, gradient_map=True)
    full.run()
    monkeypatch.setattr(gradient_map, "BUDGET", 32 * 10)  # 10 columns of H floats
    small = Run(config, gradient_map=True)
    small.run()
    m = small.gradient_map
    assert m.stride == 11 and m.units.size <= 320
    units, first = m.columns(small.T)
    expected = full.gradient_map.columns(full.T)[0]
    assert list(first) == list(range(0, 101, 11))
    for c, k in enumerate(first):
        np.testing.assert_array_equal(units[c], expected[k : k + 11].max(axis=0))
    np.testing.assert_array_equal(m.input_norms(small.T), full.gradient_map.input_norms(full.T))  # always full resolution


def test_unit_norms_neither_overflow_nor_underflow():
    g = np.array([[3e200, 1e-200, 0.0, np.inf, np.nan], [4e200, 0.0, 0.0, 1.0, 1.0]])
    with np.errstate(all="ignore"):
        u = unit_norms(g, 2.0)
    assert u[0] == pytest.approx(2.5e200) and u[1] == pytest.approx(0.5e-200) and u[2] == 0.0
    assert u[3] == math.inf and math.isnan(u[4])
    plain = np.array([[3.0, 1.0], [4.0, 1.0]])
    np.testing.assert_allclose(unit_norms(plain, 2.0), [2.5, math.sqrt(2) / 2])


@given(
    st.integers(1, 60),
    st.integers(1, 7),
    st.integers(1, 40),
    st.integers(0, 2**31 - 1),
)
def test_binned_covers_every_entry_with_the_largest_of_each_bin(n, h, bins, seed):
    values = np.random.default_rng(seed).random((n, h))
    out, first = binned(values, bins)
    assert out.shape == (min(n, bins), h) and first[0] == 0
    edges = list(first) + [n]
    sizes = np.diff(edges)
    assert sizes.min() >= 1 and sizes.max() - sizes.min() <= 1  # every entry in one bin, bins even
    for b in range(len(first)):
        np.testing.assert_array_equal(out[b], values[edges[b] : edges[b + 1]].max(axis=0))


def test_binned_along_units_and_nan():
    values = np.arange(12.0).reshape(2, 6)
    values[1, 4] = np.nan
    out, first = binned(values, 3, axis=1)
    assert list(first) == [0, 2, 4]
    np.testing.assert_array_equal(out[0], [1.0, 3.0, 5.0])
    assert out[1, 0] == 7.0 and math.isnan(out[1, 2])


def test_binned_part_of_a_series_uses_the_whole_series_bins():
    """A run part way: the bins are those of all T + 1 steps; the last one holds what is computed so far."""
    values = np.array([1.0, 5.0, 2.0, 9.0, 3.0])  # 5 of 10 entries
    out, first = binned(values, 4, total=10)  # bins of the whole: 0-1, 2-4, 5-6, 7-9
    assert list(first) == [0, 2] and list(out) == [5.0, 9.0]
    out, first = binned(values[:3], 4, total=10)
    assert list(first) == [0, 2] and list(out) == [5.0, 2.0]


@pytest.mark.parametrize("name", ["wig-went", "seed-vanish", "gru"])
def test_a_chunk_at_a_time_and_a_step_at_a_time_agree(monkeypatch, name):
    """The norms of small steps are taken a chunk at a time; forced one step at a time, the same numbers."""
    config = BUILTIN[name].config.with_overrides(steps=300) if name == "seed-vanish" else BUILTIN[name].config
    chunked = Run(config, gradient_map=True)
    chunked.run()
    monkeypatch.setattr(gradient_map, "PENDING", 0)
    single = Run(config, gradient_map=True)
    assert single.gradient_map._g is None and chunked.gradient_map._g is not None
    single.run()
    np.testing.assert_allclose(chunked.gradient_map.columns(config.steps)[0], single.gradient_map.columns(config.steps)[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(chunked.gradient_map.input_norms(config.steps), single.gradient_map.input_norms(config.steps), rtol=1e-14, atol=0)


def test_the_map_is_recorded_only_when_asked_for():
    # run and export do not pay for it; the dashboard and bptt-lab heatmap ask.
    plain, mapped = Run(BUILTIN["wig-went"].config), Run(BUILTIN["wig-went"].config, gradient_map=True)
    plain.run()
    mapped.run()
    assert plain.gradient_map is None
    np.testing.assert_array_equal(plain.records.columns["grad_norm"], mapped.records.columns["grad_norm"])
