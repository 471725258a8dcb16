"""The presenter's settings the CLI and the dashboard share (no Textual import here)."""

# Steps per second; 0 = as fast as the machine goes.
SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 0)
DEFAULT_SPEED = 10
# The kinds of event play can pause at, in the order `a` cycles through them.
PAUSE_KINDS = ("CLIP", "VANISHED", "EXPLODED", "OVERFLOW")
