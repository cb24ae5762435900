"""Logistic regression with an L2 penalty, vectorized.

    loss(w) = mean_i log(1 + exp(-y_i x_i.w)) + lam/2 |w|^2,   y_i in {-1, +1}
"""
import numpy as np

KIND = "vectorized"
ARGNUMS = 0
SIZES = {
    "small": {"n": 1_000, "d": 100},
    "medium": {"n": 10_000, "d": 100},
    "large": {"n": 100_000, "d": 100},
}


def loss(w, X, y, lam):
    z = X @ w
    return np.mean(np.logaddexp(0.0, -y * z)) + 0.5 * lam * np.sum(w * w)


def grad_loss(w, X, y, lam):
    """Hand-written: d/dz log(1 + exp(-y z)) = -y / (1 + exp(y z))."""
    s = -y / (1.0 + np.exp(y * (X @ w)))
    return X.T @ s / len(y) + lam * w


def make_args(rng, n, d):
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    w_true = rng.standard_normal(d)
    y = np.where(X @ w_true + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    w = 0.5 * rng.standard_normal(d)
    return (w, X, y, 1e-2)


def torch_loss(w, X, y, lam):
    import torch
    z = X @ w
    return torch.mean(torch.logaddexp(torch.zeros_like(z), -y * z)) + 0.5 * lam * torch.sum(w * w)
