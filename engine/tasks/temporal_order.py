"""The temporal order problem (Hochreiter and Schmidhuber 1997; Pascanu et al. 2013; SPEC 8).

One-hot symbols over {a, b, c, d, X, Y} (D = 6). Every step holds a
distractor a-d, drawn uniformly, except two: t1 in [0.1 T, 0.2 T) and t2 in
[0.5 T, 0.6 T) (steps counted from 0), which hold X or Y. The class, on the
last step only, is the ordered pair: XX = 0, XY = 1, YX = 2, YY = 3 (K = 4).
Loss `xent` on the last step; metric: accuracy.

Baseline: the four classes are equally likely, so chance is 25% accuracy and
the uniform prediction's cross-entropy is ln 4.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Task, accuracy, needs

SYMBOLS = ("a", "b", "c", "d", "X", "Y")
CLASSES = ("XX", "XY", "YX", "YY")
X = SYMBOLS.index("X")


def window(steps: int, lo_tenths: int, hi_tenths: int) -> tuple[int, int]:
    """The integer steps t with lo/10 T <= t < hi/10 T, as [first, end): exact integer arithmetic."""
    return -(-lo_tenths * steps // 10), -(-hi_tenths * steps // 10)


class TemporalOrderTask(Task):
    name = "temporal-order"
    description = "classify the order of two symbols X/Y hidden among distractors a-d (xent on the last step)"
    loss, loss_on = "xent", "last"
    metric_name, higher_is_better = "accuracy", True
    baseline_label = "chance: a uniform guess over the four classes"
    input_size, output_size = len(SYMBOLS), len(CLASSES)

    def __init__(self, steps: int):
        needs(self.name, steps, 10, "t1 in [0.1 T, 0.2 T) must hold a whole step")
        self.steps = steps
        self.first = window(steps, 1, 2)
        self.second = window(steps, 5, 6)

    @property
    def baseline_loss(self) -> float:
        return math.log(len(CLASSES))

    @property
    def baseline_metric(self) -> float:
        return 1.0 / len(CLASSES)

    def batch(self, rng, n):
        """Draws, in order: the distractors (T, n), t1 per sequence, t2 per
        sequence, the two symbols (n, 2) (0 = X, 1 = Y)."""
        T = self.steps
        symbols = rng.integers(0, 4, size=(T, n))
        t1 = rng.integers(*self.first, size=n)
        t2 = rng.integers(*self.second, size=n)
        xy = rng.integers(0, 2, size=(n, 2))
        seq = np.arange(n)
        symbols[t1, seq] = X + xy[:, 0]
        symbols[t2, seq] = X + xy[:, 1]
        inputs = np.zeros((T, n, len(SYMBOLS)))
        inputs[np.arange(T)[:, None], seq, symbols] = 1.0
        targets = np.zeros((T, n), dtype=np.int64)
        targets[T - 1] = 2 * xy[:, 0] + xy[:, 1]
        return inputs, targets

    def metric(self, y, targets):
        return accuracy(y, targets)
