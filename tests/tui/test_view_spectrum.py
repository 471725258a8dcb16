"""The spectrum view under Pilot: v opens it over the per-step view and over
the training view, escape (or v) goes back, and the numbers on screen are
numpy's eigenvalues of the parameters on show: the run's, the training's
latest, and at the cursor the parameters update u used, made again here by a
fresh training of the same settings."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Static

from engine import Model
from engine.presets import BUILTIN
from engine.training import Training
from tests.tui.test_app import built
from tests.tui.test_training_view import SGD, app_for, settle, take, trained
from tui.app import make_app
from tui.views.spectrum_screen import PlanePlot, SpectrumHelpScreen, SpectrumScreen

pytestmark = pytest.mark.asyncio


def numbers(app) -> str:
    return str(app.screen.query_one("#spec-numbers", Static).render())


async def opened(pilot) -> SpectrumScreen:
    await pilot.press("v")
    await settle(pilot, lambda: isinstance(pilot.app.screen, SpectrumScreen) and pilot.app.screen.shown is not None)
    await pilot.pause()
    return pilot.app.screen


async def test_v_opens_the_eigenvalues_of_the_run_and_escape_returns():
    app = make_app("sigmoid-quarter")
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        before = app.screen
        screen = await opened(pilot)
        W = app.engine_run.params["weight_hh_l0"]
        radius = max(abs(np.linalg.eigvals(W)))
        sigma = np.linalg.norm(W, 2)
        text = numbers(app)
        assert f"radius {radius:.3g}" in text and f"σ_max {sigma:.3g}" in text
        assert f"{int(np.sum(abs(np.linalg.eigvals(W)) > 1))} of 32 outside |λ| = 1" in text
        assert f"σ_max·γ {sigma / 4:.3g}" in text and "vanishing is guaranteed" in text
        assert screen.query_one(PlanePlot).limits[1] > 4  # the 1/gamma = 4 circle is in the picture
        await pilot.press("space")  # the per-step view's keys do not act on the hidden run
        await pilot.pause()
        assert not app.playing and app.shown == 0
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is before
        await opened(pilot)
        await pilot.press("v")
        await pilot.pause()
        assert app.screen is before


async def test_help_and_zoom():
    app = make_app("lstm-cec")
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        screen = await opened(pilot)
        plane = screen.query_one(PlanePlot)
        assert plane.fit  # a gated cell opens fitted to its eigenvalues
        fitted = plane.limits
        await pilot.press("z")
        await pilot.pause()
        assert not plane.fit and plane.limits[1] > fitted[1] and plane.limits[1] > 4
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, SpectrumHelpScreen) and "1/γ" in app.screen.text()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        W = Model.from_config(BUILTIN["lstm-cec"].config).params["weight_hh_l0"]
        H = 32
        for g, gate in enumerate("ifgo"):
            assert f"{gate}: ρ {max(abs(np.linalg.eigvals(W[g * H:(g + 1) * H]))):.3g}" in numbers(app)


async def test_in_the_training_view_it_follows_the_training_and_the_cursor():
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        training_screen = await trained(pilot)
        assert "Eigenvalues" in [command.title for command in training_screen.commands()]  # the palette's entry
        await take(pilot, training_screen, 3)
        screen = await opened(pilot)
        assert "θ_3" in screen.shown.what and "live" in screen.shown.what

        fresh = Training(training_screen.training.config, SGD)  # the same settings, trained again here

        def radius_after(n: int) -> float:
            while fresh.u < n:
                fresh.step()
            return max(abs(np.linalg.eigvals(fresh.model.params["weight_hh_l0"])))

        assert f"radius {radius_after(3):.3g}" in numbers(app)
        await pilot.press("n")  # one more update, taken by the training view
        await settle(pilot, lambda: training_screen.count == 4 and "θ_4" in screen.shown.what)
        assert f"radius {radius_after(4):.3g}" in numbers(app)
        assert screen.shown.spectrum.radius == pytest.approx(radius_after(4), rel=1e-12)
        await pilot.press("b")  # the cursor on update 3: theta_2, the parameters it used
        await settle(pilot, lambda: training_screen.cursor == 3 and "cursor" in screen.shown.what)
        fresh = Training(training_screen.training.config, SGD)
        assert screen.shown.spectrum.radius == pytest.approx(radius_after(2), rel=1e-12)
        assert "update 3" in screen.shown.status
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is training_screen


async def test_at_a_cursor_between_checkpoints_the_parameters_are_replayed():
    """Cursor on update 30: theta_29, replayed from the checkpoint at 20 (checkpoint_every 20)."""
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        training_screen = await trained(pilot)
        with training_screen.lock:
            training_screen.training.advance(40)
        assert 29 not in training_screen.training.checkpoints
        training_screen.cursor = 30
        screen = await opened(pilot)
        await settle(pilot, lambda: "cursor" in screen.shown.what)
        fresh = Training(training_screen.training.config, SGD)
        fresh.advance(29)
        W = fresh.model.params["weight_hh_l0"]
        found = np.sort_complex(screen.shown.spectrum.blocks[0].eigenvalues)
        np.testing.assert_allclose(found, np.sort_complex(np.linalg.eigvals(W)), rtol=1e-9, atol=1e-12)


async def test_space_trains_from_the_view_and_the_eigenvalues_follow():
    """space plays the training from the spectrum view; paused, it shows the latest parameters."""
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        training_screen = await trained(pilot)
        screen = await opened(pilot)
        assert "θ_0" in screen.shown.what
        await pilot.press("space")
        await settle(pilot, lambda: training_screen.count >= 10)
        await pilot.press("space")
        await settle(pilot, lambda: not training_screen.playing and f"θ_{training_screen.training.applied}:" in screen.shown.what)
        n = training_screen.training.applied
        assert n >= 10
        fresh = Training(training_screen.training.config, SGD)
        fresh.advance(n)
        W = fresh.model.params["weight_hh_l0"]
        assert screen.shown.spectrum.radius == pytest.approx(max(abs(np.linalg.eigvals(W))), rel=1e-12)
