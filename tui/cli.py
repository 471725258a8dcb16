"""The `bptt-lab` command line.

    bptt-lab run PRESET [overrides] [--format table|csv|json] [--dump] [--plot] [--output FILE]
    bptt-lab presets [--format table|json] [--preset-file FILE]
    bptt-lab --version

Every user error is one line on stderr, `bptt-lab: error: ...`, with exit
code 2. This module imports typer and the engine only; anything heavier
(plotext, the Textual app) is imported inside the command that needs it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sys
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Annotated, ClassVar, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from engine import config as cfg
from engine.config import ConfigError
from engine.presets import BUILTIN, DEFAULT_PRESET, Preset, get, registry
from engine.training import SETTINGS as TRAINING
from engine.weights import file_sizes

from .format import printable
from .presenter import DEFAULT_SPEED, PAUSE_KINDS, SPEEDS

PROG = "bptt-lab"


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    return Enum(name, {v: v for v in values}, type=str)


RunFormat = _choices("RunFormat", ("table", "csv", "json"))
ListFormat = _choices("ListFormat", ("table", "json"))

# Config field -> the flag a user typed, for error messages.
FLAGS = {name: "--" + name.replace("_", "-") + (f"/{spec.short}" if spec.short else "") for name, spec in cfg.SPEC.items()}
FLAGS["preset_file"] = "--preset-file"
FLAGS.update({name: "--" + name.replace("_", "-") for name in TRAINING if name != "text"})


def _number_spec(name: str):
    """The range of a numeric flag: a Config field's or a training setting's (None otherwise)."""
    spec = cfg.SPEC.get(name) or TRAINING.get(name)
    return spec if spec is not None and spec.kind in (int, float) else None


class UsageError(Exception):
    """A user error found by this module: one line, exit code 2."""


class _OneLineErrors(TyperGroup):
    """Every usage error as one line on stderr with exit code 2, never a traceback or a box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name or PROG, complete_var=complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except typer.TyperException as exc:  # usage errors: bad value, unknown option, ...
            message = exc.format_message().replace("\n", " ").replace("Value error, ", "")
            spec = _number_spec(getattr(getattr(exc, "param", None), "name", None) or "")
            if spec is not None:
                message += f" (allowed: {spec.describe()})"
            code = _fail(message, exc.exit_code)
        except UsageError as exc:  # found while parsing, before a command runs
            code = _fail(str(exc))
        except typer.Abort:  # Ctrl-C while a command ran
            code = 130
        if standalone_mode:
            sys.exit(code)
        return code


class _StrictCommand(TyperCommand):
    """Options read as written: each given once, numbers in plain ASCII digits.

    Click lets the last of a repeated option win and Python's int() reads
    `3_2` as 32 (and full-width digits as digits); both would run something
    other than what was typed, so both are refused before any value is used.
    WORDS: the words a numeric option also takes in this command."""

    WORDS: ClassVar[dict[str, tuple[str, ...]]] = {}

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            opts, _, order = self.make_parser(ctx).parse_args(args=list(args))
            for param in dict.fromkeys(order):
                if param.param_type_name != "option":
                    continue
                flag = "/".join(param.opts)
                times = order.count(param)
                if times > 1 and not param.multiple:
                    raise UsageError(f"{flag} is given {times} times: give each option once")
                value = opts.get(param.name)
                annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)  # this typer's record of the type
                numeric = _number_spec(param.name) is not None or annotation in (int, float)
                if isinstance(value, str) and value.strip() in self.WORDS.get(param.name, ()):
                    continue
                if isinstance(value, str) and numeric and not _PLAIN_NUMBER.fullmatch(value.strip()):
                    raise typer.BadParameter(f"{value!r} is not a plain number (ASCII digits, no '_')", ctx=ctx, param=param, param_hint=flag)
        return super().parse_args(ctx, args)


_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE | re.ASCII)


def _fail(message: str, code: int = 2) -> int:
    # print(), not typer.echo: the stream's ASCII fallback (tui/entry.py) applies
    print(f"{PROG}: error: {printable(message)}", file=sys.stderr)
    return code


def config_error_text(exc: ConfigError) -> str:
    """A ConfigError in the CLI's words: the field name becomes the flag."""
    msg = exc.message
    if exc.field in FLAGS and msg.startswith(exc.field):
        return FLAGS[exc.field] + msg[len(exc.field) :]
    if exc.field in TRAINING and exc.field in FLAGS:  # a training setting's message in other words (the memory estimate)
        return f"{FLAGS[exc.field]}: {msg}"
    if exc.field == "preset_file":
        return f"--preset-file {msg}"
    return msg


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=False,
    invoke_without_command=True,
    help="A terminal lab for vanishing and exploding gradients: backprop through time, one step at a time.",
    context_settings={"max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {metadata.version('bptt-lab')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.", metavar="")] = None,
) -> None:
    """A terminal lab for vanishing and exploding gradients: backprop through time, one step at a time."""
    if ctx.invoked_subcommand is None:
        try:
            launch(DEFAULT_PRESET, None, {})
        except UsageError as exc:
            raise typer.Exit(_fail(str(exc))) from None


# -- the overrides: one flag per Config field, generated from its SPEC entry -----------

PANELS = {"model": "Model", "weights": "Weights", "loss": "Loss and data", "clipping": "Clipping", "truncation": "Truncation", "statuses": "Statuses"}
_R = "Run"


METAVARS = {"weights": "FILE", "weights_prefix": "PREFIX", "layer": "L"}


