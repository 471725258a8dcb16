"""The engine's gradients are the gradients of its loss.

Expected values are computed independently of the engine's backward pass:

- exact BPTT: central finite differences of `run.loss` (the engine's forward
  pass, rerun with perturbed parameters) against `run.grads_raw`, for every
  cell, activation, loss and loss placement, and in chain mode;
- truncated BPTT (not the gradient of any loss) two ways: (a) finite
  differences of each output's loss on the graph cut `truncate` + 1
  transitions before it, with a forward pass written here from the SPEC 7
  formulas; (b) a literal transcription of SPEC section 5's algorithm;
- the per-step records: an independent BPTT loop written here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from engine import Config, Run
from engine.presets import WIG
from tests.reference import activation_derivative, loss_gradient

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "linear")
KINKED = ("relu", "leaky_relu")

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- SPEC 7, written out here (the reference forward pass) -------------------


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def act(name, net, slope):
    if name == "tanh":
        return np.tanh(net)
    if name == "sigmoid":
        return sig(net)
    if name == "relu":
        return np.maximum(net, 0.0)
    if name == "leaky_relu":
        return np.where(net > 0, net, slope * net)
    assert name == "linear"
    return net


def cell_step(cfg, P, x, h, c):
    """One transition (SPEC 7 table). Returns h', c' (None for rnn/gru), rnn net (None otherwise)."""
    H = h.shape[-1]
    Wih, Whh, bih, bhh = P["weight_ih_l0"], P["weight_hh_l0"], P["bias_ih_l0"], P["bias_hh_l0"]
    if cfg.cell == "rnn":
        net = x @ Wih.T + bih + h @ Whh.T + bhh
        return act(cfg.activation, net, cfg.leaky_slope), None, net
    if cfg.cell == "lstm":
        gates = x @ Wih.T + bih + h @ Whh.T + bhh
        i, f, g, o = (gates[:, j * H : (j + 1) * H] for j in range(4))
        i, f, g, o = sig(i), sig(f), np.tanh(g), sig(o)
        c2 = f * c + i * g
        return o * np.tanh(c2), c2, None
    gi = x @ Wih.T + bih
    gh = h @ Whh.T + bhh
    r = sig(gi[:, :H] + gh[:, :H])
    z = sig(gi[:, H : 2 * H] + gh[:, H : 2 * H])
    n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
    return (1.0 - z) * n + z * h, None, None


def forward(cfg, P, x, start=0, h0=None, c0=None, stop=None):
    """States h[start..stop], c[start..stop] from h[start] = h0 (default zeros).

    Returns dicts t -> h_t, t -> c_t and the list of rnn pre-activations.
    """
    T, N, _ = x.shape
    stop = T if stop is None else stop
    H = cfg.hidden
    h = np.zeros((N, H)) if h0 is None else h0
    c = np.zeros((N, H)) if c0 is None else c0
    hs, cs, nets = {start: h}, {start: c}, []
    for t in range(start + 1, stop + 1):  # transition t consumes x[t-1]
        h, c2, net = cell_step(cfg, P, x[t - 1], h, c)
        c = c2 if c2 is not None else c
        hs[t], cs[t] = h, c
        if net is not None:
            nets.append(net)
    return hs, cs, nets


def step_loss(cfg, P, h, target):
    """The loss carried by one step (SPEC 7): MSELoss or CrossEntropyLoss of y = h V^T + b."""
    y = h @ P["head.weight"].T + P["head.bias"]
    N, K = y.shape
    if cfg.loss == "mse":
        return float(np.sum((y - target) ** 2) / (N * K))
    m = y.max(axis=1, keepdims=True)
    logz = (m + np.log(np.sum(np.exp(y - m), axis=1, keepdims=True)))[:, 0]
    return float(np.mean(logz - y[np.arange(N), target]))


def loss_steps(cfg):
    T = cfg.steps
    if cfg.mode == "chain" or cfg.loss_on == "last":
        return [T]
    return list(range(1, T + 1))


def output_loss(cfg, P, h, tau, targets):
    if cfg.mode == "chain":
        return float(np.sum(h))  # the implied objective sum(h_T)
    return step_loss(cfg, P, h, targets[tau - 1])


def reference_loss(cfg, P, x, targets):
    hs, _, nets = forward(cfg, P, x)
    return sum(output_loss(cfg, P, hs[tau], tau, targets) for tau in loss_steps(cfg)), hs, nets


# --- hypothesis: small configurations -------------------------------------------


@st.composite
def configs(draw, mode="bptt", cells=("rnn", "lstm", "gru"), truncation="exact"):
    cell = draw(st.sampled_from(cells))
    kw = dict(
        mode=mode,
        cell=cell,
        hidden=draw(st.integers(1, 4)),
        batch=draw(st.integers(1, 3)),
        steps=draw(st.integers(1 if truncation == "exact" else 2, 5)),
        input_size=draw(st.integers(1, 3)),
        init=draw(st.sampled_from(("gaussian", "xavier", "orthogonal", "identity", "torch"))),
        seed=draw(st.integers(0, 2**32 - 1)),
        input_scale=draw(st.sampled_from((0.5, 1.0, 2.0))),
    )
    kw["scale"] = draw(st.floats(0.2, 1.2 if kw["init"] == "gaussian" else 1.8))
    if cell == "rnn":
        kw["activation"] = draw(st.sampled_from(ACTIVATIONS))
        if kw["activation"] == "leaky_relu":
            kw["leaky_slope"] = draw(st.sampled_from((0.01, 0.1, 0.5)))
    else:
        kw["forget_bias"] = draw(st.sampled_from((0.0, 1.0, 3.0, -1.0)))
    if mode == "bptt":
        kw["output_size"] = draw(st.integers(2, 3))
        kw["loss"] = draw(st.sampled_from(("mse", "xent")))
        kw["loss_on"] = draw(st.sampled_from(("last", "all")))
    T = kw["steps"]
    if truncation == "exact":
        # 0 is off; truncate >= T is exact BPTT too (SPEC 5).
        kw["truncate"] = draw(st.sampled_from((0, T, T + 1, T + 3)))
    else:  # a cut that matters: 1 <= truncate < T
        kw["truncate"] = draw(st.integers(1, T - 1))
    return Config(**kw)


def no_kinks(cfg, nets):
    """ReLU's derivative jumps at 0: keep every pre-activation away from it."""
    if cfg.cell == "rnn" and cfg.activation in KINKED:
        assume(min(float(np.min(np.abs(n))) for n in nets) > 1e-3)


