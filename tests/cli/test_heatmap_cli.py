"""`bptt-lab heatmap`: the matrix and the connectivity as strict JSON, CSV and
a table, the picture with --plot, and bad input (one line, exit 2)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import Run
from engine.presets import BUILTIN
from tests.input_gradients import input_norms
from tui.cli import app
from tui.views import heatmap_picture as pic

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["heatmap", *args])


def strict(text: str):
    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict_and_holds_the_per_unit_gradient_and_the_connectivity():
    result = invoke("wig-went", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = strict(result.stdout)
    assert doc["schema"] == "bptt-lab.heatmap/1" and doc["preset"] == "wig-went" and doc["stride"] == 1
    assert (doc["steps"], doc["hidden"], doc["batch"]) == (9, 16, 1)
    run = Run(BUILTIN["wig-went"].config)
    run.run()
    logged = np.concatenate([[run.start_norm], run.records.columns["grad_norm"]])
    units = np.array([c["units"] for c in doc["columns"]])
    assert [c["k"] for c in doc["columns"]] == list(range(10)) and [c["t"] for c in doc["columns"]] == list(range(9, -1, -1))
    np.testing.assert_allclose(np.sqrt((units**2).sum(axis=1)), logged, rtol=1e-12)  # each row's units give the log's |dL/dh|
    assert [d["t"] for d in doc["inputs"]] == list(range(9, 0, -1)) and [d["k"] for d in doc["inputs"]] == list(range(1, 10))
    assert [d["word"] for d in doc["inputs"]] == ["head", "his", "on", "wig", "a", "wore", "who", "man", "The"]
    full = input_norms(run)  # finite differences, without truncation
    np.testing.assert_allclose([d["norm"] for d in doc["inputs"][:5]], full[:5], rtol=1e-6)
    assert doc["summary"]["zero_inputs"] == [4, 3, 2, 1]


def test_overflow_is_null_in_json():
    result = invoke("seed-explode", "--scale", "10", "-T", "400", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = strict(result.stdout)
    last = doc["columns"][-1]["units"]
    assert None in last and doc["summary"]["final_norm"] is None


def test_csv_one_row_per_state_with_its_input():
    result = invoke("wig-went", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0])[:5] == ["k", "k_last", "t", "word", "dx_norm"] and list(rows[0])[5:] == [f"unit_{j}" for j in range(1, 17)]
    assert len(rows) == 10 and rows[7]["word"] == "man" and rows[7]["t"] == "2" and float(rows[7]["dx_norm"]) == 0.0
    assert rows[9]["dx_norm"] == "" and rows[9]["word"] == ""  # h_0 read nothing
    run = Run(BUILTIN["wig-went"].config)
    run.run()
    units = np.array([[float(r[f"unit_{j}"]) for j in range(1, 17)] for r in rows])
    logged = np.concatenate([[run.start_norm], run.records.columns["grad_norm"]])
    np.testing.assert_allclose(np.sqrt((units**2).sum(axis=1)), logged, rtol=1e-12)


def test_table_names_the_inputs_the_loss_no_longer_reaches():
    result = invoke("wig-went")
    assert result.exit_code == 0, result.output
    assert "inputs the loss no longer reaches (||dL/dx_t|| = 0): t = 4..1" in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["7", "2", "man"] for line in lines)


def test_plot_without_a_terminal_is_characters_alone(tmp_path):
    out = tmp_path / "h.json"
    result = invoke("wig-went", "--plot", "--format", "json", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout
    assert "dL/dx" in result.stdout and "man" in result.stdout and pic.GLYPHS[-1] in result.stdout
    strict(out.read_text())


@pytest.mark.parametrize(
    "args, words",
    [
        (("nope",), ("unknown preset",)),
        (("wig-went", "--format", "xml"), ("--format",)),
        (("wig-went", "--plot", "--format", "csv"), ("--plot", "--output")),
        (("wig-went", "--force"), ("--force",)),
        (("wig-went", "-H", "0"), ("--hidden",)),
        (("wig-went", "--truncate", "-1"), ("truncate",)),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words):
    result = invoke(*args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert "\n" not in err and err.startswith("bptt-lab: error: ") and "Traceback" not in result.output
    for w in words:
        assert w in err


def test_an_existing_output_is_refused(tmp_path):
    out = tmp_path / "h.csv"
    out.write_text("mine")
    result = invoke("wig-went", "--format", "csv", "--output", str(out))
    assert result.exit_code == 2 and out.read_text() == "mine"
