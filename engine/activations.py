"""Activations of the vanilla RNN and their derivatives (SPEC section 1).

gamma = sup |f'| (Config.gamma) bounds the Jacobian diag(f'(net)) W: ||J|| <= sigma_max(W) * gamma.
Every derivative here is a function of the output h = f(net) alone, so the
forward pass keeps h and nothing else.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in the tanh form: no overflow for any finite x."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def activate_inplace(name: str, net: np.ndarray, slope: float = 0.01) -> None:
    """net <- f(net), in place; net: (N, H)."""
    if name == "tanh":
        np.tanh(net, out=net)
    elif name == "sigmoid":
        net *= 0.5
        np.tanh(net, out=net)
        net += 1.0
        net *= 0.5
    elif name == "relu":
        np.maximum(net, 0.0, out=net)
    elif name == "leaky_relu":
        np.multiply(net, np.where(net > 0, 1.0, slope), out=net)
    elif name != "linear":
        raise ValueError(f"unknown activation {name!r}")


def derivative(name: str, h: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """f'(net) from h = f(net): tanh 1 - h^2, sigmoid h (1 - h), relu [h > 0],
    leaky_relu 1 or slope, linear 1. (h > 0 exactly when net > 0 for both ReLUs.)"""
    if name == "tanh":
        return 1.0 - h * h
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "leaky_relu":
        return np.where(h > 0, 1.0, slope)
    if name == "linear":
        return np.ones_like(h)
    raise ValueError(f"unknown activation {name!r}")
