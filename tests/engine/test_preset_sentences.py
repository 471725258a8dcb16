"""What every built-in preset promises in its description and "what to look for"
sentence, checked against the run.

Each test first finds the claim in the sentence (so an edited sentence is
checked again), then recomputes what it can without the engine: SPEC section
2's matrix-chain loop, SPEC section 1's backward recurrence and the step
Jacobians written out (tests/reference.py), SPEC section 5's truncated-BPTT
loop (transcribed here), numpy's own SVD and eigenvalues of the run's weights,
dead and saturated units from the forward states. The engine's forward states
and its LSTM/GRU gradients are checked against PyTorch elsewhere
(test_torch_parity.py) and used here as they are.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine import Config, Run
from engine.config import CLIP_MODES
from engine.export import to_csv, to_json
from engine.presets import BUILTIN, WIG
from tests.reference import batch_norm, exact_sigmas, readout_grad, rnn_hidden_gradients, rnn_net, section_2

EXPECTED_PRESETS = {
    "seed-explode", "seed-vanish", "clip-rescue", "step-clip", "tanh-saturation", "sigmoid-quarter",
    "relu-rescue", "irnn", "orthogonal", "lstm-cec", "gru", "indrnn", "wig-sentence", "truncated",
    "wig-went", "phase-diagram",
}  # fmt: skip

CHECKS: dict[str, object] = {}  # preset name -> the test of its sentence


def checks(name: str):
    def register(test):
        CHECKS[name] = test
        return test

    return register


def says(name: str, *fragments: str) -> None:
    """The preset's sentence makes these claims (word for word)."""
    text = BUILTIN[name].look_for
    for fragment in fragments:
        assert fragment in text, f"{name}: {fragment!r} is no longer in {text!r}"


def run_preset(name: str, **overrides) -> tuple[Run, dict]:
    cfg = BUILTIN[name].config.with_overrides(**overrides) if overrides else BUILTIN[name].config
    run = Run(cfg, gradient_map=True)  # as the dashboard builds it: the heatmap's numbers too
    return run, run.run()


def geometric_mean_ratio(norms: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(norms[1:] / norms[:-1]))))


def reference_norms(run: Run, losses=None) -> np.ndarray:
    """[start, record 1, ..., record T]: ||dL/dh_{T-k}||_F / N by SPEC 1's recurrence."""
    dh = rnn_hidden_gradients(run, losses)
    return np.array([batch_norm(dh[run.T - k], run.N) for k in range(run.T + 1)])


def reference_ratios(run: Run) -> np.ndarray:
    norms = reference_norms(run)
    return norms[1:] / norms[:-1]


def net_inputs(run: Run) -> np.ndarray:
    """net_t for transitions t = T, T-1, ..., 1 (record order), (T, N, H)."""
    return np.array([rnn_net(run, t) for t in range(run.T, 0, -1)])


