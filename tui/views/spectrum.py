"""The spectrum view (issue 11, item 1): the eigenvalues of W_hh against the
unit circle and the 1/gamma circle, and the singular values beside them.

- `bptt-lab spectrum PRESET [flags] [--at U,... | --every K]`: per gate block
  the eigenvalues (re, im, |lambda|) and the singular values, the radius,
  sigma_max, gamma and the verdict, as a table, CSV or strict JSON
  (`bptt-lab.spectrum/1`), and with --plot the two pictures on stdout;
  with --at or --every, of the parameters at those updates of the preset's
  training, made by training it again from its seed;
- `screen(app)`: the dashboard's screen (key v) for the per-step view's run,
  or, from the training view, for the training (tui/views/spectrum_screen.py).

Everything is computed by engine/spectrum.py; this module only formats it.
"""


import json
import math
import re
from typing import Annotated, Optional

import typer

SCHEMA = "bptt-lab.spectrum/1"
CSV_COLUMNS = ("update", "gate", "activation", "gamma", "rank", "re", "im", "abs", "singular_value")
AT_HELP = (
    "Train the preset (its own training, or the default one) and give the spectrum of the parameters update U used, "
    "theta_{U-1}, for each U in the list (as the training's records and run --from-training --update U; "
    "1 is the initial weights, updates+1 the final ones)."
)
EVERY_HELP = "Train the preset and give the spectrum every K updates: theta_0, theta_K, theta_2K, ... and the final parameters."


def register(cli) -> None:
    """`bptt-lab spectrum`."""
    from .. import cli as c

    @cli.command("spectrum", cls=c._TrainCommand, epilog=c.RULES)
    @c._guard
    @c.with_options(c.TrainOverrides, "given")
    @c.with_options(c.TrainingOptions, "training_given")
    def spectrum_command(
        preset: Annotated[Optional[str], typer.Argument(help=c.PRESET_HELP + f" Default: {c.DEFAULT_PRESET}.", show_default=False)] = None,
        preset_file: c.PresetFile = None,
        at: Annotated[Optional[str], typer.Option("--at", help=AT_HELP, metavar="U,U,...", rich_help_panel=c._T)] = None,
        every: Annotated[Optional[int], typer.Option("--every", help=EVERY_HELP, metavar="K", rich_help_panel=c._T)] = None,
        fmt: Annotated[c.RunFormat, typer.Option("--format", "-f", help="Output format.", rich_help_panel=c._R)] = c.RunFormat.table,
        plot: Annotated[bool, typer.Option("--plot", help="Also print the complex plane and the singular values.", rich_help_panel=c._R, metavar="")] = False,
        output: Annotated[Optional[c.Path], typer.Option("--output", "-o", help="Write the table, CSV or JSON to this file, in full or not at all. An existing FILE is refused unless --force.", metavar="FILE", rich_help_panel=c._R)] = None,
        force: Annotated[bool, typer.Option("--force", help="With --output: overwrite FILE if it exists.", rich_help_panel=c._R, metavar="")] = False,
        given: dict | None = None,
        training_given: dict | None = None,
    ) -> None:
        """The eigenvalues and singular values of W_hh per gate block, against the unit circle and 1/gamma (SPEC 1, 2).

        For each block: its eigenvalues (re, im, |lambda|, largest first), its
        singular values, the spectral radius, sigma_max, gamma of the
        nonlinearity it feeds and sigma_max*gamma, and one verdict line.
        With --at or --every, the same at updates of the preset's training."""
        fmt = fmt.value
        if force and output is None:
            raise c.UsageError("--force applies to --output FILE only")
        if plot and fmt != "table" and output is None:
            raise c.UsageError(f"--plot with --format {fmt} needs --output FILE (the chart would corrupt the {fmt.upper()} on stdout)")
        name = preset or c.DEFAULT_PRESET
        with c._stopping_cleanly(*c.STOP_SIGNALS):
            doc, spectra = _compute(c, name, preset_file, given or {}, training_given or {}, at, every)
            _write(c, doc, spectra, fmt, output, force, plot)


def parse_at(text: str, last: int) -> list[int]:
    """--at: updates 1..last, comma-separated ASCII digits, ascending, each once."""
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"[0-9]+", p) for p in parts):
        raise ValueError(f"--at takes updates as numbers separated by commas (1,500,1268), got '{text}'")
    us = [int(p) for p in parts]
    bad = [u for u in us if not 1 <= u <= last]
    if bad:
        raise ValueError(f"--at: update {bad[0]} is not from 1 to {last} (1: the initial weights, {last}: the final ones)")
    return sorted(set(us))


