"""The adding problem (Hochreiter and Schmidhuber 1997; Le, Jaitly and Hinton 2015; SPEC 8).

Each step carries D = 2 inputs: a value u_t ~ U[0, 1] and a marker m_t in
{0, 1}. Exactly one marker is set in the first half of the sequence (a step
in [0, T//2)) and one in the second ([T//2, T)); the target, on the last step
only, is the sum of the two marked values. Loss `mse` on the last step.

Baseline: predicting 1 (the mean of u_a + u_b) always gives MSE
Var(u_a + u_b) = 1/12 + 1/12 = 1/6. To beat it, the gradient of the last
step's loss must reach the first marker, up to T - 1 steps back.
"""

from __future__ import annotations

import numpy as np

from .base import Task, mean_squared_error, needs


class AddingTask(Task):
    name = "adding"
    description = "sum the two marked values of a sequence of U[0, 1] values (mse on the last step)"
    loss, loss_on = "mse", "last"
    metric_name, higher_is_better = "mse", False
    baseline_label = "predicting 1 always: Var(u_a + u_b) = 1/6"
    input_size, output_size = 2, 1

    def __init__(self, steps: int):
        needs(self.name, steps, 2, "one marker in each half")
        self.steps = steps

    @property
    def baseline_loss(self) -> float:
        return 1.0 / 6.0

    @property
    def baseline_metric(self) -> float:
        return 1.0 / 6.0

    def batch(self, rng, n):
        """Draws, in order: the values (T, n), the first marker's step per
        sequence, the second marker's step per sequence."""
        T, half = self.steps, self.steps // 2
        values = rng.random((T, n))
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, T, size=n)
        inputs = np.zeros((T, n, 2))
        inputs[:, :, 0] = values
        seq = np.arange(n)
        inputs[first, seq, 1] = 1.0
        inputs[second, seq, 1] = 1.0
        targets = np.zeros((T, n, 1))
        targets[T - 1, :, 0] = values[first, seq] + values[second, seq]
        return inputs, targets

    def metric(self, y, targets):
        return mean_squared_error(y, targets)
