"""Overflow handling, the JSON/CSV exports and import hygiene.

- A chain that overflows (W x 10, T = 2000) must finish silently: no numpy
  warning, statuses `overflow` from the first non-finite step on, and exports
  that stay strict (RFC 8259 JSON: no NaN/Infinity literals; null instead).
- The JSON schema (bptt-lab.run/1): top-level keys, every Config field,
  per-step values equal to the record columns, parameters by PyTorch name.
- `import engine` must not pull in the TUI stack (textual, rich, typer).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine import Config, Run
from engine.export import CSV_COLUMNS, SCHEMA, to_csv, to_json
from engine.records import NUMERIC
from tests.reference import section_2

ROOT = Path(__file__).resolve().parents[2]
# The reference chain (no inputs: h stays 0, only the gradients grow) with W x 10.
OVERFLOW = dict(mode="chain", activation="linear", hidden=3, batch=2, steps=2000, init="gaussian", seed=3, scale=10, input_scale=0.0)
CONFIG_FIELDS = [f.name for f in dataclasses.fields(Config) if f.init]
BASE_KEYS = {"schema", "preset", "config", "summary", "steps"}
DUMP_KEYS = {"params", "inputs", "targets", "grads", "grads_raw"}
STEP_KEYS = {"k", "t", *NUMERIC, "clip", "status"}


def strict_loads(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def overflow_run():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = Run(Config(**OVERFLOW))
        summary = run.run()
        text = to_json(run, dump=True)
        text_plain = to_json(run)
        table = to_csv(run)
    return run, summary, text, text_plain, table


# -- overflow -----------------------------------------------------------------------------


def test_overflow_run_is_silent_and_complete(overflow_run):
    run, summary, *_ = overflow_run  # the fixture already ran with warnings as errors
    assert run.done and summary["done"] and summary["steps_done"] == 2000
    assert len(run.records) == 2000


def test_overflow_statuses(overflow_run):
    run, summary, *_ = overflow_run
    statuses = [r.status for r in run.records]
    gn = run.records.columns["grad_norm"]
    k0 = summary["overflow_k"]
    assert k0 is not None and 1 < k0 < 2000
    # overflow from k0 on, and only there
    assert all(s == "overflow" for s in statuses[k0 - 1 :])
    assert "overflow" not in statuses[: k0 - 1]
    # k0 is the first step whose hidden norm or running parameter norm is not finite
    pn = run.records.columns["param_norm"]
    bad = ~(np.isfinite(gn) & np.isfinite(pn))
    assert int(np.flatnonzero(bad)[0]) + 1 == k0
    # the last finite norm is huge (the chain grows ~12.55x per step)
    assert gn[k0 - 2] > 1e100
    # before overflow it was exploding (status), and the regime says overflow
    assert "exploding" in statuses[: k0 - 1]
    assert summary["regime"] == "overflow"
    assert summary["first_exploding_k"] is not None and summary["first_exploding_k"] < k0


def test_overflow_is_reported_only_for_a_nonfinite_gradient(overflow_run):
    run, summary, *_ = overflow_run
    # SPEC section 2's loop with Wh x 10, its norm scaled by max|dh| (finite for every
    # finite dh whose norm is representable, inf from the first non-finite dh)
    chain = section_2(10.0, 400, safe=True)
    ref = chain.norms
    first_inf = int(np.flatnonzero(~np.isfinite(ref))[0]) + 1
    assert 275 < first_inf < 285  # ~ log(1.8e308) / log(12.55)
    gn = run.records.columns["grad_norm"]
    # at k = 140 the carried gradient is ~1.7e154 (finite): its norm must be shown, not overflow
    assert np.isfinite(ref[139])
    assert gn[139] == pytest.approx(ref[139], rel=1e-9)
    assert run.records[140].status == "exploding"
    # the bias gradient, sum over steps and batch of dL/dnet, overflows in float64 one step earlier
    db, k_bias = np.zeros(3), None
    with np.errstate(all="ignore"):
        for k in range(1, 400):
            db = db + chain.dh[k - 1].sum(axis=0)  # transition T-k+1 uses the gradient carried into it
            if k_bias is None and not np.all(np.isfinite(db)):
                k_bias = k
    assert summary["overflow_k"] == min(first_inf, k_bias)


def test_a_forward_overflow_makes_every_weight_gradient_overflow():
    """With inputs the states themselves overflow at t = 282 of 2000; every step's
    dW term then uses a non-finite h_{t-1} or a gradient through one, so the
    parameter gradients are not finite from k = 1: status overflow there."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = Run(Config(**{**OVERFLOW, "input_scale": 1.0}))
        summary = run.run()
    assert summary["forward_overflow_t"] is not None and summary["forward_overflow_t"] < 2000
    assert run.records[1].status == "overflow" and summary["overflow_k"] == 1
    assert not np.isfinite(run.records.columns["param_norm"][0])


