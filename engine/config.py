"""The one validated description of a run.

Every entry point (CLI flags, a TOML preset, the TUI form) builds a `Config`
the same way: start from a preset, apply the settings the user gave
explicitly with `Config.with_overrides`, and let `__post_init__` validate.
Errors are `ConfigError`s that name the field, the value and what is allowed;
the front ends translate the field name into their own (a flag, a form row).
Everything downstream trusts a `Config`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from .cells import CELLS as CELL_TYPES
from .clipping import RULES

MODES = ("bptt", "chain")
CELLS = tuple(CELL_TYPES)
ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "linear")
LOSSES = ("mse", "xent")
LOSS_PLACEMENTS = ("last", "all")
INITS = ("gaussian", "xavier", "orthogonal", "identity", "torch")
CLIP_MODES = ("none", *RULES)

# Threshold used when a clip mode is chosen without one, as each rule declares:
# the source's 5.0 for the norm rules, 1.0 for element values, lambda = 0.01 for AGC.
CLIP_DEFAULTS = {"none": 0.0, **{name: rule.default_threshold for name, rule in RULES.items()}}

# A run larger than this is refused up front, with the estimate.
MEMORY_LIMIT_BYTES = 4 * 2**30



class ConfigError(ValueError):
    """A setting that cannot be used. `field` names the Config field."""

    def __init__(self, field_name: str | None, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Field:
    """One Config field: its validation (the single source of ranges) and how
    the front ends offer it. `group` names the CLI help panel and the
    dashboard form's section; `label` is its short name in the form (None:
    not in the form); `short` is a one-letter CLI alias."""

    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""
    group: str = "model"
    label: str | None = None
    short: str | None = None

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            return f"{kind} from {_fmt(self.low)} to {_fmt(self.high)}"
        if self.low is not None:
            return f"{kind} >= {_fmt(self.low)}"
        return kind


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


# Groups, in the order the front ends show them (the CLI's help panels, the form's sections).
GROUPS = ("model", "weights", "loss", "clipping", "truncation", "statuses")

# In each group the order is the form's and the CLI help's.
SPEC: dict[str, Field] = {
    "cell": Field(str, choices=CELLS, help="recurrent cell (PyTorch layout)", label="cell"),
    "activation": Field(str, choices=ACTIVATIONS, help="nonlinearity of an rnn cell", label="activ."),
    "leaky_slope": Field(float, 0.0, 1.0, help="negative slope of leaky_relu"),
    "hidden": Field(int, 1, 4096, help="hidden size H", label="H", short="-H"),
    "batch": Field(int, 1, 4096, help="batch size N", label="N", short="-N"),
    "steps": Field(int, 1, 1_000_000, help="sequence length T", label="T", short="-T"),
    "input_size": Field(int, 1, 4096, help="input size D (a text sets it to its vocabulary)"),
    "output_size": Field(int, 1, 4096, help="readout size K (a text sets it to its vocabulary)"),
    "init": Field(str, choices=INITS, help="initialisation of weight_hh_l0", group="weights", label="init"),
    "scale": Field(float, 0.0, 1e6, help="multiplier of the weight_hh_l0 initialisation", group="weights", label="scale"),
    "spectral_radius": Field(float, 0.0, 1e6, help="rescale weight_hh_l0 to this spectral radius (0: off)", group="weights", label="radius"),
    "forget_bias": Field(float, -1e3, 1e3, help="bias of the keep gate: LSTM forget gate f, GRU update gate z", group="weights", label="forget b"),
    "seed": Field(int, 0, 2**32 - 1, help="seed of every random draw", group="weights", label="seed"),
    "weights": Field(str, help="a PyTorch state_dict to load: .npz, .safetensors or .pt/.pth (torch.save; reading it needs torch)", group="weights"),
    "weights_prefix": Field(str, help="the RNN's module path in the weights file, e.g. encoder.rnn ('.' for bare names; default: the one prefix with recurrent weights)", group="weights"),
    "layer": Field(int, 0, 999, help="the layer of a multi-layer RNN in the weights file to step (alone, on random inputs of its input size)", group="weights"),
    "mode": Field(str, choices=MODES, help="bptt: a loss on a readout; chain: dL/dh_T = ones, the SPEC section 2 matrix chain", group="loss", label="mode"),
    "loss": Field(str, choices=LOSSES, help="mse or softmax cross-entropy", group="loss", label="loss"),
    "loss_on": Field(str, choices=LOSS_PLACEMENTS, help="loss on the last step or on all steps", group="loss", label="on"),
    "input_scale": Field(float, 0.0, 1e6, help="standard deviation of the random inputs", group="loss", label="inputs x"),
    "text": Field(str, help="word-level token sequence: next-word prediction instead of random inputs", group="loss"),
    "clip": Field(str, choices=CLIP_MODES, help="gradient clipping rule", group="clipping", label="clip"),
    "clip_threshold": Field(float, 0.0, 1e12, help="max norm (norm, step), c (value) or lambda (agc)", group="clipping", label="threshold"),
    "truncate": Field(int, 0, 1_000_000, help="truncated BPTT: steps each output's gradient travels (0: off)", group="truncation", label="truncate"),
    "vanish_threshold": Field(float, 0.0, 1.0, help="status 'vanishing' below this fraction of the starting norm", group="statuses"),
    "explode_threshold": Field(float, 1.0, 1e300, help="status 'exploding' above this multiple of the starting norm", group="statuses"),
}


@dataclass(frozen=True)
class Config:
    """Every setting of a run, validated on construction.

    `clip_threshold=None` means the chosen clip mode's default
    (`CLIP_DEFAULTS`); after construction it always holds a number.
    """

    mode: str = "bptt"
    cell: str = "rnn"
    activation: str = "tanh"
    leaky_slope: float = 0.01
    hidden: int = 16
    batch: int = 4
    steps: int = 50
    input_size: int = 4
    output_size: int = 4
    input_scale: float = 1.0
    text: str = ""
    loss: str = "mse"
    loss_on: str = "last"
    init: str = "xavier"
    scale: float = 1.0
    spectral_radius: float = 0.0
    forget_bias: float = 0.0
    clip: str = "none"
    clip_threshold: float | None = None
    truncate: int = 0
    vanish_threshold: float = 1e-6
    explode_threshold: float = 1e6
    seed: int = 0
    weights: str = ""
    weights_prefix: str = ""
    layer: int = 0

    # Derived, not settable: the vocabulary of `text` (sorted, unique words).
    vocabulary: tuple[str, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.init:
                _check(f.name, getattr(self, f.name))
        if self.clip_threshold is None:
            object.__setattr__(self, "clip_threshold", CLIP_DEFAULTS[self.clip])
        if self.clip != "none" and not self.clip_threshold > 0:
            raise ConfigError("clip_threshold", f"clip_threshold must be > 0 with clip '{self.clip}', got {self.clip_threshold:g}")
        for name, reason in self.inapplicable():
            raise ConfigError(name, reason)
        if self.text:
            self._apply_text()
        need = self.memory_estimate()
        if need > MEMORY_LIMIT_BYTES:
            raise ConfigError(
                "steps",
                f"this run needs about {need / 2**30:.1f} GiB "
                f"(T={self.steps} x N={self.batch} x H={self.hidden} forward caches); "
                f"the limit is {MEMORY_LIMIT_BYTES / 2**30:.0f} GiB: reduce steps, batch or hidden",
            )

    def _apply_text(self) -> None:
        words = self.text.split()
        if len(words) < 2:
            raise ConfigError("text", "text needs at least two words (inputs are words 1..n-1, targets words 2..n)")
        vocab = tuple(sorted(set(words)))
        if len(vocab) < 2:
            raise ConfigError("text", f"text needs at least two different words: '{vocab[0]}' alone is one class, so cross-entropy has nothing to predict")
        limit = SPEC["input_size"].high
        if len(vocab) > limit:
            raise ConfigError("text", f"text has {len(vocab)} different words; the vocabulary is at most {limit:g} (it sets input_size and output_size)")
        object.__setattr__(self, "vocabulary", vocab)
        # A text fixes the shapes: one sequence, next-word prediction.
        for name, value in (("steps", len(words) - 1), ("input_size", len(vocab)), ("output_size", len(vocab)), ("batch", 1), ("loss", "xent")):
            object.__setattr__(self, name, value)

    def why_not(self, name: str) -> str | None:
        """Why setting `name` does not apply to this configuration, or None if it does."""
        cell = CELL_TYPES[self.cell]
        if name == "activation" and not cell.uses_activation:
            takes = ", ".join(n for n, c in CELL_TYPES.items() if c.uses_activation)
            return f"activation '{self.activation}' applies to cells {takes} only ({self.cell} has fixed sigmoid/tanh gates)"
        if name == "leaky_slope" and self.activation != "leaky_relu":
            return "leaky_slope applies to activation leaky_relu only"
        if name == "forget_bias" and cell.keep_gate is None:
            takes = ", ".join(f"{n} ({c.keep_label})" for n, c in CELL_TYPES.items() if c.keep_gate)
            return f"forget_bias applies to cells with a keep gate only: {takes}"
        if name in ("init", "scale", "spectral_radius", "forget_bias") and self.weights:
            return f"{name} does not apply when weights are loaded from a file"
        if name in ("weights_prefix", "layer") and not self.weights:
            return f"{name} applies only with weights (a file to load: --weights)"
        if name in ("text", "loss", "loss_on", "output_size") and self.mode == "chain":
            return f"{name} does not apply to mode chain (it has no readout: dL/dh_T = ones)"
        if name == "clip_threshold" and self.clip == "none":
            return "clip_threshold needs a clip mode (clip is none)"
        if name == "input_scale" and self.text:
            return "input_scale does not apply to a text (its inputs are one-hot words)"
        return None

    def inapplicable(self) -> list[tuple[str, str]]:
        """Non-default settings that this configuration would silently ignore."""
        default = Config.__dataclass_fields__
        out = []

        def given(name: str) -> bool:
            if name == "clip_threshold":
                return self.clip_threshold not in (None, 0.0)
            return getattr(self, name) != default[name].default

        for name in SPEC:
            reason = self.why_not(name)
            if reason and given(name):
                out.append((name, reason))
        if self.loss == "xent" and self.output_size < 2 and not self.text:
            out.append(("output_size", "output_size must be at least 2 with loss xent (one class gives a loss of 0)"))
        if self.text:
            words = self.text.split()
            derived = {"steps": len(words) - 1, "input_size": len(set(words)), "output_size": len(set(words)), "batch": 1, "loss": "xent"}
            for name, value in derived.items():
                if given(name) and getattr(self, name) != value:
                    out.append((name, f"{name} is set by text ({len(words)} words: {name} = {value}), got {getattr(self, name)}"))
        return out

    # -- construction helpers -------------------------------------------------

    def with_overrides(self, sizes: dict[str, int] | None = None, **explicit: Any) -> Config:
        """A copy with the settings the user gave explicitly.

        Settings inherited from the base that no longer apply (a preset's
        forget_bias after switching to gru, a preset's relu after switching
        to lstm) fall back to their defaults; a setting given explicitly that
        does not apply is an error, never silently dropped. `sizes` are the
        sizes a weights file fixes (`weights.file_sizes`, read by the caller:
        a Config does no I/O); each applies unless given explicitly.
        """
        unknown = sorted(set(explicit) - set(SPEC))
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting '{unknown[0]}'")
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        values.update(explicit)
        for name, size in (sizes or {}).items():
            if name not in explicit:
                values[name] = size
        if "clip" in explicit and "clip_threshold" not in explicit:
            values["clip_threshold"] = None
        default = Config.__dataclass_fields__
        for _ in range(2):  # a reset can make another setting inapplicable (leaky_slope after activation)
            probe = _unvalidated(values)
            for name, _reason in probe.inapplicable():
                if name not in explicit:
                    values[name] = default[name].default
        if "text" in explicit and not str(explicit["text"]).split():
            raise ConfigError("text", "text is empty: give at least two words (a preset without a text runs on random inputs)")
        config = Config(**values)
        # An explicit setting must apply and survive, whatever its value: a value
        # equal to the default is not "given" for inapplicable() above, and a
        # text fixes some shapes.
        for name, value in explicit.items():
            if name == "clip_threshold" and value is None:
                continue
            reason = config.why_not(name)
            if reason:
                raise ConfigError(name, reason)
            if getattr(config, name) != value:
                raise ConfigError(name, f"{name} = {value!r} cannot be used here: {name} is set by text to {getattr(config, name)!r}")
        return config

    def to_dict(self) -> dict[str, Any]:
        """Every resolved setting, JSON-ready."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        out["vocabulary"] = list(self.vocabulary)
        out["gamma"] = self.gamma
        return out

    # -- derived quantities -----------------------------------------------------

    @property
    def cell_type(self):
        """The cell's class: its gates, keep gate, shapes and gamma (engine/cells/base.py)."""
        return CELL_TYPES[self.cell]

    @property
    def gates(self) -> int:
        return len(self.cell_type.gates)

    @property
    def gamma(self) -> float | None:
        """sup |f'| of the activation (SPEC section 1); None for gated cells."""
        return self.cell_type.gamma(self.activation)

    @property
    def has_readout(self) -> bool:
        return self.mode == "bptt"

    def memory_estimate(self) -> int:
        """Bytes held by a run: forward caches, inputs, targets, records."""
        T, N, H, D = self.steps, self.batch, self.hidden, self.input_size
        per_step = self.cell_type.floats_per_step * H
        floats = T * N * (per_step + D + H) + (T + 1) * N * H
        if self.has_readout:
            floats += T * N * self.output_size
        if self.truncate and self.loss_on == "all" and self.has_readout:
            floats += 2 * (min(self.truncate, T) + 1) * N * H  # the truncation window's slots
        floats += T * 20
        return 8 * floats


def _unvalidated(values: dict[str, Any]) -> Config:
    obj = object.__new__(Config)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    object.__setattr__(obj, "vocabulary", ())
    return obj


def _check(name: str, value: Any) -> None:
    spec = SPEC[name]
    if name == "clip_threshold" and value is None:
        return
    if spec.kind is str:
        if not isinstance(value, str):
            raise ConfigError(name, f"{name} must be text, got {value!r}")
        if spec.choices and value not in spec.choices:
            raise ConfigError(name, f"{name} must be {spec.describe()}, got {value!r}")
        return
    if spec.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                raise ConfigError(name, f"{name} must be {spec.describe()}, got {value!r} (write it without a decimal point)")
            raise ConfigError(name, f"{name} must be {spec.describe()}, got {value!r}")
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, f"{name} must be {spec.describe()}, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(name, f"{name} must be {spec.describe()}, got {value!r} (not finite)")
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise ConfigError(name, f"{name} must be {spec.describe()}, got {value:g}" if isinstance(value, float) else f"{name} must be {spec.describe()}, got {value}")
