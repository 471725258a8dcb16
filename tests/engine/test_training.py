"""The training lab (SPEC section 8): updates against PyTorch, divergence as a
status, the per-step view of any update, evaluation, checkpoints, the
threshold suggestion and the settings' validation.

tests/fixtures/training/train_*.npz were computed by
tests/fixtures/make_training_fixtures.py: torch.nn.RNN / LSTM / GRU with a
torch.nn.Linear head, autograd, a clipping rule of SPEC 3 (norm, value,
agc, and derivative clipping by hooks on h_t) and torch.optim, 24 updates on
given batches. The engine's Training is fed the same batches and initial
parameters and must give the same loss, raw gradient norm and clip decision
per update and the same parameters after every update.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine import Config, ConfigError
from engine.clipping import global_norm
from engine.tasks import Task
from engine.training import (
    SETTINGS,
    Training,
    TrainingComplete,
    TrainingSettings,
    UpdateRecords,
    suggest_threshold,
)
from tests.reference import batch_norm, frobenius

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"
CASES = [case for case in json.loads((FIXTURES / "cases.json").read_text())["cases"] if case["name"].startswith("train_")]
PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")
CLIP_MODES = ("norm", "value", "step", "agc")


def load(case: dict) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / case["file"], allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


class GivenTask(Task):
    """A task whose batches are given: shapes and loss from a fixture case."""

    name, description, metric_name, higher_is_better = "given", "fixture batches", "loss", False

    def __init__(self, loss: str, loss_on: str, D: int, K: int, T: int):
        self.loss, self.loss_on = loss, loss_on
        self.input_size, self.output_size, self.steps = D, K, T

    baseline_loss = baseline_metric = math.nan

    def batch(self, rng, n):
        raise AssertionError("batches come from GivenTraining.batch")

    def metric(self, y, targets):
        return 0.0


class GivenTraining(Training):
    """Training on given batches: update u gets batch u - 1 of the arrays."""

    def __init__(self, config, settings, params, task, inputs, targets):
        self.given = (inputs, targets)
        super().__init__(config, settings, params, task)

    def batch(self, u):
        inputs, targets = self.given
        return inputs[u - 1], targets[u - 1]

    def eval_batch(self):
        return self.batch(1)


class Watched(Training):
    """Keeps, per update, the gradients it used (raw and clipped) and the parameters after it."""

    def __init__(self, *args, **kwargs):
        self.seen: dict[int, tuple] = {}
        super().__init__(*args, **kwargs)

    def _advance(self):
        super()._advance()
        out = self.last
        self.seen[self.u] = (
            {k: v.copy() for k, v in out.raw.items()},
            {k: v.copy() for k, v in out.grads.items()},
            {k: v.copy() for k, v in self.model.params.items()},
        )


def fixture_training(case: dict) -> tuple[GivenTraining, dict]:
    fx = load(case)
    config = Config(
        cell=case["cell"],
        activation=case["activation"],
        hidden=case["H"],
        batch=case["N"],
        steps=case["T"],
        clip=case["clip"],
        clip_threshold=case["clip_threshold"],
    )
    task = GivenTask(case["loss"], case["loss_on"], case["D"], case["K"], case["T"])
    s = TrainingSettings(optimizer=case["optimizer"], updates=case["updates"], eval_every=case["updates"], diagnostics_every=1, **case["settings"])
    params = {name: fx[f"start_{name}"] for name in PARAM_NAMES}
    return GivenTraining(config, s, params, task, fx["inputs"], fx["targets"]), fx


# -- against PyTorch ----------------------------------------------------------------


def test_fixtures_cover_every_clip_rule_and_both_optimizers():
    assert {case["clip"] for case in CASES} == set(CLIP_MODES)
    assert {case["optimizer"] for case in CASES} == {"sgd", "adam"}
    assert {case["cell"] for case in CASES} == {"rnn", "lstm", "gru"}
    for case in CASES:
        assert 0 < case["clipped_updates"] < case["updates"], case["name"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_updates_match_torch(case):
    training, fx = fixture_training(case)
    assert training.config.clip == case["clip"]
    for u in range(1, case["updates"] + 1):
        record = training.step()
        i = u - 1
        assert record.loss == pytest.approx(float(fx["loss"][i]), rel=1e-11), f"update {u}: loss"
        assert record.grad_norm_raw == pytest.approx(float(fx["grad_norm_raw"][i]), rel=1e-11), f"update {u}: norm"
        assert record.clipped == bool(fx["clipped"][i]), f"update {u}: clip decision"
        assert record.status == ("clipped" if fx["clipped"][i] else "ok")
        for name in PARAM_NAMES:
            np.testing.assert_allclose(
                training.model.params[name], fx[f"after_{name}"][i], rtol=1e-11, atol=1e-14, err_msg=f"{case['name']} update {u}: {name}"
            )
    assert training.done and training.status == "done"


# -- one update, recorded ---------------------------------------------------------


def small(**change) -> Config:
    return Config(hidden=8, batch=4, steps=12, seed=5).with_overrides(**change)


def test_norm_clipping_per_update_caps_the_norm_and_records_the_event():
    s = TrainingSettings(task="adding", lr=0.5, updates=30, eval_every=10)
    training = Training(small(clip="norm", clip_threshold=1.5), s)
    training.run()
    cols, rec = training.records.columns, training.records
    raw, after = cols["grad_norm_raw"], cols["grad_norm"]
    over = raw > 1.5
    assert over.any() and (~over).any()
    np.testing.assert_array_equal(rec.clipped, over)
    np.testing.assert_allclose(after[over], 1.5 * raw[over] / (raw[over] + 1e-6), rtol=1e-12)
    np.testing.assert_array_equal(after[~over], raw[~over])
    np.testing.assert_allclose(cols["clip_factor"][over], after[over] / raw[over], rtol=1e-15)
    assert np.isnan(cols["clip_factor"][~over]).all()
    assert [r.status for r in rec] == ["clipped" if o else "ok" for o in over]


def test_step_clipping_counts_the_backward_steps_it_rescaled():
    s = TrainingSettings(task="adding", lr=0.1, updates=5, diagnostics_every=1)
    training = Watched(small(clip="step", clip_threshold=0.002, cell="gru"), s)
    training.run()
    for u in range(1, 6):
        run = training.run_for(u)
        run.run()
        applied = int(np.count_nonzero((run.records.clip_mode > 0) & run.records.clip_applied))
        assert training.records.clip_steps[u - 1] == applied
        assert training.records.clipped[u - 1] == (applied > 0)
    assert training.records.clip_steps.max() > 0


# -- the per-step view of any update ----------------------------------------------


RUN_CASES = [
    ("rnn-norm", {"clip": "norm", "clip_threshold": 0.05}, "adding"),
    ("rnn-relu-value", {"activation": "relu", "clip": "value", "clip_threshold": 0.01}, "adding"),
    ("lstm-agc", {"cell": "lstm", "clip": "agc", "clip_threshold": 0.01}, "temporal-order"),
    ("gru-step", {"cell": "gru", "clip": "step", "clip_threshold": 0.01}, "adding"),
    ("indrnn", {"cell": "indrnn", "init": "identity", "activation": "relu"}, "adding"),
    ("rnn-truncated", {"truncate": 3}, "temporal-order"),
]


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return frobenius(a - b) / frobenius(b) if frobenius(b) else frobenius(a)


@pytest.mark.parametrize(("label", "change", "task"), RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_run_for_u_steps_the_backward_pass_that_made_update_u(label, change, task):
    """The per-step Run of update u (theta_{u-1} and batch u) gives the loss
    bit for bit and the gradients (raw and clipped) within 1e-13 relative,
    and its records give the update's reach, long_share and spectrum.
    u = 1, a replayed update between checkpoints, a checkpoint, the latest."""
    s = TrainingSettings(task=task, optimizer="adam", lr=0.02, updates=23, checkpoint_every=10, diagnostics_every=1, eval_every=100)
    training = Watched(small(steps=12, **change), s)
    training.run()
    for u in (1, 11, 17, 23):
        raw, grads, _ = training.seen[u]
        run = training.run_for(u)
        run.run()
        rec = training.records[u]
        assert run.loss == rec.loss
        for name in raw:
            assert relative(run.grads_raw[name], raw[name]) <= 1e-13, (u, name)
            assert relative(run.grads[name], grads[name]) <= 1e-13, (u, name)
        assert global_norm(run.grads_raw) == pytest.approx(rec.grad_norm_raw, rel=1e-13)
        T = run.T
        if training.config.loss_on == "last":
            assert rec.reach == pytest.approx(run.records.columns["grad_norm"][T - 1] / run.start_norm, rel=1e-12)
        contribution = run.records.columns["contribution"][:T]
        far = np.arange(1, T + 1) > T / 2
        assert rec.long_share == pytest.approx(contribution[far].sum() / contribution.sum(), rel=1e-9)
        assert 0.0 <= rec.long_share < 1.0
        spectrum = run.model.spectrum()
        assert rec.sigma_max[0] == pytest.approx(spectrum["sigma_max"], rel=1e-12) or training.config.gates > 1
        np.testing.assert_allclose(rec.spectral_radius, spectrum["block_radii"], rtol=1e-10)


def test_reach_and_long_share_are_nan_for_a_loss_on_every_step():
    """Each output's gradient starts at its own step: "from h_T" and "more than T/2 back" have no single origin."""
    training = Training(Config(hidden=4, seed=1), TrainingSettings(task="text", updates=2, diagnostics_every=1))
    training.run()
    assert np.isnan(training.records.columns["reach"][:2]).all()
    assert np.isnan(training.records.columns["long_share"][:2]).all()
    assert np.isfinite(training.records.columns["sigma_max"][:2]).all()


