"""An Elman RNN over one sequence, T = 50 steps; the loss reads out the last hidden state.

``h = np.tanh(W @ h + U @ x[t])`` in a Python ``for`` loop (the bundled
``generated_examples/rnn.py``), differentiated with respect to W, U, v and h0. The
hand-written gradient keeps the states in one array and forms the weight gradients
with one matrix product over all steps after the backward loop, as a careful
person does; a per-step ``np.outer`` costs a small GEMM and a Python round trip per step.
"""
import numpy as np

KIND = "loop"
ARGNUMS = (0, 1, 2, 3)
SIZES = {
    "small": {"T": 50, "H": 32, "D": 16},
    "medium": {"T": 50, "H": 128, "D": 64},
    "large": {"T": 50, "H": 512, "D": 256},
}


def loss(W, U, v, h0, x):
    h = h0
    for t in range(x.shape[0]):
        h = np.tanh(W @ h + U @ x[t])
    return np.sum(v * h) + 0.5 * np.sum(h ** 2)


def grad_loss(W, U, v, h0, x):
    """Hand-written backpropagation through time, weight gradients batched into one GEMM each."""
    T = x.shape[0]
    hs = np.empty((T + 1, h0.shape[0]))
    hs[0] = h0
    for t in range(T):
        hs[t + 1] = np.tanh(W @ hs[t] + U @ x[t])
    h = hs[T]
    dv = h
    dh = v + h
    dz = np.empty((T, h0.shape[0]))
    for t in range(T - 1, -1, -1):
        dz[t] = dh * (1.0 - hs[t + 1] ** 2)
        dh = W.T @ dz[t]
    return dz.T @ hs[:T], dz.T @ x, dv, dh


def make_args(rng, T, H, D):
    W = rng.standard_normal((H, H)) / np.sqrt(H)
    U = rng.standard_normal((H, D)) / np.sqrt(D)
    v = rng.standard_normal(H)
    h0 = 0.1 * rng.standard_normal(H)
    x = rng.standard_normal((T, D))
    return (W, U, v, h0, x)


def torch_loss(W, U, v, h0, x):
    import torch
    h = h0
    for t in range(x.shape[0]):
        h = torch.tanh(W @ h + U @ x[t])
    return torch.sum(v * h) + 0.5 * torch.sum(h ** 2)
