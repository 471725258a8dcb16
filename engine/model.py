"""The model: one recurrent layer and its readout, parameters in PyTorch's
layout and names (SPEC section 7), updated in place.

    model = Model.from_config(config)    # drawn from the seed, or read from --weights
    model.update(steps)                   # p += step for each named step, in place
    model.spectrum()                      # derived from the parameters, on use

Nothing derived from the parameters is kept past a change: `version` counts
the changes, what is derived (`singular_values()`, `spectrum()`) is cached for one
version only, and a forward
trace remembers the version it was computed with, so a backward pass over a
trace of parameters that have since changed is refused (`StaleTrace`).
"""

from __future__ import annotations

import numpy as np

from .config import Config
from .diagnostics import block_radii, singular_values
from .weights import check_params, init_params, load_file, param_shapes


class StaleTrace(RuntimeError):
    """A forward trace used after the parameters it was computed from changed."""


class Model:
    def __init__(self, config: Config, params: dict[str, np.ndarray], source=None):
        self.config = config
        self.params = check_params(params, param_shapes(config))
        self.source = source  # a WeightsSource when loaded from a file: which keys, prefix and layer
        self.version = 0
        self._derived: dict[str, tuple[int, object]] = {}  # name -> (version, value)

    @classmethod
    def from_config(cls, config: Config) -> Model:
        """Parameters loaded from `config.weights`, or drawn from its seed."""
        if config.weights:
            return cls(config, *load_file(config.weights, config))
        return cls(config, init_params(config))

    def update(self, steps: dict[str, np.ndarray]) -> None:
        """Add each step to its parameter in place (an optimizer's update)."""
        for name, step in steps.items():
            self.params[name] += step
        self.changed()

    def changed(self) -> None:
        """Say that the parameters were changed in place: what was derived from them is gone."""
        self.version += 1
        self._derived.clear()

    def _derive(self, name: str, compute):
        kept = self._derived.get(name)
        if kept is None or kept[0] != self.version:
            kept = self._derived[name] = (self.version, compute(self.config.cell_type.recurrent_blocks(self.params["weight_hh_l0"])))
        return kept[1]

    def singular_values(self) -> dict:
        """sigma_max and the top singular values of W_hh (an SVD)."""
        return self._derive("singular_values", singular_values)

    def spectrum(self) -> dict:
        """sigma_max and singular values of W_hh, spectral radius of each gate block
        (the eigenvalues cost about three SVDs: computed only when asked)."""
        return {**self.singular_values(), "block_radii": self._derive("block_radii", block_radii)}

    def check(self, version: int) -> None:
        if version != self.version:
            raise StaleTrace(f"the parameters changed since this forward pass (version {version}, now {self.version}): run the forward pass again")


__all__ = ["Model", "StaleTrace"]
