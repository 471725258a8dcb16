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
PENDING = 1 << 14  # floats of gradients held until a chunk's norms are taken at once (128 KiB)
_TINY = 1e-280  # below this a sum of squares has lost digits (or underflowed)


def unit_norms(g: np.ndarray, per: float) -> np.ndarray:
    """||g[:, j]||_2 / per for each column j of g (N, H), without overflow or
    underflow before the value itself does (as engine/norms.py for one norm).
    Called under np.errstate(all="ignore"), as the record stage runs."""
    s = np.einsum("nh,nh->h", g, g)
    if _TINY < s.min() and s.max() < math.inf:  # NaN fails both: the careful path
        return np.sqrt(s) / per
    if not g.any():  # a gradient that vanished to exactly zero
        return np.zeros(g.shape[1])
    m = np.abs(g).max(axis=0)  # NaN where a column holds one: its norm is NaN
    ok = (m > 0) & (m < math.inf)
    scale = np.where(ok, m, 1.0)
    y = g / scale
    return np.where(ok, scale * np.sqrt(np.einsum("nh,nh->h", y, y)) / per, m / per)


def _rows_unit_norms(g: np.ndarray, per: float) -> np.ndarray:
    """unit_norms of each g[i] (S, N, H) -> (S, H): one einsum, the careful path for rows that need it."""
    s = np.einsum("snh,snh->sh", g, g)
    out = np.sqrt(s) / per
    for i in _careful(s.min(axis=1), s.max(axis=1), g):
        out[i] = unit_norms(g[i], per)
    return out


def _careful(lo: np.ndarray, hi: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The rows whose sums of squares (least lo, greatest hi) may have lost digits, overflowed
    or hold a NaN, leaving out the rows that are exactly zero (their norm is the 0 computed)."""
    bad = ~((lo > _TINY) & (hi < math.inf))
    if bad.any():
        bad &= x.reshape(len(x), -1).any(axis=1)
    return np.flatnonzero(bad)


def _rows_norms(x: np.ndarray, per: float) -> np.ndarray:
    """||x[i]||_F / per for each x[i] (S, N, D) -> (S,), as engine/norms.py."""
    s = np.einsum("snd,snd->s", x, x)
    out = np.sqrt(s) / per
    for i in _careful(s, s, x):
        out[i] = norm(x[i], per)
    return out


class GradientMap:
    """Per-unit |dL/dh_t| and per-input ||dL/dx_t||, filled record by record.

    units: (columns, H), column c holds records c*stride .. c*stride + stride - 1;
    inputs: (T,), inputs[k - 1] = ||dL/dx_{T-k+1}||_F / N, NaN until recorded;
    count: records 0..count - 1 are in (0 before `start`).

    A record's gradients are copied into a chunk and their norms taken a chunk
    at a time (one einsum and one matmul for up to 64 steps, not two numpy calls
    a step); reading the map (`columns`, `input_norms`) takes them first."""

    def __init__(self, T: int, H: int, N: int, W_ih: np.ndarray, budget: int | None = None):
        budget = budget or BUDGET
        self.T, self.H, self.N, self.W_ih = T, H, N, W_ih
        self.stride = max(1, -(-((T + 1) * H) // budget))  # ceil: records per stored column
        self.units = np.zeros((-(-(T + 1) // self.stride), H))
        self.inputs = np.full(T, np.nan)
        self.count = 0
        GH = W_ih.shape[0]
        # Small steps a chunk at a time (the numpy calls' own cost is most of theirs); a large step's
        # own numbers at once (copying it would cost more, and push the weights out of the cache).
        chunk = min(64, PENDING // (N * (H + GH)))
        self._g, self._d = (np.empty((chunk, N, H)), np.empty((chunk, N, GH))) if chunk > 1 else (None, None)
        self._pending: list[int] = []  # records in the chunk, consecutive

    def start(self, g: np.ndarray) -> None:
        """Record 0: dL/dh_T (N, H), where the pass starts; forgets what was recorded."""
        self.inputs.fill(np.nan)
        self._pending.clear()
        self.count = 0
        self.record(0, g, None)

    def record(self, k: int, g: np.ndarray, d_ih: np.ndarray | None) -> None:
        """Record k: g = dL/dh_{T-k} (N, H); d_ih = dL/dnet_t (N, G*H) of the
        transition t = T - k + 1 the step crossed (None: nothing flowed, dL/dx_t = 0)."""
        if self._g is None:
            self._record_now(k, g, d_ih)
            return
        j = len(self._pending)
        self._g[j] = g
        if d_ih is None:
            self._d[j] = 0.0
        else:
            self._d[j] = d_ih
        self._pending.append(k)
        self.count = k + 1
        if j + 1 == len(self._g):
            self._flush()

    def _record_now(self, k: int, g: np.ndarray, d_ih: np.ndarray | None) -> None:
        with np.errstate(all="ignore"):
            self._store(k, unit_norms(g, self.N)[None])
            if k:
                self.inputs[k - 1] = 0.0 if d_ih is None else norm(d_ih @ self.W_ih, self.N)
        self.count = k + 1

    def _flush(self) -> None:
        n = len(self._pending)
        if not n:
            return
        k0 = self._pending[0]
        with np.errstate(all="ignore"):
            self._store(k0, _rows_unit_norms(self._g[:n], self.N))
            dx = _rows_norms(self._d[:n] @ self.W_ih, self.N)  # dL/dx_t = dL/dnet_t W_ih
        first = 1 if k0 == 0 else 0  # record 0 (dL/dh_T) crossed no transition
        self.inputs[k0 - 1 + first : k0 - 1 + n] = dx[first:]
        self._pending.clear()

    def _store(self, k0: int, u: np.ndarray) -> None:
        """Records k0.. get their units; a column of several records keeps each unit's largest."""
        if self.stride == 1:
            self.units[k0 : k0 + len(u)] = u
            return
        for k, row in enumerate(u, k0):
            c, first = divmod(k, self.stride)
            if first == 0:
                self.units[c] = row
            else:
                np.maximum(self.units[c], row, out=self.units[c])

    def columns(self, upto: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored columns holding records 0..upto, (C, H), and each column's
        first record k (C,). A column of several records (stride > 1) holds the
        largest value of those recorded so far."""
        self._flush()
        upto = min(upto, self.count - 1)
        n = upto // self.stride + 1 if upto >= 0 else 0
        return self.units[:n], np.arange(n) * self.stride

    def input_norms(self, upto: int) -> np.ndarray:
        """||dL/dx_t||_F / N in the map's columns: entry j is x_{T-j} (the input
        h_{T-j} read), for records 1..upto (j = 0..upto - 1)."""
        self._flush()
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
