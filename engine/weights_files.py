"""Weights files in three formats, read the same way: the keys first, then a
key's shape and dtype (from a header where the format has one), then the data
of the chosen keys only.

    .npz          numpy.savez: each member's .npy header is read on its own
    .safetensors  safetensors' numpy API: shapes from the file's JSON header
    .pt / .pth    torch.save of a state_dict: torch.load(weights_only=True),
                  which refuses any pickled object other than tensors and
                  plain containers; needs PyTorch, imported only here

The format is told from the file's first bytes, not its name (a `.bin` saved
by torch.save is a .pt). Nothing here unpickles: numpy reads with
allow_pickle=False and torch with weights_only=True. Every problem is a
one-line ConfigError("weights", ...) naming the file and the key.
"""

from __future__ import annotations

import json
import math
import shlex
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import ConfigError
from .printable import printable

_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, RuntimeError, NotImplementedError, RecursionError)

FORMATS = ("npz", "safetensors", "pt")
NOT_A_WEIGHTS_FILE = (
    "not a .npz of arrays, a .safetensors or a PyTorch .pt file "
    "(save one with numpy.savez(path, **state_dict), safetensors.torch.save_file(state_dict, path) or torch.save(model.state_dict(), path))"
)


def where(path: str | Path) -> str:
    return f"weights file {printable(path)}"


def _fail(path, message: str) -> ConfigError:
    return ConfigError("weights", f"{where(path)}: {message}")


def key_name(key: str) -> str:
    return f"'{printable(key, 60)}'"


@contextmanager
def open_weights(path: str | Path) -> Iterator[_NpzFile | _SafetensorsFile | _TorchFile]:
    """The file opened as one of the readers below (`keys`, `header(key)`, `read(keys)`, `format`)."""
    with _opened(path) as f:
        kind = _sniff(f, path)
        if kind == "npz":
            with _zip(f, path) as zf:
                yield _NpzFile(zf, path)
            return
    if kind == "safetensors":
        yield _SafetensorsFile(path)
    else:
        yield _TorchFile(path, zipped=kind == "pt-zip")


@contextmanager
def _opened(path: str | Path):
    try:
        f = open(Path(path), "rb")
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except IsADirectoryError:
        raise _fail(path, "is a directory") from None
    except (OSError, ValueError) as exc:
        raise _fail(path, f"cannot read ({printable(getattr(exc, 'strerror', None) or exc, 80)})") from None
    with f:
        yield f


def _sniff(f, path) -> str:
    """npz, safetensors, pt-zip (torch.save's zip archive) or pt-pickle (its legacy format)."""
    try:
        head = f.read(16)
        if head[:6] == b"\x93NUMPY":
            raise _fail(path, "a single array (.npy), expected a .npz of named arrays")
        f.seek(0)
        if zipfile.is_zipfile(f):
            f.seek(0)
            with zipfile.ZipFile(f) as zf:
                torch_zip = any(name == "data.pkl" or name.endswith("/data.pkl") for name in zf.namelist())
            f.seek(0)
            return "pt-zip" if torch_zip else "npz"
    except ConfigError:
        raise
    except _UNREADABLE:
        raise _fail(path, NOT_A_WEIGHTS_FILE) from None
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"  # an 8-byte little-endian header length, then the JSON header
    if head[:1] == b"\x80":
        return "pt-pickle"  # a pickle's protocol opcode: torch.save(..., _use_new_zipfile_serialization=False)
    raise _fail(path, NOT_A_WEIGHTS_FILE)


# -- .npz ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    dtype: np.dtype
    info: zipfile.ZipInfo
    offset: int  # bytes of the member before its data


@contextmanager
def _zip(f, path) -> Iterator[zipfile.ZipFile]:
    """The archive, opened (its central directory read, no member decompressed)."""
    try:
        zf = zipfile.ZipFile(f)
    except _UNREADABLE:
        raise _fail(path, NOT_A_WEIGHTS_FILE) from None
    with zf:
        yield zf


