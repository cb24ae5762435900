"""The examples people learn autograd, Theano and PyTorch with, as tests.

Expected values are worked out by hand in each test's comment and also checked
against central finite differences.
"""
import numpy as np
import pytest

import s2s
from s2s.testing import assert_grad_close, numerical_grad


def square(x):
    return x ** 2


def log(x):
    return np.log(x)


def binomial(x, y):
    return (x + 2 * y) ** 2


def poly(x):
    return (x - 4) * (x ** 2 + 6)


def root_cubed(x):
    return (np.sqrt(x) + 1) ** 3


def mean_of_square(x):
    return np.mean(3 * (x + 2) ** 2)


def test_square_at_2():
    assert s2s.grad(square)(2.0) == pytest.approx(4.0)  # 2x at 2


def test_log_at_10():
    assert s2s.grad(log)(10.0) == pytest.approx(0.1)  # 1/x at 10


@pytest.mark.parametrize("x, y", [(1.0, 2.0), (-3.0, 0.5), (0.0, 0.0)])
def test_partials_of_binomial(x, y):
    dx, dy = s2s.grad(binomial, argnums=(0, 1))(x, y)
    assert dx == pytest.approx(2 * (x + 2 * y))  # d/dx (x + 2y)^2
    assert dy == pytest.approx(4 * (x + 2 * y))  # d/dy (x + 2y)^2


@pytest.mark.parametrize("x", [-2.0, 0.0, 1.5, 4.0])
def test_product_rule(x):
    assert s2s.grad(poly)(x) == pytest.approx(3 * x ** 2 - 8 * x + 6)


@pytest.mark.parametrize("x", [0.25, 1.0, 9.0])
def test_chain_rule_through_sqrt(x):
    # d/dx (sqrt(x) + 1)^3 = 3 (sqrt(x) + 1)^2 / (2 sqrt(x))
    assert s2s.grad(root_cubed)(x) == pytest.approx(3 * (np.sqrt(x) + 1) ** 2 / (2 * np.sqrt(x)))


def test_mean_of_square_at_ones():
    # d/dx_i mean(3 (x + 2)^2) over 4 entries = 6 (x_i + 2) / 4 = 4.5 at x = 1
    g = s2s.grad(mean_of_square)(np.ones((2, 2)))
    np.testing.assert_allclose(g, np.full((2, 2), 4.5))


# --- logistic regression with a per-sample loop, trained until its loss falls -----

def sigmoid(z):
    return 0.5 * (np.tanh(z / 2) + 1)


def logistic_loss(w, b, X, y):
    total = 0.0
    for i in range(X.shape[0]):
        p = sigmoid(X[i] @ w + b)
        total = total - (y[i] * np.log(p) + (1 - y[i]) * np.log(1 - p))
    return total / X.shape[0]


def test_logistic_regression_trains(rng):
    X = rng.standard_normal((40, 3))
    y = (X @ np.array([1.5, -2.0, 0.5]) + 0.3 > 0).astype(float)
    w, b = np.zeros(3), 0.0
    grad = s2s.grad(logistic_loss, argnums=(0, 1))
    assert_grad_close(logistic_loss, grad, (rng.standard_normal(3), 0.1, X, y), (0, 1))
    start = logistic_loss(w, b, X, y)
    for _ in range(100):
        dw, db = grad(w, b, X, y)
        w, b = w - 0.5 * dw, b - 0.5 * db
    end = logistic_loss(w, b, X, y)
    assert end < 0.5 * start
    assert np.mean((X @ w + b > 0) == (y > 0.5)) > 0.9


# --- tanh MLP with log-sum-exp log-softmax and an L2 prior ------------------------

def log_softmax(z):
    m = np.max(z, axis=1, keepdims=True)
    shifted = z - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def mlp_loss(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    log_prior = -0.5 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    log_lik = np.sum(log_softmax(logits) * Y)
    return -(log_prior + log_lik)


def test_mlp_gradients_for_every_weight(rng):
    X = rng.standard_normal((6, 4))
    Y = np.eye(3)[rng.integers(0, 3, 6)]
    params = (rng.standard_normal((4, 5)) * 0.5, rng.standard_normal(5) * 0.1,
              rng.standard_normal((5, 3)) * 0.5, rng.standard_normal(3) * 0.1)
    args = params + (X, Y)
    assert_grad_close(mlp_loss, s2s.grad(mlp_loss, argnums=(0, 1, 2, 3)), args, (0, 1, 2, 3))


# --- bag-of-words negative log-likelihood ------------------------------------------

def bag_of_words_nll(W, counts, labels):
    scores = counts @ W
    m = np.max(scores, axis=1, keepdims=True)
    log_norm = np.log(np.sum(np.exp(scores - m), axis=1)) + m[:, 0]
    picked = scores[np.arange(scores.shape[0]), labels]
    return np.sum(log_norm - picked)


def test_bag_of_words_nll(rng):
    counts = rng.poisson(1.0, (7, 10)).astype(float)
    labels = rng.integers(0, 4, 7)
    labels[:3] = 2  # repeated fancy indices must each add their share
    W = rng.standard_normal((10, 4)) * 0.3
    g = s2s.grad(bag_of_words_nll)(W, counts, labels)
    np.testing.assert_allclose(g, numerical_grad(bag_of_words_nll, (W, counts, labels), 0),
                               rtol=1e-5, atol=1e-7)
