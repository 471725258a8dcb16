"""Named presets: the one registry behind the CLI and the TUI.

A preset is a name, a one-line description, a "what to look for" sentence for
the UI, and a validated Config; a training preset (SPEC 8) also carries its
TrainingSettings, and its Config is the one its task configures (the task
fixes D, K and the loss), so `bptt-lab run` on it shows one backward pass of
the untrained model. Users add their own in a TOML file whose keys are the
CLI flag names (`hidden`, `clip-threshold`, `lr`, `updates`, ...), one table
per preset:

    [my-lstm]
    description = "LSTM without a forget bias"
    look-for = "the cell gradient dies as fast as the hidden one"
    base = "lstm-cec"          # optional: start from a built-in preset
    forget-bias = 0.0
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from .config import SPEC, Config, ConfigError
from .printable import ESCAPES as _ESCAPES
from .printable import printable
from .tasks import without_text
from .tasks.text import WIG
from .training import SETTINGS as TRAINING_SETTINGS
from .training import TrainingSettings
from .weights import file_sizes

DEFAULT_PRESET = "seed-explode"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    look_for: str
    config: Config
    source: str = "built-in"
    training: TrainingSettings | None = None  # a training preset: what `bptt-lab train` and the training view run


def _p(name: str, description: str, look_for: str, **settings) -> Preset:
    return Preset(name, description, look_for, Config(**settings))


def _t(name: str, description: str, look_for: str, training: dict, **settings) -> Preset:
    """A training preset: the model's settings and the training's; the Config as its task configures it."""
    s = TrainingSettings(**training)
    config = Config(**settings)
    return Preset(name, description, look_for, s.make_task(config).configure(config), training=s)


# SPEC section 2 models the MatMul node only: no inputs, so h stays 0 and only dh moves.
_CHAIN = dict(mode="chain", activation="linear", hidden=3, batch=2, steps=20, init="gaussian", seed=3, input_scale=0.0)
_EXPLODING_TANH = dict(hidden=32, batch=4, steps=60, init="orthogonal", scale=1.5, input_scale=0.1)
_SENTENCE = dict(text=WIG, hidden=16, loss_on="all", seed=1)

# The training presets (SPEC 8), seed 3, N = 32: runs that differ only in a
# remedy (clipping, cell, init) see the same batches.
_RELU_ADDING = dict(activation="relu", init="orthogonal", hidden=32, batch=32, steps=60, seed=3)
_EXPLODE_TRAINING = dict(task="adding", optimizer="sgd", lr=0.05, momentum=0.9, updates=1500, eval_every=25, diagnostics_every=1)
_ADDING = dict(hidden=32, batch=32, steps=100, seed=3)
_ADDING_TRAINING = dict(task="adding", optimizer="adam", lr=0.01, updates=1000, eval_every=25, eval_batch=512)
_ORDER = dict(hidden=32, batch=32, steps=50, seed=3)
_ORDER_TRAINING = dict(task="temporal-order", optimizer="adam", lr=0.01, updates=2000, eval_every=25)
# A long dependency in a short text: after "went", inside or outside follows
# from man or dog, five words back; every other word follows from the one before.
WIG_PAIR = "the man who wore a wig went inside . the dog who wore a wig went outside ."

BUILTIN: dict[str, Preset] = {
    p.name: p
    for p in (
        _p(
            "seed-explode",
            "The reference matrix chain: dh <- dh Wh^T twenty times, Wh = randn(3, 3) after seed(3)",
            "Press e: the ratio column settles at x1.26, the spectral radius in the summary bar, and |dL/dh| reaches ~250 at k = 20, though sigma(J) = sigma_max = 2.66: a linear chain grows at its radius.",
            **_CHAIN,
        ),
        _p(
            "seed-vanish",
            "The same chain with Wh scaled by 0.5",
            "sigma_max = 1.33 > 1, yet it vanishes: the ratio column settles at x0.628, the spectral radius in the summary bar, and |dL/dh| is ~2.4e-04 at k = 20. For a linear chain the radius decides.",
            **_CHAIN,
            scale=0.5,
        ),
        _p(
            "clip-rescue",
            "An exploding tanh RNN (orthogonal W x 1.5) with global-norm clipping at 5.0",
            "The chart's |grad| (params) crosses 5.0 at k = 6 ('norm crossed' in the step log; a: pause at CLIP), and the end-of-pass CLIP at k = 60 rescales ~280 to 5. |dL/dh| grows to 43 at k = 60, untouched.",
            **_EXPLODING_TANH,
            clip="norm",
            clip_threshold=5.0,
        ),
        _p(
            "step-clip",
            "The same exploding RNN with derivative clipping: the carried gradient is capped at 1.0 every step",
            "From k = 28, where |dL/dh| first passes 1.0, CLIP caps it at 1.0 on 29 of the 33 steps (a: pause at CLIP): the curve holds at the threshold line. g pins a ghost; c switches to agc: unclipped, ~43.",
            **_EXPLODING_TANH,
            clip="step",
            clip_threshold=1.0,
        ),
        _p(
            "tanh-saturation",
            "Large inputs (scale 5) push tanh into saturation, where f'(net) is near 0",
            "Large inputs saturate tanh: sat reads 45-80% (f' < 5% of its max), the ratio stays below x0.75, mostly below x0.5, and |dL/dh| is VANISHED from k = 11 (a: pause at VANISHED), although sigma_max·gamma = 1.79 > 1.",
            hidden=32, batch=4, steps=60, init="xavier", input_scale=5.0,
        ),
        _p(
            "sigmoid-quarter",
            "Sigmoid RNN with sigma_max(W) = 2.7, between 1 and 4",
            "gamma = 1/4, so sigma_max·gamma = 0.671 < 1 guarantees vanishing for every input: the ratio column stays below x0.671 at every step, VANISHED from k = 12, though the spectral radius in the summary bar is 1.68. v: 17 of the 32 eigenvalues lie outside the unit circle, yet every singular value inside the 1/γ = 4 circle.",
            hidden=32, batch=4, steps=60, activation="sigmoid", init="xavier", scale=1.5,
        ),
        _p(
            "relu-rescue",
            "The tanh-saturation inputs with ReLU instead of tanh (He gain sqrt(2) on W)",
            "ReLU has no saturation (f' is 1 or 0): 39-53% of units are dead (the dead column, f' = 0), yet active ones pass the gradient unchanged: |dL/dh| grows from 35 at k = 1 to 241 at k = 60. g, then set activation tanh: ~0.39x per step.",
            hidden=32, batch=4, steps=60, activation="relu", init="xavier", scale=1.41, input_scale=5.0,
        ),
        _p(
            "irnn",
            "Identity recurrent weights with ReLU (Le, Jaitly and Hinton, 2015)",
            "W_hh = I: the Jacobian is the identity on active units, so the ratio column reads exactly x1 on 50 of the 60 steps; the other 10 fall below 1, each on a step with dead units (the dead column): ~0.98x overall.",
            hidden=32, batch=1, steps=60, activation="relu", init="identity",
        ),
        _p(
            "orthogonal",
            "Orthogonal W (every singular value 1) with small inputs, so tanh stays near its linear range",
            "Every singular value of W_hh is 1 and tanh stays linear (sat 0%): the ratio column reads x0.996 to x1, an almost flat curve. g, then set init xavier (--init xavier): it dips to ~0.02 near k = 10, then grows to ~3.",
            hidden=32, batch=4, steps=60, init="orthogonal", input_scale=0.01,
        ),
        _p(
            "lstm-cec",
            "LSTM with forget-gate bias 3 (f ~ 0.93): the constant error carousel",
            "On the chart |dL/dc| stays above 7e-3 for 100 steps while 'h-path only', the most the hidden path alone keeps (sigma(J) ~0.55 on average), falls to ~1e-27: the cell path (f-gate ~0.93) carries it. --forget-bias 0: both vanish ~0.64x a step.",
            cell="lstm", hidden=32, batch=4, steps=100, forget_bias=3.0,
        ),
        _p(
            "gru",
            "GRU with update-gate bias 3 (z ~ 0.93 keeps h_{t-1})",
            "The direct path diag(z) carries the gradient: the z-gate column reads ~0.93 and |dL/dh| shrinks ~0.95x per step; forget bias 0 (--forget-bias 0, z ~ 0.5): ~0.66x, over 1e10 times less after 100 steps.",
            cell="gru", hidden=32, batch=4, steps=100, forget_bias=3.0,
        ),
        _p(
            "indrnn",
            "IndRNN (Li et al. 2018): each unit recurs on itself, h_t = f(x W_ih^T + b + u * h_{t-1}), here u = 1 on every unit",
            "The Jacobian is diag(u f'): with u = 1 and tanh near its linear range (sat 0%) the ratio column reads x0.996 to x1. Scale 0.95 (--scale 0.95): ~0.95x per step; 1.05: ~1.03x. The remedy: every |u_j| near 1.",
            cell="indrnn", hidden=32, batch=4, steps=100, init="identity", input_scale=0.01,
        ),
        _p(
            "wig-sentence",
            f'Next-word prediction on "{WIG}", cross-entropy on every step',
            "Each word's loss adds a gradient; the step log shows the word at each t. The loss predicting 'went' (at t = 9, after 'head') reaches 'man' (read at t = 2) only through 7 Jacobians: press n to follow it.",
            **_SENTENCE,
        ),
        _p(
            "truncated",
            "The wig sentence with truncated BPTT: each output's gradient travels at most 4 steps",
            "TRUNCATED from k = 5: each loss's gradient stops after 4 Jacobians, so the loss predicting 'went' (t = 9) stops at t = 5, short of 'man' (t = 2). The final |dL/dh| 2.33 > wig-sentence's 1.34: the dropped losses (t = 5..10) pointed against the kept ones (cosine -0.88) and had cancelled part of them.",
            **_SENTENCE,
            truncate=4,
        ),
        _p(
            "wig-went",
            "The wig sentence up to 'went', its one loss on the last step (the prediction of 'went'), truncated at 4 Jacobians",
            "Press h: ||dL/dx_t||, how much each word can still change the loss that predicts 'went' (T = 9, after 'head'). Truncated at 4 Jacobians it no longer reaches 'man': 0 exactly for 'wore', 'who', 'man' and 'The' (t = 4..1; 'man' at k = 7), 0.38 at 'a' (t = 5). With --truncate 0 it reaches 'man' with 0.17, a fifth of 'head''s 0.89.",
            **{**_SENTENCE, "text": WIG.rsplit(" ", 1)[0], "loss_on": "last"},
            truncate=4,
        ),
        _p(
            "phase-diagram",
            "A tanh RNN at H = 64, T = 200 (xavier W x scale): the default of bptt-lab sweep, scale 0.25-2.5 against tanh, relu and sigmoid",
            "bptt-lab sweep --plot: for tanh, sigma_max·gamma < 1 guarantees vanishing only below scale 0.53 (|) and the radius passes 1 at 0.98 (o), yet the growth stays below x1 a step up to scale 1.9: it vanishes anyway (saturation). relu explodes from 1.47; sigmoid (gamma 1/4) vanishes at every scale to 2.5, guaranteed below 2.12 only. Here, at scale 1: x0.64 a step.",
            hidden=64, batch=4, steps=200, init="xavier",
        ),
        _t(
            "train-explode",
            "A ReLU RNN learning the adding problem (T = 60) by SGD with momentum 0.9, no clipping: a cliff throws it to NaN",
            "ReLU, as a tanh RNN's bounded states saturate rather than overflow. The eval loss sits near the 1/6 baseline (0.163-0.183) while the spectral radius creeps from 1.00 to 1.37; then |grad| jumps from 0.90 (u = 1267) to 3.2e4 (u = 1268), the loss from 0.14 to 250, and u = 1270's loss is NaN: DIVERGED, the last finite weights kept. enter on 1268: its backward pass grows x1.03 a step. u clips at the suggested threshold: train-clip.",
            _EXPLODE_TRAINING,
            **_RELU_ADDING,
        ),
        _t(
            "train-clip",
            "train-explode's model, seed and batches with global-norm clipping at the suggested threshold",
            "Clipped at 0.611, the suggested threshold (u: the mean |grad| of 50 unclipped warm-up updates, range 0.31-6.1): CLIP on 315 of 1500 updates. The cliff still comes (raw |grad| 833 at u = 691) but the step stays small: no divergence, and from u = 725 the eval loss falls well below the 1/6 baseline at times (0.066-0.25, noisy), ending at 0.10.",
            _EXPLODE_TRAINING,
            **_RELU_ADDING,
            clip="norm",
            clip_threshold=0.6109612665500932,  # suggest_threshold(): the mean of 50 unclipped warm-up norms, as u sets it
        ),
        _t(
            "adding-rnn",
            "A tanh RNN on the adding problem with T = 100: the two marked values come up to 99 steps before the loss",
            "It never learns: for 1000 updates the eval mse stays around the 1/6 baseline (0.159-0.214). The gradient does not reach the markers: reach (|dL/dh_0| / |dL/dh_T|) is ~1e-13 and long_share, dW_hh's share from more than 50 steps back, ~4e-7 (medians). adding-lstm: the same seed and data, learned.",
            _ADDING_TRAINING,
            **_ADDING,
        ),
        _t(
            "adding-lstm",
            "adding-rnn's seed and data with an LSTM (forget-gate bias 1)",
            "Near the 1/6 baseline until u = 250, then the eval mse falls: 0.029 at u = 300, 0.00088 at u = 1000, 190x below it. The cell path carries the far terms: long_share ~0.41 and reach ~0.20 (medians), against adding-rnn's ~4e-7 and ~1e-13.",
            _ADDING_TRAINING,
            **_ADDING,
            cell="lstm",
            forget_bias=1.0,
        ),
        _t(
            "adding-irnn",
            "The adding problem (T = 100) with identity W_hh and ReLU (Le, Jaitly and Hinton 2015), adam 1e-3, norm clipping at 1.0",
            "The third way out: W_hh = I passes the gradient back (long_share ~0.36, reach ~0.29, medians). The eval mse starts at 2120, is below the 1/6 baseline at every evaluation from u = 550 but one (0.18 at u = 900) and below 0.06 from u = 950, to 0.011 at u = 3000, noisily. CLIP on 2983 of 3000 updates: the raw norm reaches 1.1e17 at u = 314.",
            {**_ADDING_TRAINING, "lr": 1e-3, "updates": 3000, "eval_every": 50},
            **_ADDING,
            activation="relu",
            init="identity",
            clip="norm",
            clip_threshold=1.0,
        ),
        _t(
            "temporal-order-rnn",
            "A tanh RNN on the temporal order problem (T = 50): X or Y at t1 in [5, 10) and t2 in [25, 30), their order the class",
            "Chance all the way: for 2000 updates the accuracy stays between 19% and 30% around the 25% of guessing, the eval loss near ln 4 = 1.39 (1.38-1.50). The first symbol comes 40-44 steps before the loss: long_share ~4e-9 and reach ~9e-14 (medians). temporal-order-lstm: the same seed and data, learned.",
            _ORDER_TRAINING,
            **_ORDER,
        ),
        _t(
            "temporal-order-lstm",
            "temporal-order-rnn's seed and data with an LSTM (forget-gate bias 1)",
            "After false starts (64% at u = 50, 46% at u = 175) it sits at chance (22-28%) from u = 200 to 875, then learns: 100% accuracy at every evaluation from u = 1125, eval loss 0.00063 at u = 2000. long_share ~0.23 (median) against the RNN's ~4e-9: the forget path keeps the far terms alive.",
            _ORDER_TRAINING,
            **_ORDER,
            cell="lstm",
            forget_bias=1.0,
        ),
        _t(
            "wig-train",
            f'Next-word training (adam 0.01) on "{WIG_PAIR}": inside or outside follows from man or dog',
            "Inside or outside, after 'went', needs 'man' or 'dog' five words back; every other word needs at most the one before it. Full BPTT: eval loss below 1.0 from u = 85, 0.42 at u = 100. --truncate 4 (each loss's gradient stops at 'who'): 1.58 at u = 100, ~2 ln 2 = 1.39 of it two coin flips, and below 1.0 only from u = 175, learnt from what the forward pass carries past the cut.",
            dict(task="text", text=WIG_PAIR, optimizer="adam", lr=0.01, updates=200, eval_every=5),
            hidden=16,
            seed=3,
        ),
    )
}

# TOML keys: the CLI flag names (dashes), also accepted with underscores.
_META = {"description", "look-for", "base"}
_SETTINGS = {name.replace("_", "-") for name in SPEC}
# Training settings (SPEC 8); `text` is the Config's key, and in a training preset whose task is text, the task's text.
_TRAINING = {name.replace("_", "-") for name in TRAINING_SETTINGS if name != "text"}

# A preset file is a few kilobytes. These bound the time a shared one can take:
# the TOML parser reads about 1 MB/s, each preset's Config takes about 0.1 ms,
# and the parser is quadratic in the number of parts of a dotted key.
MAX_FILE_BYTES = 2**20
MAX_PRESETS = 25_000
MAX_KEY_PARTS = 16
_DEEP_KEY = re.compile(
    rf"""(?<![A-Za-z0-9_-])(?:(?:[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+')[ \t]*+\.[ \t]*+){{{MAX_KEY_PARTS}}}"""
)

# -- user strings in messages and on screen -------------------------------------------------

# C0, DEL and C1 controls: what a terminal acts on.
# Also kept out of sentences shown as they are: line/paragraph separators and
# the bidi embeddings, overrides and isolates that reorder a line.
_HIDDEN = set(_ESCAPES) | {0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def _name_problem(name: str) -> str | None:
    """Why `name` cannot be a preset name (shown in lists, typed on a command line), or None."""
    if not name.strip():
        return "a preset name must not be empty or blank"
    if name.startswith("-"):
        return f"preset name '{printable(name, 80)}' starts with '-': a command line would read it as an option (bptt-lab run {printable(name, 80)}); start it with a letter or digit"
    for ch in name:
        if ch != " " and (ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Zs")):
            return f"preset name '{printable(name, 80)}' contains {_char(ch)}; use letters, digits, punctuation and plain spaces"
    return None


def _text_problem(key: str, value: str, allow_space_controls: bool = False) -> str | None:
    """Why the one-line text `value` cannot be shown as is, or None."""
    for ch in value:
        if allow_space_controls and ch in "\t\n\r":
            continue
        if ord(ch) in _HIDDEN:
            kind = "one line of plain text" if not allow_space_controls else "plain text"
            return f"{key} contains {_char(ch)}; it must be {kind}"
    return None


def _char(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} ({name})" if name else f"U+{ord(ch):04X} (a control character)"


def _toml_kind(value: object) -> str:
    """What a TOML value is, in TOML's words, with a short preview."""
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({printable(value, 40)})"
    if isinstance(value, float):
        return f"a float ({value!r})"
    if isinstance(value, str):
        return f'a string ("{printable(value, 40)}")'
    if isinstance(value, (datetime, date, time)):
        return f"a date/time ({value.isoformat()})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _setting_problem(key: str, value: object) -> str | None:
    """A setting of the wrong TOML type (ranges and choices are the Config's or the training's)."""
    name = key.replace("-", "_")
    spec = SPEC[name] if name in SPEC else TRAINING_SETTINGS[name]
    if spec.kind is str:
        if not isinstance(value, str):
            want = spec.describe() if spec.choices else "a string"
            return f"'{key}' must be {want}, got {_toml_kind(value)}"
        return _text_problem(f"'{key}'", value, allow_space_controls=True)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"'{key}' must be {spec.describe()}, got {_toml_kind(value)}"
    return None


# -- reading a file -------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    shown = printable(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # never more: a device or a pipe may not end
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise ConfigError("preset_file", f"{shown}: no such file") from None
    except IsADirectoryError:
        raise ConfigError("preset_file", f"{shown}: is a directory") from None
    except OSError as exc:
        raise ConfigError("preset_file", f"{shown}: cannot read ({printable(exc.strerror or exc)})") from None
    if len(raw) > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES / 2**20
        found = f"{math.ceil(size / 2**20 * 10) / 10:.1f} MB" if size > MAX_FILE_BYTES else f"over {limit:g} MB"
        raise ConfigError("preset_file", f"{shown}: preset file too large ({found}; limit {limit:g} MB)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError("preset_file", f"{shown}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def _parse(text: str, shown: str) -> dict:
    deep = _DEEP_KEY.search(text)
    if deep:
        line = text.count("\n", 0, deep.start()) + 1
        raise ConfigError("preset_file", f"{shown}:{line}: a dotted key with more than {MAX_KEY_PARTS} parts")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f"{shown}:{m.group(1)}" if m else shown
        raise ConfigError("preset_file", f"{where}: {printable(reason, 200)}") from None
    except RecursionError:
        raise ConfigError("preset_file", f"{shown}: arrays or tables nested too deeply") from None
    except ValueError as exc:  # an integer beyond Python's digit limit
        reason = "an integer has too many digits" if "digits" in str(exc) else printable(exc, 200)
        raise ConfigError("preset_file", f"{shown}: {reason}") from None


def load_toml(path: str | Path, known: dict[str, Preset] | None = None) -> dict[str, Preset]:
    """Presets from a user's TOML file; errors name the file, line and reason."""
    path = Path(path)
    shown = printable(path)
    known = BUILTIN if known is None else known
    text = _read_text(path)
    data = _parse(text, shown)
    if len(data) > MAX_PRESETS:
        raise ConfigError("preset_file", f"{shown}: too many presets ({len(data)}; limit {MAX_PRESETS})")
    lines = _table_lines(text)
    out: dict[str, Preset] = {}
    pool = dict(known)  # the bases a preset may name: built-ins and the presets above it
    default = Config()
    for name, table in data.items():
        line = lines.get(name)
        where = f"{shown}:{line}" if line else shown
        problem = _name_problem(name)
        if problem:
            raise ConfigError("preset_file", f"{where}: {problem}")
        pname = printable(name)
        if name in known:
            raise ConfigError("preset_file", f"{where}: '{pname}' is a built-in preset; a file may not replace it: choose another name (base = \"{pname}\" starts from it)")
        if not isinstance(table, dict):
            raise ConfigError("preset_file", f"{where}: '{pname}' must be a table ([{pname}]) of settings")
        known_keys = _META | _SETTINGS | _TRAINING
        unknown = sorted(k for k in table if k.replace("_", "-") not in known_keys)
        if unknown:
            close = difflib.get_close_matches(unknown[0].replace("_", "-"), sorted(known_keys), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError("preset_file", f"{where}: preset '{pname}': unknown key '{printable(unknown[0], 80)}'{hint}")
        spelled = [k.replace("_", "-") for k in table]
        twice = sorted({k for k in spelled if spelled.count(k) > 1})
        if twice:
            raise ConfigError("preset_file", f"{where}: preset '{pname}': '{twice[0]}' is given twice (with - and with _)")
        meta = {k.replace("_", "-"): v for k, v in table.items() if k.replace("_", "-") in _META}
        for key in ("base", "description", "look-for"):
            if key in meta and not isinstance(meta[key], str):
                want = "a preset name (a string)" if key == "base" else "a string"
                raise ConfigError("preset_file", f"{where}: preset '{pname}': {key} must be {want}, got {_toml_kind(meta[key])}")
        for key in ("description", "look-for"):
            problem = _text_problem(key, meta.get(key, ""))
            if problem:
                raise ConfigError("preset_file", f"{where}: preset '{pname}': {problem}")
        for key, value in table.items():
            if key.replace("_", "-") in _SETTINGS | _TRAINING:
                problem = _setting_problem(key, value)
                if problem:
                    raise ConfigError("preset_file", f"{where}: preset '{pname}': {problem}")
        settings = {k.replace("-", "_"): v for k, v in table.items() if k.replace("_", "-") in _SETTINGS}
        trained = {k.replace("-", "_"): v for k, v in table.items() if k.replace("_", "-") in _TRAINING}
        base_name = meta.get("base")
        if base_name is not None and base_name not in pool:
            raise ConfigError("preset_file", f"{where}: preset '{pname}': unknown base '{printable(base_name, 80)}'{suggest(base_name, pool)}")
        inherited = pool[base_name] if base_name else None
        base = inherited.config if inherited else default
        try:
            config, training = _training_preset(base, inherited.training if inherited else None, settings, trained)
        except ConfigError as exc:
            raise ConfigError("preset_file", f"{where}: preset '{pname}': {printable(exc.message)}") from None
        out[name] = Preset(
            name,
            meta.get("description", inherited.description if inherited else "(user preset)"),
            meta.get("look-for", inherited.look_for if inherited else ""),
            config,
            source=str(path),
            training=training,
        )
        pool[name] = out[name]
    return out


def _training_preset(base: Config, base_training: TrainingSettings | None, settings: dict, trained: dict) -> tuple[Config, TrainingSettings | None]:
    """The Config and TrainingSettings of a file's preset: a training preset
    when it gives a training key or starts from a training preset; then its
    `text`, with task text, is the task's text, and the Config is the one the
    task configures (as the built-in training presets')."""
    if base_training is None and not trained:
        return base.with_overrides(sizes=file_sizes(settings), **settings), None
    training = (base_training or TrainingSettings()).with_overrides(**trained)
    if "text" in settings and training.task == "text":
        training = training.with_overrides(text=settings.pop("text"))
    if base.text and (training.task != "text" or training.window or (training.text or base.text) != base.text):
        base = without_text(base)
    config = base.with_overrides(sizes=file_sizes(settings), **settings)
    task = training.make_task(config)
    configured = task.configure(config)
    task.check_given(settings, configured)
    return configured, training


# Where each table starts, found in one pass over the text. The file has
# already parsed as TOML, so a `[` at the start of a line outside a
# multi-line string or array opens a table header.
_KEY = r"""[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'"""
_DOTTED = rf"(?:{_KEY})(?:[ \t]*\.[ \t]*(?:{_KEY}))*"
_HEADER = re.compile(rf"[ \t]*\[\[?[ \t]*({_DOTTED})[ \t]*\]")
_TOP_KEY = re.compile(rf"[ \t]*({_DOTTED})[ \t]*=")
_PART = re.compile(_KEY)
_TOKEN = re.compile(
    r'"""(?:\\[\s\S]|[^\\])*?"{3,5}'  # multi-line basic string
    r"|'''[\s\S]*?'{3,5}"  # multi-line literal string
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|[\[\]\n]"
)


def _first_key(dotted: str) -> str:
    """The first key of a dotted key, unquoted: `"a.b" . c` -> 'a.b'."""
    part = _PART.match(dotted).group()
    if part[0] == '"':
        return tomllib.loads(f"k = {part}")["k"]
    return part[1:-1] if part[0] == "'" else part


def _table_lines(text: str) -> dict[str, int]:
    """The line of the first header (or top-level key) of each top-level name:
    `[a]`, `[ a ]`, `["quoted \\n name"]`, `[a.b]` (gives `a`), `[[a]]`, `a = 1`."""
    lines: dict[str, int] = {}
    line, depth, top = 1, 0, True

    def line_start(pos: int) -> int:
        nonlocal top
        m = _HEADER.match(text, pos)
        if m:
            lines.setdefault(_first_key(m.group(1)), line)
            top = False
            end = m.end()
            return end + 1 if text.startswith("]", end) else end
        if top:
            m = _TOP_KEY.match(text, pos)
            if m:
                lines.setdefault(_first_key(m.group(1)), line)
                return m.end()
        return pos

    pos = line_start(0)
    while (m := _TOKEN.search(text, pos)) is not None:
        tok, pos = m.group(), m.end()
        if tok == "\n":
            line += 1
            if depth == 0:
                pos = line_start(pos)
        elif tok == "[":
            depth += 1
        elif tok == "]":
            depth = max(0, depth - 1)
        elif tok[0] != "#":
            line += tok.count("\n")
    return lines


def suggest(name: str, pool) -> str:
    """'; did you mean: a, b?' for the closest names, or ''."""
    close = difflib.get_close_matches(name, list(pool), n=3, cutoff=0.5)
    return f"; did you mean: {', '.join(printable(c, 80) for c in close)}?" if close else ""


def registry(preset_file: str | Path | None = None) -> dict[str, Preset]:
    """The built-in presets plus a user's file (whose names must differ from the built-ins')."""
    presets = dict(BUILTIN)
    if preset_file:
        presets.update(load_toml(preset_file))
    return presets


def get(name: str, presets: dict[str, Preset] | None = None) -> Preset:
    presets = BUILTIN if presets is None else presets
    if name not in presets:
        raise ConfigError("preset", f"unknown preset '{printable(name, 80)}'{suggest(str(name), presets)} (bptt-lab presets lists them)")
    return presets[name]


__all__ = ["BUILTIN", "DEFAULT_PRESET", "MAX_FILE_BYTES", "MAX_PRESETS", "Preset", "get", "load_toml", "printable", "registry", "suggest"]
