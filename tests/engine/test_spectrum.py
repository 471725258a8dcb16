"""The spectrum view's numbers (engine/spectrum.py) against numpy's own
eigenvalues and singular values of blocks built here by SPEC 7's layout,
SPEC 2's legacy draw, and parameters made again by an independent training.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import Config, Model
from engine.presets import BUILTIN
from engine.spectrum import spectra_over, training_spectrum, weight_spectrum
from engine.training import Training, TrainingSettings
from tests.engine.test_preset_sentences import says

RNG = np.random.default_rng(11)


def same_multiset(found: np.ndarray, expected: np.ndarray, tol: float = 1e-9) -> None:
    """Two sets of complex numbers equal up to order (matched greedily, nearest first)."""
    left = list(np.asarray(expected, dtype=complex))
    assert len(found) == len(left)
    for z in found:
        i = int(np.argmin([abs(z - w) for w in left]))
        assert abs(z - left[i]) <= tol * max(1.0, abs(z)), (z, left[i])
        left.pop(i)


def test_rnn_eigenvalues_are_those_of_the_source_matrix():
    """seed-explode's Wh is randn(3, 3) after numpy.random.seed(3) (SPEC 2), stored transposed:
    the same eigenvalues, largest |lambda| first, and the radius SPEC 2 quotes (~1.26)."""
    np.random.seed(3)
    Wh = np.random.randn(3, 3)
    c = BUILTIN["seed-explode"].config
    s = weight_spectrum(c, Model.from_config(c).params["weight_hh_l0"])
    (b,) = s.blocks
    same_multiset(b.eigenvalues, np.linalg.eigvals(Wh))
    assert np.all(np.diff(np.abs(b.eigenvalues)) <= 1e-12)
    np.testing.assert_allclose(b.singular_values, np.linalg.svd(Wh, compute_uv=False), rtol=1e-12)
    assert s.radius == pytest.approx(max(abs(np.linalg.eigvals(Wh))), rel=1e-12)
    assert round(s.radius, 2) == 1.26 and b.gamma == 1.0 and s.linear
    assert "explodes" in s.verdict()


@pytest.mark.parametrize(
    "cell, gates, gammas",
    [("lstm", "ifgo", (0.25, 0.25, 1.0, 0.25)), ("gru", "rzn", (0.25, 0.25, 1.0))],
)
def test_gated_blocks_follow_the_pytorch_row_order(cell, gates, gammas):
    """weight_hh_l0 = [W_i; W_f; W_g; W_o] (LSTM) or [W_r; W_z; W_n] (GRU), each H x H:
    each block's eigenvalues are those of its own rows; sigmoid gates have gamma 1/4, tanh ones 1."""
    H = 6
    blocks = [RNG.standard_normal((H, H)) * (k + 1) for k in range(len(gates))]
    c = Config(cell=cell, hidden=H)
    s = weight_spectrum(c, np.vstack(blocks))
    assert [b.gate for b in s.blocks] == list(gates)
    assert tuple(b.gamma for b in s.blocks) == gammas
    for b, W in zip(s.blocks, blocks):
        same_multiset(b.eigenvalues, np.linalg.eigvals(W))
        np.testing.assert_allclose(b.singular_values, np.linalg.svd(W, compute_uv=False), rtol=1e-12)
    assert s.radius == pytest.approx(max(max(abs(np.linalg.eigvals(W))) for W in blocks))
    assert s.sigma_max == pytest.approx(max(np.linalg.norm(W, 2) for W in blocks))
    assert s.circles == [1.0, 4.0] and s.gated and "no circle decides" in s.verdict()


def test_indrnn_eigenvalues_are_u_itself():
    u = np.array([0.5, -1.2, 0.9, 1.0, -0.3])
    s = weight_spectrum(Config(cell="indrnn", hidden=5), u)
    (b,) = s.blocks
    np.testing.assert_allclose(np.sort(b.eigenvalues.real), np.sort(u))
    assert np.all(b.eigenvalues.imag == 0)
    np.testing.assert_allclose(b.singular_values, np.sort(np.abs(u))[::-1])
    assert b.outside(1.0) == 1 and s.radius == pytest.approx(1.2)


