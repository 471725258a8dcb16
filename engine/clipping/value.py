"""Element-wise value clipping to [-c, c] (SPEC section 3)."""

from __future__ import annotations

import numpy as np

from .base import EndRule


class ValueClip(EndRule):
    name = "value"
    default_threshold = 1.0
    measures = "the largest |g| of any parameter gradient"

    def measure(self, grads, params) -> float:
        return max(max(float(g.max()), -float(g.min())) for g in grads.values())

    def apply(self, grads, params) -> bool:
        changed = any(bool(np.any(np.abs(g) > self.threshold)) for g in grads.values())
        for g in grads.values():
            np.clip(g, -self.threshold, self.threshold, out=g)
        return changed
