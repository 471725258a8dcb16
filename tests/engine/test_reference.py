"""SPEC section 2: the reference matrix-chain experiment, reproduced exactly.

The expected numbers come from the suite's one literal transcription of the
SPEC's pseudo-code (legacy global generator, numpy.random.seed(3), randn),
tests/reference.py's `section_2`; the engine must give the same record norms
to round-off.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import Config, Run
from engine.presets import BUILTIN
from tests.reference import section_2

CHAIN = dict(mode="chain", activation="linear", hidden=3, batch=2, steps=20, init="gaussian", seed=3)


def spec_section_2(factor: float) -> tuple[np.ndarray, np.ndarray]:
    """SPEC section 2 as written (N = 2, H = 3, T = 20). Returns (Wh, norms[1..T])."""
    Wh, _, norms = section_2(factor)
    return Wh, norms


def test_transcription_leaves_global_random_state_alone():
    np.random.seed(12345)
    expected_next = np.random.RandomState()
    expected_next.set_state(np.random.get_state())
    spec_section_2(1.0)
    assert np.random.randn() == expected_next.randn()


@pytest.mark.parametrize("factor", [1.0, 0.5], ids=["explode", "vanish-0.5"])
def test_engine_reproduces_spec_section_2(factor):
    Wh, expected = spec_section_2(factor)
    run = Run(Config(**CHAIN, scale=factor))
    run.run()
    got = run.records.columns["grad_norm"]
    assert got.shape == (20,)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    # SPEC 7: weight_hh_l0 is the source's Wh transposed.
    np.testing.assert_allclose(run.params["weight_hh_l0"], Wh.T, rtol=1e-15, atol=0)
    # Record k is the norm after k multiplications; step() returns the same.
    run.reset()
    for k in range(1, 21):
        rec = run.step()
        assert rec.k == k
        assert rec.grad_norm == pytest.approx(expected[k - 1], rel=1e-12)


def test_reference_outcome_is_what_the_spec_says():
    """The unscaled draw explodes, the 0.5-scaled one vanishes (SPEC 2)."""
    _, explode = spec_section_2(1.0)
    _, vanish = spec_section_2(0.5)
    start = np.sqrt(2 * 3) / 2
    assert explode[-1] > 100 * start
    assert vanish[-1] < 1e-2 * start
    run = Run(Config(**CHAIN))
    assert run.run()["regime"] == "exploding"
    run = Run(Config(**CHAIN, scale=0.5))
    assert run.run()["regime"] == "vanishing"


@pytest.mark.parametrize("name, factor", [("seed-explode", 1.0), ("seed-vanish", 0.5)])
def test_builtin_presets_are_the_reference_experiment(name, factor):
    _, expected = spec_section_2(factor)
    run = Run(BUILTIN[name].config)
    run.run()
    np.testing.assert_allclose(run.records.columns["grad_norm"], expected, rtol=1e-12, atol=0)
    assert run.config.mode == "chain"
    assert (run.config.hidden, run.config.batch, run.config.steps) == (3, 2, 20)


def test_vanishing_variant_facts():
    """SPEC 1/2: the 0.5 variant has sigma_max = 1.33 yet vanishes, because rho = 0.63."""
    Wh, _ = spec_section_2(0.5)
    # Independent check of the stated facts on the transcribed Wh.
    assert round(float(np.linalg.svd(Wh, compute_uv=False)[0]), 2) == 1.33
    assert round(float(np.max(np.abs(np.linalg.eigvals(Wh)))), 2) == 0.63
    for config in (Config(**CHAIN, scale=0.5), BUILTIN["seed-vanish"].config):
        summary = Run(config).run()
        assert round(summary["sigma_max"], 2) == 1.33
        assert round(summary["spectral_radius"], 2) == 0.63


def test_exploding_reference_facts():
    """The preset's own claim: sigma_max 2.66, spectral radius 1.26 (twice the 0.5 variant)."""
    Wh, _ = spec_section_2(1.0)
    summary = Run(BUILTIN["seed-explode"].config).run()
    assert summary["sigma_max"] == pytest.approx(np.linalg.svd(Wh, compute_uv=False)[0], rel=1e-12)
    assert summary["spectral_radius"] == pytest.approx(np.max(np.abs(np.linalg.eigvals(Wh))), rel=1e-12)
    assert round(summary["sigma_max"], 2) == 2.66
    assert round(summary["spectral_radius"], 2) == 1.26
