"""Vanilla RNN: h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""

from __future__ import annotations

import numpy as np

from ..activations import activate_inplace, derivative, has_dead_zone, is_linear
from ..activations import gamma as activation_gamma
from .base import SATURATED, Cell, Transitions


class RNNCell(Cell):
    """Forward cache: h (T+1, N, H); for the sigmoid also q (T, N, H), q[t-1] = 1 - h_t
    = sigmoid(-net_t) to full relative precision. f'(net_t) is recomputed from
    h_t (and q) when needed."""

    name = "rnn"
    gates = ("h",)
    uses_activation = True
    floats_per_step = 2

    @classmethod
    def gamma(cls, activation: str) -> float:
        return activation_gamma(activation)

    @classmethod
    def counts_dead(cls, activation: str, slope: float) -> bool:
        return has_dead_zone(activation, slope)

    @classmethod
    def linear_chain(cls, activation: str, slope: float) -> bool:
        return is_linear(activation, slope)

    def __init__(self, params: dict[str, np.ndarray], activation: str, slope: float, gamma: float):
        self.W_ih = params["weight_ih_l0"]
        self.W_hh = params["weight_hh_l0"]
        self.b = params["bias_ih_l0"] + params["bias_hh_l0"]
        self.activation, self.slope, self.gamma = activation, slope, gamma

    def forward(self, x: np.ndarray) -> None:
        """x: (T, N, D). Fills self.h; h[t+1] = f(x[t] W_ih^T + b + h[t] W_hh^T)."""
        T, N, _ = x.shape
        H = self.W_ih.shape[0]
        h = self.h = np.empty((T + 1, N, H))
        h[0] = 0.0
        q = self.q = np.empty((T, N, H)) if self.activation == "sigmoid" else None
        np.matmul(x, self.W_ih.T, out=h[1:])  # the input part of every net_t
        h[1:] += self.b
        for t in self.timesteps(T):
            net = h[t + 1]
            net += self.recur(h[t])
            activate_inplace(self.activation, net, self.slope, None if q is None else q[t])

    def propagate(self, t: int, dh: np.ndarray, dc: np.ndarray | None = None):
        """Backward through transition t (SPEC section 1).

        dh: (..., N, H) = dL/dh_t. Returns dL/dh_{t-1}, None (no cell state),
        and dL/dnet_t twice (input side, recurrent side), each (..., N, H).
        """
        q = None if self.q is None else self.q[t - 1]
        delta = dh * derivative(self.activation, self.h[t], self.slope, q)  # dL/dnet_t = dL/dh_t * f'(net_t)
        return self.recur_back(delta), None, delta, delta

    def recur(self, h: np.ndarray) -> np.ndarray:
        """The recurrent part of net_t: h_{t-1} W_hh^T."""
        return h @ self.W_hh.T

    def recur_back(self, delta: np.ndarray) -> np.ndarray:
        """dL/dh_{t-1} from dL/dnet_t through the recurrent part: delta W_hh."""
        return delta @ self.W_hh

    def transitions(self, lo: int, hi: int) -> Transitions:
        """What the records show about transitions lo..hi-1, from the forward pass.

        The Jacobian factors of J_n = diag(f'(net_t)) W_hh (no diagonal term;
        A = f'(net_t), (S, N, H)); the fraction of units with f'(net_t) = 0
        by definition (dead: a ReLU unit that is off; NaN for an activation
        without such a region) and of the other units with f' < 5% of gamma
        (saturated); no gate means (NaN).
        """
        q = None if self.q is None else self.q[lo - 1 : hi - 1]
        fp = derivative(self.activation, self.h[lo:hi], self.slope, q)
        flat = fp < SATURATED * self.gamma
        if has_dead_zone(self.activation, self.slope):
            off = fp == 0.0
            dead = np.mean(off, axis=(1, 2))
            flat &= ~off
        else:
            dead = np.full(hi - lo, np.nan)
        return Transitions(None, fp, np.mean(flat, axis=(1, 2)), dead, np.full(hi - lo, np.nan))