def first_k(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1


# -- the registry --------------------------------------------------------------------------------


STEP_PRESETS = {name for name, p in BUILTIN.items() if p.training is None}  # the training presets: test_training_presets.py


def test_builtin_registry():
    assert STEP_PRESETS == EXPECTED_PRESETS
    for name, p in BUILTIN.items():
        assert p.name == name and p.description and p.look_for and isinstance(p.config, Config)


def test_every_sentence_is_checked():
    assert set(CHECKS) == STEP_PRESETS


@pytest.mark.parametrize("name", sorted(EXPECTED_PRESETS))
def test_every_preset_runs_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = Run(BUILTIN[name].config)
        s = run.run()
        to_json(run, dump=True, preset=name)
        to_csv(run)
    assert s["done"] and s["steps_done"] == run.T
    assert s["overflow_k"] is None and s["forward_overflow_t"] is None
    assert np.all(np.isfinite(run.records.columns["grad_norm"]))


# -- the matrix chains (SPEC section 2) ----------------------------------------------------------


@checks("seed-explode")
def test_seed_explode():
    says("seed-explode", "ratio column settles at x1.26", "spectral radius", "reaches ~250 at k = 20", "sigma(J) = sigma_max = 2.66", "grows at its radius")
    run, s = run_preset("seed-explode")
    Wh, _, norms = section_2(1.0)
    np.testing.assert_allclose(run.records.columns["grad_norm"], norms, rtol=1e-12)  # SPEC 2, to round-off
    np.testing.assert_array_equal(run.params["weight_hh_l0"], Wh.T)
    sigma, radius = np.linalg.svd(Wh, compute_uv=False)[0], np.max(np.abs(np.linalg.eigvals(Wh)))
    assert sigma == pytest.approx(2.66, abs=0.005) == s["sigma_max"]
    assert radius == pytest.approx(1.26, abs=0.005) == s["spectral_radius"]
    np.testing.assert_allclose(run.records.columns["jacobian_sigma"], sigma, rtol=1e-12)  # J = W at every step
    assert norms[-1] == pytest.approx(250, rel=0.01)
    ratios = norms[1:] / norms[:-1]
    np.testing.assert_allclose(ratios[-5:], radius, atol=0.005)  # settles at the radius, far below sigma_max
    assert s["regime"] == "exploding"


@checks("seed-vanish")
def test_seed_vanish():
    says("seed-vanish", "sigma_max = 1.33 > 1, yet it vanishes", "ratio column settles at x0.628", "~2.4e-04 at k = 20", "the radius decides")
    run, s = run_preset("seed-vanish")
    Wh, _, norms = section_2(0.5)
    np.testing.assert_allclose(run.records.columns["grad_norm"], norms, rtol=1e-12)
    sigma, radius = np.linalg.svd(Wh, compute_uv=False)[0], np.max(np.abs(np.linalg.eigvals(Wh)))
    assert sigma == pytest.approx(1.33, abs=0.005) == s["sigma_max"]
    assert radius == pytest.approx(0.628, abs=0.0005) == s["spectral_radius"]
    ratios = norms[1:] / norms[:-1]
    np.testing.assert_allclose(ratios[-10:], radius, atol=0.0005)
    assert norms[-1] == pytest.approx(2.4e-4, rel=0.01)
    assert s["regime"] == "vanishing" and s["linear_chain"] is True


# -- clipping (SPEC section 3) -------------------------------------------------------------------


@checks("clip-rescue")
def test_clip_rescue():
    says("clip-rescue", "|grad| (params) crosses 5.0 at k = 6", "'norm crossed'", "a: pause at CLIP", "CLIP at k = 60 rescales ~280 to 5", "grows to 43 at k = 60, untouched")
    run, s = run_preset("clip-rescue")
    free, _ = run_preset("clip-rescue", clip="none")
    marks = [(r.k, r.clip) for r in run.records if r.clip is not None]
    assert [k for k, _ in marks] == [6, 60]  # the first mark is where play pauses at CLIP
    crossing, rescale = marks[0][1], marks[1][1]
    assert not crossing.applied and crossing.mode == "norm" and crossing.before > 5.0
    assert run.records.columns["param_norm"][4] <= 5.0 < run.records.columns["param_norm"][5]
    raw = np.sqrt(sum(np.sum(g**2) for g in run.grads_raw.values()))
    after = np.sqrt(sum(np.sum(g**2) for g in run.grads.values()))
    assert rescale.applied and rescale.before == pytest.approx(raw, rel=1e-12)
    assert raw == pytest.approx(280, rel=0.02) and after == pytest.approx(5.0, rel=1e-6)
    norms = reference_norms(run)
    np.testing.assert_allclose(run.records.columns["grad_norm"], norms[1:], rtol=1e-10)  # untouched by the clip
    np.testing.assert_array_equal(run.records.columns["grad_norm"], free.records.columns["grad_norm"])
    assert norms[-1] == pytest.approx(43, abs=0.5)


@checks("step-clip")
def test_step_clip():
    says("step-clip", "From k = 28, where |dL/dh| first passes 1.0", "CLIP caps it at 1.0 on 29 of the 33 steps", "c switches to agc: unclipped, ~43")
    run, s = run_preset("step-clip")
    free_norms = reference_norms(run)[1:]  # the unclipped recurrence
    gn = run.records.columns["grad_norm"]
    ks = [r.k for r in run.records if r.clip is not None]
    assert all(run.records[k].clip.mode == "step" for k in ks)
    assert ks[0] == first_k(free_norms > 1.0) == 28
    assert len(ks) == 29 and run.T - ks[0] + 1 == 33
    assert np.all(gn <= 1.0 + 1e-12)
    np.testing.assert_allclose(gn[np.array(ks) - 1], 1.0, rtol=1e-12)  # held at the threshold where clipped
    np.testing.assert_allclose(gn[:27], free_norms[:27], rtol=1e-10)
    # c: the next clip mode after step is agc, which acts only at the end of the pass
    assert CLIP_MODES[(CLIP_MODES.index("step") + 1) % len(CLIP_MODES)] == "agc"
    agc, _ = run_preset("step-clip", clip="agc")
    np.testing.assert_allclose(agc.records.columns["grad_norm"], free_norms, rtol=1e-10)
    assert free_norms[-1] == pytest.approx(43, rel=0.02)


# -- activations (SPEC section 1) ----------------------------------------------------------------


@checks("tanh-saturation")
def test_tanh_saturation():
    says("tanh-saturation", "sat reads 45-80%", "below x0.75, mostly below x0.5", "VANISHED from k = 11", "a: pause at VANISHED", "sigma_max·gamma = 1.79 > 1")
    run, s = run_preset("tanh-saturation")
    h = run.cell.h
    flat = np.array([np.mean(1 - h[run.T - k + 1] ** 2 < 0.05) for k in range(1, run.T + 1)])
    np.testing.assert_array_equal(run.records.columns["saturation"], flat)
    assert (round(100 * flat.min()), round(100 * flat.max())) == (45, 80)
    ratios = reference_ratios(run)
    assert np.all(ratios < 0.75) and np.mean(ratios < 0.5) > 0.5
    norms = reference_norms(run)
    assert first_k(norms[1:] < run.config.vanish_threshold * norms[0]) == 11 == s["first_vanishing_k"]
    assert np.linalg.svd(run.params["weight_hh_l0"], compute_uv=False)[0] == pytest.approx(1.79, abs=0.005)  # gamma = 1


@checks("sigmoid-quarter")
def test_sigmoid_quarter():
    says("sigmoid-quarter", "gamma = 1/4, so sigma_max·gamma = 0.671 < 1 guarantees vanishing", "below x0.671 at every step", "VANISHED from k = 12", "spectral radius in the summary bar is 1.68")
    run, s = run_preset("sigmoid-quarter")
    W = run.params["weight_hh_l0"]
    sigma = np.linalg.svd(W, compute_uv=False)[0]
    assert 1 < sigma < 4 and sigma / 4 == pytest.approx(0.671, abs=0.0005)
    assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.68, abs=0.005)
    assert s["gamma"] == 0.25 and s["vanishing_guaranteed"] is True
    # the guarantee, step by step: ||(dh * f') W|| <= sigma_max(W) / 4 * ||dh|| (loss on the last step only)
    assert np.all(reference_ratios(run) <= sigma / 4 * (1 + 1e-12))
    norms = reference_norms(run)
    assert first_k(norms[1:] < run.config.vanish_threshold * norms[0]) == 12 == s["first_vanishing_k"]


