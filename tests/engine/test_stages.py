"""The engine in stages: the model updated in place with nothing stale, the
lean gradient path against the recorded one, and the stages themselves."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Config, Run
from engine.backward import Carried, gradients, inject, lean_gradients, truncate
from engine.clipping import make_rule
from engine.data import make_data
from engine.forward import forward
from engine.model import Model, StaleTrace
from engine.presets import BUILTIN

VARIANTS = ({}, {"truncate": 3}, {"clip": "step", "clip_threshold": 0.5}, {"clip": "norm", "clip_threshold": 0.1}, {"clip": "agc"}, {"clip": "value", "clip_threshold": 1e-3})


def configs():
    for name, preset in BUILTIN.items():
        for extra in VARIANTS:
            try:
                yield pytest.param(preset.config.with_overrides(**extra), id=f"{name}-{'-'.join(map(str, extra.values())) or 'plain'}")
            except Exception:  # a variant that does not apply to this preset (truncation in a chain, ...)
                continue


def close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    """Elementwise within rtol of the parameter's largest entry: the two paths
    sum the same terms in a different order (per step vs one matmul)."""
    scale = max(float(np.max(np.abs(b))), 1e-300)
    return bool(np.all(np.abs(a - b) <= rtol * scale))


@pytest.mark.parametrize("config", list(configs()))
def test_the_lean_path_gives_the_recorded_paths_gradients(config):
    run = Run(config)
    run.run()
    params = {k: v.copy() for k, v in run.params.items()}
    loss, raw, clipped = gradients(config, params, run.inputs, run.targets)
    assert loss == run.loss
    assert set(raw) == set(run.grads_raw)
    for name in raw:
        assert close(raw[name], run.grads_raw[name], 1e-13), name
        assert close(clipped[name], run.grads[name], 1e-13), name
    assert lean_gradients(config, params, run.inputs, run.targets)[0] == loss


def test_an_update_in_place_leaves_nothing_stale():
    config = BUILTIN["clip-rescue"].config
    model = Model.from_config(config)
    before = model.spectrum()["sigma_max"]
    W = model.params["weight_hh_l0"]
    step = {"weight_hh_l0": 0.5 * W.copy()}  # W -> 1.5 W
    inputs, targets = make_data(config)
    old = forward(model, inputs, targets)
    model.update(step)
    assert model.params["weight_hh_l0"] is W  # in place: the optimizer's arrays stay the model's
    assert model.spectrum()["sigma_max"] == pytest.approx(1.5 * before, rel=1e-12)
    assert model.spectrum()["sigma_max"] == pytest.approx(np.linalg.svd(W, compute_uv=False)[0], rel=1e-12)
    # A backward pass over the old forward trace would mix old activations with new weights.
    from engine.backward import Backward, RunningGradients

    back = Backward(model, old, RunningGradients(model.params, old.head_grads, old.cell), None)
    with pytest.raises(StaleTrace):
        back.step()
    # A fresh run on the updated model is the run on those parameters from scratch.
    fresh = Run(config, params={k: v.copy() for k, v in model.params.items()}, inputs=inputs, targets=targets)
    fresh.run()
    again = Run(config, params=model.params, inputs=inputs, targets=targets)
    again.run()
    for name in fresh.grads_raw:
        np.testing.assert_array_equal(again.grads_raw[name], fresh.grads_raw[name])


def test_agc_measures_against_the_parameters_as_they_are_now():
    config = BUILTIN["clip-rescue"].config.with_overrides(clip="agc")
    model = Model.from_config(config)
    grads = {name: (np.ones_like(p) if p.ndim == 2 else np.zeros_like(p)) for name, p in model.params.items()}  # biases start at 0
    rule = make_rule("agc", 0.01)
    first = rule.measure(grads, model.params)
    model.update({name: p.copy() for name, p in model.params.items() if not name.startswith("head")})  # every W -> 2 W
    assert rule.measure(grads, model.params) == pytest.approx(first / 2, rel=1e-12)


def test_truncation_stops_each_output_after_its_own_jacobians():
    """SPEC 5: an output's gradient crosses at most `truncate` Jacobians; others travel on."""
    start = np.ones((1, 2))
    carried = Carried(start, cell_state=False, apart=True)
    carried.age += 3  # the loss at T has crossed 3 Jacobians
    inject(carried, 2 * np.ones((1, 2)))  # a newer output, age 0
    truncate(carried, 3)
    assert list(carried.age) == [3, 0]
    carried.age += 1
    truncate(carried, 3)
    assert list(carried.age) == [1]
    np.testing.assert_array_equal(carried.dh[0], 2 * np.ones((1, 2)))


