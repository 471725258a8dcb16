"""Reference computations shared by the tests, written from SPEC, never from the engine."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


def frobenius(x: np.ndarray) -> float:
    """||x||_F that neither underflows nor overflows: entries of 1e-178 square
    to below the smallest double, so scale by the largest entry first."""
    x = np.asarray(x, dtype=np.float64)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0 or not np.isfinite(top):
        return top
    return top * float(np.linalg.norm(x / top))


def batch_norm(x: np.ndarray, batch: int) -> float:
    """The source's per-step norm ||x||_F / N (SPEC section 7)."""
    return frobenius(x) / batch


# -- SPEC section 2: the reference matrix-chain experiment -------------------------------------

SECTION_2_SEED = 3


class Section2(NamedTuple):
    Wh: np.ndarray  # the source's matrix (its rows multiply dh from the right)
    dh: list[np.ndarray]  # dh[k] after k multiplications, k = 0..T (dh[0] = ones, the start)
    norms: np.ndarray  # norms[k - 1] = ||dh[k]||_F / N: record k, k = 1..T


def section_2(scale: float = 1.0, T: int = 20, N: int = 2, H: int = 3, *, seed: int = SECTION_2_SEED, safe: bool = False) -> Section2:
    """SPEC section 2, line by line, with Wh = randn(H, H) * scale (0.5 is the
    vanishing variant). The legacy global generator is seeded exactly as the
    SPEC says; numpy's global random state is saved before and restored after
    the draw, so no other test's randomness depends on or is disturbed by it.

    `seed` other than 3 runs the same experiment on another draw (tests of
    many chains). `safe`: the norm is scaled by the largest entry (as the
    engine's is) instead of the literal sqrt(sum(dh ** 2)) / N, so it stays
    right where dh ** 2 overflows (norms past ~1e154) or underflows (below
    ~1e-154), and is inf once dh is not finite. Past the largest double dh
    itself becomes inf, then nan (inf - inf); numpy's warnings about that are
    silenced, the values kept.
    """
    saved = np.random.get_state()
    try:
        dh = np.ones((N, H))
        np.random.seed(seed)  # SPEC: numpy.random.seed(3)
        Wh = np.random.randn(H, H) * scale
    finally:
        np.random.set_state(saved)
    steps, norms = [dh], []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(T):
            dh = dh @ Wh.T
            steps.append(dh)
            norms.append(_scaled_norm(dh, N) if safe else np.sqrt(np.sum(dh**2)) / N)
    return Section2(Wh, steps, np.array(norms, dtype=np.float64))


def _scaled_norm(dh: np.ndarray, N: int) -> float:
    """||dh||_F / N with dh divided by its largest entry m before squaring and the
    division by N done before multiplying m back, so the result is finite for every
    finite dh whose norm / N is a double; inf once dh is not finite."""
    m = float(np.max(np.abs(dh)))
    if m == 0.0:
        return 0.0
    if not np.isfinite(m):
        return np.inf
    return m * (np.sqrt(np.sum((dh / m) ** 2)) / N)


