"""Activations of the vanilla RNN and their derivatives (SPEC section 1).

gamma = sup |f'| (Config.gamma) bounds the Jacobian diag(f'(net)) W: ||J|| <= sigma_max(W) * gamma.
Every derivative here is a function of the output h = f(net) alone, except the
sigmoid's: s' = s (1 - s), and where s is close to 1 the rounded s has lost
1 - s. So the sigmoid comes with its complement 1 - s = sigmoid(-net), both
accurate to a few ulp relative in both tails (as scipy.special.expit), and a
forward pass that needs s' later keeps the complement (or the pre-activation).
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigma(x) = 1 / (1 + exp(-x)), accurate to a few ulp relative for every x,
    bit for bit sigmoid_pair's first half: [x >= 0 ? 1 : e] / (1 + e), e = exp(-|x|),
    with one exp. `out` may be x itself."""
    x, out = _operands(x, out)
    e = np.abs(x, out=np.empty_like(out))
    with np.errstate(under="ignore"):
        np.negative(e, out=e)
        np.exp(e, out=e)  # exp(-|x|) in [0, 1]
        np.greater_equal(x, 0.0, out=out)  # 1 or 0; x is not read after this
        np.maximum(out, e, out=out)  # 1 for x >= 0, else exp(x)
        e += 1.0
        np.divide(out, e, out=out)
    return out[()] if out.ndim == 0 else out


def sigmoid_pair(x: np.ndarray, out: np.ndarray | None = None, complement: np.ndarray | None = None):
    """(sigma(x), 1 - sigma(x) = sigma(-x)), each accurate to a few ulp relative.

    sigma(x) = a / (a + b) and sigma(-x) = b / (a + b) with a = exp(min(x, 0))
    and b = exp(-max(x, 0)): one of a, b is exactly 1 and the other is
    exp(-|x|) <= 1, so nothing overflows and nothing is subtracted from 1. A
    tiny value keeps its relative precision in either tail (the tanh form
    0.5 (1 + tanh(x / 2)) and 1 - sigma(x) lose all of it), and so does the
    derivative sigma'(x) = sigma(x) sigma(-x).
    No warnings for any input: below x ~ -745 sigma(x) rounds to 0, as it should.
    `out` may be x itself; `complement` must not be. Vectorised, no Python per element.
    """
    x, out = _operands(x, out)
    q = np.empty_like(out) if complement is None else complement
    with np.errstate(under="ignore"):
        np.negative(x, out=q)
        np.minimum(q, 0.0, out=q)  # -max(x, 0)
        np.minimum(x, 0.0, out=out)  # x is not read after this
        np.exp(out, out=out)  # a: 1 for x >= 0, else exp(x)
        np.exp(q, out=q)  # b: 1 for x <= 0, else exp(-x)
        total = out + q  # 1 + exp(-|x|)
        np.divide(out, total, out=out)
        np.divide(q, total, out=q)
    if out.ndim == 0:
        return out[()], q[()]
    return out, q


def gamma(name: str) -> float:
    """sup |f'| (SPEC section 1): 1/4 for the sigmoid, 1 for tanh, relu,
    leaky_relu (slope <= 1) and linear."""
    return 0.25 if name == "sigmoid" else 1.0


def _operands(x, out):
    x = np.asarray(x, dtype=np.float64)
    return x, (np.empty_like(x) if out is None else out)


def activate_inplace(name: str, net: np.ndarray, slope: float = 0.01, complement: np.ndarray | None = None) -> None:
    """net <- f(net), in place; net: (N, H). For the sigmoid, `complement`
    (same shape) receives 1 - f(net) = sigmoid(-net), which `derivative` needs."""
    if name == "tanh":
        np.tanh(net, out=net)
    elif name == "sigmoid":
        if complement is None:
            sigmoid(net, out=net)
        else:
            sigmoid_pair(net, out=net, complement=complement)
    elif name == "relu":
        np.maximum(net, 0.0, out=net)
    elif name == "leaky_relu":
        np.multiply(net, np.where(net > 0, 1.0, slope), out=net)
    elif name != "linear":
        raise ValueError(f"unknown activation {name!r}")


def has_dead_zone(name: str, slope: float = 0.01) -> bool:
    """Whether f'(net) is exactly 0 on a whole region of net by definition
    (relu for net <= 0, leaky_relu with slope 0): a unit there is dead, not
    saturated. tanh and sigmoid only approach 0; linear never does."""
    return name == "relu" or (name == "leaky_relu" and slope == 0.0)


def is_linear(name: str, slope: float = 0.01) -> bool:
    """Whether f'(net) = 1 everywhere (linear, or leaky_relu with slope 1): the
    Jacobian diag(f') W is then W itself at every step."""
    return name == "linear" or (name == "leaky_relu" and slope == 1.0)


def derivative(name: str, h: np.ndarray, slope: float = 0.01, complement: np.ndarray | None = None) -> np.ndarray:
    """f'(net) from h = f(net): tanh 1 - h^2, sigmoid h (1 - h), relu [h > 0],
    leaky_relu 1 or slope, linear 1. (h > 0 exactly when net > 0 for both ReLUs.)
    The sigmoid's needs `complement` = 1 - h as activate_inplace computed it:
    1.0 - h would have lost its precision where h is close to 1."""
    if name == "tanh":
        return 1.0 - h * h
    if name == "sigmoid":
        if complement is None:
            raise ValueError("the sigmoid's derivative needs the complement 1 - h from the forward pass")
        return h * complement
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "leaky_relu":
        return np.where(h > 0, 1.0, slope)
    if name == "linear":
        return np.ones_like(h)
    raise ValueError(f"unknown activation {name!r}")
