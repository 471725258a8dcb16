"""Inputs and targets: random draws from the run's seed, or a word sequence.

Time-major: inputs (T, N, D); targets (T, N, K) for mse, (T, N) for xent.
"""

from __future__ import annotations

import numpy as np

from .config import Config
from .seeding import streams


def make_data(config: Config) -> tuple[np.ndarray, np.ndarray | None]:
    T, N, D, K = config.steps, config.batch, config.input_size, config.output_size
    if config.text:
        return text_data(config)
    rng = streams(config.seed)
    inputs = config.input_scale * rng["inputs"].standard_normal((T, N, D))
    if not config.has_readout:
        return inputs, None
    if config.loss == "xent":
        return inputs, rng["targets"].integers(0, K, size=(T, N))
    return inputs, rng["targets"].standard_normal((T, N, K))


def text_data(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Next-word prediction on one sentence: one-hot words 1..n-1, targets words 2..n."""
    words = config.text.split()
    index = {w: i for i, w in enumerate(config.vocabulary)}
    ids = np.array([index[w] for w in words])
    V = len(config.vocabulary)
    inputs = np.zeros((len(ids) - 1, 1, V))
    inputs[np.arange(len(ids) - 1), 0, ids[:-1]] = 1.0
    return inputs, ids[1:, None]
