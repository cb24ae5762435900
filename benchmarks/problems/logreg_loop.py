"""Logistic regression with an L2 penalty, written with a per-sample Python loop.

The same model as ``logreg`` (d = 100), the way it is often first written:
one sample at a time. Measures the per-iteration overhead of the generated
loop (stack traffic, helper calls) rather than arithmetic.
"""
import numpy as np

from . import logreg

KIND = "loop"
ARGNUMS = 0
SIZES = {
    "small": {"n": 100, "d": 100},
    "medium": {"n": 1_000, "d": 100},
    "large": {"n": 10_000, "d": 100},
}


make_args = logreg.make_args  # the same data as the vectorized problem


def loss(w, X, y, lam):
    n = X.shape[0]
    total = 0.0
    for i in range(n):
        z = np.dot(X[i], w)
        total = total + np.logaddexp(0.0, -y[i] * z)
    return total / n + 0.5 * lam * np.sum(w * w)


def grad_loss(w, X, y, lam):
    """Hand-written, same loop: each sample adds s_i x_i, s_i = -y_i / (1 + exp(y_i z_i)) / n."""
    n = X.shape[0]
    dw = lam * w
    for i in range(n):
        yi = y[i]
        s = -yi / (1.0 + np.exp(yi * np.dot(X[i], w)))
        dw += (s / n) * X[i]
    return dw


def torch_loss(w, X, y, lam):
    import torch
    n = X.shape[0]
    total = torch.zeros((), dtype=w.dtype)
    zero = torch.zeros((), dtype=w.dtype)
    for i in range(n):
        z = torch.dot(X[i], w)
        total = total + torch.logaddexp(zero, -y[i] * z)
    return total / n + 0.5 * lam * torch.sum(w * w)


def jax_jit_loss():
    """What a JAX user writes for jit: the loop as lax.fori_loop (unrolling 10 000 samples
    would take minutes to compile)."""
    import jax.numpy as jnp
    from jax import lax

    def loss(w, X, y, lam):
        n = X.shape[0]

        def body(i, total):
            return total + jnp.logaddexp(0.0, -y[i] * jnp.dot(X[i], w))

        total = lax.fori_loop(0, n, body, jnp.zeros((), w.dtype))
        return total / n + 0.5 * lam * jnp.sum(w * w)

    return loss
