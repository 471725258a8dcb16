"""bptt-lab's numpy engine: BPTT stepped one timestep at a time.

Imports numpy and the standard library only (a test enforces it).
"""

from .run import Run, RunComplete
from .config import Config, ConfigError
from .records import ClipEvent, StepRecord

__all__ = ["ClipEvent", "Config", "ConfigError", "Run", "RunComplete", "StepRecord"]