def every_updates(k: int, updates: int) -> list[int]:
    """--every K: theta_0, theta_K, theta_2K, ... and the final theta_U, as the updates that use them (u = n + 1)."""
    return sorted({*range(1, updates + 2, k), updates + 1})


def _compute(c, name, preset_file, given, training_given, at, every):
    """(document without the spectra, [(update or None, Spectrum)])."""
    from engine.model import Model
    from engine.spectrum import weight_spectrum

    trains = at is not None or every is not None
    if at is not None and every is not None:
        raise c.UsageError("--at and --every both pick the updates: give one")
    if every is not None and every < 1:
        raise c.UsageError(f"--every must be at least 1, got {every}")
    if not trains:
        flag = next((c.FLAGS.get(k, "--" + k.replace("_", "-")) for k, v in training_given.items() if v is not None), None)
        if flag is not None:
            raise c.UsageError(f"{flag} is a training setting: it applies with --at or --every")
        return _of_model(c, name, preset_file, given, Model, weight_spectrum)
    return _of_training(c, name, preset_file, given, training_given, at, every)


def _of_model(c, name, preset_file, given, Model, weight_spectrum):
    threshold = given.get("clip_threshold")
    if threshold is not None:
        given = {**given, "clip_threshold": _number(c, threshold)}
    try:
        chosen, config = c.resolve(name, preset_file, given)
        model = Model.from_config(config)
    except c.ConfigError as exc:
        raise c.UsageError(c.config_error_text(exc)) from None
    c._say_source(model)
    doc = _document(chosen.name, config, None, "the preset's parameters (as bptt-lab run draws or reads them)")
    return doc, [(None, weight_spectrum(config, model.params["weight_hh_l0"]))]


