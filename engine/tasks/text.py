"""Next-word prediction on a text (SPEC sections 5 and 8).

Words are whitespace-separated tokens; the vocabulary is the sorted set of
the words (as Config does for a per-step text run), one-hot inputs of size
V, targets the next word's id, loss `xent` on every step; metric: accuracy.

By default the whole text is one sequence (T = words - 1, batch 1): every
update sees the same batch, as in the per-step view of the same text. With
`window` W > 0 a batch is n windows of W + 1 consecutive words at random
starts (for a long user text), T = W.

Baseline: the best prediction that ignores context predicts every target
with its frequency among the predicted words (every word but the first);
its cross-entropy per step is the unigram entropy of those words, and the
loss, summed over the T steps, is T times that. Its accuracy is the share
of the most frequent predicted word.
"""

from __future__ import annotations

import numpy as np

from ..config import SPEC, Config, ConfigError
from .base import Task, accuracy, entropy, without_text

# The source material's sentence (SPEC 5): it is the man, not the wig, who went inside.
WIG = "The man who wore a wig on his head went inside"


class TextTask(Task):
    name = "text"
    description = "predict the next word of a text (xent on every step)"
    loss, loss_on = "xent", "all"
    metric_name, higher_is_better = "accuracy", True
    baseline_label = "the best prediction without context: each word's frequency"

    def __init__(self, text: str = "", window: int = 0):
        self.text = text or WIG
        words = self.text.split()
        if len(words) < 2:
            raise ConfigError("text", f"the text task needs at least two words (inputs are words 1..n-1, targets words 2..n), got {len(words)}")
        self.vocabulary = tuple(sorted(set(words)))
        V = len(self.vocabulary)
        if V < 2:
            raise ConfigError("text", f"the text task needs at least two different words: '{words[0]}' alone is one class")
        if V > SPEC["input_size"].high:
            raise ConfigError("text", f"text has {V} different words; the vocabulary is at most {SPEC['input_size'].high:g}")
        if not 0 <= window <= len(words) - 1:
            raise ConfigError("window", f"window must be from 0 (the whole text) to {len(words) - 1} (the text's words - 1), got {window}")
        index = {w: i for i, w in enumerate(self.vocabulary)}
        self.ids = np.array([index[w] for w in words])
        self.window = window
        self.steps = window or len(words) - 1
        self.input_size = self.output_size = V
        counts = np.bincount(self.ids[1:], minlength=V)
        self.entropy = entropy(counts)  # nats per predicted word
        self._top_share = float(counts.max() / counts.sum())

    @property
    def baseline_loss(self) -> float:
        return self.steps * self.entropy

    @property
    def baseline_metric(self) -> float:
        return self._top_share

    @property
    def batch_size(self) -> int | None:
        return None if self.window else 1

    def configure(self, config: Config) -> Config:
        if self.window:  # random windows of W + 1 words: T = W, the batch the Config's
            plain = without_text(config)
            return plain.with_overrides(steps=self.steps, input_size=self.input_size, output_size=self.output_size, loss="xent", loss_on="all")
        if config.mode != "bptt":
            return super().configure(config)  # the same refusal
        return config.with_overrides(text=self.text, loss_on="all")

    def batch(self, rng, n):
        """The whole text (no draw; n must be 1), or n windows at starts drawn uniformly."""
        T, V = self.steps, self.input_size
        if self.window:
            starts = rng.integers(0, len(self.ids) - T, size=n)
            seq = self.ids[starts[None, :] + np.arange(T + 1)[:, None]]  # (T + 1, n)
        else:
            if n != 1:
                raise ValueError(f"the whole text is one sequence: batch 1, got {n}")
            seq = self.ids[:, None]
        inputs = np.zeros((T, seq.shape[1], V))
        inputs[np.arange(T)[:, None], np.arange(seq.shape[1]), seq[:-1]] = 1.0
        return inputs, seq[1:].copy()

    def metric(self, y, targets):
        return accuracy(y, targets)
