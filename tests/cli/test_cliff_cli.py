"""`bptt-lab cliff`: the table, the grid as CSV, strict JSON, the plot, and bad input
(one line, exit 2). Numbers are checked against a plain transcription of SPEC 9."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from typer.testing import CliRunner

from tests.cli.test_bad_input import refused
from tests.reference import section_9_error
from tui.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["cliff", *args])


plain_error = section_9_error


def strict_json(text: str):
    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_and_holds_the_grid_the_wall_and_both_trajectories():
    result = invoke("--format", "json", "--grid", "21", "--steps", "5")
    assert result.exit_code == 0, result.output
    doc = strict_json(result.stdout)
    assert doc["schema"] == "bptt-lab.cliff/1"
    assert set(doc) == {"schema", "model", "setting", "wall", "saddle_nodes", "story", "trajectories", "fixed_points", "grid"}
    g = doc["grid"]
    assert len(g["w"]) == len(g["b"]) == 21 and len(g["E"]) == 21 and len(g["E"][0]) == 21
    for i, j in [(0, 0), (10, 13), (20, 20)]:
        assert g["E"][i][j] == pytest.approx(plain_error(g["w"][i], g["b"][j]), rel=1e-12, abs=1e-15)
    norms = [[math.hypot(a, b) for a, b in zip(rw, rb)] for rw, rb in zip(g["dE_dw"], g["dE_db"])]
    top = max((v, i, j) for i, row in enumerate(norms) for j, v in enumerate(row))
    assert (doc["wall"]["w"], doc["wall"]["b"], doc["wall"]["grad_norm"]) == pytest.approx((g["w"][top[1]], g["b"][top[2]], top[0]))
    assert [round(n["b"], 4) for n in doc["saddle_nodes"]] == [-2.6556, -2.3444]
    plain, clipped = doc["trajectories"]["no_clip"], doc["trajectories"]["clipped"]
    assert len(plain["w"]) == len(clipped["b"]) == 6 and len(plain["step_length"]) == 5
    assert plain["clip_threshold"] is None and clipped["clip_threshold"] == 1.0
    assert max(clipped["step_length"]) <= 0.1 + 1e-12
    assert doc["setting"]["look_for"] is None  # the sentence is the default setting's; --steps 5 is not it


def test_csv_is_the_grid_row_by_row():
    result = invoke("--format", "csv", "--grid", "5", "--w", "4:6", "--b", "-3:-2")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["w", "b", "E", "dE_dw", "dE_db", "grad_norm"]
    assert len(rows) == 25
    assert (float(rows[0]["w"]), float(rows[0]["b"])) == (4.0, -3.0)
    assert (float(rows[-1]["w"]), float(rows[-1]["b"])) == (6.0, -2.0)
    for row in rows[::6]:
        w, b = float(row["w"]), float(row["b"])
        assert float(row["E"]) == pytest.approx(plain_error(w, b), rel=1e-12, abs=1e-15)
        h = 1e-7
        dw = (plain_error(w + h, b) - plain_error(w - h, b)) / (2 * h)
        assert float(row["dE_dw"]) == pytest.approx(dw, rel=1e-5, abs=1e-8)


def test_the_table_tells_the_story_with_the_default_sentence():
    result = invoke()
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "saddle-nodes (w σ'(x*) = 1) at b = -2.6556 and b = -2.3444" in out
    assert "wall: the grid's largest |grad| is 26 at (w, b) = (4.9, -2.55)" in out
    assert "look for: From (w, b) = (4.9, -2.55)" in out
    step1 = next(line for line in out.splitlines() if line.split()[:1] == ["1"])
    assert step1.split()[1:3] == ["6.277", "-0.3394"]  # thrown: lands on the plateau
    assert step1.split()[6:8] == ["4.953", "-2.465"]  # clipped: 0.1 away


def test_plot_prints_both_maps_and_the_fixed_points_without_escape_codes():
    result = invoke("--plot", "--grid", "31")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\x1b[" not in out
    assert "E_50 = (σ(x_50) - 0.7)² over (w, b), log10 scale" in out and "|grad E_50|" in out
    assert "fixed points x* = 5·σ(x*) + b against b" in out
    assert "b=-2.6556" in out and "b=-2.3444" in out
    assert "S start (w, b) = (4.9, -2.55)" in out


def test_plot_says_what_lies_under_each_maps_scale():
    """The default grid's E reaches 9.1e-7 and |grad| 2.9e-4, under the scales' lowest powers of ten (1e-5, 1e-3)."""
    out = invoke("--plot").stdout
    assert "blank: the lowest level, and E below 1e-5 too (down to 9.1e-7)" in out
    assert "blank: the lowest level, and |grad| below 1e-3 too (down to 2.9e-4)" in out


def test_output_file(tmp_path):
    target = tmp_path / "cliff.json"
    result = invoke("--format", "json", "--grid", "11", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert strict_json(target.read_text())["setting"]["grid"] == 11


def test_a_start_and_ranges_reach_the_computation():
    result = invoke("--format", "json", "--grid", "3", "--w=-1:5", "--b", "-4:2", "--start", "3,-1", "--lr", "0.5", "--clip-threshold", "0.2", "--steps", "2")
    assert result.exit_code == 0, result.output
    doc = strict_json(result.stdout)
    assert doc["grid"]["w"] == [-1.0, 2.0, 5.0] and doc["grid"]["b"] == [-4.0, -1.0, 2.0]
    clipped = doc["trajectories"]["clipped"]
    assert (clipped["w"][0], clipped["b"][0]) == (3.0, -1.0)
    assert clipped["step_length"][0] == pytest.approx(min(0.5 * doc["trajectories"]["no_clip"]["grad_norm"][0], 0.5 * 0.2 * doc["trajectories"]["no_clip"]["grad_norm"][0] / (doc["trajectories"]["no_clip"]["grad_norm"][0] + 1e-6)))


@pytest.mark.parametrize(
    "args, words",
    [
        (("--grid", "1"), ("--grid must be an integer from 2 to 1000, got 1",)),
        (("--grid", "3_0"), ("--grid", "plain number")),
        (("--w", "5:2"), ("--w must be MIN:MAX", "got 5:2")),
        (("--w", "2-8"), ("--w", "is not MIN:MAX")),
        (("--b", "nan:1"), ("--b", "not finite")),
        (("--b", "-1e9:0"), ("--b must be MIN:MAX",)),
        (("--start", "4.9"), ("--start", "is not W,B")),
        (("--lr", "0"), ("--lr must be a number > 0",)),
        (("--lr", "1_0"), ("--lr", "plain number")),
        (("--clip-threshold", "-1"), ("--clip-threshold must be a number > 0",)),
        (("--steps", "0"), ("--steps must be an integer from 1 to 10000",)),
        (("--format", "xml"), ("--format",)),
        (("--force",), ("--force applies to --output FILE only",)),
        (("--plot", "--format", "json"), ("--plot with --format json needs --output FILE",)),
        (("--grid", "5", "--grid", "6"), ("--grid is given 2 times",)),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words):
    refused(invoke(*args), *words)


def test_an_existing_output_is_refused_without_force(tmp_path):
    target = tmp_path / "grid.csv"
    target.write_text("keep")
    result = invoke("--format", "csv", "--grid", "3", "--output", str(target))
    assert result.exit_code == 2 and "exists; add --force" in result.stderr
    assert target.read_text() == "keep"
