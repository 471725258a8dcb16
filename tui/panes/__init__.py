"""The dashboard's panes, one widget per module, each with its own CSS.

Each pane draws a `View` (what one frame shows) and never computes a
gradient; the form says what the user changed with a message.
"""

from .chart import NormChart, Series
from .form import ParamsForm
from .header import HeaderBar
from .steplog import StepLog
from .summary import SummaryBar
from .view import Ghost, View

__all__ = ["Ghost", "HeaderBar", "NormChart", "ParamsForm", "Series", "StepLog", "SummaryBar", "View"]
