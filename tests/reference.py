"""Reference computations shared by the tests, written from SPEC, never from the engine."""

from __future__ import annotations

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
