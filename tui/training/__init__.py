"""The training view (SPEC section 8): a training run, update by update.

screen.py owns the training, its workers and its keys; the panes draw a
`Frame` (frame.py): three charts (charts.py, each an UpdateChart of
chart.py), the update log (updatelog.py), the header and summary bars
(bars.py); blas.py keeps the workers' BLAS on one thread.
"""

from .frame import Frame, TrainingGhost
from .screen import TrainingScreen

__all__ = ["Frame", "TrainingGhost", "TrainingScreen"]
