"""Losses on the readout y_t = h_t W^T + b (SPEC section 7), vectorised over steps.

mse:  mean over batch and output dims of (y - target)^2   (PyTorch MSELoss())
xent: softmax cross-entropy averaged over the batch        (PyTorch CrossEntropyLoss())
Both are summed over the steps that carry a loss.
"""

from __future__ import annotations

import numpy as np


def loss_and_grad(kind: str, y: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """y: (S, N, K); target: (S, N, K) for mse, (S, N) class ids for xent.
    Returns the summed loss and dL/dy, shaped like y."""
    S, N, K = y.shape
    if kind == "mse":
        diff = y - target
        return float(np.sum(diff * diff) / (N * K)), 2.0 * diff / (N * K)
    if kind == "xent":
        shifted = y - np.max(y, axis=-1, keepdims=True)
        logp = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
        picked = np.take_along_axis(logp, target[..., None], axis=-1)
        dy = np.exp(logp)
        np.put_along_axis(dy, target[..., None], np.take_along_axis(dy, target[..., None], axis=-1) - 1.0, axis=-1)
        return float(-np.sum(picked) / N), dy / N
    raise ValueError(f"unknown loss {kind!r}")
