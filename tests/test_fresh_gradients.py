"""A gradient is the caller's own array: never an argument, a module array, a view of
one or a read-only broadcast (``g *= 2`` must change nothing else)."""
import numpy as np
import pytest

import s2s
from s2s.testing import assert_close, numerical_grad, numerical_jvp

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


# --- forward mode: a tangent is the caller's own array too ------------------------------

def identity(x):
    return x


def transposed(x):
    return x.T


def first_row(x):
    return x[0]


def broadcast(x):
    return np.broadcast_to(x[0], (4, 3))


def pass_through(a, b):
    if b > 0:
        return a
    return a * b


def through_a_helper(x, s):
    return pass_through(x, s)


def reversed_twice(x):
    y = x
    for i in range(2):
        y = y[::-1]
    return y


def pair_of(x, y):
    return x, y.T


def plus_module_array(x):
    return W[:2, None] * 0.0 + x


TANGENT_CASES = [identity, transposed, first_row, broadcast, through_a_helper, reversed_twice,
                 pair_of, plus_module_array]


@pytest.mark.parametrize("f", TANGENT_CASES, ids=[f.__name__ for f in TANGENT_CASES])
def test_tangent_is_owned(f):
    rng = np.random.default_rng(1)
    args = [rng.normal(size=(2, 3)), 0.7] if f is through_a_helper else \
        [rng.normal(size=(2, 3)) for _ in range(f.__code__.co_argcount)]
    tangents = [rng.normal(size=np.shape(a)) if isinstance(a, np.ndarray) else 0.0 for a in args]
    before = [np.copy(a) for a in args + tangents] + [W.copy()]
    value, tangent = s2s.jvp(f, args, tangents)
    parts = tangent if isinstance(tangent, tuple) else (tangent,)
    for k, t in enumerate(parts):
        def part(*a, k=k):
            out = f(*a)
            return out[k] if isinstance(tangent, tuple) else out
        assert_close(t, numerical_jvp(part, args, tangents))
    for t in parts:
        assert t.flags.writeable
        t *= 2.0  # the caller's own array: nothing else changes
    for a, b in zip(args + tangents + [W], before):
        np.testing.assert_array_equal(a, b)


def half_square(x):
    return 0.5 * np.sum(x * x)


def test_hvp_is_owned():
    """The Hessian of 0.5 |x|^2 times v is v: a copy of it."""
    x, v = np.ones(3), np.arange(3.0)
    got = s2s.hvp(half_square)(x, v)
    assert_close(got, v)
    got *= 2.0
    np.testing.assert_array_equal(v, np.arange(3.0))


def times_passed_through(x, y):
    return np.sum(pass_through(y, 1.0) * x)


def test_gradient_set_in_a_branch_is_owned():
    """``dx = t1`` where ``t1`` is the caller's ``y`` on one branch of an inlined helper."""
    x, y = np.ones(3), np.arange(3.0)
    g = s2s.grad(times_passed_through)(x, y)
    assert_close(g, numerical_grad(times_passed_through, (x, y), 0))
    g *= 2.0
    np.testing.assert_array_equal(y, np.arange(3.0))
