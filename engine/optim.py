"""Optimizers that follow `torch.optim` (SPEC section 8), one step per update.

    opt = make_optimizer("adam", params, lr=1e-3)
    new = opt.step(params, grads)     # the parameters after the step; `params` untouched
    opt.state() / opt.load(state)     # for checkpoints

`step` returns the new values and leaves applying them to the caller, which
first checks them (a non-finite parameter is a divergence, and the last
finite parameters are kept). The optimizer's own state (momentum buffer,
moments, step count) does advance: after a divergence the run stops.

The update order and every operation are transcribed from PyTorch's
single-tensor paths (torch/optim/sgd.py `_single_tensor_sgd`,
torch/optim/adam.py `_single_tensor_adam`, the ones taken for CPU
tensors), with weight decay 0, dampening 0, no nesterov, no amsgrad, not
maximizing. PyTorch's kernels may fuse a multiply and an add (lerp,
add with alpha), so the two agree to round-off, not bit for bit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np


class Optimizer(ABC):
    name: ClassVar[str]
    takes: ClassVar[tuple[str, ...]]  # the training settings it is built from (TrainingSettings field names)

    def __init__(self, params: dict[str, np.ndarray], lr: float):
        self.lr = lr
        self.names = tuple(params)

    @abstractmethod
    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The parameters after one step on these gradients (new arrays)."""

    @abstractmethod
    def state(self) -> dict:
        """A copy of everything the next steps depend on."""

    @abstractmethod
    def load(self, state: dict) -> None:
        """Continue from a state given by `state()` (copied in)."""

    @classmethod
    def state_copies(cls, **settings: float) -> int:
        """How many arrays the size of the parameters `state()` holds (for memory estimates)."""
        return 0


class SGD(Optimizer):
    """torch.optim.SGD(lr, momentum): buf = grad on the first step, then
    buf = momentum * buf + grad; p = p - lr * buf (p - lr * grad without momentum)."""

    name = "sgd"
    takes = ("lr", "momentum")

    def __init__(self, params, lr: float, momentum: float = 0.0):
        super().__init__(params, lr)
        self.momentum = momentum
        self.buffers: dict[str, np.ndarray] | None = None  # None until the first step, as torch's

    def step(self, params, grads):
        if self.momentum == 0.0:
            return {name: params[name] + (-self.lr) * grads[name] for name in self.names}
        if self.buffers is None:
            self.buffers = {name: grads[name].copy() for name in self.names}
        else:
            for name, buf in self.buffers.items():
                buf *= self.momentum
                buf += grads[name]
        return {name: params[name] + (-self.lr) * self.buffers[name] for name in self.names}

    def state(self):
        return {"buffers": None if self.buffers is None else {n: b.copy() for n, b in self.buffers.items()}}

    def load(self, state):
        buffers = state["buffers"]
        self.buffers = None if buffers is None else {n: b.copy() for n, b in buffers.items()}

    @classmethod
    def state_copies(cls, momentum: float = 0.0, **_unused) -> int:
        return 1 if momentum else 0


class Adam(Optimizer):
    """torch.optim.Adam(lr, betas, eps), per parameter, step count s:

        m = m + (1 - beta1) (g - m)                 (torch's lerp, weight < 0.5)
        v = beta2 v + ((1 - beta2) g) g             (torch's mul_, addcmul_)
        denom = sqrt(v) / sqrt(1 - beta2^s) + eps
        p = p + (-lr / (1 - beta1^s)) m / denom
    """

    name = "adam"
    takes = ("lr", "beta1", "beta2", "eps")

    def __init__(self, params, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(params, lr)
        self.beta1, self.beta2 = beta1, beta2
        self.eps = eps
        self.count = 0
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, params, grads):
        self.count += 1
        b1, b2 = self.beta1, self.beta2
        step_size = self.lr / (1 - b1**self.count)
        correction2_sqrt = (1 - b2**self.count) ** 0.5
        out = {}
        for name in self.names:
            g, m, v = grads[name], self.m[name], self.v[name]
            m += (1 - b1) * (g - m)
            v *= b2
            v += ((1 - b2) * g) * g  # torch's addcmul: (value * g) * g
            denom = np.sqrt(v) / correction2_sqrt
            denom += self.eps
            out[name] = params[name] + ((-step_size) * m) / denom
        return out

    def state(self):
        return {"count": self.count, "m": {n: a.copy() for n, a in self.m.items()}, "v": {n: a.copy() for n, a in self.v.items()}}

    def load(self, state):
        self.count = state["count"]
        self.m = {n: a.copy() for n, a in state["m"].items()}
        self.v = {n: a.copy() for n, a in state["v"].items()}

    @classmethod
    def state_copies(cls, **_unused) -> int:
        return 2  # m and v


OPTIMIZERS: dict[str, type[Optimizer]] = {opt.name: opt for opt in (SGD, Adam)}


def make_optimizer(name: str, params: dict[str, np.ndarray], **settings: float) -> Optimizer:
    """The optimizer called `name` over these parameters, from the settings it
    `takes` (others are ignored; values validated by the caller)."""
    cls = OPTIMIZERS[name]
    return cls(params, **{key: settings[key] for key in cls.takes if key in settings})


__all__ = ["OPTIMIZERS", "SGD", "Adam", "Optimizer", "make_optimizer"]
