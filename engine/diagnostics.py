"""What the Jacobian argument of SPEC section 1 needs measured.

- `weight_spectrum`: singular values and spectral radius of W_hh (per gate
  block for gated cells);
- `JacobianSigma`: sigma_max of the step Jacobian over the batch, exact for
  small H, a warm-started power iteration above `EXACT_MAX_H`.
"""

from __future__ import annotations

import numpy as np

EXACT_MAX_H = 32
_WARMUP_ITERATIONS = 30
_ITERATIONS_PER_STEP = 1


def weight_spectrum(W_hh: np.ndarray, gates: int, top: int = 5) -> dict:
    """sigma_max and the top singular values of the whole W_hh (G*H, H); the
    spectral radius of each square H x H gate block (for rnn: of W_hh itself)."""
    H = W_hh.shape[1]
    with np.errstate(all="ignore"):
        finite = bool(np.all(np.isfinite(W_hh)))
        sv = np.linalg.svd(W_hh, compute_uv=False) if finite else np.full(H, np.nan)
        blocks = W_hh.reshape(gates, H, H)
        radii = [float(np.max(np.abs(np.linalg.eigvals(b)))) if finite else float("nan") for b in blocks]
    return {"sigma_max": float(sv[0]), "singular_values": [float(s) for s in sv[:top]], "block_radii": radii}


class JacobianSigma:
    """sigma_max over the batch of J_n = diag(e_n) + sum_g diag(A_{n,g}) W_g.

    Above EXACT_MAX_H the estimate is a power iteration that keeps one right
    vector v from step to step (Jacobians change slowly along the sequence)
    and follows the batch element where ||J_n v|| is largest. Each value is
    ||J_n v|| for a unit v, so the estimate never exceeds the true maximum.
    """

    def __init__(self, W_hh: np.ndarray, gates: int, rng: np.random.Generator):
        self.W = W_hh
        # The estimate reads W twice a step; single precision halves that
        # memory traffic and is far more accurate than the estimate itself.
        self.W32 = W_hh.astype(np.float32)
        self.G, self.H = gates, W_hh.shape[1]
        self.exact = self.H <= EXACT_MAX_H
        v = rng.standard_normal(self.H).astype(np.float32)
        self._v0 = v / np.linalg.norm(v)
        self.reset()

    @property
    def method(self) -> str:
        return "exact" if self.exact else "power-iteration estimate"

    def reset(self) -> None:
        self.v = self._v0.copy()
        self.warm = False

    def __call__(self, e: np.ndarray | None, A: np.ndarray) -> float:
        if not (np.all(np.isfinite(A)) and (e is None or np.all(np.isfinite(e)))):
            return float("nan")
        if self.exact:
            return self._exact(e, A)
        return self._power(e, A)

    def _exact(self, e, A) -> float:
        N = A.shape[0]
        J = np.einsum("ngh,ghk->nhk", A.reshape(N, self.G, self.H), self.W.reshape(self.G, self.H, self.H))
        if e is not None:
            J[:, np.arange(self.H), np.arange(self.H)] += e
        if not np.all(np.isfinite(J)):
            return float("nan")
        return float(np.max(np.linalg.svd(J, compute_uv=False)[:, 0]))

    def _power(self, e, A) -> float:
        N = A.shape[0]
        v, sigma = self.v, 0.0
        iterations = _ITERATIONS_PER_STEP if self.warm else _WARMUP_ITERATIONS
        for _ in range(iterations):
            Jv = (A * (self.W32 @ v)).reshape(N, self.G, self.H).sum(axis=1)
            if e is not None:
                Jv += e * v
            norms = np.sqrt(np.einsum("nh,nh->n", Jv, Jv))
            n = int(np.argmax(norms))
            sigma = float(norms[n])
            if not sigma > 0 or not np.isfinite(sigma):
                break
            u = Jv[n] / sigma
            w = (A[n] * np.tile(u, self.G)).astype(np.float32) @ self.W32
            if e is not None:
                w += e[n] * u
            wn = np.linalg.norm(w)
            if not wn > 0 or not np.isfinite(wn):
                break
            v = (w / wn).astype(np.float32)
        self.v, self.warm = v, True
        return sigma
