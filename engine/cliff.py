"""The one-unit model of SPEC section 9 (Pascanu, Mikolov and Bengio 2013, sections 2.2-2.3): the cliff.

    x_t = w sigma(x_{t-1}) + b,   x_0 = 0.5,   t = 1..T (T = 50)
    E   = (sigma(x_T) - 0.7)^2

Two parameters, so the whole error surface over (w, b) can be computed:

    surface = error_surface((2, 8), (-6, 0), 121)   # E, dE/dw, dE/db on a grid, vectorised
    branches = bifurcation(5.0, (-3.5, -1.5), 400)   # the fixed points x* against b
    saddle_nodes(5.0)                                # where they are born and die
    sgd((5.0, -2.6), lr, steps, clip_threshold)     # a trajectory on the surface

The gradient is the model's own BPTT (backward through the T steps, the
whole grid at once): with g_t = dE/dx_t,

    g_T     = 2 (sigma(x_T) - 0.7) sigma'(x_T)
    dE/dw  += g_t sigma(x_{t-1});  dE/db += g_t
    g_{t-1} = g_t w sigma'(x_{t-1})                      (the one-unit Jacobian)

Clipping is SPEC section 3's global-norm rule (engine/clipping/norm.py) on
the two gradients; the SGD step is torch.optim.SGD's without momentum.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .activations import sigmoid, sigmoid_pair
from .clipping import make_rule
from .config import ConfigError
from .norms import joint_norm

X0, STEPS, TARGET = 0.5, 50, 0.7
LIMIT = 1e3  # |w|, |b|, lr and the threshold: beyond, x_t and the gradient are past any picture
MAX_GRID, MAX_STEPS = 1000, 10_000
_CHUNK = 1 << 15  # grid points a forward/backward pass holds at once: 2 x T x 32k floats, ~26 MB


def error_and_gradient(w, b, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E_T and (dE/dw, dE/db) at every (w, b) (broadcast arrays), by BPTT.

    Forward: s_t = sigma(x_t) and sigma'(x_t) = s_t (1 - s_t) for t = 0..T-1
    are kept (2 T arrays of the grid's shape); backward as in the module's
    docstring."""
    w, b = np.broadcast_arrays(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
    shape = w.shape
    w, b = w.ravel(), b.ravel()
    out = [np.empty(w.size) for _ in range(3)]
    for lo in range(0, w.size, _CHUNK):
        part = slice(lo, lo + _CHUNK)
        for arr, value in zip(out, _bptt(w[part], b[part], steps)):
            arr[part] = value
    return tuple(arr.reshape(shape) for arr in out)


def _bptt(w: np.ndarray, b: np.ndarray, steps: int):
    """E, dE/dw, dE/db for 1-d arrays w, b."""
    s = np.empty((steps + 1, w.size))  # s[t] = sigma(x_t)
    ds = np.empty((steps + 1, w.size))  # ds[t] = sigma'(x_t)
    x = np.full(w.size, X0)
    for t in range(steps + 1):
        s[t], c = sigmoid_pair(x)
        ds[t] = s[t] * c
        if t < steps:
            x = w * s[t] + b
    err = s[steps] - TARGET
    g = 2.0 * err * ds[steps]  # dE/dx_T
    dw, db = np.zeros(w.size), np.zeros(w.size)
    for t in range(steps, 0, -1):
        dw += g * s[t - 1]
        db += g
        g = g * w * ds[t - 1]  # dE/dx_{t-1}
    return err * err, dw, db


@dataclass(frozen=True)
class Surface:
    """E_T and its gradient on a grid: w (nw,), b (nb,); every other array (nw, nb), [i, j] at (w_i, b_j)."""

    w: np.ndarray
    b: np.ndarray
    E: np.ndarray
    dE_dw: np.ndarray
    dE_db: np.ndarray

    @property
    def grad_norm(self) -> np.ndarray:
        return np.hypot(self.dE_dw, self.dE_db)

    def wall(self) -> tuple[float, float, float, float]:
        """(w, b, |grad|, E) of the grid point where |grad| is largest: the cliff's wall."""
        norm = self.grad_norm
        i, j = np.unravel_index(int(np.argmax(norm)), norm.shape)
        return float(self.w[i]), float(self.b[j]), float(norm[i, j]), float(self.E[i, j])


def error_surface(w_range: tuple[float, float], b_range: tuple[float, float], n: int, steps: int = STEPS) -> Surface:
    """E_T, dE/dw and dE/db on an n x n grid of (w, b), ends included."""
    w = np.linspace(*w_range, n)
    b = np.linspace(*b_range, n)
    E, dw, db = error_and_gradient(w[:, None], b[None, :], steps)
    return Surface(w, b, E, dw, db)


# -- fixed points and their bifurcation -------------------------------------------------


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def critical_points(w: float) -> tuple[float, ...]:
    """Where w sigma'(x) = 1 (w > 4 only): sigma(x) = (1 -+ sqrt(1 - 4/w)) / 2.
    g(x) = w sigma(x) + b - x is monotone between them, so each piece holds at most one fixed point."""
    if w <= 4.0:
        return ()
    root = math.sqrt(1.0 - 4.0 / w)
    return (_logit((1.0 - root) / 2.0), _logit((1.0 + root) / 2.0))


def saddle_nodes(w: float = 5.0) -> tuple[tuple[float, float], ...]:
    """(b, x*) where two fixed points are born or die: w sigma'(x*) = 1, b = x* - w sigma(x*).
    Increasing order of b; none for w <= 4 (the map has one fixed point for every b)."""
    return tuple(sorted((x - w * float(sigmoid(x)), x) for x in critical_points(w)))


def fixed_points(w: float, b) -> np.ndarray:
    """The fixed points x* = w sigma(x*) + b, shape (len(b), 3), NaN where a branch
    has none, increasing along each row. Every fixed point lies in
    [b + min(0, w), b + max(0, w)]; cut there at the critical points, g is
    monotone on each piece and a sign change brackets its one root, found by
    bisection to round-off (vectorised over b)."""
    b = np.atleast_1d(np.asarray(b, dtype=np.float64))
    cuts = [b + min(0.0, w) - 1.0, *(np.full_like(b, c) for c in critical_points(w)), b + max(0.0, w) + 1.0]
    roots = np.full((b.size, 3), np.nan)
    for k, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        roots[:, k] = _bisect(w, b, np.minimum(lo, hi), np.maximum(lo, hi))
    return roots


def _bisect(w: float, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The root of g(x) = w sigma(x) + b - x in [lo, hi] where g changes sign; NaN elsewhere."""

    def g(x):
        return w * sigmoid(x) + b - x

    glo, ghi = g(lo), g(hi)
    found = (np.sign(glo) * np.sign(ghi)) <= 0
    lo, hi = lo.copy(), hi.copy()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        gm = g(mid)
        left = np.sign(gm) == np.sign(glo)
        lo = np.where(left, mid, lo)
        glo = np.where(left, gm, glo)
        hi = np.where(left, hi, mid)
        if np.all(hi - lo <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(lo))):
            break
    return np.where(found, 0.5 * (lo + hi), np.nan)


def is_stable(w: float, x) -> np.ndarray:
    """|w sigma'(x*)| < 1: the map contracts near x*."""
    s, c = sigmoid_pair(np.asarray(x, dtype=np.float64))
    return np.abs(w * s * c) < 1.0


@dataclass(frozen=True)
class Bifurcation:
    """The fixed points against b for one w: x (len(b), 3) NaN where none, stable alike (False where none)."""

    w: float
    b: np.ndarray
    x: np.ndarray
    stable: np.ndarray
    saddle_nodes: tuple[tuple[float, float], ...]


def bifurcation(w: float, b_range: tuple[float, float], n: int) -> Bifurcation:
    b = np.linspace(*b_range, n)
    x = fixed_points(w, b)
    stable = np.where(np.isnan(x), False, is_stable(w, np.nan_to_num(x)))
    return Bifurcation(w, b, x, stable, saddle_nodes(w))


# -- SGD on the surface, with and without norm clipping -----------------------------------


@dataclass(frozen=True)
class Trajectory:
    """SGD from `start`: points (steps + 1, 2) as (w, b); E, the raw |grad| at each point;
    per step the length of the step taken and whether it was clipped."""

    clip_threshold: float | None
    points: np.ndarray
    E: np.ndarray
    grad_norm: np.ndarray
    step_length: np.ndarray
    clipped: np.ndarray

    def first_step(self) -> float:
        return float(self.step_length[0])


def sgd(start: tuple[float, float], lr: float, steps: int, clip_threshold: float | None = None) -> Trajectory:
    """`steps` SGD steps theta <- theta - lr g from `start`, g clipped first by
    SPEC section 3's norm rule when `clip_threshold` is given."""
    rule = make_rule("norm", clip_threshold) if clip_threshold is not None else None
    theta = np.array(start, dtype=np.float64)
    points, E, norms, lengths, clipped = [theta.copy()], [], [], [], []
    for _ in range(steps + 1):
        e, dw, db = (float(v) for v in error_and_gradient(theta[0], theta[1]))
        E.append(e)
        norms.append(joint_norm([abs(dw), abs(db)]))
        if len(points) > steps:
            break
        grads = {"w": np.array([dw]), "b": np.array([db])}
        clipped.append(rule.apply(grads, {}) if rule is not None else False)
        move = -lr * np.array([grads["w"][0], grads["b"][0]])
        theta = theta + move
        lengths.append(float(np.hypot(*move)))
        points.append(theta.copy())
    return Trajectory(clip_threshold, np.array(points), np.array(E), np.array(norms), np.array(lengths), np.array(clipped, dtype=bool))


# -- the named setting the view and the command show, and the sentence it proves ------------


@dataclass(frozen=True)
class CliffSetting:
    """What the cliff view draws: the grid, the bifurcation's w, and the two SGD runs.

    The cliff does not run on a Config (it has two parameters and no data), so
    instead of a preset it has this setting, whose `look_for` sentence makes
    claims a test checks on its own transcription of the model."""

    name: str
    description: str
    look_for: str
    w_range: tuple[float, float] = (2.0, 8.0)
    b_range: tuple[float, float] = (-6.0, 0.0)
    grid: int = 121
    bifurcation_w: float = 5.0
    bifurcation_b: tuple[float, float] = (-3.5, -1.5)
    start: tuple[float, float] = (4.9, -2.55)
    lr: float = 0.1
    steps: int = 20
    clip_threshold: float = 1.0

    def __post_init__(self) -> None:
        for name, (lo, hi) in (("w_range", self.w_range), ("b_range", self.b_range), ("bifurcation_b", self.bifurcation_b)):
            if not (math.isfinite(lo) and math.isfinite(hi) and -LIMIT <= lo < hi <= LIMIT):
                raise ConfigError(name, f"{name} must be MIN:MAX with -{LIMIT:g} <= MIN < MAX <= {LIMIT:g}, got {lo:g}:{hi:g}")
        if not all(math.isfinite(v) and abs(v) <= LIMIT for v in (*self.start, self.bifurcation_w)):
            raise ConfigError("start", f"start must be W,B with |W|, |B| <= {LIMIT:g}, got {self.start[0]:g},{self.start[1]:g}")
        for name, lo, hi in (("grid", 2, MAX_GRID), ("steps", 1, MAX_STEPS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(name, f"{name} must be an integer from {lo} to {hi}, got {value!r}")
        for name in ("lr", "clip_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= LIMIT):
                raise ConfigError(name, f"{name} must be a number > 0 and <= {LIMIT:g}, got {value:g}")


# The start is the default grid's point of largest |grad| (its spacing is 0.05:
# w = 2 + 58 x 0.05, b = -6 + 69 x 0.05): on the wall, beside the valley where
# sigma(x_50) passes 0.7. The threshold, 1, is above |grad| on all but 0.15% of
# the grid (the median is 0.019, the 99th percentile 0.47), so it acts only on
# the wall; lr 0.1 then caps a step at 0.1, two grid cells, where the unclipped
# step is lr x 26 = 2.6, fifty-two cells.
CLIFF_DEFAULT = CliffSetting(
    name="cliff",
    description="the one-unit model x_t = w sigma(x_{t-1}) + b (SPEC 9): its error surface E_50, the wall where |grad| is huge, and one SGD start with and without norm clipping",
    look_for=(
        "From (w, b) = (4.9, -2.55), the grid's point of largest |grad| (26.0, E = 0.00015), "
        "one SGD step with lr 0.1 and no clipping is 2.60 long and lands at (6.28, -0.34), "
        "a plateau with E = 0.088 and |grad| = 0.0023, where the next 19 steps move it 0.0043 in all; "
        "with norm clipping at threshold 1 the step is 0.10 long and 20 steps stay within 0.10 of the start, "
        "hopping across the wall (E from 0.0061 to 0.33)."
    ),
)


@dataclass(frozen=True)
class Cliff:
    """Everything the view and the command show for one setting."""

    setting: CliffSetting
    surface: Surface
    bifurcation: Bifurcation
    plain: Trajectory  # SGD without clipping
    clipped: Trajectory  # SGD with norm clipping at setting.clip_threshold


def compute(setting: CliffSetting = CLIFF_DEFAULT, bifurcation_points: int = 401) -> Cliff:
    """The grid, the bifurcation at setting.bifurcation_w and both trajectories.
    The default costs about 0.05 s (the grid's 121 x 121 BPTT passes are most of it)."""
    s = setting
    return Cliff(
        s,
        error_surface(s.w_range, s.b_range, s.grid),
        bifurcation(s.bifurcation_w, s.bifurcation_b, bifurcation_points),
        sgd(s.start, s.lr, s.steps),
        sgd(s.start, s.lr, s.steps, s.clip_threshold),
    )


def story(cliff: Cliff) -> str:
    """What the two trajectories did, in numbers computed here (the setting's
    look_for says the same of the default)."""
    s, plain, clipped = cliff.setting, cliff.plain, cliff.clipped
    w1, b1 = plain.points[1]
    moved = float(np.hypot(*(plain.points[-1] - plain.points[1])))
    reach = float(np.max(np.hypot(*(clipped.points - clipped.points[0]).T)))
    return (
        f"From (w, b) = ({s.start[0]:g}, {s.start[1]:g}) (E = {plain.E[0]:.2g}, |grad| = {plain.grad_norm[0]:.3g}), "
        f"one SGD step with lr {s.lr:g} and no clipping is {plain.first_step():.3g} long and lands at ({w1:.3g}, {b1:.3g}), "
        f"E = {plain.E[1]:.2g}, |grad| = {plain.grad_norm[1]:.2g}; the next {s.steps - 1} steps move it {moved:.2g}. "
        f"With norm clipping at {s.clip_threshold:g} the first step is {clipped.first_step():.3g} long "
        f"and {s.steps} steps stay within {reach:.3g} of the start ({int(clipped.clipped.sum())} clipped)."
    )
