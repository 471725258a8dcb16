"""Derivative clipping: the carried dL/dh rescaled during the pass (SPEC section 3)."""

from __future__ import annotations

import math

from .base import DURING, ClipRule


class StepClip(ClipRule):
    """After every backward step, a carried gradient whose shown norm
    ||dL/dh||_F / N exceeds c is rescaled to norm c. dL/dh_T, straight from
    the loss, is not clipped: the rule acts on what a Jacobian carried."""

    name = "step"
    phase = DURING
    default_threshold = 5.0
    measures = "the norm of the carried gradient ||dL/dh||_F / N"
    series = "grad_norm"

    def factor(self, norm: float) -> float | None:
        if math.isfinite(norm) and norm > self.threshold:
            return self.threshold / norm
        return None
