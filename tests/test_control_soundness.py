"""Wrong derivatives that differential testing found in loops, inlined helpers and the
optimizer (issue 9), with their neighbours: each checked against central differences
in every mode (``s2s.grad``, ``s2s.jvp``, ``s2s.hvp``, and ``s2s.hessian`` where cheap).
"""
import numpy as np
import pytest

import s2s
from s2s.testing import EPS, assert_close, numerical_grad

RNG = np.random.default_rng(9)


def _fresh(args):
    """Copies of the array arguments: a primal that updates one in place runs many times."""
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _direction(x, seed=0):
    rng = np.random.default_rng(seed)
    return float(rng.uniform(0.2, 0.8)) if isinstance(x, float) else rng.uniform(0.2, 0.8, np.shape(x))


def _moved(args, n, t, v):
    moved = _fresh(args)
    moved[n] = args[n] + t * v
    return moved


def check_modes(f, args, n=0, hessian=False):
    """grad, jvp and hvp of ``f`` with respect to ``args[n]`` against central differences."""
    def primal(*a):
        return f(*_fresh(a))

    want = numerical_grad(primal, args, n)
    grad = s2s.grad(f, argnums=n)
    assert_close(grad(*_fresh(args)), want, what="grad")
    v = _direction(args[n])
    tangents = [0.0 if isinstance(a, float) else np.zeros(np.shape(a)) for a in args]
    tangents[n] = v
    value, tangent = s2s.jvp(f, _fresh(args), tangents)
    assert_close(value, primal(*args), what="value")
    assert_close(tangent, np.sum(want * v), what="jvp")
    # The gradient is checked above: its central differences are the reference.
    along = (np.asarray(grad(*_moved(args, n, 1e-5, v))) -
             np.asarray(grad(*_moved(args, n, -1e-5, v)))) / 2e-5
    assert_close(s2s.hvp(f, n)(*_fresh(args), v), along, rtol=1e-4, atol=1e-5, what="hvp")
    if hessian:
        x = np.asarray(args[n], dtype=float)
        columns = []
        for i in range(x.size):
            e = np.zeros(x.size)
            e[i] = EPS
            e = e.reshape(x.shape) if x.ndim else float(e[0])
            columns.append(np.ravel((np.asarray(grad(*_moved(args, n, 1.0, e))) -
                                     np.asarray(grad(*_moved(args, n, -1.0, e)))) / (2 * EPS)))
        want_h = np.stack(columns, axis=-1).reshape(x.shape + x.shape)
        assert_close(s2s.hessian(f, n)(*_fresh(args)), want_h, rtol=1e-4, atol=1e-5, what="hessian")


# --- 1. trip counts of loops inside loops ------------------------------------------------------

def while_in_for(a):  # the reproduction: each outer iteration must replay its own trip count
    for t in range(2):
        i = 0
        while i < 1:
            i = i + 1
            a = a * a
    return a


def for_in_while(a):
    k = 0
    while k < 3:
        k = k + 1
        for j in range(k):
            a = np.sin(a) * 1.5
    return np.sum(a)


def while_in_while(a):
    k = 0
    while k < 3:
        k = k + 1
        i = 0
        while i < k:
            i = i + 1
            a = np.sin(a) * 1.5
    return np.sum(a)


def _grow(x, m):
    i = 0
    while i < m:
        i = i + 1
        x = np.cos(x) + x
    return x


def while_in_helper_in_for(a):
    for t in range(3):
        a = _grow(a, t + 1) * 0.5
    return np.sum(a)


def break_in_inner_for(a):
    for t in range(3):
        for j in range(4):
            if j > t:
                break
            a = np.sin(a) * 1.5
    return np.sum(a)


def break_in_inner_while(a):
    for t in range(3):
        i = 0
        while i < 10:
            i = i + 1
            if i > t + 1:
                break
            a = np.sin(a) * 1.5
    return np.sum(a)


def continue_in_inner_while(a):
    for t in range(3):
        i = 0
        while i < 4:
            i = i + 1
            if i == 2:
                continue
            a = np.sin(a) * 1.5 + t
    return np.sum(a)


def three_deep(a):
    for s in range(2):
        k = 0
        while k < 2:
            k = k + 1
            i = 0
            while i < k + s:
                i = i + 1
                a = np.sin(a) * 1.5
    return np.sum(a)


def while_in_branch_in_for(a):
    for t in range(4):
        if t % 2 == 0:
            i = 0
            while i < t + 1:
                i = i + 1
                a = np.sin(a) * 1.5
        else:
            a = a * 1.1
    return np.sum(a)


def data_dependent_trips(a):
    for t in range(3):
        while np.sum(a ** 2) > 0.5:
            a = a * 0.7
        a = a * 2.0
    return np.sum(a ** 3)


def test_while_in_for_reproduction():
    check_modes(while_in_for, (0.9,), hessian=True)


@pytest.mark.parametrize("f", [for_in_while, while_in_while, while_in_helper_in_for,
                               break_in_inner_for, break_in_inner_while, continue_in_inner_while,
                               three_deep, while_in_branch_in_for, data_dependent_trips])
def test_nested_loop_trip_counts(f):
    check_modes(f, (RNG.uniform(0.2, 0.6, 3),), hessian=f is three_deep)
