"""The IndRNN cell (engine/cells/indrnn.py; Li et al., CVPR 2018) against
numbers computed here, independently of the engine's backward pass:

    h_t = f(x_t W_ih^T + b_ih + b_hh + u * h_{t-1})      u = weight_hh_l0, shape (H,)

- the gradients: central finite differences of a loss whose forward pass is
  written here (and equals the engine's), for the smooth activations;
- dL/dh_t per step: a loop of dL/dh_{t-1} = dL/dh_t * f'(net_t) * u (+ the
  loss's own gradient at h_{t-1} when the loss is on every step), against the
  records, and the parameter gradients it gives;
- the Jacobian diag(u * f'(net_t)) is diagonal: the recorded sigma of
  transition t is max over the batch and the units of |u_j f'(net_{t,j})|;
- the spectrum of diag(u): radius and sigma_max max|u|, singular values |u| sorted;
- the lean path (`lean_gradients`) against the recorded `Run`.

PyTorch parity of the same cell is in test_torch_parity.py (the indrnn cases).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import Config, Run, lean_gradients

PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")
U5 = np.array([0.5, -0.8, 1.0, 1.15, 1.3])  # |u| spread around 1, one unit with u < 0


def make_case(activation="tanh", loss="mse", loss_on="last", *, H=5, T=6, N=3, D=3, K=3, u=None, seed=0, **config):
    """A Config and parameters, inputs and targets drawn here (u given, or U5 for H = 5)."""
    if u is None:
        u = U5 if H == 5 else np.linspace(0.5, 1.3, H) * np.where(np.arange(H) % 3 == 1, -1.0, 1.0)
    u = np.asarray(u, dtype=np.float64)
    assert u.shape == (H,)
    cfg = Config(cell="indrnn", activation=activation, hidden=H, batch=N, steps=T, input_size=D, output_size=K, loss=loss, loss_on=loss_on, **config)
    rng = np.random.default_rng(seed)
    params = {
        "weight_ih_l0": rng.standard_normal((H, D)) * 0.7,
        "weight_hh_l0": u.copy(),
        "bias_ih_l0": rng.standard_normal(H) * 0.3,
        "bias_hh_l0": rng.standard_normal(H) * 0.3,
        "head.weight": rng.standard_normal((K, H)) * 0.8,
        "head.bias": rng.standard_normal(K) * 0.3,
    }
    inputs = rng.standard_normal((T, N, D))
    targets = rng.standard_normal((T, N, K)) if loss == "mse" else rng.integers(0, K, size=(T, N))
    return cfg, params, inputs, targets


def run_of(cfg, params, inputs, targets) -> Run:
    run = Run(cfg, params={k: v.copy() for k, v in params.items()}, inputs=inputs, targets=targets)
    run.run()
    return run


# --- the formulas, written out here ---------------------------------------------------


def act(name, net, slope):
    """f(net) and f'(net) from net."""
    if name == "tanh":
        return np.tanh(net), 1.0 / np.cosh(net) ** 2
    if name == "sigmoid":
        e = np.exp(-net)
        return 1.0 / (1.0 + e), e / (1.0 + e) ** 2
    if name == "relu":
        return np.maximum(net, 0.0), (net > 0).astype(float)
    if name == "leaky_relu":
        return np.where(net > 0, net, slope * net), np.where(net > 0, 1.0, slope)
    assert name == "linear"
    return net.copy(), np.ones_like(net)


def reference_forward(cfg, P, x):
    """h (T+1, N, H) with h_0 = 0, net and f'(net) (T, N, H), t = 1..T at index t-1."""
    T, N, _ = x.shape
    H = P["weight_hh_l0"].shape[0]
    h = np.zeros((T + 1, N, H))
    nets, fps = np.zeros((T, N, H)), np.zeros((T, N, H))
    for t in range(1, T + 1):
        net = x[t - 1] @ P["weight_ih_l0"].T + P["bias_ih_l0"] + P["bias_hh_l0"] + P["weight_hh_l0"] * h[t - 1]
        h[t], fps[t - 1] = act(cfg.activation, net, cfg.leaky_slope)
        nets[t - 1] = net
    return h, nets, fps


def loss_steps(cfg):
    return list(range(1, cfg.steps + 1)) if cfg.loss_on == "all" else [cfg.steps]


def step_loss_and_grad(cfg, P, h, target):
    """One step's loss (MSELoss / CrossEntropyLoss of y = h V^T + b) and its dL/dh and dL/dy."""
    V = P["head.weight"]
    y = h @ V.T + P["head.bias"]
    N, K = y.shape
    if cfg.loss == "mse":
        dy = 2.0 * (y - target) / (N * K)
        return float(np.sum((y - target) ** 2) / (N * K)), dy @ V, dy
    m = y.max(axis=1, keepdims=True)
    p = np.exp(y - m)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(np.sum(np.exp(y - m), axis=1)) + m[:, 0] - y[np.arange(N), target]))
    dy = p.copy()
    dy[np.arange(N), target] -= 1.0
    dy /= N
    return loss, dy @ V, dy