def test_params_at_replays_between_checkpoints_bit_for_bit():
    s = TrainingSettings(task="adding", optimizer="sgd", lr=0.05, momentum=0.9, updates=40, checkpoint_every=7)
    training = Watched(small(clip="norm", clip_threshold=0.1), s)
    training.run()
    assert sorted(training.checkpoints) == [0, 7, 14, 21, 28, 35, 40]
    for n in (3, 7, 13, 20, 39, 40):
        replayed = training.params_at(n)
        for name, value in training.seen[n][2].items():
            np.testing.assert_array_equal(replayed[name], value)
    with pytest.raises(IndexError):
        training.params_at(41)
    with pytest.raises(IndexError):
        training.run_for(41)


# -- divergence -------------------------------------------------------------------


class ZeroInputs(Training):
    """Adding-task targets with zero inputs: h stays 0, so the loss stays finite
    while dL/dh is multiplied by W_hh^T at every step back (SPEC 2's chain)."""

    def batch(self, u):
        x, y = super().batch(u)
        return np.zeros_like(x), y


class Overflowing(Training):
    """An optimizer whose third step overflows a parameter (its loss and gradient are finite)."""

    def _optimizer(self, params):
        inner = super()._optimizer(params)
        step = inner.step

        def overflowing(params, grads):
            new = step(params, grads)
            if inner.count == 3:
                new["bias_hh_l0"][0] = np.float64(1e308) * 10.0
            return new

        inner.step = overflowing
        return inner


