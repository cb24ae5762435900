"""Logistic regression: mean negative log-likelihood, one sample at a time."""
import numpy as np


def loss(w, b, X, y):
    total = 0.0
    for i in range(X.shape[0]):
        z = X[i] @ w + b
        p = 1.0 / (1.0 + np.exp(-z))
        total = total - (y[i] * np.log(p) + (1.0 - y[i]) * np.log(1.0 - p))
    return total / X.shape[0]
