"""A series cut to about a chart's width, on a log10 scale: each of `width`
equal buckets keeps its minimum and maximum, so a spike survives and the cost
of drawing does not grow with the length of the run. Shared by the
dashboard's chart and the CLI's --plot."""

from __future__ import annotations

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