def assert_close(name, got, expected, scale):
    tol = 1e-6 * np.abs(expected) + 1e-8 * scale
    bad = np.abs(got - expected) > tol
    assert not bad.any(), f"{name}: engine {got[bad]} vs finite differences {expected[bad]} (max abs err {np.max(np.abs(got - expected)):.3g})"


def central_difference(f, P, eps=1e-6):
    """dF/dP for every entry of every parameter, central differences."""
    out = {}
    for name, p in P.items():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            vals = []
            for sign in (1.0, -1.0):
                Q = {k: v.copy() for k, v in P.items()}
                Q[name][idx] += sign * eps
                vals.append(f(Q))
            g[idx] = (vals[0] - vals[1]) / (2 * eps)
        out[name] = g
    return out


def engine_loss(run):
    return lambda Q: Run(run.config, params=Q, inputs=run.inputs, targets=run.targets).loss


def check_against_fd(run, fd):
    scale = 1.0 + abs(run.loss)
    assert set(run.grads_raw) == set(fd)
    for name in fd:
        assert_close(name, run.grads_raw[name], fd[name], scale)


# --- exact BPTT ---------------------------------------------------------------------


def _exact_gradcheck(cfg):
    run = Run(cfg)
    run.run()
    loss, hs, nets = reference_loss(cfg, run.params, run.inputs, run.targets)
    no_kinks(cfg, nets)
    # The engine's forward and loss are SPEC 7's.
    np.testing.assert_allclose(run.cell.h, np.stack([hs[t] for t in range(cfg.steps + 1)]), rtol=1e-12, atol=1e-12)
    assert run.loss == pytest.approx(loss, rel=1e-12, abs=1e-12)
    check_against_fd(run, central_difference(engine_loss(run), run.params))


