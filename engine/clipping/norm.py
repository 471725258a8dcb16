"""Global-norm clipping, the source's rule (SPEC section 3)."""

from __future__ import annotations

from .base import EndRule, global_norm

EPS = 1e-6  # the source's: rate = max_norm / (total_norm + 1e-6)


class NormClip(EndRule):
    """rate = max_norm / (total_norm + 1e-6); if rate < 1, every gradient *= rate."""

    name = "norm"
    default_threshold = 5.0
    measures = "the global norm of all parameter gradients"
    series = "param_norm"

    def rate(self, total_norm: float) -> float:
        return self.threshold / (total_norm + EPS)

    def exceeds(self, measure: float) -> bool:
        return bool(self.rate(measure) < 1.0)

    def measure(self, grads, params) -> float:
        return global_norm(grads)

    def apply(self, grads, params) -> bool:
        rate = self.rate(global_norm(grads))
        if not rate < 1.0:
            return False
        for g in grads.values():
            g *= rate
        return True