@checks("relu-rescue")
def test_relu_rescue():
    says("relu-rescue", "no saturation (f' is 1 or 0)", "39-53% of units are dead", "grows from 35 at k = 1 to 241 at k = 60", "set activation tanh: ~0.39x per step")
    run, s = run_preset("relu-rescue")
    cols = run.records.columns
    dead = np.mean(net_inputs(run) <= 0, axis=(1, 2))  # f' = 0 exactly where net <= 0
    np.testing.assert_array_equal(cols["dead"], dead)
    assert (round(100 * dead.min()), round(100 * dead.max())) == (39, 53)
    assert not cols["saturation"].any()  # f' is 0 or 1: never small
    norms = reference_norms(run)
    assert (round(norms[1]), round(norms[-1])) == (35, 241)
    assert s["regime"] == "exploding" and s["first_vanishing_k"] is None  # no collapse
    tanh, _ = run_preset("relu-rescue", activation="tanh")
    assert geometric_mean_ratio(reference_norms(tanh)) == pytest.approx(0.39, abs=0.005)


@checks("irnn")
def test_irnn():
    says("irnn", "reads exactly x1 on 50 of the 60 steps", "the other 10 fall below 1, each on a step with dead units", "~0.98x overall")
    run, s = run_preset("irnn")
    np.testing.assert_array_equal(run.params["weight_hh_l0"], np.eye(32))
    ratios = reference_ratios(run)
    dead = np.mean(net_inputs(run) <= 0, axis=(1, 2))
    np.testing.assert_array_equal(run.records.columns["dead"], dead)
    assert np.sum(ratios == 1.0) == 50 and np.sum(ratios < 1.0) == 10 and np.all(ratios <= 1.0)
    assert np.all(dead[ratios < 1.0] > 0)  # only a unit that is off removes gradient
    assert geometric_mean_ratio(reference_norms(run)) == pytest.approx(0.98, abs=0.005)