@SETTINGS
@given(configs(cells=("rnn",)))
def test_rnn_gradients_match_finite_differences(cfg):
    _exact_gradcheck(cfg)


@SETTINGS
@given(configs(cells=("lstm", "gru")))
def test_gated_gradients_match_finite_differences(cfg):
    _exact_gradcheck(cfg)


@SETTINGS
@given(configs(mode="chain"))
def test_chain_gradients_match_finite_differences(cfg):
    """Chain mode: the objective is sum(h_T), so dL/dh_T = ones (SPEC 7)."""
    run = Run(cfg)
    assert run.loss == pytest.approx(float(np.sum(run.cell.h[-1])), rel=1e-12, abs=1e-12)
    assert "head.weight" not in run.params
    _exact_gradcheck(cfg)
    assert run.start_norm == pytest.approx(np.sqrt(cfg.batch * cfg.hidden) / cfg.batch, rel=1e-12)


# --- truncated BPTT (a): finite differences on the cut graph ---------------------------


def cut_graph_gradient(cfg, P, x, targets, eps=1e-6):
    """sum over outputs tau of dL_tau/dP with h (and c) frozen at step tau - truncate - 1.

    Each output's gradient then reaches transitions tau, ..., tau - truncate:
    truncate + 1 transitions, truncate Jacobians (SPEC 5).
    """
    hs, cs, _ = forward(cfg, P, x)
    total = {name: np.zeros_like(p) for name, p in P.items()}
    for tau in loss_steps(cfg):
        start = max(0, tau - cfg.truncate - 1)
        h0, c0 = hs[start], cs[start]  # frozen at their forward values

        def L_tau(Q, tau=tau, start=start, h0=h0, c0=c0):
            hq, _, _ = forward(cfg, Q, x, start=start, h0=h0, c0=c0, stop=tau)
            return output_loss(cfg, Q, hq[tau], tau, targets)

        for name, g in central_difference(L_tau, P, eps).items():
            total[name] += g
    return total


@SETTINGS
@given(st.sampled_from(("bptt", "chain")).flatmap(lambda m: configs(mode=m, truncation="cut")))
def test_truncated_gradients_are_the_cut_graph_gradients(cfg):
    run = Run(cfg)
    run.run()
    _, _, nets = forward(cfg, run.params, run.inputs)
    no_kinks(cfg, nets)
    fd = cut_graph_gradient(cfg, run.params, run.inputs, run.targets)
    check_against_fd(run, fd)


def test_truncation_changes_the_gradient():
    """Guard against a vacuous truncation test: with a long sequence the cut is visible."""
    cfg = Config(hidden=4, batch=2, steps=6, input_size=2, output_size=2, loss_on="all", truncate=2, seed=7)
    run = Run(cfg)
    run.run()
    exact = Run(Config(hidden=4, batch=2, steps=6, input_size=2, output_size=2, loss_on="all", seed=7))
    exact.run()
    assert not np.allclose(run.grads_raw["weight_hh_l0"], exact.grads_raw["weight_hh_l0"], rtol=1e-6)
    # ... while the readout's gradient does not depend on the cut.
    np.testing.assert_allclose(run.grads_raw["head.weight"], exact.grads_raw["head.weight"], rtol=1e-13)
    check_against_fd(run, cut_graph_gradient(cfg, run.params, run.inputs, run.targets))


# --- truncated BPTT (b): SPEC section 5, transcribed ------------------------------------


