"""What the Jacobian argument of SPEC section 1 needs measured.

- `singular_values`, `block_radii`, `weight_spectrum`: singular values and
  spectral radius of W_hh (per gate block for gated cells);
- `JacobianSigma`: sigma_max of the step Jacobian, largest over the batch:
  exact for H <= EXACT_MAX_H, an estimate above.

Both depend on the forward pass only, so the stepper asks for sigma a chunk
of transitions at a time, just ahead of the backward step that records it.
"""

from __future__ import annotations

import numpy as np

EXACT_MAX_H = 32
LANCZOS_STEPS = 8  # Golub-Kahan steps per candidate
PER_SCORE = 2  # candidates per step by each score (largest row, Frobenius norm, ||J v||)
CHUNK = 32  # transitions per call (fewer when N * H^2 is large)
_CHUNK_FLOATS = 2**21  # bound on a chunk's explicit Jacobians (exact mode)


def singular_values(blocks: np.ndarray, top: int = 5) -> dict:
    """blocks: (G, H, H), the square gate blocks of weight_hh_l0 (`Cell.recurrent_blocks`).
    sigma_max and the top singular values of all of them stacked (G*H, H)."""
    G, H, _ = blocks.shape
    with np.errstate(all="ignore"):
        finite = bool(np.all(np.isfinite(blocks)))
        sv = np.linalg.svd(blocks.reshape(G * H, H), compute_uv=False) if finite else np.full(H, np.nan)
    return {"sigma_max": float(sv[0]), "singular_values": [float(s) for s in sv[:top]]}


def block_radii(blocks: np.ndarray) -> list[float]:
    """The spectral radius of each gate block (for rnn: of W_hh itself)."""
    with np.errstate(all="ignore"):
        finite = bool(np.all(np.isfinite(blocks)))
        return [float(np.max(np.abs(np.linalg.eigvals(b)))) if finite else float("nan") for b in blocks]


def weight_spectrum(blocks: np.ndarray, top: int = 5) -> dict:
    """Both: sigma_max, the top singular values and the block radii."""
    return {**singular_values(blocks, top), "block_radii": block_radii(blocks)}


