"""`bptt-lab spectrum`: the eigenvalues of W_hh as a table, CSV and strict JSON
(numbers against numpy's eigvals of matrices made independently), over a
training's updates, the chart, and bad input as one line with exit code 2."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import Config
from engine.training import Training, TrainingSettings
from tests.cli.test_bad_input import refused
from tests.engine.test_spectrum import same_multiset
from tui.cli import app

runner = CliRunner()

# The documented keys (README: JSON schema bptt-lab.spectrum/1).
TOP = {"schema", "preset", "config", "training", "of", "cell", "hidden", "gates", "diverged_at", "spectra"}
SPECTRUM = {"update", "after_updates", "radius", "sigma_max", "circles", "verdict", "blocks"}
BLOCK = {"gate", "activation", "gamma", "radius", "sigma_max", "sigma_max_gamma", "outside_unit_circle", "eigenvalues", "singular_values"}


def invoke(*args: str):
    return runner.invoke(app, ["spectrum", *args])


def strict(text: str) -> dict:
    def no(name):
        raise AssertionError(f"{name} in strict JSON")

    return json.loads(text, parse_constant=no)


def legacy_wh(scale: float = 1.0) -> np.ndarray:
    """SPEC 2: Wh = randn(3, 3) after numpy.random.seed(3)."""
    np.random.seed(3)
    return np.random.randn(3, 3) * scale


def test_json_is_strict_documented_and_matches_numpy():
    result = invoke("seed-vanish", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = strict(result.stdout)
    assert set(doc) == TOP and doc["schema"] == "bptt-lab.spectrum/1" and doc["training"] is None and doc["diverged_at"] is None
    (s,) = doc["spectra"]
    assert set(s) == SPECTRUM and s["update"] is None
    (b,) = s["blocks"]
    assert set(b) == BLOCK and b["gate"] == "h" and b["gamma"] == 1.0
    Wh = legacy_wh(0.5)
    z = np.array([e["re"] + 1j * e["im"] for e in b["eigenvalues"]])
    same_multiset(z, np.linalg.eigvals(Wh))
    np.testing.assert_allclose([e["abs"] for e in b["eigenvalues"]], np.abs(z), rtol=1e-12)
    np.testing.assert_allclose(b["singular_values"], np.linalg.svd(Wh, compute_uv=False), rtol=1e-12)
    assert s["radius"] == pytest.approx(max(abs(np.linalg.eigvals(Wh))), rel=1e-12)  # 0.628: vanishes
    assert "vanishes" in s["verdict"] and b["outside_unit_circle"] == 0 and s["sigma_max"] > 1


def test_lstm_json_per_gate_block_in_the_pytorch_order():
    result = invoke("lstm-cec", "-H", "4", "--format", "json")
    doc = strict(result.stdout)
    (s,) = doc["spectra"]
    assert [b["gate"] for b in s["blocks"]] == doc["gates"] == ["i", "f", "g", "o"]
    assert [b["gamma"] for b in s["blocks"]] == [0.25, 0.25, 1.0, 0.25]
    assert s["circles"] == [1.0, 4.0]
    from engine import Model
    from engine.presets import BUILTIN

    W = Model.from_config(BUILTIN["lstm-cec"].config.with_overrides(hidden=4)).params["weight_hh_l0"]
    for g, b in enumerate(s["blocks"]):
        z = np.array([e["re"] + 1j * e["im"] for e in b["eigenvalues"]])
        same_multiset(z, np.linalg.eigvals(W[4 * g : 4 * g + 4]))


def test_table_and_csv():
    table = invoke("sigmoid-quarter").stdout
    assert "vanishing is guaranteed" in table and "17 of 32" in table and "1/4" in table
    rows = list(csv.DictReader(io.StringIO(invoke("seed-explode", "-f", "csv").stdout)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and all(r["update"] == "" for r in rows)
    z = np.array([float(r["re"]) + 1j * float(r["im"]) for r in rows])
    same_multiset(z, np.linalg.eigvals(legacy_wh()))


def test_plot_draws_the_plane_with_its_legend():
    out = invoke("seed-explode", "--plot").stdout
    assert "legend: ● eigenvalues of W_hh" in out and "radius 1.26" in out and "singular values, sigma_max 2.66" in out


def test_at_updates_of_a_training_are_the_parameters_each_used():
    """--at 1,4,9 on a small training: theta_0, theta_3, theta_8, as a training of the same settings takes them."""
    args = ["train-explode", "-H", "8", "-N", "4", "-T", "10", "--updates", "8", "--at", "1,4,9", "-f", "json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    doc = strict(result.stdout)
    assert [s["update"] for s in doc["spectra"]] == [1, 4, 9] and [s["after_updates"] for s in doc["spectra"]] == [0, 3, 8]
    settings = TrainingSettings.from_dict(doc["training"])
    t = Training(Config(**{k: v for k, v in doc["config"].items() if k not in ("vocabulary", "gamma")}), settings)
    for s in doc["spectra"]:
        while t.u < s["after_updates"]:
            t.step()
        z = np.array([e["re"] + 1j * e["im"] for e in s["blocks"][0]["eigenvalues"]])
        same_multiset(z, np.linalg.eigvals(t.model.params["weight_hh_l0"]))


def test_every_gives_theta_0_every_k_and_the_last():
    doc = strict(invoke("train-explode", "-H", "8", "-N", "4", "-T", "10", "--updates", "7", "--every", "3", "-f", "json").stdout)
    assert [s["after_updates"] for s in doc["spectra"]] == [0, 3, 6, 7]


# train-explode at --lr 5 diverges at update 3 (bptt-lab train says diverged_at 3): update 3 used theta_2, the last finite.
WILD = ("train-explode", "--lr", "5", "--updates", "50")


def test_updates_all_past_the_divergence_are_refused_naming_the_last_with_parameters():
    err = refused(invoke(*WILD, "--at", "40,50"))
    assert err == "bptt-lab: error: the training diverged at update 3: --at 40,50 have no parameters; the last with parameters is 3"
    err = refused(invoke(*WILD, "--at", "4"))
    assert err.endswith(": --at 4 has no parameters; the last with parameters is 3")


def test_updates_partly_past_the_divergence_give_the_rest_and_a_note():
    result = invoke(*WILD, "--at", "3,4", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = strict(result.stdout)
    assert set(doc) == TOP and doc["diverged_at"] == 3 and [s["update"] for s in doc["spectra"]] == [3]
    assert "update 4 and after have no parameters (1 left out)" in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (("train-explode", "--at", "1,x"), ("--at", "commas")),
        (("train-explode", "--at", "0"), ("--at", "from 1 to 1501")),
        (("train-explode", "--at", "1", "--every", "2"), ("--at and --every",)),
        (("train-explode", "--every", "0"), ("--every",)),
        (("seed-vanish", "--lr", "0.1"), ("--lr", "--at or --every")),
        (("seed-vanish", "--plot", "-f", "json"), ("--plot", "--output")),
        (("seed-vanish", "--force"), ("--force",)),
        (("nope",), ("nope",)),
        (("seed-vanish", "-H", "0"), ("--hidden",)),
        (("seed-vanish", "--clip-threshold", "suggested"), ("suggested", "--at")),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words):
    refused(invoke(*args), *words)
