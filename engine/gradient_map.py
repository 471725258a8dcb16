"""The gradient heatmap's data, recorded as the backward pass steps (issue 11).

Two things a per-step record's norm cannot show:

- `units`: |dL/dh_t| per hidden unit j, for record k = 0..T (k = 0 is
  dL/dh_T, where the pass starts; record k is h_{T-k}, SPEC 7):

      u_{k,j} = ||dL/dh_t[:, j]||_2 / N        (t = T - k; the norm over the batch)

  the same normalisation as the log's |dL/dh| = ||dL/dh_t||_F / N, so the
  column's own norm is it: sqrt(sum_j u_{k,j}^2) = grad_norm of record k.
  The gradient is the one the records show (after a step clip).
- `inputs`: the input connectivity ||dL/dx_t||_F / N, how much input step t
  can still change the loss. Transition t reads x_t (inputs[t - 1]) into
  net_t = x_t W_ih^T + ... (for gated cells every gate's pre-activation), so

      dL/dx_t = dL/dnet_t W_ih         (N, G*H) x (G*H, D)

  summed over the gates; backward step k = T - t + 1 crosses transition t and
  records it. Stored by k - 1 = T - t: inputs[j] is x_{T-j}, the input h_{T-j}
  read, the column of h_{T-j} in the map.

Memory: the units are kept at full resolution while (T + 1) * H floats fit
BUDGET (32 MiB); beyond, `stride` consecutive records share one stored
column holding their largest value per unit (max, as the view bins), so the
map never passes the budget (T = 1e6, H = 4096: 1,024 columns of 977 records).
The inputs are T floats, always at full resolution.
"""

from __future__ import annotations

import math

import numpy as np

from .norms import norm

BUDGET = 1 << 22  # floats kept for the units (32 MiB)
_TINY = 1e-280  # below this a sum of squares has lost digits (or underflowed)


def unit_norms(g: np.ndarray, per: float, out: np.ndarray | None = None) -> np.ndarray:
    """||g[:, j]||_2 / per for each column j of g (N, H), without overflow or
    underflow before the value itself does (as engine/norms.py for one norm)."""
    s = np.einsum("nh,nh->h", g, g)
    if _TINY < s.min() and s.max() < math.inf:  # NaN fails both: the careful path
        s = np.sqrt(s, out=s)
        return np.divide(s, per, out=s if out is None else out)
    with np.errstate(all="ignore"):
        m = np.max(np.abs(g), axis=0)
        ok = (m > 0) & np.isfinite(m)
        scale = np.where(ok, m, 1.0)
        y = g / scale
        u = np.where(ok, scale * np.sqrt(np.einsum("nh,nh->h", y, y)) / per, m / per)
    if out is not None:
        out[...] = u
    return u


class GradientMap:
    """Per-unit |dL/dh_t| and per-input ||dL/dx_t||, filled record by record.

    units: (columns, H), column c holds records c*stride .. c*stride + stride - 1;
    inputs: (T,), inputs[k - 1] = ||dL/dx_{T-k+1}||_F / N, NaN until recorded;
    count: records 0..count - 1 are in (0 before `start`)."""

    def __init__(self, T: int, H: int, N: int, W_ih: np.ndarray, budget: int | None = None):
        budget = budget or BUDGET
        self.T, self.H, self.N, self.W_ih = T, H, N, W_ih
        self.stride = max(1, -(-((T + 1) * H) // budget))  # ceil: records per stored column
        self.units = np.zeros((-(-(T + 1) // self.stride), H))
        self.inputs = np.full(T, np.nan)
        self.count = 0

    def start(self, g: np.ndarray) -> None:
        """Record 0: dL/dh_T (N, H), where the pass starts; forgets what was recorded."""
        self.inputs.fill(np.nan)
        self.count = 0
        self.record(0, g, None)

    def record(self, k: int, g: np.ndarray, d_ih: np.ndarray | None) -> None:
        """Record k: g = dL/dh_{T-k} (N, H); d_ih = dL/dnet_t (N, G*H) of the
        transition t = T - k + 1 the step crossed (None: nothing flowed)."""
        c, first = divmod(k, self.stride)
        if first == 0:
            unit_norms(g, self.N, out=self.units[c])
        else:
            np.maximum(self.units[c], unit_norms(g, self.N), out=self.units[c])
        if k:
            self.inputs[k - 1] = 0.0 if d_ih is None else norm(d_ih @ self.W_ih, self.N)
        self.count = k + 1

    def columns(self, upto: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored columns holding records 0..upto, (C, H), and each column's
        first record k (C,). A column of several records (stride > 1) holds the
        largest value of those recorded so far."""
        upto = min(upto, self.count - 1)
        n = upto // self.stride + 1 if upto >= 0 else 0
        return self.units[:n], np.arange(n) * self.stride

    def input_norms(self, upto: int) -> np.ndarray:
        """||dL/dx_t||_F / N in the map's columns: entry j is x_{T-j} (the input
        h_{T-j} read), for records 1..upto (j = 0..upto - 1)."""
        return self.inputs[: max(0, min(upto, self.count - 1))]


def bin_starts(n: int, bins: int) -> np.ndarray:
    """The first index of each of min(n, bins) runs of consecutive entries that
    cover 0..n-1, their sizes differing by at most one."""
    if n <= bins:
        return np.arange(n)
    return (np.arange(bins) * n) // bins  # strictly increasing since bins < n


def binned(values: np.ndarray, bins: int, axis: int = 0, total: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """values cut along `axis` into the runs of bin_starts(total, bins) (total:
    the entries the whole series will have, default those given; a run past the
    values given is left out, one cut short keeps what it has), each run the
    largest of its entries (NaN if it holds one). Returns them and each run's
    first index. Fewer entries than bins: the values as they are."""
    n = values.shape[axis]
    starts = bin_starts(n if total is None else max(total, n), bins)
    starts = starts[starts < n]
    if starts.size == n:
        return values, starts
    return np.maximum.reduceat(values, starts, axis=axis), starts


__all__ = ["BUDGET", "GradientMap", "bin_starts", "binned", "unit_norms"]
