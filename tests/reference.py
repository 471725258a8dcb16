"""Reference computations shared by the tests, written from SPEC, never from the engine."""

from __future__ import annotations

import numpy as np


def frobenius(x: np.ndarray) -> float:
    """||x||_F that neither underflows nor overflows: entries of 1e-178 square
    to below the smallest double, so scale by the largest entry first."""
    x = np.asarray(x, dtype=np.float64)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0 or not np.isfinite(top):
        return top
    return top * float(np.linalg.norm(x / top))


def batch_norm(x: np.ndarray, batch: int) -> float:
    """The source's per-step norm ||x||_F / N (SPEC section 7)."""
    return frobenius(x) / batch
