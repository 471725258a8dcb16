"""The one-unit model of SPEC section 9 (engine/cliff.py) against independent computations:
a plain-Python transcription of SPEC 9 (math module, loops), central finite
differences of it, the general engine on a 1x1 sigmoid RNN, and the closed
form of the saddle-node bifurcations."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from engine import cliff
from engine.config import Config, ConfigError
from engine.run import Run
from tests.reference import logistic, section_9_error

SETTING = cliff.CLIFF_DEFAULT


sig, plain_error = logistic, section_9_error


def central(w: float, b: float, h: float) -> tuple[float, float]:
    return (
        (plain_error(w + h, b) - plain_error(w - h, b)) / (2 * h),
        (plain_error(w, b + h) - plain_error(w, b - h)) / (2 * h),
    )


# Points on the plateaus, in the valley, beside the wall, and the default start (on the wall).
POINTS = [(3.0, -1.0), (5.0, -2.5), (5.0, -2.7), (6.5, -0.5), (2.0, -6.0), (4.5, -2.2), (-1.5, 0.7), (4.9, -2.55)]


@pytest.mark.parametrize("w,b", POINTS)
def test_error_matches_the_plain_transcription(w, b):
    E, _, _ = cliff.error_and_gradient(w, b)
    assert float(E) == pytest.approx(plain_error(w, b), rel=1e-12, abs=1e-15)


def test_the_grid_holds_the_plain_values_at_its_points():
    s = cliff.error_surface((2.0, 8.0), (-6.0, 0.0), 13)
    for i, j in [(0, 0), (5, 7), (12, 3), (6, 12), (9, 9)]:
        w, b = 2.0 + 0.5 * i, -6.0 + 0.5 * j
        assert (s.w[i], s.b[j]) == pytest.approx((w, b))
        assert s.E[i, j] == pytest.approx(plain_error(w, b), rel=1e-12, abs=1e-15)
        dw, db = central(w, b, 1e-6)
        assert (s.dE_dw[i, j], s.dE_db[i, j]) == pytest.approx((dw, db), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("w,b", POINTS)
def test_gradient_matches_central_differences(w, b):
    """The step is 1e-6 (about eps^(1/3) for values of order 1); on the wall
    the surface changes over ~1e-3 in b, so there the step is 1e-8."""
    _, dw, db = cliff.error_and_gradient(w, b)
    h = 1e-8 if (w, b) == (4.9, -2.55) else 1e-6
    fw, fb = central(w, b, h)
    scale = max(abs(fw), abs(fb), 1e-3)
    assert abs(float(dw) - fw) < 1e-5 * scale
    assert abs(float(db) - fb) < 1e-5 * scale


def test_a_large_grid_is_computed_in_chunks_with_the_same_numbers():
    w = np.linspace(2, 8, 300)[:, None]
    b = np.linspace(-6, 0, 150)[None, :]  # 45,000 points: two chunks
    E, dw, db = cliff.error_and_gradient(w, b)
    E1, dw1, db1 = cliff.error_and_gradient(w[100:101], b)
    np.testing.assert_array_equal(E[100:101], E1)
    np.testing.assert_array_equal(dw[100:101], dw1)
    np.testing.assert_array_equal(db[100:101], db1)


# -- the general engine on a 1x1 sigmoid RNN -----------------------------------------------


def engine_run(w: float, b: float) -> Run:
    """The one-unit model as the engine's rnn cell (SPEC 7), reconciled:

    - h_t = sigma(x_{t-1}): the engine's state is the model's sigma(x), one step late,
      since h_t = sigmoid(u_t W_ih + b_ih + h_{t-1} W_hh + b_hh) = sigma(w h_{t-1} + b);
    - the engine starts at h_0 = 0, so its step 1 makes h_1 = sigma(0.5) = sigma(x_0):
      input u_1 = 1 with W_ih = 0.5 - b (and b_ih = 0) cancels the b_hh it also adds;
      inputs u_2..u_51 = 0. Then h_51 = sigma(x_50): T = 51 engine steps;
    - the readout is the identity (head.weight = [[1]], head.bias = [0]) and mse with
      N = K = 1 is (y - target)^2 with no 1/2 or 1/N factor: L = E exactly;
    - dL/dW_hh = sum_t delta_t h_{t-1} = dE/dw (step 1's term has h_0 = 0);
      dL/db_hh = sum_t delta_t counts step 1 too, which in SPEC 9 is the constant
      x_0: dE/db = dL/db_hh - delta_1, and delta_1 = dL/dW_ih since u = e_1."""
    config = Config(mode="bptt", cell="rnn", activation="sigmoid", hidden=1, batch=1, steps=51, input_size=1, output_size=1, loss="mse", loss_on="last")
    params = {
        "weight_ih_l0": np.array([[0.5 - b]]),
        "weight_hh_l0": np.array([[w]]),
        "bias_ih_l0": np.zeros(1),
        "bias_hh_l0": np.array([b]),
        "head.weight": np.ones((1, 1)),
        "head.bias": np.zeros(1),
    }
    inputs = np.zeros((51, 1, 1))
    inputs[0] = 1.0
    run = Run(config, params, inputs, np.full((51, 1, 1), 0.7))
    run.run()
    return run


@pytest.mark.parametrize("w,b", POINTS)
def test_the_general_engine_gives_the_same_error_and_gradient(w, b):
    run = engine_run(w, b)
    E, dw, db = cliff.error_and_gradient(w, b)
    assert run.loss == pytest.approx(float(E), rel=1e-10, abs=1e-300)
    assert run.grads["weight_hh_l0"][0, 0] == pytest.approx(float(dw), rel=1e-10, abs=1e-14)
    assert run.grads["bias_hh_l0"][0] - run.grads["weight_ih_l0"][0, 0] == pytest.approx(float(db), rel=1e-10, abs=1e-14)
    assert run.records[51] is not None  # the backward pass went all the way to h_0


# -- fixed points and the saddle-node bifurcations (w = 5) --------------------------------------


def test_saddle_nodes_are_spec_s():
    (b1, x1), (b2, x2) = cliff.saddle_nodes(5.0)
    assert b1 == pytest.approx(-2.6556, abs=1e-4)
    assert b2 == pytest.approx(-2.3444, abs=1e-4)
    for b, x in ((b1, x1), (b2, x2)):
        s = sig(x)
        assert 5 * s * (1 - s) == pytest.approx(1.0, rel=1e-12)  # born or dying: w sigma'(x*) = 1
        assert 5 * s + b - x == pytest.approx(0.0, abs=1e-12)  # and a fixed point


def test_three_fixed_points_at_b_minus_2_5():
    x = cliff.fixed_points(5.0, -2.5)[0]
    assert x == pytest.approx([-1.776, 0.0, 1.776], abs=1e-3)
    assert x[1] == pytest.approx(0.0, abs=1e-12)  # 5 sigma(0) - 2.5 = 0 exactly
    for r in x:
        assert 5 * sig(r) - 2.5 - r == pytest.approx(0.0, abs=1e-12)
    assert cliff.is_stable(5.0, x).tolist() == [True, False, True]  # 5 sigma'(0) = 1.25 > 1


def sign_changes(w: float, b: float) -> int:
    """Fixed points counted independently: sign changes of w sigma(x) + b - x on a
    fine grid (shifted by an irrational amount, so no root falls on a grid point)."""
    x = np.linspace(b - 2 + min(0, w), b + 2 + max(0, w), 200_001) + 1e-6 * math.pi
    g = w / (1 + np.exp(-x)) + b - x
    return int(np.sum(np.sign(g[1:]) != np.sign(g[:-1])))


@pytest.mark.parametrize("b", [-3.5, -2.7, -2.6546, -2.6123, -2.5, -2.3454, -2.3, -1.5])
def test_fixed_points_are_all_found(b):
    x = cliff.fixed_points(5.0, b)[0]
    found = x[~np.isnan(x)]
    assert found.size == sign_changes(5.0, b) == (3 if -2.6556 < b < -2.3444 else 1)
    for r in found:
        assert 5 * sig(r) + b - r == pytest.approx(0.0, abs=1e-11)


@pytest.mark.parametrize("w", [-3.0, 0.0, 2.0, 4.0, 8.0])
def test_fixed_points_for_other_w(w):
    for b in (-4.0, -1.0, 0.5):
        x = cliff.fixed_points(w, b)[0]
        assert np.count_nonzero(~np.isnan(x)) == sign_changes(w, b)


def test_the_bifurcation_diagram():
    d = cliff.bifurcation(5.0, (-3.5, -1.5), 201)
    counts = np.count_nonzero(~np.isnan(d.x), axis=1)
    inside = (d.b > -2.6556) & (d.b < -2.3444)
    assert np.all(counts[inside] == 3) and np.all(counts[~inside] == 1)
    assert np.all(d.stable[inside][:, [0, 2]]) and not np.any(d.stable[inside][:, 1])  # the middle branch is unstable
    # x_0 = 0.5 is on the unstable branch at b = 0.5 - 5 sigma(0.5): the wall at w = 5
    assert cliff.fixed_points(5.0, 0.5 - 5 * sig(0.5))[0][1] == pytest.approx(0.5, abs=1e-12)


# -- the default setting's sentence, checked on a plain transcription of SGD and SPEC 3's clip -------


def plain_sgd(start, lr: float, steps: int, threshold: float | None):
    """theta <- theta - lr g, g by central differences of the plain E (step 1e-9
    on the wall, where E changes over ~1e-3), clipped by SPEC 3's rule."""
    w, b = start
    points = [(w, b)]
    for _ in range(steps):
        gw, gb = central(w, b, 1e-9)
        norm = math.hypot(gw, gb)
        if threshold is not None:
            rate = threshold / (norm + 1e-6)
            if rate < 1:
                gw, gb = gw * rate, gb * rate
        w, b = w - lr * gw, b - lr * gb
        points.append((w, b))
    return points


def says(*fragments: str) -> None:
    for fragment in fragments:
        assert fragment in SETTING.look_for, fragment


def test_the_default_sentence():
    s = SETTING
    says("From (w, b) = (4.9, -2.55)", "with lr 0.1", "clipping at threshold 1", "20 steps")
    assert (s.start, s.lr, s.clip_threshold, s.steps) == ((4.9, -2.55), 0.1, 1.0, 20)
    gw, gb = central(4.9, -2.55, 1e-9)
    says("(26.0, E = 0.00015)")
    assert math.hypot(gw, gb) == pytest.approx(26.0, abs=0.05)
    assert plain_error(4.9, -2.55) == pytest.approx(0.00015, abs=5e-6)

    plain = plain_sgd(s.start, 0.1, 20, None)
    says("is 2.60 long and lands at (6.28, -0.34)", "E = 0.088 and |grad| = 0.0023", "the next 19 steps move it 0.0043 in all")
    assert math.dist(plain[0], plain[1]) == pytest.approx(2.60, abs=0.005)
    assert plain[1] == pytest.approx((6.28, -0.34), abs=0.005)
    assert plain_error(*plain[1]) == pytest.approx(0.088, abs=0.0005)
    assert math.hypot(*central(*plain[1], 1e-6)) == pytest.approx(0.0023, abs=0.00005)
    assert math.dist(plain[1], plain[-1]) == pytest.approx(0.0043, abs=0.00005)

    clipped = plain_sgd(s.start, 0.1, 20, 1.0)
    says("the step is 0.10 long", "stay within 0.10 of the start", "(E from 0.0061 to 0.33)")
    assert math.dist(clipped[0], clipped[1]) == pytest.approx(0.10, abs=0.005)
    assert max(math.dist(clipped[0], p) for p in clipped) <= 0.10 + 1e-9
    errors = [plain_error(*p) for p in clipped[1:]]
    assert min(errors) == pytest.approx(0.0061, abs=0.00005) and max(errors) == pytest.approx(0.33, abs=0.005)


def test_the_start_is_the_default_grid_s_wall():
    """'the grid's point of largest |grad|': |grad| by central differences over
    the whole default grid (numpy, not the engine's BPTT)."""
    s = SETTING
    w = np.linspace(*s.w_range, s.grid)[:, None]
    b = np.linspace(*s.b_range, s.grid)[None, :]

    def E(w, b):
        x = np.full(np.broadcast(w, b).shape, 0.5)
        for _ in range(50):
            x = w / (1 + np.exp(-x)) + b
        return (1 / (1 + np.exp(-x)) - 0.7) ** 2

    h = 1e-9
    norm = np.hypot((E(w + h, b) - E(w - h, b)) / (2 * h), (E(w, b + h) - E(w, b - h)) / (2 * h))
    i, j = np.unravel_index(np.argmax(norm), norm.shape)
    assert (w[i, 0], b[0, j]) == pytest.approx(s.start, abs=1e-12)
    assert cliff.compute(s).surface.wall()[:2] == pytest.approx(s.start, abs=1e-12)


def test_the_trajectories_follow_the_rule():
    c = cliff.compute()
    assert c.plain.points.shape == (21, 2) and not c.plain.clipped.any()
    assert c.clipped.step_length.max() <= SETTING.lr * SETTING.clip_threshold * (1 + 1e-12)
    assert c.clipped.clipped.tolist() == (c.clipped.grad_norm[:-1] > 1.0).tolist()
    np.testing.assert_allclose(c.plain.points, plain_sgd(SETTING.start, 0.1, 20, None), rtol=0, atol=1e-6)
    np.testing.assert_allclose(c.clipped.points, plain_sgd(SETTING.start, 0.1, 20, 1.0), rtol=0, atol=1e-6)
    story = cliff.story(c)
    assert "is 2.6 long and lands at (6.28, -0.339)" in story and "within 0.1 of the start (1 clipped)" in story


@pytest.mark.parametrize(
    "change,field",
    [({"grid": 1}, "grid"), ({"lr": 0.0}, "lr"), ({"w_range": (3.0, 3.0)}, "w_range"), ({"b_range": (0.0, float("nan"))}, "b_range"),
     ({"start": (float("inf"), 0.0)}, "start"), ({"steps": 0}, "steps"), ({"clip_threshold": -1.0}, "clip_threshold")],
)
def test_a_bad_setting_names_its_field(change, field):
    import dataclasses

    with pytest.raises(ConfigError) as err:
        dataclasses.replace(SETTING, **change)
    assert err.value.field == field
    assert re.match(field, err.value.message)
