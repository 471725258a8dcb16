"""The engine against golden numbers from real PyTorch autograd (SPEC section 7).

The fixtures in tests/fixtures/torch/ were computed by
tests/fixtures/make_torch_fixtures.py with torch.nn.RNN / LSTM / GRU and a
torch.nn.Linear head in float64 (see cases.json for the torch version). This
test needs numpy and the engine only: torch is never imported here.

The sigmoid-tail cases (tails=true in cases.json: an rnn with a sigmoid
activation and |net| up to ~40, LSTM and GRU with keep-gate bias -30 and +30)
are held to 1e-12 relative per element, on everything the engine computes from
the sigmoid: states, loss, parameter gradients, dL/dh_t and dL/dc_t per step,
and the records (gradient norms, cell-gradient norms, gate means).

The IndRNN cases (indrnn=true: weight_hh_l0 is the vector u, |u| from 0.5 to
1.3, ReLU units switching on and off) come from a torch.nn.Module written in
the generator; besides the checks every case gets, they are held to the same
1e-12 per element on states, loss, every parameter gradient (u included),
dL/dh_t per step and the gradient-norm records.
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
TAIL_CASES = [case for case in CASES if case.get("tails")]
INDRNN_CASES = [case for case in CASES if case.get("indrnn")]
TAIL_RTOL = 1e-12


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
    assert {("indrnn", "relu", "mse", "last"), ("indrnn", "tanh", "xent", "all")} <= combos
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
    if case.get("tails"):
        for key in ("h", "dh_loss") + (("dc",) if case["cell"] == "lstm" else ()):
            assert fx[key].shape == (T + 1, N, H), key
        if case["cell"] != "rnn":
            assert fx["gate_mean"].shape == (T,)
    if case.get("indrnn"):
        assert fx["weight_hh_l0"].shape == (H,)
        assert fx["weight_hh_l0"].tolist() == case["u"]
        for key in ("h", "dh_loss"):
            assert fx[key].shape == (T + 1, N, H), key


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


# -- the sigmoid's tails, per element ----------------------------------------------


def assert_per_element(got, expected, what: str) -> None:
    """|got - expected| <= 1e-12 |expected| for every element. No absolute floor:
    an exact zero in the fixture (h_0) must come out exactly zero."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    err = np.abs(got - expected)
    bad = ~(err <= TAIL_RTOL * np.abs(expected))
    if bad.any():
        rel = err[bad] / np.abs(expected[bad])
        worst = int(np.argmax(rel))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} elements differ by more than {TAIL_RTOL:g} relative; "
            f"worst {rel[worst]:.3g} (got {got[bad][worst]!r}, torch {expected[bad][worst]!r})"
        )


def test_sigmoid_tail_cases_are_present():
    """The audit's three configurations (rnn sigmoid; LSTM and GRU keep-gate bias -30), and the upper tail (+30)."""
    found = {(c["cell"], c["activation"] if c["cell"] == "rnn" else c["forget_bias"]) for c in TAIL_CASES}
    assert found >= {("rnn", "sigmoid"), ("lstm", -30.0), ("gru", -30.0), ("lstm", 30.0), ("gru", 30.0)}
    for case in TAIL_CASES:
        low, high = case["tail_abs_net_range"]
        assert low >= 15.0 and high >= 30.0, case["name"]  # sigma or 1 - sigma below 3e-7, down to 1e-13 and less


@pytest.mark.parametrize("case", TAIL_CASES, ids=[c["name"] for c in TAIL_CASES])
def test_sigmoid_tails_forward_loss_and_gradients_per_element(case):
    run, fx = run_case(case)
    assert_per_element(run.cell.h, fx["h"], "h_t")
    assert_per_element(run.loss, fx["loss"], "loss")
    for name in PARAM_NAMES:
        assert_per_element(run.grads_raw[name], fx["grad_" + name], name)


@pytest.mark.parametrize("case", TAIL_CASES, ids=[c["name"] for c in TAIL_CASES])
def test_sigmoid_tails_step_gradients_per_element(case):
    """dL/dh_t (and dL/dc_t) per element, the cell stepped back from h_T with the
    loss's own gradient at each h_t taken from the fixture."""
    run, fx = run_case(case)
    cell, T = run.cell, case["T"]
    dh = fx["dh_loss"][T]
    dc = np.zeros_like(dh) if cell.has_cell_state else None
    assert_per_element(dh, fx["dh"][T], f"dL/dh_{T}")
    for t in range(T, 0, -1):
        if dc is not None:
            assert_per_element(cell.cell_gradient(t, dh, dc), fx["dc"][t], f"dL/dc_{t}")
        dh, dc, _, _ = cell.propagate(t, dh, dc)
        dh = dh + fx["dh_loss"][t - 1]
        assert_per_element(dh, fx["dh"][t - 1], f"dL/dh_{t - 1}")
    if dc is not None:
        assert_per_element(cell.cell_gradient(0, dh, dc), fx["dc"][0], "dL/dc_0")