@pytest.mark.parametrize(
    ("what", "config", "settings", "cls"),
    [
        ("loss", {"activation": "relu", "init": "identity", "scale": 1e6, "steps": 60}, {}, Training),
        ("gradient", {"init": "identity", "scale": 1e6, "steps": 60}, {}, ZeroInputs),
        ("parameters", {}, {"optimizer": "adam"}, Overflowing),
    ],
)
def test_divergence_is_a_status_that_keeps_the_last_finite_parameters(what, config, settings, cls):
    s = TrainingSettings(task="adding", updates=50, checkpoint_every=2, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a RuntimeWarning
        training = cls(small(**config), s)
        before = training.params_at(0)
        summary = training.run()
    u = training.divergence.u
    assert training.divergence.what == what
    assert summary["status"] == "diverged" and summary["diverged_at"] == u and summary["diverged_on"] == what
    assert training.records[u].status == "diverged" and training.u == u and training.done
    assert all(r.status != "diverged" for r in list(training.records)[: u - 1])
    assert training.applied == u - 1
    kept = training.checkpoints[u - 1]
    assert "before divergence" in kept.reasons
    for name, value in training.model.params.items():
        assert np.isfinite(value).all()
        np.testing.assert_array_equal(kept.params[name], value)
        if u == 1:
            np.testing.assert_array_equal(value, before[name])
    with pytest.raises(TrainingComplete):
        training.step()
    run = training.run_for(u)  # the diverging update opens in the per-step view
    run.run()
    if what == "loss":
        assert not math.isfinite(run.loss)
    elif what == "gradient":
        assert math.isfinite(run.loss) and not math.isfinite(global_norm(run.grads_raw))


def test_a_relu_rnn_with_a_large_learning_rate_diverges_after_some_finite_updates():
    s = TrainingSettings(task="adding", lr=0.2, momentum=0.9, updates=300)
    training = Training(small(activation="relu", hidden=16, steps=30, batch=8, init="orthogonal", scale=1.1), s)
    training.run()
    u = training.divergence.u
    assert u > 3
    cols = training.records.columns
    assert np.isfinite(cols["loss"][: u - 1]).all() and np.isfinite(cols["grad_norm_raw"][: u - 1]).all()
    assert np.nanmax(cols["grad_norm_raw"][: u - 1]) > 100 * cols["grad_norm_raw"][0]  # the norm spiked first


# -- evaluation ---------------------------------------------------------------------


def reference_rnn_tanh(params: dict, x: np.ndarray) -> np.ndarray:
    """SPEC 7's rnn step and readout, written out: y_T for inputs x (T, N, D)."""
    h = np.zeros((x.shape[1], params["weight_hh_l0"].shape[1]))
    for t in range(x.shape[0]):
        h = np.tanh(x[t] @ params["weight_ih_l0"].T + params["bias_ih_l0"] + h @ params["weight_hh_l0"].T + params["bias_hh_l0"])
    return h @ params["head.weight"].T + params["head.bias"]


def test_the_metric_is_taken_every_e_updates_on_the_fixed_evaluation_batch():
    s = TrainingSettings(task="adding", optimizer="adam", lr=0.01, updates=25, eval_every=10, eval_batch=300)
    training = Training(small(), s)
    training.run()
    rec = training.records
    np.testing.assert_array_equal(np.flatnonzero(rec.evaluated) + 1, [10, 20, 25])
    assert np.isnan(rec.columns["metric"][~rec.evaluated]).all()
    x, y = training.eval_batch()
    assert x.shape[1] == 300
    for u in (10, 20, 25):
        out = reference_rnn_tanh(training.params_at(u), x)
        mse = np.mean((out[:, 0] - y[-1, :, 0]) ** 2)
        assert rec[u].metric == pytest.approx(mse, rel=1e-12)
        assert rec[u].eval_loss == pytest.approx(mse, rel=1e-12)
    out0 = reference_rnn_tanh(training.params_at(0), x)
    assert training.initial_eval[1] == pytest.approx(np.mean((out0[:, 0] - y[-1, :, 0]) ** 2), rel=1e-12)


def test_evaluation_in_chunks_gives_the_same_accuracy(monkeypatch):
    s = TrainingSettings(task="temporal-order", updates=3, eval_batch=37)
    training = Training(small(steps=20), s)
    training.run()
    whole = training.evaluate()
    import engine.training

    monkeypatch.setattr(engine.training, "EVAL_CHUNK_FLOATS", 1)  # one sequence per chunk
    loss, metric = training.evaluate()
    assert loss == pytest.approx(whole[0], rel=1e-12) and metric == pytest.approx(whole[1], rel=1e-12)
    assert round(metric * 37) == pytest.approx(metric * 37, abs=1e-9)  # a share of 37 sequences


# -- learning -------------------------------------------------------------------------


def test_an_lstm_learns_the_adding_task_below_its_baseline():
    s = TrainingSettings(task="adding", optimizer="adam", lr=0.01, updates=300, eval_every=100, eval_batch=500)
    training = Training(Config(cell="lstm", hidden=16, batch=32, steps=10, seed=3, forget_bias=1.0), s)
    summary = training.run()
    assert summary["final_metric"] < 0.2 * training.task.baseline_metric


# -- checkpoints ------------------------------------------------------------------------


def test_checkpoints_stay_bounded_and_evenly_spaced():
    s = TrainingSettings(task="adding", updates=1000, checkpoint_every=3, max_checkpoints=6, eval_every=1000, diagnostics_every=0)
    training = Training(Config(hidden=2, batch=1, steps=2, seed=0), s)
    most = 0
    while not training.done:
        training.advance(37)
        regular = sorted(n for n, ck in training.checkpoints.items() if ck.reasons == {"every"})
        most = max(most, len(regular))
        assert len(regular) <= 6
        assert all(n % training.checkpoint_every == 0 for n in regular)
        assert len(set(np.diff([0, *regular]))) <= 1  # evenly spaced from 0
    assert most == 6
    assert 0 in training.checkpoints and 1000 in training.checkpoints
    assert training.checkpoints[0].reasons == {"first"} and "last" in training.checkpoints[1000].reasons
    assert training.checkpoint_every == 3 * 2**6  # 1000 // 192 = 5 regular ones kept


def test_memory_for_100000_updates_is_bounded_and_estimated_up_front():
    config = Config(hidden=128, batch=32, steps=100, input_size=2, output_size=1, cell="lstm")
    s = TrainingSettings(updates=100_000, optimizer="adam")
    estimate = s.memory_estimate(config)
    assert estimate < 200 * 2**20
    assert UpdateRecords(100_000, 4).columns["loss"].nbytes == 800_000
    with pytest.raises(ConfigError) as e:
        Training(config, TrainingSettings(updates=10_000_000, max_checkpoints=100_000, optimizer="adam"))
    assert e.value.field == "updates" and "GiB" in str(e.value) and "\n" not in str(e.value)


# -- the threshold suggestion --------------------------------------------------------------


def test_suggestion_is_half_to_ten_times_the_mean_unclipped_warmup_norm():
    s = TrainingSettings(task="adding", lr=0.2, updates=40, warmup=25)
    config = small(clip="norm", clip_threshold=1.0)
    unclipped = Training(config.with_overrides(clip="none"), s)
    unclipped.run()
    mean = np.mean(unclipped.records.columns["grad_norm_raw"][:25])
    suggestion = suggest_threshold(config, s)
    assert (suggestion.low, suggestion.mean, suggestion.high) == pytest.approx((0.5 * mean, mean, 10 * mean), rel=1e-13)
    assert suggestion.updates == 25 and suggestion.low < suggestion.threshold < suggestion.high
    assert unclipped.suggestion() == suggestion
    clipped = Training(config.with_overrides(clip_threshold=suggestion.threshold), s)
    clipped.run()
    norms = clipped.records.columns["grad_norm"]
    assert clipped.records.clipped.any() and np.all(norms <= suggestion.threshold * (1 + 1e-12))


def test_suggestion_leaves_out_clipped_and_nonfinite_updates():
    s = TrainingSettings(task="adding", lr=0.2, updates=30, warmup=30)
    training = Training(small(clip="norm", clip_threshold=3.0), s)
    training.run()
    cols = training.records.columns
    unclipped = ~training.records.clipped
    assert unclipped.any() and (~unclipped).any()
    assert training.suggestion().mean == pytest.approx(np.mean(cols["grad_norm_raw"][unclipped]), rel=1e-13)
    assert training.suggestion().updates == int(unclipped.sum())


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum"),
        ({"beta1": 0.5}, "beta1"),
        ({"optimizer": "adam", "beta2": 1.0}, "beta2"),
        ({"optimizer": "adam", "eps": 0.0}, "eps"),
        ({"updates": 0}, "updates"),
        ({"updates": 10.0}, "updates"),
        ({"updates": True}, "updates"),
        ({"eval_every": 0}, "eval_every"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"max_checkpoints": 1}, "max_checkpoints"),
        ({"diagnostics_every": -1}, "diagnostics_every"),
        ({"task": "copy"}, "task"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"text": "a b c"}, "text"),
        ({"window": 3}, "window"),
    ],
)
def test_bad_settings_are_refused_in_one_line_naming_the_field(change, field):
    with pytest.raises(ConfigError) as e:
        TrainingSettings(**change)
    assert e.value.field == field
    assert field in str(e.value) and "\n" not in str(e.value)


