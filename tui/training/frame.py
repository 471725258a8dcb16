"""What one frame of the training view shows: the training, how far it has
gone, the cursor, the presenter's settings and the ghosts. Built by the
training screen, drawn by every training pane.

The worker thread writes the records; a frame reads rows 1..count only, and
the engine sets `records.count` after a row is complete, so what a frame
draws never changes under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine import Config
from engine.presets import Preset
from engine.training import ThresholdSuggestion, Training, TrainingSettings

from ..panes.view import differences

# The columns a ghost keeps of the run it pins (what the charts draw of it).
GHOST_COLUMNS = ("loss", "grad_norm_raw", "reach")


@dataclass(frozen=True)
class TrainingGhost:
    """A pinned training run: some of its columns, and the settings it came from."""

    config: Config
    settings: TrainingSettings
    preset: str
    columns: dict[str, np.ndarray]

    @classmethod
    def of(cls, training: Training, preset: str, count: int) -> TrainingGhost:
        cols = training.records.columns
        return cls(training.config, training.settings, preset, {name: cols[name][:count].copy() for name in GHOST_COLUMNS})

    @property
    def count(self) -> int:
        return self.columns["loss"].size

    def label(self, config: Config, settings: TrainingSettings, preset: str) -> str:
        """Named by what differs from the run on screen: the preset, else the settings."""
        if preset != self.preset:
            return self.preset
        unclipped = ("clip_threshold",) if self.config.clip == "none" else ()  # a threshold no rule used
        parts = [differences(self.config, preset, config, preset, unclipped), differences(self.settings, preset, settings, preset)]
        parts = [p for p in parts if p != "same settings"]
        return ", ".join(parts) if parts else "same settings"


@dataclass
class Frame:
    preset: Preset
    config: Config  # as trained: the task has set D, K and the loss
    settings: TrainingSettings
    training: Training | None  # None while the first training is being built
    count: int  # updates recorded: rows 1..count are complete
    cursor: int | None  # the update under the cursor; None: the latest one
    state: str  # "building", "paused", "playing", "done", "diverged"
    speed: str  # "100/s", "max"
    ghosts: list[TrainingGhost] = field(default_factory=list)
    checkpoints: tuple[int, ...] = ()  # n of the parameters kept (theta_n)
    suggestion: ThresholdSuggestion | None = None
    busy: str | None = None  # what a worker is making now ("the training", "update 37's backward pass")

    @property
    def at(self) -> int:
        """The update the screen is about: the cursor's, else the latest (0: none yet)."""
        return self.count if self.cursor is None else min(self.cursor, self.count)

    @property
    def updates(self) -> int:
        """The x axis runs 1..updates: the planned updates, or as far as a diverged run got."""
        t = self.training
        if t is None:
            return self.settings.updates
        if t.divergence is not None and self.count >= t.divergence.u:
            return max(2, self.count)
        return t.settings.updates
