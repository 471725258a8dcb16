"""LSTM in PyTorch's gate order i, f, g, o (SPEC sections 4 and 7).

    gates = x W_ih^T + b_ih + h W_hh^T + b_hh        (N, 4H)
    c' = f * c + i * g;   h' = o * tanh(c')
"""

from __future__ import annotations

import numpy as np

from ..activations import sigmoid, sigmoid_pair
from .base import SATURATED, Cell, Transitions


class LSTMCell(Cell):
    """Forward caches: h, c (T+1, N, H); act (T, N, 4H) = [net_i, net_f, g, net_o]; tc (T, N, H) = tanh(c_t).

    act keeps the sigmoid gates' pre-activations: where a gate is close to 1 the
    rounded gate has lost 1 - gate, so `_gates` recomputes both sigma(net) and
    1 - sigma(net) = sigma(-net) from them, each to full relative precision
    (the derivatives gate * (1 - gate) need both).
    """

    name = "lstm"
    gates = ("i", "f", "g", "o")
    gate_activations = ("sigmoid", "sigmoid", "tanh", "sigmoid")
    keep_gate, keep_label = "f", "forget f"
    has_cell_state = True
    floats_per_step = 7

    def __init__(self, params: dict[str, np.ndarray], *_unused):
        self.W_ih = params["weight_ih_l0"]
        self.W_hh = params["weight_hh_l0"]
        self.b = params["bias_ih_l0"] + params["bias_hh_l0"]

    def forward(self, x: np.ndarray) -> None:
        T, N, _ = x.shape
        H = self.W_hh.shape[1]
        H2, H3 = 2 * H, 3 * H
        act = self.act = np.matmul(x, self.W_ih.T)  # (T, N, 4H): input part, then activations in place
        act += self.b
        h = self.h = np.empty((T + 1, N, H))
        c = self.c = np.empty((T + 1, N, H))
        tc = self.tc = np.empty((T, N, H))
        h[0] = 0.0
        c[0] = 0.0
        W_hh_T = self.W_hh.T
        s = np.empty((N, 4 * H))  # sigma of the step's gates; its g block is not used
        for t in self.timesteps(T):
            a = act[t]
            a += h[t] @ W_hh_T
            sigmoid(a, out=s)  # one call for i, f and o; act keeps their pre-activations
            np.tanh(a[:, H2:H3], out=a[:, H2:H3])
            i, f, g, o = s[:, :H], s[:, H:H2], a[:, H2:H3], s[:, H3:]
            ct = c[t + 1]
            np.multiply(f, c[t], out=ct)
            ct += i * g
            np.tanh(ct, out=tc[t])
            np.multiply(o, tc[t], out=h[t + 1])

    def propagate(self, t: int, dh: np.ndarray, dc: np.ndarray | None):
        """Backward through transition t.

        dh, dc: (..., N, H) = dL/dh_t, dL/dc_t (from later steps). Returns
        dL/dh_{t-1}, dL/dc_{t-1} and dL/dgates_t (input and recurrent side).
        The cell path dc_{t-1} = dc_t_total * f_t has no weight matrix in it:
        the constant error carousel.
        """
        i, f, g, o, qi, qf, qo = self._gates(t - 1)
        tc = self.tc[t - 1]
        dct = dh * o * (1.0 - tc * tc)
        if dc is not None:
            dct = dct + dc
        dgates = np.concatenate(
            (dct * g * i * qi, dct * self.c[t - 1] * f * qf, dct * i * (1.0 - g * g), dh * tc * o * qo),
            axis=-1,
        )
        return dgates @ self.W_hh, dct * f, dgates, dgates

    def cell_gradient(self, s: int, dh: np.ndarray, dc: np.ndarray) -> np.ndarray:
        """The full dL/dc_s from dL/dh_s and the part carried through c_{s+1}:
        h_s = o_s * tanh(c_s) adds dh_s * o_s * (1 - tanh(c_s)^2). h_0 does not depend on c_0."""
        if s == 0:
            return dc
        o, tc = sigmoid(self.act[s - 1][:, 3 * self.tc.shape[-1] :]), self.tc[s - 1]
        return dc + dh * o * (1.0 - tc * tc)

    def _gates(self, k):
        """i, f, g, o and 1 - i, 1 - f, 1 - o of transition(s) k + 1 (k: an index or a slice of act)."""
        a = self.act[k]
        s, q = sigmoid_pair(a)  # the g blocks of s and q are not used
        H = self.tc.shape[-1]
        i, f, o = s[..., :H], s[..., H : 2 * H], s[..., 3 * H :]
        qi, qf, qo = q[..., :H], q[..., H : 2 * H], q[..., 3 * H :]
        return i, f, a[..., 2 * H : 3 * H], o, qi, qf, qo

    def transitions(self, lo: int, hi: int) -> Transitions:
        """What the records show about transitions lo..hi-1, from the forward pass.

        The Jacobian factors of dh_t/dh_{t-1} holding c_{t-1}
        (sum over gates of diag(a_gate) W_gate: e None, A (S, N, 4H)), the
        fraction of gate (i, f, g, o) and tanh(c_t) derivatives below 5% of
        their maximum (S,) (none is ever exactly 0 by definition: no dead
        units, NaN), and the mean forget gate f_t (S,): the factor on the cell
        path dc_t/dc_{t-1}.
        """
        k = slice(lo - 1, hi - 1)
        i, f, g, o, qi, qf, qo = self._gates(k)
        tc = self.tc[k]
        di, df, do = i * qi, f * qf, o * qo
        dg, dtc = 1.0 - g * g, 1.0 - tc * tc
        via_c = o * dtc
        A = np.concatenate((via_c * g * di, via_c * self.c[k] * df, via_c * i * dg, tc * do), axis=-1)
        low = SATURATED * 0.25  # of sup s'(x) = 1/4
        count = sum(np.count_nonzero(d < low, axis=(1, 2)) for d in (di, df, do))
        count += np.count_nonzero(dg < SATURATED, axis=(1, 2)) + np.count_nonzero(dtc < SATURATED, axis=(1, 2))
        return Transitions(None, A, count / (5 * tc[0].size), np.full(hi - lo, np.nan), np.mean(f, axis=(1, 2)))
