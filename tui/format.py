"""Words and numbers for people: how the front ends phrase what the engine recorded.

Shared by the CLI and the dashboard; nothing here computes a gradient, it only
formats records and summaries.
"""

from __future__ import annotations

import math
import re
import textwrap

from engine.printable import printable  # noqa: F401  (re-exported: the front ends escape user strings with it)
from engine.records import ClipEvent, StepRecord


def num(x: float | None, digits: int = 3, na: str = "-") -> str:
    """A compact number: 1.23e-05, 0.532, 249; `na` for NaN or None.

    Pass na="nan" for quantities that always apply, so that a value lost to
    overflow does not read as "does not apply"."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return na
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e4 or a < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def log_ticks(lows: list[float], highs: list[float], most: int = 8) -> tuple[int, int, list[int], list[str]]:
    """The y range (whole powers of ten) of log10 data, with at most ~`most` ticks labelled 1e-3, 1, 1e2."""
    lo, hi = math.floor(min(lows)), math.ceil(max(highs))
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    step = max(1, math.ceil((hi - lo) / most))
    ticks = list(range(math.ceil(lo / step) * step, hi + 1, step))  # multiples of step: 1 is always labelled
    return lo, hi, ticks, ["1" if t == 0 else f"1e{t}" for t in ticks]


HIDDEN_PATH = "h-path only"  # the label of the hidden_path series and column


def run_series(run, main_marker: str) -> list[tuple[str, object, str]]:
    """(label, values per step so far, marker) of what both charts draw from a run:
    |dL/dh|; for an LSTM |dL/dc| and the most the hidden path alone keeps
    (the product of sigma(J), the contrast that shows the cell path at work);
    for an rnn the bound. Markers differ so the series stay apart without colour."""
    cols, k = run.records.columns, run.k
    series = [("|dL/dh|", cols["grad_norm"][:k], main_marker)]
    if run.cell.has_cell_state:
        series.append(("|dL/dc|", cols["cell_norm"][:k], "+"))
        series.append((HIDDEN_PATH, cols["hidden_path"][:k], "x"))
    if run.bound_factor is not None:
        series.append(("bound", cols["bound"][:k], "dot"))
    return series


def percent(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.0f}%"


def clip_text(event: ClipEvent | None, short: bool = False) -> str:
    """CLIP norm 12.3 -> 5 (x0.41), or the crossing mark of an end-of-pass rule."""
    if event is None:
        return ""
    if not event.applied:
        return f"{event.mode} crossed ({num(event.before)})" if short else f"{event.mode} threshold crossed at {num(event.before)}"
    if short:
        return f"CLIP {num(event.before)}->{num(event.after)} x{num(event.factor, 2)}"
    return f"CLIP {event.mode} {num(event.before)} -> {num(event.after)} (x{num(event.factor)})"


def status_tag(record: StepRecord) -> str:
    return {"ok": "", "vanishing": "VANISHED", "exploding": "EXPLODED", "overflow": "OVERFLOW", "truncated": "TRUNCATED"}[record.status]


NOT_NECESSARY = "< 1 is sufficient for vanishing, not necessary."


def verdict(summary: dict) -> str:
    """The vanishing condition in words, decisive words first (the dashboard
    shows it on one line, cut at the right edge): `verdict_sentences` joined."""
    return " ".join(verdict_sentences(summary))


def verdict_sentences(summary: dict) -> list[str]:
    """What sigma_max(W_hh)·gamma says about this run (SPEC section 1).

    sigma_max·gamma < 1 is sufficient for vanishing, for every input
    (Pascanu, Mikolov and Bengio); it is not necessary, so > 1 guarantees
    nothing. For a linear chain (every Jacobian is W_hh itself) the spectral
    radius decides: below 1 the gradient vanishes, above 1 it explodes
    (SPEC section 2: sigma_max = 1.33, radius 0.63, it vanishes). Gated cells
    have no such bound.

    Each number is shown with as many digits as it takes to sit on the same
    side of its threshold as the true value (sigma_max beside 1/gamma, the
    product and the radius beside 1): 0.9996 never reads "1 < 1", and
    sigma_max = 3.99996 with gamma = 1/4 never reads "4·1/4 < 1". A value
    within round-off of 1 is the boundary."""
    product = summary.get("sigma_gamma")
    if product is None:
        return ["gated cell: the bound sigma_max·gamma does not apply.", "Watch the gates."]
    if not math.isfinite(product):
        return ["sigma_max·gamma cannot be computed: W_hh is not finite."]
    gamma, sigma = summary["gamma"], summary["sigma_max"]
    g = "1/4" if gamma == 0.25 else num(gamma)
    if _at_one(product):
        condition = f"sigma_max·gamma = {num(1 / gamma)}·{g} = 1 to round-off"
    else:
        digits = max(_digits_beside(product, 1.0), _digits_beside(sigma, 1.0 / gamma))
        condition = f"sigma_max·gamma = {num(sigma, digits)}·{g} = {num(product, digits)} {'<' if product < 1 else '>'} 1"
        if product < 1:
            return [f"vanishing guaranteed: {condition}.", "Sufficient for every input (Pascanu, Mikolov, Bengio)."]
    radius = summary.get("spectral_radius")
    if summary.get("linear_chain") and radius is not None and math.isfinite(radius):
        return [_radius_decides(radius), f"{condition} guarantees nothing:", NOT_NECESSARY]
    return [f"vanishing not guaranteed: {condition}.", NOT_NECESSARY]


def _at_one(x: float) -> bool:
    return abs(x - 1.0) <= 1e-12


def _radius_decides(radius: float) -> str:
    """A linear chain multiplies the gradient by W_hh at every step: its
    spectral radius is the growth factor per step in the long run."""
    if _at_one(radius):
        return "neither vanishes nor explodes geometrically: linear chain, spectral radius 1."
    shown = num(radius, _digits_beside(radius, 1.0))
    if radius < 1:
        return f"vanishes: linear chain, spectral radius {shown} < 1 decides."
    return f"explodes: linear chain, spectral radius {shown} > 1 decides."


def _digits_beside(x: float, pivot: float) -> int:
    """The fewest significant digits (at least 3) with which `num(x)` reads as
    below or above `pivot` exactly as x is."""
    for digits in range(3, 18):
        shown = float(num(x, digits))
        if (shown < pivot) == (x < pivot) and (shown > pivot) == (x > pivot):
            return digits
    return 17


def _wrap(sentence: str, width: int) -> list[str]:
    """Lines of at most `width` (unless one formula is longer), never breaking
    a formula such as `sigma_max·gamma = 1.0004·1 = 1.0004 > 1`."""
    glued = re.sub(r" ([=<>]) ", "\0\\1\0", sentence)
    return [line.replace("\0", " ") for line in textwrap.wrap(glued, width, break_long_words=False, break_on_hyphens=False)]


def summary_lines(summary: dict) -> list[str]:
    """The run's summary as labelled lines (each within 80 columns for the usual values)."""
    lines = []

    def add(label: str, text: str) -> None:
        lines.append(f"{label:<17} {text}")

    if summary.get("spectral_radius") is not None:
        add("spectral radius", num(summary["spectral_radius"]))
    elif summary.get("gate_spectral_radii"):
        add("spectral radius", ", ".join(f"{g} {num(r)}" for g, r in summary["gate_spectral_radii"].items()))
    add("singular values", ", ".join(num(s) for s in summary["singular_values"]) + "  (of W_hh)")
    for i, sentence in enumerate(verdict_sentences(summary)):
        for j, part in enumerate(_wrap(sentence, 80 - 18)):
            add("verdict" if i == j == 0 else "", part)
    growth = summary["mean_growth"]
    add("growth per step", f"x{growth:.3f}  ({summary['regime']})" if math.isfinite(growth) else f"- ({summary['regime']})")
    add("gradient norm", f"start {num(summary['start_norm'], na='nan')}, final {num(summary['final_norm'], na='nan')}")
    if summary.get("final_cell_norm") is not None:
        path = summary.get("final_hidden_path")
        alone = f"  (the hidden path alone: at most {num(path, na='nan')})" if path is not None else ""
        add("cell gradient", f"final {num(summary['final_cell_norm'], na='nan')}{alone}")
    for key, label in (("first_vanishing_k", "vanished at"), ("first_exploding_k", "exploded at"), ("overflow_k", "overflow at")):
        if summary.get(key) is not None:
            add(label, f"k = {summary[key]}")
    if summary.get("forward_overflow_t") is not None:
        add("forward overflow", f"t = {summary['forward_overflow_t']} (the states themselves)")
    clips = summary["clip_events"]
    if clips:
        where = ", ".join(map(str, summary["clip_steps"][:8])) + (", ..." if clips > 8 else "")
        add("clip events", f"{clips} (k = {where})")
    if summary.get("clip_crossed_k"):
        add("threshold crossed", f"k = {summary['clip_crossed_k']}")
    if summary.get("done"):
        raw, final = summary["grad_norm_total_raw"], summary["grad_norm_total"]
        change = f" (before clipping {num(raw)})" if clips and raw != final else ""
        add("parameter grads", f"{num(final, na='not finite')}{change}")
    add("loss", f"{num(summary['loss'], 6, na='not finite')}  [{summary['objective']}]")
    if summary["jacobian_sigma_method"] != "exact":
        add("sigma(J)", "estimated for H > 32: a lower bound, typically within 5%")
    return lines