def test_overflow_chain_matches_source_before_overflow(overflow_run):
    run, summary, *_ = overflow_run
    ref = section_2(10.0, 2000, safe=True).norms
    k0 = summary["overflow_k"]
    np.testing.assert_allclose(run.records.columns["grad_norm"][: k0 - 1], ref[: k0 - 1], rtol=1e-9)


def test_overflow_json_is_strict(overflow_run):
    run, summary, text, text_plain, _ = overflow_run
    for t in (text, text_plain):
        assert "NaN" not in t and "Infinity" not in t
        strict_loads(t)  # raises on NaN / Infinity / -Infinity
    doc = strict_loads(text)
    assert set(doc) == BASE_KEYS | DUMP_KEYS
    assert set(strict_loads(text_plain)) == BASE_KEYS
    # non-finite values are null, finite ones kept exactly
    gn = run.records.columns["grad_norm"]
    for step, value in zip(doc["steps"], gn):
        if math.isfinite(value):
            assert step["grad_norm"] == value
        else:
            assert step["grad_norm"] is None and step["status"] == "overflow"
    assert doc["summary"]["overflow_k"] == summary["overflow_k"]
    assert doc["summary"]["grad_norm_total_raw"] is None  # the raw total is not finite
    for name, g in run.grads_raw.items():
        arr = np.array(doc["grads_raw"][name], dtype=object)
        assert arr.shape == g.shape
        null = np.vectorize(lambda v: v is None, otypes=[bool])(arr)
        np.testing.assert_array_equal(null, ~np.isfinite(g))
        assert np.any(null), name
    # the inputs are finite: dumped exactly
    np.testing.assert_array_equal(np.array(doc["inputs"]), run.inputs)
    assert doc["targets"] is None  # chain: no readout


def test_overflow_csv(overflow_run):
    run, _, _, _, table = overflow_run
    rows = list(csv.reader(io.StringIO(table)))
    assert rows[0] == list(CSV_COLUMNS)
    body = rows[1:]
    assert len(body) == 2000
    assert all(len(r) == len(CSV_COLUMNS) for r in body)
    col = {name: i for i, name in enumerate(CSV_COLUMNS)}
    gn = run.records.columns["grad_norm"]
    for k, row in enumerate(body, start=1):
        assert int(row[col["k"]]) == k and int(row[col["t"]]) == 2000 - k
        cell = row[col["grad_norm"]]
        if math.isfinite(gn[k - 1]):
            assert float(cell) == gn[k - 1]
        else:
            assert cell == ""
        assert row[col["status"]] == run.records[k].status
    assert "nan" not in table.lower() and "inf" not in table.lower()


# -- schema and round trip of a normal run ---------------------------------------------------


@pytest.fixture(scope="module", params=["rnn", "lstm", "gru"])
def normal_run(request):
    cfg = Config(cell=request.param, hidden=5, batch=3, steps=12, input_size=2, output_size=3, seed=7, clip="norm", clip_threshold=0.01, loss_on="all")
    run = Run(cfg)
    run.run()
    return run