def _override(name: str, spec: cfg.Field):
    """The typer option for Config field `name`: --name-with-dashes (and its short
    alias), its choices or type, its help with the allowed range, its panel."""
    if spec.choices:
        kind = _choices(name.title().replace("_", ""), spec.choices)
    else:
        kind = Path if name == "weights" else spec.kind
    decls = ["--" + name.replace("_", "-")] + ([spec.short] if spec.short else [])
    help = spec.help + (f" ({spec.describe()})" if spec.kind in (int, float) else "")
    extra = {"metavar": METAVARS[name]} if name in METAVARS else {}
    return Annotated[Optional[kind], typer.Option(*decls, help=help, rich_help_panel=PANELS[spec.group], show_default=False, **extra)]


Overrides = {name: _override(name, spec) for group in cfg.GROUPS for name, spec in cfg.SPEC.items() if spec.group == group}

RULES = (
    "Each option is given once: a repeated option is refused, never last-wins. "
    "A setting given explicitly that the run would not use (--init with --weights, "
    "--loss in chain mode, --activation with a gated cell) is refused whatever its value. "
    "--clip step rescales dL/dh after every backward step; dL/dh_T itself, straight from "
    "the loss, is not clipped (the summary's start norm is what the loss gave)."
)

# The preset is free text, not an Enum: a --preset-file adds names at run time.
# Unknown names get the closest matches.
PRESET_HELP = "Preset: " + ", ".join(BUILTIN) + ", or one from --preset-file (bptt-lab presets describes them)."

PresetFile = Annotated[Optional[Path], typer.Option("--preset-file", help="TOML file of extra presets (keys: the flag names).", metavar="FILE.toml", rich_help_panel=_R)]

SaveWeights = Annotated[
    Optional[Path],
    typer.Option(
        "--save-weights",
        help="Also write the parameters to FILE.safetensors (float64, keys rnn.weight_ih_l0, ..., head.weight, head.bias: what a module with rnn = nn.RNN/LSTM/GRU and head = nn.Linear loads with load_state_dict; --weights reads it back), in full or not at all. An existing FILE is refused unless --force.",
        metavar="FILE.safetensors",
        rich_help_panel=PANELS["weights"],
    ),
]
FORCE_APPLIES = "--force applies to --output FILE only, or --save-weights FILE"


def resolve(preset_name: str, preset_file: Path | None, given: dict, presets: dict[str, Preset] | None = None) -> tuple[Preset, cfg.Config]:
    """The preset and the validated Config after the user's explicit overrides
    (`presets`: the registry, when the caller has read it already)."""
    presets = presets if presets is not None else registry(preset_file)
    preset = get(preset_name, presets)
    explicit = {k: (v.value if isinstance(v, Enum) else v) for k, v in given.items() if v is not None}
    if "weights" in explicit:
        explicit["weights"] = str(explicit["weights"])
    return preset, preset.config.with_overrides(sizes=_file_sizes(preset.config, explicit), **explicit)


def _file_sizes(base: cfg.Config, explicit: dict) -> dict[str, int]:
    """The sizes the weights file fixes when the command line names the file,
    its prefix or its layer: each of the three from the command line, else
    from the preset (a TOML preset's file with --layer 1 is read at layer 1)."""
    chosen = ("weights", "weights_prefix", "layer")
    if not any(name in explicit for name in chosen):
        return {}
    return file_sizes({name: explicit.get(name, getattr(base, name)) for name in chosen})


def build_run(preset_name: str, preset_file: Path | None, given: dict):
    """Resolve and build the run; a ConfigError becomes a one-line usage error."""
    from engine import Run

    try:
        preset, config = resolve(preset_name, preset_file, given)
        return preset, Run(config)
    except ConfigError as exc:
        raise UsageError(config_error_text(exc)) from None


def with_options(options: dict, into: str):
    """Give a command one option per entry of `options` (name -> annotated
    type), collected into its `into` argument: `run` and `tui` take the same
    flags, `train` those and its own. Decorators stack."""
    import functools
    import inspect
    import typing

    def decorate(fn):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)  # this module's annotations are strings
        own = [p.replace(annotation=hints.get(name, p.annotation)) for name, p in sig.parameters.items() if name != into]
        extra = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=kind) for name, kind in options.items()]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            collected = {name: kwargs.pop(name, None) for name in options}
            return fn(*args, **{into: collected}, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=[*own[:1], *extra, *own[1:]])
        return wrapper

    return decorate


with_overrides = with_options(Overrides, "given")


