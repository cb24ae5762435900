"""A loss written with helper functions of the same file; s2s inlines them."""
import numpy as np


def softplus(z):
    return np.log(1.0 + np.exp(z))


def predict(w, X):
    return np.tanh(X @ w)


def loss(w, X, y):
    r = predict(w, X) - y
    return np.mean(r ** 2) + 0.1 * np.sum(softplus(w))
