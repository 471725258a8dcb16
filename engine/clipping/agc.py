"""Adaptive gradient clipping (Brock, De, Smith and Simonyan, 2021).

Where ||G_i|| / max(||W_i||, eps) > lambda, G_i <- lambda * max(||W_i||, eps) * G_i / ||G_i||.
A unit is a row of a weight matrix (fan-in, PyTorch's (out, in) layout) or a
whole bias vector, as in their unitwise_norm; the final linear layer,
`head.*`, is not clipped, as in their paper. The parameter norms are
computed from the parameters on use, so an updated model is never clipped
against stale norms.
"""

from __future__ import annotations

import numpy as np

from .base import EndRule

EPS = 1e-3  # Brock et al. 2021
SKIP = ("head.weight", "head.bias")


def unit_norms(x: np.ndarray) -> np.ndarray:
    """Norm of each unit, shaped to broadcast against x."""
    if x.ndim == 1:
        return np.full(x.shape, np.sqrt(np.vdot(x, x)))
    return np.sqrt(np.sum(x * x, axis=1, keepdims=True))


class AgcClip(EndRule):
    name = "agc"
    default_threshold = 0.01
    measures = "the largest unit ratio ||G_i|| / max(||W_i||, 1e-3)"

    def _floors(self, params):
        return {name: np.maximum(unit_norms(p), EPS) for name, p in params.items() if name not in SKIP}

    def measure(self, grads, params) -> float:
        return max(float(np.max(unit_norms(grads[name]) / floor)) for name, floor in self._floors(params).items())

    def apply(self, grads, params) -> bool:
        changed = False
        for name, floor in self._floors(params).items():
            g = grads[name]
            allowed = self.threshold * floor
            gnorm = unit_norms(g)
            over = gnorm > allowed
            if np.any(over):
                changed = True
                g *= np.where(over, allowed / np.where(over, gnorm, 1.0), 1.0)
        return changed
