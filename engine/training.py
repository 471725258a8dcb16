"""The training lab (SPEC section 8): updates, their records, divergence, checkpoints.

    settings = TrainingSettings(task="adding", optimizer="adam", lr=1e-3, updates=2000)
    training = Training(config, settings)   # the model from config (the task fixes D, K and the loss)
    training.step()                         # one update -> UpdateRecord
    training.advance(100)                   # up to 100 updates; returns how many were taken
    training.run()                          # to the end or to a divergence; returns the summary
    training.run_for(u)                     # update u's backward pass as a per-step Run
    suggest_threshold(config, settings)     # Pascanu et al.'s range, from an unclipped warm-up

An update (u = 1..U) is one forward pass on update u's fresh batch, one full
BPTT backward pass (the lean path of engine/backward.py: the same stages as
a recorded Run, weight gradients a chunk of steps per matmul), one clipping
decision with the Config's rule (SPEC 3: `step` acts inside the backward
pass, the others on the finished gradients) and one optimizer step
(engine/optim.py). Parameters theta_n are those after n updates: update u
uses theta_{u-1}.

Records (one row per update, preallocated columns, `UpdateRecords`):
what the batch and the backward pass of update u give (loss, norms, clip,
reach, long_share) and the spectrum are of theta_{u-1}, the parameters the
update used, the same ones `run_for(u)` opens; eval_loss and metric, taken
every `eval_every` updates and at the end, are of theta_u, after the step.

Divergence: the first update whose loss, gradient or new parameters are not
finite gets status `diverged`, its step is not applied, and the run stops:
the model keeps theta_{u-1}, the last finite parameters. Never an exception
or a warning (numpy runs under np.errstate(all="ignore")).

Checkpoints: theta_0, theta_n every `checkpoint_every` updates and the last
finite parameters when the run stops (after a divergence: the ones before
it), each with the optimizer's state. Memory is bounded: at most
`max_checkpoints` regular ones are kept; when one more would be needed, the
spacing doubles and every other one is dropped (evenly thinned), so 100,000
updates with checkpoint_every 100 and max_checkpoints 64 keep 62 spaced 1,600
apart (an rnn of H=128 with adam: ~25 MiB of checkpoints, ~8 MiB of records).
Parameters between checkpoints are made again by replaying at most a
spacing's worth of updates from the one before: each update's batch comes
from its own seed stream, so the replay is the same computation, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from .backward import Backward, StackedGradients
from .clipping import global_norm, make_rule
from .config import MEMORY_LIMIT_BYTES, Config, ConfigError
from .forward import forward
from .model import Model
from .norms import norm as l2
from .optim import OPTIMIZERS, Optimizer, make_optimizer
from .run import Run
from .tasks import TASKS, Task, batch_rng, eval_rng, make_task
from .weights import param_shapes

STATUSES = ("ok", "clipped", "diverged")
OK, CLIPPED, DIVERGED = range(len(STATUSES))
EVAL_CHUNK_FLOATS = 2**22  # forward caches of one evaluation chunk: 32 MiB


# -- settings -----------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One training setting's range: `low`/`high` bounds, open (excluded) where `*_open`."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    help: str = ""

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = "an integer" if self.kind is int else "a number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return f"{kind} {' and '.join(parts)}" if parts else kind


_MAX_UPDATES = 10_000_000
SETTINGS: dict[str, Setting] = {
    "task": Setting(str, choices=tuple(TASKS), help="what the model learns (SPEC 8)"),
    "optimizer": Setting(str, choices=tuple(OPTIMIZERS), help="torch.optim's SGD or Adam"),
    "lr": Setting(float, 0.0, 1e6, low_open=True, help="learning rate"),
    "momentum": Setting(float, 0.0, 1.0, high_open=True, help="sgd momentum (PyTorch's form)"),
    "beta1": Setting(float, 0.0, 1.0, high_open=True, help="adam: decay of the first moment"),
    "beta2": Setting(float, 0.0, 1.0, high_open=True, help="adam: decay of the second moment"),
    "eps": Setting(float, 0.0, 1.0, low_open=True, help="adam: added to the denominator"),
    "updates": Setting(int, 1, _MAX_UPDATES, help="number of updates U"),
    "eval_every": Setting(int, 1, _MAX_UPDATES, help="evaluate the task metric every E updates"),
    "eval_batch": Setting(int, 1, 65536, help="sequences in the fixed evaluation batch"),
    "checkpoint_every": Setting(int, 1, _MAX_UPDATES, help="keep the parameters every C updates"),
    "max_checkpoints": Setting(int, 2, 100_000, help="regular checkpoints kept at most (thinned evenly beyond)"),
    "diagnostics_every": Setting(int, 0, _MAX_UPDATES, help="spectrum and long_share every this many updates (0: never)"),
    "warmup": Setting(int, 1, _MAX_UPDATES, help="updates whose mean gradient norm gives the threshold suggestion"),
    "text": Setting(str, help="text task: the text (empty: the wig sentence)"),
    "window": Setting(int, 0, 1_000_000, help="text task: words per sequence (0: the whole text as one sequence)"),
}


@dataclass(frozen=True)
class TrainingSettings:
    """Everything a training run adds to a Config, validated on construction
    (ConfigError naming the field, one line). Kept apart from Config for now."""

    task: str = "adding"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    updates: int = 1000
    eval_every: int = 10
    eval_batch: int = 256
    checkpoint_every: int = 100
    max_checkpoints: int = 64
    diagnostics_every: int = 10
    warmup: int = 50
    text: str = ""
    window: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            _check(f.name, getattr(self, f.name))
        for name, reason in self.inapplicable():
            raise ConfigError(name, reason)

    def why_not(self, name: str) -> str | None:
        """Why setting `name` does not apply here, or None if it does."""
        takes = OPTIMIZERS[self.optimizer].takes
        if name in ("momentum", "beta1", "beta2", "eps") and name not in takes:
            users = ", ".join(n for n, opt in OPTIMIZERS.items() if name in opt.takes)
            return f"{name} applies to optimizer {users} only ({self.optimizer} takes {', '.join(takes)})"
        if name in ("text", "window") and self.task != "text":
            return f"{name} applies to task text only (task is {self.task})"
        return None

    def inapplicable(self) -> list[tuple[str, str]]:
        """Settings changed from their default that would be silently ignored."""
        default = TrainingSettings.__dataclass_fields__
        return [(n, r) for n in SETTINGS if getattr(self, n) != default[n].default and (r := self.why_not(n))]

    def optimizer_settings(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in OPTIMIZERS[self.optimizer].takes}

    def make_task(self, config: Config) -> Task:
        return make_task(self.task, steps=config.steps, text=self.text, window=self.window)

    def with_overrides(self, **explicit: Any) -> TrainingSettings:
        """A copy with the settings the user gave explicitly, as Config.with_overrides:
        an inherited setting that no longer applies (a preset's text after
        --task adding, its momentum after --optimizer adam) falls back to its
        default; one given explicitly that does not apply is an error."""
        unknown = sorted(set(explicit) - set(SETTINGS))
        if unknown:
            raise ConfigError(unknown[0], f"unknown training setting '{unknown[0]}'")
        values = {**self.to_dict(), **explicit}
        default = TrainingSettings.__dataclass_fields__
        for name in SETTINGS:
            if name in explicit:
                _check(name, explicit[name])
        probe = object.__new__(TrainingSettings)
        for name, value in values.items():
            object.__setattr__(probe, name, value)
        for name in SETTINGS:
            reason = probe.why_not(name)
            if reason and name in explicit:
                raise ConfigError(name, reason)
            if reason:
                values[name] = default[name].default
        return TrainingSettings(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready (what an export carries to make the training again)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingSettings:
        """The settings `to_dict` gave (validated; an unknown key is a ConfigError naming it)."""
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise ConfigError(unknown[0], f"unknown training setting '{unknown[0]}'")
        return cls(**values)

    def check_memory(self, config: Config, task: Task | None = None) -> None:
        """Refuse (ConfigError on `updates`) a training that would need more than
        the memory limit: called before anything is computed. `config` as
        Training uses it (after the task's shapes)."""
        need = self.memory_estimate(config, task)
        if need > MEMORY_LIMIT_BYTES:
            raise ConfigError(
                "updates",
                f"this training needs about {need / 2**30:.1f} GiB ({self.updates:,} updates' records, "
                f"{self.max_checkpoints} checkpoints, T={config.steps} x N={config.batch} x H={config.hidden}); "
                f"the limit is {MEMORY_LIMIT_BYTES / 2**30:.0f} GiB: reduce updates, max_checkpoints or the model",
            )

    def memory_estimate(self, config: Config, task: Task | None = None) -> int:
        """Bytes a training of this Config holds: the records, the checkpoints,
        the evaluation batch and one chunk of its forward pass, one update's
        forward caches. `config` as Training uses it (after the task's shapes)."""
        task = task or self.make_task(config)
        G = config.gates
        param_bytes = 8 * sum(math.prod(s) for s in param_shapes(config).values())
        copies = 1 + OPTIMIZERS[self.optimizer].state_copies(**self.optimizer_settings())
        records = self.updates * UpdateRecords.row_bytes(G)
        checkpoints = (self.max_checkpoints + 2) * copies * param_bytes
        n_eval = task.batch_size or self.eval_batch
        per_sequence = config.steps * (config.cell_type.floats_per_step * config.hidden + config.hidden + task.input_size + task.output_size)
        evaluation = 8 * (n_eval * config.steps * (task.input_size + task.output_size) + min(n_eval * per_sequence, EVAL_CHUNK_FLOATS + per_sequence))
        return records + checkpoints + evaluation + config.memory_estimate() + copies * param_bytes


def _check(name: str, value: Any) -> None:
    spec = SETTINGS[name]
    if spec.kind is str:
        if not isinstance(value, str):
            raise ConfigError(name, f"{name} must be text, got {value!r}")
        if spec.choices and value not in spec.choices:
            raise ConfigError(name, f"{name} must be {spec.describe()}, got {value!r}")
        return
    wrong = isinstance(value, bool) or not isinstance(value, int if spec.kind is int else (int, float))
    if wrong or (spec.kind is float and not math.isfinite(value)):
        raise ConfigError(name, f"{name} must be {spec.describe()}, got {value!r}")
    low, high = spec.low, spec.high
    if (low is not None and (value < low or (spec.low_open and value == low))) or (
        high is not None and (value > high or (spec.high_open and value == high))
    ):
        raise ConfigError(name, f"{name} must be {spec.describe()}, got {value:g}")


# -- records ------------------------------------------------------------------------


# The float columns of length U, in export order.
NUMERIC = (
    "loss",  # the batch's loss at theta_{u-1} (summed over the loss steps, SPEC 7)
    "eval_loss",  # the evaluation batch's loss at theta_u (every eval_every updates, NaN between)
    "metric",  # the task metric on the evaluation batch at theta_u (mse or accuracy)
    "grad_norm_raw",  # global L2 norm of all parameter gradients before clipping
    "grad_norm",  # the same after clipping (what the optimizer got)
    "clip_factor",  # grad_norm / grad_norm_raw when an end-of-pass rule acted, else NaN
    "reach",  # ||dL/dh_0|| / ||dL/dh_T|| (loss on the last step; NaN otherwise)
    "long_share",  # share of the dW_hh contribution norms from records k > T/2 (loss on the last step; every diagnostics_every updates)
)
# Per gate block (G columns): of W_hh at theta_{u-1}, every diagnostics_every updates, NaN between.
BLOCKED = ("spectral_radius", "sigma_max")


@dataclass(frozen=True)
class UpdateRecord:
    u: int
    loss: float
    eval_loss: float
    metric: float
    grad_norm_raw: float
    grad_norm: float
    clipped: bool
    clip_factor: float
    clip_steps: int  # backward steps whose carried gradient a `step` rule rescaled
    spectral_radius: tuple[float, ...]
    sigma_max: tuple[float, ...]
    reach: float
    long_share: float
    status: str


class UpdateRecords:
    """Preallocated columns for updates 1..U; `count` rows are filled."""

    def __init__(self, updates: int, blocks: int):
        self.updates, self.count = updates, 0
        self.columns = {name: np.full(updates, np.nan) for name in NUMERIC}
        self.columns.update({name: np.full((updates, blocks), np.nan) for name in BLOCKED})
        self.clipped = np.zeros(updates, dtype=bool)
        self.evaluated = np.zeros(updates, dtype=bool)  # eval_loss and metric taken after this update
        self.clip_steps = np.zeros(updates, dtype=np.int32)
        self.status = np.zeros(updates, dtype=np.int8)

    @staticmethod
    def row_bytes(blocks: int) -> int:
        return 8 * (len(NUMERIC) + len(BLOCKED) * blocks) + 1 + 1 + 4 + 1

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, u: int) -> UpdateRecord:
        if not 1 <= u <= self.count:
            raise IndexError(f"update {u} not recorded (1..{self.count} recorded)")
        i, cols = u - 1, self.columns
        return UpdateRecord(
            u=u,
            **{name: float(cols[name][i]) for name in NUMERIC},
            **{name: tuple(float(x) for x in cols[name][i]) for name in BLOCKED},
            clipped=bool(self.clipped[i]),
            clip_steps=int(self.clip_steps[i]),
            status=STATUSES[self.status[i]],
        )

    def __iter__(self):
        return (self[u] for u in range(1, self.count + 1))