def test_json_schema_and_round_trip(normal_run):
    run = normal_run
    doc = strict_loads(to_json(run, dump=True, preset="my-preset"))
    assert set(doc) == BASE_KEYS | DUMP_KEYS
    assert doc["schema"] == SCHEMA == "bptt-lab.run/1"
    assert doc["preset"] == "my-preset"
    assert set(CONFIG_FIELDS) <= set(doc["config"])
    for name in CONFIG_FIELDS:
        assert doc["config"][name] == getattr(run.config, name), name
    assert len(doc["steps"]) == run.T
    cols = run.records.columns
    for k, step in enumerate(doc["steps"], start=1):
        assert set(step) == STEP_KEYS
        assert step["k"] == k and step["t"] == run.T - k
        assert step["grad_norm"] == cols["grad_norm"][k - 1]
        assert step["param_norm"] == cols["param_norm"][k - 1]
        assert step["status"] == run.records[k].status
    # the clip events survive the round trip
    last = doc["steps"][-1]["clip"]
    assert last["mode"] == "norm" and last["applied"] is True
    assert last["after"] == pytest.approx(0.01, rel=1e-3)
    H, G, D, K = 5, run.config.gates, 2, 3
    shapes = {
        "weight_ih_l0": (G * H, D),
        "weight_hh_l0": (G * H, H),
        "bias_ih_l0": (G * H,),
        "bias_hh_l0": (G * H,),
        "head.weight": (K, H),
        "head.bias": (K,),
    }
    for key in ("params", "grads", "grads_raw"):
        assert set(doc[key]) == set(shapes), key
        source = getattr(run, key)
        for name, shape in shapes.items():
            arr = np.array(doc[key][name], dtype=np.float64)
            assert arr.shape == shape, (key, name)
            np.testing.assert_array_equal(arr, source[name])
    np.testing.assert_array_equal(np.array(doc["inputs"]), run.inputs)
    assert np.array(doc["inputs"]).shape == (12, 3, 2)
    assert np.array(doc["targets"]).shape == (12, 3, 3)
    # numbers that do not apply are null (cell_norm of an rnn/gru, bound of a gated cell)
    if run.config.cell != "lstm":
        assert all(s["cell_norm"] is None for s in doc["steps"])
    if run.config.cell != "rnn":
        assert all(s["bound"] is None for s in doc["steps"])


def test_json_without_dump_has_no_arrays(normal_run):
    doc = strict_loads(to_json(normal_run))
    assert set(doc) == BASE_KEYS
    assert doc["preset"] is None


def test_csv_of_normal_run(normal_run):
    run = normal_run
    rows = list(csv.reader(io.StringIO(to_csv(run))))
    assert rows[0] == list(CSV_COLUMNS) and len(rows) == run.T + 1
    col = {name: i for i, name in enumerate(CSV_COLUMNS)}
    for k, row in enumerate(rows[1:], start=1):
        assert len(row) == len(CSV_COLUMNS)
        for name in NUMERIC:
            v = run.records.columns[name][k - 1]
            assert (row[col[name]] == "") if not math.isfinite(v) else float(row[col[name]]) == v
    last = rows[-1]
    assert last[col["clip_mode"]] == "norm" and last[col["clip_applied"]] == "true"


def test_json_of_partial_run_is_valid():
    run = Run(Config(hidden=4, batch=2, steps=10))
    for _ in range(3):
        run.step()
    doc = strict_loads(to_json(run, dump=True))
    assert len(doc["steps"]) == 3
    assert doc["grads"] is None and doc["grads_raw"] is None
    assert doc["summary"]["done"] is False


# -- import hygiene ---------------------------------------------------------------------------


def test_engine_imports_no_ui_stack():
    code = (
        "import sys, json\n"
        "import engine, engine.presets, engine.export\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'typer'))\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    # the probe can see those modules when they are imported (it is not vacuous)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, rich; print('rich' in sys.modules)"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert probe.stdout.strip() == "True"


def test_a_deeply_vanished_gradient_is_small_not_zero():
    """seed-vanish's chain (x0.63 per step) reaches ~1e-160 by k = 800: squaring
    that underflows, but the recorded norm must still be the true, nonzero value."""
    run = Run(Config(mode="chain", activation="linear", hidden=3, batch=2, steps=900, init="gaussian", seed=3, scale=0.5, input_scale=0.0))
    run.run()
    gn = run.records.columns["grad_norm"]
    # the source loop; dh ~ 1e-160 is still a normal double, and the norm is scaled
    # by max|dh| before squaring, so nothing underflows
    expected = section_2(0.5, 800, safe=True).norms[799]
    assert 0 < expected < 1e-150
    assert gn[799] == pytest.approx(expected, rel=1e-9, abs=0)  # approx adds abs=1e-12 unless told: 0 would pass
