"""What one frame of the dashboard shows: the run, how far into it the screen
is, and the presenter's settings. Built by the app, drawn by every pane."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine import Config, Run
from engine.presets import Preset


@dataclass(frozen=True)
class Ghost:
    """A pinned curve: |dL/dh| of an earlier run, and the config it came from."""

    config: Config
    preset: str
    values: np.ndarray

    def label(self, current: Config, preset: str) -> str:
        """Named by what differs from the run on screen."""
        return "ghost: " + differences(self.config, self.preset, current, preset)


def differences(config: Config, preset: str, current: Config, current_preset: str, skip: tuple[str, ...] = ()) -> str:
    """The settings of `config` that differ from `current`, briefly (what makes a ghost a ghost);
    `config` may be any settings dataclass. `skip`: settings not to name."""
    if preset != current_preset:
        return preset
    parts = [f"{name} {_brief(getattr(config, name))}" for name in config.__dataclass_fields__ if name not in skip and getattr(config, name) != getattr(current, name)]
    return ", ".join(parts) if parts else "same settings"


def _brief(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class View:
    preset: Preset
    config: Config
    run: Run | None  # None while the first run is being built
    shown: int  # records 1..shown are on screen (<= run.k: the screen may step back)
    state: str  # "building", "playing", "paused", "done"
    speed: str  # "10/s", "max"
    pause_at: str | None = None  # the event kind that pauses play, if any
    ghosts: list[Ghost] = field(default_factory=list)
    building: float | None = None  # fraction of the forward pass done, while a run is built
