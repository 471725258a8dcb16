import os

# Typer/Rich print colour codes in CI unless told not to; set before typer loads.
os.environ["_TYPER_FORCE_DISABLE_TERMINAL"] = "1"