def reference_loss(cfg, P, x, targets) -> float:
    h, _, _ = reference_forward(cfg, P, x)
    return sum(step_loss_and_grad(cfg, P, h[s], targets[s - 1])[0] for s in loss_steps(cfg))


def reference_backward(cfg, P, x, targets):
    """The loop: g_T = the loss's dL/dh_T; g_{t-1} = g_t * f'(net_t) * u (+ the loss's
    dL/dh_{t-1}). Returns [dL/dh_T, ..., dL/dh_0] and the parameter gradients."""
    T = cfg.steps
    h, _, fps = reference_forward(cfg, P, x)
    u = P["weight_hh_l0"]
    own, grads = {}, {name: np.zeros_like(p) for name, p in P.items()}
    for s in loss_steps(cfg):
        _, own[s], dy = step_loss_and_grad(cfg, P, h[s], targets[s - 1])
        grads["head.weight"] += dy.T @ h[s]
        grads["head.bias"] += dy.sum(axis=0)
    g = own[T]
    out = [g]
    for t in range(T, 0, -1):
        delta = g * fps[t - 1]  # dL/dnet_t
        grads["weight_hh_l0"] += np.sum(delta * h[t - 1], axis=0)
        grads["weight_ih_l0"] += delta.T @ x[t - 1]
        grads["bias_ih_l0"] += delta.sum(axis=0)
        grads["bias_hh_l0"] += delta.sum(axis=0)
        g = delta * u
        if t - 1 in own:
            g = g + own[t - 1]
        out.append(g)
    return out, grads


def central_difference(f, P, eps=1e-4):
    """dF/dP for every entry of every parameter: the 4-point central stencil
    (f(-2e) - 8 f(-e) + 8 f(e) - f(2e)) / 12e, error O(eps^4) + rounding ~1e-12."""
    out = {}
    for name, p in P.items():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            vals = {}
            for k in (-2, -1, 1, 2):
                Q = {n: v.copy() for n, v in P.items()}
                Q[name][idx] += k * eps
                vals[k] = f(Q)
            g[idx] = (vals[-2] - 8.0 * vals[-1] + 8.0 * vals[1] - vals[2]) / (12.0 * eps)
        out[name] = g
    return out


# --- (a) finite differences, smooth activations --------------------------------------

FD_CASES = [
    ("tanh", "mse", "last"),
    ("tanh", "xent", "all"),
    ("sigmoid", "mse", "all"),
    ("sigmoid", "xent", "last"),
]


@pytest.mark.parametrize(("activation", "loss", "loss_on"), FD_CASES)
def test_gradients_match_finite_differences(activation, loss, loss_on):
    cfg, P, x, targets = make_case(activation, loss, loss_on, seed=11)
    run = run_of(cfg, P, x, targets)
    np.testing.assert_allclose(run.loss, reference_loss(cfg, P, x, targets), rtol=1e-13, atol=0)
    fd = central_difference(lambda Q: reference_loss(cfg, Q, x, targets), P)
    assert set(run.grads_raw) == set(PARAM_NAMES)
    assert run.grads_raw["weight_hh_l0"].shape == (cfg.hidden,)
    scale = 1.0 + abs(run.loss)
    for name in PARAM_NAMES:
        got, want = run.grads_raw[name], fd[name]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * scale, err_msg=name)
    assert np.all(np.abs(fd["weight_hh_l0"]) > 1e-6)  # every u_j has a gradient the check can see


# --- (b) the per-step records against the loop -------------------------------------------

LOOP_CASES = [
    ("tanh", "mse", "last", {}),
    ("tanh", "xent", "all", {}),
    ("sigmoid", "mse", "all", {}),
    ("relu", "mse", "last", {}),
    ("relu", "xent", "all", {}),
    ("leaky_relu", "mse", "all", {"leaky_slope": 0.1}),
    ("linear", "xent", "last", {}),
]
LOOP_SEED = 26  # the ReLU cases switch units (about 54% on) and keep a nonzero dL/dh_t down to h_0 (seed 23 did not)


@pytest.mark.parametrize(("activation", "loss", "loss_on", "extra"), LOOP_CASES)
def test_record_norms_match_the_diagonal_recursion(activation, loss, loss_on, extra):
    """Record k = ||dL/dh_{T-k}||_F / N; the starting norm ||dL/dh_T||_F / N."""
    cfg, P, x, targets = make_case(activation, loss, loss_on, T=9, seed=LOOP_SEED, **extra)
    run = run_of(cfg, P, x, targets)
    T, N = cfg.steps, cfg.batch
    dh, grads = reference_backward(cfg, P, x, targets)
    np.testing.assert_allclose(run.start_norm, np.linalg.norm(dh[0]) / N, rtol=1e-13, atol=0)
    expected = [np.linalg.norm(g) / N for g in dh[1:]]
    np.testing.assert_allclose(run.records.columns["grad_norm"][:T], expected, rtol=1e-12, atol=0)
    assert np.all(np.asarray(expected) > 0)
    for name in PARAM_NAMES:  # and the parameter gradients the loop gives (ReLU included)
        scale = np.max(np.abs(grads[name]))
        np.testing.assert_allclose(run.grads_raw[name], grads[name], rtol=0, atol=1e-12 * scale, err_msg=name)