@checks("orthogonal")
def test_orthogonal():
    says("orthogonal", "sat 0%", "reads x0.996 to x1", "set init xavier (--init xavier): it dips to ~0.02 near k = 10, then grows to ~3")
    run, s = run_preset("orthogonal")
    np.testing.assert_allclose(np.linalg.svd(run.params["weight_hh_l0"], compute_uv=False), 1.0, atol=1e-12)
    assert not run.records.columns["saturation"].any()
    ratios = reference_ratios(run)
    assert 0.9955 <= ratios.min() and ratios.max() <= 1.0
    xavier, _ = run_preset("orthogonal", init="xavier")
    g = reference_norms(xavier)[1:]
    assert int(np.argmin(g)) + 1 == 10 and g.min() == pytest.approx(0.02, abs=0.001)
    assert g[-1] == pytest.approx(3, abs=0.15)


@checks("indrnn")
def test_indrnn():
    says("indrnn", "sat 0%", "reads x0.996 to x1", "Scale 0.95 (--scale 0.95): ~0.95x per step; 1.05: ~1.03x")
    run, s = run_preset("indrnn")
    np.testing.assert_array_equal(run.params["weight_hh_l0"], np.ones(32))  # u, a vector
    assert not run.records.columns["saturation"].any()
    ratios = reference_ratios(run)
    assert 0.9955 <= ratios.min() and ratios.max() <= 1.0
    for scale, rate, tol in ((0.95, 0.95, 0.005), (1.05, 1.03, 0.005)):
        r, rs = run_preset("indrnn", scale=scale)
        np.testing.assert_array_equal(r.params["weight_hh_l0"], np.full(32, scale))
        assert geometric_mean_ratio(reference_norms(r)) == pytest.approx(rate, abs=tol)
        assert rs["spectral_radius"] == pytest.approx(scale, rel=1e-12)


# -- gated cells (SPEC section 4) ----------------------------------------------------------------


@checks("lstm-cec")
def test_lstm_cec():
    says("lstm-cec", "|dL/dc| stays above 7e-3 for 100 steps", "'h-path only'", "sigma(J) ~0.55 on average", "falls to ~1e-27", "f-gate ~0.93", "--forget-bias 0: both vanish ~0.64x a step")
    run, s = run_preset("lstm-cec")
    cols = run.records.columns
    assert run.T == 100
    assert np.all(cols["cell_norm"] > 7e-3)
    sigmas = exact_sigmas(run)  # the hidden-path Jacobians, c held, written out
    assert float(np.mean(sigmas)) == pytest.approx(0.55, abs=0.01)
    start = batch_norm(readout_grad(run, run.T), run.N)  # the loss is on the last step only
    path = start * np.cumprod(sigmas)
    np.testing.assert_allclose(cols["hidden_path"], path, rtol=1e-10)
    assert 1e-28 < path[-1] < 1e-26 and path[-1] < 1e-20 * cols["cell_norm"][-1]
    assert float(np.mean(cols["gate_mean"])) == pytest.approx(0.93, abs=0.005)
    off, _ = run_preset("lstm-cec", forget_bias=0.0)
    c0, h0 = off.records.columns["cell_norm"], off.records.columns["grad_norm"]
    assert geometric_mean_ratio(c0) == pytest.approx(0.64, abs=0.01)
    assert geometric_mean_ratio(h0) == pytest.approx(0.64, abs=0.01)


