"""Activations of the vanilla RNN and their derivatives (SPEC section 1).

`gamma` = sup |f'| bounds the Jacobian diag(f'(net)) W: ||J|| <= sigma_max(W) * gamma.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in the tanh form: no overflow for any finite x."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def activate(name: str, net: np.ndarray, slope: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """f(net) and f'(net) for an rnn activation; net: (N, H)."""
    if name == "tanh":
        h = np.tanh(net)
        return h, 1.0 - h * h
    if name == "sigmoid":
        h = sigmoid(net)
        return h, h * (1.0 - h)
    if name == "relu":
        active = net > 0
        return np.where(active, net, 0.0), active.astype(net.dtype)
    if name == "leaky_relu":
        active = net > 0
        return np.where(active, net, slope * net), np.where(active, 1.0, slope)
    if name == "linear":
        return net.copy(), np.ones_like(net)
    raise ValueError(f"unknown activation {name!r}")


def gamma(name: str, slope: float = 0.01) -> float:
    """sup |f'(x)|: 1/4 for sigmoid, 1 for the others (slope <= 1)."""
    return 0.25 if name == "sigmoid" else 1.0
