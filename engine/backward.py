"""The backward pass in SPEC's stages, one timestep at a time.

Backward step k (k = 1..T) crosses transition t = T - k + 1 (h_{t-1} -> h_t)
and ends with the gradient with respect to h_s, s = t - 1 (record k):

    propagate    dL/dh_{t-1} = dL/dh_t pushed through the Jacobian of transition t
                 (SPEC 1; for an LSTM dL/dc_{t-1} too, SPEC 4)
    accumulate   transition t's terms of the parameter gradients, delta_t^T h_{t-1} (SPEC 1)
    truncate     an output's gradient that has crossed `truncate` Jacobians stops (SPEC 5)
    inject       the loss at step s adds its own dL/dh_s (SPEC 5, 7)
    clip         a rule that acts during the pass rescales the carried gradient (SPEC 3)

`Backward.step()` runs them in that order and returns what happened as a
`Step`; `Run` adds the records, the lean path (`gradients`) does not. Once
the last step is taken, `finish()` applies a rule that acts at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clipping import DURING, END, ClipRule, make_rule
from .forward import Trace, forward
from .model import Model
from .norms import joint_norm
from .norms import norm as l2

RECURRENT = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class Carried:
    """The gradients flowing back, one entry per output still travelling.

    Without truncation every output travels to h_0, so all are summed into one
    entry as they are injected. With truncation each output keeps its own entry
    until it has crossed `truncate` Jacobians. dh, dc: (E, N, H); age: (E,).
    """

    def __init__(self, start: np.ndarray, cell_state: bool, apart: bool):
        self.apart = apart
        self.dh = start[None].copy()
        self.dc = np.zeros_like(self.dh) if cell_state else None
        self.age = np.zeros(1, dtype=np.int64)

    def total(self) -> tuple[np.ndarray, np.ndarray | None]:
        """dL/dh_s (and dL/dc_s carried), summed over the entries: (N, H)."""
        if len(self.age) == 1:
            return self.dh[0], None if self.dc is None else self.dc[0]
        return self.dh.sum(axis=0), None if self.dc is None else self.dc.sum(axis=0)


def propagate(cell, t: int, carried: Carried) -> tuple[np.ndarray, np.ndarray]:
    """Every entry through transition t's Jacobian; returns dL/dnet_t (input side,
    recurrent side), summed over the entries, for the parameter terms."""
    carried.dh, carried.dc, d_ih, d_hh = cell.propagate(t, carried.dh, carried.dc)
    carried.age += 1
    one = len(carried.age) == 1
    if d_hh is d_ih:  # rnn, lstm: one dL/dnet for both sides
        total = d_ih[0] if one else d_ih.sum(axis=0)
        return total, total
    return (d_ih[0], d_hh[0]) if one else (d_ih.sum(axis=0), d_hh.sum(axis=0))


def truncate(carried: Carried, limit: int) -> None:
    """Drop the outputs whose gradient has crossed more than `limit` Jacobians."""
    keep = carried.age <= limit
    if not keep.all():
        carried.dh, carried.age = carried.dh[keep], carried.age[keep]
        if carried.dc is not None:
            carried.dc = carried.dc[keep]


def inject(carried: Carried, grad: np.ndarray) -> None:
    """The loss at step s adds dL/dh_s: its own entry under truncation, else into the sum."""
    if carried.apart or len(carried.age) == 0:
        carried.dh = np.concatenate((carried.dh, grad[None]))
        carried.age = np.append(carried.age, 0)
        if carried.dc is not None:
            carried.dc = np.concatenate((carried.dc, np.zeros_like(grad)[None]))
    else:
        carried.dh[0] += grad


def clip_carried(rule: ClipRule, carried: Carried, norm: float) -> float | None:
    """Derivative clipping: rescale every carried dL/dh (not dL/dc) when its norm exceeds the threshold."""
    factor = rule.factor(norm)
    if factor is not None:
        carried.dh *= factor
    return factor


class RunningGradients:
    """Accumulate stage, term by term: the gradients so far are complete after
    every step, so the records can show each term and the running norm."""

    def __init__(self, params: dict[str, np.ndarray], head_grads: dict[str, np.ndarray], cell):
        self.cell = cell
        self.grads = {name: np.zeros_like(p) for name, p in params.items()}
        self.grads.update({name: g.copy() for name, g in head_grads.items()})
        self.head_norms = [l2(g) for g in head_grads.values()]
        self.term = np.empty_like(params["weight_hh_l0"])

    def add(self, t: int, d_ih, d_hh, x_prev, h_prev) -> float:
        """Transition t's terms, as the cell gives them (SPEC 1: dW += delta^T h_{t-1}); returns ||dW_hh term||_F."""
        return l2(self.cell.accumulate(self.grads, d_ih, d_hh, x_prev, h_prev, self.term))

    def norm(self) -> float:
        """The global norm of the parameter gradients so far."""
        return joint_norm(self.head_norms + [l2(self.grads[n]) for n in RECURRENT])

    def finish(self) -> dict[str, np.ndarray]:
        return self.grads