@checks("gru")
def test_gru():
    says("gru", "z-gate column reads ~0.93", "shrinks ~0.95x per step", "(--forget-bias 0, z ~ 0.5): ~0.66x, over 1e10 times less after 100 steps")
    run, s = run_preset("gru")
    assert s["mean_growth"] == pytest.approx(0.95, abs=0.005)
    assert float(np.mean(run.records.columns["gate_mean"])) == pytest.approx(0.93, abs=0.005)
    off, s0 = run_preset("gru", forget_bias=0.0)
    assert s0["mean_growth"] == pytest.approx(0.66, abs=0.005)
    assert float(np.mean(off.records.columns["gate_mean"])) == pytest.approx(0.5, abs=0.03)
    ratio_fb3 = run.records.columns["grad_norm"][-1] / s["start_norm"]
    ratio_fb0 = off.records.columns["grad_norm"][-1] / s0["start_norm"]
    assert ratio_fb3 / ratio_fb0 > 1e10
    # the full GRU Jacobian is what sigma(J) measures: its running product bounds the norm
    start = batch_norm(readout_grad(run, run.T), run.N)
    assert np.all(run.records.columns["grad_norm"] <= start * np.cumprod(exact_sigmas(run)) * (1 + 1e-12))


# -- the wig sentence and truncation (SPEC section 5) --------------------------------------------


def spec5_grads(params, ids: np.ndarray, targets: np.ndarray, truncate: int) -> dict[str, np.ndarray]:
    """SPEC section 5's loop (no biases), output by output, newest first."""
    U, W, V = params["weight_ih_l0"], params["weight_hh_l0"], params["head.weight"]
    H, K = W.shape[0], V.shape[0]
    T = len(ids)
    bptt_truncate = truncate if truncate else T  # truncate >= T: exact BPTT
    s = np.zeros((T + 1, H))  # s[t] is s_t; s[-1] (index T) is the initial state
    o = np.zeros((T, K))
    for t in range(T):
        s[t] = np.tanh(U[:, ids[t]] + W @ s[t - 1])
        z = V @ s[t]
        o[t] = np.exp(z - z.max()) / np.sum(np.exp(z - z.max()))
    dU, dW, dV = np.zeros_like(U), np.zeros_like(W), np.zeros_like(V)
    for t in range(T - 1, -1, -1):
        delta_o = o[t].copy()
        delta_o[targets[t]] -= 1.0
        dV += np.outer(delta_o, s[t])
        delta = (V.T @ delta_o) * (1 - s[t] ** 2)
        for step in range(t, max(0, t - bptt_truncate) - 1, -1):
            dW += np.outer(delta, s[step - 1])
            dU[:, ids[step]] += delta
            delta = (W.T @ delta) * (1 - s[step - 1] ** 2)
    return {"weight_ih_l0": dU, "weight_hh_l0": dW, "head.weight": dV}


@pytest.mark.parametrize("name", ["wig-sentence", "truncated"])
def test_sentence_presets_match_spec_section_5(name):
    run, _ = run_preset(name)
    for b in ("bias_ih_l0", "bias_hh_l0", "head.bias"):
        assert not np.any(run.params[b])  # the SPEC 5 model has no biases: the comparison is exact
    words = WIG.split()
    vocab = sorted(set(words))
    ids = np.array([vocab.index(w) for w in words])
    ref = spec5_grads(run.params, ids[:-1], ids[1:], run.config.truncate)
    for n, g in ref.items():
        np.testing.assert_allclose(run.grads_raw[n], g, rtol=1e-10, atol=1e-14, err_msg=n)


