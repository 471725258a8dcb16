"""What a clipping rule is (SPEC section 3), and the norms the rules share.

A rule declares its phase, what it measures and how it applies, so the
stepper and the front ends never test a rule by its name:

- phase DURING: the rule acts on the carried hidden-state gradient dL/dh
  after every backward step (derivative clipping);
- phase END: the rule acts on the parameter gradients once the backward pass
  is complete; while the pass runs, the stepper marks the step where the
  rule's measure of the gradients accumulated so far first crosses the
  threshold.

`series` names the record column the threshold compares with ("grad_norm"
for a rule on dL/dh, "param_norm" for one on the global norm), or None
when the rule measures something no chart draws (the largest |g|, a unit
ratio).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..norms import joint_norm
from ..norms import norm as l2

DURING, END = "during", "end"


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """sqrt(sum over all parameter gradients g of sum(g ** 2))."""
    return joint_norm([l2(g) for g in grads.values()])


class ClipRule(ABC):
    name: ClassVar[str]
    phase: ClassVar[str]
    default_threshold: ClassVar[float]
    measures: ClassVar[str]  # in words, for help and legends
    series: ClassVar[str | None] = None

    def __init__(self, threshold: float):
        self.threshold = threshold

    def exceeds(self, measure: float) -> bool:
        """Whether a measure of this size makes the rule act."""
        return bool(measure > self.threshold)

    # END rules ------------------------------------------------------------------

    def measure(self, grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> float:
        """The quantity compared with the threshold, on these gradients."""
        raise NotImplementedError

    def apply(self, grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> bool:
        """Clip the gradients in place; whether anything changed."""
        raise NotImplementedError

    # DURING rules ---------------------------------------------------------------

    def factor(self, norm: float) -> float | None:
        """The factor that rescales a carried gradient of this norm, or None."""
        raise NotImplementedError


class EndRule(ClipRule):
    phase = END

    @abstractmethod
    def measure(self, grads, params) -> float: ...

    @abstractmethod
    def apply(self, grads, params) -> bool: ...
