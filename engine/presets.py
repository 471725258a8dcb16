"""Named presets: the one registry behind the CLI and the TUI.

A preset is a name, a one-line description, a "what to look for" sentence for
the UI, and a validated Config. Users add their own in a TOML file whose keys
are the CLI flag names (`hidden`, `clip-threshold`, ...), one table per preset:

    [my-lstm]
    description = "LSTM without a forget bias"
    look-for = "the cell gradient dies as fast as the hidden one"
    base = "lstm-cec"          # optional: start from a built-in preset
    forget-bias = 0.0
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .config import SPEC, Config, ConfigError

WIG = "The man who wore a wig on his head went inside"
DEFAULT_PRESET = "seed-explode"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    look_for: str
    config: Config
    source: str = "built-in"


def _p(name: str, description: str, look_for: str, **settings) -> Preset:
    return Preset(name, description, look_for, Config(**settings))


# SPEC section 2 models the MatMul node only: no inputs, so h stays 0 and only dh moves.
_CHAIN = dict(mode="chain", activation="linear", hidden=3, batch=2, steps=20, init="gaussian", seed=3, input_scale=0.0)
_EXPLODING_TANH = dict(hidden=32, batch=4, steps=60, init="orthogonal", scale=1.5, input_scale=0.1)
_SENTENCE = dict(text=WIG, hidden=16, loss_on="all", seed=1)

BUILTIN: dict[str, Preset] = {
    p.name: p
    for p in (
        _p(
            "seed-explode",
            "The reference matrix chain: dh <- dh Wh^T twenty times, Wh = randn(3, 3) after seed(3)",
            "sigma_max = 2.66 and spectral radius 1.26 > 1: the per-step ratio settles at 1.26 and the norm reaches ~250 at k = 20.",
            **_CHAIN,
        ),
        _p(
            "seed-vanish",
            "The same chain with Wh scaled by 0.5",
            "sigma_max = 1.33 > 1 yet it vanishes: the spectral radius 0.63 < 1 sets the rate, not sigma_max.",
            **_CHAIN,
            scale=0.5,
        ),
        _p(
            "clip-rescue",
            "An exploding tanh RNN (orthogonal W x 1.5) with global-norm clipping at 5.0",
            "The hidden gradient grows ~1.1x per step; the running parameter norm crosses 5.0 early and the final rescale brings ~280 down to 5.",
            **_EXPLODING_TANH,
            clip="norm",
            clip_threshold=5.0,
        ),
        _p(
            "step-clip",
            "The same exploding RNN with derivative clipping: the carried gradient is capped at 1.0 every step",
            "CLIP events happen mid-pass, at nearly every step once the norm has reached 1.0: the curve is held at the threshold.",
            **_EXPLODING_TANH,
            clip="step",
            clip_threshold=1.0,
        ),
        _p(
            "tanh-saturation",
            "Large inputs (scale 5) push tanh into saturation, where f'(net) is near 0",
            "Saturation around 60% of units: the gradient collapses ~0.27x per step although sigma_max(W) * gamma > 1.",
            hidden=32, batch=4, steps=60, init="xavier", input_scale=5.0,
        ),
        _p(
            "sigmoid-quarter",
            "Sigmoid RNN with sigma_max(W) = 2.7, between 1 and 4",
            "gamma = 1/4, so sigma_max * gamma = 0.67 < 1: vanishing is guaranteed for every input, though the spectral radius is 1.68.",
            hidden=32, batch=4, steps=60, activation="sigmoid", init="xavier", scale=1.5,
        ),
        _p(
            "relu-rescue",
            "The tanh-saturation inputs with ReLU instead of tanh (He gain sqrt(2) on W)",
            "No saturation collapse: active units pass the gradient unchanged (f' = 1), so the norm drifts ~1.04x per step instead of 0.27x.",
            hidden=32, batch=4, steps=60, activation="relu", init="xavier", scale=1.41, input_scale=5.0,
        ),
        _p(
            "irnn",
            "Identity recurrent weights with ReLU (Le, Jaitly and Hinton, 2015)",
            "The Jacobian is the identity on active units: the ratio is exactly 1.00 on most steps; the overall decay comes only from the steps where a unit was off.",
            hidden=32, batch=1, steps=60, activation="relu", init="identity",
        ),
        _p(
            "orthogonal",
            "Orthogonal W (every singular value 1) with small inputs, so tanh stays near its linear range",
            "The norm is almost flat (~0.998x per step); compare --init xavier, which dips and then grows.",
            hidden=32, batch=4, steps=60, init="orthogonal", input_scale=0.01,
        ),
        _p(
            "lstm-cec",
            "LSTM with forget-gate bias 3 (f ~ 0.93): the constant error carousel",
            "The hidden-path Jacobian sigma stays near 0.55, yet the cell-state gradient survives 100 steps; --forget-bias 0 makes both vanish ~0.64x per step.",
            cell="lstm", hidden=32, batch=4, steps=100, forget_bias=3.0,
        ),
        _p(
            "gru",
            "GRU with update-gate bias 3 (z ~ 0.93 keeps h_{t-1})",
            "The direct path diag(z) carries the gradient: ~0.95x per step, where --forget-bias 0 (z ~ 0.5) gives ~0.66x.",
            cell="gru", hidden=32, batch=4, steps=100, forget_bias=3.0,
        ),
        _p(
            "wig-sentence",
            f'Next-word prediction on "{WIG}", cross-entropy on every step',
            "Every word adds its own gradient; the loss that predicts 'went' reaches the input 'man' only through 7 Jacobians.",
            **_SENTENCE,
        ),
        _p(
            "truncated",
            "The wig sentence with truncated BPTT: each output's gradient travels at most 4 steps",
            "Steps past k = 4 are TRUNCATED: the loss that predicts 'went' no longer reaches 'man' (7 steps back); compare with wig-sentence.",
            **_SENTENCE,
            truncate=4,
        ),
    )
}

# TOML keys: the CLI flag names (dashes), also accepted with underscores.
_META = {"description", "look-for", "base"}
_SETTINGS = {name.replace("_", "-") for name in SPEC}


def load_toml(path: str | Path, known: dict[str, Preset] | None = None) -> dict[str, Preset]:
    """Presets from a user's TOML file; errors name the file, line and reason."""
    path = Path(path)
    known = BUILTIN if known is None else known
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("preset_file", f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("preset_file", f"{path}: cannot read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f"{path}:{m.group(1)}" if m else str(path)
        raise ConfigError("preset_file", f"{where}: {reason}") from None
    out: dict[str, Preset] = {}
    for name, table in data.items():
        line = _line_of(text, f"[{name}]")
        where = f"{path}:{line}" if line else str(path)
        if not isinstance(table, dict):
            raise ConfigError("preset_file", f"{where}: '{name}' must be a table ([{name}]) of settings")
        unknown = sorted(k for k in table if k.replace("_", "-") not in _META | _SETTINGS)
        if unknown:
            close = difflib.get_close_matches(unknown[0].replace("_", "-"), sorted(_META | _SETTINGS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError("preset_file", f"{where}: preset '{name}': unknown key '{unknown[0]}'{hint}")
        spelled = [k.replace("_", "-") for k in table]
        twice = sorted({k for k in spelled if spelled.count(k) > 1})
        if twice:
            raise ConfigError("preset_file", f"{where}: preset '{name}': '{twice[0]}' is given twice (with - and with _)")
        meta = {k.replace("_", "-"): v for k, v in table.items() if k.replace("_", "-") in _META}
        settings = {k.replace("-", "_"): v for k, v in table.items() if k.replace("_", "-") in _SETTINGS}
        base_name = meta.get("base")
        pool = {**known, **out}
        if base_name is not None and base_name not in pool:
            raise ConfigError("preset_file", f"{where}: preset '{name}': unknown base '{base_name}'{suggest(str(base_name), pool)}")
        base = pool[base_name].config if base_name else Config()
        try:
            config = base.with_overrides(**settings)
        except ConfigError as exc:
            raise ConfigError("preset_file", f"{where}: preset '{name}': {exc.message}") from None
        for key in ("description", "look-for"):
            if key in meta and not isinstance(meta[key], str):
                raise ConfigError("preset_file", f"{where}: preset '{name}': {key} must be a string")
        inherited = pool[base_name] if base_name else None
        out[name] = Preset(
            name,
            meta.get("description", inherited.description if inherited else "(user preset)"),
            meta.get("look-for", inherited.look_for if inherited else ""),
            config,
            source=str(path),
        )
    return out


def _line_of(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(needle):
            return i
    return None


def suggest(name: str, pool) -> str:
    """'; did you mean: a, b?' for the closest names, or ''."""
    close = difflib.get_close_matches(name, list(pool), n=3, cutoff=0.5)
    return f"; did you mean: {', '.join(close)}?" if close else ""


def registry(preset_file: str | Path | None = None) -> dict[str, Preset]:
    """The built-in presets plus a user's file (a user preset may shadow a built-in)."""
    presets = dict(BUILTIN)
    if preset_file:
        presets.update(load_toml(preset_file))
    return presets


def get(name: str, presets: dict[str, Preset] | None = None) -> Preset:
    presets = BUILTIN if presets is None else presets
    if name not in presets:
        raise ConfigError("preset", f"unknown preset '{name}'{suggest(name, presets)} (bptt-lab presets lists them)")
    return presets[name]


__all__ = ["BUILTIN", "DEFAULT_PRESET", "Preset", "get", "load_toml", "registry", "suggest"]
