"""bptt-lab's numpy engine: BPTT stepped one timestep at a time.

Imports numpy and the standard library only (a test enforces it).
"""

from .backward import lean_gradients
from .config import Config, ConfigError
from .model import Model
from .records import ClipEvent, StepRecord
from .run import Run, RunComplete

__all__ = ["ClipEvent", "Config", "ConfigError", "Model", "Run", "RunComplete", "StepRecord", "lean_gradients"]
