"""A recorded backward pass: what the CLI and the dashboard step.

    run = Run(config)          # the model, the data and the forward pass
    record = run.step()        # one backward step: record k = dL/dh_{T-k}
    run.run()                  # steps to the end, returns the summary
    run.reset()                # starts the backward pass over (same bits)

`Run` composes the model (engine/model.py), the forward trace
(engine/forward.py) and the staged backward pass (engine/backward.py), and
adds the record stage: per step the norms, ratio, bound, diagnostics and
status. After the last step `grads` (after clipping), `grads_raw` (before)
and `summary()` are complete. Numeric blow-ups never raise or warn: every
numpy call that may overflow runs under `np.errstate(all="ignore")` and a
non-finite gradient becomes status `overflow`.
"""

from __future__ import annotations

import math

import numpy as np

from .backward import Backward, RunningGradients, Step
from .clipping import END, global_norm, make_rule
from .config import Config
from .data import make_data
from .diagnostics import JacobianSigma
from .forward import forward
from .gradient_map import GradientMap
from .model import Model
from .norms import norm as l2
from .records import ON_READ, STATUSES, ClipEvent, Records
from .seeding import streams

OK, VANISHING, EXPLODING, OVERFLOW, TRUNCATED = range(len(STATUSES))
_BLOCK = 1024  # records carried at a time by the bound and the hidden path


class RunComplete(RuntimeError):
    """step() after the last backward step."""


