"""The FLOOR: a minimal numpy BPTT that computes what `Run` computes, with no records.

Same float64 gradients as `engine.Run(config).run()` leaves in
`run.grads_raw` for mode bptt, an mse loss on the last step and no clipping
or truncation: every parameter gradient (weight_ih_l0, weight_hh_l0,
bias_ih_l0, bias_hh_l0, head.weight, head.bias) and the loss.

The structure is the cheapest straightforward one:
  - the input projection of all T steps in one matmul,
  - a per-step forward loop (one recurrent matmul + elementwise),
  - a per-step backward loop (elementwise + one matmul), storing each step's
    dL/dnet (delta) in one preallocated (T, N, G*H) array,
  - dW_hh, dW_ih and the biases after the loop, each as one large matmul
    (or sum) over the stacked deltas,
  - no diagnostics, norms or records.
"""

from __future__ import annotations

import numpy as np

__all__ = ["floor_grads", "FLOORS"]


def _mse_last(hT: np.ndarray, target: np.ndarray, V: np.ndarray, b: np.ndarray):
    """y = h_T V^T + b, MSE over batch and outputs. Returns loss, dL/dh_T, head grads."""
    N, K = target.shape
    diff = hT @ V.T + b - target
    loss = float(np.sum(diff * diff) / (N * K))
    dy = 2.0 * diff / (N * K)
    return loss, dy @ V, {"head.weight": dy.T @ hT, "head.bias": dy.sum(axis=0)}


def rnn_tanh(params: dict[str, np.ndarray], x: np.ndarray, targets: np.ndarray):
    """Vanilla tanh RNN. x: (T, N, D); targets: (T, N, K)."""
    W_ih, W_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    T, N, D = x.shape
    H = W_hh.shape[1]
    W_hh_T = W_hh.T

    # Forward: h[t+1] = tanh(x_t W_ih^T + b + h_t W_hh^T), all h kept.
    h = np.empty((T + 1, N, H))
    h[0] = 0.0
    np.matmul(x, W_ih.T, out=h[1:])
    h[1:] += params["bias_ih_l0"] + params["bias_hh_l0"]
    for t in range(T):
        ht = h[t + 1]
        ht += h[t] @ W_hh_T
        np.tanh(ht, out=ht)

    loss, dh, grads = _mse_last(h[T], targets[T - 1], params["head.weight"], params["head.bias"])

    # Backward: delta_t = dh_t * (1 - h_t^2); dh_{t-1} = delta_t W_hh.
    delta = np.empty((T, N, H))
    for t in range(T, 0, -1):
        d = delta[t - 1]
        np.multiply(h[t], h[t], out=d)
        np.subtract(1.0, d, out=d)
        d *= dh
        dh = d @ W_hh

    flat = delta.reshape(T * N, H)
    grads["weight_hh_l0"] = flat.T @ h[:T].reshape(T * N, H)
    grads["weight_ih_l0"] = flat.T @ x.reshape(T * N, D)
    db = flat.sum(axis=0)
    grads["bias_ih_l0"], grads["bias_hh_l0"] = db, db.copy()
    return loss, grads


def lstm(params: dict[str, np.ndarray], x: np.ndarray, targets: np.ndarray):
    """LSTM, PyTorch gate order i, f, g, o. x: (T, N, D); targets: (T, N, K)."""
    W_ih, W_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    T, N, D = x.shape
    H = W_hh.shape[1]
    W_hh_T = W_hh.T

    # Forward. act[t] = [i, f, g, o] of transition t+1; c, h kept for all t.
    act = np.matmul(x, W_ih.T)  # (T, N, 4H): the input projection, then the activations in place
    act += params["bias_ih_l0"] + params["bias_hh_l0"]
    h = np.empty((T + 1, N, H))
    c = np.empty((T + 1, N, H))
    tc = np.empty((T, N, H))
    h[0] = 0.0
    c[0] = 0.0
    for t in range(T):
        a = act[t]
        a += h[t] @ W_hh_T
        # sigmoid(z) = 0.5 * (1 + tanh(z / 2)) on i, f, o; tanh on g: one tanh call.
        a[:, : 2 * H] *= 0.5
        a[:, 3 * H :] *= 0.5
        np.tanh(a, out=a)
        a[:, : 2 * H] *= 0.5
        a[:, : 2 * H] += 0.5
        a[:, 3 * H :] *= 0.5
        a[:, 3 * H :] += 0.5
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        ct = c[t + 1]
        np.multiply(f, c[t], out=ct)
        ct += i * g
        np.tanh(ct, out=tc[t])
        np.multiply(o, tc[t], out=h[t + 1])

    loss, dh, grads = _mse_last(h[T], targets[T - 1], params["head.weight"], params["head.bias"])

    # Backward, overwriting act[t-1] with dL/dgates_t once its activations are used.
    dc = np.zeros((N, H))
    for t in range(T, 0, -1):
        a = act[t - 1]
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        tct = tc[t - 1]
        dct = dh * o * (1.0 - tct * tct) + dc
        dc = dct * f
        di = dct * g * i * (1.0 - i)
        df = dct * c[t - 1] * f * (1.0 - f)
        dg = dct * i * (1.0 - g * g)
        do = dh * tct * o * (1.0 - o)
        a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :] = di, df, dg, do
        dh = a @ W_hh

    flat = act.reshape(T * N, 4 * H)
    grads["weight_hh_l0"] = flat.T @ h[:T].reshape(T * N, H)
    grads["weight_ih_l0"] = flat.T @ x.reshape(T * N, D)
    db = flat.sum(axis=0)
    grads["bias_ih_l0"], grads["bias_hh_l0"] = db, db.copy()
    return loss, grads