def _steps_list(values: list[int], most: int = 6) -> str:
    """0, 100, 200, ..., 1500: the first few and the last of a long list."""
    if len(values) <= most:
        return ", ".join(map(str, values))
    return ", ".join(map(str, values[: most - 1])) + f", ..., {values[-1]}"


def training_summary_lines(summary: dict, config, notes: list[str] = ()) -> list[str]:
    """A training's summary (Training.summary()) as labelled lines: how it
    ended, the evaluation against the task's baseline, the clips, the largest
    norm and the threshold range of SPEC 8."""
    from engine.tasks import TASKS

    lines = []

    def add(label: str, text: str) -> None:
        lines.append(f"{label:<17} {text}")

    done, status = summary["updates_done"], summary["status"]
    if status == "diverged":
        u = summary["diverged_at"]
        kept = f"the parameters after u = {u - 1}, the last finite ones" if u > 1 else "the initial parameters"
        add("status", f"DIVERGED at u = {u}: its {summary['diverged_on']} is not finite; kept: {kept}")
    elif status == "done":
        add("status", f"done: {done:,} updates")
    else:
        add("status", f"stopped after {done:,} updates")
    task = TASKS[summary["task"]]
    accuracy = summary["metric_name"] == "accuracy"
    show = percent if accuracy else (lambda x: num(x, na="not finite"))
    for label, key, initial, baseline in (
        ("eval loss", "eval_loss", summary["initial_eval_loss"], summary["baseline_loss"]),
        ("accuracy", "metric", summary["initial_metric"], summary["baseline_metric"]),
    ):
        if label == "accuracy" and not accuracy:
            continue
        fmt = show if label == "accuracy" else (lambda x: num(x, na="not finite"))
        text = f"{fmt(initial)} at u = 0"
        last_u, last = summary["last_eval_u"], summary[f"final_{key}" if key == "metric" else "final_eval_loss"]
        finite_u = summary["last_finite_eval_u"]
        if finite_u is not None and finite_u != last_u:
            text += f" -> {fmt(summary['last_finite_metric' if key == 'metric' else 'last_finite_eval_loss'])} at u = {finite_u}; not finite at u = {last_u}"
        elif last_u is not None:
            text += f" -> {fmt(last)} at u = {last_u}"
        add(label, f"{text}  (baseline {fmt(baseline)}: {task.baseline_label})")
    clips = summary["clip_events"]
    if config.clip == "none":
        add("clipping", "none")
    else:
        first = f" (first at u = {summary['first_clip_u']})" if clips else ""
        add("clipped", f"{clips:,} of {done:,} updates{first}: {config.clip} at {num(config.clip_threshold)}")
    if summary["max_grad_norm_raw"] is not None:
        add("largest |grad|", f"{num(summary['max_grad_norm_raw'])}  (raw, before any clip; the largest finite one)")
    if summary.get("median_reach") is not None:
        add("reach", f"median {num(summary['median_reach'])}  (|dL/dh_0| / |dL/dh_T|: how much gradient gets back to the start)")
    if summary.get("median_long_share") is not None:
        add("long_share", f"median {num(summary['median_long_share'])}  (dW_hh's share from more than T/2 steps back)")
    s = summary.get("suggestion")
    if s:
        add("threshold range", f"{num(s['low'])} to {num(s['high'])}: 0.5x to 10x the mean raw |grad| {num(s['mean'])} of {s['updates']} unclipped warm-up updates")
    checkpoints = summary["checkpoints"]
    add("checkpoints", f"{len(checkpoints)}: u = {_steps_list(checkpoints)}")
    for note in notes:
        add("", note)
    return lines
