"""The eigenvalues of W_hh against the unit circle (SPEC section 1, issue 11).

    spectrum = weight_spectrum(config, params["weight_hh_l0"])
    spectrum.blocks[g].eigenvalues     # complex (H,), largest |lambda| first
    spectrum.radius, spectrum.sigma_max
    training_spectrum(training, u)     # of theta_{u-1}: the parameters update u used
    spectra_over(config, settings, us) # the same at several updates of a fresh training

Per gate block: weight_hh_l0 is split into its square H x H blocks in
PyTorch's order (SPEC 7: rnn one block; LSTM i, f, g, o; GRU r, z, n;
IndRNN diag(u), whose eigenvalues are u itself). For each block: its
eigenvalues, its singular values, the spectral radius rho (largest
|eigenvalue|: the asymptotic growth per step of a linear chain, SPEC 2),
sigma_max (the largest singular value) and gamma, sup |f'| of the
nonlinearity that block's pre-activation goes through (SPEC 1's table):
the configured activation for rnn and IndRNN; for the gated cells sigmoid
(1/4) on the gates i, f, o and r, z, and tanh (1) on g and n.

The circles: |lambda| = 1, and |lambda| = 1/gamma for each gamma that is not 1.
The bound ||J_t|| <= sigma_max * gamma (Pascanu et al. 2013) makes every
singular value inside the 1/gamma circle a guarantee of vanishing for the
vanilla cells. For a gated cell the bound of a block covers that block's
own path only (its term diag(f'(net_g) * ...) W_g of the Jacobian, whose other
factors are at most 1): the cell path (LSTM diag(f)) or the keep path
(GRU diag(z)) adds a term with no weight matrix in it, so no circle
guarantees vanishing there. `verdict` says which case applies.

`sigma_max` of the whole spectrum is the largest over the blocks (as the
training records and charts give it), not sigma_max of the stacked (G*H, H)
matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .activations import gamma as activation_gamma
from .config import Config

CHUNK = 50  # updates between two progress reports
ON_CIRCLE = 1e-9  # relative: |lambda| within this of a circle is on it


@dataclass(frozen=True)
class BlockSpectrum:
    gate: str  # the gate's letter (SPEC 7), "h" for rnn and IndRNN
    activation: str  # what bounds its path
    gamma: float
    eigenvalues: np.ndarray  # complex (H,), by |lambda| descending, then by angle; NaN when W_hh is not finite
    singular_values: np.ndarray  # (H,), descending

    @property
    def radius(self) -> float:
        return float(np.abs(self.eigenvalues[0]))

    @property
    def sigma_max(self) -> float:
        return float(self.singular_values[0])

    @property
    def bound(self) -> float:
        """sigma_max * gamma: SPEC 1's bound on this block's path per step."""
        return self.sigma_max * self.gamma

    def outside(self, r: float = 1.0) -> int:
        """How many eigenvalues lie outside the circle |lambda| = r (by more than
        rounding: an orthogonal W's eigenvalues are on the unit circle, not outside)."""
        return int(np.count_nonzero(np.abs(self.eigenvalues) > r * (1 + ON_CIRCLE)))


@dataclass(frozen=True)
class Spectrum:
    cell: str
    gated: bool  # a cell or keep path beside W_hh (LSTM, GRU): no circle guarantees vanishing
    linear: bool  # every step's Jacobian is W_hh itself: the radius decides (SPEC 2)
    blocks: tuple[BlockSpectrum, ...]

    @property
    def finite(self) -> bool:
        return bool(np.isfinite(self.radius))

    @property
    def radius(self) -> float:
        return max(b.radius for b in self.blocks)

    @property
    def sigma_max(self) -> float:
        return max(b.sigma_max for b in self.blocks)

    @property
    def circles(self) -> list[float]:
        """The radii to draw: 1, and 1/gamma for each block's gamma that is not 1."""
        return sorted({1.0, *(1.0 / b.gamma for b in self.blocks)})

    def verdict(self) -> str:
        """One line: what the picture says about the backward pass (SPEC 1, 2, 4)."""
        if not self.finite:
            return "W_hh is not finite: no spectrum"
        b = max(self.blocks, key=lambda blk: blk.bound)
        if self.gated:
            return f"gated cell: the {_path(self.cell)} bypasses W_hh, so no circle decides (largest sigma_max*gamma {b.bound:.3g}, block {b.gate})"
        if b.bound < 1:
            return f"sigma_max*gamma = {b.bound:.3g} < 1: vanishing is guaranteed for every input (||J_t|| <= sigma_max*gamma)"
        if self.linear:
            word = "explodes" if self.radius > 1 else "vanishes" if self.radius < 1 else "neither vanishes nor explodes"
            return f"linear chain: the spectral radius {self.radius:.3g} decides: the gradient {word} (x{self.radius:.3g} a step)"
        return (f"sigma_max*gamma = {b.bound:.3g} >= 1: the bound allows growth; whether the gradient vanishes depends on "
                f"f'(net) along the run (saturation, dead units)")

    def to_dict(self) -> dict:
        """JSON-ready (non-finite numbers are left for export.finite_or_none)."""
        return {
            "radius": self.radius,
            "sigma_max": self.sigma_max,
            "circles": self.circles,
            "verdict": self.verdict(),
            "blocks": [_block_dict(b) for b in self.blocks],
        }


def _path(cell: str) -> str:
    return {"lstm": "cell path diag(f)", "gru": "keep path diag(z)"}.get(cell, "keep path")


def _block_dict(b: BlockSpectrum) -> dict:
    return {
        "gate": b.gate,
        "activation": b.activation,
        "gamma": b.gamma,
        "radius": b.radius,
        "sigma_max": b.sigma_max,
        "sigma_max_gamma": b.bound,
        "outside_unit_circle": b.outside(1.0) if np.isfinite(b.radius) else None,
        "eigenvalues": [{"re": float(z.real), "im": float(z.imag), "abs": float(abs(z))} for z in b.eigenvalues],
        "singular_values": [float(s) for s in b.singular_values],
    }


def _sorted(eigenvalues: np.ndarray) -> np.ndarray:
    """Largest |lambda| first; ties (a conjugate pair) by angle, the upper one first."""
    order = np.lexsort((-np.angle(eigenvalues), -np.round(np.abs(eigenvalues), 12)))
    return eigenvalues[order]


def weight_spectrum(config: Config, W_hh: np.ndarray) -> Spectrum:
    """The spectrum of weight_hh_l0 (PyTorch's layout) for `config`'s cell, block by block."""
    cell = config.cell_type
    blocks = cell.recurrent_blocks(np.asarray(W_hh, dtype=np.float64))
    G, H, _ = blocks.shape
    with np.errstate(all="ignore"):
        if np.all(np.isfinite(blocks)):
            eig = np.linalg.eigvals(blocks)  # (G, H)
            sv = np.linalg.svd(blocks, compute_uv=False)  # (G, H), descending
        else:
            eig = np.full((G, H), np.nan, dtype=complex)
            sv = np.full((G, H), np.nan)
    acts = cell.block_activations(config.activation)
    return Spectrum(
        cell=cell.name,
        gated=cell.keep_gate is not None,
        linear=cell.keep_gate is None and cell.linear_chain(config.activation, config.leaky_slope),
        blocks=tuple(BlockSpectrum(gate, act, activation_gamma(act), _sorted(e), s) for gate, act, e, s in zip(cell.gates, acts, eig, sv)),
    )


def training_spectrum(training, u: int) -> Spectrum:
    """The spectrum of theta_{u-1}, the parameters update u used (the records'
    spectral_radius and sigma_max of update u are of these): 1 <= u <= applied + 1.
    Kept, current, or replayed from the checkpoint before it (Training.params_at)."""
    return weight_spectrum(training.config, training.params_at(u - 1)["weight_hh_l0"])


def spectra_over(training, updates: list[int], progress: Callable[[int, int], None] | None = None) -> list[tuple[int, Spectrum]]:
    """(u, spectrum of theta_{u-1}) for each u in `updates` (ascending), by
    training on from where `training` is: theta_{u-1} is taken as the training
    passes it. Stops at a divergence: the updates after it are not in the list.
    progress(updates taken, updates needed) every CHUNK updates."""
    out = []
    last = max(updates, default=1) - 1
    for u in sorted(set(updates)):
        while training.u < u - 1 and not training.done:
            training.advance(min(CHUNK, u - 1 - training.u))
            if progress is not None:
                progress(training.u, last)
        if training.applied < u - 1:
            break
        out.append((u, weight_spectrum(training.config, training.model.params["weight_hh_l0"])))
    return out


__all__ = ["BlockSpectrum", "Spectrum", "spectra_over", "training_spectrum", "weight_spectrum"]
