"""Step records: preallocated arrays for the run, a frozen view per step.

Record k (k = 1..T) holds the gradient with respect to h_{T-k}: the k-th
backward step has applied the k-th Jacobian (SPEC section 7). Numbers that do
not apply (the cell-state norm of an rnn, the bound of a gated cell) are NaN
here and null in every export; a non-finite gradient is status `overflow`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import CLIP_MODES

STATUSES = ("ok", "vanishing", "exploding", "overflow", "truncated")

# The numeric columns, in export order; each is a float64 array of length T.
NUMERIC = (
    "grad_norm",  # ||dL/dh_t||_F / N, after any step clip
    "ratio",  # this step's norm before clipping / the previous step's norm
    "cell_norm",  # LSTM: ||dL/dc_t||_F / N
    "gate_mean",  # LSTM: mean forget gate; GRU: mean update gate, of the step's transition
    "jacobian_sigma",  # largest singular value of dh_{t+1}/dh_t over the batch
    "saturation",  # fraction of units with f' below 5% of its maximum, dead units apart
    "dead",  # fraction of units with f'(net) = 0 by definition (a ReLU unit that is off); NaN: no such region
    "bound",  # Pascanu-Mikolov-Bengio bound on grad_norm (rnn)
    "hidden_path",  # start norm carried by the product of the steps' jacobian_sigma: what the hidden path alone keeps at most
    "contribution",  # ||this step's term in dL/dW_hh||_F
    "param_norm",  # running global L2 norm of all parameter gradients
)


@dataclass(frozen=True)
class ClipEvent:
    """A clip: `applied` False marks where a running norm crossed the threshold
    of an end-of-pass rule (norm, value, agc) before the rule is applied."""

    mode: str
    before: float
    after: float | None
    factor: float | None
    applied: bool = True


@dataclass(frozen=True)
class StepRecord:
    k: int
    t: int
    grad_norm: float
    ratio: float
    cell_norm: float
    gate_mean: float
    jacobian_sigma: float
    saturation: float
    dead: float
    bound: float
    hidden_path: float
    contribution: float
    param_norm: float
    clip: ClipEvent | None
    status: str


# The columns that depend on the forward pass only (what the step's transition
# is like, the bound and the hidden path): filled when read, not while stepping.
ON_READ = ("gate_mean", "jacobian_sigma", "saturation", "dead", "bound", "hidden_path")


class Columns(dict):
    """The numeric columns by name. Reading one of ON_READ first fills it for
    every record stepped so far, so the stepper never waits for them."""

    def __init__(self, records: Records, fill):
        super().__init__((name, np.full(records.steps, np.nan)) for name in NUMERIC)
        self._records, self._fill = records, fill

    def __getitem__(self, name: str) -> np.ndarray:
        if name in ON_READ:
            self.fill(self._records.count, (name,))
        return super().__getitem__(name)

    def fill(self, count: int, names=ON_READ) -> None:
        """Fill these ON_READ columns for records 1..count."""
        if self._fill is not None:
            self._fill(count, names)

    def get(self, name, default=None):
        return self[name] if name in self else default

    def values(self):
        return [self[name] for name in self]

    def items(self):
        return [(name, self[name]) for name in self]


class Records:
    """Columns of length T, filled as the backward pass steps.

    fill(count, names), when given, fills those ON_READ columns for records 1..count.
    """

    def __init__(self, steps: int, fill=None):
        self.steps = steps
        self.count = 0
        self.columns = Columns(self, fill)
        self.status = np.zeros(steps, dtype=np.int8)
        self.clip_mode = np.zeros(steps, dtype=np.int8)  # index into CLIP_MODES; 0 = none
        self.clip_applied = np.zeros(steps, dtype=bool)
        self.clip_before = np.full(steps, np.nan)
        self.clip_after = np.full(steps, np.nan)
        self.clip_factor = np.full(steps, np.nan)

    def __len__(self) -> int:
        return self.count

    def set_clip(self, k: int, event: ClipEvent) -> None:
        i = k - 1
        self.clip_mode[i] = CLIP_MODES.index(event.mode)
        self.clip_applied[i] = event.applied
        self.clip_before[i] = event.before
        self.clip_after[i] = np.nan if event.after is None else event.after
        self.clip_factor[i] = np.nan if event.factor is None else event.factor

    def clip(self, k: int) -> ClipEvent | None:
        i = k - 1
        if not self.clip_mode[i]:
            return None
        after, factor = float(self.clip_after[i]), float(self.clip_factor[i])
        applied = bool(self.clip_applied[i])
        return ClipEvent(
            CLIP_MODES[self.clip_mode[i]],
            float(self.clip_before[i]),
            after if applied else None,
            factor if applied else None,
            applied,
        )

    def __getitem__(self, k: int) -> StepRecord:
        """The record of backward step k (1-based, as everywhere)."""
        if not 1 <= k <= self.count:
            raise IndexError(f"record {k} not available (1..{self.count} recorded)")
        i = k - 1
        self.columns.fill(k)
        values = {name: float(col[i]) for name, col in dict.items(self.columns)}
        return StepRecord(k=k, t=self.steps - k, clip=self.clip(k), status=STATUSES[self.status[i]], **values)

    def __iter__(self):
        return (self[k] for k in range(1, self.count + 1))
