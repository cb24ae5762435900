"""Tanh MLP classifier 784-200-100-10, log-softmax cross-entropy, L2 prior.

Labels are one-hot rows of ``Y``; the log-softmax is the max-subtracted
log-sum-exp a careful numpy user writes.
"""
import itertools

import numpy as np

KIND = "vectorized"
ARGNUMS = (0, 1, 2, 3, 4, 5)
SIZES = {
    "small": {"batch": 32},
    "medium": {"batch": 256},
    "large": {"batch": 2048},
}
LAYERS = (784, 200, 100, 10)


def loss(W1, b1, W2, b2, W3, b3, X, Y, lam):
    h1 = np.tanh(X @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    z = h2 @ W3 + b3
    m = np.max(z, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))
    nll = -np.sum(Y * (z - lse)) / X.shape[0]
    prior = 0.5 * lam * (np.sum(W1 * W1) + np.sum(W2 * W2) + np.sum(W3 * W3))
    return nll + prior


def grad_loss(W1, b1, W2, b2, W3, b3, X, Y, lam):
    """Hand-written backprop (rows of Y sum to one, so d nll / dz = (softmax(z) - Y) / n)."""
    n = X.shape[0]
    h1 = np.tanh(X @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    z = h2 @ W3 + b3
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    dz = (e / np.sum(e, axis=1, keepdims=True) - Y) / n
    dW3 = h2.T @ dz + lam * W3
    db3 = np.sum(dz, axis=0)
    da2 = (dz @ W3.T) * (1.0 - h2 * h2)
    dW2 = h1.T @ da2 + lam * W2
    db2 = np.sum(da2, axis=0)
    da1 = (da2 @ W2.T) * (1.0 - h1 * h1)
    dW1 = X.T @ da1 + lam * W1
    db1 = np.sum(da1, axis=0)
    return dW1, db1, dW2, db2, dW3, db3


def make_args(rng, batch):
    params = []
    for fan_in, fan_out in itertools.pairwise(LAYERS):
        params.append(rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in))
        params.append(0.1 * rng.standard_normal(fan_out))
    X = rng.standard_normal((batch, LAYERS[0]))
    Y = np.eye(LAYERS[-1])[rng.integers(0, LAYERS[-1], size=batch)]
    return (*params, X, Y, 1e-4)


def torch_loss(W1, b1, W2, b2, W3, b3, X, Y, lam):
    import torch
    h1 = torch.tanh(X @ W1 + b1)
    h2 = torch.tanh(h1 @ W2 + b2)
    z = h2 @ W3 + b3
    m = torch.amax(z, dim=1, keepdim=True)
    lse = m + torch.log(torch.sum(torch.exp(z - m), dim=1, keepdim=True))
    nll = -torch.sum(Y * (z - lse)) / X.shape[0]
    prior = 0.5 * lam * (torch.sum(W1 * W1) + torch.sum(W2 * W2) + torch.sum(W3 * W3))
    return nll + prior
