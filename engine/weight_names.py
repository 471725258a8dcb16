"""Which keys of a weights file are the engine's parameters (SPEC section 7).

A PyTorch state_dict names a parameter by its module's path:
`encoder.rnn.weight_hh_l1` is layer 1 of the nn.LSTM at `encoder.rnn`. The
engine's names are one layer's, with no prefix: weight_ih_l0, weight_hh_l0,
bias_ih_l0, bias_hh_l0, and the readout's head.weight, head.bias. `choose`
maps the one to the other:

- the prefix: the one given (`weights_prefix`; '.' means none), or else the
  one prefix under which the file has recurrent weights (`weight_hh_l<n>`);
  two such prefixes are refused, naming both;
- the layer: `layer` L, whose `_lL` weights become the engine's `_l0`;
- the readout: `head.weight` and `head.bias` beside the prefix (`encoder.head.`
  for `encoder.rnn.`) or at the top (`head.`); no other name is guessed.

Keys inside the chosen module that are not its weights are refused as unused
(a misspelt parameter); keys of other modules (an embedding, a decoder) and
the `_reverse` direction of a bidirectional RNN are passed over and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .config import ConfigError
from .weights_files import key_name, where

RECURRENT = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_KEY = re.compile(r"(?P<prefix>(?:.*\.)?)(?P<name>weight_ih|weight_hh|bias_ih|bias_hh)_l(?P<layer>[0-9]+)(?P<reverse>_reverse)?")


@dataclass(frozen=True)
class WeightsSource:
    """Where the parameters of a run came from: what `choose` picked, as data
    (the JSON's `weights_file`; the CLI prints `sentence()`)."""

    file: str
    format: str  # npz, safetensors, pt
    prefix: str  # '' for bare names
    prefix_detected: bool  # found in the file rather than given
    layer: int
    layers: tuple[int, ...]  # the layers the file has under the prefix
    head: str | None  # the readout's prefix ('head.', 'encoder.head.'), None when the run has no readout
    ignored: int  # keys of other modules (and the _reverse direction), passed over
    reverse: bool  # the file's RNN is bidirectional; its _reverse weights were passed over
    names: dict[str, str] = field(default_factory=dict, compare=False)  # engine name -> the file's key

    def to_dict(self) -> dict:
        return {
            "file": self.file, "format": self.format, "prefix": self.prefix, "prefix_detected": self.prefix_detected,
            "layer": self.layer, "layers": list(self.layers), "head": self.head, "ignored_keys": self.ignored,
            "reverse_ignored": self.reverse, "keys": dict(self.names),
        }  # fmt: skip

    def sentence(self) -> str:
        """One line: 'weights: m.pt, prefix 'encoder.rnn.' (detected), layer 1 of 0-1 ...'."""
        prefix = f"prefix '{self.prefix}'" if self.prefix else "bare names"
        parts = [f"weights: {self.file} ({self.format}), {prefix}{' (detected)' if self.prefix_detected and self.prefix else ''}"]
        if len(self.layers) > 1 or self.layer:
            parts.append(f"layer {self.layer} of {len(self.layers)}, stepped alone: its inputs are the lab's, of its input size (layer {self.layer - 1}'s H)" if self.layer else f"layer 0 of {len(self.layers)}, stepped alone")
        if self.head and self.layers and self.layer < max(self.layers):
            # A head saved with a multi-layer model reads the top layer's output.
            parts.append(f"head '{self.head}' (trained on layer {max(self.layers)}'s output, read here from layer {self.layer}'s)")
        else:
            parts.append(f"head '{self.head}'" if self.head else "no head")
        if self.reverse:
            parts.append("the _reverse direction passed over (the lab steps the forward one)")
        if self.ignored:
            parts.append(f"{self.ignored} other key{'s' if self.ignored != 1 else ''} passed over")
        return "; ".join(parts)


def normal_prefix(given: str) -> str:
    """'encoder.rnn' and 'encoder.rnn.' are 'encoder.rnn.'; '.' is no prefix."""
    given = given.strip()
    return "" if given in ("", ".") else given.rstrip(".") + "."


def recurrent_prefixes(keys) -> list[str]:
    """The prefixes under which `keys` has a recurrent weight (weight_hh_l<n>), in file order."""
    found = {}
    for key in keys:
        m = _KEY.fullmatch(key)
        if m and m["name"] == "weight_hh":
            found.setdefault(m["prefix"], None)
    return list(found)


def choose(keys: list[str], path, fmt: str, prefix: str, layer: int, readout: bool) -> WeightsSource:
    """The file's keys for the engine's parameters; `prefix` as the user gave it
    ('' to detect it). `readout`: the run needs a head (mode bptt)."""
    chosen, detected = _prefix(keys, path, prefix)
    layers = sorted({int(m["layer"]) for m in map(_KEY.fullmatch, keys) if m and m["prefix"] == chosen})
    if layers and layer not in layers:
        shown = ", ".join(map(str, layers))
        raise ConfigError("layer", f"layer {layer} is not in {where(path)}: it has layer{'s' if len(layers) > 1 else ''} {shown} under {_shown(chosen)}")
    if not layers and layer:
        raise ConfigError("layer", f"layer {layer} is not in {where(path)}: it has no recurrent weights (keys ending in weight_hh_l<n>)")
    names = {f"{n}_l0": f"{chosen}{n}_l{layer}" for n in RECURRENT}
    head = _head(keys, chosen)
    if readout and head is not None:
        names.update({"head.weight": f"{head}weight", "head.bias": f"{head}bias"})
    reverse = any(m and m["prefix"] == chosen and m["reverse"] for m in map(_KEY.fullmatch, keys))
    head = head if readout else None
    ignored = sum(1 for key in keys if not _inside(key, chosen, head))
    return WeightsSource(str(path), fmt, chosen, detected, layer, tuple(layers), head, ignored, reverse, names)


def _shown(prefix: str) -> str:
    return f"prefix '{prefix}'" if prefix else "bare names (no prefix)"


def _prefix(keys: list[str], path, given: str) -> tuple[str, bool]:
    """(the prefix, whether it was detected)."""
    found = recurrent_prefixes(keys)
    if given:
        chosen = normal_prefix(given)
        if chosen not in found and found:
            others = ", ".join(f"'{p}'" if p else "'.' (bare names)" for p in found)
            raise ConfigError("weights_prefix", f"weights_prefix {key_name(chosen)} has no recurrent weights ({chosen}weight_hh_l<n>) in {where(path)}; it has them under {others}")
        return chosen, False
    if len(found) > 1:
        both = " and ".join(f"'{p}'" if p else "bare names" for p in found[:2]) + (f" (and {len(found) - 2} more)" if len(found) > 2 else "")
        raise ConfigError("weights", f"{where(path)}: recurrent weights under {both}: choose one with --weights-prefix (e.g. --weights-prefix {found[0] or '.'})")
    return (found[0] if found else ""), bool(found)


def head_spots(prefix: str) -> tuple[str, ...]:
    """Where a readout is looked for: '<parent>.head.' beside the prefix, then 'head.'."""
    parent = prefix.rstrip(".").rpartition(".")[0]
    return tuple(dict.fromkeys([f"{parent}.head." if parent else "head.", "head."]))


def _head(keys: list[str], prefix: str) -> str | None:
    """The first of `head_spots` whose weight the file has."""
    for head in head_spots(prefix):
        if f"{head}weight" in keys:
            return head
    return None


def _inside(key: str, prefix: str, head: str | None) -> bool:
    """Whether `key` belongs to the chosen module or its head (not passed over).
    Bare names: a key with no '.' is the module's; 'x.y' is another module's."""
    if head is not None and key.startswith(head):
        return True
    m = _KEY.fullmatch(key)
    if m and m["prefix"] == prefix:
        return not m["reverse"]
    if prefix:
        return key.startswith(prefix)
    return "." not in key


def unused(keys: list[str], source: WeightsSource) -> list[str]:
    """Keys inside the chosen module (or head) that are no parameter of any layer: refused as misspelt."""
    head_keys = {f"{source.head}weight", f"{source.head}bias"} if source.head else set()
    out = []
    for key in keys:
        m = _KEY.fullmatch(key)
        if m and m["prefix"] == source.prefix:
            continue  # a layer's weights, this one's or another's (or the _reverse direction)
        if key in head_keys:
            continue
        if _inside(key, source.prefix, source.head):
            out.append(key)
    return out


def no_head(keys: list[str], source: WeightsSource, shape_of=None, hidden: int | None = None) -> str:
    """Why a run with a readout cannot use this file, and the two ways out.

    A readout saved under another name (an nn.Linear `fc`) is named with the
    keys it should be renamed to; `shape_of(key)` and `hidden` narrow the
    file's other weights to those shaped (K, H), a readout's shape."""
    spots = head_spots(source.prefix)
    wanted = " or ".join(f"'{h}weight' (K, H) with '{h}bias' (K)" for h in spots)
    to = f"'{spots[0]}weight', '{spots[0]}bias'" + (f" (or '{spots[1]}weight', '{spots[1]}bias')" if len(spots) > 1 else "")
    chain = "or use --mode chain (no readout)"
    others = [key for key in keys if key.endswith(".weight") and not (source.prefix and key.startswith(source.prefix))]
    fitting = others
    if shape_of is not None and hidden is not None:
        fitting = [key for key in others if _may_be_readout(shape_of, key, hidden)]
    if len(fitting) == 1:
        (weight,) = fitting
        bias = weight[: -len("weight")] + "bias"
        if bias in keys:
            return f"no readout head: mode bptt needs {wanted}; found {key_name(weight)}, {key_name(bias)}: rename them to {to}, {chain}"
        return f"no readout head: mode bptt needs {wanted}; found {key_name(weight)} (with no {key_name(bias)}): rename it to '{spots[0]}weight' and add a '{spots[0]}bias' (K) of zeros, {chain}"
    if others:
        shown = ", ".join(key_name(k) for k in others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        return f"no readout head: mode bptt needs {wanted}; the file's other weights are {shown}: rename your readout's weight and bias to {to}, {chain}"
    return f"no readout head: mode bptt needs {wanted}: save your readout's weight and bias as {to}, {chain}"


def _may_be_readout(shape_of, key: str, hidden: int) -> bool:
    """Whether `key` is shaped (K, H); a key whose header cannot be read (a
    dtype numpy cannot hold) is not ruled out: its module is not the run's."""
    try:
        shape = shape_of(key)
    except ConfigError:
        return True
    return len(shape) == 2 and shape[1] == hidden