def _guard(fn):
    """Turn this module's UsageError into the one-line exit-2 message."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            raise typer.Exit(_fail(str(exc))) from None

    return wrapper


class _OutputFile:
    """--output FILE (or `flag` FILE: --save-weights), written in full or not at all.

    The output goes to a temporary file in FILE's folder, made before the run
    (so an unwritable folder is said at once, not after it), flushed to disk
    and renamed over FILE at the end: a full disk, a file-size limit or Ctrl-C
    leaves FILE as it was and no temporary file. An existing FILE is refused
    without --force, before the run and again at the rename. A FILE that is a
    device or a pipe (/dev/null, a FIFO) is written to as it is. `binary`:
    the stream takes bytes."""

    def __init__(self, path: Path, force: bool, flag: str = "--output", binary: bool = False):
        import os
        import stat
        import tempfile

        self.path, self.force, self.temp, self.flag = path, force, None, flag
        opening = {"mode": "wb"} if binary else {"mode": "w", "encoding": "utf-8"}
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise UsageError(f"{flag}: cannot write {path}: {exc.strerror}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{flag}: {path} is a folder; give a file name")
        if st is not None and stat.S_ISREG(st.st_mode) and not force:
            raise UsageError(f"{flag}: {path} exists; add --force to overwrite it")
        try:
            if st is not None and not stat.S_ISREG(st.st_mode):
                self.stream = open(path, **opening)
                return
            fd, self.temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
            if st is not None:
                mode = stat.S_IMODE(st.st_mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.fchmod(fd, mode)  # as a plain open() would have made it, not mkstemp's 0600
            self.stream = open(fd, **opening)
        except OSError as exc:
            self.discard()
            raise UsageError(f"{flag}: cannot write {path}: {exc.strerror}") from None

    def commit(self) -> None:
        """Flush to disk and put the file in place (a write error surfaces here at the latest)."""
        import os

        self.stream.flush()
        if self.temp is None:
            self.stream.close()
            return
        os.fsync(self.stream.fileno())
        self.stream.close()
        if self.force:
            os.replace(self.temp, self.path)
        else:
            try:
                os.link(self.temp, self.path)  # fails if FILE appeared during the run: never clobbered
            except FileExistsError:
                raise UsageError(f"{self.flag}: {self.path} appeared while the run ran; add --force to overwrite it") from None
            except OSError:  # a file system without hard links
                if self.path.exists():
                    raise UsageError(f"{self.flag}: {self.path} appeared while the run ran; add --force to overwrite it") from None
                os.replace(self.temp, self.path)
            else:
                os.unlink(self.temp)
        self.temp = None

    def discard(self) -> None:
        """Close and remove the temporary file (after any error, Ctrl-C included)."""
        import os

        stream, self.stream = getattr(self, "stream", None), None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass  # the data were going to be thrown away
        if self.temp is not None:
            try:
                os.unlink(self.temp)
            except FileNotFoundError:
                pass
            self.temp = None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_STOPPED: list[int] = []  # the stop signals received during this command, in order


_HOLDING: list[bool] = []  # inside a moment that must not be cut in two


@contextlib.contextmanager
def _stops_held():
    """Hold a stop signal back for a moment that must not be cut in two (the
    temporary output file is made and handed to its owner); one that arrived
    meanwhile stops the run on the way out. (Masking the signal would not do:
    the process's other threads, OpenBLAS's, may take it for Python.)"""
    _HOLDING.append(True)
    try:
        yield
    finally:
        _HOLDING.pop()
    _stop_if_signalled()


@contextlib.contextmanager
def _stopping_cleanly(*signals):
    """`kill` or a closed terminal ends a headless run as Ctrl-C does: the
    cleanup runs (no half-written --output), the exit code is 128 + the signal.

    The handler raises at once, but an exception raised while compiled code
    is importing (numpy.random's first import, say) can be swallowed there, so
    the signal is also recorded and `_stop_if_signalled` raises again at the
    next phase boundary. Inside the import machinery itself it does not raise
    at all: raised from one of importlib's callbacks, the exception is printed
    as "Exception ignored ... Traceback" and dropped (seen in a fresh-clone
    run of the suite); the next phase boundary stops the run instead. The previous handlers
    come back afterwards."""

    def stop(signum, frame):
        _STOPPED.append(signum)
        if not _HOLDING and not _importing(frame):
            _stop_if_signalled()

    before = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        _STOPPED.clear()


def _importing(frame) -> bool:
    """Whether the interrupted code is inside Python's import machinery."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _stop_if_signalled() -> None:
    if _STOPPED:
        if _STOPPED[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + _STOPPED[0])


def _reader_gone() -> int:
    """stdout's reader went away (`bptt-lab run ... | head -1`): stop quietly.

    What is still buffered for stdout would fail again when Python flushes it
    at exit ("Exception ignored ... BrokenPipeError"), so stdout is pointed at
    /dev/null first. The exit code is the shell's for SIGPIPE, as the console
    script's."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (a test's captured stream)
    return 141


@app.command("run", cls=_StrictCommand, epilog=RULES)
@_guard
@with_overrides
def run_command(
    preset: Annotated[Optional[str], typer.Argument(help=PRESET_HELP + f" Default: {DEFAULT_PRESET}; with --from-training, the file's.", show_default=False)] = None,
    preset_file: PresetFile = None,
    from_training: Annotated[
        Optional[Path],
        typer.Option(
            "--from-training",
            help="Replay one update of a training: the JSON of bptt-lab train --format json (its config, training settings and seed, and its checkpoints with --dump). With --update U: the backward pass update U used, from the parameters before it and its batch.",
            metavar="FILE.json",
            rich_help_panel=_R,
        ),
    ] = None,
    update: Annotated[Optional[int], typer.Option("--update", help="With --from-training: the update u to open (1 to the updates the file recorded).", metavar="U", rich_help_panel=_R)] = None,
    fmt: Annotated[RunFormat, typer.Option("--format", "-f", help="Output format.", rich_help_panel=_R)] = RunFormat.table,
    dump: Annotated[bool, typer.Option("--dump", help="JSON only: add params, inputs, targets, grads and grads_raw.", rich_help_panel=_R, metavar="")] = False,
    plot: Annotated[bool, typer.Option("--plot", help="Also print a chart of the norm per step (log10 axis).", rich_help_panel=_R, metavar="")] = False,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output",
            "-o",
            help="Write the table, CSV or JSON to this file, in full or not at all (a temporary file in the same folder, renamed into place at the end). An existing FILE is refused unless --force.",
            metavar="FILE",
            rich_help_panel=_R,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="With --output: overwrite FILE if it exists.", rich_help_panel=_R, metavar="")] = False,
    all_rows: Annotated[
        bool,
        typer.Option(
            "--all-rows",
            help="Table only: print every row of a run longer than 2,000 steps, streamed in fixed-width columns (without it the table shows the first and last 1,000 and says how many it left out).",
            rich_help_panel=_R,
            metavar="",
        ),
    ] = False,
    save_weights: SaveWeights = None,
    given: dict | None = None,
) -> None:
    """Run a preset to completion without the dashboard: a table, CSV or JSON, and optionally a chart.

    The output is streamed a chunk of records at a time. A run that takes more
    than 2 s says on stderr how far it is: what the forward pass computes and
    roughly how long it takes, then the backward pass and the writing with the
    time left (one line redrawn on a terminal, a line each 10% otherwise)."""
    fmt = fmt.value
    _check_output_flags(fmt, dump, force, plot, output, save_weights)
    if all_rows and fmt != "table":
        raise UsageError("--all-rows applies to --format table only (CSV and JSON always have every record)")
    if from_training is not None or update is not None:
        _replay_to_output(preset, preset_file, given, from_training, update, fmt, output, force, dump, plot, all_rows, save_weights)
        return
    try:
        chosen, config = resolve(preset or DEFAULT_PRESET, preset_file, given)
    except ConfigError as exc:
        raise UsageError(config_error_text(exc)) from None
    with _stopping_cleanly(*STOP_SIGNALS):  # no temporary file left behind
        _run_to_output(config, chosen, fmt, output, force, dump, plot, all_rows, save_weights=save_weights)


def _replay_to_output(preset, preset_file, given: dict, path: Path | None, u: int | None, fmt, output, force, dump, plot, all_rows, save_weights=None) -> None:
    """`run --from-training FILE --update U`: update U's backward pass, made again
    from FILE's config, training settings and seed (from its nearest checkpoint
    with --dump), checked against the loss FILE recorded, then written as `run` writes."""
    from engine.export import ExportError, read_training
    from engine.training import ReplayError, replay_update

    if path is None:
        raise UsageError("--update needs --from-training FILE.json (a bptt-lab train --format json export)")
    if u is None:
        raise UsageError("--from-training needs --update U: the update whose backward pass to open")
    flags = [FLAGS[name] for name, value in given.items() if value is not None]
    if flags or preset_file is not None:
        raise UsageError(f"--from-training takes the model from the file: {(flags or ['--preset-file'])[0]} cannot be given with it")
    shown = printable(str(path))
    text = _read_user_file("--from-training", path, MAX_EXPORT_BYTES)
    try:
        found = read_training(text)
    except (ExportError, ConfigError) as exc:
        raise UsageError(f"--from-training {shown}: {printable(getattr(exc, 'message', None) or str(exc), 300)}") from None
    name = found.preset or "training"
    if preset is not None and preset != found.preset:
        raise UsageError(f"--from-training {shown} is a training of '{printable(name, 80)}', not '{printable(preset, 80)}' (the preset may be left out)")
    if not 1 <= u <= found.updates_done:
        raise UsageError(f"--update must be from 1 to {found.updates_done} (the updates {shown} recorded), got {u}")
    start = found.start_for(u)
    chosen = Preset(f"{name}, update {u}", f"update {u} of a training of {name}", "", found.config)
    source = {"file": str(path), "preset": found.preset, "update": u, "replayed_from": start.n if start else 0}

    def build(progress):
        progress.begin()

        def tell(done: int, total: int) -> None:
            progress.update(f"replaying updates {(start.n if start else 0) + 1}..{u - 1}", done, total, "updates")

        try:
            run = replay_update(found.config, found.settings, u, start, tell)
        except (ReplayError, ConfigError) as exc:
            raise UsageError(f"--from-training {shown}: {printable(getattr(exc, 'message', None) or str(exc), 300)}") from None
        progress.end(f"replayed {u - 1 - (start.n if start else 0):,} updates")
        recorded = found.losses[u]
        same = (math.isnan(run.loss) and math.isnan(recorded)) or math.isclose(run.loss, recorded, rel_tol=1e-9, abs_tol=0.0)
        if not same:
            raise UsageError(
                f"--from-training {shown}: the replay of update {u} gives loss {run.loss!r}, the file recorded {recorded!r}: "
                "it was written by another version of bptt-lab or another machine's arithmetic, or edited"
            )
        return run

    with _stopping_cleanly(*STOP_SIGNALS):
        _run_to_output(found.config, chosen, fmt, output, force, dump, plot, all_rows, build=build, preset_name=found.preset, source=source, save_weights=save_weights)


def _run_to_output(config, chosen, fmt: str, output, force: bool, dump: bool, plot: bool, all_rows: bool, build=None, preset_name=None, source=None, save_weights=None) -> None:
    """Run, then write the output, streamed, saying how far it is on stderr.
    `build(progress)` makes the Run instead of Run(config) (a replayed update);
    the JSON then names `preset_name` and carries `source`. `save_weights`:
    the run's parameters also go to that .safetensors file."""
    from engine import Run, export

    from . import report

    with _writing(output, force) as (target, progress), _weights_file(save_weights, force) as weights_target:
        if build is not None:
            run = build(progress)
        else:
            progress.setup(config)
            _stop_if_signalled()
            try:
                run = Run(config)
            except ConfigError as exc:
                raise UsageError(config_error_text(exc)) from None
            progress.end("forward pass done")
        _say_source(run.model)
        _stop_if_signalled()
        progress.backward(run)

        stream = sys.stdout if target is None else target.stream
        # Progress of the writing when the output is not on the screen itself.
        what = {"json": "JSON", "csv": "CSV", "table": "the table"}[fmt]
        tell = None if target is None and sys.stdout.isatty() else progress.writing(what)
        with _written_whole(target, output):
            if fmt == "json":
                export.write_json(run, stream, dump=dump, preset=chosen.name if build is None else preset_name, progress=tell, source=source)
                stream.write("\n")
            elif fmt == "csv":
                export.write_csv(run, stream, progress=tell)
            else:
                report.write_table(run, chosen, stream, color=target is None and report.stdout_color(), all_rows=all_rows, progress=tell)
        if tell is not None:
            progress.end(f"writing {what} done")
        if target is not None:
            typer.echo(f"wrote {output} ({fmt}, {run.k} steps)", err=True)
        _save_weights(weights_target, save_weights, run.params, run.config, "the run's parameters")
        if plot:
            sys.stdout.write(report.chart_text(run, chosen) + "\n")
            sys.stdout.flush()