def test_without_truncation_the_outputs_travel_as_one_sum():
    carried = Carried(np.ones((1, 2)), cell_state=False, apart=False)
    inject(carried, 2 * np.ones((1, 2)))
    assert len(carried.age) == 1
    np.testing.assert_array_equal(carried.total()[0], 3 * np.ones((1, 2)))


def test_a_run_still_offers_one_step_at_a_time_with_the_lean_numbers_at_the_end():
    config = Config(cell="gru", hidden=5, batch=2, steps=12, loss_on="all", truncate=4, seed=7)
    run = Run(config)
    for k in range(1, 13):
        assert run.step().k == k
    loss, raw = lean_gradients(config, {k: v.copy() for k, v in run.params.items()}, run.inputs, run.targets)
    for name in raw:
        assert close(raw[name], run.grads_raw[name], 1e-13), name


@pytest.mark.parametrize("cell, hidden", [("rnn", 48), ("lstm", 40), ("gru", 6)])
def test_what_a_record_shows_of_its_transition_is_the_same_whenever_it_is_read(cell, hidden):
    """sigma, saturation, dead units, gate mean and the hidden path are computed when read (so stepping never
    waits for them); read step by step, at the end, or after a reset, they are
    the same numbers, and a record not yet stepped shows none."""
    config = Config(cell=cell, hidden=hidden, batch=3, steps=150, seed=5)
    names = ("jacobian_sigma", "saturation", "dead", "gate_mean", "hidden_path")
    stepwise = Run(config)
    seen = {name: [] for name in names}
    for _ in range(config.steps):
        record = stepwise.step()
        for name in names:
            seen[name].append(getattr(record, name))
    at_end = Run(config)
    at_end.advance(70)
    assert np.isnan(at_end.records.columns["jacobian_sigma"][70:]).all()  # not stepped: nothing to show
    at_end.run()
    for name in names:
        np.testing.assert_array_equal(at_end.records.columns[name], np.array(seen[name]), err_msg=name)
    at_end.reset()
    at_end.advance(40)
    np.testing.assert_array_equal(at_end.records.columns["jacobian_sigma"][:40], np.array(seen["jacobian_sigma"][:40]))
    assert np.isfinite(np.array(seen["jacobian_sigma"])).all() and np.isfinite(np.array(seen["saturation"])).all()


def test_stepping_does_not_compute_what_no_one_reads(monkeypatch):
    import engine.model

    spectra = []
    for name in ("singular_values", "block_radii"):
        real_one = getattr(engine.model, name)
        monkeypatch.setattr(engine.model, name, lambda blocks, real_one=real_one, name=name: spectra.append(name) or real_one(blocks))
    run = Run(Config(hidden=48, batch=3, steps=100, seed=5))
    calls = []
    real = run.cell.transitions
    run.cell.transitions = lambda lo, hi: calls.append((lo, hi)) or real(lo, hi)
    run.advance(100)
    assert calls == [] and spectra == []
    assert np.isfinite(run.records.columns["bound"]).all()
    assert spectra == ["singular_values"] and calls == []  # the bound needs sigma_max, not the eigenvalues or the Jacobians
    assert np.isfinite(run.records[1].jacobian_sigma)
    assert calls == [(69, 101)]  # one chunk, from the last transition down
    run.summary()
    assert spectra == ["singular_values", "block_radii"]  # each once: cached for this version of the parameters
