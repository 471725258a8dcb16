"""The training tasks of SPEC section 8: what their batches hold, where the loss
applies, and their baselines, each checked against the task's definition.

Baselines are checked by what they claim: the adding task's 1/6 is the
variance of the target (the MSE of always predicting its mean), estimated on
a large batch; temporal order's ln 4 is the cross-entropy of the uniform
prediction and chance is 25%, the share of each class; the text's baseline
is the loss of the best predictor that ignores context (each word's
frequency), computed with the engine's own loss function from counts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import Config, ConfigError
from engine.losses import loss_and_grad
from engine.tasks import (
    TASKS,
    AddingTask,
    TemporalOrderTask,
    TextTask,
    batch_rng,
    eval_rng,
    make_task,
)
from engine.training import Training, TrainingSettings

WIG = "The man who wore a wig on his head went inside"


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- adding ---------------------------------------------------------------------------


@pytest.mark.parametrize("T", [2, 3, 7, 50, 101])
def test_adding_has_one_marker_in_each_half_and_the_target_is_their_sum(T):
    x, y = AddingTask(T).batch(rng(T), 200)
    assert x.shape == (T, 200, 2) and y.shape == (T, 200, 1)
    values, markers = x[:, :, 0], x[:, :, 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) <= {0.0, 1.0}
    first_half = np.arange(T) < T // 2  # an odd T's middle step counts to the second half
    np.testing.assert_array_equal(markers[first_half].sum(axis=0), 1)
    np.testing.assert_array_equal(markers[~first_half].sum(axis=0), 1)
    np.testing.assert_allclose(y[T - 1, :, 0], (values * markers).sum(axis=0), rtol=1e-15)
    assert not y[: T - 1].any()  # the target is on the last step only


def test_adding_markers_cover_every_step_of_each_half():
    T = 8
    x, _ = AddingTask(T).batch(rng(1), 4000)
    seen = np.flatnonzero(x[:, :, 1].sum(axis=1))
    np.testing.assert_array_equal(seen, np.arange(T))


def test_adding_baseline_is_the_variance_of_the_target():
    task = AddingTask(20)
    _, y = task.batch(rng(2), 200_000)
    target = y[-1, :, 0]
    # Var(u_a + u_b) for two independent U[0, 1]: the MSE of always predicting the mean 1.
    assert abs(np.mean((target - 1.0) ** 2) - task.baseline_loss) < 0.002
    assert abs(np.var(target) - task.baseline_loss) < 0.002
    assert abs(np.mean(target) - 1.0) < 0.005
    assert task.baseline_metric == task.baseline_loss
    assert (task.loss, task.loss_on, task.metric_name) == ("mse", "last", "mse")


def test_adding_metric_is_the_mse_of_the_last_step():
    task = AddingTask(5)
    _, y = task.batch(rng(3), 10)
    out = np.full((1, 10, 1), 1.0)
    assert task.metric(out, y[-1:]) == pytest.approx(np.mean((y[-1, :, 0] - 1.0) ** 2), rel=1e-14)


def test_adding_needs_two_steps():
    with pytest.raises(ConfigError) as e:
        AddingTask(1)
    assert e.value.field == "steps" and "\n" not in str(e.value)


# -- temporal order -------------------------------------------------------------------


@pytest.mark.parametrize("T", [10, 11, 19, 20, 57, 100])
def test_temporal_order_places_x_or_y_at_two_windows_and_distractors_elsewhere(T):
    x, y = TemporalOrderTask(T).batch(rng(T), 500)
    assert x.shape == (T, 500, 6) and y.shape == (T, 500) and y.dtype.kind == "i"
    np.testing.assert_array_equal(x.sum(axis=2), 1.0)  # one-hot
    symbols = x.argmax(axis=2)  # a b c d X Y = 0..5
    special = symbols >= 4
    np.testing.assert_array_equal(special.sum(axis=0), 2)
    t = np.arange(T)[:, None]
    t1 = np.where(special & (t < T / 2), t, -1).max(axis=0)
    t2 = np.where(special & (t >= T / 2), t, -1).max(axis=0)
    assert np.all((0.1 * T <= t1) & (t1 < 0.2 * T))
    assert np.all((0.5 * T <= t2) & (t2 < 0.6 * T))
    seq = np.arange(500)
    first, second = symbols[t1, seq] - 4, symbols[t2, seq] - 4  # X = 0, Y = 1
    expected = {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}  # XX, XY, YX, YY
    np.testing.assert_array_equal(y[T - 1], [expected[(a, b)] for a, b in zip(first, second)])
    assert not y[: T - 1].any()


def test_temporal_order_windows_hold_every_allowed_step():
    T = 40  # t1 in 4..7, t2 in 20..23
    x, _ = TemporalOrderTask(T).batch(rng(5), 3000)
    special = x.argmax(axis=2) >= 4
    np.testing.assert_array_equal(np.flatnonzero(special.any(axis=1)), [4, 5, 6, 7, 20, 21, 22, 23])


def test_temporal_order_chance_is_a_quarter_and_ln4():
    task = TemporalOrderTask(30)
    _, y = task.batch(rng(6), 100_000)
    shares = np.bincount(y[-1], minlength=4) / y.shape[1]
    np.testing.assert_allclose(shares, 0.25, atol=0.006)
    # Always answering one class is right a quarter of the time ...
    assert abs(task.metric(np.tile([[1.0, 0, 0, 0]], (1, y.shape[1], 1)), y[-1:]) - task.baseline_metric) < 0.006
    # ... and the uniform prediction's cross-entropy is the baseline loss.
    uniform, _ = loss_and_grad("xent", np.zeros((1, 1000, 4)), y[-1:, :1000])
    assert uniform == pytest.approx(task.baseline_loss, rel=1e-14)
    assert task.baseline_loss == pytest.approx(math.log(4), rel=1e-15)
    assert (task.loss, task.loss_on, task.metric_name) == ("xent", "last", "accuracy")


def test_temporal_order_needs_ten_steps():
    with pytest.raises(ConfigError) as e:
        TemporalOrderTask(9)
    assert e.value.field == "steps" and "10" in str(e.value)


# -- text ---------------------------------------------------------------------------


def test_text_is_the_wig_sentence_by_default_words_in_words_out():
    task = make_task("text")
    x, y = task.batch(None, 1)
    words = WIG.split()
    assert task.steps == len(words) - 1 and task.batch_size == 1
    assert [task.vocabulary[i] for i in x[:, 0].argmax(axis=1)] == words[:-1]
    np.testing.assert_array_equal(x.sum(axis=2), 1.0)
    assert [task.vocabulary[i] for i in y[:, 0]] == words[1:]
    assert (task.loss, task.loss_on) == ("xent", "all")


@pytest.mark.parametrize("text", [WIG, "a b a b a c", "the cat sat on the mat and the dog sat on the cat"])
def test_text_baseline_is_the_loss_of_the_best_context_free_predictor(text):
    task = TextTask(text)
    words = text.split()
    targets = words[1:]
    counts = {w: targets.count(w) for w in task.vocabulary}
    # Predict every step with the targets' unigram frequencies: logits = log p.
    p = np.array([counts[w] / len(targets) for w in task.vocabulary])
    logits = np.tile(np.log(np.where(p > 0, p, 1e-300)), (len(targets), 1, 1))
    _, y = task.batch(None, 1)
    loss, _ = loss_and_grad("xent", logits, y)
    assert task.baseline_loss == pytest.approx(loss, rel=1e-12)
    assert task.baseline_metric == max(counts.values()) / len(targets)


def test_wig_baseline_is_ten_ln_ten():
    # 11 different words: every target once, entropy ln 10 per step, 10 steps.
    assert TextTask(WIG).baseline_loss == pytest.approx(10 * math.log(10), rel=1e-14)


def test_text_windows_are_consecutive_words_at_random_starts():
    text = " ".join(f"w{i}" for i in range(60))
    task = TextTask(text, window=7)
    x, y = task.batch(rng(7), 50)
    assert x.shape == (7, 50, 60) and y.shape == (7, 50) and task.steps == 7
    index = {w: i for i, w in enumerate(text.split())}  # position of each word in the text
    pos = np.vectorize(lambda i: index[task.vocabulary[i]])
    inputs, targets = pos(x.argmax(axis=2)), pos(y)
    np.testing.assert_array_equal(np.diff(inputs, axis=0), 1)
    np.testing.assert_array_equal(targets, inputs + 1)
    assert len(np.unique(inputs[0])) > 20  # starts spread over the text


@pytest.mark.parametrize(
    ("text", "window", "field"),
    [("alone", 0, "text"), ("", 0, None), ("same same same", 0, "text"), ("a b c", 3, "window"), ("a b c", -1, "window")],
)
def test_text_refusals(text, window, field):
    if field is None:  # empty means the wig sentence
        assert TextTask(text).text == WIG
        return
    with pytest.raises(ConfigError) as e:
        TextTask(text, window)
    assert e.value.field == field and "\n" not in str(e.value)


def test_a_users_text_trains_and_the_per_step_view_shows_its_words():
    text = "to be or not to be that is the question"
    config = Config(hidden=16, seed=1)
    training = Training(config, TrainingSettings(task="text", text=text, optimizer="adam", lr=0.05, updates=60, eval_every=20))
    assert training.config.text == text and training.config.loss_on == "all"
    training.run()
    assert training.records.columns["loss"][-1] < 0.5 * training.records.columns["loss"][0]
    run = training.run_for(60)
    assert run.config.text == text


# -- streams ------------------------------------------------------------------------


def test_streams_are_fixed_by_the_seed_and_differ_per_update_and_purpose():
    task = AddingTask(12)
    a = task.batch(batch_rng(3, 5), 4)[0]
    np.testing.assert_array_equal(a, task.batch(batch_rng(3, 5), 4)[0])
    assert not np.array_equal(a, task.batch(batch_rng(3, 6), 4)[0])
    assert not np.array_equal(a, task.batch(batch_rng(4, 5), 4)[0])
    assert not np.array_equal(a, task.batch(eval_rng(3), 4)[0])


@pytest.mark.parametrize("change", [{"cell": "lstm"}, {"clip": "norm", "clip_threshold": 0.1}, {"init": "orthogonal"}, {"hidden": 7}])
def test_runs_that_differ_in_a_remedy_see_the_same_data(change):
    settings = TrainingSettings(task="temporal-order", updates=3, eval_batch=16)
    base = Config(steps=20, batch=8, seed=11)
    one, other = Training(base, settings), Training(base.with_overrides(**change), settings)
    for u in (1, 2, 3):
        for a, b in zip(one.batch(u), other.batch(u)):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(one.eval_batch(), other.eval_batch()):
        np.testing.assert_array_equal(a, b)


def test_the_registry_names_every_task():
    assert set(TASKS) == {"adding", "temporal-order", "text"}
    for name, cls in TASKS.items():
        assert cls.name == name
