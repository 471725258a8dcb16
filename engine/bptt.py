"""Moved to engine/run.py (kept while the benchmark and the front ends move over)."""

from .run import Run, RunComplete  # noqa: F401