def went_changes(truncate: int) -> tuple[bool, list[int]]:
    """What the loss that predicts 'went' changes: whether the gradient at the
    input 'man' (column 'man' of dL/dW_ih: 'man' is a one-hot input word, so the
    column is exactly the gradient at the step that reads it), and the t whose
    record |dL/dh_t| changes. Only the target 'went' is changed."""
    cfg = BUILTIN["wig-sentence"].config.with_overrides(truncate=truncate)
    words = WIG.split()
    vocab = list(cfg.vocabulary)
    run = Run(cfg)
    targets = np.array(run.targets, copy=True)
    i_went = words.index("went") - 1  # target index of the word 'went'
    assert targets[i_went, 0] == vocab.index("went")
    targets[i_went, 0] = vocab.index("inside")
    other = Run(cfg, inputs=run.inputs, targets=targets)
    run.run(), other.run()
    man = vocab.index("man")
    col, col2 = run.grads_raw["weight_ih_l0"][:, man], other.grads_raw["weight_ih_l0"][:, man]
    assert np.any(col)  # 'man' gets gradient from nearer losses in every case
    a, b = run.records.columns["grad_norm"], other.records.columns["grad_norm"]
    changed = [run.T - k for k in range(1, run.T + 1) if a[k - 1] != b[k - 1]]
    return not np.allclose(col, col2, rtol=0, atol=1e-15), changed


def test_where_the_words_are():
    """'went' is predicted at t = 9 (from h_9, which has read 'head'); 'man' is read at t = 2 (into h_2)."""
    run, _ = run_preset("wig-sentence")
    words, vocab = WIG.split(), list(run.config.vocabulary)
    assert [vocab[int(np.argmax(run.inputs[t - 1, 0]))] for t in (2, 9)] == ["man", "head"]  # h_t reads input t - 1
    assert vocab[run.targets[9 - 1, 0]] == "went"  # the loss at t = 9
    assert words.index("man") + 1 == 2 and words.index("went") == 9


@checks("wig-sentence")
def test_wig_sentence():
    says("wig-sentence", "the step log shows the word at each t", "'went' (at t = 9, after 'head') reaches 'man' (read at t = 2) only through 7 Jacobians")
    run, s = run_preset("wig-sentence")
    assert run.T == len(WIG.split()) - 1 == 10 and run.config.loss_on == "all"
    assert all(r.status != "truncated" for r in run.records)
    reaches, changed = went_changes(0)
    assert reaches and changed == list(range(9, -1, -1))  # full BPTT: every t from 9 down
    assert went_changes(7)[0]  # 7 Jacobians are enough ...
    assert not went_changes(6)[0]  # ... and exactly 7 are needed: t = 9 down to t = 2


@checks("truncated")
def test_truncated():
    says("truncated", "TRUNCATED from k = 5", "stops after 4 Jacobians", "'went' (t = 9) stops at t = 5, short of 'man' (t = 2)")
    says("truncated", "final |dL/dh| 2.33 > wig-sentence's 1.34", "dropped losses (t = 5..10)", "(cosine -0.88)")
    run, s = run_preset("truncated")
    statuses = [r.status for r in run.records]
    assert statuses[4:] == ["truncated"] * (run.T - 4) and "truncated" not in statuses[:4]
    reaches, changed = went_changes(4)
    assert not reaches and changed == [9, 8, 7, 6, 5]
    full, _ = run_preset("wig-sentence")
    # dL/dh_0 by SPEC 1's recurrence, split by the loss it comes from: truncation keeps t = 1..4
    kept, dropped = rnn_hidden_gradients(full, range(1, 5))[0], rnn_hidden_gradients(full, range(5, 11))[0]
    assert batch_norm(kept, 1) == pytest.approx(2.33, abs=0.005) == run.records.columns["grad_norm"][-1]
    assert batch_norm(kept + dropped, 1) == pytest.approx(1.34, abs=0.005) == full.records.columns["grad_norm"][-1]
    cosine = float(np.sum(kept * dropped) / (np.linalg.norm(kept) * np.linalg.norm(dropped)))
    assert cosine == pytest.approx(-0.88, abs=0.005)