class _NpzFile:
    """A .npz: keys from the central directory, shapes from each member's
    .npy header (only its first bytes decompressed), data once per key."""

    format = "npz"

    def __init__(self, zf: zipfile.ZipFile, path):
        self.zf, self.path = zf, path
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")  # as numpy.load names them
            if key in self.members:
                raise _fail(path, f"key {key_name(key)} appears twice in the archive")
            self.members[key] = info
        self.keys = list(self.members)
        self._headers: dict[str, _Header] = {}

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        h = self._header(key)
        return h.shape, h.dtype

    def _header(self, key: str) -> _Header:
        if key not in self._headers:
            try:
                with self.zf.open(self.members[key]) as fp:
                    version = np.lib.format.read_magic(fp)
                    if version not in ((1, 0), (2, 0)):
                        raise ValueError(f"unsupported .npy format version {version}")
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _fortran, dtype = read(fp)
                    offset = fp.tell()
            except _UNREADABLE:
                raise _fail(self.path, f"{key_name(key)} is not a .npy array (save the file with numpy.savez)") from None
            self._headers[key] = _Header(tuple(shape), dtype, self.members[key], offset)
        return self._headers[key]

    def read(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The arrays of `keys`, every member checked whole before any data is read."""
        for key in keys:
            h = self._header(key)
            declared = h.dtype.itemsize * math.prod(h.shape)
            if h.info.file_size - h.offset < declared:
                have = max(h.info.file_size - h.offset, 0)
                raise _fail(self.path, f"{key_name(key)} is truncated: {have} bytes of data, its header declares {declared}")
        return {key: self._data(key) for key in keys}

    def _data(self, key: str) -> np.ndarray:
        h = self._headers[key]
        try:
            with self.zf.open(h.info) as fp:
                a = np.lib.format.read_array(fp, allow_pickle=False)
        except _UNREADABLE:
            raise _fail(self.path, f"{key_name(key)} cannot be read (a damaged archive?)") from None
        if a.shape != h.shape or a.dtype != h.dtype:  # the header was read above; the member changed since
            raise _fail(self.path, f"{key_name(key)} changed while it was read")
        return a


# -- .safetensors -------------------------------------------------------------------------------

# safetensors' dtype names -> numpy's; BF16 and the float8 kinds have no numpy dtype.
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?", "C64": "<c8", "C128": "<c16",
}  # fmt: skip


class _SafetensorsFile:
    """A .safetensors: keys and shapes from its JSON header, data mapped from the file."""

    format = "safetensors"

    def __init__(self, path):
        from safetensors import safe_open

        self.path = path
        try:
            self.f = safe_open(str(path), framework="numpy")
            self.keys = list(self.f.keys())
        except Exception as exc:  # noqa: BLE001 (safetensors' own SafetensorError, OSError: a damaged or foreign file)
            raise _fail(path, f"not a readable .safetensors file ({printable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 100)})") from None

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        s = self.f.get_slice(key)
        kind = s.get_dtype()
        if kind not in _SAFETENSORS_DTYPES:
            raise _fail(self.path, f"{key_name(key)} has dtype {printable(kind, 20)}, which numpy cannot hold: save it as float32 (tensor.float()) or float64")
        return tuple(int(n) for n in s.get_shape()), np.dtype(_SAFETENSORS_DTYPES[kind])

    def read(self, keys: list[str]) -> dict[str, np.ndarray]:
        return {key: self.f.get_tensor(key) for key in keys}


# -- .pt / .pth ---------------------------------------------------------------------------------

_CONVERT = "python -c 'import sys, torch, safetensors.torch as s; s.save_file(torch.load(sys.argv[1], weights_only=True), sys.argv[2])'"


def _convert(path) -> str:
    """The one-line conversion of this .pt to a .safetensors beside it, the
    paths given as arguments quoted for a POSIX shell (a path that would not
    print as itself, with a control character, is left as FILE.pt)."""
    pt = str(path)
    if printable(pt) != pt:
        pt = "FILE.pt"
    out = str(Path(pt).with_suffix(".safetensors"))
    return f"{_CONVERT} {shlex.quote(pt)} {shlex.quote(out)}"


class _TorchFile:
    """torch.save of a state_dict (or of a dict holding one: keys are joined
    with '.', so {'model': {'rnn.weight_hh_l0': ...}} names model.rnn.weight_hh_l0).
    torch.load reads it with weights_only=True: tensors and plain containers only."""

    format = "pt"

    def __init__(self, path, zipped: bool):
        self.path = path
        self.torch = _import_torch(path)
        try:
            loaded = self.torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipped)
        except Exception as exc:  # noqa: BLE001 (anything torch.load raises on a foreign file is a refusal of that file)
            raise _fail(path, _torch_refusal(exc)) from None
        self.tensors = dict(_tensors(loaded, "", self.torch, 0))
        self.keys = list(self.tensors)

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        t = self.tensors[key]
        if t.is_complex():
            dtype = np.dtype("<c16")
        elif t.dtype == self.torch.bool:
            dtype = np.dtype("?")
        else:
            dtype = np.dtype("<f8" if t.is_floating_point() else "<i8")  # read as float64 either way
        return tuple(int(n) for n in t.shape), dtype

    def read(self, keys: list[str]) -> dict[str, np.ndarray]:
        return {key: self.tensors[key].detach().to(self.torch.float64).contiguous().numpy() for key in keys}


def _import_torch(path):
    try:
        import torch
    except ImportError:
        raise _fail(path, f"is a PyTorch file: reading it needs PyTorch (pip install torch), or convert it once where torch is installed: {_convert(path)}") from None
    return torch


def _torch_refusal(exc: Exception) -> str:
    """torch.load's refusal in one line: weights_only's names the global it would not load."""
    text = str(exc)
    marker = "Unsupported global: GLOBAL "
    if marker in text:
        name = text.split(marker, 1)[1].split()[0]
        return (
            f"holds a pickled Python object ({printable(name, 80)}), not only tensors: torch.load(weights_only=True) refuses it "
            "(loading it could run code); save model.state_dict() instead of the model"
        )
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"torch.load(weights_only=True) cannot read it ({printable(first, 120)})"


def _tensors(obj, prefix: str, torch, depth: int) -> Iterator[tuple[str, object]]:
    """(dotted key, tensor) for every tensor in nested dicts; anything else is passed over."""
    if isinstance(obj, torch.Tensor):
        yield prefix[:-1], obj
    elif isinstance(obj, dict) and depth < 8:
        for key, value in obj.items():
            yield from _tensors(value, f"{prefix}{key}.", torch, depth + 1)


# -- writing ------------------------------------------------------------------------------------


def safetensors_bytes(params: dict[str, np.ndarray], config) -> bytes:
    """The parameters as a .safetensors file, float64, named as the state_dict
    of `class M(nn.Module)` with `rnn = nn.RNN/LSTM/GRU(D, H)` and
    `head = nn.Linear(H, K)`: rnn.weight_ih_l0, ..., head.weight, head.bias.
    The metadata (str -> str) carries the cell and the whole config as JSON."""
    from safetensors.numpy import save

    tensors = {(name if name.startswith("head.") else f"rnn.{name}"): np.ascontiguousarray(p, dtype=np.float64) for name, p in params.items()}
    metadata = {"format": "pt", "bptt-lab.cell": config.cell, "bptt-lab.config": json.dumps(config.to_dict())}
    return save(tensors, metadata=metadata)