@contextlib.contextmanager
def _writing(output: Path | None, force: bool):
    """(the --output file or None, the progress on stderr) for a command that
    writes: the temporary file is made before the work (an unwritable folder
    is said at once) and removed whatever happens; a reader that leaves ends
    the command quietly (exit 141)."""
    from . import report

    target = None
    progress = report.Progress()
    try:
        with _stops_held():  # the temporary file exists only once `target` can clean it up
            target = _OutputFile(output, force) if output is not None else None
        yield target, progress
    except BrokenPipeError:
        raise typer.Exit(_reader_gone()) from None
    finally:
        if target is not None:
            target.discard()
        progress.close()


@contextlib.contextmanager
def _written_whole(target, output: Path | None):
    """Write the output in the block, then flush stdout or put FILE in place; a
    failed write to FILE (a full disk, a size limit) is a usage error saying
    nothing was written."""
    try:
        yield
        if target is None:
            sys.stdout.flush()
        else:
            _stop_if_signalled()
            target.commit()
    except BrokenPipeError:
        raise
    except OSError as exc:
        if target is None:
            raise
        raise UsageError(f"--output: cannot write {output}: {exc.strerror or exc}; nothing was written to {output}") from None


@contextlib.contextmanager
def written_to(target, output: Path | None, fmt: str, what: str):
    """The stream a command writes its text to (stdout, or --output's FILE,
    whole or not at all); once written to FILE, says so on stderr:
    'wrote FILE (FMT, WHAT)'."""
    with _written_whole(target, output):
        yield sys.stdout if target is None else target.stream
    if target is not None:
        typer.echo(f"wrote {output} ({fmt}, {what})", err=True)


