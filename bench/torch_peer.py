"""The PEER: PyTorch autograd computing what `Run` computes, for the benchmark.

torch.nn.RNN (tanh) / nn.LSTM / nn.GRU, one layer, time-major (batch_first
False), float64, with an nn.Linear head, loaded with the engine's parameters,
inputs and targets (copied in once, before any timing). One `step()` is what
the benchmark times: the forward pass, the mse loss on the last step (mean over
batch and outputs, as the engine's default Config) and the autograd backward
pass. The gradients are dropped before each step (outside the timing), so every
step allocates and fills them afresh, as a training loop with
`zero_grad(set_to_none=True)` does.

Imports torch: only `make bench` installs it (the optional `bench` extra).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Peer"]

_MODULES = {
    "rnn": lambda d, h: torch.nn.RNN(d, h, num_layers=1, nonlinearity="tanh", batch_first=False, dtype=torch.float64),
    "lstm": lambda d, h: torch.nn.LSTM(d, h, num_layers=1, batch_first=False, dtype=torch.float64),
    "gru": lambda d, h: torch.nn.GRU(d, h, num_layers=1, batch_first=False, dtype=torch.float64),
}
_RECURRENT = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class Peer:
    """cell: 'rnn' (tanh), 'lstm' or 'gru'; params by the engine's (= PyTorch's) names;
    inputs (T, N, D); targets (T, N, K), of which the last step carries the loss."""

    def __init__(self, cell: str, params: dict[str, np.ndarray], inputs: np.ndarray, targets: np.ndarray):
        H, D = params["weight_hh_l0"].shape[1], params["weight_ih_l0"].shape[1]
        K = params["head.weight"].shape[0]
        self.rnn = _MODULES[cell](D, H)
        self.head = torch.nn.Linear(H, K, dtype=torch.float64)
        self.named = {name: getattr(self.rnn, name) for name in _RECURRENT}
        self.named["head.weight"], self.named["head.bias"] = self.head.weight, self.head.bias
        if set(self.named) != set(params):
            raise ValueError(f"peer parameters {sorted(self.named)} != engine parameters {sorted(params)}")
        with torch.no_grad():
            for name, p in self.named.items():
                p.copy_(torch.from_numpy(np.asarray(params[name], dtype=np.float64)))
        self.x = torch.tensor(np.asarray(inputs, dtype=np.float64))
        self.y = torch.tensor(np.asarray(targets[-1], dtype=np.float64))

    def zero_grad(self) -> None:
        for p in self.named.values():
            p.grad = None

    def step(self) -> float:
        """Forward, loss, backward; returns the loss. Call zero_grad() first."""
        out, _ = self.rnn(self.x)
        loss = torch.nn.functional.mse_loss(self.head(out[-1]), self.y)
        loss.backward()
        return float(loss.item())

    def grads(self) -> dict[str, np.ndarray]:
        return {name: p.grad.detach().numpy().copy() for name, p in self.named.items()}
