"""What a training task is (SPEC section 8), and the seed streams it draws from.

A task fixes the readout's shape and loss, makes batches, and knows its
metric and the baseline a model that learned nothing reaches:

    task.configure(config)        # the Config with D, K, loss and loss_on the task needs
    task.batch(rng, n)            # inputs (T, n, D), targets (T, n, K) or (T, n)
    task.metric(y, targets)       # y: (S, n, K) readout at the loss steps; a batch mean
    task.baseline_loss            # the loss (summed over the loss steps) of the no-learning predictor
    task.baseline_metric          # the metric of the same predictor

Streams (engine/seeding.py): update u's batch comes from its own
generator, child u of the seed's `train` stream, so any update's batch can
be made again without replaying the ones before it; the evaluation batch
comes from the `eval` stream. Both are independent of the `weights` stream:
two runs that differ only in a remedy (clipping, cell, init) see the same
data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from typing import ClassVar

import numpy as np

from ..config import Config, ConfigError
from ..seeding import sequence


def batch_rng(seed: int, u: int) -> np.random.Generator:
    """The generator of update u's batch (u = 1..U)."""
    return np.random.default_rng(sequence(seed, "train", u))


def eval_rng(seed: int) -> np.random.Generator:
    """The generator of the fixed evaluation batch."""
    return np.random.default_rng(sequence(seed, "eval"))


class Task(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    loss: ClassVar[str]  # "mse" or "xent" (SPEC 7)
    loss_on: ClassVar[str]  # "last" or "all"
    metric_name: ClassVar[str]  # "mse" or "accuracy"
    higher_is_better: ClassVar[bool]
    baseline_label: ClassVar[str] = "no learning"  # what reaches the baseline, in words
    input_size: int
    output_size: int
    steps: int

    @property
    @abstractmethod
    def baseline_loss(self) -> float: ...

    @property
    @abstractmethod
    def baseline_metric(self) -> float: ...

    def configure(self, config: Config) -> Config:
        """The run's Config with the shapes and loss this task fixes (a text
        the Config held for a per-step run gives way: `without_text`)."""
        if config.mode != "bptt":
            raise ConfigError("mode", f"training needs mode bptt (a loss on a readout), got mode {config.mode!r}")
        return without_text(config).with_overrides(input_size=self.input_size, output_size=self.output_size, loss=self.loss, loss_on=self.loss_on)

    def check_given(self, explicit: dict, configured: Config) -> None:
        """Refuse a Config setting given explicitly that this task overrides
        (D, K, the loss; a text's T and N) or ignores (the random inputs'
        scale): never silently dropped. `configured`: what configure() gave."""
        if "input_scale" in explicit:
            raise ConfigError("input_scale", f"input_scale does not apply to training: the task {self.name} makes the inputs")
        for name, value in explicit.items():
            if name in SETTABLE:
                continue
            if getattr(configured, name) != value:
                raise ConfigError(name, f"{name} is set by the task {self.name} ({name} = {getattr(configured, name)!r}), got {value!r}")

    @property
    def batch_size(self) -> int | None:
        """A batch size the task fixes (one text), or None: the Config's."""
        return None

    @abstractmethod
    def batch(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n sequences: inputs (T, n, D) and targets ((T, n, K) for mse, (T, n) class ids for xent)."""

    @abstractmethod
    def metric(self, y: np.ndarray, targets: np.ndarray) -> float:
        """The metric of readouts y (S, n, K) at the loss steps against their targets, averaged over the batch."""


# Settings whose given value a configured Config may hold differently without overriding it.
SETTABLE = ("weights", "clip_threshold")

# What a Config's text fixes (Config._apply_text), back to the defaults when the text goes.
TEXT_FIXES = ("steps", "batch", "input_size", "output_size", "loss")


def without_text(config: Config) -> Config:
    """The Config's model without its text: the sizes the text fixed (T, N,
    D, K, the loss) go back to their defaults. A Config without a text as it is."""
    if not config.text:
        return config
    default = Config.__dataclass_fields__
    return replace(config, text="", **{name: default[name].default for name in TEXT_FIXES})


def accuracy(y: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of (step, sequence) pairs whose largest output is the target class."""
    return float(np.mean(np.argmax(y, axis=-1) == targets))


def mean_squared_error(y: np.ndarray, targets: np.ndarray) -> float:
    """Mean over the batch and output dims of (y - target)^2, summed over the steps (the mse loss)."""
    _, n, K = y.shape
    diff = y - targets
    return float(np.sum(diff * diff) / (n * K))


def entropy(counts: np.ndarray) -> float:
    """-sum p ln p of the distribution with these counts, in nats."""
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p))) if p.size > 1 else 0.0


def needs(name: str, steps: int, least: int, why: str) -> None:
    if steps < least:
        raise ConfigError("steps", f"task {name} needs steps >= {least} ({why}), got {steps}")


__all__ = ["TEXT_FIXES", "Task", "accuracy", "batch_rng", "entropy", "eval_rng", "mean_squared_error", "needs", "without_text"]
