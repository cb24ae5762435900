"""A piecewise function: the backward sweep takes the branch the forward sweep took."""
import numpy as np


def loss(x, scale):
    s = np.sum(x)
    if s > 1.0:
        y = scale * np.sum(x ** 2)
    elif s < -1.0:
        y = np.sum(np.exp(x)) / scale
    else:
        y = np.sum(np.tanh(x)) * scale
    return y
