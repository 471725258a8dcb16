"""One integer seed determines every draw of a run.

Independent streams (numpy SeedSequence children) per purpose, so changing
the initialisation does not change the inputs. The legacy RandomState is used
only where SPEC section 2 requires the source's exact draw.
"""

from __future__ import annotations

import numpy as np

PURPOSES = ("weights", "inputs", "targets", "probe")


def streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(PURPOSES))
    return {name: np.random.default_rng(child) for name, child in zip(PURPOSES, children)}


def legacy(seed: int) -> np.random.RandomState:
    """The generator behind numpy.random.seed(seed); numpy.random.randn draws from it."""
    return np.random.RandomState(seed)
