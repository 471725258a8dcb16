"""The model: one recurrent layer and its readout, parameters in PyTorch's
layout and names (SPEC section 7), updated in place.

    model = Model.from_config(config)    # drawn from the seed, or read from --weights
    model.update(steps)                   # p += step for each named step, in place
    model.spectrum()                      # derived from the parameters, on use

Nothing derived from the parameters is kept past a change: `version` counts
the changes, `spectrum()` is cached for one version only, and a forward
trace remembers the version it was computed with, so a backward pass over a
trace of parameters that have since changed is refused (`StaleTrace`).
"""

from __future__ import annotations

import numpy as np

from .config import Config
from .diagnostics import weight_spectrum
from .weights import check_params, init_params, load_npz, param_shapes


class StaleTrace(RuntimeError):
    """A forward trace used after the parameters it was computed from changed."""


class Model:
    def __init__(self, config: Config, params: dict[str, np.ndarray]):
        self.config = config
        self.params = check_params(params, param_shapes(config))
        self.version = 0
        self._spectrum: tuple[int, dict] | None = None

    @classmethod
    def from_config(cls, config: Config) -> Model:
        """Parameters loaded from `config.weights`, or drawn from its seed."""
        params = load_npz(config.weights, config) if config.weights else init_params(config)
        return cls(config, params)

    def update(self, steps: dict[str, np.ndarray]) -> None:
        """Add each step to its parameter in place (an optimizer's update)."""
        for name, step in steps.items():
            self.params[name] += step
        self.changed()

    def changed(self) -> None:
        """Say that the parameters were changed in place: what was derived from them is gone."""
        self.version += 1
        self._spectrum = None

    def spectrum(self) -> dict:
        """sigma_max and singular values of W_hh, spectral radius of each gate block."""
        if self._spectrum is None or self._spectrum[0] != self.version:
            self._spectrum = (self.version, weight_spectrum(self.config.cell_type.recurrent_blocks(self.params["weight_hh_l0"])))
        return self._spectrum[1]

    def check(self, version: int) -> None:
        if version != self.version:
            raise StaleTrace(f"the parameters changed since this forward pass (version {version}, now {self.version}): run the forward pass again")


__all__ = ["Model", "StaleTrace"]