def test_every_setting_has_a_range_and_a_default_that_passes():
    defaults = TrainingSettings()
    assert set(SETTINGS) == set(defaults.__dataclass_fields__)
    TrainingSettings(optimizer="adam", beta1=0.5, beta2=0.9, eps=1e-6)
    TrainingSettings(task="text", text="a b a", window=1)


def test_training_needs_a_loss_on_a_readout():
    with pytest.raises(ConfigError) as e:
        Training(Config(mode="chain", activation="linear"), TrainingSettings())
    assert e.value.field == "mode"


# -- determinism and hygiene ----------------------------------------------------------------


def test_the_same_seed_gives_the_same_bits():
    s = TrainingSettings(task="temporal-order", optimizer="adam", lr=0.01, updates=15, eval_every=5, diagnostics_every=3)
    one, two = Training(small(steps=20, seed=9), s), Training(small(steps=20, seed=9), s)
    one.run(), two.run()
    for name, col in one.records.columns.items():
        np.testing.assert_array_equal(col, two.records.columns[name], err_msg=name)
    np.testing.assert_array_equal(one.records.status, two.records.status)


def test_reach_is_the_share_of_the_start_norm_that_arrives_at_h0():
    """Recomputed from the Run's records with the source's norm (tests/reference)."""
    s = TrainingSettings(task="adding", updates=3, diagnostics_every=1)
    training = Watched(small(), s)
    training.run()
    run = training.run_for(2)
    dh0 = run.step()
    while not run.done:
        dh0 = run.step()
    start = batch_norm(run.trace.injection[run.T], run.N)
    assert training.records[2].reach == pytest.approx(dh0.grad_norm / start, rel=1e-12)


def test_importing_the_training_lab_loads_no_terminal_library():
    code = (
        "import sys, engine.training, engine.tasks, engine.optim\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'typer', 'torch'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_what_the_model_derives_follows_the_updates():
    """Model.spectrum() is cached per parameter version: each update must say it changed them."""
    training = Training(small(), TrainingSettings(task="adding", lr=0.5, updates=3))
    first = training.model.spectrum()["sigma_max"]
    training.step()
    now = training.model.spectrum()["sigma_max"]
    assert now != first
    assert now == pytest.approx(np.linalg.svd(training.model.params["weight_hh_l0"], compute_uv=False)[0], rel=1e-12)