@checks("wig-went")
def test_wig_went():
    """||dL/dx_t|| of the one loss (the prediction of 'went') by finite differences of the
    forward pass; truncated at 4 Jacobians, the inputs t = 5..9 keep exactly the full
    gradient (every path from the loss at t = 9 to them crosses at most 4) and t = 1..4 get 0."""
    says("wig-went", "no longer reaches 'man': 0 exactly for 'wore', 'who', 'man' and 'The' (t = 4..1; 'man' at k = 7), 0.38 at 'a' (t = 5)")
    says("wig-went", "With --truncate 0 it reaches 'man' with 0.17, a fifth of 'head''s 0.89")
    from tests.input_gradients import input_norms

    run, _ = run_preset("wig-went")
    words, vocab = WIG.split(), list(run.config.vocabulary)
    assert run.T == 9 and vocab[run.targets[8, 0]] == "went" and run.config.loss_on == "last"
    assert [vocab[int(np.argmax(run.inputs[t - 1, 0]))] for t in (1, 2, 3, 4, 5, 9)] == ["The", "man", "who", "wore", "a", "head"]
    full = input_norms(run)  # t = 9, 8, ..., 1: the untruncated gradient
    shown = run.gradient_map.input_norms(run.T)
    np.testing.assert_allclose(shown[:5], full[:5], rtol=1e-6)
    assert list(shown[5:]) == [0.0] * 4
    assert round(float(shown[4]), 2) == 0.38  # 'a', t = 5
    assert words[1] == "man" and run.T - 2 == 7  # x_2 sits in the column of h_2, k = T - 2
    untruncated, _ = run_preset("wig-went", truncate=0)
    np.testing.assert_allclose(untruncated.gradient_map.input_norms(run.T), full, rtol=1e-6)
    assert (round(float(full[7]), 2), round(float(full[0]), 2)) == (0.17, 0.89)  # 'man', 'head'
    assert 4.5 < full[0] / full[7] < 5.5


@checks("phase-diagram")
def test_phase_diagram():
    """The sweep's default grid (scale against tanh, relu, sigmoid): the lines from
    numpy's SVD and eigenvalues of the scale-1 W_hh (every cell's W_hh is it times
    the scale), the growth per step from SPEC 1's recurrence at single cells."""
    says("phase-diagram", "sigma_max·gamma < 1 guarantees vanishing only below scale 0.53", "the radius passes 1 at 0.98")
    says("phase-diagram", "the growth stays below x1 a step up to scale 1.9", "relu explodes from 1.47")
    says("phase-diagram", "sigmoid (gamma 1/4) vanishes at every scale to 2.5, guaranteed below 2.12 only", "scale 1: x0.64 a step")

    def growth(activation: str, scale: float) -> float:
        run, _ = run_preset("phase-diagram", activation=activation, scale=scale)
        return geometric_mean_ratio(reference_norms(run))

    run, _ = run_preset("phase-diagram")
    assert (run.config.activation, run.H, run.T, run.config.scale) == ("tanh", 64, 200, 1.0)
    W1 = run.params["weight_hh_l0"]
    sigma, rho = np.linalg.svd(W1, compute_uv=False)[0], np.max(np.abs(np.linalg.eigvals(W1)))
    assert round(1 / sigma, 2) == 0.53 and round(1 / rho, 2) == 0.98 and round(4 / sigma, 2) == 2.12
    assert all(growth("tanh", s) < 1 for s in np.arange(0.55, 1.86, 0.1))  # vanishing anyway, where nothing guarantees it
    assert growth("tanh", 1.88) < 1 < growth("tanh", 1.95)
    assert growth("relu", 1.44) < 1 < growth("relu", 1.50)
    assert all(growth("sigmoid", s) < 1 for s in (0.25, 1.0, 2.12, 2.5))
    assert round(growth("tanh", 1.0), 2) == 0.64
