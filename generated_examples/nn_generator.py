"""A tanh classifier whose weights are one flat vector, unpacked layer by layer by a generator
(autograd's neural-net example, with the factory's closures as module names; issue 12)."""
import numpy as np
from scipy.special import logsumexp

SHAPES = [(4, 8), (8, 3)]  # (inputs, outputs) of each layer
L2_REG = 0.1


def unpack_layers(W_vect):
    for m, n in SHAPES:
        yield W_vect[:m * n].reshape((m, n)), W_vect[m * n:m * n + n]
        W_vect = W_vect[(m + 1) * n:]


def predictions(W_vect, inputs):
    for W, b in unpack_layers(W_vect):
        outputs = np.dot(inputs, W) + b
        inputs = np.tanh(outputs)
    return outputs - logsumexp(outputs, axis=1, keepdims=True)


def loss(W_vect, X, T):
    log_prior = -L2_REG * np.dot(W_vect, W_vect)
    return -log_prior - np.sum(predictions(W_vect, X) * T)
