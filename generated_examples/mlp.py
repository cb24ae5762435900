"""A one-hidden-layer tanh MLP: log-softmax cross-entropy (via log-sum-exp) plus an L2 prior."""
import numpy as np

PRIOR = 1e-2


def loss(W1, b1, W2, b2, X, Y):
    """Mean cross-entropy of a tanh MLP on one-hot labels Y, plus an L2 prior on the weights."""
    h = np.tanh(X @ W1 + b1)  # hidden layer
    logits = h @ W2 + b2
    # log-sum-exp, shifted by the row maximum so that exp cannot overflow
    m = np.max(logits, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    log_probs = logits - lse
    nll = -np.sum(Y * log_probs) / X.shape[0]
    prior = PRIOR * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    return nll + prior
