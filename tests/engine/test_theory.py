"""The facts of SPEC section 1 and 4, observed on the engine's records.

Every expected value is computed here: singular values and eigenvalues with
numpy.linalg on the run's own weights, Jacobians written out from the SPEC 7
step formulas (and cross-checked by finite differences of one cell step),
saturation from the forward states.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from engine import Config, Run
from tests.reference import batch_norm, exact_sigmas, jacobians, readout_grad, rnn_net, sig

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "leaky_relu": 1.0, "linear": 1.0}


def sigma_max(W):
    return float(np.linalg.svd(W, compute_uv=False)[0])


# --- (a) the Pascanu-Mikolov-Bengio bound ------------------------------------------


@SETTINGS
@given(
    activation=st.sampled_from(("tanh", "sigmoid", "relu", "leaky_relu", "linear")),
    hidden=st.integers(1, 16),
    batch=st.integers(1, 4),
    steps=st.integers(1, 40),
    init=st.sampled_from(("gaussian", "xavier", "orthogonal", "identity", "torch")),
    scale=st.floats(0.1, 3.0),
    input_scale=st.floats(0.1, 3.0),
    loss=st.sampled_from(("mse", "xent")),
    loss_on=st.sampled_from(("last", "all")),
    seed=st.integers(0, 2**32 - 1),
)
# Drawn once by a random run: dL/dh_T ~ 2.4e-178, whose squared entries underflow.
@example(activation="relu", hidden=1, batch=1, steps=9, init="xavier", scale=3.0, input_scale=1.0, loss="xent", loss_on="last", seed=227)
def test_observed_norm_never_exceeds_the_pascanu_bound(activation, hidden, batch, steps, init, scale, input_scale, loss, loss_on, seed):
    """||dL/dh_{T-k}|| <= start * (sigma_max(W_hh) * gamma)^k, since each Jacobian
    diag(f') W has norm <= gamma * sigma_max(W). With a loss on every step each
    step's own loss gradient is added (triangle inequality)."""
    if init == "gaussian":
        scale = min(scale, 1.5 / np.sqrt(hidden))  # keep the linear chain finite
    cfg = Config(activation=activation, hidden=hidden, batch=batch, steps=steps, init=init, scale=scale, input_scale=input_scale, loss=loss, loss_on=loss_on, seed=seed, output_size=3)
    run = Run(cfg)
    summary = run.run()
    T, N = steps, batch
    s = sigma_max(run.params["weight_hh_l0"])
    gamma = GAMMA[activation]
    start = batch_norm(readout_grad(run, T), N)
    assert summary["start_norm"] == pytest.approx(start, rel=1e-12)
    assert summary["sigma_max"] == pytest.approx(s, rel=1e-12)
    assert summary["gamma"] == gamma
    assert summary["vanishing_guaranteed"] == (s * gamma < 1.0)
    bound = []
    b = start
    for k in range(1, T + 1):
        b = b * s * gamma
        if loss_on == "all" and T - k >= 1:
            b += batch_norm(readout_grad(run, T - k), N)
        bound.append(b)
    bound = np.array(bound)
    if loss_on == "last":
        np.testing.assert_allclose(bound, start * (s * gamma) ** np.arange(1, T + 1), rtol=1e-12)
    np.testing.assert_allclose(run.records.columns["bound"], bound, rtol=1e-12, atol=0)
    observed = run.records.columns["grad_norm"]
    assert np.all(observed <= bound * (1 + 1e-12)), (observed, bound)


def test_sigmoid_vanishes_whenever_sigma_max_is_below_four():
    """SPEC 1: with sigmoid, sigma_max(W) < 4 guarantees vanishing, even with sigma_max > 1."""
    cfg = Config(activation="sigmoid", hidden=32, batch=4, steps=60, init="xavier", scale=1.5, seed=0)
    run = Run(cfg)
    summary = run.run()
    s = sigma_max(run.params["weight_hh_l0"])
    assert 1.0 < s < 4.0
    assert summary["vanishing_guaranteed"] is True
    g = run.records.columns["grad_norm"]
    assert g[-1] <= summary["start_norm"] * (s / 4) ** 60
    assert summary["regime"] == "vanishing"


# --- (b) the linear chain grows by the spectral radius per step ----------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(hidden=st.integers(6, 10), seed=st.integers(0, 2**32 - 1))
def test_linear_chain_ratio_converges_to_the_spectral_radius(hidden, seed):
    """SPEC 1: the asymptotic per-step factor of dh <- dh W^T is rho(W), not sigma_max(W).

    W is scaled by 1/sqrt(H) so rho is near 1 and 300 steps stay finite. The
    clean case of the power-method argument is assumed: a real dominant
    eigenvalue with a gap (with a complex pair the norm oscillates).
    """
    cfg = Config(mode="chain", activation="linear", hidden=hidden, batch=2, steps=300, init="gaussian", scale=1 / np.sqrt(hidden), seed=seed)
    run = Run(cfg)
    W = run.params["weight_hh_l0"]
    ev = np.linalg.eigvals(W)
    order = np.argsort(-np.abs(ev))
    rho = float(np.abs(ev[order[0]]))
    assume(abs(ev[order[0]].imag) < 1e-12 and np.abs(ev[order[1]]) < 0.95 * rho)
    summary = run.run()
    ratios = run.records.columns["ratio"][-100:]
    geometric_mean = float(np.exp(np.mean(np.log(ratios))))
    assert geometric_mean == pytest.approx(rho, rel=0.01)
    assert summary["spectral_radius"] == pytest.approx(rho, rel=1e-12)
    assert run.mean_growth(100) == pytest.approx(geometric_mean, rel=1e-12)


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.25])
def test_scaled_orthogonal_chain_ratio_is_the_factor(factor):
    """W = factor * Q, Q orthogonal: ||dh W|| = factor ||dh|| at every step,
    though the eigenvalues are complex (all of modulus factor)."""
    cfg = Config(mode="chain", activation="linear", hidden=8, batch=3, steps=100, init="orthogonal", scale=factor, seed=4)
    run = Run(cfg)
    run.run()
    W = run.params["weight_hh_l0"]
    np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False), factor, rtol=1e-12)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(W)), factor, rtol=1e-10)
    np.testing.assert_allclose(run.records.columns["ratio"], factor, rtol=1e-12)


