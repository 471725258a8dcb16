"""bptt-lab's front ends: the typer CLI (cli.py) and the Textual dashboard.

Importing this package loads nothing heavy: the CLI imports the TUI only
inside the command that opens it, so `--help` and `presets` stay fast.
"""
