"""An LSTM unrolled with a Python ``for`` loop over T = 50 steps.

Gates are stacked in one (D, 4H) input matrix and one (H, 4H) recurrent
matrix (order: input, forget, output, candidate); the loss is the squared
error of a linear read-out of the last hidden state.
"""
import numpy as np

KIND = "loop"
ARGNUMS = (0, 1, 2, 3)
SIZES = {
    "small": {"T": 50, "H": 16, "D": 8, "B": 8},
    "medium": {"T": 50, "H": 128, "D": 64, "B": 32},
    "large": {"T": 50, "H": 128, "D": 64, "B": 256},
}


def loss(Wx, Wh, b, Wy, xs, ys):
    T, B, _ = xs.shape
    H = Wh.shape[0]
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    for t in range(T):
        a = xs[t] @ Wx + h @ Wh + b
        i = 1.0 / (1.0 + np.exp(-a[:, :H]))
        f = 1.0 / (1.0 + np.exp(-a[:, H:2 * H]))
        o = 1.0 / (1.0 + np.exp(-a[:, 2 * H:3 * H]))
        g = np.tanh(a[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
    r = h @ Wy - ys
    return 0.5 * np.sum(r * r) / B


def grad_loss(Wx, Wh, b, Wy, xs, ys):
    """Hand-written backpropagation through time: gates and cells kept per step,
    the weight gradients formed with one matmul over all steps at the end."""
    T, B, D = xs.shape
    H = Wh.shape[0]
    hs = np.zeros((T + 1, B, H))
    cs = np.zeros((T + 1, B, H))
    gates = np.empty((T, B, 4 * H))
    tcs = np.empty((T, B, H))
    for t in range(T):
        a = xs[t] @ Wx + hs[t] @ Wh + b
        s = gates[t]
        s[:, :3 * H] = 1.0 / (1.0 + np.exp(-a[:, :3 * H]))
        s[:, 3 * H:] = np.tanh(a[:, 3 * H:])
        cs[t + 1] = s[:, H:2 * H] * cs[t] + s[:, :H] * s[:, 3 * H:]
        tcs[t] = np.tanh(cs[t + 1])
        hs[t + 1] = s[:, 2 * H:3 * H] * tcs[t]
    r = (hs[T] @ Wy - ys) / B
    dWy = hs[T].T @ r
    dh = r @ Wy.T
    dc = np.zeros((B, H))
    da = np.empty((T, B, 4 * H))
    for t in range(T - 1, -1, -1):
        s = gates[t]
        i, f, o, g = s[:, :H], s[:, H:2 * H], s[:, 2 * H:3 * H], s[:, 3 * H:]
        dc += dh * o * (1.0 - tcs[t] ** 2)
        d = da[t]
        d[:, :H] = dc * g * i * (1.0 - i)
        d[:, H:2 * H] = dc * cs[t] * f * (1.0 - f)
        d[:, 2 * H:3 * H] = dh * tcs[t] * o * (1.0 - o)
        d[:, 3 * H:] = dc * i * (1.0 - g * g)
        dc *= f
        dh = d @ Wh.T
    da2 = da.reshape(T * B, 4 * H)
    dWx = xs.reshape(T * B, D).T @ da2
    dWh = hs[:T].reshape(T * B, H).T @ da2
    db = np.sum(da2, axis=0)
    return dWx, dWh, db, dWy


def make_args(rng, T, H, D, B):
    Wx = rng.standard_normal((D, 4 * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, 4 * H)) / np.sqrt(H)
    b = 0.1 * rng.standard_normal(4 * H)
    Wy = rng.standard_normal((H, 4)) / np.sqrt(H)
    xs = rng.standard_normal((T, B, D))
    ys = rng.standard_normal((B, 4))
    return (Wx, Wh, b, Wy, xs, ys)


def torch_loss(Wx, Wh, b, Wy, xs, ys):
    import torch
    T, B, _ = xs.shape
    H = Wh.shape[0]
    h = torch.zeros((B, H), dtype=xs.dtype)
    c = torch.zeros((B, H), dtype=xs.dtype)
    for t in range(T):
        a = xs[t] @ Wx + h @ Wh + b
        i = torch.sigmoid(a[:, :H])
        f = torch.sigmoid(a[:, H:2 * H])
        o = torch.sigmoid(a[:, 2 * H:3 * H])
        g = torch.tanh(a[:, 3 * H:])
        c = f * c + i * g
        h = o * torch.tanh(c)
    r = h @ Wy - ys
    return 0.5 * torch.sum(r * r) / B
