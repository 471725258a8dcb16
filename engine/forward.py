"""The forward pass: the cell over the whole sequence, then the loss (SPEC sections 1, 5, 7).

    trace = forward(model, inputs, targets)

The trace holds what the backward pass needs: the cell with its caches
(h[0..T] and the cell's own), the loss, the loss's gradient dL/dh_t at each
step that carries one (`injection`), the readout's gradients, and the model
version it was computed with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cells import CELLS
from .losses import loss_and_grad
from .model import Model


@dataclass
class Trace:
    inputs: np.ndarray  # (T, N, D)
    targets: np.ndarray | None
    cell: object  # the cell, with its forward caches
    version: int
    loss: float = 0.0
    injection: dict[int, np.ndarray] = field(default_factory=dict)  # t -> dL/dh_t from the loss at step t, (N, H)
    head_grads: dict[str, np.ndarray] = field(default_factory=dict)
    overflow_t: int | None = None  # first t whose state h_t is not finite


def forward(model: Model, inputs: np.ndarray, targets: np.ndarray | None, progress=None) -> Trace:
    """progress(t, T), if given, is called about a hundred times along the way;
    an exception it raises stops the pass."""
    c = model.config
    inputs = np.asarray(inputs, dtype=np.float64)
    cell = CELLS[c.cell](model.params, c.activation, c.leaky_slope, c.gamma or 1.0)
    cell.progress = progress
    trace = Trace(inputs, targets, cell, model.version)
    try:
        with np.errstate(all="ignore"):
            cell.forward(inputs)
            _readout(model, trace)
    finally:
        cell.progress = None
    trace.overflow_t = _first_nonfinite(cell.h)
    return trace


def _readout(model: Model, trace: Trace) -> None:
    """The loss and its gradient dL/dh_t at each step that carries a loss.

    chain: the implied objective L = sum(h_T), so dL/dh_T = ones (SPEC 7).
    bptt:  y_t = h_t W^T + b on the last step or on all steps.
    """
    c, h = model.config, trace.cell.h
    T = c.steps
    if not c.has_readout:
        trace.loss = float(np.sum(h[T]))
        trace.injection[T] = np.ones_like(h[T])
        return
    V, b = model.params["head.weight"], model.params["head.bias"]
    steps = np.arange(1, T + 1) if c.loss_on == "all" else np.array([T])
    hs = h[steps]  # (S, N, H)
    y = hs @ V.T + b
    trace.loss, dy = loss_and_grad(c.loss, y, trace.targets[steps - 1])
    dh = dy @ V
    for i, t in enumerate(steps):
        trace.injection[int(t)] = dh[i]
    trace.head_grads = {
        "head.weight": np.einsum("snk,snh->kh", dy, hs),
        "head.bias": dy.sum(axis=(0, 1)),
    }


def _first_nonfinite(h: np.ndarray) -> int | None:
    bad = ~np.isfinite(h.reshape(h.shape[0], -1)).all(axis=1)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


__all__ = ["Trace", "forward"]
