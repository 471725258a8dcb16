"""Hostile and malformed weights files (.npz): every check is made on the .npy
headers before any data is decompressed, and every error names the key, the
shape found and the shape expected, on one line.

The byte counts come from wrapping zipfile's member reader, so "never read"
means the member's data never left the decompressor.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter

import numpy as np
import pytest

from engine import Config, ConfigError, Run
from engine.weights import load_file, param_shapes, sizes_from_file
from engine.weights import file_sizes

HEADER_MAX = 4096  # a .npy header is well under this; data reads are far over it


@pytest.fixture
def bytes_read(monkeypatch) -> Counter:
    """Bytes handed out by zipfile per member name, for the whole test."""
    counts: Counter = Counter()
    real = zipfile.ZipExtFile.read

    def counting(self, n=-1):
        data = real(self, n)
        counts[self.name] += len(data)
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting)
    return counts


def header_only_member(zf: zipfile.ZipFile, name: str, shape: tuple, descr: str = "<f8", tail: bytes = b"\0" * 16) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    buf.write(tail)
    zf.writestr(name, buf.getvalue())


def zeros_member(zf: zipfile.ZipFile, name: str, shape: tuple) -> None:
    """A deflated member of float64 zeros, streamed (never held in memory)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    chunk = bytes(2**20)
    left = 8 * int(np.prod(shape))
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as out:
        out.write(header.getvalue())
        while left:
            out.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))