def test_on_the_circle_is_not_outside_it_and_not_finite_is_said():
    """An orthogonal W's eigenvalues all have |lambda| = 1 up to rounding: none is counted outside."""
    c = BUILTIN["orthogonal"].config
    W = Model.from_config(c).params["weight_hh_l0"]
    b = weight_spectrum(c, W).blocks[0]
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(W)), 1.0, atol=1e-12)
    assert b.outside(1.0) == 0
    bad = W.copy()
    bad[0, 0] = np.nan
    s = weight_spectrum(c, bad)
    assert not s.finite and "not finite" in s.verdict()


def test_sigmoid_quarter_sentence_about_the_eigenvalues():
    """The sentence's v claim: N of H eigenvalues outside the unit circle, every singular value inside 1/gamma."""
    says("sigmoid-quarter", "v: 17 of the 32 eigenvalues lie outside the unit circle", "every singular value inside the 1/γ = 4 circle")
    c = BUILTIN["sigmoid-quarter"].config
    W = Model.from_config(c).params["weight_hh_l0"]
    eig = np.linalg.eigvals(W)
    assert int(np.sum(np.abs(eig) > 1)) == 17 and W.shape == (32, 32)
    assert np.linalg.svd(W, compute_uv=False).max() < 4 and c.activation == "sigmoid"
    s = weight_spectrum(c, W)
    assert s.blocks[0].outside(1.0) == 17 and s.blocks[0].outside(4.0) == 0
    assert "vanishing is guaranteed" in s.verdict()


# -- over a training --------------------------------------------------------------------

SMALL = Config(activation="relu", init="orthogonal", hidden=12, batch=8, steps=15, seed=3)
SGD = TrainingSettings(task="adding", optimizer="sgd", lr=0.3, momentum=0.9, updates=40, eval_every=10, checkpoint_every=8, diagnostics_every=1)


def params_after(n: int, settings: TrainingSettings = SGD) -> np.ndarray:
    """theta_n by a fresh training taking n updates one by one."""
    t = Training(SMALL, settings)
    for _ in range(n):
        t.step()
    return t.model.params["weight_hh_l0"].copy()


def test_training_spectrum_at_an_update_is_of_the_parameters_it_used():
    """At update u: theta_{u-1}, replayed from the checkpoint before it (u - 1 = 13: from 8),
    equal to a fresh training's, and to the radius the records give for u."""
    t = Training(SMALL, SGD)
    t.advance(30)
    for u in (1, 14, 31):
        s = training_spectrum(t, u)
        same_multiset(s.blocks[0].eigenvalues, np.linalg.eigvals(params_after(u - 1)))
        if u <= t.u:
            assert s.radius == pytest.approx(t.records[u].spectral_radius[0], rel=1e-12)
            assert s.sigma_max == pytest.approx(t.records[u].sigma_max[0], rel=1e-12)


def test_spectra_over_updates_and_a_divergence():
    """spectra_over gives theta_{u-1} for each u; after a divergence it stops."""
    got = spectra_over(Training(SMALL, SGD), [1, 5, 41])
    assert [u for u, _ in got] == [1, 5, 41]
    for u, s in got:
        same_multiset(s.blocks[0].eigenvalues, np.linalg.eigvals(params_after(u - 1)))
    wild = TrainingSettings(task="adding", optimizer="sgd", lr=1.0, momentum=0.9, updates=40, eval_every=10)
    t = Training(SMALL.with_overrides(scale=1.5), wild)
    got = spectra_over(t, [1, 16, 17, 40])
    assert t.divergence is not None and t.divergence.u == 16  # theta_15 is the last finite: update 16 used it
    assert [u for u, _ in got] == [1, 16]
    assert got[1][1].finite