class Run:
    def __init__(
        self,
        config: Config,
        params: dict[str, np.ndarray] | None = None,
        inputs: np.ndarray | None = None,
        targets: np.ndarray | None = None,
        progress=None,
        gradient_map: bool = False,
    ):
        """progress(t, T), if given, is called during the forward pass; an
        exception it raises stops the construction (a cancelled build).
        gradient_map: also record |dL/dh_t| per unit and ||dL/dx_t|| as the pass
        steps (the heatmap; the dashboard and `bptt-lab heatmap` ask for it:
        it costs a few per cent a step, up to 70% where every norm is denormal)."""
        self.config = c = config
        self.model = Model(c, params) if params is not None else Model.from_config(c)
        self.params = self.model.params
        if inputs is None:
            inputs, targets = make_data(c)
        self.trace = forward(self.model, inputs, targets, progress)
        self.inputs, self.targets = self.trace.inputs, targets
        self.T, self.N, self.H = c.steps, c.batch, c.hidden
        self.cell, self.loss = self.trace.cell, self.trace.loss
        self.forward_overflow = self.trace.overflow_t
        # What the records show that depends on the forward pass only (sigma of
        # each transition's Jacobian, its saturation, dead units and gate mean,
        # the bound and the hidden path): computed a chunk at a time when a
        # record is read, by record, kept across reset().
        self._on_read = {name: np.full(self.T, np.nan) for name in ON_READ}
        self._known = 0  # records 1.._known have sigma, saturation, dead and gate mean
        self._carried = {"bound": 0, "hidden_path": 0}  # records 1..n have the column
        self._jacobian: JacobianSigma | None = None
        self.clip_rule = make_rule(c.clip, c.clip_threshold)
        # |dL/dh_t| per unit and ||dL/dx_t|| per input step, recorded as the pass steps (the heatmap)
        self.gradient_map = GradientMap(self.T, self.H, self.N, self.params["weight_ih_l0"]) if gradient_map else None
        self.reset()

    # -- the backward pass --------------------------------------------------------

    def reset(self) -> None:
        """Start the backward pass over; the forward pass is kept."""
        self.k = 0
        self.done = False
        self.records = Records(self.T, self._fill_on_read)
        self._filled = dict.fromkeys(ON_READ, 0)  # records 1..n have the column copied in
        self._accumulated = RunningGradients(self.params, self.trace.head_grads, self.cell)
        self.grads = self._accumulated.grads
        self.grads_raw = None
        self._back = Backward(self.model, self.trace, self._accumulated, self.clip_rule)
        with np.errstate(all="ignore"):
            self.start_norm = l2(self.trace.injection[self.T], self.N)
            if self.gradient_map is not None:
                self.gradient_map.start(self.trace.injection[self.T])
        self._prev_norm = self.start_norm
        self._param_norm = self._accumulated.norm()
        self.clip_count = 0  # applied clip events so far
        self._crossed = False

    def step(self):
        """One backward timestep: apply the k-th Jacobian, record, return the record."""
        self._advance()
        return self.records[self.k]

    def run(self) -> dict:
        """Step to the end; returns the summary."""
        while not self.done:
            self._advance()
        return self.summary()

    def advance(self, steps: int) -> int:
        """Up to `steps` backward steps without building record objects (the
        records are in `records` as always); returns how many were taken."""
        taken = 0
        while taken < steps and not self.done:
            self._advance()
            taken += 1
        return taken

    def _advance(self) -> None:
        if self.done:
            raise RunComplete("the backward pass is complete; reset() to start over")
        with np.errstate(all="ignore"):
            step = self._back.step()
            self._record(step)
            if step.k == self.T:
                self._finish()

    # -- the record stage ---------------------------------------------------------

    def _record(self, step: Step) -> None:
        """Record k: the norms, the clip event, the diagnostics, the bound and the status."""
        cols, i, k = self.records.columns, step.k - 1, step.k
        if step.contribution is not None:
            self._param_norm = self._accumulated.norm()
        cols["contribution"][i] = step.contribution if step.contribution is not None else 0.0
        cols["param_norm"][i] = self._param_norm
        self._record_clip(step)
        cols["grad_norm"][i] = step.norm
        cols["ratio"][i] = step.before / self._prev_norm if self._prev_norm > 0 else math.nan
        self._prev_norm = step.norm
        if step.total_c is not None:
            # dL/dc_s in full: the carried path through c_{s+1} plus the path through h_s = o_s tanh(c_s).
            cols["cell_norm"][i] = l2(self.cell.cell_gradient(step.t - 1, step.total, step.total_c), self.N)
        self.records.status[i] = self._status(step.norm, self._param_norm, step.cut)
        if self.gradient_map is not None:
            self.gradient_map.record(k, step.total, step.d_ih)
        self.records.count = self.k = k

    def _record_clip(self, step: Step) -> None:
        """A rule acting during the pass clipped here; or an end rule's measure of
        the gradients so far first crossed its threshold here."""
        rule = self.clip_rule
        if step.factor is not None:
            self.records.set_clip(step.k, ClipEvent(rule.name, step.before, step.norm, step.factor))
            self.clip_count += 1
        elif rule is not None and rule.phase == END and not self._crossed:
            measure = self._param_norm if rule.series == "param_norm" else rule.measure(self.grads, self.params)
            if rule.exceeds(measure):
                self._crossed = True
                self.records.set_clip(step.k, ClipEvent(rule.name, measure, None, None, applied=False))

    # -- what depends on the forward pass only: filled when read -----------------

    @property
    def spectrum(self) -> dict:
        """sigma_max and singular values of W_hh, spectral radius of each gate block."""
        return self.model.spectrum()

    @property
    def bound_factor(self) -> float | None:
        """sigma_max(W_hh) * gamma: the bound's factor per step (None for gated cells)."""
        gamma = self.config.gamma
        return self.model.singular_values()["sigma_max"] * gamma if gamma is not None else None

    @property
    def jacobian(self) -> JacobianSigma:
        """sigma_max of the step Jacobians (exact for small H, an estimate above)."""
        if self._jacobian is None:
            c = self.config
            self._jacobian = JacobianSigma(c.cell_type.recurrent_blocks(self.params["weight_hh_l0"]), c.batch, streams(c.seed)["probe"])
        return self._jacobian

    def _fill_on_read(self, count: int, names) -> None:
        """Records 1..count get these columns of what depends on the forward pass only."""
        for name in names:
            filled = self._filled[name]
            if count <= filled:
                continue
            with np.errstate(all="ignore"):
                {"bound": self._bound_to, "hidden_path": self._hidden_path_to}.get(name, self._transitions_to)(count)
            # the raw array: reading through the columns would fill again
            dict.__getitem__(self.records.columns, name)[filled:count] = self._on_read[name][filled:count]
            self._filled[name] = count

    def _transitions_to(self, count: int) -> None:
        """sigma of each record's transition's Jacobian, its saturation, dead
        units and gate mean. Computed in fixed chunks from transition T down
        (the estimate carries a start vector from chunk to chunk), so the
        numbers do not depend on when they are read."""
        while self._known < count:
            hi = self.T - self._known + 1  # transitions lo..hi-1 are records T-hi+2..T-lo+1
            lo = max(1, hi - self.jacobian.chunk)
            tr = self.cell.transitions(lo, hi)
            done = slice(self.T - hi + 1, self.T - lo + 1)
            for name, values in (
                ("gate_mean", tr.gate_mean),
                ("jacobian_sigma", self.jacobian(tr.e, tr.A)),
                ("saturation", tr.saturation),
                ("dead", tr.dead),
            ):
                self._on_read[name][done] = values[::-1]
            self._known = self.T - lo + 1

    def _bound_to(self, count: int) -> None:
        """Pascanu, Mikolov and Bengio: each Jacobian has norm <= sigma_max(W) * gamma
        (gated cells: no such bound, the column stays NaN)."""
        factor = self.bound_factor if self._carried["bound"] < count else None
        if factor is not None:
            self._carry("bound", count, lambda lo, hi: np.full(hi - lo, factor))

    def _hidden_path_to(self, count: int) -> None:
        """The most a gradient that travelled the hidden path alone could keep:
        each step's Jacobian dh_t/dh_{t-1} has norm <= its jacobian_sigma (the
        largest over the batch), so the start norm carried back by their
        running product bounds what an RNN with these Jacobians would keep.
        For an LSTM this leaves out the cell path (c held), which is what the
        column is for: the contrast with |dL/dc|. For H above EXACT_MAX_H the
        sigmas are estimates that never exceed the truth, so this is an
        estimate too."""
        self._transitions_to(count)
        self._carry("hidden_path", count, lambda lo, hi: self._on_read["jacobian_sigma"][lo:hi])

    def _carry(self, name: str, count: int, factors) -> None:
        """Records up to `count` of column `name`: value_k = factor_k * value_{k-1}
        + the norm of the loss gradient injected at h_{T-k}, value_0 = the start
        norm; a bound on ||dL/dh_{T-k}|| / N when every factor bounds its
        Jacobian's norm (triangle inequality). factors(lo, hi): records lo+1..hi."""
        done = self._carried[name]
        if count <= done:
            return
        column, injection = self._on_read[name], self.trace.injection
        value = column[done - 1] if done else self.start_norm
        for lo in range(done, count, _BLOCK):  # a block at a time: memory bounded whatever T
            hi = min(lo + _BLOCK, count)
            for i, factor in enumerate(factors(lo, hi).tolist(), lo):
                injected = injection.get(self.T - i - 1) if i + 1 < self.T else None
                value = factor * value + (l2(injected, self.N) if injected is not None else 0.0)
                column[i] = value
        self._carried[name] = count

    def _status(self, norm: float, param_norm: float, cut: bool) -> int:
        if not (math.isfinite(norm) and math.isfinite(param_norm)):
            return OVERFLOW
        if cut:
            return TRUNCATED
        start = self.start_norm
        if start > 0 and math.isfinite(start):
            if norm < self.config.vanish_threshold * start:
                return VANISHING
            if norm > self.config.explode_threshold * start:
                return EXPLODING
        return OK

    def _finish(self) -> None:
        """The pass is complete: keep the raw gradients, apply an end-of-pass clip rule."""
        self.grads_raw, self.grads, applied = self._back.finish()
        if applied:
            before, after = global_norm(self.grads_raw), global_norm(self.grads)
            self.records.set_clip(self.T, ClipEvent(self.clip_rule.name, before, after, after / before if before > 0 else math.nan))
            self.clip_count += 1
        self.done = True

    # -- what the run amounts to ---------------------------------------------------

    def mean_growth(self, last: int | None = None, upto: int | None = None) -> float:
        """Geometric mean of the per-step ratios over the last `last` of records
        1..upto (default: all recorded): the observed growth factor per step."""
        k = self.k if upto is None else min(upto, self.k)
        r = self.records.columns["ratio"][:k]
        cut = self.records.status[:k] == TRUNCATED  # a zero made by truncation says nothing of the Jacobians
        if last is not None:
            r, cut = r[-last:], cut[-last:]
        r = r[np.isfinite(r) & ~cut]
        if np.any(r == 0.0):
            return 0.0  # the gradient became exactly zero: a product with a zero factor
        if r.size == 0:
            return math.nan
        return float(np.exp(np.mean(np.log(r))))

    def live(self, upto: int | None = None) -> dict:
        """What a display refreshed several times a second needs: the norm and
        the clip count at record `upto` (default: the last one; O(1) then), and
        the facts behind the verdict: the spectrum, and whether the Jacobian is
        the same matrix at every step (`linear_chain`: then the spectral radius
        decides, where sigma_max * gamma < 1 is only sufficient)."""
        c, sp, gamma = self.config, self.spectrum, self.config.gamma
        product = sp["sigma_max"] * gamma if gamma is not None else None
        k = self.k if upto is None else min(upto, self.k)
        rec = self.records
        clips = self.clip_count if k == self.k else int(np.count_nonzero((rec.clip_mode[:k] > 0) & rec.clip_applied[:k]))
        return {
            "steps_done": k,
            "norm": float(rec.columns["grad_norm"][k - 1]) if k else None,
            "clip_events": clips,
            "spectral_radius": sp["block_radii"][0] if c.gates == 1 else None,
            "sigma_max": sp["sigma_max"],
            "gamma": gamma,
            "sigma_gamma": product,
            "vanishing_guaranteed": (product < 1.0) if product is not None else None,
            "linear_chain": c.cell_type.linear_chain(c.activation, c.leaky_slope),
        }

    def summary(self) -> dict:
        """What the run amounts to so far (complete once `done`)."""
        c, rec = self.config, self.records
        sp = self.spectrum
        facts = self.live()  # the spectrum facts behind the verdict, computed in one place
        k = self.k
        cols = rec.columns
        status = rec.status[:k]

        def first(code: int):
            hits = np.flatnonzero(status == code)
            return int(hits[0]) + 1 if hits.size else None

        growth = self.mean_growth()
        overflow_k = first(OVERFLOW)
        if overflow_k is not None or self.forward_overflow is not None:
            regime = "overflow"
        elif not math.isfinite(growth):
            regime = "undetermined"
        elif growth < 0.99:
            regime = "vanishing"
        elif growth > 1.01:
            regime = "exploding"
        else:
            regime = "stable"
        # The bound grows as (sigma_max * gamma)^k, faster than the gradient it
        # bounds: it can pass the largest double while the gradient is finite.
        bound_gone = np.flatnonzero(np.isinf(cols["bound"][:k]))
        applied = np.flatnonzero((rec.clip_mode[:k] > 0) & rec.clip_applied[:k])
        crossed = np.flatnonzero((rec.clip_mode[:k] > 0) & ~rec.clip_applied[:k])
        grads = self.grads if self.done else None
        return {
            "steps_done": k,
            "done": self.done,
            "loss": self.loss,
            "objective": "sum(h_T)" if not c.has_readout else f"{c.loss} on {c.loss_on}",
            "spectral_radius": facts["spectral_radius"],
            "gate_spectral_radii": dict(zip(c.cell_type.gates, sp["block_radii"])) if c.gates > 1 else None,
            "sigma_max": facts["sigma_max"],
            "singular_values": sp["singular_values"],
            "gamma": facts["gamma"],
            "sigma_gamma": facts["sigma_gamma"],
            "vanishing_guaranteed": facts["vanishing_guaranteed"],
            "linear_chain": facts["linear_chain"],
            "jacobian_sigma_method": self.jacobian.method,
            "start_norm": self.start_norm,
            "final_norm": float(cols["grad_norm"][k - 1]) if k else None,
            "final_cell_norm": float(cols["cell_norm"][k - 1]) if k and self.cell.has_cell_state else None,
            "final_hidden_path": float(cols["hidden_path"][k - 1]) if k and self.cell.has_cell_state else None,
            "mean_growth": growth,
            "regime": regime,
            "first_vanishing_k": first(VANISHING),
            "first_exploding_k": first(EXPLODING),
            "overflow_k": overflow_k,
            "bound_overflow_k": int(bound_gone[0]) + 1 if bound_gone.size else None,
            "forward_overflow_t": self.forward_overflow,
            "clip_events": int(applied.size),
            "clip_steps": [int(j) + 1 for j in applied],
            "clip_crossed_k": int(crossed[0]) + 1 if crossed.size else None,
            "grad_norm_total_raw": global_norm(self.grads_raw) if self.grads_raw is not None else None,
            "grad_norm_total": global_norm(grads) if grads is not None else None,
            "grad_norms": {name: l2(g) for name, g in grads.items()} if grads is not None else None,
        }


__all__ = ["Run", "RunComplete"]