def spec_section_5(U, W, V, x, y, truncate):
    """SPEC 5 line by line (column vectors; W = weight_hh_l0, U = weight_ih_l0,
    V = head.weight, as PyTorch stores them). s[t + 1] holds s_t, s[0] = s_{-1} = 0."""
    T = len(x)
    H = W.shape[0]
    s = np.zeros((T + 1, H))
    o = np.zeros((T, V.shape[0]))
    for t in range(T):
        s[t + 1] = np.tanh(U[:, x[t]] + W @ s[t])
        e = np.exp(V @ s[t + 1] - np.max(V @ s[t + 1]))
        o[t] = e / e.sum()
    L = float(sum(-np.log(o[t, y[t]]) for t in range(T)))
    dU, dW, dV = np.zeros_like(U), np.zeros_like(W), np.zeros_like(V)
    for t in reversed(range(T)):  # output by output, newest first
        delta_o = o[t].copy()
        delta_o[y[t]] -= 1.0  # o_t - onehot(y_t)
        dV += np.outer(delta_o, s[t + 1])
        delta = (V.T @ delta_o) * (1 - s[t + 1] ** 2)
        for step in range(t, max(0, t - truncate) - 1, -1):
            dW += np.outer(delta, s[step])  # s_{step-1}
            dU[:, x[step]] += delta
            delta = (W.T @ delta) * (1 - s[step] ** 2)
    return L, dU, dW, dV


WORDS = ("the", "man", "who", "wore", "a", "wig", "went", "inside")


@SETTINGS
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=2, max_size=9).filter(lambda ws: len(set(ws)) >= 2),  # one word is one class: refused
    hidden=st.integers(1, 6),
    init=st.sampled_from(("gaussian", "xavier", "orthogonal", "identity")),
    scale=st.floats(0.3, 1.5),
    seed=st.integers(0, 2**32 - 1),
    truncate=st.integers(0, 10),
)
@example(words=WIG.split(), hidden=8, init="xavier", scale=1.0, seed=1, truncate=3)
@example(words=WIG.split(), hidden=8, init="xavier", scale=1.0, seed=1, truncate=0)
def test_spec_section_5_transcription(words, hidden, init, scale, seed, truncate):
    text = " ".join(words)
    cfg = Config(text=text, hidden=hidden, loss_on="all", init=init, scale=scale, seed=seed, truncate=truncate)
    run = Run(cfg)
    run.run()
    index = {w: i for i, w in enumerate(cfg.vocabulary)}
    ids = [index[w] for w in words]
    x, y = ids[:-1], ids[1:]
    T = len(x)
    # One-hot token inputs, next-word targets.
    assert run.inputs.shape == (T, 1, len(cfg.vocabulary))
    np.testing.assert_array_equal(np.argmax(run.inputs[:, 0], axis=1), x)
    np.testing.assert_array_equal(run.inputs.sum(axis=2), 1.0)
    np.testing.assert_array_equal(np.asarray(run.targets)[:, 0], y)
    P = run.params
    for b in ("bias_ih_l0", "bias_hh_l0", "head.bias"):
        assert not P[b].any()  # SPEC 5 has no biases; these inits give zeros
    L, dU, dW, dV = spec_section_5(P["weight_ih_l0"], P["weight_hh_l0"], P["head.weight"], x, y, truncate if truncate else T)
    assert run.loss == pytest.approx(L, rel=1e-12)
    g = run.grads_raw
    np.testing.assert_allclose(g["weight_hh_l0"], dW, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["weight_ih_l0"], dU, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["head.weight"], dV, rtol=1e-10, atol=1e-13)
    # One-hot inputs: each delta lands in exactly one column of dU, so the
    # input-side bias gradient is the sum of dU's columns.
    np.testing.assert_allclose(g["bias_ih_l0"], dU.sum(axis=1), rtol=1e-10, atol=1e-13)


# --- the records: an independent BPTT loop ------------------------------------------------