def gru(params: dict[str, np.ndarray], x: np.ndarray, targets: np.ndarray):
    """GRU, PyTorch gate order r, z, n; n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),
    h' = (1 - z) * n + z * h. x: (T, N, D); targets: (T, N, K)."""
    W_ih, W_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    T, N, D = x.shape
    H = W_hh.shape[1]
    W_hh_T = W_hh.T
    b_hh = params["bias_hh_l0"]

    # Forward. act[t] = [r, z, n] of transition t+1 (the input projection, then the
    # activations in place); hn[t] = h_t W_hn^T + b_hn, which r scales.
    act = np.matmul(x, W_ih.T)  # (T, N, 3H)
    act += params["bias_ih_l0"]
    h = np.empty((T + 1, N, H))
    hn = np.empty((T, N, H))
    h[0] = 0.0
    for t in range(T):
        a = act[t]
        rec = h[t] @ W_hh_T
        rec += b_hh
        rz = a[:, : 2 * H]
        rz += rec[:, : 2 * H]
        # sigmoid(z) = 0.5 * (1 + tanh(z / 2)) on r and z.
        rz *= 0.5
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        hn[t] = rec[:, 2 * H :]
        n += r * hn[t]
        np.tanh(n, out=n)
        ht = h[t + 1]
        np.subtract(h[t], n, out=ht)
        ht *= z
        ht += n

    loss, dh, grads = _mse_last(h[T], targets[T - 1], params["head.weight"], params["head.bias"])

    # Backward, overwriting act[t-1] with dL/d(recurrent pre-activations) of transition t:
    # [da_r, da_z, da_n * r]; the input side differs in the n block (da_n, kept in dn).
    dn = np.empty((T, N, H))
    for t in range(T, 0, -1):
        a = act[t - 1]
        r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        da_n = dn[t - 1]
        np.multiply(n, n, out=da_n)
        np.subtract(1.0, da_n, out=da_n)
        da_n *= dh * (1.0 - z)
        da_z = dh * (h[t - 1] - n) * z * (1.0 - z)
        dh = dh * z
        np.multiply(da_n, r, out=n)  # n is used up: its slot takes da_n * r
        r *= (1.0 - r) * da_n * hn[t - 1]  # r becomes da_r
        z[...] = da_z
        dh += a @ W_hh

    flat = act.reshape(T * N, 3 * H)
    flat_n = dn.reshape(T * N, H)
    xs = x.reshape(T * N, D)
    grads["weight_hh_l0"] = flat.T @ h[:T].reshape(T * N, H)
    w_ih = flat.T @ xs
    w_ih[2 * H :] = flat_n.T @ xs
    grads["weight_ih_l0"] = w_ih
    db = flat.sum(axis=0)
    grads["bias_hh_l0"] = db
    db_ih = db.copy()
    db_ih[2 * H :] = flat_n.sum(axis=0)
    grads["bias_ih_l0"] = db_ih
    return loss, grads


FLOORS = {"rnn": rnn_tanh, "lstm": lstm, "gru": gru}


def floor_grads(cell: str, params: dict[str, np.ndarray], x: np.ndarray, targets: np.ndarray):
    """(loss, {parameter name: gradient}) for cell 'rnn' (tanh), 'lstm' or 'gru'."""
    return FLOORS[cell](params, x, targets)
