"""Euclidean norms that do not overflow (or underflow) before the value does.

sqrt(sum(x**2)) overflows once entries pass ~1.3e154, long before the norm
itself is infinite (SPEC section 2's formula, taken literally, would report
an overflow ~140 steps early on the scale-10 chain). The fast sum of squares
is used while it is finite; otherwise the vector is rescaled by its largest
magnitude first.
"""

from __future__ import annotations

import math

import numpy as np


_TINY = 1e-280  # below this sum of squares, squaring has lost digits (or underflowed to 0)


def norm(x: np.ndarray, per: float = 1.0) -> float:
    """||x||_2 / per (Frobenius for matrices); inf only when that quotient really is,
    0 only when x is, NaN if x holds one."""
    s = float(np.vdot(x, x))
    if _TINY < s < math.inf:
        return math.sqrt(s) / per
    if s == 0.0 and not x.any():  # truly zero: the common case once a gradient has vanished
        return 0.0
    return _scaled(x, per)


def joint_norm(norms: list[float]) -> float:
    """sqrt(sum of squares) of several norms, without squaring one past the largest float."""
    m = max(norms, default=0.0)
    if not math.isfinite(m) or m == 0.0:
        return math.nan if any(math.isnan(n) for n in norms) else m
    return m * math.sqrt(sum((n / m) ** 2 for n in norms))


def _scaled(x: np.ndarray, per: float = 1.0) -> float:
    with np.errstate(all="ignore"):
        m = float(np.max(np.abs(x))) if x.size else 0.0
        if not math.isfinite(m) or m == 0.0:
            return m if not np.any(np.isnan(x)) else math.nan
        e = math.frexp(m)[1]  # scale by a power of two: exact, and the largest entry lands in [0.5, 1)
        y = np.ldexp(x, -e)
        try:
            return math.ldexp(math.sqrt(float(np.vdot(y, y))) / per, e)
        except OverflowError:  # the norm itself is past the largest float
            return math.inf
