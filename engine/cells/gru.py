"""GRU in PyTorch's row order r, z, n (SPEC sections 4 and 7).

    r = sig(x W_ir^T + b_ir + h W_hr^T + b_hr);   z likewise
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    h' = (1 - z) * n + z * h
"""

from __future__ import annotations

import numpy as np

from ..activations import sigmoid


class GRUCell:
    """Forward caches: h (T+1, N, H); r, z, n, hn (T, N, H), hn = h W_hn^T + b_hn."""

    gates = 3
    has_cell_state = False

    def __init__(self, params: dict[str, np.ndarray], *_unused):
        self.W_ih = params["weight_ih_l0"]
        self.W_hh = params["weight_hh_l0"]
        self.b_ih = params["bias_ih_l0"]
        self.b_hh = params["bias_hh_l0"]

    def forward(self, x: np.ndarray) -> None:
        T, N, _ = x.shape
        H = self.W_hh.shape[1]
        drive = x @ self.W_ih.T + self.b_ih
        self.h = np.zeros((T + 1, N, H))
        self.r, self.z, self.n, self.hn = (np.empty((T, N, H)) for _ in range(4))
        W_hh_T = self.W_hh.T
        for t in range(T):
            rec = self.h[t] @ W_hh_T + self.b_hh
            r = sigmoid(drive[t, :, :H] + rec[:, :H])
            z = sigmoid(drive[t, :, H : 2 * H] + rec[:, H : 2 * H])
            n = np.tanh(drive[t, :, 2 * H :] + r * rec[:, 2 * H :])
            self.r[t], self.z[t], self.n[t], self.hn[t] = r, z, n, rec[:, 2 * H :]
            self.h[t + 1] = (1.0 - z) * n + z * self.h[t]
        # Forward quantities the records show, computed in bulk once.
        low = 0.05 * 0.25  # 5% of sup s'(x) = 1/4
        sat = np.count_nonzero(self.r * (1.0 - self.r) < low, axis=(1, 2)) + np.count_nonzero(self.z * (1.0 - self.z) < low, axis=(1, 2))
        sat += np.count_nonzero(1.0 - self.n**2 < 0.05, axis=(1, 2))
        self.saturated = sat / (3 * N * H)
        self.update_mean = np.mean(self.z, axis=(1, 2))

    def propagate(self, t: int, dh: np.ndarray, dc: np.ndarray | None = None):
        """Backward through transition t. dh: (..., N, H) = dL/dh_t.

        Returns dL/dh_{t-1}, None, and the gradients of the input-side and
        recurrent-side pre-activations (they differ in the n block: r scales
        the recurrent part).
        """
        r, z, n, hn = self.r[t - 1], self.z[t - 1], self.n[t - 1], self.hn[t - 1]
        da_n = dh * (1.0 - z) * (1.0 - n * n)
        da_r = da_n * hn * r * (1.0 - r)
        da_z = dh * (self.h[t - 1] - n) * z * (1.0 - z)
        d_ih = np.concatenate((da_r, da_z, da_n), axis=-1)
        d_hh = np.concatenate((da_r, da_z, da_n * r), axis=-1)
        return dh * z + d_hh @ self.W_hh, None, d_ih, d_hh

    def jacobian_factors(self, lo: int, hi: int):
        """Transitions lo..hi-1: J_n = diag(z) + diag(a_r) W_hr + diag(a_z) W_hz + diag(a_n) W_hn.
        Returns e = z (S, N, H) and A (S, N, 3H)."""
        k = slice(lo - 1, hi - 1)
        r, z, n, hn = self.r[k], self.z[k], self.n[k], self.hn[k]
        dn = (1.0 - z) * (1.0 - n * n)
        A = np.concatenate((dn * hn * r * (1.0 - r), (self.h[k] - n) * z * (1.0 - z), dn * r), axis=-1)
        return z, A

    def saturation(self, t: int) -> float:
        """Fraction of gate derivatives (r, z: sigmoid; n: tanh) below 5% of their maximum."""
        return float(self.saturated[t - 1])

    def gate_mean(self, t: int) -> float:
        """Mean update gate z_t: the weight of the direct path h_{t-1} -> h_t."""
        return float(self.update_mean[t - 1])

    def cell_state(self, t: int):
        return None
