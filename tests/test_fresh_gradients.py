"""A gradient is the caller's own array: never an argument, a module array, a view of
one or a read-only broadcast (``g *= 2`` must change nothing else)."""
import numpy as np
import pytest

import s2s
from s2s.testing import assert_close, numerical_grad

W = np.array([0.5, -1.0, 2.0])


def times_arg(x, y):
    return np.sum(x * y)


def times_module_array(x):
    return np.sum(x * W)


def plain_sum(x):
    return np.sum(x)


def times_transpose(x, y):
    return np.sum(x * y.T)


def times_reshaped(x, y):
    return np.sum(x.reshape(-1) * y)


def square(x):
    return np.sum(x * x)


CASES = [
    (times_arg, lambda r: (r.normal(size=3), r.normal(size=3))),
    (times_module_array, lambda r: (r.normal(size=3),)),
    (plain_sum, lambda r: (r.normal(size=(2, 3)),)),
    (times_transpose, lambda r: (r.normal(size=(3, 2)), r.normal(size=(2, 3)))),
    (times_reshaped, lambda r: (r.normal(size=(2, 3)), r.normal(size=6))),
    (square, lambda r: (r.normal(size=4),)),
]


@pytest.mark.parametrize("target", ["numpy", "numba"])
@pytest.mark.parametrize("f, make", CASES, ids=[c[0].__name__ for c in CASES])
def test_gradient_is_owned(f, make, target):
    args = make(np.random.default_rng(0))
    before = [a.copy() for a in args] + [W.copy()]
    g = s2s.grad(f, target=target)(*args)
    assert_close(g, numerical_grad(f, args, 0))
    assert g.flags.writeable
    g *= 2.0  # the caller's own array: nothing else changes
    for a, b in zip(list(args) + [W], before):
        np.testing.assert_array_equal(a, b)


def test_copy_only_where_needed():
    """Arithmetic results are returned as they are; an argument's alias is copied once."""
    x, y = np.ones(3), np.arange(3.0)
    g = s2s.grad(times_arg)
    g(x, y)
    assert "dx = np.copy(y)" in s2s.source(g)
    g = s2s.grad(square)
    g(x)
    assert "np.copy" not in s2s.source(g)