class JacobianSigma:
    """max over the batch of sigma_max(J_n), J_n = diag(e_n) + sum_g diag(A_{n,g}) W_g.

    Exact (a batched SVD of the explicit Jacobians) for H <= EXACT_MAX_H.

    Above that, forming N Jacobians a step costs more than the whole backward
    step, so the value is an estimate that never exceeds the truth:

    1. every element's row norms come from precomputed inner products of W's
       rows, ||row_i(J_n)||^2 = sum_{g,g'} A_{n,g,i} A_{n,g',i} <W_g[i], W_g'[i]>;
       the largest row norm is a lower bound on sigma_max(J_n);
    2. per step, the elements that score highest on the largest row norm, on
       the Frobenius norm and on ||J_n v|| (v: the previous chunk's top singular
       vector) are refined by Golub-Kahan-Lanczos (single precision, all
       candidates of a chunk at once, started from v): each top Ritz value is
       a lower bound too;
    3. the estimate is the largest of these lower bounds.
    """

    def __init__(self, blocks: np.ndarray, batch: int, rng: np.random.Generator):
        """blocks: (G, H, H), the square gate blocks W_g (`Cell.recurrent_blocks`)."""
        gates, H = blocks.shape[:2]
        W_hh = self.W = blocks.reshape(gates * H, H)
        self.G, self.H = gates, H
        self.exact = self.H <= EXACT_MAX_H
        self.chunk = max(1, min(CHUNK, _CHUNK_FLOATS // (batch * self.H * self.H))) if self.exact else CHUNK
        if not self.exact:
            blocks = W_hh.reshape(gates, self.H, self.H)
            self.W32 = W_hh.astype(np.float32)
            self.W32T = np.ascontiguousarray(self.W32.T)
            self.row_dots = np.einsum("gih,fih->gfi", blocks, blocks)  # <W_g[i], W_g'[i]>
            self.block_diag = np.stack([np.diag(b) for b in blocks])  # W_g[i, i]
            v = rng.standard_normal(self.H)
            self.v = (v / np.linalg.norm(v)).astype(np.float32)

    @property
    def method(self) -> str:
        return "exact" if self.exact else "estimate"

    def __call__(self, e: np.ndarray | None, A: np.ndarray) -> np.ndarray:
        """e: (S, N, H) or None, A: (S, N, G*H) -> sigma per transition (S,); NaN where not finite."""
        finite = np.isfinite(A).all(axis=(1, 2))
        if e is not None:
            finite &= np.isfinite(e).all(axis=(1, 2))
        out = np.full(A.shape[0], np.nan)
        if finite.any():
            e_ok = None if e is None else e[finite]
            out[finite] = self._exact(e_ok, A[finite]) if self.exact else self._estimate(e_ok, A[finite])
        return out

    def _exact(self, e, A) -> np.ndarray:
        S, N = A.shape[:2]
        G, H = self.G, self.H
        J = np.einsum("sngh,ghk->snhk", A.reshape(S, N, G, H), self.W.reshape(G, H, H))
        if e is not None:
            J[..., np.arange(H), np.arange(H)] += e
        sigma = np.full(S, np.nan)
        ok = np.isfinite(J).all(axis=(1, 2, 3))
        if ok.any():
            sigma[ok] = np.linalg.svd(J[ok], compute_uv=False)[..., 0].max(axis=1)
        return sigma

    def _row_norms_sq(self, e, A) -> np.ndarray:
        """||row_i(J_n)||^2 for every step s, element n, row i: (S, N, H)."""
        S, N = A.shape[:2]
        G, H = self.G, self.H
        a = A.reshape(S, N, G, H)
        if G == 1:
            rows = a[:, :, 0] * a[:, :, 0] * self.row_dots[0, 0]
        else:
            rows = np.sum(a * np.einsum("gfi,snfi->sngi", self.row_dots, a), axis=2)
        if e is not None:  # the diagonal term adds e_i at column i
            rows = rows + e * (2.0 * np.sum(a * self.block_diag, axis=2) + e)
        return np.maximum(rows, 0.0)

    def _estimate(self, e, A) -> np.ndarray:
        S, N = A.shape[:2]
        G, H = self.G, self.H
        rows = self._row_norms_sq(e, A)
        best_row = rows.max(axis=2)  # (S, N)
        bound = np.sqrt(best_row.max(axis=1))
        # ||J_n v|| for the previous chunk's top singular vector v: one shared matvec.
        Jv = (A.reshape(S, N, G, H) * (self.W32 @ self.v).reshape(G, H)).sum(axis=2)
        if e is not None:
            Jv += e * self.v
        scores = (best_row, rows.sum(axis=2), np.einsum("snh,snh->sn", Jv, Jv))
        m = min(N, PER_SCORE)
        picks = np.sort(np.concatenate([np.argsort(-score, axis=1)[:, :m] for score in scores], axis=1), axis=1)
        keep = np.ones(picks.shape, dtype=bool)
        keep[:, 1:] = picks[:, 1:] != picks[:, :-1]  # each element once per step
        steps = np.repeat(np.arange(S), picks.shape[1])[keep.ravel()]
        elems = picks[keep]
        a = A[steps, elems].T.astype(np.float32)  # (G*H, candidates): side by side
        ec = None if e is None else e[steps, elems].T.astype(np.float32)
        ritz, vectors = self._lanczos(a, ec)
        sigma = bound.copy()
        np.maximum.at(sigma, steps, ritz)
        mine = np.flatnonzero(steps == 0)  # the chunk's earliest transition: the next chunk continues from it
        best = int(mine[np.argmax(ritz[mine])])
        if np.isfinite(vectors[:, best]).all() and np.any(vectors[:, best]):
            self.v = vectors[:, best] / np.linalg.norm(vectors[:, best])
        return sigma

    def _lanczos(self, a: np.ndarray, e: np.ndarray | None):
        """Golub-Kahan-Lanczos on many Jacobians at once, all started from self.v.

        a: (G*H, c) factors and e: (H, c) or None, one column per Jacobian:
        J v = sum_g a_g * (W_g v) (+ e * v), J^T u = W^T (a * [u, ..., u]) (+ e * u).
        Returns each column's top Ritz value (a lower bound on its sigma_max)
        and Ritz vector.
        """
        G, H = self.G, self.H
        c = a.shape[1]
        tiny = np.float32(1e-30)
        v = np.repeat(self.v[:, None], c, axis=1)
        u_prev = np.zeros((H, c), np.float32)
        beta = np.zeros(c, np.float32)
        alphas, betas, vs = [], [], []
        for j in range(LANCZOS_STEPS):
            vs.append(v)
            u = (a * (self.W32 @ v)).reshape(G, H, c).sum(axis=0)
            if e is not None:
                u += e * v
            u -= beta * u_prev
            alpha = np.sqrt(np.einsum("hc,hc->c", u, u))
            alphas.append(alpha)
            u /= np.maximum(alpha, tiny)
            if j == LANCZOS_STEPS - 1:
                break
            w = self.W32T @ (a * np.tile(u, (G, 1)))
            if e is not None:
                w += e * u
            w -= alpha * v
            beta = np.sqrt(np.einsum("hc,hc->c", w, w))
            betas.append(beta)
            v, u_prev = w / np.maximum(beta, tiny), u
        k = len(alphas)
        B = np.zeros((c, k, k))
        idx = np.arange(k)
        B[:, idx, idx] = np.array(alphas, dtype=np.float64).T
        B[:, idx[:-1], idx[1:]] = np.array(betas, dtype=np.float64).T
        # A breakdown (alpha or beta ~ 0) leaves zeros in B: its Ritz values stay lower bounds.
        _, s, vt = np.linalg.svd(B)
        vectors = np.einsum("hjc,cj->hc", np.stack(vs, axis=1), vt[:, 0].astype(np.float32))
        # Single-precision rounding can lift a Ritz value a hair above the truth;
        # a relative margin keeps the estimate a lower bound.
        return s[:, 0] * (1 - 1e-4), vectors