@pytest.mark.parametrize("w", [0.5, 0.9, 1.1, 2.0])
@pytest.mark.parametrize("batch", [1, 3])
def test_scalar_chain_is_w_to_the_k(w, batch):
    """SPEC 1, scalar case: a weight w multiplied k times gives w^k."""
    cfg = Config(mode="chain", activation="linear", hidden=1, batch=batch, steps=50, init="identity", scale=w)
    run = Run(cfg)
    run.run()
    expected = w ** np.arange(1, 51) * np.sqrt(batch) / batch
    np.testing.assert_allclose(run.records.columns["grad_norm"], expected, rtol=1e-12)


# --- (c) identity + ReLU with every unit active preserves the norm ------------------------------


@pytest.mark.parametrize("hidden, batch, steps", [(8, 2, 40), (1, 1, 5), (32, 4, 60)])
def test_identity_relu_all_active_keeps_the_norm(hidden, batch, steps):
    rng = np.random.default_rng(hidden * 1000 + steps)
    D, K = 3, 2
    params = {
        "weight_ih_l0": rng.uniform(0.1, 1.0, (hidden, D)),
        "weight_hh_l0": np.eye(hidden),
        "bias_ih_l0": np.zeros(hidden),
        "bias_hh_l0": np.zeros(hidden),
        "head.weight": rng.standard_normal((K, hidden)),
        "head.bias": rng.standard_normal(K),
    }
    inputs = rng.uniform(0.1, 1.0, (steps, batch, D))  # every pre-activation > 0
    targets = rng.standard_normal((steps, batch, K))
    cfg = Config(activation="relu", hidden=hidden, batch=batch, steps=steps, input_size=D, output_size=K, init="identity", loss_on="last")
    run = Run(cfg, params=params, inputs=inputs, targets=targets)
    run.run()
    assert np.all(run.cell.h[1:] > 0)
    cols = run.records.columns
    np.testing.assert_allclose(cols["ratio"], 1.0, rtol=1e-12, atol=0)
    np.testing.assert_allclose(cols["grad_norm"], run.start_norm, rtol=1e-12)
    np.testing.assert_allclose(cols["jacobian_sigma"], 1.0, rtol=1e-12)
    assert not cols["saturation"].any()
    assert run.summary()["regime"] == "stable"


