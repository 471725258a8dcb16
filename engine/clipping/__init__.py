"""Gradient clipping rules (SPEC section 3), one a file; `RULES` is the registry.

    rule = make_rule("norm", 5.0)     # None for "none"
    rule.phase                        # DURING (the carried dL/dh) or END (the parameter gradients)
"""

from __future__ import annotations

from .agc import AgcClip
from .base import DURING, END, ClipRule, global_norm
from .norm import NormClip
from .step import StepClip
from .value import ValueClip

RULES: dict[str, type[ClipRule]] = {rule.name: rule for rule in (NormClip, ValueClip, StepClip, AgcClip)}


def make_rule(name: str, threshold: float) -> ClipRule | None:
    """The rule called `name` at this threshold; None for "none"."""
    return None if name == "none" else RULES[name](threshold)


__all__ = ["DURING", "END", "RULES", "ClipRule", "global_norm", "make_rule"]
