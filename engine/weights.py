"""Parameters by PyTorch name (SPEC section 7): initialisation and loading.

weight_ih_l0 (G*H, D), weight_hh_l0 (G*H, H), bias_ih_l0 (G*H), bias_hh_l0 (G*H),
and for the bptt mode the readout head.weight (K, H), head.bias (K);
G = 1 (rnn), 4 (lstm: i, f, g, o), 3 (gru: r, z, n).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .config import Config, ConfigError
from .seeding import legacy, streams


def param_shapes(config: Config) -> dict[str, tuple[int, ...]]:
    G, H, D, K = config.gates, config.hidden, config.input_size, config.output_size
    shapes = {
        "weight_ih_l0": (G * H, D),
        "weight_hh_l0": (G * H, H),
        "bias_ih_l0": (G * H,),
        "bias_hh_l0": (G * H,),
    }
    if config.has_readout:
        shapes["head.weight"] = (K, H)
        shapes["head.bias"] = (K,)
    return shapes


def recurrent_init(config: Config, rng: np.random.Generator) -> np.ndarray:
    """weight_hh_l0 (G*H, H), one H x H block per gate, times `scale`."""
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
        W_hh = rescale_radius(W_hh, config.gates, config.spectral_radius)
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
    if config.cell in ("lstm", "gru"):
        # The keep gate's slice: LSTM f (rows H..2H of i, f, g, o), GRU z
        # (rows H..2H of r, z, n; z near 1 keeps h_{t-1}).
        params["bias_ih_l0"][H : 2 * H] = config.forget_bias
        params["bias_hh_l0"][H : 2 * H] = 0.0
    return {name: params[name] for name in shapes}


def rescale_radius(W_hh: np.ndarray, gates: int, target: float) -> np.ndarray:
    """Scale each H x H gate block so its spectral radius is `target`."""
    H = W_hh.shape[1]
    blocks = W_hh.reshape(gates, H, H).copy()
    for b in blocks:
        radius = np.max(np.abs(np.linalg.eigvals(b)))
        if not radius > 0:
            raise ConfigError("spectral_radius", "cannot rescale to a spectral radius: the initial weight_hh_l0 has spectral radius 0")
        b *= target / radius
    return blocks.reshape(gates * H, H)


def load_npz(path: str | Path, config: Config) -> dict[str, np.ndarray]:
    """Parameters from a .npz of PyTorch state_dict names (saved with numpy.savez).

    A missing, unused, mis-shaped or non-finite entry is a ConfigError naming
    the key and the expected shape.
    """
    shapes = param_shapes(config)
    return check_params(read_npz(path), shapes, f"weights file {path}")


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The named arrays of a .npz; a ConfigError says what is wrong with the file."""
    where = f"weights file {path}"
    try:
        data = np.load(Path(path), allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError("weights", f"{where}: no such file") from None
    except IsADirectoryError:
        raise ConfigError("weights", f"{where}: is a directory") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise ConfigError("weights", f"{where}: not a .npz of arrays (save one with numpy.savez(path, **state_dict))") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ConfigError("weights", f"{where}: a single array (.npy), expected a .npz of named arrays")
    try:
        with data:
            return {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise ConfigError("weights", f"{where}: not a .npz of numeric arrays") from None


def sizes_from_npz(path: str | Path) -> dict[str, int]:
    """hidden, input_size and (if the file has a head) output_size, read off the
    shapes of weight_hh_l0, weight_ih_l0 and head.weight."""
    arrays = read_npz(path)
    sizes = {}
    if "weight_hh_l0" in arrays and arrays["weight_hh_l0"].ndim == 2:
        sizes["hidden"] = int(arrays["weight_hh_l0"].shape[1])
    if "weight_ih_l0" in arrays and arrays["weight_ih_l0"].ndim == 2:
        sizes["input_size"] = int(arrays["weight_ih_l0"].shape[1])
    if "head.weight" in arrays and arrays["head.weight"].ndim == 2:
        sizes["output_size"] = int(arrays["head.weight"].shape[0])
    return sizes


def check_params(arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]], where: str = "parameters") -> dict[str, np.ndarray]:
    params = {}
    for key, shape in shapes.items():
        if key not in arrays:
            raise ConfigError("weights", f"{where}: missing key '{key}' (expected shape {shape})")
        a = arrays[key]
        if a.shape != shape:
            raise ConfigError("weights", f"{where}: '{key}' has shape {tuple(a.shape)}, expected {shape}")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) or not np.all(np.isfinite(a)):
            raise ConfigError("weights", f"{where}: '{key}' must hold finite real numbers")
        params[key] = a.astype(np.float64)
    extra = sorted(set(arrays) - set(shapes))
    if extra:
        raise ConfigError("weights", f"{where}: unused key(s) {', '.join(repr(k) for k in extra)}; expected exactly {', '.join(shapes)}")
    return params
