"""The phase diagram's engine (engine/sweep.py): each cell against a single
Run of that cell's config, with the growth computed here from the Run's
recorded norms; the lines against numpy's SVD and eigenvalues of the drawn
W_hh; the axes; the same numbers whatever the number of workers. The
phase-diagram preset's sentence: tests/engine/test_preset_sentences.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine import Config, Run
from engine.sweep import (
    Grid,
    Sweep,
    SweepError,
    crossings,
    measure,
    parse_axis,
    run_grid,
)


def growth_from_records(config: Config) -> tuple[float, Run]:
    """log10 growth per step from a recorded Run: the mean of log10(norm_k / norm_{k-1}), norm_0 the start norm."""
    run = Run(config)
    run.run()
    norms = np.concatenate(([run.start_norm], run.records.columns["grad_norm"][: run.k]))
    with np.errstate(all="ignore"):
        steps = np.log10(norms[1:]) - np.log10(norms[:-1])
    steps = steps[np.isfinite(steps)]
    return float(np.mean(steps)), run


def telescoped(run: Run) -> float:
    """The same for a pass with the loss on the last step and no clip: (log|dL/dh_0| - log|dL/dh_T|) / T."""
    return (math.log10(run.records.columns["grad_norm"][run.k - 1]) - math.log10(run.start_norm)) / run.T


@pytest.mark.parametrize(
    "settings",
    [
        dict(hidden=16, steps=40, scale=0.5),
        dict(hidden=16, steps=40, scale=2.0, activation="relu"),
        dict(hidden=8, steps=30, cell="lstm", forget_bias=2.0),
        dict(hidden=8, steps=30, cell="gru"),
        dict(hidden=8, steps=30, loss_on="all", activation="sigmoid", scale=3.0),
    ],
)
def test_a_cell_is_the_single_run_of_its_config(settings):
    config = Config(**settings)
    cell = measure(config)
    expected, run = growth_from_records(config)
    assert cell["status"] == "ok"
    assert cell["log10_growth"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert cell["growth"] == pytest.approx(10**expected, rel=1e-9)
    if config.loss_on == "last":
        assert cell["log10_growth"] == pytest.approx(telescoped(run), rel=1e-9)
    W = run.params["weight_hh_l0"]
    assert cell["sigma_max"] == pytest.approx(np.linalg.svd(W, compute_uv=False)[0], rel=1e-12)
    if config.gates == 1:
        assert cell["spectral_radius"] == pytest.approx(np.max(np.abs(np.linalg.eigvals(W))), rel=1e-12)
        assert cell["sigma_gamma"] == pytest.approx(cell["sigma_max"] * {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25}[config.activation])
    else:
        assert cell["spectral_radius"] is None and cell["sigma_gamma"] is None


def test_an_overflowing_pass_reports_the_growth_up_to_the_overflow_and_never_warns(recwarn):
    config = Config(mode="chain", activation="linear", hidden=8, batch=2, steps=400, init="gaussian", scale=20.0)
    cell = measure(config)
    assert cell["status"] == "overflow" and cell["overflow_k"] is not None
    assert not recwarn.list
    # Before the overflow each step multiplies by the same matrix: the growth is finite and large.
    run = Run(config)
    run.run()
    norms = np.concatenate(([run.start_norm], run.records.columns["grad_norm"][: cell["overflow_k"] - 1]))
    assert cell["log10_growth"] == pytest.approx(np.mean(np.diff(np.log10(norms))), rel=1e-9)
    assert json.loads(json.dumps(Sweep(config, parse_axis("scale=1,2"), parse_axis("seed=1,2"), [[cell, cell], [cell, cell]]).to_dict(), allow_nan=False))


def test_a_gradient_that_becomes_exactly_zero_is_minus_infinity():
    config = Config(activation="relu", hidden=4, steps=30, scale=0.01, input_scale=0.0)
    run = Run(config)
    run.run()
    assert run.records.columns["grad_norm"][run.k - 1] == 0.0  # independent: the recorded norm is exactly 0
    cell = measure(config)
    assert cell["status"] == "zero" and cell["log10_growth"] == -math.inf and cell["growth"] == 0.0


@pytest.mark.parametrize(
    "text, values",
    [
        ("scale=0.5:2:4", (0.5, 1.0, 1.5, 2.0)),
        ("scale=0.1:10:3:log", (0.1, 1.0, 10.0)),
        ("activation=tanh,relu", ("tanh", "relu")),
        ("forget-bias=0,1.5", (0.0, 1.5)),
        ("hidden=8:32:4", (8, 16, 24, 32)),
        ("hidden=1:64:7:log", (1, 2, 4, 8, 16, 32, 64)),
        ("steps=10:100:4", (10, 40, 70, 100)),
    ],
)
def test_axes(text, values):
    axis = parse_axis(text)
    assert axis.values == pytest.approx(values) if axis.numeric else axis.values == values


@pytest.mark.parametrize(
    "text, words",
    [
        ("colour=1:2:3", "unknown setting 'colour'"),
        ("scale=2:1:5", "MIN < MAX"),
        ("scale=1:2:1", "at least two values"),
        ("scale=1", "at least two values"),
        ("activation=tanh,swish", "'swish' is not one of"),
        ("text=a,b", "cannot be swept"),
        ("scale", "is not FIELD="),
        ("scale=0:1:3:log", "MIN > 0"),
        ("hidden=1:3:10", "hidden takes whole numbers: 1:3:10 gives 1.22222; pick N so the steps are whole (1:3:3) or list them: hidden=1,2,3"),
        ("scale=1,1", "repeat"),
    ],
)
def test_bad_axes_say_why(text, words):
    with pytest.raises(SweepError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_axis(text)


@pytest.mark.parametrize(
    "text, message",
    [
        # 1, 2.5, 4: never rounded to 1, 2, 4 (not linear, and crossings between sizes not asked for); steps of 1 (N = 4) or 3 (N = 2) are whole
        ("hidden=1:4:3", "hidden takes whole numbers: 1:4:3 gives 2.5; pick N so the steps are whole (1:4:4) or list them: hidden=1,2,4"),
        # 0, 3.33, 6.67, 10: whole steps for N = 2, 3, 6, 11; 3 is the nearest to 4
        ("seed=0:10:4", "seed takes whole numbers: 0:10:4 gives 3.33333; pick N so the steps are whole (0:10:3) or list them: seed=0,3,7,10"),
        # 4 * 64^(1/9) = 6.3496...: a log range of sizes is listed, rounded, for the user to take or change
        ("hidden=4:256:10:log", "hidden takes whole numbers: 4:256:10:log gives 6.3496; list them: hidden=4,6,10,16,25,40,64,102,161,256"),
        ("batch=1.5:4:3", "batch takes whole numbers: 1.5:4:3 gives 1.5; list them: batch=2,3,4"),
    ],
)
def test_an_integer_range_with_values_that_are_not_whole_is_refused_saying_how_to_fix_it(text, message):
    with pytest.raises(SweepError) as info:
        parse_axis(text)
    assert str(info.value) == message


def test_a_setting_that_does_not_apply_to_a_cell_is_refused_up_front():
    with pytest.raises(SweepError, match="cell=lstm"):
        Grid.build(Config(), parse_axis("cell=rnn,lstm"), parse_axis("activation=tanh,relu"))
    with pytest.raises(SweepError, match="axis"):
        Grid.build(Config(), parse_axis("scale=1,2"), parse_axis("seed=1,2"), {"scale": 3.0})


def test_crossings_interpolate_linearly():
    assert crossings([0.0, 1.0, 2.0], [0.5, 1.5, 2.5], 1.0) == [0.5]
    assert crossings([0.0, 1.0, 2.0, 3.0], [0.5, 1.0, 2.0, 0.0], 1.0) == [1.0, 2.5]
    assert crossings([0.0, 1.0], [2.0, 3.0], 1.0) == []
    assert crossings([0.0, 1.0, 2.0], [0.0, math.nan, 2.0], 1.0) == []


def small_grid():
    return Grid.build(Config(hidden=8, steps=30), parse_axis("scale=0.3:2.4:8"), parse_axis("activation=tanh,relu,sigmoid"))


def test_the_same_numbers_whatever_the_number_of_workers():
    grid = small_grid()
    one, two = run_grid(grid, 1), run_grid(grid, 2)
    assert json.dumps(one.to_dict(), allow_nan=False) == json.dumps(two.to_dict(), allow_nan=False)
    for i, row in enumerate(grid.configs):  # grid order: row i is y.values[i], column j x.values[j]
        for j, config in enumerate(row):
            assert (config.activation, config.scale) == (grid.y.values[i], pytest.approx(grid.x.values[j]))
            assert one.cells[i][j]["log10_growth"] == pytest.approx(growth_from_records(config)[0], rel=1e-9, abs=1e-12)


def test_a_scale_axis_crosses_one_where_the_scale_one_matrix_says():
    """sigma_max and the radius are linear in the scale: the lines sit at 1/(sigma_max(W_1) gamma) and 1/rho(W_1)."""
    grid = small_grid()
    sweep = run_grid(grid, 2)
    W1 = Run(grid.base.with_overrides(scale=1.0)).params["weight_hh_l0"]
    sigma, rho = np.linalg.svd(W1, compute_uv=False)[0], np.max(np.abs(np.linalg.eigvals(W1)))
    lines = sweep.lines()
    for i, activation in enumerate(grid.y.values):
        gamma = 0.25 if activation == "sigmoid" else 1.0
        inside = 0.3 <= 1 / (sigma * gamma) <= 2.4
        assert lines["sigma_gamma"][i] == ([pytest.approx(1 / (sigma * gamma), rel=1e-9)] if inside else [])
        assert lines["spectral_radius"][i] == [pytest.approx(1 / rho, rel=1e-9)]


def test_a_worker_killed_from_outside_is_an_error_not_a_hang():
    import multiprocessing
    import os
    import signal

    from engine.sweep import run_cells

    configs = [Config(hidden=8, steps=30, scale=s) for s in np.linspace(0.5, 2, 64)]
    killed = []

    def kill_the_workers(done, total):
        if not killed:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    with pytest.raises(SweepError, match="ended unexpectedly"):
        run_cells(configs, 2, kill_the_workers)
    assert killed and not multiprocessing.active_children()
