"""The sigmoid, its complement and its derivative, to full relative precision in both tails.

Reference: Python floats through the math module, piecewise so that no formula
subtracts from 1 (nothing here comes from the engine):

    sigma(x)  = 1 / (1 + exp(-x)) for x >= 0,  exp(x) / (1 + exp(x)) for x < 0
    sigma'(x) = exp(-|x|) / (1 + exp(-|x|))^2

Engine and reference each round a handful of times, so they agree to a few
ulp: rtol 1e-15 (4.5 ulp at worst). Where the exact value is subnormal
(below 2**-1022, x < -708.4) the format itself keeps fewer than 53 bits: there
the bound is one unit of the last place of a subnormal, 2**-1074, instead.

The cells are checked at the same precision with zero weights, so that each
gate's pre-activation is a bias or an input set in either tail.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from engine.activations import activate_inplace, derivative, sigmoid, sigmoid_pair
from engine.cells import CELLS

RTOL = 1e-15
TINY = 2.0**-1022  # smallest normal double
SUBNORMAL_ULP = 2.0**-1074

# Both tails densely, plus the points where the branches meet and the far ends.
XS = np.unique(
    np.concatenate(
        [
            np.linspace(-745.0, 40.0, 15_701),
            np.linspace(-40.0, 40.0, 8_001),
            [-745.0, -744.5, -709.0, -708.4, -1e-300, -5e-324, -0.0, 0.0, 5e-324, 1e-300, 36.7, 37.5, 40.0],
        ]
    )
)


def ref_sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def ref_derivative(x: float) -> float:
    e = math.exp(-abs(x))
    return e / (1.0 + e) ** 2


def assert_tail_close(got, want, what: str, rtol: float = RTOL) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = np.abs(got - want)
    bound = np.where(np.abs(want) < TINY, SUBNORMAL_ULP, rtol * np.abs(want))
    bad = ~(err <= bound)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} off; first got {got.ravel()[i]!r}, reference {want.ravel()[i]!r}")


def test_reference_reaches_both_tails():
    """The grid really spans the tails: sigma down to the smallest subnormal, 1 - sigma to 4e-18."""
    lo, hi = ref_sigmoid(XS[0]), ref_sigmoid(-XS[-1])
    assert lo == SUBNORMAL_ULP and hi < 5e-18


def test_sigmoid_both_tails():
    want = np.array([ref_sigmoid(x) for x in XS])
    assert_tail_close(sigmoid(XS), want, "sigmoid")
    s, q = sigmoid_pair(XS)
    assert_tail_close(s, want, "sigmoid_pair: sigma(x)")
    # The complement 1 - sigma(x) = sigma(-x): the sigmoid's upper tail, x up to 745.
    assert_tail_close(q, np.array([ref_sigmoid(-x) for x in XS]), "sigmoid_pair: 1 - sigma(x)")
    s_neg, q_neg = sigmoid_pair(-XS)
    assert np.array_equal(s_neg, q) and np.array_equal(q_neg, s)


def test_sigmoid_derivative_both_tails():
    want = np.array([ref_derivative(x) for x in XS])
    s, q = sigmoid_pair(XS)
    assert_tail_close(s * q, want, "sigma(x) sigma(-x)")
    # The path the rnn takes: activate in place, keeping the complement, then f'(net) from h and it.
    h, comp = XS.copy(), np.empty_like(XS)
    activate_inplace("sigmoid", h, complement=comp)
    assert_tail_close(h, np.array([ref_sigmoid(x) for x in XS]), "activate_inplace")
    assert_tail_close(derivative("sigmoid", h, complement=comp), want, "derivative")
    with pytest.raises(ValueError, match="complement"):
        derivative("sigmoid", h)


def test_in_place_and_scalars():
    x = XS.copy()
    s = sigmoid(x, out=x)
    assert s is x and np.array_equal(x, sigmoid(XS))
    x, q = XS.copy(), np.empty_like(XS)
    s, c = sigmoid_pair(x, out=x, complement=q)
    assert s is x and c is q and np.array_equal(x, sigmoid(XS)) and np.array_equal(q, sigmoid(-XS))
    assert sigmoid(-30.0) == pytest.approx(ref_sigmoid(-30.0), rel=RTOL, abs=0)
    assert sigmoid_pair(30.0)[1] == pytest.approx(ref_sigmoid(-30.0), rel=RTOL, abs=0)
    assert sigmoid(np.array([[-30.0]])).shape == (1, 1)


def test_no_warnings_for_any_input():
    x = np.array([np.inf, -np.inf, 1e308, -1e308, np.nan, -800.0, 800.0, -5e-324, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):  # not even the underflow of exp(-800) may signal
            s, q = sigmoid_pair(x)
            s1 = sigmoid(x)
            h, comp = x.copy(), np.empty_like(x)
            activate_inplace("sigmoid", h, complement=comp)
            d = derivative("sigmoid", h, complement=comp)
    np.testing.assert_array_equal(s[:4], [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(q[:4], [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(d[:4], [0.0, 0.0, 0.0, 0.0])
    assert np.isnan(s[4]) and np.isnan(q[4]) and np.isnan(d[4]) and np.isnan(s1[4])
    np.testing.assert_array_equal(s[5:], [0.0, 1.0, 0.5, 0.5])
    np.testing.assert_array_equal(s1, s)
    np.testing.assert_array_equal(h, s)


# -- the cells: every place the engine uses the sigmoid ------------------------------

# Cell-level checks use pre-activations across both tails (a bias per unit).
NETS = np.array([-745.0, -708.0, -400.0, -100.0, -37.0, -30.0, -20.0, -1.0, 0.0, 1.0, 20.0, 30.0, 36.0, 37.0, 40.0])
H = NETS.size


def zero_params(gates: int, b_ih: np.ndarray) -> dict:
    return {
        "weight_ih_l0": np.zeros((gates * H, 1)),
        "weight_hh_l0": np.zeros((gates * H, H)),
        "bias_ih_l0": b_ih,
        "bias_hh_l0": np.zeros(gates * H),
    }


def test_rnn_sigmoid_cell_tails():
    """h_t = sigma(net), dL/dnet = dL/dh * sigma'(net) in propagate and A = sigma'(net) in transitions."""
    cell = CELLS["rnn"](zero_params(1, NETS.copy()), "sigmoid", 0.01, 0.25)
    cell.forward(np.zeros((2, 1, 1)))
    s = np.array([ref_sigmoid(x) for x in NETS])
    d = np.array([ref_derivative(x) for x in NETS])
    assert_tail_close(cell.h[1:, 0], np.stack([s, s]), "h_t")
    _, _, delta, _ = cell.propagate(2, np.ones((1, H)))
    assert_tail_close(delta[0], d, "dL/dnet_t")
    tr = cell.transitions(1, 3)
    assert_tail_close(tr.A[:, 0], np.stack([d, d]), "transitions: f'(net_t)")
    np.testing.assert_array_equal(tr.saturation, np.mean(d < 0.05 * 0.25))
    assert np.isnan(tr.dead).all()  # a sigmoid has no region where f' = 0: dead does not apply


def test_lstm_gates_tails():
    """Forget gate f = sigma(b_f) with b_f across both tails (i = o = sigma(0), g = tanh(1)):
    the gate mean, f' in propagate (dL/d net_f at t = 2 with dL/dc_2 = 1 is c_1 f'),
    and the same factor in transitions; o' likewise through dL/dh."""
    b = np.zeros(4 * H)
    b[H : 2 * H] = NETS  # f
    b[2 * H : 3 * H] = 1.0  # g
    b[3 * H :] = NETS  # o
    cell = CELLS["lstm"](zero_params(4, b), "tanh", 0.01, None)
    cell.forward(np.zeros((2, 1, 1)))
    f = np.array([ref_sigmoid(x) for x in NETS])
    d = np.array([ref_derivative(x) for x in NETS])
    c1 = 0.5 * math.tanh(1.0)  # i * g with c_0 = 0
    assert_tail_close(cell.c[1, 0], np.full(H, c1), "c_1")
    assert_tail_close(cell.h[1, 0], f * math.tanh(c1), "h_1 = o tanh(c_1)")
    # dL/dc_2 = 1 only (dL/dh_2 = 0): the f block of dL/dgates_2 is c_1 * f'.
    _, dc1, dgates, _ = cell.propagate(2, np.zeros((1, H)), np.ones((1, H)))
    assert_tail_close(dgates[0, H : 2 * H], c1 * d, "dL/dnet_f")
    assert_tail_close(dc1[0], f, "dL/dc_1 = f")
    # dL/dh_1 = 1 only: the o block of dL/dgates_1 is tanh(c_1) * o'.
    _, _, dgates, _ = cell.propagate(1, np.ones((1, H)), np.zeros((1, H)))
    assert_tail_close(dgates[0, 3 * H :], math.tanh(c1) * d, "dL/dnet_o", rtol=2e-15)  # tanh and two products more
    tr = cell.transitions(1, 3)
    A = tr.A
    np.testing.assert_allclose(tr.gate_mean, [np.mean(f)] * 2, rtol=1e-15, atol=0)
    assert_tail_close(cell.c[2, 0], f * c1 + c1, "c_2 = f c_1 + i g")
    assert_tail_close(A[1, 0, 3 * H :], np.tanh(cell.c[2, 0]) * d, "transitions: tanh(c_2) o'", rtol=2e-15)  # likewise


