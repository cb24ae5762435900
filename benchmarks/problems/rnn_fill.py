"""An Elman RNN that fills a preallocated array of hidden states row by row.

``H = np.empty((T + 1, n)); H[t + 1] = np.tanh(W @ H[t] + U @ xs[t] + b)`` for
T = 100 steps; the loss reads every row (``np.sum(H[1:] ** 2) / T``) and is
differentiated with respect to W, U and b. Measures row writes into an array
the function makes: the gradient's backward sweep should be a reversed loop
over rows, with O(n) work per step beside the matmuls, as a hand-written one.
"""
import numpy as np

KIND = "loop"
ARGNUMS = (0, 1, 2)
SIZES = {
    "small": {"n": 32, "m": 16, "T": 100},
    "medium": {"n": 128, "m": 64, "T": 100},
    "large": {"n": 512, "m": 256, "T": 100},
}


def loss(W, U, b, xs, h0):
    T = xs.shape[0]
    H = np.empty((T + 1, h0.shape[0]))
    H[0] = h0
    for t in range(T):
        H[t + 1] = np.tanh(W @ H[t] + U @ xs[t] + b)
    return np.sum(H[1:] ** 2) / T


def grad_loss(W, U, b, xs, h0):
    """Hand-written backpropagation through time over the rows of H."""
    T = xs.shape[0]
    H = np.empty((T + 1, h0.shape[0]))
    H[0] = h0
    for t in range(T):
        H[t + 1] = np.tanh(W @ H[t] + U @ xs[t] + b)
    dH = (2.0 / T) * H
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    for t in range(T - 1, -1, -1):
        dz = dH[t + 1] * (1.0 - H[t + 1] ** 2)
        dW += np.outer(dz, H[t])
        dU += np.outer(dz, xs[t])
        db += dz
        dH[t] += W.T @ dz
    return dW, dU, db


def make_args(rng, n, m, T):
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    U = rng.standard_normal((n, m)) / np.sqrt(m)
    b = 0.1 * rng.standard_normal(n)
    xs = rng.standard_normal((T, m))
    h0 = 0.1 * rng.standard_normal(n)
    return (W, U, b, xs, h0)


def torch_loss(W, U, b, xs, h0):
    import torch
    T = xs.shape[0]
    h, rows = h0, []
    for t in range(T):
        h = torch.tanh(W @ h + U @ xs[t] + b)
        rows.append(h)
    return torch.sum(torch.stack(rows) ** 2) / T


def jax_jit_loss():
    """The same recurrence for JAX (immutable arrays): ``lax.scan`` collects the rows."""
    import jax.numpy as jnp
    from jax import lax

    def loss(W, U, b, xs, h0):
        def step(h, x):
            h = jnp.tanh(W @ h + U @ x + b)
            return h, h

        _, H = lax.scan(step, h0, xs)
        return jnp.sum(H ** 2) / xs.shape[0]

    return loss
