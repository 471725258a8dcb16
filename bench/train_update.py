"""One training update, the engine against PyTorch doing the same.

An update is: the forward pass over a batch of the adding task, the loss,
the backward pass, global-norm clipping at 1.0 and an SGD step (lr 0.01), on
rnn-tanh and lstm at H=128, N=32, T=100, float64.

- ENGINE: `Training.step()` (engine/training.py) with evaluation, checkpoints
  and the spectrum switched off for the timed updates (diagnostics_every 0):
  the forward pass, the staged lean backward pass, the clip rule, the
  optimizer, and its per-update records (loss, norms, reach);
- PYTORCH: the module forward, `mse_loss`, `backward()`,
  `clip_grad_norm_` and `optimizer.step()` (torch.optim.SGD), on the same
  parameters and the same batches.

Before timing, three updates from the same start on the same batches must
leave both with the same parameters (rtol 1e-9), or the comparison means
nothing. Then updates alternate engine, PyTorch, engine, ...; the table shows
the median time per update and the ratio. Threads: as set by the caller
(bench/run_benchmarks.py sets numpy's and torch's alike).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from engine import Config
from engine.training import Training, TrainingSettings

CASES = (("rnn-tanh", "rnn"), ("lstm", "lstm"))
H, N, T = 128, 32, 100
LR, THRESHOLD = 0.01, 1.0
TARGET = 1.0  # engine / PyTorch, reported, never enforced


def settings(updates: int) -> TrainingSettings:
    return TrainingSettings(task="adding", optimizer="sgd", lr=LR, updates=updates, eval_every=updates, checkpoint_every=updates, diagnostics_every=0)


def engine_training(cell: str, updates: int) -> Training:
    config = Config(cell=cell, hidden=H, batch=N, steps=T, seed=3, clip="norm", clip_threshold=THRESHOLD)
    return Training(config, settings(updates))


class TorchTraining:
    """The same model, data and optimizer in PyTorch; step(u) is one update on batch u."""

    def __init__(self, training: Training):
        import torch

        from torch_peer import Peer

        self.torch = torch
        self.training = training
        x, y = training.batch(1)
        self.peer = Peer(training.config.cell, training.model.params, x, y)
        self.params = list(self.peer.named.values())
        self.optimizer = torch.optim.SGD(self.params, lr=LR)

    def step(self, u: int) -> None:
        torch = self.torch
        x, y = self.training.batch(u)
        self.peer.x = torch.from_numpy(x)
        self.peer.y = torch.from_numpy(np.ascontiguousarray(y[-1]))
        self.optimizer.zero_grad(set_to_none=True)
        self.peer.step()
        torch.nn.utils.clip_grad_norm_(self.params, THRESHOLD)
        self.optimizer.step()

    def state(self) -> dict[str, np.ndarray]:
        return {name: p.detach().numpy().copy() for name, p in self.peer.named.items()}


def bench_case(name: str, cell: str, repeats: int) -> dict:
    total = 3 + 2 * repeats + 2
    engine = engine_training(cell, total)
    peer = TorchTraining(engine)
    for u in range(1, 4):  # the same three updates, then the same parameters
        engine.step()
        peer.step(u)
    mine, theirs = engine.model.params, peer.state()
    for key in mine:
        if not np.allclose(theirs[key], mine[key], rtol=1e-9, atol=1e-12 * float(np.max(np.abs(mine[key])))):
            raise SystemExit(f"{name}: PyTorch's parameters after 3 updates differ from the engine's in {key}")
    times = {"engine": [], "torch": []}
    for r in range(repeats):
        u = engine.u + 1
        t0 = time.perf_counter()
        engine.step()
        t1 = time.perf_counter()
        peer.step(u)
        t2 = time.perf_counter()
        times["engine"].append(t1 - t0)
        times["torch"].append(t2 - t1)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"case": name, "label": f"{name} H={H} N={N} T={T}", "repeats": repeats, "medians_s": medians, "ratio": medians["engine"] / medians["torch"], "target": TARGET}


def main(repeats: int = 30) -> list[dict]:
    return [bench_case(name, cell, repeats) for name, cell in CASES]


def markdown(results: list[dict]) -> str:
    lines = [
        f"One training update (adding task, forward + backward + norm clip at {THRESHOLD:g} + SGD step; median of "
        f"{results[0]['repeats']} interleaved updates; parameters checked equal to PyTorch's after 3 updates first)",
        "",
        "| shape | engine (ms) | PyTorch (ms) | engine / PyTorch |",
        "|---|---:|---:|---|",
    ]
    for r in results:
        m = r["medians_s"]
        met = "met" if r["ratio"] <= r["target"] else "missed"
        lines.append(f"| {r['label']} | {1e3 * m['engine']:.2f} | {1e3 * m['torch']:.2f} | {r['ratio']:.2f}x (target <= {r['target']:g}x: {met}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(markdown(main()))