class StackedGradients:
    """Accumulate stage, deferred: the steps' dL/dnet are kept a chunk at a
    time, and each weight gradient grows by one matmul per chunk (the lean
    path). A chunk, not the whole pass: a (T, N, G*H) buffer would cost more
    in fresh memory than the matmuls it saves."""

    CHUNK = 64  # steps per matmul

    def __init__(self, params: dict[str, np.ndarray], head_grads: dict[str, np.ndarray], trace: Trace):
        N, GH = trace.inputs.shape[1], params["weight_hh_l0"].shape[0]
        self.params, self.trace = params, trace
        self.grads = {name: np.zeros_like(p) for name, p in params.items()}
        self.grads.update({name: g.copy() for name, g in head_grads.items()})
        self.d_ih = np.empty((self.CHUNK, N, GH))
        self.d_hh = np.empty_like(self.d_ih)
        self.split = False  # whether the two sides ever differed (gru)
        self.steps: list[int] = []

    def add(self, t: int, d_ih, d_hh, x_prev, h_prev) -> None:
        j = len(self.steps)
        self.d_ih[j] = d_ih
        self.d_hh[j] = d_hh
        self.split = self.split or d_hh is not d_ih
        self.steps.append(t)
        if j + 1 == self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        n = len(self.steps)
        if not n:
            return
        t = np.array(self.steps) - 1  # h_{t-1} and x_{t-1} of each transition t
        N, GH = self.d_ih.shape[1:]
        x = self.trace.inputs[t].reshape(n * N, -1)
        h = self.trace.cell.h[t].reshape(n * N, -1)
        d_ih = self.d_ih[:n].reshape(n * N, GH)
        d_hh = self.d_hh[:n].reshape(n * N, GH) if self.split else d_ih
        for name, term in self.trace.cell.accumulate_all(d_ih, d_hh, x, h).items():
            self.grads[name] += term
        self.steps.clear()

    def finish(self) -> dict[str, np.ndarray]:
        self._flush()
        return self.grads


@dataclass
class Step:
    """What backward step k did: the carried gradient's norm before and after a
    clip, the clip factor, whether truncation is cutting, the dW_hh term's norm,
    dL/dh_s and dL/dc_s in full, the loss gradient injected at s, and dL/dnet_t
    on the input side (N, G*H; None when nothing flowed): dL/dx_t = d_ih W_ih."""

    k: int
    t: int
    norm: float
    before: float
    factor: float | None
    cut: bool
    contribution: float | None
    total: np.ndarray
    total_c: np.ndarray | None
    injected: np.ndarray | None
    d_ih: np.ndarray | None = None


class Backward:
    """The stages composed: one backward step per `step()`."""

    def __init__(self, model: Model, trace: Trace, gradients, rule: ClipRule | None):
        c = model.config
        self.model, self.trace, self.gradients, self.rule = model, trace, gradients, rule
        self.cell, self.T, self.N = trace.cell, c.steps, c.batch
        self.limit = c.truncate
        self.k = 0
        start = trace.injection[self.T]
        self.carried = Carried(start, trace.cell.has_cell_state, apart=bool(c.truncate))

    def step(self) -> Step:
        self.model.check(self.trace.version)
        k = self.k = self.k + 1
        t = self.T - k + 1  # transition t maps h_{t-1} to h_t; this step ends at h_s, s = t - 1
        contribution = d_ih = None
        if len(self.carried.age):  # else truncation has cut every output: nothing flows any more
            d_ih, d_hh = propagate(self.cell, t, self.carried)
            contribution = self.gradients.add(t, d_ih, d_hh, self.trace.inputs[t - 1], self.cell.h[t - 1])
        if self.limit:
            truncate(self.carried, self.limit)
        injected = self.trace.injection.get(t - 1) if t > 1 else None
        if injected is not None:
            inject(self.carried, injected)
        total, total_c = self._total()
        norm = before = l2(total, self.N)
        factor = None
        if self.rule is not None and self.rule.phase == DURING:
            factor = clip_carried(self.rule, self.carried, norm)
            if factor is not None:
                total, total_c = self._total()
                norm = norm * factor
        return Step(k, t, norm, before, factor, bool(self.limit) and k > self.limit, contribution, total, total_c, injected, d_ih)

    def _total(self) -> tuple[np.ndarray, np.ndarray | None]:
        """dL/dh_s and the carried dL/dc_s (zeros when nothing flows; dc None without a cell state)."""
        if len(self.carried.age):
            total, total_c = self.carried.total()
        else:
            total, total_c = np.zeros_like(self.trace.injection[self.T]), None
        if total_c is None and self.cell.has_cell_state:
            total_c = np.zeros_like(total)
        return total, total_c

    def finish(self) -> tuple[dict, dict, bool]:
        """The pass is complete: the raw gradients, the gradients after an end rule, whether it acted."""
        grads = self.gradients.finish()
        raw = {name: g.copy() for name, g in grads.items()}
        applied = self.rule is not None and self.rule.phase == END and self.rule.apply(grads, self.model.params)
        return raw, grads, bool(applied)


def gradients(config, params, inputs, targets) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The lean path: the same forward and the same stages as a recorded `Run`,
    with no records or diagnostics, and each weight gradient as one matmul at
    the end. Returns the loss, the gradients before clipping and after it."""
    model = Model(config, params)
    with np.errstate(all="ignore"):
        trace = forward(model, inputs, targets)
        back = Backward(model, trace, StackedGradients(model.params, trace.head_grads, trace), make_rule(config.clip, config.clip_threshold))
        for _ in range(config.steps):
            back.step()
        raw, grads, _ = back.finish()
    return trace.loss, raw, grads


def lean_gradients(config, params, inputs, targets) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and the gradients before any end-of-pass clip (what `Run.grads_raw` holds)."""
    loss, raw, _ = gradients(config, params, inputs, targets)
    return loss, raw


__all__ = ["Backward", "Carried", "RunningGradients", "StackedGradients", "Step", "gradients", "lean_gradients"]
