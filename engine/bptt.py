"""Backpropagation through time, one timestep at a time.

    run = Run(config)          # builds the parameters and runs the forward pass
    record = run.step()        # applies one Jacobian: record k = dL/dh_{T-k}
    run.run()                  # steps to the end, returns the summary
    run.reset()                # starts the backward pass over (same bits)

After the last step `grads` (after clipping), `grads_raw` (before) and
`summary()` are complete. Numeric blow-ups never raise or warn: every numpy
call that may overflow runs under `np.errstate(all="ignore")` and a
non-finite gradient becomes status `overflow`.

Truncated BPTT follows SPEC section 5: each output's gradient travels at most
`truncate` Jacobians back. With a loss on every step the outputs' gradients
are carried separately in a window of truncate + 1 slots (each output leaves
the window when its age exceeds `truncate`); otherwise a single gradient is
carried and cut after `truncate` steps.
"""

from __future__ import annotations

import math

import numpy as np

from .cells import CELLS
from .clipping import DURING, END, global_norm, make_rule
from .config import Config
from .data import make_data
from .diagnostics import JacobianSigma, weight_spectrum
from .losses import loss_and_grad
from .norms import joint_norm
from .norms import norm as l2
from .records import STATUSES, ClipEvent, Records
from .seeding import streams
from .weights import check_params, init_params, load_npz, param_shapes

OK, VANISHING, EXPLODING, OVERFLOW, TRUNCATED = range(len(STATUSES))


class RunComplete(RuntimeError):
    """step() after the last backward step."""


