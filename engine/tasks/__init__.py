"""Training tasks (SPEC section 8), one a file; `TASKS` is the registry.

    task = make_task("adding", steps=100)
    task = make_task("text", text="...", window=0)
"""

from __future__ import annotations

from .adding import AddingTask
from .base import Task, batch_rng, eval_rng, without_text
from .temporal_order import TemporalOrderTask
from .text import TextTask

TASKS: dict[str, type[Task]] = {task.name: task for task in (AddingTask, TemporalOrderTask, TextTask)}


def make_task(name: str, steps: int = 0, text: str = "", window: int = 0) -> Task:
    """The task called `name`: a sequence task of length `steps`, or the text task on `text`."""
    if name == TextTask.name:
        return TextTask(text, window)
    return TASKS[name](steps)


__all__ = ["TASKS", "AddingTask", "Task", "TemporalOrderTask", "TextTask", "batch_rng", "eval_rng", "make_task", "without_text"]
