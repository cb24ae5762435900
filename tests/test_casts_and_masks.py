"""Casts, rounding and boolean masks in every mode (issues 10 and 11).

Casts to floating point are the identity; casts to integers or booleans, rounding and
signs are piecewise constant (zero derivative, and their results are never active);
``& | ^ ~`` combine masks, which are never active. Each function is checked against
central differences in reverse mode, forward mode and forward over reverse (hvp).
"""
import numpy as np
import pytest

import s2s
from s2s.testing import EPS, assert_close, numerical_grad


def float_method(x):
    return np.sum(x.astype(float) ** 2 * x.astype(np.float64))


def float_call(x):
    return np.sum(np.float64(x) ** 3) + np.float64(x[0]) * float(x[1])


def float_dynamic(x):
    return np.sum(x.astype(x.dtype) * np.sin(x))


def int_cast(x):
    k = (x * 3).astype(int)
    return np.sum(x ** 2 * k) + np.sum(x[k % 4]) + np.sum(x.astype(np.int64) * x)


def rounding(x):
    return np.sum((np.floor(x) + np.ceil(x) + np.round(x, 1) + np.trunc(x) + np.sign(x)) * x ** 2)


def python_rounding(x):
    return round(float(np.sum(x))) * np.sum(x ** 2) + int(x[0] * 3) * x[1]


def masks(x):
    inside = (x > -0.5) & (x < 1.0)
    outside = (x < -1.0) | (x > 1.5)
    flipped = ~inside ^ outside
    return np.sum(np.where(inside, x ** 2, np.sin(x))) + np.sum(flipped * x ** 3)


def mask_as_float(x):
    m = x > 0.1
    m |= x < -1.0
    return np.sum(m.astype(float) * x ** 3) + np.sum(((x < 0) * 1.0) * np.exp(x))


def bool_cast(x):
    return np.sum(x.astype(bool) * x ** 2) + np.sum(np.zeros(4, dtype=float) + x ** 2)


CASES = [float_method, float_call, float_dynamic, int_cast, rounding, python_rounding, masks, mask_as_float,
         bool_cast]
X = np.array([0.31, -0.47, 1.24, -1.32])


@pytest.mark.parametrize("fn", CASES, ids=[f.__name__ for f in CASES])
def test_in_every_mode(fn):
    v = np.array([0.7, -0.2, 0.4, 1.1])
    grad = s2s.grad(fn)
    assert_close(grad(X), numerical_grad(fn, (X,), 0), rtol=1e-6, atol=1e-7)
    _, tangent = s2s.jvp(fn, (X,), (v,))
    assert_close(tangent, (fn(X + EPS * v) - fn(X - EPS * v)) / (2 * EPS), rtol=1e-6, atol=1e-7)
    want = (grad(X + EPS * v) - grad(X - EPS * v)) / (2 * EPS)
    assert_close(s2s.hvp(fn)(X, v), want, rtol=1e-5, atol=1e-6)


def test_integer_casts_and_masks_are_never_active():
    grad = s2s.grad(int_cast)
    grad(X)
    assert "astype_adjoint" not in s2s.source(grad)  # no adjoint flows into the cast to int
    assert "astype_adjoint" in s2s.source(s2s.grad(float_dynamic))  # zero at run time if not float
