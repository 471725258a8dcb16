"""A series cut to about a chart's width, on a log10 scale: each of `width`
equal buckets keeps its minimum and maximum, so a spike survives and the cost
of drawing does not grow with the length of the run. Shared by the
dashboard's chart and the CLI's --plot.

`LogSeries` is the dashboard's form: a series that grows at its end (a run's
column as the backward pass steps) is taken in once, value by value, and
minima and maxima over aligned blocks of 2, 4, 8, ... values answer each
frame's questions (the points to draw, where the series leaves the y range,
how many values a log axis cannot show) in time that does not grow with the
length of the series.
"""

from __future__ import annotations

import math

import numpy as np


def log10_positive(values: np.ndarray) -> np.ndarray:
    """log10 of the values; NaN where a value is zero, negative or not finite."""
    with np.errstate(all="ignore"):
        return np.log10(np.where(values > 0, values, np.nan))


def bucket_minmax(values: np.ndarray, width: int, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(k, log10 values, count of zero or non-finite values left out), with at most
    ~2 * width points: each of `width` equal buckets contributes its min and max.
    `y` may pass log10_positive(values) already computed."""
    if y is None:
        y = log10_positive(values)
    n = y.size
    dropped = int(np.count_nonzero(~np.isfinite(y)))
    if n <= 2 * width:
        k = np.arange(1, n + 1, dtype=float)
        ok = np.isfinite(y)
        return k[ok], y[ok], dropped
    size = -(-n // width)  # ceil
    pad = width * size - n
    lows = np.concatenate([np.where(np.isfinite(y), y, np.inf), np.full(pad, np.inf)]).reshape(width, size)
    highs = np.concatenate([np.where(np.isfinite(y), y, -np.inf), np.full(pad, -np.inf)]).reshape(width, size)
    lo_i, hi_i = np.argmin(lows, axis=1), np.argmax(highs, axis=1)
    rows = np.arange(width)
    lo, hi = lows[rows, lo_i], highs[rows, hi_i]
    k = np.concatenate([rows * size + lo_i, rows * size + hi_i]) + 1.0
    v = np.concatenate([lo, hi])
    ok = np.isfinite(v)
    order = np.argsort(k[ok], kind="stable")
    return k[ok][order], v[ok][order], dropped


class _Buffer:
    """A numpy array that grows at its end, its capacity doubled as needed
    (appending n values costs O(n) in all)."""

    def __init__(self, dtype) -> None:
        self.data = np.empty(16, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        end = self.size + values.size
        if end > self.data.size:
            grown = np.empty(max(end, 2 * self.data.size), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end

    def __getitem__(self, index):
        return self.data[: self.size][index]


class _Level:
    """Block b of this level covers values b * 2**j .. (b + 1) * 2**j - 1: its least
    and greatest log10 value and where they are (+inf / -inf: no value to draw)."""

    def __init__(self) -> None:
        self.lo, self.lo_at = _Buffer(float), _Buffer(np.int64)
        self.hi, self.hi_at = _Buffer(float), _Buffer(np.int64)


class LogSeries:
    """log10 of a series that grows at its end, kept between frames.

    `update(values)` takes in the values not seen yet (a shorter `values`, a
    screen stepped back, reads a prefix of what was taken in); every query is
    about the first `n` values. Positions are 0-based here; the chart adds 1
    for k.
    """

    def __init__(self, source: np.ndarray | None = None) -> None:
        self.size = 0
        self.source = source  # kept so that an id() naming it cannot be reused meanwhile
        self._y = _Buffer(float)
        self._levels: list[_Level] = []  # level j + 1: blocks of 2 ** (j + 1) values
        self._lo0, self._hi0 = _Buffer(float), _Buffer(float)
        self._zeros, self._bad = _Buffer(np.int64), _Buffer(np.int64)  # where values are 0, or not finite
        self._undrawn = _Buffer(np.int64)  # where log10 is NaN: zero, negative or not finite

    def update(self, values: np.ndarray) -> None:
        n, old = values.size, self.size
        if n <= old:
            return
        new = np.asarray(values[old:n], dtype=float)
        y = log10_positive(new)
        drawn = np.isfinite(y)
        self._y.extend(y)
        self._lo0.extend(np.where(drawn, y, np.inf))
        self._hi0.extend(np.where(drawn, y, -np.inf))
        self._zeros.extend(np.flatnonzero(new == 0) + old)
        self._bad.extend(np.flatnonzero(~np.isfinite(new)) + old)
        self._undrawn.extend(np.flatnonzero(~drawn) + old)
        self.size = n
        self._build_levels(old, n)

    def _build_levels(self, old: int, n: int) -> None:
        j = 1
        while n >> j:
            if len(self._levels) < j:
                self._levels.append(_Level())
            level = self._levels[j - 1]
            first, last = old >> j, n >> j  # blocks first..last-1 are new and complete
            if last > first:
                lo, lo_at, hi, hi_at = self._level(j - 1, 2 * first, 2 * last)
                pairs = np.arange(last - first)
                pick = np.argmin(lo.reshape(-1, 2), axis=1)
                level.lo.extend(lo.reshape(-1, 2)[pairs, pick])
                level.lo_at.extend(lo_at.reshape(-1, 2)[pairs, pick])
                pick = np.argmax(hi.reshape(-1, 2), axis=1)
                level.hi.extend(hi.reshape(-1, 2)[pairs, pick])
                level.hi_at.extend(hi_at.reshape(-1, 2)[pairs, pick])
            j += 1

    def _level(self, j: int, start: int, stop: int):
        """(lo, lo_at, hi, hi_at) of blocks start..stop-1 of level j."""
        if j == 0:
            at = np.arange(start, stop, dtype=np.int64)
            return self._lo0[start:stop], at, self._hi0[start:stop], at
        level = self._levels[j - 1]
        return level.lo[start:stop], level.lo_at[start:stop], level.hi[start:stop], level.hi_at[start:stop]

    def _block(self, j: int, b: int, high: bool) -> float:
        if j == 0:
            return float((self._hi0 if high else self._lo0)[b])
        level = self._levels[j - 1]
        return float((level.hi if high else level.lo)[b])

    def _blocks(self, n: int) -> list[tuple[int, int]]:
        """The first n values as aligned blocks (level, index), in order."""
        blocks, start = [], 0
        for j in range(n.bit_length() - 1, -1, -1):
            if n >> j & 1:
                blocks.append((j, start >> j))
                start += 1 << j
        return blocks

    # -- what a frame asks ------------------------------------------------------

    def points(self, n: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(k, log10 value) of the first n values to draw, at most ~2 * width of them:
        all of them when they are few, else the least and the greatest of each of
        at most `width` + 1 buckets, where they are (so spikes survive)."""
        n = min(n, self.size)
        if n <= 2 * width:
            y = self._y[:n]
            k = np.flatnonzero(np.isfinite(y))
            return k + 1.0, y[k]
        j = max(0, math.ceil(math.log2(n / width)))
        while (n + (1 << j) - 1) >> j > width:  # round-off in log2
            j += 1
        full = n >> j
        lo, lo_at, hi, hi_at = self._level(j, 0, full)
        tail = [(i, b) for i, b in self._blocks(n) if i < j]  # the values after the full blocks
        if tail:
            parts = [self._level(i, b, b + 1) for i, b in tail]
            t_lo = np.concatenate([p[0] for p in parts])
            t_lo_at = np.concatenate([p[1] for p in parts])
            t_hi = np.concatenate([p[2] for p in parts])
            t_hi_at = np.concatenate([p[3] for p in parts])
            a, b = int(np.argmin(t_lo)), int(np.argmax(t_hi))
            lo, lo_at = np.append(lo, t_lo[a]), np.append(lo_at, t_lo_at[a])
            hi, hi_at = np.append(hi, t_hi[b]), np.append(hi_at, t_hi_at[b])
        at = np.concatenate([lo_at, hi_at])
        v = np.concatenate([lo, hi])
        ok = np.isfinite(v)
        at, first = np.unique(at[ok], return_index=True)  # sorted by k, each point once
        return at + 1.0, v[ok][first]

    def extent(self, n: int) -> tuple[float, float]:
        """(least, greatest) log10 value of the first n values; (inf, -inf) if none is drawn."""
        blocks = self._blocks(min(n, self.size))
        return min((self._block(j, b, False) for j, b in blocks), default=math.inf), max((self._block(j, b, True) for j, b in blocks), default=-math.inf)

    def first(self, n: int, above: float | None = None, below: float | None = None) -> int | None:
        """The first of the first n values whose log10 is above `above` (or below
        `below`); None if there is none."""
        return self._find(n, above, below, last=False)

    def last(self, n: int, above: float | None = None, below: float | None = None) -> int | None:
        """The last such value; None if there is none."""
        return self._find(n, above, below, last=True)

    def _find(self, n: int, above: float | None, below: float | None, last: bool) -> int | None:
        high = above is not None
        bar = above if high else below

        def hit(j: int, b: int) -> bool:
            v = self._block(j, b, high)
            return v > bar if high else v < bar

        blocks = self._blocks(min(n, self.size))
        for j, b in reversed(blocks) if last else blocks:
            if hit(j, b):
                while j:  # down to the value: the later child first when looking for the last
                    j -= 1
                    near, far = (2 * b + 1, 2 * b) if last else (2 * b, 2 * b + 1)
                    b = near if hit(j, near) else far
                return b
        return None

    def zeros(self, n: int) -> np.ndarray:
        """Where the first n values are exactly zero."""
        return _before(self._zeros, n)

    def not_finite(self, n: int) -> np.ndarray:
        """Where the first n values are not finite (overflow, or NaN)."""
        return _before(self._bad, n)

    def count(self, n: int) -> int:
        """How many of the first n values a log axis can show (positive and finite)."""
        n = min(n, self.size)
        return n - _before(self._undrawn, n).size


def _before(positions: _Buffer, n: int) -> np.ndarray:
    """The positions (sorted) below n."""
    held = positions[:]
    return held[: int(np.searchsorted(held, n))]
