"""The engine against golden numbers from real PyTorch autograd (SPEC section 7).

The fixtures in tests/fixtures/torch/ were computed by
tests/fixtures/make_torch_fixtures.py with torch.nn.RNN / LSTM / GRU and a
torch.nn.Linear head in float64 (see cases.json for the torch version). This
test needs numpy and the engine only: torch is never imported here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import Config, Run

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "torch"
MANIFEST = json.loads((FIXTURES / "cases.json").read_text())
CASES = MANIFEST["cases"]
PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")


def load(case: dict) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / case["file"], allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def run_case(case: dict) -> tuple[Run, dict[str, np.ndarray]]:
    fx = load(case)
    config = Config(
        cell=case["cell"],
        activation=case["activation"],
        hidden=case["H"],
        batch=case["N"],
        steps=case["T"],
        input_size=case["D"],
        output_size=case["K"],
        loss=case["loss"],
        loss_on=case["loss_on"],
    )
    run = Run(config, params={name: fx[name] for name in PARAM_NAMES}, inputs=fx["inputs"], targets=fx["targets"])
    run.run()
    return run, fx


def test_fixtures_are_complete_and_small():
    files = sorted(p.name for p in FIXTURES.glob("*.npz"))
    assert files == sorted(case["file"] for case in CASES)
    combos = {(c["cell"], c["activation"], c["loss"], c["loss_on"]) for c in CASES}
    for cell, activation in (("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")):
        for loss in ("mse", "xent"):
            for loss_on in ("last", "all"):
                assert (cell, activation, loss, loss_on) in combos
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 200_000


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_fixture_shapes(case):
    fx = load(case)
    T, N, D, H, K = (case[k] for k in "TNDHK")
    assert fx["inputs"].shape == (T, N, D)
    assert fx["targets"].shape == ((T, N, K) if case["loss"] == "mse" else (T, N))
    if case["loss"] == "xent":
        assert fx["targets"].dtype == np.int64
    assert fx["dh"].shape == (T + 1, N, H)
    for name in PARAM_NAMES:
        assert fx["grad_" + name].shape == fx[name].shape


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_loss_matches_torch(case):
    run, fx = run_case(case)
    np.testing.assert_allclose(run.loss, float(fx["loss"]), rtol=1e-10, atol=0)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_parameter_gradients_match_torch(case):
    run, fx = run_case(case)
    assert set(run.grads_raw) == set(PARAM_NAMES)
    for name in PARAM_NAMES:
        np.testing.assert_allclose(run.grads_raw[name], fx["grad_" + name], rtol=1e-9, atol=1e-12, err_msg=f"{case['name']}: {name}")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_record_norms_match_torch_dh(case):
    """Record k holds ||dL/dh_{T-k}||_F / N, the total gradient torch gives h_{T-k}."""
    run, fx = run_case(case)
    T, N = case["T"], case["N"]
    dh = fx["dh"]
    expected = np.array([np.linalg.norm(dh[T - k]) / N for k in range(1, T + 1)])
    got = run.records.columns["grad_norm"][:T]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=case["name"])
    # The starting norm is the loss's own gradient at h_T.
    np.testing.assert_allclose(run.start_norm, np.linalg.norm(dh[T]) / N, rtol=1e-9, atol=1e-12)
