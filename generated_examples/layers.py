"""A tanh MLP whose parameters are a list of (W, b) layers, of any depth: squared error."""
import numpy as np


def loss(layers, X, y):
    """Mean squared error of a tanh network; ``layers`` is a list of (W, b) pairs."""
    h = X
    for W, b in layers[:-1]:
        h = np.tanh(h @ W + b)
    w, c = layers[-1]  # the last layer is linear, to one output: a vector and a float
    out = h @ w + c
    return np.mean((out - y) ** 2)
