"""Gradient clipping rules (SPEC section 3).

End-of-pass rules act on the parameter gradients once the backward pass is
complete: `norm` (the source's global-norm rule), `value` (element-wise) and
`agc` (adaptive, unit-wise; Brock, De, Smith and Simonyan, 2021). `step` acts
on the carried hidden-state gradient during the pass (derivative clipping) and
lives in the stepper, using `step_factor`.
"""

from __future__ import annotations

import numpy as np

from .norms import sq_norm

AGC_EPS = 1e-3  # Brock et al. 2021
# AGC leaves the final linear layer unclipped, as Brock et al. do.
AGC_SKIP = ("head.weight", "head.bias")


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """sqrt(sum over all parameter gradients g of sum(g ** 2))."""
    return float(np.sqrt(sum(sq_norm(g) for g in grads.values())))


def norm_rate(total_norm: float, max_norm: float) -> float:
    """The source's rule: rate = max_norm / (total_norm + 1e-6); it acts when rate < 1."""
    return max_norm / (total_norm + 1e-6)


def clip_by_norm(grads: dict[str, np.ndarray], max_norm: float) -> float | None:
    """Scale every gradient in place by the rate if rate < 1. Returns the rate applied."""
    rate = norm_rate(global_norm(grads), max_norm)
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


def _unit_norms(x: np.ndarray) -> np.ndarray:
    """Norm of each unit: a weight's row (its fan-in), a bias's element."""
    return np.abs(x) if x.ndim == 1 else np.sqrt(np.sum(x * x, axis=1, keepdims=True))


def agc_exceeds(grads: dict[str, np.ndarray], params: dict[str, np.ndarray], lam: float) -> bool:
    for name, g in grads.items():
        if name in AGC_SKIP:
            continue
        if np.any(_unit_norms(g) > lam * np.maximum(_unit_norms(params[name]), AGC_EPS)):
            return True
    return False


def clip_agc(grads: dict[str, np.ndarray], params: dict[str, np.ndarray], lam: float) -> bool:
    """Unit-wise: where ||G_i|| / max(||W_i||, eps) > lam, set G_i <- lam * max(||W_i||, eps) * G_i / ||G_i||."""
    changed = False
    for name, g in grads.items():
        if name in AGC_SKIP:
            continue
        allowed = lam * np.maximum(_unit_norms(params[name]), AGC_EPS)
        gnorm = _unit_norms(g)
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
