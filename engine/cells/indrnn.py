"""IndRNN (Li, Li, Cook, Zhu and Gao, CVPR 2018): each unit recurs on itself only.

    h_t = f(x_t W_ih^T + b_ih + b_hh + u * h_{t-1})      u = weight_hh_l0, a vector (H,)

The Jacobian dh_t/dh_{t-1} = diag(f'(net_t) * u) is diagonal, so unit j's
gradient after k steps back is the product of its own u_j f'(net_{j,t}):
|u_j|^k on the steps where a ReLU unit is active. Bounding |u_j| (they keep
it near 1) keeps every unit from vanishing or exploding, one unit at a time.
The parameter names follow the rnn's; weight_hh_l0 holds u.
"""

from __future__ import annotations

import numpy as np

from .rnn import RNNCell


class IndRNNCell(RNNCell):
    name = "indrnn"

    @classmethod
    def param_shapes(cls, H: int, D: int) -> dict[str, tuple[int, ...]]:
        return {"weight_ih_l0": (H, D), "weight_hh_l0": (H,), "bias_ih_l0": (H,), "bias_hh_l0": (H,)}

    @classmethod
    def recurrent_from(cls, blocks: np.ndarray) -> np.ndarray:
        """u: the diagonal of the H x H matrix --init draws (identity: u = scale)."""
        return np.diag(blocks).copy()

    @classmethod
    def recurrent_blocks(cls, u: np.ndarray) -> np.ndarray:
        """diag(u): its eigenvalues and singular values are u and |u|."""
        return np.diag(u)[None]

    def recur(self, h: np.ndarray) -> np.ndarray:
        return self.W_hh * h  # u * h_{t-1}

    def recur_back(self, delta: np.ndarray) -> np.ndarray:
        return delta * self.W_hh  # dL/dh_{t-1} = dL/dnet_t * u

    def accumulate(self, grads, d_ih, d_hh, x_prev, h_prev, term):
        """du += sum over the batch of delta * h_{t-1}: (H,)."""
        np.einsum("nh,nh->h", d_hh, h_prev, out=term)
        grads["weight_hh_l0"] += term
        grads["weight_ih_l0"] += d_ih.T @ x_prev
        grads["bias_ih_l0"] += d_ih.sum(axis=0)
        grads["bias_hh_l0"] += d_hh.sum(axis=0)
        return term

    def accumulate_all(self, d_ih, d_hh, x, h_prev):
        grads = super().accumulate_all(d_ih, d_hh, x, h_prev[:, :0])  # everything but the recurrent term ...
        grads["weight_hh_l0"] = np.einsum("mh,mh->h", d_hh, h_prev)  # ... which is elementwise
        return grads
