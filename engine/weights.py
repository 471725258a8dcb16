"""Parameters by PyTorch name (SPEC section 7): initialisation and loading.

weight_ih_l0 (G*H, D), weight_hh_l0 (G*H, H), bias_ih_l0 (G*H), bias_hh_l0 (G*H),
and for the bptt mode the readout head.weight (K, H), head.bias (K);
G = 1 (rnn), 4 (lstm: i, f, g, o), 3 (gru: r, z, n).

A weights file is read by engine/weights_files.py (.npz, .safetensors, .pt)
and its keys matched to these names by engine/weight_names.py (a prefix such
as `encoder.rnn.`, a layer, the head); the checks are here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import SPEC, Config, ConfigError
from .printable import printable
from .seeding import legacy, streams
from .weight_names import WeightsSource, choose, no_head, unused
from .weights_files import key_name, open_weights, where


def param_shapes(config: Config) -> dict[str, tuple[int, ...]]:
    H, K = config.hidden, config.output_size
    shapes = config.cell_type.param_shapes(H, config.input_size)
    if config.has_readout:
        shapes["head.weight"] = (K, H)
        shapes["head.bias"] = (K,)
    return shapes


def recurrent_init(config: Config, rng: np.random.Generator) -> np.ndarray:
    """weight_hh_l0 from one H x H block per gate drawn by `init`, times `scale`
    (the cell takes what it needs of them: `Cell.recurrent_from`)."""
    return config.cell_type.recurrent_from(_square_blocks(config, rng))


def _square_blocks(config: Config, rng: np.random.Generator) -> np.ndarray:
    """(G*H, H): one H x H block per gate, times `scale`."""
    G, H, s = config.gates, config.hidden, config.scale
    if config.init == "gaussian":
        # The source's draw (SPEC section 2): Wh = randn(H, H) * scale from the
        # legacy generator seeded with `seed`; its rows multiply dh from the
        # right, so weight_hh_l0 is its transpose.
        return legacy(config.seed).randn(H, G * H).T * s
    if config.init == "xavier":
        # Glorot normal for an H x H block: variance 2 / (fan_in + fan_out) = 1 / H.
        return rng.standard_normal((G * H, H)) * (s / np.sqrt(H))
    if config.init == "orthogonal":
        blocks = []
        for _ in range(G):
            q, r = np.linalg.qr(rng.standard_normal((H, H)))
            blocks.append(q * np.sign(np.diag(r)))  # sign fix: Haar-distributed
        return np.concatenate(blocks) * s
    if config.init == "identity":
        return np.tile(np.eye(H), (G, 1)) * s  # IRNN (Le, Jaitly and Hinton, 2015)
    if config.init == "torch":
        k = 1.0 / np.sqrt(H)
        return rng.uniform(-k, k, (G * H, H)) * s
    raise ValueError(config.init)


def init_params(config: Config) -> dict[str, np.ndarray]:
    """Every parameter, drawn from the run's seed.

    Input weights N(0, 1/D); readout N(0, 1/H); biases 0 (the `torch` init
    draws all of them from PyTorch's U(-1/sqrt(H), 1/sqrt(H)) instead). The
    keep-gate slice (LSTM forget gate f, GRU update gate z) of bias_ih_l0 is
    `forget_bias` and of bias_hh_l0 zero, so their sum is `forget_bias`.
    """
    rng = streams(config.seed)["weights"]
    shapes = param_shapes(config)
    H = config.hidden
    W_hh = recurrent_init(config, rng)
    if config.spectral_radius > 0:
        W_hh = rescale_radius(W_hh, config.cell_type, config.spectral_radius)
    if config.init == "torch":
        k = 1.0 / np.sqrt(H)
        params = {name: rng.uniform(-k, k, shape) for name, shape in shapes.items() if name != "weight_hh_l0"}
    else:
        D = shapes["weight_ih_l0"][1]
        params = {
            "weight_ih_l0": rng.standard_normal(shapes["weight_ih_l0"]) / np.sqrt(D),
            "bias_ih_l0": np.zeros(shapes["bias_ih_l0"]),
            "bias_hh_l0": np.zeros(shapes["bias_hh_l0"]),
        }
        if config.has_readout:
            params["head.weight"] = rng.standard_normal(shapes["head.weight"]) / np.sqrt(H)
            params["head.bias"] = np.zeros(shapes["head.bias"])
    params["weight_hh_l0"] = W_hh
    keep = config.cell_type.keep_rows(H)
    if keep is not None:
        # The keep gate's slice: LSTM f (rows H..2H of i, f, g, o), GRU z
        # (rows H..2H of r, z, n; z near 1 keeps h_{t-1}).
        params["bias_ih_l0"][keep] = config.forget_bias
        params["bias_hh_l0"][keep] = 0.0
    return {name: params[name] for name in shapes}


def rescale_radius(W_hh: np.ndarray, cell, target: float) -> np.ndarray:
    """Scale each gate block of weight_hh_l0 so its spectral radius is `target`."""
    blocks = cell.recurrent_blocks(W_hh)
    out = W_hh.reshape(len(blocks), -1).copy()  # a gate's rows (or a vector) per row
    for g, b in enumerate(blocks):
        radius = np.max(np.abs(np.linalg.eigvals(b)))
        if not radius > 0:
            raise ConfigError("spectral_radius", "cannot rescale to a spectral radius: the initial weight_hh_l0 has spectral radius 0")
        out[g] *= target / radius
    return out.reshape(W_hh.shape)


def load_file(path: str | Path, config: Config) -> tuple[dict[str, np.ndarray], WeightsSource]:
    """Parameters from a weights file (.npz, .safetensors or PyTorch .pt), and
    where in the file they came from (engine/weight_names.py: the prefix, the
    layer, the head).

    The keys and their shapes and dtypes are checked first (from the headers
    where the format has them): every expected key present with its shape and
    a real dtype, and no unused key inside the chosen module. Only then is
    the data of the expected keys read, once each. A problem is a ConfigError
    naming the file's key, the shape found and the shape expected.
    """
    shapes = param_shapes(config)
    with open_weights(path) as wf:
        keys = set(wf.keys)
        source = choose(wf.keys, path, wf.format, config.weights_prefix, config.layer, config.has_readout)
        names = source.names
        found = {name: wf.header(key) for name, key in names.items() if key in keys}
        problem = _problem(found, unused(wf.keys, source), shapes, names)
        if config.has_readout and source.head is None:
            problem = _problem(found, [], {k: v for k, v in shapes.items() if not k.startswith("head.")}, names) or no_head(wf.keys, source, lambda key: wf.header(key)[0], config.hidden)
        if problem:
            raise ConfigError("weights", f"{where(path)}: {problem}")
        arrays = wf.read([names[name] for name in shapes])
    return _finite({name: arrays[names[name]] for name in shapes}, shapes, where(path), names), source


def file_sizes(settings: dict) -> dict[str, int]:
    """The sizes fixed by the weights file among `settings` (none without one),
    for `Config.with_overrides(sizes=...)`: read before a Config exists."""
    if not settings.get("weights"):
        return {}
    return sizes_from_file(settings["weights"], settings.get("weights_prefix", ""), settings.get("layer", 0))


def sizes_from_file(path: str | Path, prefix: str = "", layer: int = 0) -> dict[str, int]:
    """hidden, input_size and (if the file has a head) output_size, read off the
    shapes (never the data) of the chosen layer's weight_hh and weight_ih and
    of head.weight.

    A weight_hh that is not (G*H, H) for a cell's gate count G gives no
    hidden size: load_file then blames it, not the keys sized by it.
    """
    sizes = {}
    with open_weights(path) as wf:
        keys = set(wf.keys)
        names = choose(wf.keys, path, wf.format, prefix, layer, readout=True).names
        for name, key, axis, form in (
            ("hidden", "weight_hh_l0", 1, "(G*H, H) with hidden size H"),
            ("input_size", "weight_ih_l0", 1, "(G*H, D) with input size D"),
            ("output_size", "head.weight", 0, "(K, H) with output size K"),
        ):
            if names.get(key) not in keys:
                continue
            shape = wf.header(names[key])[0]
            if len(shape) != 2 or (key == "weight_hh_l0" and _gates_of(shape) is None):
                continue
            spec = SPEC[name]
            if not spec.low <= shape[axis] <= spec.high:
                raise ConfigError("weights", f"{where(path)}: {key_name(names[key])} has shape {shape}, expected {form} from {spec.low} to {spec.high}")
            sizes[name] = int(shape[axis])
    return sizes


def check_params(arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]], where: str = "parameters") -> dict[str, np.ndarray]:
    """`arrays` as float64 if they are exactly the parameters `shapes` describes."""
    found = {key: (tuple(np.shape(a)), np.asarray(a).dtype) for key, a in arrays.items() if key in shapes}
    problem = _problem(found, sorted(set(arrays) - set(shapes)), shapes)
    if problem:
        raise ConfigError("weights", f"{where}: {problem}")
    return _finite({key: np.asarray(arrays[key]) for key in shapes}, shapes, where)


# -- checking shapes before any data is read ----------------------------------------------------

_CELL_FORM = {1: "an rnn cell's weight_hh_l0 is (H, H)", 3: "a gru cell's weight_hh_l0 is (3*H, H)", 4: "an lstm cell's weight_hh_l0 is (4*H, H)"}


def _recurrent_hint(shape: tuple[int, ...], G: int) -> str:
    """Why a weight_hh_l0 of this shape does not fit, in the cells' own words."""
    from .cells import CELLS

    if len(shape) == 2 and shape[1] >= 1 and shape[0] % shape[1] == 0:
        theirs = [name for name, cell in CELLS.items() if len(cell.gates) == shape[0] // shape[1] and len(cell.param_shapes(1, 1)["weight_hh_l0"]) == 2]
        if theirs:
            return f" (the file holds the weights of a {' or '.join(theirs)} cell: choose it with --cell)"
    return f" ({_CELL_FORM[G]})" if G in _CELL_FORM else ""


def _is_recurrent(shape: tuple[int, ...], gates: int) -> bool:
    """Whether `shape` is (G*H, H) for G = `gates` and some H >= 1."""
    return len(shape) == 2 and shape[1] >= 1 and shape[0] == gates * shape[1]


def _gates_of(shape: tuple[int, ...]) -> int | None:
    """G if `shape` is (G*H, H) for a cell's gate count G, else None."""
    if len(shape) == 2 and shape[1] >= 1 and shape[0] % shape[1] == 0 and shape[0] // shape[1] in _CELL_FORM:
        return shape[0] // shape[1]
    return None


def _expected_recurrent(found: dict[str, tuple], shapes: dict[str, tuple[int, ...]]) -> tuple[int, int]:
    """The weight_hh_l0 shape to ask for. The run's hidden size was read off
    weight_hh_l0 itself; when that block is missing or not (G*H, H), H comes
    from the keys that agree on one (weight_ih_l0, the biases, head.weight)."""
    want = shapes["weight_hh_l0"]
    if len(want) != 2:  # a cell whose recurrent weight is not a matrix (indrnn's vector u)
        return want
    G = want[0] // want[1]
    if "weight_hh_l0" in found and _is_recurrent(found["weight_hh_l0"][0], G):
        return want
    shape = found["weight_hh_l0"][0] if "weight_hh_l0" in found else ()
    if len(shape) == 2 and shape[1] >= 1 and shape[0] % shape[1] == 0 and SPEC["hidden"].low <= shape[1] <= SPEC["hidden"].high:
        return (G * shape[1], shape[1])  # another cell's recurrent weight: its H is the columns
    votes = set()
    for key, axis, div in (("weight_ih_l0", 0, G), ("bias_ih_l0", 0, G), ("bias_hh_l0", 0, G), ("head.weight", 1, 1)):
        if key in found and key in shapes and len(found[key][0]) == len(shapes[key]):
            n = found[key][0][axis]
            if n > 0 and n % div == 0:
                votes.add(n // div)
    if len(votes) == 1:
        (H,) = votes
        if SPEC["hidden"].low <= H <= SPEC["hidden"].high:
            return (G * H, H)
    return want


def _problem(found: dict[str, tuple], extra: list[str], shapes: dict[str, tuple[int, ...]], names: dict[str, str] | None = None) -> str | None:
    """The first thing wrong with the keys, shapes and dtypes found, or None.

    `found` maps each expected key present to (shape, dtype); `extra` lists
    the unused keys; `names` gives each expected key's name in the file (the
    messages use it). A missing or malformed weight_hh_l0 comes first: the
    hidden size, and so the other shapes, would have been read off it.
    """
    names = names or {}
    recurrent = _expected_recurrent(found, shapes)
    matrix = len(recurrent) == 2
    G = recurrent[0] // recurrent[1] if matrix else 1
    order = list(shapes)
    if matrix and ("weight_hh_l0" not in found or not _is_recurrent(found["weight_hh_l0"][0], G)):
        order.remove("weight_hh_l0")
        order.insert(0, "weight_hh_l0")
    for key in order:
        want = recurrent if key == "weight_hh_l0" else shapes[key]
        name = key_name(names.get(key, key))
        if key not in found:
            return f"missing key {name} (expected shape {want})"
        shape, dtype = found[key]
        if shape != want:
            hint = _recurrent_hint(shape, G) if matrix and key == "weight_hh_l0" else ""
            return f"{name} has shape {shape}, expected {want}{hint}"
        if dtype.hasobject or dtype.kind not in "fiu":
            return f"{name} has dtype {printable(dtype, 60)}, expected real numbers (float or int)"
    if extra:
        shown = ", ".join(key_name(k) for k in sorted(extra)[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        return f"unused key(s) {shown}; expected exactly {', '.join(names.get(k, k) for k in shapes)}"
    return None


def _finite(arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]], where: str, names: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    params = {}
    for key in shapes:
        a = arrays[key]
        if not np.all(np.isfinite(a)):
            raise ConfigError("weights", f"{where}: {key_name((names or {}).get(key, key))} must hold finite real numbers")
        params[key] = np.ascontiguousarray(a, dtype=np.float64)
    return params
