"""The verdict: what sigma_max(W_hh)·gamma says, in words (SPEC section 1).

sigma_max·gamma < 1 is sufficient for vanishing (Pascanu, Mikolov and
Bengio), not necessary; for a linear chain the spectral radius decides
(SPEC section 2: sigma_max = 1.33, radius 0.63, it vanishes). Expected
values come from numpy's SVD and eigenvalues of the run's own weights and
from SPEC 1's gamma table.
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import Run
from engine.presets import BUILTIN
from tests.reference import section_2
from tui.cli import app
from tui.format import verdict, verdict_sentences

GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "leaky_relu": 1.0, "linear": 1.0}  # SPEC 1
DASHBOARD_LINE = 78  # the summary bar at 80 columns, padding 1 on each side

runner = CliRunner()


def verdict_block(stdout: str) -> list[str]:
    """The CLI summary's verdict: its first line and the indented lines under it."""
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("verdict"))
    block = [lines[at][len("verdict") :].strip()]
    for line in lines[at + 1 :]:
        if not line.startswith(" " * 18):
            break
        block.append(line.strip())
    return block


def finished(name: str) -> Run:
    run = Run(BUILTIN[name].config)
    run.run()
    return run


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_preset_gets_the_verdict_its_weights_call_for(name):
    run = finished(name)
    c = run.config
    text = verdict(run.live())
    if c.cell in ("lstm", "gru"):
        assert text.startswith("gated cell: the bound sigma_max·gamma does not apply."), text
        return
    W = run.params["weight_hh_l0"]
    W = np.diag(W) if W.ndim == 1 else W  # IndRNN: u is the diagonal of its recurrent matrix
    sigma = np.linalg.svd(W, compute_uv=False)[0]
    radius = np.max(np.abs(np.linalg.eigvals(W)))
    product = sigma * GAMMA[c.activation]
    if product < 1 - 1e-12:
        assert text.startswith("vanishing guaranteed: sigma_max·gamma = "), text
        assert "Sufficient for every input" in text
        return
    assert "< 1 is sufficient for vanishing, not necessary." in text
    if c.activation == "linear":
        word = "vanishes" if radius < 1 else "explodes"
        sign = "<" if radius < 1 else ">"
        assert text.startswith(f"{word}: linear chain, spectral radius {radius:.3g} {sign} 1 decides."), text
    else:
        assert text.startswith("vanishing not guaranteed: sigma_max·gamma = "), text
        assert "spectral radius" not in text  # f' changes from step to step: the radius decides nothing


def test_seed_vanish_says_that_the_radius_decides():
    """The issue's case: sigma_max = 1.33 > 1 beside a vanishing curve."""
    Wh = section_2(0.5).Wh
    sigma, radius = np.linalg.svd(Wh, compute_uv=False)[0], np.max(np.abs(np.linalg.eigvals(Wh)))
    result = runner.invoke(app, ["run", "seed-vanish"])
    assert result.exit_code == 0
    assert verdict_block(result.stdout) == [
        f"vanishes: linear chain, spectral radius {radius:.3g} < 1 decides.",
        f"sigma_max·gamma = {sigma:.3g}·1 = {sigma:.3g} > 1 guarantees nothing:",
        "< 1 is sufficient for vanishing, not necessary.",
    ]


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_the_decisive_sentence_fits_the_dashboard_line(name):
    run = Run(BUILTIN[name].config)
    run.advance(run.T // 2)  # the dashboard shows verdict(run.live(k)) at any k
    first = verdict_sentences(run.live(run.k))[0]
    assert len(first) <= DASHBOARD_LINE, first
    assert verdict(run.live(run.k)) == verdict(run.summary())  # the dashboard and the CLI agree


@pytest.mark.parametrize("scale, sign", [(0.9996, "<"), (1.0004, ">")])
def test_the_verdict_never_prints_one_below_one(scale, sign):
    """orthogonal W times `scale` has every singular value equal to `scale`."""
    result = runner.invoke(app, ["run", "orthogonal", "--scale", str(scale)])
    block = verdict_block(result.stdout)
    assert any(f"sigma_max·gamma = {scale:g}·1 = {scale:g} {sign} 1" in line for line in block), block  # never split
    assert not any("1 < 1" in line or "1 > 1" in line for line in block)


def chain_facts(radius: float, sigma: float = 1.5) -> dict:
    return {"sigma_gamma": sigma, "gamma": 1.0, "sigma_max": sigma, "spectral_radius": radius, "linear_chain": True}


@pytest.mark.parametrize(
    "radius, first",
    [
        (0.99996, "vanishes: linear chain, spectral radius 0.99996 < 1 decides."),
        (1.00004, "explodes: linear chain, spectral radius 1.00004 > 1 decides."),
        (1.0 + 1e-13, "neither vanishes nor explodes geometrically: linear chain, spectral radius 1."),
    ],
)
def test_the_radius_sits_on_its_side_of_one(radius, first):
    assert verdict_sentences(chain_facts(radius))[0] == first


def test_without_a_linear_chain_the_radius_is_not_the_verdict():
    facts = {**chain_facts(0.5), "linear_chain": False}
    assert verdict_sentences(facts) == ["vanishing not guaranteed: sigma_max·gamma = 1.5·1 = 1.5 > 1.", "< 1 is sufficient for vanishing, not necessary."]