def test_relu_case_switches_units():
    """The ReLU loop cases above switch units on and off (else they would test a linear cell)."""
    cfg, P, x, _ = make_case("relu", "mse", "last", T=9, seed=LOOP_SEED)
    _, nets, _ = reference_forward(cfg, P, x)
    on = nets > 0
    assert on.any(axis=(0, 1)).all() and (~on).any(axis=(0, 1)).all()
    assert np.any(on[1:] != on[:-1], axis=(0, 1)).any()
    assert np.min(np.abs(nets)) > 1e-3


# --- (c) the Jacobian is diagonal: sigma = max |u_j f'(net_j)| --------------------------


@pytest.mark.parametrize("H", [5, 32])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "leaky_relu", "linear"])
def test_jacobian_sigma_is_the_largest_diagonal_entry(activation, H):
    cfg, P, x, targets = make_case(activation, "mse", "all", H=H, T=7, N=4, seed=5)
    run = run_of(cfg, P, x, targets)
    assert run.summary()["jacobian_sigma_method"] == "exact"
    _, _, fps = reference_forward(cfg, P, x)
    sigma = np.max(np.abs(P["weight_hh_l0"] * fps), axis=(1, 2))  # transition t = 1..T
    # record k describes transition T - k + 1
    np.testing.assert_allclose(run.records.columns["jacobian_sigma"][: cfg.steps], sigma[::-1], rtol=1e-13, atol=0)


# --- (d) the spectrum of diag(u) -----------------------------------------------------------


@pytest.mark.parametrize(
    "u",
    [
        [0.5, -1.3, 0.9, 1.05, -0.7, 1.2, 0.3],
        [-0.6, 0.95, 0.8],
        list(U5),
    ],
)
def test_spectrum_is_the_absolute_values_of_u(u):
    u = np.array(u)
    cfg, P, x, targets = make_case("tanh", "mse", "last", H=len(u), u=u, seed=3)
    summary = run_of(cfg, P, x, targets).summary()
    top = np.sort(np.abs(u))[::-1][:5]
    assert summary["spectral_radius"] == pytest.approx(np.max(np.abs(u)), rel=1e-15, abs=0)
    assert summary["sigma_max"] == pytest.approx(np.max(np.abs(u)), rel=1e-15, abs=0)
    assert len(summary["singular_values"]) == min(5, len(u))
    np.testing.assert_allclose(summary["singular_values"], top, rtol=1e-15, atol=0)
    assert summary["gate_spectral_radii"] is None
    assert summary["sigma_gamma"] == pytest.approx(np.max(np.abs(u)) * 1.0, rel=1e-15)


# --- (e) the lean path --------------------------------------------------------------------

LEAN_CASES = [
    ("tanh", "mse", "last", {}),
    ("tanh", "xent", "all", {}),
    ("sigmoid", "mse", "all", {}),
    ("relu", "xent", "all", {}),
    ("leaky_relu", "mse", "last", {"leaky_slope": 0.2}),
    ("linear", "mse", "all", {}),
    ("tanh", "mse", "all", {"truncate": 3}),
    ("relu", "xent", "all", {"clip": "norm", "clip_threshold": 0.1}),
    ("tanh", "mse", "all", {"clip": "step", "clip_threshold": 0.05}),
]


@pytest.mark.parametrize(("activation", "loss", "loss_on", "extra"), LEAN_CASES)
def test_lean_gradients_equal_the_recorded_run(activation, loss, loss_on, extra):
    cfg, P, x, targets = make_case(activation, loss, loss_on, H=6, T=10, N=4, seed=31, **extra)
    run = run_of(cfg, P, x, targets)
    loss_value, raw = lean_gradients(cfg, {k: v.copy() for k, v in P.items()}, x, targets)
    assert loss_value == run.loss
    assert set(raw) == set(run.grads_raw) == set(PARAM_NAMES)
    for name in PARAM_NAMES:
        want = run.grads_raw[name]
        assert raw[name].shape == want.shape, name
        scale = np.max(np.abs(want))
        assert scale > 0, name
        assert np.max(np.abs(raw[name] - want)) <= 1e-13 * scale, name


def test_lean_gradients_in_chain_mode():
    """mode chain: L = sum(h_T), no readout."""
    H, T, N, D = 5, 8, 3, 2
    cfg = Config(mode="chain", cell="indrnn", activation="tanh", hidden=H, batch=N, steps=T, input_size=D)
    _, P, x, _ = make_case("tanh", H=H, T=T, N=N, D=D, seed=8)
    P = {name: P[name] for name in PARAM_NAMES[:4]}
    run = Run(cfg, params={k: v.copy() for k, v in P.items()}, inputs=x)
    run.run()
    _, raw = lean_gradients(cfg, {k: v.copy() for k, v in P.items()}, x, None)
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        want = run.grads_raw[name]
        assert np.max(np.abs(raw[name] - want)) <= 1e-13 * np.max(np.abs(want)), name