# -- one update ---------------------------------------------------------------------


class MeasuredGradients(StackedGradients):
    """The lean path's gradients, and, when `contributions` is given, the norm
    of each transition's term in dL/dW_hh (what a Run's `contribution` column
    holds; record k = transition T - k + 1, index k - 1), a chunk at a time:
    ||d^T h||_F^2 = sum((d d^T) * (h h^T)) over the batch's Gram matrices."""

    def __init__(self, params, head_grads, trace, contributions: np.ndarray | None):
        super().__init__(params, head_grads, trace)
        self.contributions = contributions
        self.vector = params["weight_hh_l0"].ndim == 1  # a diagonal recurrence (IndRNN): the term is sum_n d * h

    def _flush(self) -> None:
        n = len(self.steps)
        if self.contributions is not None and n:
            t = np.array(self.steps)
            d = (self.d_hh if self.split else self.d_ih)[:n]
            h = self.trace.cell.h[t - 1]
            if self.vector:
                terms = np.einsum("cnh,cnh->ch", d, h)
                squares = np.einsum("ch,ch->c", terms, terms)
            else:
                squares = np.einsum("cij,cij->c", d @ d.transpose(0, 2, 1), h @ h.transpose(0, 2, 1))
            self.contributions[len(self.trace.inputs) - t] = np.sqrt(np.maximum(squares, 0.0))
        super()._flush()