def draw(text: str) -> None:
    """A --plot chart on stdout, after the output."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _check_output_flags(fmt: str, dump: bool, force: bool, plot: bool, output: Path | None, save_weights: Path | None) -> None:
    """The output flags run and train share, refused where they would not apply."""
    if dump and fmt != "json":
        raise UsageError("--dump applies to --format json only")
    if force and output is None and save_weights is None:
        raise UsageError(FORCE_APPLIES)
    if plot and fmt != "table" and output is None:
        raise UsageError(f"--plot with --format {fmt} needs --output FILE (the chart would corrupt the {fmt.upper()} on stdout)")
    _check_save_weights(save_weights)


def _check_save_weights(path: Path | None) -> None:
    if path is not None and path.suffix != ".safetensors":
        raise UsageError(f"--save-weights writes safetensors: give a FILE.safetensors, got '{printable(str(path))}'")


@contextlib.contextmanager
def _weights_file(path: Path | None, force: bool):
    """--save-weights FILE, made before the work as --output's is (an
    unwritable folder is said at once) and removed unless written whole."""
    target = None
    try:
        with _stops_held():
            target = _OutputFile(path, force, "--save-weights", binary=True) if path is not None else None
        yield target
    finally:
        if target is not None:
            target.discard()


def _save_weights(target, path: Path | None, params: dict, config, what: str) -> None:
    """Write `params` as safetensors (engine.weights_files) and put FILE in place."""
    from engine.weights_files import safetensors_bytes

    if target is None:
        return
    try:
        target.stream.write(safetensors_bytes(params, config))
        _stop_if_signalled()
        target.commit()
    except OSError as exc:
        raise UsageError(f"--save-weights: cannot write {path}: {exc.strerror or exc}; nothing was written to {path}") from None
    typer.echo(f"wrote {path} (safetensors, {what}; keys rnn.*_l0{' and head.*' if config.has_readout else ''})", err=True)


def _say_source(model) -> None:
    """Which keys of the weights file the run uses (the prefix found, the layer), on stderr."""
    if model.source is not None:
        typer.echo(printable(model.source.sentence()), err=True)


# -- bptt-lab train ----------------------------------------------------------------------

_T = "Training"
DEFAULT_TRAINING = "train-explode"
SUGGESTED = "suggested"
MAX_TEXT_FILE_BYTES = 16 * 2**20
MAX_EXPORT_BYTES = 2**30  # a train export: ~0.3 KB an update, a few MB a checkpoint with --dump


def _training_option(name: str, setting):
    kind = _choices("Training" + name.title().replace("_", ""), setting.choices) if setting.choices else setting.kind
    help = setting.help + (f" ({setting.describe()})" if setting.kind in (int, float) else "")
    return Annotated[Optional[kind], typer.Option("--" + name.replace("_", "-"), help=help, rich_help_panel=_T, show_default=False)]


# --text is the Config's flag (a sentence); in `train` it is the text task's text.
TrainingOptions = {name: _training_option(name, setting) for name, setting in TRAINING.items() if name != "text"}
TrainOverrides = {
    **Overrides,
    "text": Annotated[Optional[str], typer.Option("--text", help="The text task's text (its words); or --text-file FILE.", rich_help_panel=PANELS["loss"], show_default=False)],
    "clip_threshold": Annotated[
        Optional[str],
        typer.Option(
            "--clip-threshold",
            help=f"{cfg.SPEC['clip_threshold'].help} ({cfg.SPEC['clip_threshold'].describe()}), or '{SUGGESTED}': the mean raw norm of --warmup unclipped updates of the same training (SPEC 8; --clip norm)",
            rich_help_panel=PANELS["clipping"],
            show_default=False,
            metavar="NUMBER|suggested",
        ),
    ],
}


class _TrainCommand(_StrictCommand):
    WORDS: ClassVar[dict[str, tuple[str, ...]]] = {"clip_threshold": (SUGGESTED,)}


TRAIN_RULES = (
    RULES + " In train, --text is the text task's text (or --text-file FILE); a setting the "
    "training would not use (--momentum with adam, --window without the text task) is refused. "
    "A text fixes T and N = 1; with another task they go back to the defaults unless given."
)


def _read_user_file(flag: str, path: Path, limit: int) -> str:
    """The UTF-8 text of a file a flag names, at most `limit` bytes; each
    failure a one-line usage error naming the flag and the file."""
    shown = printable(str(path))
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)  # never more: a device or a pipe may not end
    except FileNotFoundError:
        raise UsageError(f"{flag} {shown}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{flag} {shown}: is a folder; give a file") from None
    except OSError as exc:
        raise UsageError(f"{flag} {shown}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > limit:
        raise UsageError(f"{flag} {shown}: larger than {limit // 2**20} MB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{flag} {shown}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def _read_text_file(path: Path) -> str:
    """The words of --text-file: UTF-8 text with at least one word."""
    text = _read_user_file("--text-file", path, MAX_TEXT_FILE_BYTES)
    if not text.split():
        raise UsageError(f"--text-file {printable(str(path))}: the file is empty (no words)")
    return text


def resolve_training(preset_name: str, preset_file: Path | None, given: dict, training_given: dict, text_file: Path | None = None):
    """(preset, Config as the task configures it, TrainingSettings, suggested):
    the preset's model and training after the user's explicit flags, every
    check done and the memory estimated before anything runs. `suggested`:
    the clip threshold is to come from the threshold suggestion."""
    from engine.tasks import without_text
    from engine.training import TrainingSettings

    def plain(values: dict) -> dict:
        return {k: (v.value if isinstance(v, Enum) else v) for k, v in values.items() if v is not None}

    explicit, explicit_training = plain(given), plain(training_given)
    threshold = explicit.pop("clip_threshold", None)
    suggested = threshold is not None and threshold.strip() == SUGGESTED
    if threshold is not None and not suggested:
        explicit["clip_threshold"] = float(threshold)  # a plain number: _StrictCommand checked it
    if "text" in explicit:
        if not explicit["text"].split():
            raise UsageError("--text is empty: give the text task at least two words")
        explicit_training["text"] = explicit.pop("text")
    if text_file is not None:
        if "text" in explicit_training:
            raise UsageError("--text and --text-file both give the text: give one")
        explicit_training["text"] = _read_text_file(text_file)
    if "weights" in explicit:
        explicit["weights"] = str(explicit["weights"])
    try:
        preset = get(preset_name, registry(preset_file))
        settings = (preset.training or TrainingSettings()).with_overrides(**explicit_training)
        if settings.window and "steps" in explicit and explicit["steps"] != settings.window:
            raise UsageError(f"--steps/-T is set by --window (T = {settings.window}), got {explicit['steps']}")
        base = preset.config
        if base.text and (settings.task != "text" or settings.window or (settings.text or base.text) != base.text):
            base = without_text(base)  # the preset's sentence gives way to the task's data
        config = base.with_overrides(sizes=_file_sizes(base, explicit), **explicit)
        task = settings.make_task(config)
        configured = task.configure(config)
        task.check_given(explicit, configured)
        config = configured
        settings.check_memory(config, task)
    except ConfigError as exc:
        if exc.field == "text" and text_file is not None:
            raise UsageError(f"--text-file {printable(str(text_file))}: {exc.message}") from None
        raise UsageError(config_error_text(exc)) from None
    if suggested and config.clip != "norm":
        raise UsageError(f"--clip-threshold {SUGGESTED} is for --clip norm (the range is of the global norm), got clip {config.clip}: add --clip norm")
    return preset, config, settings, suggested


@app.command("train", cls=_TrainCommand, epilog=TRAIN_RULES)
@_guard
@with_options(TrainOverrides, "given")
@with_options(TrainingOptions, "training_given")
def train_command(
    preset: Annotated[str, typer.Argument(help=PRESET_HELP.replace("Preset:", "Preset (a training preset, or any bptt preset's model with the default training):"), show_default=True)] = DEFAULT_TRAINING,
    preset_file: PresetFile = None,
    text_file: Annotated[Optional[Path], typer.Option("--text-file", help="The text task's text, read from a UTF-8 file (words split at whitespace).", metavar="FILE", rich_help_panel=_T)] = None,
    fmt: Annotated[RunFormat, typer.Option("--format", "-f", help="Output format.", rich_help_panel=_R)] = RunFormat.table,
    dump: Annotated[bool, typer.Option("--dump", help="JSON only: add the checkpoints (parameters and optimizer state), so run --from-training replays any update from the one before it.", rich_help_panel=_R, metavar="")] = False,
    plot: Annotated[bool, typer.Option("--plot", help="Also print the loss and the gradient norm per update (log10 axes).", rich_help_panel=_R, metavar="")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the table, CSV or JSON to this file, in full or not at all. An existing FILE is refused unless --force.", metavar="FILE", rich_help_panel=_R)] = None,
    force: Annotated[bool, typer.Option("--force", help="With --output or --save-weights: overwrite FILE if it exists.", rich_help_panel=_R, metavar="")] = False,
    save_weights: SaveWeights = None,
    given: dict | None = None,
    training_given: dict | None = None,
) -> None:
    """Train a preset's model headless (SPEC 8): a line per --eval-every updates and a summary, CSV or JSON, and optionally the charts.

    Each update is one forward pass on a fresh batch, full BPTT, the clip
    rule and the optimizer's step. A divergence (a loss, gradient or
    parameter that is not finite) is a status: the run stops there and says
    so. The table and CSV are written as the training goes; Ctrl-C stops it
    (exit 130, no half-written --output)."""
    fmt = fmt.value
    _check_output_flags(fmt, dump, force, plot, output, save_weights)
    chosen, config, settings, suggested = resolve_training(preset, preset_file, given or {}, training_given or {}, text_file)
    with _stopping_cleanly(*STOP_SIGNALS):
        _train_to_output(chosen, config, settings, suggested, fmt, output, force, dump, plot, save_weights)


def _train_to_output(chosen: Preset, config, settings, suggested: bool, fmt: str, output, force: bool, dump: bool, plot: bool, save_weights=None) -> None:
    """Train, writing the table or CSV as it goes (JSON at the end), saying how far it is on stderr."""
    from engine import export
    from engine.training import Training, suggest_threshold

    from . import report

    notes = []
    with _writing(output, force) as (target, progress), _weights_file(save_weights, force) as weights_target:
        suggestion = None
        if suggested or config.clip != "none":
            # The range of SPEC 8 comes from unclipped updates: a clipped training's own warm-up is not.
            suggestion = suggest_threshold(config, settings)
            if suggested and suggestion is None:
                raise UsageError(f"--clip-threshold {SUGGESTED}: no suggestion: none of the {settings.warmup} warm-up updates without clipping had a finite norm")
        if suggested:
            config = config.with_overrides(clip_threshold=suggestion.threshold)
            notes.append(f"the clip threshold is the suggested one, {report.num(suggestion.threshold)}: the mean raw |grad| of {suggestion.updates} unclipped warm-up updates")
        _stop_if_signalled()
        training = Training(config, settings)
        _say_source(training.model)
        stream = sys.stdout if target is None else target.stream
        live = fmt == "table" and target is None  # the lines are the progress
        with _written_whole(target, output):
            table = report.TrainingTable(training, chosen.name, stream, color=target is None and report.stdout_color()) if fmt == "table" else None
            if table is not None:
                table.header()
            elif fmt == "csv":
                export.write_training_csv(training, stream, 0, 0)
            progress.begin()
            E, written = settings.eval_every, 0
            while not training.done:
                training.advance(E - training.u % E)
                if table is not None:
                    table.follow()
                elif fmt == "csv":
                    export.write_training_csv(training, stream, written, training.records.count, header=False)
                    written = training.records.count
                if not live:
                    progress.update("training", training.u, settings.updates, "updates")
            if not live:
                progress.end(f"training done: {training.u:,} updates ({training.status})")
            if table is not None:
                table.finish(notes, suggestion)
            elif fmt == "json":
                tell = None if target is None and sys.stdout.isatty() else progress.writing("JSON")
                export.write_training_json(training, stream, preset=chosen.name, dump=dump, progress=tell, suggestion=suggestion)
                stream.write("\n")
        if target is not None:
            typer.echo(f"wrote {output} ({fmt}, {training.u:,} updates, {training.status})", err=True)
        _save_weights(weights_target, save_weights, training.model.params, training.config, _trained(training))
        if plot:
            sys.stdout.write(report.training_chart_text(training, chosen.name) + "\n")
            sys.stdout.flush()


def _trained(training) -> str:
    """Which parameters a training ends with: the final ones, or after a divergence the last finite ones."""
    if training.divergence is not None:
        return f"the last finite parameters, after update {training.applied:,}: update {training.u:,} diverged"
    return f"the final parameters, after {training.u:,} updates"


@app.command("tui", cls=_StrictCommand, epilog=RULES)
@_guard
@with_overrides
def tui_command(
    preset: Annotated[str, typer.Argument(help=PRESET_HELP, show_default=True)] = DEFAULT_PRESET,
    preset_file: PresetFile = None,
    speed: Annotated[
        int, typer.Option("--speed", help=f"Backward steps per second when playing: one of {', '.join(map(str, SPEEDS))} (0: as fast as it goes).", rich_help_panel=_R)
    ] = DEFAULT_SPEED,
    pause_at: Annotated[
        Optional[str],
        typer.Option("--pause-at", help=f"Play pauses at the first event of this kind: {', '.join(PAUSE_KINDS)} (the a key cycles them).", metavar="KIND", rich_help_panel=_R),
    ] = None,
    export_dir: Annotated[
        Optional[Path], typer.Option("--export-dir", help="Folder for exports (x) and screenshots (s); default the current folder.", metavar="DIR", rich_help_panel=_R)
    ] = None,
    sweep: Annotated[Optional[Path], typer.Option("--sweep", help="Open on this saved sweep (bptt-lab sweep -f json -o FILE) in the phase-diagram view (d).", metavar="FILE.json", rich_help_panel=_R)] = None,
    given: dict | None = None,
) -> None:
    """Open the dashboard on a preset (bptt-lab alone opens the default one)."""
    kind = _presenter_controls(speed, pause_at)
    folder = Path.cwd() if export_dir is None else export_dir
    if not folder.is_dir():
        raise UsageError(f"--export-dir: '{printable(str(folder))}' is not a folder")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--export-dir: '{printable(str(folder))}' is not writable")
    opened = None
    if sweep is not None:
        from .views.sweep_screen import checked_sweep

        opened = checked_sweep(sweep)  # a file that is not a sweep: one line, exit 2, before the dashboard starts
    launch(preset, preset_file, given or {}, speed=speed, pause_at=kind, export_dir=folder, sweep=opened)


def _presenter_controls(speed: int, pause_at: str | None) -> str | None:
    """Check --speed and --pause-at; the pause kind, upper-cased."""
    if speed not in SPEEDS:
        raise UsageError(f"--speed: {speed} is not one of {', '.join(map(str, SPEEDS))}")
    kind = pause_at.upper() if pause_at is not None else None
    if kind is not None and kind not in PAUSE_KINDS:
        raise UsageError(f"--pause-at: '{printable(pause_at)}' is not one of {', '.join(PAUSE_KINDS)}")
    return kind


def _has_terminal() -> bool:
    """A terminal on both ends, or textual-serve's web driver (bptt-lab serve),
    which talks to the browser through pipes."""
    from .web import under_web_driver

    return under_web_driver() or (sys.stdout.isatty() and sys.stdin.isatty())


def launch(preset_name: str, preset_file: Path | None, given: dict, sweep=None, **controls) -> None:
    """Validate like `run`, then start the Textual app (imported only here);
    `sweep`: (path, Sweep) to open in the phase-diagram view at once."""
    if not _has_terminal():
        raise UsageError("the dashboard needs a terminal (stdin and stdout are not both one); for headless output use: bptt-lab run PRESET")
    try:
        presets = registry(preset_file)
        preset, config = resolve(preset_name, preset_file, given, presets)
        from .app import make_app

        app = make_app(preset.name, config, presets=presets, **controls)
    except ConfigError as exc:
        raise UsageError(config_error_text(exc)) from None
    if sweep is not None:
        from .views.sweep_screen import open_at_start

        open_at_start(app, *sweep)
    app.run()
    if app.return_code:
        raise typer.Exit(app.return_code)


@app.command("serve", cls=_StrictCommand, epilog=RULES)
@_guard
@with_overrides
def serve_command(
    preset: Annotated[str, typer.Argument(help=PRESET_HELP, show_default=True)] = DEFAULT_PRESET,
    preset_file: PresetFile = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; anything but loopback lets others on the network in.", rich_help_panel=_R)] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (1-65535).", rich_help_panel=_R)] = 8000,
    max_sessions: Annotated[int, typer.Option("--max-sessions", help="Browser tabs served at once (each runs its own lab); more get a 'server full' page.", rich_help_panel=_R)] = 4,
    speed: Annotated[int, typer.Option("--speed", help=f"Backward steps per second when playing: one of {', '.join(map(str, SPEEDS))}.", rich_help_panel=_R)] = DEFAULT_SPEED,
    pause_at: Annotated[Optional[str], typer.Option("--pause-at", help=f"Play pauses at the first event of this kind: {', '.join(PAUSE_KINDS)}.", metavar="KIND", rich_help_panel=_R)] = None,
    given: dict | None = None,
) -> None:
    """Serve the dashboard to web browsers (one lab per tab; exports and screenshots download in the browser)."""
    kind = _presenter_controls(speed, pause_at)
    if not 1 <= port <= 65535:
        raise UsageError(f"--port: {port} is not a port (1-65535)")
    if not 1 <= max_sessions <= 1000:
        raise UsageError(f"--max-sessions: {max_sessions} is not in 1-1000")
    try:
        chosen, _ = resolve(preset, preset_file, given or {})  # refuse bad input here, not in every tab
    except ConfigError as exc:
        raise UsageError(config_error_text(exc)) from None
    flags = _tab_flags(given or {}, preset_file, speed, kind)
    from . import serve

    try:
        serve.serve(chosen.name, flags, host=host, port=port, max_sessions=max_sessions)
    except OSError as exc:
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def _tab_flags(given: dict, preset_file: Path | None, speed: int, pause_at: str | None) -> list[str]:
    """The tui flags each tab's app gets: what the user gave, as an argument
    list (exec, no shell), with files made absolute."""
    flags: list[str] = []
    for name, value in given.items():
        if value is None:
            continue
        value = value.value if isinstance(value, Enum) else value
        if isinstance(value, Path):
            value = value.resolve()
        flags += ["--" + name.replace("_", "-"), str(value)]
    if preset_file is not None:
        flags += ["--preset-file", str(preset_file.resolve())]
    flags += ["--speed", str(speed)] + (["--pause-at", pause_at] if pause_at else [])
    return flags


@app.command("presets", cls=_StrictCommand)
@_guard
def presets_command(
    fmt: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.table,
    preset_file: PresetFile = None,
) -> None:
    """List the presets: name, lab (step: one backward pass, for run and tui; train: a training, for train) and what it shows; JSON adds what to look for and the settings."""
    try:
        presets = registry(preset_file)
    except ConfigError as exc:
        raise UsageError(config_error_text(exc)) from None
    from . import report

    sys.stdout.write(report.presets_json(presets) if fmt.value == "json" else report.presets_table(presets, color=report.stdout_color()))


from .views import register_commands  # noqa: E402 (the views' commands need the helpers above)

register_commands(app)


def main() -> None:
    app(prog_name=PROG)


if __name__ == "__main__":
    main()
