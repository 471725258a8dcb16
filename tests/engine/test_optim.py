"""The optimizers against torch.optim (SPEC section 8).

tests/fixtures/training/optim_*.npz were computed by
tests/fixtures/make_training_fixtures.py with torch.optim.SGD and
torch.optim.Adam fed a given gradient per update (sizes over five decades,
exact zeros, one update without gradient); torch is never imported here.
PyTorch's kernels may fuse a multiply and an add, so the engine agrees to
round-off: 1e-13 relative per element, after every one of the 24 updates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.optim import OPTIMIZERS, SGD, Adam, make_optimizer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"
MANIFEST = json.loads((FIXTURES / "cases.json").read_text())
CASES = [case for case in MANIFEST["cases"] if case["name"].startswith("optim_")]
RTOL = 1e-13


def load(case: dict) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / case["file"], allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def test_fixtures_are_complete_and_small():
    files = sorted(p.name for p in FIXTURES.glob("*.npz"))
    assert files == sorted(case["file"] for case in MANIFEST["cases"])
    assert {case["optimizer"] for case in CASES} == set(OPTIMIZERS)
    assert any(case["settings"].get("momentum") for case in CASES)
    assert all(case["updates"] >= 20 for case in MANIFEST["cases"])
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 150_000


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_every_update_matches_torch(case):
    fx = load(case)
    params = {key: fx[f"start_{key}"].copy() for key in case["params"]}
    opt = make_optimizer(case["optimizer"], params, **case["settings"])
    for u in range(case["updates"]):
        new = opt.step(params, {key: fx[f"grad_{key}"][u] for key in params})
        for key in params:
            expected = fx[f"after_{key}"][u]
            np.testing.assert_allclose(new[key], expected, rtol=RTOL, atol=0, err_msg=f"{case['name']} update {u + 1}: {key}")
        params = new


def test_the_fixtures_moved_every_parameter_with_a_gradient():
    """A fixture whose parameters never moved would pass any optimizer; the
    element whose gradient is always zero stays put."""
    for case in CASES:
        fx = load(case)
        for key in case["params"]:
            moved = (fx[f"after_{key}"][-1] != fx[f"start_{key}"]).reshape(-1)
            assert not moved[0] and moved[1:].all(), (case["name"], key)


def test_step_returns_new_arrays_and_leaves_the_parameters():
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 2))}
    before = params["w"].copy()
    for opt in (SGD(params, 0.1, 0.9), Adam(params, 0.1)):
        new = opt.step(params, {"w": rng.standard_normal((3, 2))})
        np.testing.assert_array_equal(params["w"], before)
        assert new["w"] is not params["w"] and not np.array_equal(new["w"], before)


@pytest.mark.parametrize(("name", "settings"), [("sgd", {"lr": 0.1, "momentum": 0.9}), ("adam", {"lr": 0.01, "beta1": 0.8})])
def test_a_saved_state_continues_bit_for_bit(name, settings):
    rng = np.random.default_rng(1)
    grads = [{"w": rng.standard_normal(4), "b": rng.standard_normal((2, 2))} for _ in range(10)]
    start = {"w": rng.standard_normal(4), "b": rng.standard_normal((2, 2))}

    def run(params, opt, gs):
        for g in gs:
            params = opt.step(params, g)
        return params

    straight = run(start, make_optimizer(name, start, **settings), grads)
    first = make_optimizer(name, start, **settings)
    middle = run(start, first, grads[:4])
    saved = first.state()
    run(middle, first, grads[4:6])  # the saved state is a copy: later steps do not change it
    resumed = make_optimizer(name, start, **settings)
    resumed.load(saved)
    final = run(middle, resumed, grads[4:])
    for key in start:
        np.testing.assert_array_equal(final[key], straight[key])


def test_sgd_without_momentum_is_p_minus_lr_g():
    p, g = {"w": np.array([1.0, -2.0, 3.0])}, {"w": np.array([0.5, 0.25, -4.0])}
    new = make_optimizer("sgd", p, lr=0.1, momentum=0.0, beta1=0.5).step(p, g)  # settings it does not take are ignored
    np.testing.assert_array_equal(new["w"], [0.95, -2.025, 3.4])


def test_adam_first_step_moves_each_parameter_by_lr():
    """With m and v bias-corrected, the first step is lr * g / (|g| + eps): lr in the sign of -g."""
    p = {"w": np.array([0.0, 1.0, -1.0])}
    g = {"w": np.array([3.0, -1e-3, 20.0])}
    new = Adam(p, lr=0.01).step(p, g)
    np.testing.assert_allclose(new["w"] - p["w"], [-0.01, 0.01, -0.01], rtol=1e-5)


def test_state_sizes_for_memory_estimates():
    assert SGD.state_copies(momentum=0.0) == 0 and SGD.state_copies(momentum=0.9) == 1
    assert Adam.state_copies() == 2
