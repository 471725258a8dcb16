"""Hostile weights and preset files through `bptt-lab`: one line on stderr,
exit code 2, the right key blamed, nothing that drives the terminal."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from typer.testing import CliRunner

from engine.presets import MAX_FILE_BYTES
from tui.cli import app

runner = CliRunner()


def error_line(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bptt-lab: error: ")
    assert not any(c in result.stderr for c in "\x1b\x07\x9b\u202e"), result.stderr
    return lines[0]


def rnn_file(path, **replace) -> str:
    H, D = 3, 4
    params = {"weight_ih_l0": np.zeros((H, D)), "weight_hh_l0": np.eye(H), "bias_ih_l0": np.zeros(H), "bias_hh_l0": np.zeros(H)}
    np.savez(path, **{**params, **replace})
    return str(path)


def test_a_non_square_recurrent_weight_is_blamed_not_the_input_weight(tmp_path):
    f = rnn_file(tmp_path / "w.npz", weight_hh_l0=np.zeros((3, 4)))
    line = error_line("run", "seed-explode", "--weights", f)
    assert "'weight_hh_l0' has shape (3, 4), expected (3, 3)" in line and "weight_ih_l0" not in line
    f = rnn_file(tmp_path / "v.npz", weight_hh_l0=np.zeros(3))
    assert "'weight_hh_l0' has shape (3,), expected (3, 3)" in error_line("run", "seed-explode", "--weights", f)


def test_a_header_claiming_a_huge_array_is_refused_quickly(tmp_path):
    f = tmp_path / "huge.npz"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr("weight_hh_l0.npy", buf.getvalue() + b"\0" * 8)
    line = error_line("run", "seed-explode", "--weights", str(f))
    assert "'weight_hh_l0' has shape (100000, 100000), expected (G*H, H)" in line


def test_a_preset_file_with_a_list_as_base(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[mine]\nbase = ["seed-explode"]\n')
    line = error_line("presets", "--preset-file", str(f))
    assert f"{f}:1: preset 'mine': base must be a preset name (a string), got an array" in line


def test_a_preset_name_that_would_clear_the_screen(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('["a\\u001b[2Jb"]\nhidden = 8\n')
    line = error_line("presets", "--preset-file", str(f))
    assert "preset name 'a\\x1b[2Jb' contains U+001B" in line


def test_a_description_that_would_set_the_title(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[mine]\ndescription = "\\u001b]0;owned\\u0007"\n')
    assert "description contains U+001B" in error_line("run", "mine", "--preset-file", str(f))


def test_an_unknown_preset_name_is_echoed_escaped():
    assert "unknown preset 'x\\x1b[2J\\x9b'" in error_line("run", "x\x1b[2J\x9b")


def test_a_too_large_preset_file(tmp_path):
    f = tmp_path / "big.toml"
    f.write_text("#" * (2 * MAX_FILE_BYTES - 1) + "\n")
    assert f"preset file too large (2.0 MB; limit {MAX_FILE_BYTES // 2**20} MB)" in error_line("presets", "--preset-file", str(f))