def test_lstm_gate_mean_in_the_lower_tail():
    """One unit at a time, so the mean is the gate itself: f = sigma(-30) etc. to the last bits."""
    for x in (-745.0, -700.0, -100.0, -37.0, -30.0, 30.0, 37.0):
        b = np.zeros(4)
        b[1] = x
        params = {"weight_ih_l0": np.zeros((4, 1)), "weight_hh_l0": np.zeros((4, 1)), "bias_ih_l0": b, "bias_hh_l0": np.zeros(4)}
        cell = CELLS["lstm"](params, "tanh", 0.01, None)
        cell.forward(np.zeros((1, 1, 1)))
        assert_tail_close(cell.transitions(1, 2).gate_mean, [ref_sigmoid(x)], f"gate mean at {x}")


def test_gru_gates_tails():
    """Update gate z = sigma(b_z) across both tails, with n = tanh(1), r = sigma(0):
    h_1 = (1 - z) n needs 1 - z = sigma(-b_z) where z ~ 1; the gate mean; z' in propagate."""
    b = np.zeros(3 * H)
    b[H : 2 * H] = NETS  # z
    b[2 * H :] = 1.0  # n
    cell = CELLS["gru"](zero_params(3, b), "tanh", 0.01, None)
    cell.forward(np.zeros((2, 1, 1)))
    z = np.array([ref_sigmoid(x) for x in NETS])
    q = np.array([ref_sigmoid(-x) for x in NETS])
    d = np.array([ref_derivative(x) for x in NETS])
    n = math.tanh(1.0)
    assert_tail_close(cell.h[1, 0], q * n, "h_1 = (1 - z) n")
    # dL/dh_1 = 1: the z block of dL/dgates_1 is (h_0 - n) z' = -n z'; dL/dh_0 = z (W = 0).
    dh0, _, d_ih, _ = cell.propagate(1, np.ones((1, H)))
    assert_tail_close(d_ih[0, H : 2 * H], -n * d, "dL/dnet_z")
    assert_tail_close(dh0[0], z, "dL/dh_0 = z")
    # ... and the n block is (1 - z) (1 - n^2).
    assert_tail_close(d_ih[0, 2 * H :], q * (1.0 - n * n), "dL/dnet_n", rtol=2e-15)  # two products more
    tr = cell.transitions(1, 2)
    assert_tail_close(tr.e[0, 0], z, "transitions: e = z")
    assert_tail_close(tr.A[0, 0, H : 2 * H], -n * d, "transitions: (h - n) z'")
    np.testing.assert_allclose(tr.gate_mean, [np.mean(z)], rtol=1e-15, atol=0)
