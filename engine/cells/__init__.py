"""Recurrent cells in PyTorch's layout (SPEC section 7).

Each cell runs the whole forward pass (`forward`) and then one backward
timestep at a time (`propagate`). `transitions(lo, hi)` describes a chunk of
transitions for the records: saturation, gate means, and the Jacobian
dh_t/dh_{t-1} in the factored form

    J_n = diag(e_n) + sum_g diag(A_{n,g}) W_g        (W_g: gate block g of weight_hh_l0)

which the diagnostics use without forming J for large H.

Time index: h[0] is the initial state, h[t] the state after input x[t-1];
transition t maps h[t-1] to h[t], t = 1..T.
"""

from __future__ import annotations

from .gru import GRUCell
from .indrnn import IndRNNCell
from .lstm import LSTMCell
from .rnn import RNNCell

CELLS = {cell.name: cell for cell in (RNNCell, LSTMCell, GRUCell, IndRNNCell)}

__all__ = ["CELLS", "GRUCell", "IndRNNCell", "LSTMCell", "RNNCell"]
