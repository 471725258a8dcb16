"""Vanilla RNN: h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""

from __future__ import annotations

import numpy as np

from ..activations import activate


class RNNCell:
    """Forward caches: h (T+1, N, H); fprime (T, N, H) = f'(net_t)."""

    gates = 1
    has_cell_state = False

    def __init__(self, params: dict[str, np.ndarray], activation: str, slope: float, gamma: float):
        self.W_ih = params["weight_ih_l0"]
        self.W_hh = params["weight_hh_l0"]
        self.b = params["bias_ih_l0"] + params["bias_hh_l0"]
        self.activation, self.slope, self.gamma = activation, slope, gamma

    def forward(self, x: np.ndarray) -> None:
        """x: (T, N, D). Fills self.h and self.fprime."""
        T, N, _ = x.shape
        H = self.W_hh.shape[1]
        drive = x @ self.W_ih.T + self.b  # (T, N, H): the input part of net_t
        self.h = np.zeros((T + 1, N, H))
        self.fprime = np.empty((T, N, H))
        W_hh_T = self.W_hh.T
        for t in range(T):
            net = drive[t] + self.h[t] @ W_hh_T
            self.h[t + 1], self.fprime[t] = activate(self.activation, net, self.slope)
        # Forward quantities the records show, computed in bulk once.
        self.saturated = np.mean(self.fprime < 0.05 * self.gamma, axis=(1, 2))

    def propagate(self, t: int, dh: np.ndarray, dc: np.ndarray | None = None):
        """Backward through transition t (SPEC section 1).

        dh: (..., N, H) = dL/dh_t. Returns dL/dh_{t-1}, None (no cell state),
        and dL/dnet_t twice (input side, recurrent side), each (..., N, H).
        """
        delta = dh * self.fprime[t - 1]  # dL/dnet_t = dL/dh_t * f'(net_t)
        return delta @ self.W_hh, None, delta, delta

    def jacobian_factors(self, t: int):
        """J_n = diag(f'(net_t)) W_hh: no diagonal term, one gate."""
        return None, self.fprime[t - 1]

    def saturation(self, t: int) -> float:
        """Fraction of units with f'(net_t) below 5% of gamma."""
        return float(self.saturated[t - 1])

    def gate_mean(self, t: int) -> float:
        return float("nan")

    def cell_state(self, t: int):
        return None
