"""dL/dx_t by central finite differences of the forward pass's loss: the
heatmap's input connectivity checked without the backward pass."""

from __future__ import annotations

import numpy as np

from engine import Run


def loss_with(run: Run, inputs: np.ndarray) -> float:
    """The loss of run's model and targets on these inputs (the forward pass only)."""
    params = {name: p.copy() for name, p in run.params.items()}
    return Run(run.config, params=params, inputs=inputs, targets=run.targets).loss


def input_gradient(run: Run, t: int, eps: float = 1e-6) -> np.ndarray:
    """dL/dx_t (N, D) for input step t = 1..T (inputs[t - 1]), by central differences."""
    x = np.array(run.inputs, dtype=np.float64)
    grad = np.empty_like(x[t - 1])
    for index in np.ndindex(*grad.shape):
        up, down = x.copy(), x.copy()
        up[(t - 1, *index)] += eps
        down[(t - 1, *index)] -= eps
        grad[index] = (loss_with(run, up) - loss_with(run, down)) / (2 * eps)
    return grad


def input_norms(run: Run, eps: float = 1e-6) -> np.ndarray:
    """||dL/dx_t||_F / N for t = T, T-1, ..., 1 (the order the map keeps them)."""
    return np.array([np.linalg.norm(input_gradient(run, t, eps)) / run.N for t in range(run.T, 0, -1)])