def _number(c, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise c.UsageError(f"--clip-threshold takes a number here ('{c.SUGGESTED}' is for training: with --at or --every)") from None


def _of_training(c, name, preset_file, given, training_given, at, every):
    from engine.spectrum import spectra_over
    from engine.training import Training, suggest_threshold

    chosen, config, settings, suggested = c.resolve_training(name, preset_file, given, training_given)
    U = settings.updates
    try:
        updates = parse_at(at, U + 1) if at is not None else every_updates(every, U)
    except ValueError as exc:
        raise c.UsageError(str(exc)) from None
    from .. import report

    progress = report.Progress()
    try:
        if suggested:
            suggestion = suggest_threshold(config, settings)
            if suggestion is None:
                raise c.UsageError(f"--clip-threshold {c.SUGGESTED}: no suggestion: no warm-up update had a finite norm")
            config = config.with_overrides(clip_threshold=suggestion.threshold)
        training = Training(config, settings)
        c._say_source(training.model)
        progress.begin()
        spectra = spectra_over(training, updates, lambda done, total: progress.update("training", done, total, "updates"))
    finally:
        progress.close()
    doc = _document(chosen.name, training.config, settings, "the parameters each update used, theta_{u-1}, trained again from the seed")
    doc["diverged_at"] = training.divergence.u if training.divergence else None
    missing = [u for u in updates if u not in dict(spectra)]
    if missing and not spectra:  # every update asked for is past the divergence: nothing to show
        d = training.divergence
        have = "has" if len(missing) == 1 else "have"
        raise c.UsageError(f"the training diverged at update {d.u}: --at {','.join(map(str, missing))} {have} no parameters; the last with parameters is {training.applied + 1}")
    if missing:
        d = training.divergence
        typer.echo(f"the training diverged at update {d.u}: update {missing[0]} and after have no parameters ({len(missing)} left out)", err=True)
    return doc, spectra


def _document(preset: str, config, settings, what: str) -> dict:
    return {
        "schema": SCHEMA,
        "preset": preset,
        "config": config.to_dict(),
        "training": settings.to_dict() if settings is not None else None,
        "of": what,
        "cell": config.cell,
        "hidden": config.hidden,
        "gates": list(config.cell_type.gates),
        "diverged_at": None,  # the update a training diverged at (with --at or --every); null without one
    }


# -- output ------------------------------------------------------------------------------


def to_json(doc: dict, spectra) -> str:
    from engine.export import finite_or_none

    full = {**doc, "spectra": [{"update": u, "after_updates": None if u is None else u - 1, **s.to_dict()} for u, s in spectra]}
    return json.dumps(finite_or_none(full), indent=2, allow_nan=False)


def _cell(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else ""


def csv_rows(spectra):
    for u, s in spectra:
        for b in s.blocks:
            for rank, (z, sv) in enumerate(zip(b.eigenvalues, b.singular_values), 1):
                yield ("" if u is None else u, b.gate, b.activation, repr(b.gamma), rank, _cell(z.real), _cell(z.imag), _cell(abs(z)), _cell(sv))


def to_csv(spectra) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    w.writerows(csv_rows(spectra))
    return buf.getvalue()


def to_table(doc: dict, spectra) -> str:
    from .spectrum_plot import fmt, gamma_text

    lines = [f"{doc['preset']}: eigenvalues of W_hh ({doc['cell']}, H = {doc['hidden']}): {doc['of']}"]
    for u, s in spectra:
        lines.append("")
        if u is not None:
            lines.append(f"update {u} (theta_{u - 1}, after {u - 1} updates)")
        lines.append(f"spectral radius {fmt(s.radius)}   sigma_max {fmt(s.sigma_max)}   circles at {', '.join(f'{r:g}' for r in s.circles)}")
        lines.append(f"{'block':<6}{'activation':<12}{'gamma':>6}{'radius':>12}{'sigma_max':>12}{'sigma_max*gamma':>17}{'outside |λ|=1':>15}")
        for b in s.blocks:
            out = f"{b.outside(1.0)} of {b.eigenvalues.size}" if s.finite else "-"
            lines.append(f"{b.gate:<6}{b.activation:<12}{gamma_text(b.gamma):>6}{fmt(b.radius):>12}{fmt(b.sigma_max):>12}{fmt(b.bound):>17}{out:>15}")
        lines.append(f"verdict: {s.verdict()}")
        for b in s.blocks:
            lines += _block_rows(b, fmt)
    return "\n".join(lines) + "\n"


def _block_rows(b, fmt) -> list[str]:
    out = [f"block {b.gate}: {'rank':>4}{'re':>12}{'im':>12}{'|λ|':>12}{'sigma':>12}"]
    for rank, (z, sv) in enumerate(zip(b.eigenvalues, b.singular_values), 1):
        out.append(f"{'':9}{rank:>4}{fmt(z.real):>12}{fmt(z.imag):>12}{fmt(abs(z)):>12}{fmt(sv):>12}")
    return out


def plot_text(doc: dict, spectra, width: int | None = None, height: int = 24) -> str:
    """The complex plane and the singular values of each spectrum, as plotext text."""
    import shutil

    import plotext as plt

    from .. import report
    from .spectrum_plot import draw_plane, draw_singular, fmt, legend

    width = width or min(shutil.get_terminal_size((100, 24)).columns, 120)
    color = report.stdout_color()
    parts = []
    for u, s in spectra:
        at = "" if u is None else f", update {u}"
        plt.clear_figure()
        if not color:
            plt.theme("clear")
        plt.plot_size(width, height)
        draw_plane(plt, s, width, height, f"{doc['preset']}{at}: eigenvalues, radius {fmt(s.radius)}")
        parts.append("legend: " + "   ".join(f"{glyph} {text}" for glyph, _, text in legend(s)))
        parts.append(plt.build())
        plt.clear_figure()
        if not color:
            plt.theme("clear")
        plt.plot_size(width, max(10, height // 2))
        draw_singular(plt, s, width, f"singular values, sigma_max {fmt(s.sigma_max)} (lines: 1 and 1/gamma)")
        parts.append(plt.build())
    plt.clear_figure()
    text = "\n".join(parts)
    return text if color else plt.uncolorize(text)


def _write(c, doc, spectra, fmt: str, output, force: bool, plot: bool) -> None:
    text = to_json(doc, spectra) + "\n" if fmt == "json" else to_csv(spectra) if fmt == "csv" else to_table(doc, spectra)
    with c._writing(output, force) as (target, _progress):
        with c.written_to(target, output, fmt, f"{len(spectra)} spectr{'um' if len(spectra) == 1 else 'a'}") as stream:
            stream.write(text)
    if plot:
        c.draw(plot_text(doc, spectra))


def screen(app):
    """The spectrum of what is on show: from the training view, its training
    (live, or at its cursor); else the per-step view's run (None before one is built)."""
    from .spectrum_screen import SpectrumScreen, TrainingSource, run_source

    training = getattr(app, "training_screen", None)
    if training is not None and app.screen is training:
        return SpectrumScreen(TrainingSource(training))
    if app.engine_run is None:
        return None
    return SpectrumScreen(run_source(app.engine_run, app.preset))
