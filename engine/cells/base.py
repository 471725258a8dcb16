"""What a cell is: everything the rest of the engine and the front ends ask of it.

A cell declares its gates, its keep gate, gamma, the memory its forward pass
keeps per step and its parameter shapes; it runs the forward pass over the
whole sequence, one backward step (`propagate`), and gives the terms that
step adds to the parameter gradients (`accumulate`, beside the forward, as
micrograd keeps `_backward` beside its op). Config, the weights, the
diagnostics, the CLI and the dashboard read these declarations; none of them
tests a cell by its name.

Time index: h[0] is the initial state, h[t] the state after input x[t-1];
transition t maps h[t-1] to h[t], t = 1..T.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np

SATURATED = 0.05  # a derivative below 5% of its largest value counts as saturated


class Transitions(NamedTuple):
    """What the records show about a chunk of S transitions, from the forward pass.

    e, A: the factors of each Jacobian dh_t/dh_{t-1},
    J_n = diag(e_n) + sum_g diag(A_{n,g}) W_g (e None when there is no diagonal term);
    saturation: the fraction of derivatives below 5% of their maximum that are
    not dead (S,): for a ReLU 0 < f' < 5%, so never; a tanh derivative that
    rounds to 0 far in its tail is saturated, not dead;
    dead: the fraction of units with f'(net) = 0 by definition, where the
    activation has a region of zero derivative (a ReLU unit that is off,
    net <= 0), else NaN: does not apply (S,);
    gate_mean: the mean keep gate (S,), NaN for a cell without one.
    """

    e: np.ndarray | None
    A: np.ndarray
    saturation: np.ndarray
    dead: np.ndarray
    gate_mean: np.ndarray


class Cell:
    name: ClassVar[str]
    gates: ClassVar[tuple[str, ...]]  # the row blocks of weight_ih_l0 / weight_hh_l0, in order
    gate_activations: ClassVar[tuple[str, ...] | None] = None  # fixed per gate (LSTM, GRU); None: the configured activation
    keep_gate: ClassVar[str | None] = None  # the gate whose bias is forget_bias (LSTM f, GRU z)
    keep_label: ClassVar[str | None] = None  # how the front ends name its mean ("forget f")
    has_cell_state: ClassVar[bool] = False
    uses_activation: ClassVar[bool] = False  # takes --activation (else fixed sigmoid/tanh gates)
    floats_per_step: ClassVar[int]  # forward caches per step and batch element, in units of H

    # Called as progress(t, T) about a hundred times during the forward pass,
    # when set; whatever it raises stops the pass (a front end cancelling a build).
    progress = None

    # -- declarations ------------------------------------------------------------

    @classmethod
    def param_shapes(cls, H: int, D: int) -> dict[str, tuple[int, ...]]:
        """The recurrent layer's parameters in PyTorch's layout (SPEC section 7)."""
        G = len(cls.gates)
        return {"weight_ih_l0": (G * H, D), "weight_hh_l0": (G * H, H), "bias_ih_l0": (G * H,), "bias_hh_l0": (G * H,)}

    @classmethod
    def gamma(cls, activation: str) -> float | None:
        """sup |f'| of the activation (SPEC section 1); None for gated cells, whose bound does not apply."""
        return None

    @classmethod
    def counts_dead(cls, activation: str, slope: float) -> bool:
        """Whether the `dead` record applies: the activation has a region where
        f'(net) = 0 by definition (a ReLU unit that is off), counted apart from
        the saturated units (f' small but not 0 by definition)."""
        return False

    @classmethod
    def linear_chain(cls, activation: str, slope: float) -> bool:
        """Whether every step's Jacobian is the same matrix (the recurrent weight):
        then a gradient k steps back is multiplied by its k-th power, and the
        spectral radius decides whether it vanishes or explodes (SPEC 1, 2)."""
        return False

    @classmethod
    def recurrent_blocks(cls, W_hh: np.ndarray) -> np.ndarray:
        """weight_hh_l0 as its square H x H gate blocks, (G, H, H): what the spectrum is taken of."""
        H = W_hh.shape[1]
        return W_hh.reshape(len(cls.gates), H, H)

    @classmethod
    def block_activations(cls, activation: str) -> tuple[str, ...]:
        """The nonlinearity each gate block's pre-activation goes through, in
        gate order (what bounds that block's own path: gamma of it, SPEC 1)."""
        return cls.gate_activations or (activation,) * len(cls.gates)

    @classmethod
    def recurrent_from(cls, blocks: np.ndarray) -> np.ndarray:
        """weight_hh_l0 from the (G*H, H) square blocks an --init draws (most cells: all of it)."""
        return blocks

    @classmethod
    def keep_rows(cls, H: int) -> slice | None:
        """The rows of the biases that belong to the keep gate."""
        if cls.keep_gate is None:
            return None
        g = cls.gates.index(cls.keep_gate)
        return slice(g * H, (g + 1) * H)

    def timesteps(self, T: int):
        """range(T) for the forward loop, telling `progress` how far it is."""
        if self.progress is None:
            yield from range(T)
            return
        every = max(1, T // 100)
        for t in range(T):
            if t % every == 0:
                self.progress(t, T)
            yield t
        self.progress(T, T)

    # -- the parameter-gradient terms --------------------------------------------

    def accumulate(self, grads: dict[str, np.ndarray], d_ih: np.ndarray, d_hh: np.ndarray, x_prev: np.ndarray, h_prev: np.ndarray, term: np.ndarray) -> np.ndarray:
        """Add transition t's terms (SPEC 1: dW += delta^T h_{t-1}); `term` receives
        the dW_hh term, which is returned. d_ih, d_hh: (N, G*H) = dL/dnet_t."""
        np.matmul(d_hh.T, h_prev, out=term)
        grads["weight_hh_l0"] += term
        grads["weight_ih_l0"] += d_ih.T @ x_prev
        grads["bias_ih_l0"] += d_ih.sum(axis=0)
        grads["bias_hh_l0"] += d_hh.sum(axis=0)
        return term

    def accumulate_all(self, d_ih: np.ndarray, d_hh: np.ndarray, x: np.ndarray, h_prev: np.ndarray) -> dict[str, np.ndarray]:
        """The same terms summed over every step at once: d_*: (T*N, G*H), x: (T*N, D), h_prev: (T*N, H)."""
        return {"weight_ih_l0": d_ih.T @ x, "weight_hh_l0": d_hh.T @ h_prev, "bias_ih_l0": d_ih.sum(axis=0), "bias_hh_l0": d_hh.sum(axis=0)}