class Run:
    def __init__(
        self,
        config: Config,
        params: dict[str, np.ndarray] | None = None,
        inputs: np.ndarray | None = None,
        targets: np.ndarray | None = None,
    ):
        self.config = c = config
        if params is not None:
            self.params = check_params(params, param_shapes(c))
        elif c.weights:
            self.params = load_npz(c.weights, c)
        else:
            self.params = init_params(c)
        if inputs is None:
            inputs, targets = make_data(c)
        self.inputs, self.targets = np.asarray(inputs, dtype=np.float64), targets
        self.T, self.N, self.H = c.steps, c.batch, c.hidden
        self.cell = CELLS[c.cell](self.params, c.activation, c.leaky_slope, c.gamma or 1.0)
        with np.errstate(all="ignore"):
            self.cell.forward(self.inputs)
            self._readout()
        self.forward_overflow = _first_nonfinite(self.cell.h)
        self.spectrum = weight_spectrum(self.params["weight_hh_l0"], c.gates)
        self.jacobian = JacobianSigma(self.params["weight_hh_l0"], c.gates, c.batch, streams(c.seed)["probe"])
        # What the records show about each transition (sigma of its Jacobian,
        # saturation, gate mean) depends on the forward pass only: filled a chunk
        # at a time just ahead of the backward step that records it, kept across reset().
        self._sigma, self._saturation, self._gate = (np.full(self.T, np.nan) for _ in range(3))
        self._known_from = self.T + 1  # transitions >= this are filled
        gamma = c.gamma
        self.bound_factor = self.spectrum["sigma_max"] * gamma if gamma is not None else None
        self.clip_rule = make_rule(c.clip, c.clip_threshold)
        self.window = bool(c.truncate) and c.has_readout and c.loss_on == "all"
        # Ages run from 0 to T, so truncate >= T cuts nothing: cap the window there.
        self.window_size = min(c.truncate, self.T) + 1
        self.reset()

    # -- forward side -----------------------------------------------------------

    def _readout(self) -> None:
        """The loss and its gradient dL/dh_t at each step that carries a loss.

        chain: the implied objective L = sum(h_T), so dL/dh_T = ones (SPEC 7).
        bptt:  y_t = h_t W^T + b on the last step or on all steps.
        """
        c, h = self.config, self.cell.h
        T = c.steps
        self.injection = {}  # t -> dL/dh_t from the loss at step t, (N, H)
        self.head_grads = {}
        if not c.has_readout:
            self.loss = float(np.sum(h[T]))
            self.injection[T] = np.ones_like(h[T])
            return
        V, b = self.params["head.weight"], self.params["head.bias"]
        steps = np.arange(1, T + 1) if c.loss_on == "all" else np.array([T])
        hs = h[steps]  # (S, N, H)
        y = hs @ V.T + b
        self.loss, dy = loss_and_grad(c.loss, y, self.targets[steps - 1])
        dh = dy @ V
        for i, t in enumerate(steps):
            self.injection[int(t)] = dh[i]
        self.head_grads = {
            "head.weight": np.einsum("snk,snh->kh", dy, hs),
            "head.bias": dy.sum(axis=(0, 1)),
        }

    # -- the backward pass --------------------------------------------------------

    def reset(self) -> None:
        """Start the backward pass over; the forward pass is kept."""
        self.k = 0
        self.done = False
        self.records = Records(self.T)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.grads.update({name: g.copy() for name, g in self.head_grads.items()})
        self.grads_raw = None
        self._term = np.empty_like(self.params["weight_hh_l0"])
        self._head_norms = [l2(g) for g in self.head_grads.values()]
        seed = self.injection[self.T]
        with np.errstate(all="ignore"):
            self.start_norm = l2(seed, self.N)
        if self.window:
            self.slots = np.zeros((self.window_size, self.N, self.H))
            self.slots[self.T % self.window_size] = seed
            self.carried = None
        else:
            self.carried = seed.copy()
        self.carried_c = np.zeros((self.N, self.H)) if self.cell.has_cell_state else None
        if self.window and self.carried_c is not None:
            self.slots_c = np.zeros_like(self.slots)
        self._prev_norm = self.start_norm
        self._bound = self.start_norm
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
            self._step()
            if self.k == self.T:
                self._finish()

    def _step(self) -> None:
        c, cell, rec = self.config, self.cell, self.records
        k = self.k + 1
        t = self.T - k + 1  # transition t maps h[t-1] to h[t]
        s = t - 1  # this record is dL/dh_s
        i = k - 1
        x_prev, h_prev = self.inputs[t - 1], cell.h[t - 1]

        cols = rec.columns
        if not self.window and c.truncate and k > c.truncate + 1:
            # Truncation cut the carried gradient to zero a step ago: nothing flows any more.
            dh = np.zeros_like(self.carried)
            dc = None if self.carried_c is None else np.zeros_like(self.carried_c)
            cols["contribution"][i] = 0.0
            param_norm = self._param_norm
        else:
            # Jacobian dh_t/dh_{t-1}: push the carried gradient(s) through it.
            if self.window:
                dh, dc, d_ih, d_hh = cell.propagate(t, self.slots, self.slots_c if cell.has_cell_state else None)
                d_ih, d_hh = d_ih.sum(axis=0), d_hh.sum(axis=0)
            else:
                dh, dc, d_ih, d_hh = cell.propagate(t, self.carried, self.carried_c)

            # This step's terms of the parameter gradients (SPEC section 1: dW += delta^T h_{t-1}).
            g = self.grads
            np.matmul(d_hh.T, h_prev, out=self._term)
            g["weight_hh_l0"] += self._term
            g["weight_ih_l0"] += d_ih.T @ x_prev
            g["bias_ih_l0"] += d_ih.sum(axis=0)
            g["bias_hh_l0"] += d_hh.sum(axis=0)
            cols["contribution"][i] = l2(self._term)
            param_norm = joint_norm(self._head_norms + [l2(g[n]) for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")])
        cols["param_norm"][i] = self._param_norm = param_norm

        # The gradient with respect to h_s: carried part plus the loss at step s.
        cut = bool(c.truncate) and k > c.truncate
        inject = self.injection.get(s) if s >= 1 else None
        if self.window:
            slot = s % self.window_size  # the output leaving the window (age truncate + 1) shares it
            dh[slot] = inject if inject is not None else 0.0
            if dc is not None:
                dc[slot] = 0.0
                self.slots_c = dc
            self.slots = dh
            total, total_c = dh.sum(axis=0), (dc.sum(axis=0) if dc is not None else None)
        else:
            if cut:
                dh = np.zeros_like(dh)
                dc = None if dc is None else np.zeros_like(dc)
            if inject is not None:
                dh = dh + inject
            self.carried, self.carried_c = dh, dc
            total, total_c = dh, dc
        norm = l2(total, self.N)

        # Derivative clipping: rescale the carried gradient as the pass runs.
        before = norm
        rule = self.clip_rule
        if rule is not None and rule.phase == DURING:
            factor = rule.factor(norm)
            if factor is not None:
                if self.window:
                    self.slots *= factor
                    total = total * factor
                else:
                    self.carried *= factor  # `total` is this same array
                norm = norm * factor
                rec.set_clip(k, ClipEvent(rule.name, before, norm, factor))
                self.clip_count += 1
        elif rule is not None and not self._crossed:
            # An end-of-pass rule: mark where the gradients so far first cross its threshold.
            measure = param_norm if rule.series == "param_norm" else rule.measure(self.grads, self.params)
            if rule.exceeds(measure):
                self._crossed = True
                rec.set_clip(k, ClipEvent(rule.name, measure, None, None, applied=False))

        cols["grad_norm"][i] = norm
        cols["ratio"][i] = before / self._prev_norm if self._prev_norm > 0 else math.nan
        self._prev_norm = norm
        if total_c is not None:
            # dL/dc_s in full: the carried path through c_{s+1} plus the path through h_s = o_s tanh(c_s).
            cols["cell_norm"][i] = l2(cell.cell_gradient(s, total, total_c), self.N)
        if t < self._known_from:
            self._describe_transitions(max(1, t - self.jacobian.chunk + 1), t + 1)
        cols["gate_mean"][i] = self._gate[t - 1]
        cols["jacobian_sigma"][i] = self._sigma[t - 1]
        cols["saturation"][i] = self._saturation[t - 1]
        if self.bound_factor is not None:
            # Pascanu, Mikolov and Bengio: each Jacobian has norm <= sigma_max(W) * gamma;
            # a loss at step s adds its own gradient (triangle inequality).
            self._bound = self.bound_factor * self._bound
            if inject is not None:
                self._bound += l2(inject, self.N)
            cols["bound"][i] = self._bound
        rec.status[i] = self._status(norm, param_norm, cut)
        rec.count = self.k = k

    def _describe_transitions(self, lo: int, hi: int) -> None:
        """Fill sigma, saturation and gate means of transitions lo..hi-1."""
        e, A, saturation, gate = self.cell.transitions(lo, hi)
        k = slice(lo - 1, hi - 1)
        self._sigma[k] = self.jacobian(e, A)
        self._saturation[k] = saturation
        self._gate[k] = gate
        self._known_from = lo

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
        rule = self.clip_rule
        self.grads_raw = {name: g.copy() for name, g in self.grads.items()}
        before = global_norm(self.grads)
        applied = rule is not None and rule.phase == END and rule.apply(self.grads, self.params)
        if applied:
            after = global_norm(self.grads)
            self.records.set_clip(self.T, ClipEvent(rule.name, before, after, after / before if before > 0 else math.nan))
            self.clip_count += 1
        self.done = True

    # -- what the run amounts to ---------------------------------------------------

    def mean_growth(self, last: int | None = None) -> float:
        """Geometric mean of the per-step ratios over the last `last` recorded
        steps (all when None): the observed growth factor per step."""
        r = self.records.columns["ratio"][: self.k]
        cut = self.records.status[: self.k] == TRUNCATED  # a zero made by truncation says nothing of the Jacobians
        if last is not None:
            r, cut = r[-last:], cut[-last:]
        r = r[np.isfinite(r) & ~cut]
        if np.any(r == 0.0):
            return 0.0  # the gradient became exactly zero: a product with a zero factor
        if r.size == 0:
            return math.nan
        return float(np.exp(np.mean(np.log(r))))

    def live(self) -> dict:
        """What a display refreshed several times a second needs, in O(1): the
        current norm, clip count, and the spectrum facts behind the verdict."""
        c, sp, gamma = self.config, self.spectrum, self.config.gamma
        product = sp["sigma_max"] * gamma if gamma is not None else None
        return {
            "steps_done": self.k,
            "norm": float(self.records.columns["grad_norm"][self.k - 1]) if self.k else None,
            "clip_events": self.clip_count,
            "spectral_radius": sp["block_radii"][0] if c.cell == "rnn" else None,
            "sigma_max": sp["sigma_max"],
            "gamma": gamma,
            "sigma_gamma": product,
            "vanishing_guaranteed": (product < 1.0) if product is not None else None,
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
            "gate_spectral_radii": dict(zip(_gate_names(c.cell), sp["block_radii"])) if c.cell != "rnn" else None,
            "sigma_max": facts["sigma_max"],
            "singular_values": sp["singular_values"],
            "gamma": facts["gamma"],
            "sigma_gamma": facts["sigma_gamma"],
            "vanishing_guaranteed": facts["vanishing_guaranteed"],
            "jacobian_sigma_method": self.jacobian.method,
            "start_norm": self.start_norm,
            "final_norm": float(cols["grad_norm"][k - 1]) if k else None,
            "final_cell_norm": float(cols["cell_norm"][k - 1]) if k and self.cell.has_cell_state else None,
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


def _gate_names(cell: str) -> tuple[str, ...]:
    return {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}.get(cell, ("h",))


def _first_nonfinite(h: np.ndarray) -> int | None:
    """First time index t whose state h[t] is not finite (forward overflow)."""
    bad = ~np.isfinite(h.reshape(h.shape[0], -1)).all(axis=1)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


__all__ = ["Run", "RunComplete"]
