"""Gradient clipping rules (SPEC section 3).

End-of-pass rules act on the parameter gradients once the backward pass is
complete: `norm` (the source's global-norm rule), `value` (element-wise) and
`agc` (adaptive, unit-wise; Brock, De, Smith and Simonyan, 2021). `step` acts
on the carried hidden-state gradient during the pass (derivative clipping) and
lives in the stepper, using `step_factor`.
"""

from __future__ import annotations

import numpy as np

from .norms import joint_norm
from .norms import norm as l2

AGC_EPS = 1e-3  # Brock et al. 2021
# AGC leaves the final linear layer unclipped, as Brock et al. do.
AGC_SKIP = ("head.weight", "head.bias")


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """sqrt(sum over all parameter gradients g of sum(g ** 2))."""
    return joint_norm([l2(g) for g in grads.values()])


def clip_by_norm(grads: dict[str, np.ndarray], max_norm: float) -> float | None:
    """Scale every gradient in place by the rate if rate < 1. Returns the rate applied."""
    rate = max_norm / (global_norm(grads) + 1e-6)  # the source's rule; it acts when rate < 1
    if not rate < 1.0:
        return None
    for g in grads.values():
        g *= rate
    return rate


def clip_by_value(grads: dict[str, np.ndarray], c: float) -> bool:
    """Clip every element to [-c, c] in place. Returns whether anything changed."""
    changed = any(bool(np.any(np.abs(g) > c)) for g in grads.values())
    for g in grads.values():
        np.clip(g, -c, c, out=g)
    return changed


def unit_norms(x: np.ndarray) -> np.ndarray:
    """Norm of each unit, shaped to broadcast against x: a weight matrix's rows
    (fan-in, PyTorch's (out, in) layout); a bias vector is one unit, as in
    Brock et al.'s unitwise_norm."""
    if x.ndim == 1:
        return np.full(x.shape, np.sqrt(np.vdot(x, x)))
    return np.sqrt(np.sum(x * x, axis=1, keepdims=True))


class UnitClip:
    """Adaptive gradient clipping (Brock, De, Smith and Simonyan, 2021): where
    ||G_i|| / max(||W_i||, eps) > lambda, G_i <- lambda * max(||W_i||, eps) * G_i / ||G_i||.
    The parameters do not change during a run, so their unit norms are kept."""

    def __init__(self, params: dict[str, np.ndarray]):
        self.floor = {name: np.maximum(unit_norms(p), AGC_EPS) for name, p in params.items() if name not in AGC_SKIP}

    def worst_ratio(self, grads: dict[str, np.ndarray]) -> float:
        """The largest ||G_i|| / max(||W_i||, eps) over the clipped units."""
        return max(float(np.max(unit_norms(grads[name]) / floor)) for name, floor in self.floor.items())

    def clip(self, grads: dict[str, np.ndarray], lam: float) -> bool:
        """Clip in place; returns whether any unit was rescaled."""
        changed = False
        for name, floor in self.floor.items():
            g = grads[name]
            allowed = lam * floor
            gnorm = unit_norms(g)
            over = gnorm > allowed
            if np.any(over):
                changed = True
                g *= np.where(over, allowed / np.where(over, gnorm, 1.0), 1.0)
        return changed


def step_factor(norm: float, threshold: float) -> float | None:
    """Derivative clipping: the factor that brings a carried gradient of this
    norm down to the threshold, or None when it is within it (or not finite)."""
    if np.isfinite(norm) and norm > threshold:
        return threshold / norm
    return None