def independent_bptt(cfg, P, x, targets):
    """Total dL/dh_s (and for lstm dL/dc_s, total) for s = T..0, from SPEC 7 by hand."""
    T = cfg.steps
    hs, cs, _ = forward(cfg, P, x)
    H = cfg.hidden
    Whh = P["weight_hh_l0"]
    b = P["bias_ih_l0"] + P["bias_hh_l0"]
    inject = {}
    for tau in loss_steps(cfg):
        if cfg.mode == "chain":
            inject[tau] = np.ones_like(hs[tau])
            continue
        y = hs[tau] @ P["head.weight"].T + P["head.bias"]
        dy = loss_gradient(cfg.loss, y, targets[tau - 1])
        inject[tau] = dy @ P["head.weight"]
    dh = {T: inject[T]}
    dc = {}
    carry_c = np.zeros_like(hs[T])
    for t in range(T, 0, -1):  # transition t: h_{t-1} -> h_t
        xt, hp, cp = x[t - 1], hs[t - 1], cs[t - 1]
        if cfg.cell == "rnn":
            net = xt @ P["weight_ih_l0"].T + hp @ Whh.T + b
            h = act(cfg.activation, net, cfg.leaky_slope)
            fprime = activation_derivative(cfg.activation, net, h, cfg.leaky_slope)
            back = (dh[t] * fprime) @ Whh
        elif cfg.cell == "lstm":
            a = xt @ P["weight_ih_l0"].T + hp @ Whh.T + b
            i, f, g, o = sig(a[:, :H]), sig(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), sig(a[:, 3 * H :])
            tc = np.tanh(cs[t])
            dc_total = carry_c + dh[t] * o * (1 - tc**2)  # dL/dc_t, every path
            dc[t] = dc_total
            da = np.concatenate([dc_total * g * i * (1 - i), dc_total * cp * f * (1 - f), dc_total * i * (1 - g**2), dh[t] * tc * o * (1 - o)], axis=1)
            back = da @ Whh
            carry_c = dc_total * f
        else:
            gi = xt @ P["weight_ih_l0"].T + P["bias_ih_l0"]
            gh = hp @ Whh.T + P["bias_hh_l0"]
            r = sig(gi[:, :H] + gh[:, :H])
            z = sig(gi[:, H : 2 * H] + gh[:, H : 2 * H])
            n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
            dn = dh[t] * (1 - z) * (1 - n**2)
            dgh = np.concatenate([dn * gh[:, 2 * H :] * r * (1 - r), dh[t] * (hp - n) * z * (1 - z), dn * r], axis=1)
            back = dh[t] * z + dgh @ Whh
        dh[t - 1] = back + inject.get(t - 1, 0.0)
    if cfg.cell == "lstm":
        dc[0] = carry_c  # h_0 is given, not o * tanh(c_0): only the c_1 path
    return dh, dc


RECORD_CONFIGS = [
    Config(cell="rnn", hidden=8, batch=3, steps=30, input_size=3, output_size=2, loss="mse", loss_on="all", init="xavier", scale=1.3, seed=11),
    Config(cell="rnn", activation="relu", hidden=6, batch=2, steps=20, input_size=2, output_size=3, loss="xent", loss_on="last", init="identity", seed=5),
    Config(cell="lstm", hidden=6, batch=2, steps=25, input_size=3, output_size=3, loss="xent", loss_on="all", forget_bias=2.0, init="orthogonal", seed=4),
    Config(cell="lstm", hidden=5, batch=3, steps=15, input_size=2, output_size=2, loss="mse", loss_on="last", init="torch", seed=9),
    Config(cell="gru", hidden=5, batch=2, steps=20, input_size=2, output_size=2, loss="mse", loss_on="all", init="xavier", seed=2),
]


