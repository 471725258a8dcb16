"""One integer seed determines every draw of a run.

Independent streams (numpy SeedSequence children) per purpose, so changing
the initialisation does not change the inputs. The legacy RandomState is used
only where SPEC section 2 requires the source's exact draw.

A purpose's stream is child i of SeedSequence(seed), i its index in
PURPOSES, so adding a purpose at the end keeps every earlier stream's bits.
The training lab's purposes (SPEC 8) draw sub-streams: update u's batch is
child u of `train` (any update's batch can be made again without replaying
the ones before it), the fixed evaluation batch is `eval` itself.
"""

from __future__ import annotations

import numpy as np

PURPOSES = ("weights", "inputs", "targets", "probe", "train", "eval")
RUN_PURPOSES = PURPOSES[:4]  # what one backward pass (Run) draws


def sequence(seed: int, purpose: str, *sub: int) -> np.random.SeedSequence:
    """The SeedSequence of `purpose` (a sub-stream when `sub` is given):
    SeedSequence(seed).spawn(...)[i] is SeedSequence(seed, spawn_key=(i,))."""
    return np.random.SeedSequence(seed, spawn_key=(PURPOSES.index(purpose), *sub))


def streams(seed: int) -> dict[str, np.random.Generator]:
    """A generator for each of a run's purposes (weights, inputs, targets, probe)."""
    return {name: np.random.default_rng(sequence(seed, name)) for name in RUN_PURPOSES}


def legacy(seed: int) -> np.random.RandomState:
    """The generator behind numpy.random.seed(seed); numpy.random.randn draws from it."""
    return np.random.RandomState(seed)