def loss_gradient(loss: str, y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dy of one step's loss (SPEC section 7): mse, the mean over batch and
    outputs of (y - target)^2; xent, softmax cross-entropy averaged over the batch.
    y: (N, K); target: (N, K) for mse, (N,) class ids for xent."""
    N, K = y.shape
    if loss == "mse":
        return 2 * (y - target) / (N * K)
    p = np.exp(y - y.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(N), target] -= 1
    return p / N


def activation_derivative(name: str, net: np.ndarray, h: np.ndarray, slope: float) -> np.ndarray:
    """f'(net) of SPEC section 1's activations, from net and h = f(net)."""
    return {
        "tanh": lambda: 1 - h**2,
        "sigmoid": lambda: h * (1 - h),
        "relu": lambda: (net > 0) * 1.0,
        "leaky_relu": lambda: np.where(net > 0, 1.0, slope),
        "linear": lambda: np.ones_like(net),
    }[name]()


# -- SPEC sections 1, 4 and 7: the step Jacobians, written out ------------------------------


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def jacobians(cfg, P, x, h, c):
    """dh_t/dh_{t-1} for each batch element, (N, H, H), written out from SPEC 7
    (LSTM: holding c_{t-1}, as a function of the step's inputs h_{t-1}, c_{t-1}, x_t)."""
    H, W = cfg.hidden, P["weight_hh_l0"]
    a_in = x @ P["weight_ih_l0"].T + P["bias_ih_l0"]
    a_hh = h @ W.T + P["bias_hh_l0"]
    if cfg.cell == "rnn":
        net = a_in + a_hh
        fp = {
            "tanh": lambda: 1 - np.tanh(net) ** 2,
            "sigmoid": lambda: sig(net) * (1 - sig(net)),
            "relu": lambda: (net > 0) * 1.0,
            "leaky_relu": lambda: np.where(net > 0, 1.0, cfg.leaky_slope),
            "linear": lambda: np.ones_like(net),
        }[cfg.activation]()
        return fp[:, :, None] * W[None]
    blocks = [W[j * H : (j + 1) * H] for j in range(cfg.gates)]
    if cfg.cell == "lstm":
        a = a_in + a_hh
        i, f, g, o = sig(a[:, :H]), sig(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sig(a[:, 3 * H :])
        tc = np.tanh(f * c + i * g)
        Wi, Wf, Wg, Wo = blocks
        dc = (g * i * (1 - i))[:, :, None] * Wi + (c * f * (1 - f))[:, :, None] * Wf + (i * (1 - g * g))[:, :, None] * Wg
        return (tc * o * (1 - o))[:, :, None] * Wo + (o * (1 - tc * tc))[:, :, None] * dc
    Wr, Wz, Wn = blocks
    r = sig(a_in[:, :H] + a_hh[:, :H])
    z = sig(a_in[:, H : 2 * H] + a_hh[:, H : 2 * H])
    n = np.tanh(a_in[:, 2 * H :] + r * a_hh[:, 2 * H :])
    dr = (r * (1 - r))[:, :, None] * Wr
    dz = (z * (1 - z))[:, :, None] * Wz
    dn = (1 - n * n)[:, :, None] * (r[:, :, None] * Wn + a_hh[:, 2 * H :, None] * dr)
    return z[:, :, None] * np.eye(H) + (h - n)[:, :, None] * dz + (1 - z)[:, :, None] * dn


def exact_sigmas(run):
    cfg, T = run.config, run.config.steps
    h, c = run.cell.h, getattr(run.cell, "c", None)
    out = []
    for k in range(1, T + 1):
        t = T - k + 1  # record k applies the Jacobian of transition t
        J = jacobians(cfg, run.params, run.inputs[t - 1], h[t - 1], None if c is None else c[t - 1])
        out.append(np.max(np.linalg.svd(J, compute_uv=False)[:, 0]))
    return np.array(out)


# -- SPEC sections 1 and 7: the backward pass of a vanilla RNN, written out -----------------


def readout_grad(run, t):
    """dL/dh_t contributed by the loss at step t (mse or xent), from SPEC 7."""
    c, P = run.config, run.params
    y = run.cell.h[t] @ P["head.weight"].T + P["head.bias"]
    return loss_gradient(c.loss, y, run.targets[t - 1]) @ P["head.weight"]


def rnn_net(run, t: int) -> np.ndarray:
    """net_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh (SPEC 7; IndRNN: u * h_{t-1}),
    (N, H), on the run's forward states: h_t = f(net_t) read input t - 1."""
    P, h = run.params, run.cell.h
    W = P["weight_hh_l0"]
    recurrent = h[t - 1] * W if W.ndim == 1 else h[t - 1] @ W.T
    return run.inputs[t - 1] @ P["weight_ih_l0"].T + P["bias_ih_l0"] + recurrent + P["bias_hh_l0"]


def rnn_hidden_gradients(run, losses=None) -> np.ndarray:
    """dL/dh_t for t = 0..T, (T+1, N, H), by SPEC 1's recurrence on the run's
    forward states: dL/dh_{t-1} = (dL/dh_t * f'(net_t)) W_hh (IndRNN: * u), plus
    the loss gradient of step t-1 (SPEC 7); no clipping, no truncation. Chain
    mode starts from dL/dh_T = ones. `losses`: the steps whose loss counts
    (default: every step that carries one)."""
    c, P = run.config, run.params
    T, h = c.steps, run.cell.h
    W = P["weight_hh_l0"]
    if c.mode == "chain":
        carried = {T}
    else:
        carried = set(range(1, T + 1)) if c.loss_on == "all" else {T}
    if losses is not None:
        carried &= set(losses)

    def injected(t):
        if t not in carried:
            return 0.0
        return np.ones_like(h[T]) if c.mode == "chain" else readout_grad(run, t)

    dh = np.zeros((T + 1, *h.shape[1:]))
    dh[T] = injected(T)
    for t in range(T, 0, -1):
        delta = dh[t] * activation_derivative(c.activation, rnn_net(run, t), h[t], c.leaky_slope)
        dh[t - 1] = (delta * W if W.ndim == 1 else delta @ W) + (injected(t - 1) if t > 1 else 0.0)
    return dh


# -- SPEC section 9: the one-unit model --------------------------------------------------------


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def section_9_error(w: float, b: float) -> float:
    """SPEC 9 as written, in plain Python: x_0 = 0.5, x_t = w sigma(x_{t-1}) + b
    for t = 1..50, E = (sigma(x_50) - 0.7)^2."""
    x = 0.5
    for _ in range(50):
        x = w * logistic(x) + b
    return (logistic(x) - 0.7) ** 2