@pytest.mark.parametrize("cfg", RECORD_CONFIGS, ids=lambda c: f"{c.cell}-{c.activation}-{c.loss}-{c.loss_on}")
def test_record_norms_match_an_independent_bptt_loop(cfg):
    run = Run(cfg)
    run.run()
    dh, _ = independent_bptt(cfg, run.params, run.inputs, run.targets)
    T, N = cfg.steps, cfg.batch
    expected = np.array([np.linalg.norm(dh[T - k]) / N for k in range(1, T + 1)])
    np.testing.assert_allclose(run.records.columns["grad_norm"], expected, rtol=1e-10, atol=1e-300)
    assert run.start_norm == pytest.approx(np.linalg.norm(dh[T]) / N, rel=1e-12)
    assert run.summary()["start_norm"] == run.start_norm
    ratios = expected / np.concatenate([[np.linalg.norm(dh[T]) / N], expected[:-1]])
    np.testing.assert_allclose(run.records.columns["ratio"], ratios, rtol=1e-10)
    assert [run.records[k].t for k in (1, T)] == [T - 1, 0]


# --- the LSTM cell-state gradient --------------------------------------------------------


def cell_state_gradient_fd(cfg, P, x, targets, s, eps=1e-6):
    """dL/dc_s by central differences: perturb c_s, recompute h_s = o_s * tanh(c_s)
    (o_s does not depend on c_s), rerun the forward from step s. For s = 0 the
    initial h_0 = 0 is given, not a function of c_0."""
    H = cfg.hidden
    hs, cs, _ = forward(cfg, P, x)
    if s > 0:
        a = x[s - 1] @ P["weight_ih_l0"].T + P["bias_ih_l0"] + hs[s - 1] @ P["weight_hh_l0"].T + P["bias_hh_l0"]
        o = sig(a[:, 3 * H :])
        np.testing.assert_allclose(o * np.tanh(cs[s]), hs[s], rtol=1e-12, atol=1e-15)

    def later_loss(c):
        h = o * np.tanh(c) if s > 0 else hs[0]
        hq, _, _ = forward(cfg, P, x, start=s, h0=h, c0=c)
        return sum(output_loss(cfg, P, hq[tau], tau, targets) for tau in loss_steps(cfg) if tau >= s)

    g = np.zeros_like(cs[s])
    for idx in np.ndindex(g.shape):
        up, down = cs[s].copy(), cs[s].copy()
        up[idx] += eps
        down[idx] -= eps
        g[idx] = (later_loss(up) - later_loss(down)) / (2 * eps)
    return g


LSTM_CONFIGS = [c for c in RECORD_CONFIGS if c.cell == "lstm"]


@pytest.mark.parametrize("cfg", LSTM_CONFIGS, ids=lambda c: f"{c.loss}-{c.loss_on}")
def test_lstm_cell_norm_of_c0_is_the_cell_state_gradient(cfg):
    """Record k = T: dL/dc_0 (h_0 is given, so c_0 reaches the loss only through c_1).
    Also validates the independent loop's dL/dc_s against finite differences."""
    run = Run(cfg)
    run.run()
    g = cell_state_gradient_fd(cfg, run.params, run.inputs, run.targets, 0)
    assert run.records.columns["cell_norm"][-1] == pytest.approx(np.linalg.norm(g) / cfg.batch, rel=1e-6, abs=1e-9)
    # The expectation of the next test: the total derivative dL/dc_s, computed
    # by the independent loop, is what finite differences on c_s give.
    _, dc = independent_bptt(cfg, run.params, run.inputs, run.targets)
    np.testing.assert_allclose(dc[0], g, rtol=1e-6, atol=1e-9)
    T = cfg.steps
    for s in (T - 1, T // 2, 1):
        g = cell_state_gradient_fd(cfg, run.params, run.inputs, run.targets, s)
        np.testing.assert_allclose(dc[s], g, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cfg", LSTM_CONFIGS, ids=lambda c: f"{c.loss}-{c.loss_on}")
def test_lstm_cell_norm_is_the_cell_state_gradient(cfg):
    run = Run(cfg)
    run.run()
    T, N = cfg.steps, cfg.batch
    _, dc = independent_bptt(cfg, run.params, run.inputs, run.targets)
    # dc: the total derivative dL/dc_s (checked against finite differences above).
    expected = np.array([np.linalg.norm(dc[T - k]) / N for k in range(1, T + 1)])
    np.testing.assert_allclose(run.records.columns["cell_norm"], expected, rtol=1e-10)
