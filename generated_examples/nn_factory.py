"""autograd's neural-net factory exactly as people write it (issue 12): closures returned by
``make_nn_funs``, and a generator consumed by a loop. ``loss`` exists only once the module runs,
so its derivative is generated with ``s2s-diff --import`` (the factory's variables become
constants of the derivative)."""
import numpy as np
from scipy.special import logsumexp


def make_nn_funs(layer_sizes, L2_reg):                 # a factory returning closures
    shapes = list(zip(layer_sizes[:-1], layer_sizes[1:]))  # noqa: RUF007 (as autograd writes it)
    N = sum((m + 1) * n for m, n in shapes)

    def unpack_layers(W_vect):                          # a generator consumed by a loop
        for m, n in shapes:
            yield W_vect[:m * n].reshape((m, n)), W_vect[m * n:m * n + n]
            W_vect = W_vect[(m + 1) * n:]

    def predictions(W_vect, inputs):
        for W, b in unpack_layers(W_vect):
            outputs = np.dot(inputs, W) + b
            inputs = np.tanh(outputs)
        return outputs - logsumexp(outputs, axis=1, keepdims=True)

    def loss(W_vect, X, T):
        log_prior = -L2_reg * np.dot(W_vect, W_vect)
        return -log_prior - np.sum(predictions(W_vect, X) * T)

    return N, predictions, loss


N, predict, loss = make_nn_funs([4, 8, 3], 0.1)
