"""The `bptt-lab` console script: the process's edges, before anything heavy loads.

It imports only the standard library until the standard streams are sound,
then hands over to the typer app in `cli.py`. What it guards:

- Ctrl-C at any moment, start-up included: exit 130 quietly, no traceback.
- A closed standard stream (`>&-`, `<&-`, `2>&-`): Python starts with
  sys.stdout = None; output a user asked for is never dropped silently, so
  writing to a closed stdout is a one-line error with exit code 2.
- A stream that cannot encode the output's few non-ASCII signs
  (`PYTHONIOENCODING=ascii`, a C locale): they fall back to ASCII spellings
  (`·` -> `*`, `σ` -> `sigma`) instead of a UnicodeEncodeError.
- A reader that goes away (`bptt-lab run ... | head`): exit quietly.
"""

from __future__ import annotations

import codecs
import errno
import io
import os
import sys

PROG = "bptt-lab"

# ASCII spellings of the signs the output uses; anything else becomes '?'.
_ASCII = {"·": "*", "σ": "sigma", "γ": "gamma", "ρ": "rho", "→": "->", "←": "<-", "≈": "~", "≥": ">=", "≤": "<=", "×": "x", "…": "...", "–": "-", "—": "-", "│": "|", "─": "-"}
_FALLBACK = "bptt-lab-ascii"


def _ascii_fallback(exc: UnicodeError):
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(_ASCII.get(ch, "?") for ch in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(_FALLBACK, _ascii_fallback)


class _Closed:
    """Stands in for a standard stream that was closed when the process started."""

    def __init__(self, name: str):
        self.name = name
        self.encoding = "utf-8"

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, f"standard {self.name} is closed")

    def write(self, _text: str) -> int:
        raise OSError(errno.EBADF, f"standard {self.name} is closed")

    def flush(self) -> None:
        pass


class _WholeWrites(io.FileIO):
    """A file descriptor whose every write is complete or an error. CPython's
    buffered writer drops the rest of a short write (a full disk, a file-size
    limit) without a word, so `bptt-lab run > file` could end with exit 0 and
    a truncated file; here a short write is retried, and the retry's error
    (ENOSPC, EFBIG, EPIPE) is raised."""

    def write(self, data) -> int:
        view, done = memoryview(data), 0
        while done < len(view):
            done += super().write(view[done:])
        return done


def _whole_writes(stream):
    """`stream` (a text file on a descriptor) rebuilt over _WholeWrites."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream  # not a real descriptor (a test's stand-in)
    raw = _WholeWrites(fd, "w", closefd=False)
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding=stream.encoding, errors=stream.errors, line_buffering=stream.line_buffering)


def prepare_streams() -> None:
    """Make the standard streams safe to use: closed ones stand in, every
    write to stdout is whole or an error, narrow encodings fall back."""
    if sys.stdout is None:
        sys.stdout = _Closed("output")
    else:
        sys.stdout.flush()
        sys.stdout = _whole_writes(sys.stdout)
    if sys.stdin is None:
        sys.stdin = _Closed("input")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # the user closed it: nothing to say there
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "".join(_ASCII).encode(encoding)
        except (UnicodeEncodeError, LookupError):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors=_FALLBACK)


def main() -> None:
    try:
        prepare_streams()
        from .cli import main as run_cli

        try:
            run_cli()
            code = 0
        except SystemExit as exc:
            code = exc.code
        _flush_stdout()
        sys.exit(code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        _drop_stdout()  # nobody reads any more
        sys.exit(141)  # as a shell reports SIGPIPE
    except OSError as exc:
        if exc.errno == errno.EBADF:
            message = f"{exc.strerror}: nothing to write to (bptt-lab run can write to a file with --output FILE)"
        else:
            message = f"cannot write the output: {exc.strerror or exc}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        _drop_stdout()
        sys.exit(2)


def _drop_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered has nowhere to go, and
    Python's own flush at exit must not fail a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    except OSError:
        pass


def _flush_stdout() -> None:
    """Write out what is still buffered for stdout while an error can still be reported."""
    sys.stdout.flush()


if __name__ == "__main__":
    main()