def test_identity_relu_with_a_dead_unit_loses_norm():
    """The converse, so the previous test is not vacuous: a unit that is off blocks its share."""
    hidden, D, K, steps = 4, 1, 2, 10
    params = {
        "weight_ih_l0": np.array([[1.0], [1.0], [1.0], [-1.0]]),
        "weight_hh_l0": np.eye(hidden),
        "bias_ih_l0": np.zeros(hidden),
        "bias_hh_l0": np.zeros(hidden),
        "head.weight": np.ones((K, hidden)),
        "head.bias": np.zeros(K),
    }
    cfg = Config(activation="relu", hidden=hidden, batch=1, steps=steps, input_size=D, output_size=K, init="identity")
    run = Run(cfg, params=params, inputs=np.ones((steps, 1, D)), targets=np.zeros((steps, 1, K)))
    run.run()
    # dL/dh_T is proportional to ones (head rows equal); unit 3 is dead, so
    # one Jacobian keeps 3 of the 4 equal components: ratio sqrt(3/4), then 1.
    r = run.records.columns["ratio"]
    assert r[0] == pytest.approx(np.sqrt(3 / 4), rel=1e-12)
    np.testing.assert_allclose(r[1:], 1.0, rtol=1e-12)


# --- (d) the LSTM's constant error carousel ------------------------------------------------------


def lstm_params(rng, H, D, K, forget):
    b = np.zeros(4 * H)
    b[H : 2 * H] = forget  # the f slice of bias_ih_l0 (gate order i, f, g, o)
    return {
        "weight_ih_l0": rng.standard_normal((4 * H, D)) / np.sqrt(D),
        "weight_hh_l0": np.zeros((4 * H, H)),
        "bias_ih_l0": b,
        "bias_hh_l0": np.zeros(4 * H),
        "head.weight": rng.standard_normal((K, H)),
        "head.bias": np.zeros(K),
    }