def rnn_params(H: int = 3, D: int = 4, K: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    p = {"weight_ih_l0": rng.normal(size=(H, D)), "weight_hh_l0": rng.normal(size=(H, H)) * 0.3, "bias_ih_l0": np.zeros(H), "bias_hh_l0": np.zeros(H)}
    if K is not None:
        p["head.weight"], p["head.bias"] = rng.normal(size=(K, H)), np.zeros(K)
    return p


CHAIN = Config(mode="chain", activation="linear", hidden=3, batch=2, steps=5, input_size=4)


def load_error(config: Config, path) -> str:
    """The message of loading `path` the way the CLI does (sizes read off the file)."""
    with pytest.raises(ConfigError) as info:
        Run(config.with_overrides(sizes=file_sizes({"weights": str(path)}), weights=str(path)))
    assert info.value.field == "weights"
    msg = info.value.message
    assert "\n" not in msg and str(path) in msg
    return msg


# -- 1. sizes are checked on the headers, before any data ------------------------------------


def test_a_header_claiming_100000_squared_is_refused_from_the_header(tmp_path, bytes_read):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in rnn_params().items():
            if key != "weight_hh_l0":
                with zf.open(f"{key}.npy", "w") as out:
                    np.lib.format.write_array(out, value)
        header_only_member(zf, "weight_hh_l0.npy", (100000, 100000))
    with pytest.raises(ConfigError) as info:
        load_file(path, CHAIN)  # the run's own sizes: H = 3
    msg = info.value.message
    assert "'weight_hh_l0' has shape (100000, 100000), expected (3, 3)" in msg and "\n" not in msg
    with pytest.raises(ConfigError) as info:
        sizes_from_file(path)  # what Config.with_overrides asks first: H would be 100000
    msg = info.value.message
    assert "'weight_hh_l0' has shape (100000, 100000), expected (G*H, H)" in msg and "4096" in msg
    msg = load_error(CHAIN, path)
    assert "'weight_hh_l0'" in msg and "(100000, 100000)" in msg
    assert sum(bytes_read.values()) <= 3 * HEADER_MAX


def test_a_zip_bomb_under_an_unused_key_is_never_decompressed(tmp_path, bytes_read):
    """32 MB of zeros deflate to ~32 KB; the unused key is refused by name alone."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, value in rnn_params().items():
            with zf.open(f"{key}.npy", "w") as out:
                np.lib.format.write_array(out, value)
        zeros_member(zf, "extra.npy", (2048, 2048))
    assert path.stat().st_size < 2**20
    msg = load_error(CHAIN, path)
    assert "unused key(s) 'extra'" in msg
    assert bytes_read["extra.npy"] == 0
    assert sum(bytes_read.values()) < 2 * HEADER_MAX + 2 * sum(a.nbytes for a in rnn_params().values())


def test_a_zip_bomb_under_an_expected_key_is_refused_from_its_header(tmp_path, bytes_read):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, value in rnn_params().items():
            if key != "weight_ih_l0":
                with zf.open(f"{key}.npy", "w") as out:
                    np.lib.format.write_array(out, value)
        zeros_member(zf, "weight_ih_l0.npy", (4096, 1024))
    assert path.stat().st_size < 2**20
    msg = load_error(CHAIN, path)
    assert "'weight_ih_l0' has shape (4096, 1024), expected (3, 1024)" in msg
    assert bytes_read["weight_ih_l0.npy"] <= 2 * HEADER_MAX


def test_sizes_come_from_the_headers_and_the_data_is_read_once(tmp_path, bytes_read):
    cfg = Config(hidden=64, input_size=32, output_size=8, batch=2, steps=3)
    params = dict(Run(cfg).params)
    path = tmp_path / "w.npz"
    np.savez_compressed(path, **params)
    assert sizes_from_file(path) == {"hidden": 64, "input_size": 32, "output_size": 8}
    assert sum(bytes_read.values()) <= 3 * HEADER_MAX  # three headers, no data
    bytes_read.clear()
    run = Run(Config(batch=2, steps=3).with_overrides(sizes=file_sizes({"weights": str(path)}), weights=str(path)))
    for key, value in params.items():
        np.testing.assert_array_equal(run.params[key], value)
        assert value.nbytes <= bytes_read[f"{key}.npy"] < value.nbytes + 3 * HEADER_MAX, key  # once, plus headers


def test_a_member_shorter_than_its_header_says_is_refused_before_reading(tmp_path, bytes_read):
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in rnn_params().items():
            if key == "weight_hh_l0":
                header_only_member(zf, "weight_hh_l0.npy", (3, 3), tail=b"\0" * 16)  # 16 of 72 bytes
            else:
                with zf.open(f"{key}.npy", "w") as out:
                    np.lib.format.write_array(out, value)
    with pytest.raises(ConfigError) as info:
        load_file(path, CHAIN)
    msg = info.value.message
    assert "'weight_hh_l0' is truncated" in msg and "72" in msg
    assert bytes_read["weight_ih_l0.npy"] <= HEADER_MAX  # refused before any data was read


@pytest.mark.parametrize("descr", ["|O", "<c16", "|b1", "<U3", [("a", "<f8")]])
def test_pickles_and_non_real_dtypes_are_refused_by_key(tmp_path, descr):
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in rnn_params().items():
            if key == "bias_hh_l0":
                header_only_member(zf, "bias_hh_l0.npy", (3,), descr=descr, tail=b"\x80\x04N." + b"\0" * 64)
            else:
                with zf.open(f"{key}.npy", "w") as out:
                    np.lib.format.write_array(out, value)
    msg = load_error(CHAIN, path)
    assert "'bias_hh_l0' has dtype" in msg and "expected real numbers" in msg


def test_an_object_array_saved_by_numpy_is_refused_without_unpickling(tmp_path):
    params = {k: v.astype(object) if k == "weight_hh_l0" else v for k, v in rnn_params().items()}
    path = tmp_path / "w.npz"
    np.savez(path, **params)
    msg = load_error(CHAIN, path)
    assert "'weight_hh_l0' has dtype object" in msg


def test_fortran_order_and_big_endian_float32_load(tmp_path):
    params = rnn_params()
    path = tmp_path / "w.npz"
    np.savez(path, **{k: np.asfortranarray(v).astype(">f4") for k, v in params.items()})
    run = Run(CHAIN.with_overrides(sizes=file_sizes({"weights": str(path)}), weights=str(path)))
    for key, value in params.items():
        np.testing.assert_array_equal(run.params[key], value.astype(np.float32).astype(np.float64))
        assert run.params[key].dtype == np.float64 and run.params[key].flags.c_contiguous


def test_a_key_that_appears_twice_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **rnn_params())
    with zipfile.ZipFile(path, "a") as zf:
        with zf.open("weight_hh_l0", "w") as out:  # numpy.load would call this 'weight_hh_l0' too
            np.lib.format.write_array(out, np.eye(3))
    msg = load_error(CHAIN, path)
    assert "'weight_hh_l0' appears twice" in msg


# -- 2. the key that is wrong is the one blamed -------------------------------------------------


@pytest.mark.parametrize(
    "hh, expected",
    [
        (np.zeros((3, 4)), "'weight_hh_l0' has shape (3, 4), expected (3, 3) (an rnn cell's weight_hh_l0 is (H, H))"),
        (np.zeros((3, 2)), "'weight_hh_l0' has shape (3, 2), expected (3, 3) (an rnn cell's weight_hh_l0 is (H, H))"),
        (np.zeros(3), "'weight_hh_l0' has shape (3,), expected (3, 3)"),
        (np.zeros((3, 3, 1)), "'weight_hh_l0' has shape (3, 3, 1), expected (3, 3)"),
    ],
)
def test_a_malformed_recurrent_weight_is_its_own_fault(tmp_path, hh, expected):
    path = tmp_path / "w.npz"
    np.savez(path, **{**rnn_params(3, 4), "weight_hh_l0": hh})
    assert expected in load_error(CHAIN, path)


def test_a_one_dimensional_recurrent_weight_is_blamed_whatever_the_preset_size(tmp_path):
    """H = 5 in the file, 3 in the preset: the expected shape comes from the keys that agree."""
    path = tmp_path / "w.npz"
    np.savez(path, **{**rnn_params(5, 4), "weight_hh_l0": np.zeros(5)})
    assert "'weight_hh_l0' has shape (5,), expected (5, 5)" in load_error(CHAIN, path)
    np.savez(path, **{**rnn_params(5, 4, K=2), "weight_hh_l0": np.zeros((5, 7))})
    assert "'weight_hh_l0' has shape (5, 7), expected (5, 5)" in load_error(Config(hidden=3, batch=2, steps=4), path)


def test_rnn_weights_in_an_lstm_run_blame_the_recurrent_weight(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **rnn_params(5, 4, K=2))
    msg = load_error(Config(cell="lstm", hidden=5, batch=2, steps=4), path)
    assert "'weight_hh_l0' has shape (5, 5), expected (20, 5) (the file holds the weights of a rnn cell: choose it with --cell)" in msg


def test_gru_weights_in_an_lstm_run_say_which_cell_they_are(tmp_path):
    """The file's H is weight_hh_l0's column count (4), not the row count of another key."""
    path = tmp_path / "w.npz"
    params = rnn_params(4, 3, K=2)
    params.update(weight_ih_l0=np.zeros((12, 3)), weight_hh_l0=np.zeros((12, 4)), bias_ih_l0=np.zeros(12), bias_hh_l0=np.zeros(12))
    np.savez(path, **params)
    msg = load_error(Config(cell="lstm", hidden=4, batch=2, steps=4, input_size=3), path)
    assert "'weight_hh_l0' has shape (12, 4), expected (16, 4) (the file holds the weights of a gru cell: choose it with --cell)" in msg


def test_a_square_recurrent_weight_sizes_the_others(tmp_path):
    """weight_hh_l0 (4, 4) fixes H = 4: the (3, 4) input weight is the odd one out."""
    path = tmp_path / "w.npz"
    np.savez(path, **{**rnn_params(3, 4), "weight_hh_l0": np.zeros((4, 4))})
    assert "'weight_ih_l0' has shape (3, 4), expected (4, 4)" in load_error(CHAIN, path)


@pytest.mark.parametrize("key, shape, size", [("weight_ih_l0", (3, 5000), "input size D"), ("head.weight", (0, 3), "output size K")])
def test_sizes_out_of_range_name_the_key(tmp_path, key, shape, size):
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w") as zf:
        header_only_member(zf, f"{key}.npy", shape)
    with pytest.raises(ConfigError) as info:
        sizes_from_file(path)
    assert f"'{key}' has shape {shape}, expected" in info.value.message and size in info.value.message


def test_check_params_blames_the_recurrent_weight_too():
    """Run(params=...) goes through the same checks."""
    params = {**rnn_params(3, 4), "weight_hh_l0": np.zeros((3, 4))}
    with pytest.raises(ConfigError) as info:
        Run(CHAIN, params=params)
    assert "'weight_hh_l0' has shape (3, 4), expected (3, 3)" in info.value.message


# -- 5. user strings are echoed escaped -----------------------------------------------------


def test_control_characters_in_paths_and_keys_are_escaped(tmp_path):
    path = tmp_path / "w\x1b]0;pwned\x07.npz"
    np.savez(path, **rnn_params(), **{"x\x1b[2J\u202e": np.zeros(1)})
    with pytest.raises(ConfigError) as info:
        Run(CHAIN.with_overrides(sizes=file_sizes({"weights": str(path)}), weights=str(path)))
    msg = info.value.message
    assert "\x1b" not in msg and "\x07" not in msg and "\u202e" not in msg
    assert "w\\x1b]0;pwned\\x07.npz" in msg and "'x\\x1b[2J\\u202e'" in msg


def test_expected_shapes_match_the_spec():
    assert param_shapes(Config(cell="gru", hidden=4, input_size=2, output_size=3)) == {
        "weight_ih_l0": (12, 2), "weight_hh_l0": (12, 4), "bias_ih_l0": (12,), "bias_hh_l0": (12,), "head.weight": (3, 4), "head.bias": (3,),
    }  # fmt: skip