@dataclass
class Outcome:
    """What one update computed: `new` holds the parameters after the step,
    None when the update diverged before it (`diverged` names what was not finite)."""

    loss: float
    grad_norm_raw: float
    grad_norm: float
    applied: bool  # an end-of-pass rule acted
    clip_steps: int
    reach: float
    raw: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    new: dict[str, np.ndarray] | None
    diverged: str | None


def long_share(contributions: np.ndarray) -> float:
    """Share of the sum of contribution norms from records k > T/2 (more than T/2 steps back)."""
    T = len(contributions)
    total = float(np.sum(contributions))
    if not (math.isfinite(total) and total > 0):
        return math.nan
    return float(np.sum(contributions[T // 2 :])) / total  # index k - 1 >= T // 2  <=>  k > T / 2


# -- checkpoints --------------------------------------------------------------------


@dataclass
class Checkpoint:
    n: int  # updates applied: these are theta_n
    params: dict[str, np.ndarray]
    optimizer: dict
    reasons: set[str] = field(default_factory=set)  # "first", "every", "last", "before divergence"


@dataclass(frozen=True)
class Divergence:
    u: int  # the update that diverged (its step was not applied)
    what: str  # "loss", "gradient" or "parameters"


@dataclass(frozen=True)
class ThresholdSuggestion:
    """Pascanu et al. 2013, 3.2: half to ten times the average gradient norm
    over unclipped warm-up updates still converge. For the `norm` rule."""

    mean: float
    low: float
    high: float
    updates: int  # how many updates the mean is over

    @property
    def threshold(self) -> float:
        """The value to use: the average itself, inside the range."""
        return self.mean


class TrainingComplete(RuntimeError):
    """step() after the last update or a divergence."""


class ReplayError(ValueError):
    """Parameters that cannot be made again: an update on the way diverged."""


class Training:
    def __init__(self, config: Config, settings: TrainingSettings, params: dict[str, np.ndarray] | None = None, task: Task | None = None):
        """config: the model and clipping (its D, K, loss and loss_on are set
        by the task); params: initial parameters (default: drawn from
        config's seed or read from its weights file), copied."""
        self.settings = s = settings
        self.task = task or s.make_task(config)
        self.config = c = self.task.configure(config)
        s.check_memory(c, self.task)
        self.model = Model(c, {k: np.array(v, dtype=np.float64) for k, v in params.items()}) if params is not None else Model.from_config(c)
        self.optimizer = self._optimizer(self.model.params)
        self.rule = make_rule(c.clip, c.clip_threshold)
        self.T, self.N = c.steps, c.batch
        self.records = UpdateRecords(s.updates, c.gates)
        self.u = 0  # updates taken (a diverged one included)
        self.done = False
        self.divergence: Divergence | None = None
        self.last: Outcome | None = None  # the latest update's gradients (raw and clipped)
        self.checkpoints: dict[int, Checkpoint] = {}
        self.checkpoint_every = s.checkpoint_every  # the current spacing (doubles when thinned)
        self._contributions = np.empty(self.T)
        self._eval: tuple[np.ndarray, np.ndarray] | None = None
        self._keep(0, "first")
        self.initial_eval = self.evaluate()  # (loss, metric) at theta_0

    # -- batches ------------------------------------------------------------------

    def batch(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Update u's batch, from its own stream of the seed: (T, N, D) inputs and targets."""
        return self.task.batch(batch_rng(self.config.seed, u), self.N)

    def eval_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The fixed evaluation batch, from the seed's `eval` stream."""
        if self._eval is None:
            self._eval = self.task.batch(eval_rng(self.config.seed), self.task.batch_size or self.settings.eval_batch)
        return self._eval

    # -- updates ------------------------------------------------------------------

    def step(self) -> UpdateRecord:
        """One update; returns its record."""
        self._advance()
        return self.records[self.u]

    def _advance(self) -> None:
        if self.done:
            raise TrainingComplete(f"training is over after update {self.u} ({self.status})")
        u = self.u + 1
        every = self.settings.diagnostics_every
        measure = bool(every) and (u == 1 or u % every == 0)
        # With a loss on every step, record k's terms mix every output's, near and far:
        # "more than T/2 back" has no single origin, so long_share (like reach) is NaN.
        shares = measure and self.config.loss_on == "last"
        i, rec, cols = u - 1, self.records, self.records.columns
        with np.errstate(all="ignore"):
            if measure:
                cols["sigma_max"][i], cols["spectral_radius"][i] = spectrum(self.config, self.model.params["weight_hh_l0"])
                self._contributions[:] = 0.0  # a step truncation has cut adds nothing
            out = self.last = self._update(self.model, self.optimizer, u, self._contributions if shares else None)
            cols["loss"][i] = out.loss
            cols["grad_norm_raw"][i] = out.grad_norm_raw
            cols["grad_norm"][i] = out.grad_norm
            cols["reach"][i] = out.reach
            if shares:
                cols["long_share"][i] = long_share(self._contributions)
            clipped = out.applied or out.clip_steps > 0
            rec.clipped[i] = clipped
            rec.clip_steps[i] = out.clip_steps
            if out.applied and out.grad_norm_raw > 0:
                cols["clip_factor"][i] = out.grad_norm / out.grad_norm_raw
            if out.diverged:
                rec.status[i] = DIVERGED
                self.divergence = Divergence(u, out.diverged)
            else:
                self._commit(self.model, out.new)
                rec.status[i] = CLIPPED if clipped else OK
            self.u = u
            self.done = out.diverged is not None or u == self.settings.updates
            if not out.diverged and u % self.checkpoint_every == 0:
                self._keep(u, "every")
            if self.done or u % self.settings.eval_every == 0:
                cols["eval_loss"][i], cols["metric"][i] = self.evaluate()
                rec.evaluated[i] = True
            if self.done:
                self._keep(self.applied, "before divergence" if self.divergence else "last")
        rec.count = u  # last: a reader never sees a row half written

    def advance(self, updates: int) -> int:
        """Up to `updates` updates (fewer at the end or at a divergence); returns how many."""
        taken = 0
        while taken < updates and not self.done:
            self._advance()
            taken += 1
        return taken

    def run(self) -> dict:
        """Updates to the end or to a divergence; returns the summary."""
        self.advance(self.settings.updates)
        return self.summary()

    @property
    def applied(self) -> int:
        """Updates whose step was applied: the model holds theta_applied."""
        return self.u - (self.divergence is not None)

    @property
    def status(self) -> str:
        return "diverged" if self.divergence else "done" if self.done else "running"

    def _optimizer(self, params) -> Optimizer:
        return make_optimizer(self.settings.optimizer, params, **self.settings.optimizer_settings())

    def _update(self, model: Model, optimizer: Optimizer, u: int, contributions: np.ndarray | None) -> Outcome:
        """Update u on `model` (theta_{u-1}): forward, backward, clip, the
        optimizer's step. The step is returned, not applied (see _commit)."""
        inputs, targets = self.batch(u)
        T, N = self.T, self.N
        with np.errstate(all="ignore"):
            trace = forward(model, inputs, targets)
            back = Backward(model, trace, MeasuredGradients(model.params, trace.head_grads, trace, contributions), self.rule)
            clip_steps = 0
            for _ in range(T):
                last = back.step()
                clip_steps += last.factor is not None
            raw, grads, applied = back.finish()
            norm_raw = global_norm(raw)
            norm = global_norm(grads) if applied or clip_steps else norm_raw
            start = l2(trace.injection[T], N)
            reach = last.norm / start if self.config.loss_on == "last" and start > 0 else math.nan
            loss = trace.loss
            diverged, new = None, None
            if not math.isfinite(loss):
                diverged = "loss"
            elif not (math.isfinite(norm_raw) and math.isfinite(norm)):
                diverged = "gradient"
            else:
                new = optimizer.step(model.params, grads)
                if not all(np.isfinite(p).all() for p in new.values()):
                    diverged, new = "parameters", None
        return Outcome(loss, norm_raw, norm, bool(applied), clip_steps, reach, raw, grads, new, diverged)

    @staticmethod
    def _commit(model: Model, new: dict[str, np.ndarray]) -> None:
        for name, value in new.items():
            model.params[name][...] = value
        model.changed()

    # -- evaluation ---------------------------------------------------------------

    def evaluate(self, params: dict[str, np.ndarray] | None = None) -> tuple[float, float]:
        """(loss, metric) on the fixed evaluation batch, at `params` (default:
        the model's); a forward pass a chunk of sequences at a time."""
        c, task = self.config, self.task
        model = self.model if params is None else Model(c, params)
        inputs, targets = self.eval_batch()
        n = inputs.shape[1]
        per_sequence = c.steps * (c.cell_type.floats_per_step * c.hidden + c.hidden + task.input_size + task.output_size)
        chunk = max(1, EVAL_CHUNK_FLOATS // per_sequence)
        steps = np.arange(1, c.steps + 1) if c.loss_on == "all" else np.array([c.steps])
        V, b = model.params["head.weight"], model.params["head.bias"]
        loss = metric = 0.0
        with np.errstate(all="ignore"):
            for lo in range(0, n, chunk):
                x, y = inputs[:, lo : lo + chunk], targets[:, lo : lo + chunk]
                share = x.shape[1] / n
                trace = forward(model, x, y)
                out = trace.cell.h[steps] @ V.T + b
                loss += share * trace.loss
                metric += share * task.metric(out, y[steps - 1])
        return float(loss), float(metric)

    # -- checkpoints and the per-step view ------------------------------------------

    def _keep(self, n: int, reason: str) -> None:
        kept = self.checkpoints.get(n)
        if kept is None:
            kept = self.checkpoints[n] = Checkpoint(n, {k: v.copy() for k, v in self.model.params.items()}, self.optimizer.state())
        kept.reasons.add(reason)
        if reason == "every":
            self._thin()

    def _thin(self) -> None:
        """At most max_checkpoints regular ones: double the spacing, keep every other."""
        regular = [n for n, ck in self.checkpoints.items() if ck.reasons == {"every"}]
        while len(regular) > self.settings.max_checkpoints:
            self.checkpoint_every *= 2
            for n in regular:
                if n % self.checkpoint_every:
                    del self.checkpoints[n]
            regular = [n for n in regular if n in self.checkpoints]

    def params_at(self, n: int) -> dict[str, np.ndarray]:
        """theta_n (a copy), 0 <= n <= applied: kept, current, or replayed from the checkpoint before."""
        if not 0 <= n <= self.applied:
            raise IndexError(f"parameters after {n} updates are not available (0..{self.applied})")
        if n == self.applied:
            return {k: v.copy() for k, v in self.model.params.items()}
        return self.replay(self.checkpoints[max(k for k in self.checkpoints if k <= n)], n)

    def replay(self, base: Checkpoint, n: int, progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
        """theta_n made again from checkpoint `base` (base.n <= n): updates
        base.n + 1..n on their own batches, bit for bit what they gave.
        progress(done, total) after each update; a ReplayError if one of them
        diverges (a checkpoint that is not this training's)."""
        model = Model(self.config, {k: np.array(v, dtype=np.float64) for k, v in base.params.items()})
        optimizer = self._optimizer(model.params)
        optimizer.load(base.optimizer)
        for u in range(base.n + 1, n + 1):
            out = self._update(model, optimizer, u, None)
            if out.new is None:
                raise ReplayError(f"update {u} diverged ({out.diverged} not finite) while making theta_{n} again from the checkpoint at {base.n}")
            self._commit(model, out.new)
            if progress is not None:
                progress(u - base.n, n - base.n)
        return model.params

    def run_for(self, u: int) -> Run:
        """Update u's backward pass, to step one timestep at a time: a Run on
        theta_{u-1} and update u's batch (1 <= u <= updates taken, a diverged one included)."""
        if not 1 <= u <= self.u:
            raise IndexError(f"update {u} has not been taken (1..{self.u})")
        inputs, targets = self.batch(u)
        return Run(self.config, self.params_at(u - 1), inputs, targets)

    # -- what the training amounts to ----------------------------------------------

    def suggestion(self) -> ThresholdSuggestion | None:
        """The threshold range from the warm-up's unclipped updates with a finite norm, or None."""
        k = min(self.settings.warmup, self.u)
        norms = self.records.columns["grad_norm_raw"][:k]
        use = norms[(self.records.status[:k] == OK) & np.isfinite(norms)]
        if not use.size:
            return None
        mean = float(np.mean(use))
        return ThresholdSuggestion(mean, 0.5 * mean, 10.0 * mean, int(use.size))

    def summary(self, upto: int | None = None, suggestion: ThresholdSuggestion | None = None) -> dict:
        """What the training amounts to after `upto` updates (default: all
        taken). A reader on another thread passes `records.count`, which
        the worker sets last, for a consistent snapshot. `suggestion`: the
        threshold range to give instead of this training's own (a clipped
        training's warm-up is partly clipped: suggest_threshold's)."""
        rec, cols = self.records, self.records.columns
        u = self.u if upto is None else max(0, min(upto, rec.count))
        latest = u == self.u
        divergence = self.divergence if latest else None
        evaluated = np.flatnonzero(rec.evaluated[:u])
        last_eval = int(evaluated[-1]) + 1 if evaluated.size else None
        finite = evaluated[np.isfinite(cols["eval_loss"][evaluated])]
        last_finite = int(finite[-1]) + 1 if finite.size else None
        suggestion = suggestion or (self.suggestion() if latest else None)
        clipped = np.flatnonzero(rec.clipped[:u])
        norms = cols["grad_norm_raw"][:u]
        norms = norms[np.isfinite(norms)]
        return {
            "updates_done": u,
            "updates_applied": u - (divergence is not None),
            "status": self.status if latest else "running",
            "diverged_at": divergence.u if divergence else None,
            "diverged_on": divergence.what if divergence else None,
            "task": self.task.name,
            "metric_name": self.task.metric_name,
            "baseline_loss": self.task.baseline_loss,
            "baseline_metric": self.task.baseline_metric,
            "initial_eval_loss": self.initial_eval[0],
            "initial_metric": self.initial_eval[1],
            "final_loss": float(cols["loss"][u - 1]) if u else None,
            "final_eval_loss": float(cols["eval_loss"][last_eval - 1]) if last_eval else None,
            "final_metric": float(cols["metric"][last_eval - 1]) if last_eval else None,
            "last_eval_u": last_eval,
            "last_finite_eval_u": last_finite,  # after a divergence the last evaluation may not be finite
            "last_finite_eval_loss": float(cols["eval_loss"][last_finite - 1]) if last_finite else None,
            "last_finite_metric": float(cols["metric"][last_finite - 1]) if last_finite else None,
            "clip_events": int(clipped.size),
            "first_clip_u": int(clipped[0]) + 1 if clipped.size else None,
            "max_grad_norm_raw": float(norms.max()) if norms.size else None,  # the largest finite one
            "median_reach": _median(cols["reach"][:u]),  # over the updates with a finite value
            "median_long_share": _median(cols["long_share"][:u]),
            "suggestion": None if suggestion is None else {"low": suggestion.low, "mean": suggestion.mean, "high": suggestion.high, "updates": suggestion.updates},
            "checkpoints": sorted(n for n in self.checkpoints if n <= u),
        }


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def spectrum(config: Config, W_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sigma_max and the spectral radius of each gate block of W_hh (G,), NaN if not finite."""
    blocks = config.cell_type.recurrent_blocks(W_hh)
    if not np.all(np.isfinite(blocks)):
        return np.full(len(blocks), np.nan), np.full(len(blocks), np.nan)
    sigma = np.linalg.svd(blocks, compute_uv=False)[:, 0]
    radius = np.max(np.abs(np.linalg.eigvals(blocks)), axis=1)
    return sigma, radius


def replay_update(
    config: Config, settings: TrainingSettings, u: int, start: Checkpoint | None = None, progress: Callable[[int, int], None] | None = None
) -> Run:
    """Update u's backward pass made again without the training's records
    (from an export: its config, settings and seed, and optionally a
    checkpoint): theta_{u-1} replayed from `start` (default theta_0 from the
    seed) and update u's batch; the Run `Training.run_for(u)` gives, bit for
    bit. ReplayError if an update before u diverges."""
    if u < 1:
        raise ReplayError(f"updates are numbered from 1, got {u}")
    if start is not None and not 0 <= start.n < u:
        raise ReplayError(f"the checkpoint after {start.n} updates cannot start update {u} (it must be before it)")
    training = Training(config, settings)
    params = training.replay(start or training.checkpoints[0], u - 1, progress)
    inputs, targets = training.batch(u)
    return Run(training.config, params, inputs, targets)


def suggest_threshold(config: Config, settings: TrainingSettings, params: dict[str, np.ndarray] | None = None) -> ThresholdSuggestion | None:
    """The threshold range for norm clipping: `settings.warmup` updates of the
    same training (same seed, data and initial weights) without clipping."""
    warm = replace(settings, updates=settings.warmup, eval_every=settings.warmup, diagnostics_every=0)
    training = Training(config.with_overrides(clip="none"), warm, params)
    training.run()
    return training.suggestion()


__all__ = [
    "BLOCKED",
    "NUMERIC",
    "SETTINGS",
    "STATUSES",
    "Checkpoint",
    "Divergence",
    "Outcome",
    "ReplayError",
    "ThresholdSuggestion",
    "Training",
    "TrainingComplete",
    "TrainingSettings",
    "UpdateRecord",
    "UpdateRecords",
    "long_share",
    "replay_update",
    "spectrum",
    "suggest_threshold",
]
