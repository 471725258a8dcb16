"""GRU in PyTorch's row order r, z, n (SPEC sections 4 and 7).

    r = sig(x W_ir^T + b_ir + h W_hr^T + b_hr);   z likewise
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    h' = (1 - z) * n + z * h
"""

from __future__ import annotations

import numpy as np

from ..activations import sigmoid_pair
from .base import SATURATED, Cell, Transitions


class GRUCell(Cell):
    """Forward caches: h (T+1, N, H); net_rz (T, N, 2H), the pre-activations of r and z;
    n, hn (T, N, H), hn = h W_hn^T + b_hn.

    Where a gate is close to 1 the rounded gate has lost 1 - gate, so `_gates`
    recomputes both sigma(net) and 1 - sigma(net) = sigma(-net) from net_rz,
    each to full relative precision.
    """

    name = "gru"
    gates = ("r", "z", "n")
    gate_activations = ("sigmoid", "sigmoid", "tanh")  # n: tanh of its own pre-activation, r * (h W_hn^T + b_hn) inside it
    keep_gate, keep_label = "z", "update z"
    floats_per_step = 6

    def __init__(self, params: dict[str, np.ndarray], *_unused):
        self.W_ih = params["weight_ih_l0"]
        self.W_hh = params["weight_hh_l0"]
        self.b_ih = params["bias_ih_l0"]
        self.b_hh = params["bias_hh_l0"]

    def forward(self, x: np.ndarray) -> None:
        """x: (T, N, D). In place, with one buffer per quantity: the input side of
        every step in one matmul, whose r, z block then becomes net_rz."""
        T, N, _ = x.shape
        H = self.W_hh.shape[1]
        H2 = 2 * H
        drive = np.matmul(x, self.W_ih.T)  # (T, N, 3H): x W_ih^T + b_ih for every step
        drive += self.b_ih
        h = self.h = np.empty((T + 1, N, H))
        h[0] = 0.0
        self.net_rz = drive[:, :, :H2]  # r, z pre-activations once the recurrent part is added
        self.n, self.hn = np.empty((T, N, H)), np.empty((T, N, H))
        W_hh_T = self.W_hh.T
        rec, s, q = np.empty((N, 3 * H)), np.empty((N, H2)), np.empty((N, H2))
        for t in self.timesteps(T):
            np.matmul(h[t], W_hh_T, out=rec)
            rec += self.b_hh
            net = drive[t, :, :H2]
            net += rec[:, :H2]
            sigmoid_pair(net, out=s, complement=q)  # r, z and 1 - r, 1 - z
            hn, n = self.hn[t], self.n[t]
            hn[...] = rec[:, H2:]
            np.multiply(s[:, :H], hn, out=n)  # r * (h W_hn^T + b_hn)
            n += drive[t, :, H2:]
            np.tanh(n, out=n)
            # (1 - z) n + z h with 1 - z = sigma(-net_z): PyTorch's n + z (h - n) loses h' where z ~ 1 and h' << n
            ht = h[t + 1]
            np.multiply(q[:, H:], n, out=ht)
            ht += s[:, H:] * h[t]

    def propagate(self, t: int, dh: np.ndarray, dc: np.ndarray | None = None):
        """Backward through transition t. dh: (..., N, H) = dL/dh_t.

        Returns dL/dh_{t-1}, None, and the gradients of the input-side and
        recurrent-side pre-activations (they differ in the n block: r scales
        the recurrent part).
        """
        r, z, qr, qz = self._gates(t - 1)
        n, hn = self.n[t - 1], self.hn[t - 1]
        da_n = dh * qz * (1.0 - n * n)
        da_r = da_n * hn * r * qr
        da_z = dh * (self.h[t - 1] - n) * z * qz
        d_ih = np.concatenate((da_r, da_z, da_n), axis=-1)
        d_hh = np.concatenate((da_r, da_z, da_n * r), axis=-1)
        return dh * z + d_hh @ self.W_hh, None, d_ih, d_hh

    def transitions(self, lo: int, hi: int) -> Transitions:
        """What the records show about transitions lo..hi-1, from the forward pass.

        The Jacobian factors of J_n = diag(z) + diag(a_r) W_hr +
        diag(a_z) W_hz + diag(a_n) W_hn (e = z (S, N, H), A (S, N, 3H)), the
        fraction of gate derivatives (r, z: sigmoid; n: tanh) below 5% of their
        maximum (S,) (no dead units: NaN), and the mean update gate z_t (S,):
        the weight of the direct path h_{t-1} -> h_t.
        """
        k = slice(lo - 1, hi - 1)
        r, z, qr, qz = self._gates(k)
        n, hn = self.n[k], self.hn[k]
        dr, dz, dnn = r * qr, z * qz, 1.0 - n * n
        dn = qz * dnn
        A = np.concatenate((dn * hn * dr, (self.h[k] - n) * dz, dn * r), axis=-1)
        low = SATURATED * 0.25  # of sup s'(x) = 1/4
        count = np.count_nonzero(dr < low, axis=(1, 2)) + np.count_nonzero(dz < low, axis=(1, 2)) + np.count_nonzero(dnn < SATURATED, axis=(1, 2))
        return Transitions(z, A, count / (3 * n[0].size), np.full(hi - lo, np.nan), np.mean(z, axis=(1, 2)))

    def _gates(self, k):
        """r, z, 1 - r, 1 - z of transition(s) k + 1 (k: an index or a slice of net_rz)."""
        s, q = sigmoid_pair(self.net_rz[k])
        H = self.n.shape[-1]
        return s[..., :H], s[..., H:], q[..., :H], q[..., H:]