def lstm_forward(P, x, H):
    """SPEC 7 LSTM, returning h, c (T+1) and the gate activations per step."""
    T, N, _ = x.shape
    h, c = np.zeros((T + 1, N, H)), np.zeros((T + 1, N, H))
    gates = []
    for t in range(T):
        a = x[t] @ P["weight_ih_l0"].T + P["bias_ih_l0"] + h[t] @ P["weight_hh_l0"].T + P["bias_hh_l0"]
        i, f, g, o = sig(a[:, :H]), sig(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sig(a[:, 3 * H :])
        c[t + 1] = f * c[t] + i * g
        h[t + 1] = o * np.tanh(c[t + 1])
        gates.append((i, f, g, o))
    return h, c, gates


def test_lstm_forget_gate_one_carries_the_cell_gradient():
    """W_hh = 0: h_{t-1} reaches nothing, so dL/dh_s = 0 for s < T (loss on last).
    The cell path dc_{t-1} = dc_t * f_t with f = sigmoid(50 + small) = 1: the
    cell gradient dL/dc_s = dL/dh_T * o_T * (1 - tanh(c_T)^2) for every s < T."""
    H, D, K, N, T = 5, 3, 2, 3, 30
    rng = np.random.default_rng(0)
    P = lstm_params(rng, H, D, K, 50.0)
    x = rng.standard_normal((T, N, D))
    targets = rng.standard_normal((T, N, K))
    cfg = Config(cell="lstm", hidden=H, batch=N, steps=T, input_size=D, output_size=K, loss="mse", loss_on="last")
    run = Run(cfg, params=P, inputs=x, targets=targets)
    run.run()
    h, c, gates = lstm_forward(P, x, H)
    np.testing.assert_allclose(run.cell.h, h, rtol=1e-12, atol=1e-15)
    y = h[T] @ P["head.weight"].T
    dh_T = (2 * (y - targets[T - 1]) / (N * K)) @ P["head.weight"]
    o_T = gates[T - 1][3]
    dc_T = dh_T * o_T * (1 - np.tanh(c[T]) ** 2)
    cols = run.records.columns
    assert run.start_norm == pytest.approx(np.linalg.norm(dh_T) / N, rel=1e-12)
    np.testing.assert_array_equal(cols["grad_norm"], 0.0)
    np.testing.assert_allclose(cols["cell_norm"], np.linalg.norm(dc_T) / N, rtol=1e-12)
    assert cols["cell_norm"][0] > 0
    np.testing.assert_allclose(cols["gate_mean"], 1.0, rtol=1e-12)


def test_lstm_forget_gate_zero_cuts_the_cell_path():
    H, D, K, N, T = 5, 3, 2, 3, 10
    rng = np.random.default_rng(1)
    P = lstm_params(rng, H, D, K, -50.0)
    cfg = Config(cell="lstm", hidden=H, batch=N, steps=T, input_size=D, output_size=K)
    run = Run(cfg, params=P, inputs=rng.standard_normal((T, N, D)), targets=rng.standard_normal((T, N, K)))
    run.run()
    assert run.start_norm > 0
    assert np.all(run.records.columns["cell_norm"] <= 1e-20 * run.start_norm)
    assert np.all(run.records.columns["gate_mean"] <= 1e-20)


@SETTINGS
@given(forget=st.floats(-3.0, 6.0), seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 30), hidden=st.integers(1, 6), batch=st.integers(1, 3))
def test_lstm_cell_gradient_is_the_product_of_forget_gates(forget, seed, steps, hidden, batch):
    """W_hh = 0, loss on last: dL/dc_s = dL/dc_T * f_T * f_{T-1} * ... * f_{s+1}
    (SPEC 4: dc_t/dc_{t-1} = diag(f_t)); gate_mean is the mean f of the step's transition."""
    H, D, K, N, T = hidden, 2, 2, batch, steps
    rng = np.random.default_rng(seed)
    P = lstm_params(rng, H, D, K, forget)
    x = rng.standard_normal((T, N, D))
    targets = rng.standard_normal((T, N, K))
    cfg = Config(cell="lstm", hidden=H, batch=N, steps=T, input_size=D, output_size=K)
    run = Run(cfg, params=P, inputs=x, targets=targets)
    run.run()
    h, c, gates = lstm_forward(P, x, H)
    dh_T = (2 * (h[T] @ P["head.weight"].T - targets[T - 1]) / (N * K)) @ P["head.weight"]
    dc = dh_T * gates[T - 1][3] * (1 - np.tanh(c[T]) ** 2)
    expected, means = [], []
    for k in range(1, T + 1):
        f = gates[T - k][1]  # f of transition T - k + 1
        dc = dc * f
        expected.append(np.linalg.norm(dc) / N)
        means.append(f.mean())
    np.testing.assert_allclose(run.records.columns["cell_norm"], expected, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(run.records.columns["gate_mean"], means, rtol=1e-12)
    np.testing.assert_array_equal(run.records.columns["grad_norm"], 0.0)


# --- (e) jacobian_sigma: sigma_max of the explicit step Jacobian -----------------------------------


def step_h(cfg, P, x, h, c):
    """h_t from (h_{t-1}, c_{t-1}, x_t): the SPEC 7 table, for the finite-difference check."""
    H = cfg.hidden
    a_in = x @ P["weight_ih_l0"].T + P["bias_ih_l0"]
    a_hh = h @ P["weight_hh_l0"].T + P["bias_hh_l0"]
    if cfg.cell == "lstm":
        a = a_in + a_hh
        i, f, g, o = sig(a[:, :H]), sig(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sig(a[:, 3 * H :])
        return o * np.tanh(f * c + i * g)
    r = sig(a_in[:, :H] + a_hh[:, :H])
    z = sig(a_in[:, H : 2 * H] + a_hh[:, H : 2 * H])
    n = np.tanh(a_in[:, 2 * H :] + r * a_hh[:, 2 * H :])
    return (1 - z) * n + z * h


@st.composite
def jacobian_configs(draw, max_hidden=12, cells=("rnn", "lstm", "gru")):
    cell = draw(st.sampled_from(cells))
    kw = dict(cell=cell, hidden=draw(st.integers(1, max_hidden)), batch=draw(st.integers(1, 3)), steps=draw(st.integers(1, 10)), seed=draw(st.integers(0, 2**32 - 1)))
    kw["init"] = draw(st.sampled_from(("xavier", "orthogonal", "torch", "identity")))
    kw["scale"] = draw(st.floats(0.3, 2.0))
    kw["input_scale"] = draw(st.floats(0.1, 3.0))
    if cell == "rnn":
        kw["activation"] = draw(st.sampled_from(tuple(GAMMA)))
    else:
        kw["forget_bias"] = draw(st.floats(-2.0, 4.0))
    return Config(**kw)


@SETTINGS
@given(jacobian_configs())
def test_jacobian_sigma_is_sigma_max_of_the_step_jacobian(cfg):
    run = Run(cfg)
    run.run()
    assert run.summary()["jacobian_sigma_method"] == "exact"
    np.testing.assert_allclose(run.records.columns["jacobian_sigma"], exact_sigmas(run), rtol=1e-10, atol=1e-14)


@SETTINGS
@given(jacobian_configs(), st.sampled_from(("last", "all")))
def test_hidden_path_carries_the_start_by_the_step_sigmas(cfg, loss_on):
    """hidden_path_k = sigma_k * hidden_path_{k-1} + the norm of the loss gradient
    added at h_{T-k}, from the start norm: the most a gradient travelling through
    these Jacobians alone can keep (triangle inequality). For rnn and gru the
    Jacobian is the whole dh_t/dh_{t-1}, so it bounds the observed norm; for the
    LSTM it leaves out the cell path, which can carry more."""
    cfg = cfg.with_overrides(loss_on=loss_on)
    run = Run(cfg)
    run.run()
    T, N = cfg.steps, cfg.batch
    sigmas = exact_sigmas(run)
    value, expected = batch_norm(readout_grad(run, T), N), []
    for k in range(1, T + 1):
        value = sigmas[k - 1] * value + (batch_norm(readout_grad(run, T - k), N) if loss_on == "all" and T - k >= 1 else 0.0)
        expected.append(value)
    np.testing.assert_allclose(run.records.columns["hidden_path"], expected, rtol=1e-9, atol=1e-300)
    if cfg.cell != "lstm":
        assert np.all(run.records.columns["grad_norm"] <= np.array(expected) * (1 + 1e-9))


@SETTINGS
@given(jacobian_configs(max_hidden=6, cells=("lstm", "gru")))
def test_gated_jacobians_match_finite_differences_of_one_step(cfg):
    """The LSTM/GRU Jacobians used above, checked column by column on the SPEC 7 step."""
    run = Run(cfg)
    h, c = run.cell.h, getattr(run.cell, "c", None)
    eps = 1e-6
    for t in range(1, cfg.steps + 1):
        cp = None if c is None else c[t - 1]
        x = run.inputs[t - 1]
        np.testing.assert_allclose(step_h(cfg, run.params, x, h[t - 1], cp), h[t], rtol=1e-12, atol=1e-14)
        J = jacobians(cfg, run.params, x, h[t - 1], cp)
        for j in range(cfg.hidden):
            up, down = h[t - 1].copy(), h[t - 1].copy()
            up[:, j] += eps
            down[:, j] -= eps
            column = (step_h(cfg, run.params, x, up, cp) - step_h(cfg, run.params, x, down, cp)) / (2 * eps)
            np.testing.assert_allclose(J[:, :, j], column, rtol=1e-6, atol=1e-8)


def test_jacobian_sigma_at_the_exact_limit():
    cfg = Config(cell="lstm", hidden=32, batch=2, steps=8, forget_bias=1.0, seed=3)
    run = Run(cfg)
    run.run()
    assert run.summary()["jacobian_sigma_method"] == "exact"
    np.testing.assert_allclose(run.records.columns["jacobian_sigma"], exact_sigmas(run), rtol=1e-10)


LARGE = [
    Config(cell="rnn", hidden=48, batch=3, steps=60, seed=0),
    Config(cell="rnn", hidden=48, batch=3, steps=60, init="orthogonal", scale=1.5, input_scale=0.1, seed=1),
    Config(cell="lstm", hidden=48, batch=3, steps=60, seed=0),
    Config(cell="gru", hidden=48, batch=3, steps=60, input_scale=3.0, seed=0),
]
LARGE_IDS = ["rnn-xavier", "rnn-orthogonal-1.5", "lstm", "gru-input-3"]


@pytest.mark.parametrize("cfg", LARGE, ids=LARGE_IDS)
def test_sigma_estimate_never_exceeds_the_exact_sigma(cfg):
    run = Run(cfg)
    run.run()
    assert run.summary()["jacobian_sigma_method"] == "estimate"
    estimate, exact = run.records.columns["jacobian_sigma"], exact_sigmas(run)
    assert np.all(np.isfinite(estimate))
    assert np.all(estimate <= exact + 1e-9)
    assert np.all(estimate > 0)


@pytest.mark.parametrize("cfg", LARGE, ids=LARGE_IDS)
def test_sigma_estimate_is_within_five_percent_on_most_steps(cfg):
    run = Run(cfg)
    run.run()
    estimate, exact = run.records.columns["jacobian_sigma"], exact_sigmas(run)
    close = np.abs(estimate / exact - 1.0) <= 0.05
    assert np.mean(close) >= 0.9, f"within 5% on {np.mean(close):.0%} of steps; worst estimate/exact {np.min(estimate / exact):.2f}"


# --- (f) saturation ------------------------------------------------------------------------------------


# the sizes and inputs of a small rnn run, drawn for the saturation and dead-unit tests
SMALL_RUN = dict(hidden=st.integers(1, 16), batch=st.integers(1, 4), steps=st.integers(1, 30), input_scale=st.floats(0.1, 8.0), seed=st.integers(0, 2**32 - 1))


@SETTINGS
@given(activation=st.sampled_from(("tanh", "sigmoid")), scale=st.floats(0.3, 3.0), **SMALL_RUN)
def test_saturation_is_the_fraction_of_flat_units(activation, hidden, batch, steps, input_scale, scale, seed):
    """tanh: 1 - h^2 < 0.05; sigmoid: h (1 - h) < 0.05 / 4 (5% of gamma), from the states."""
    cfg = Config(activation=activation, hidden=hidden, batch=batch, steps=steps, input_scale=input_scale, scale=scale, seed=seed)
    run = Run(cfg)
    run.run()
    h = run.cell.h
    T = steps
    if activation == "tanh":
        flat = [np.mean(1 - h[T - k + 1] ** 2 < 0.05) for k in range(1, T + 1)]
    else:
        flat = [np.mean(h[T - k + 1] * (1 - h[T - k + 1]) < 0.0125) for k in range(1, T + 1)]
    np.testing.assert_array_equal(run.records.columns["saturation"], flat)


@SETTINGS
@given(activation=st.sampled_from(("relu", "leaky_relu")), slope=st.sampled_from((0.0, 0.01, 0.2)), **SMALL_RUN)
def test_dead_units_are_apart_from_saturated_ones(activation, slope, hidden, batch, steps, input_scale, seed):
    """dead: f'(net) = 0 by definition, net <= 0 for a ReLU (or a leaky ReLU of
    slope 0); saturation: the other units with f' < 5% of gamma = 1, i.e. a
    leaky ReLU's negative side when its slope is below 0.05. A ReLU is never
    saturated. An activation with no zero region has no dead column (NaN)."""
    assume(activation == "leaky_relu" or slope == 0.0)
    extra = {"leaky_slope": slope} if activation == "leaky_relu" else {}
    cfg = Config(activation=activation, hidden=hidden, batch=batch, steps=steps, input_scale=input_scale, seed=seed, **extra)
    run = Run(cfg)
    run.run()
    T = steps
    off = np.array([np.mean(rnn_net(run, t) <= 0) for t in range(T, 0, -1)])  # record order
    cols = run.records.columns
    if activation == "relu" or slope == 0.0:
        np.testing.assert_array_equal(cols["dead"], off)
        assert not cols["saturation"].any()
    else:
        assert np.isnan(cols["dead"]).all()
        np.testing.assert_array_equal(cols["saturation"], off if slope < 0.05 else np.zeros(T))


@pytest.mark.parametrize("cell, activation", [("rnn", "tanh"), ("rnn", "sigmoid"), ("rnn", "linear"), ("lstm", "tanh"), ("gru", "tanh"), ("indrnn", "tanh")])
def test_dead_does_not_apply_without_a_zero_region(cell, activation):
    run = Run(Config(cell=cell, activation=activation, hidden=4, batch=2, steps=6, input_scale=20.0, seed=3))
    run.run()
    assert np.isnan(run.records.columns["dead"]).all()


def test_large_inputs_saturate_tanh():
    """SPEC 1: large pre-activations push f' toward 0 and the gradient dies."""
    cfg = Config(hidden=32, batch=4, steps=60, init="xavier", input_scale=5.0)
    run = Run(cfg)
    summary = run.run()
    h = run.cell.h
    sat = run.records.columns["saturation"]
    np.testing.assert_array_equal(sat, [np.mean(1 - h[60 - k + 1] ** 2 < 0.05) for k in range(1, 61)])
    assert 0.3 < sat.mean() < 1.0
    assert summary["sigma_gamma"] > 1.0 and summary["regime"] == "vanishing"


# --- the step contributions to dL/dW_hh ---------------------------------------------------------------------


@pytest.mark.parametrize("loss_on", ["last", "all"])
def test_contribution_is_each_steps_term_of_the_recurrent_gradient(loss_on):
    """SPEC 1: dL/dW_hh = sum over transitions t of delta_t^T h_{t-1}; record k shows ||term of transition T-k+1||."""
    cfg = Config(hidden=6, batch=3, steps=12, input_size=2, output_size=2, loss_on=loss_on, seed=8, scale=1.2)
    run = Run(cfg)
    run.run()
    T, W = cfg.steps, run.params["weight_hh_l0"]
    h = run.cell.h
    dh = readout_grad(run, T)
    terms = []
    for t in range(T, 0, -1):
        delta = dh * (1 - h[t] ** 2)
        terms.append(delta.T @ h[t - 1])
        dh = delta @ W + (readout_grad(run, t - 1) if loss_on == "all" and t > 1 else 0.0)
    np.testing.assert_allclose(sum(terms), run.grads_raw["weight_hh_l0"], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(run.records.columns["contribution"], [np.linalg.norm(m) for m in terms], rtol=1e-10, atol=1e-300)
