"""An Elman RNN over a sequence; the loss is a readout of the last hidden state."""
import numpy as np


def loss(W, U, v, h0, x):
    h = h0
    for t in range(x.shape[0]):
        h = np.tanh(W @ h + U @ x[t])
    return np.sum(v * h) + 0.5 * np.sum(h ** 2)