@pytest.mark.parametrize("case", TAIL_CASES, ids=[c["name"] for c in TAIL_CASES])
def test_sigmoid_tails_records(case):
    """Record k (dL/dh_{T-k}, transition T-k+1): gradient norm, LSTM cell-gradient
    norm ||dL/dc_{T-k}|| / N and the mean keep gate, each to 1e-12 relative."""
    run, fx = run_case(case)
    T, N = case["T"], case["N"]
    cols = run.records.columns
    assert_per_element(cols["grad_norm"][:T], [np.linalg.norm(fx["dh"][T - k]) / N for k in range(1, T + 1)], "grad_norm")
    assert_per_element(run.start_norm, np.linalg.norm(fx["dh"][T]) / N, "start_norm")
    if case["cell"] == "lstm":
        assert_per_element(cols["cell_norm"][:T], [np.linalg.norm(fx["dc"][T - k]) / N for k in range(1, T + 1)], "cell_norm")
    if case["cell"] != "rnn":
        assert_per_element(cols["gate_mean"][:T], fx["gate_mean"][::-1], "gate_mean")


# -- IndRNN, per element -------------------------------------------------------------


def test_indrnn_cases_cover_the_recurrence():
    """|u| spread around 1 (both sides, one u < 0), ReLU units each on somewhere
    and off somewhere and away from the kink, in the cases the brief asks for."""
    assert {(c["activation"], c["loss"], c["loss_on"]) for c in INDRNN_CASES} >= {("relu", "mse", "last"), ("tanh", "xent", "all")}
    for case in INDRNN_CASES:
        u = np.abs(case["u"])
        assert u.min() <= 0.6 and u.max() >= 1.2 and np.any(u < 1) and np.any(u > 1), case["name"]
        assert min(case["u"]) < 0, case["name"]
        assert case["other_max_rel_diff"] <= 2.5e-13, case["name"]
        if case["activation"] == "relu":
            fx = load(case)
            on = fx["h"][1:] > 0
            assert on.any(axis=(0, 1)).all() and (~on).any(axis=(0, 1)).all(), case["name"]
            assert case["abs_net_range"][0] >= 1e-3, case["name"]


@pytest.mark.parametrize("case", INDRNN_CASES, ids=[c["name"] for c in INDRNN_CASES])
def test_indrnn_forward_loss_and_gradients_per_element(case):
    run, fx = run_case(case)
    assert run.cell.name == "indrnn"
    assert_per_element(run.cell.h, fx["h"], "h_t")
    assert_per_element(run.loss, fx["loss"], "loss")
    for name in PARAM_NAMES:
        assert_per_element(run.grads_raw[name], fx["grad_" + name], name)


@pytest.mark.parametrize("case", INDRNN_CASES, ids=[c["name"] for c in INDRNN_CASES])
def test_indrnn_step_gradients_per_element(case):
    """dL/dh_t per element, the cell stepped back from h_T with the loss's own
    gradient at each h_t taken from the fixture."""
    run, fx = run_case(case)
    cell, T = run.cell, case["T"]
    dh = fx["dh_loss"][T]
    assert_per_element(dh, fx["dh"][T], f"dL/dh_{T}")
    for t in range(T, 0, -1):
        dh, dc, _, _ = cell.propagate(t, dh)
        assert dc is None
        dh = dh + fx["dh_loss"][t - 1]
        assert_per_element(dh, fx["dh"][t - 1], f"dL/dh_{t - 1}")


@pytest.mark.parametrize("case", INDRNN_CASES, ids=[c["name"] for c in INDRNN_CASES])
def test_indrnn_records_per_element(case):
    """Record k's gradient norm ||dL/dh_{T-k}||_F / N and the starting norm, to 1e-12 relative."""
    run, fx = run_case(case)
    T, N = case["T"], case["N"]
    assert_per_element(run.records.columns["grad_norm"][:T], [np.linalg.norm(fx["dh"][T - k]) / N for k in range(1, T + 1)], "grad_norm")
    assert_per_element(run.start_norm, np.linalg.norm(fx["dh"][T]) / N, "start_norm")
