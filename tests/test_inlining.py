"""Inlined helpers: names a helper reads from its module, defaults, bare-constant returns
(issue 9 items 6, 7, 11), in reverse mode, forward mode and hvp against finite differences."""
import numpy as np
import pytest

import s2s
from s2s.testing import check_modes

a = 0.5
SCALE = 1.5
C = 0.4
OFFSET = np.array([0.1, -0.2, 0.3])


def reads_a(x):
    return np.sin(x) * a


def caller_shadows_a(x, a):
    """The helper's ``a`` is the module's 0.5, not this parameter."""
    return np.sum(reads_a(x) * x) + a * np.sum(x ** 2)


def scaled(x, s=SCALE, shift=OFFSET):
    return np.tanh(x * s + shift)


def default_is_constant(x):
    return np.sum(scaled(x) ** 2) + np.sum(scaled(x, 0.5) * x)


def bare_constant(x):
    return C


def bare_constant_twice(x):
    return bare_constant(x) * np.sum(x ** 3) + bare_constant(x) * np.sum(np.sin(x))


def shadowed_inside(C, x):
    """A helper's parameter named like a module constant another helper reads."""
    return np.sum(scaled(x, C) * bare_constant(C) * C)


CASES = [(caller_shadows_a, (0, 1)), (default_is_constant, 0), (bare_constant_twice, 0),
         (shadowed_inside, (0, 1))]


@pytest.mark.parametrize("fn, argnums", CASES, ids=[c[0].__name__ for c in CASES])
def test_helper_module_names(fn, argnums):
    x = np.array([0.3, -0.7, 1.1])
    args = (0.8, x) if fn is shadowed_inside else (x, 0.9) if fn is caller_shadows_a else (x,)
    check_modes(fn, args, argnums)
    assert fn(*args) == pytest.approx(s2s.value_and_grad(fn, argnums)(*args)[0])


def writes_param(p, q):
    p[0] = q[1] * 2.0
    p[1:] += q[:-1] ** 2
    return p * 2.0


def scales_param(p, q):
    p *= q  # numpy updates the caller's array
    return np.sum(p)


def local_written_by_helper(x):
    v = x * 1.0
    w = writes_param(v, np.sin(x))
    return np.sum(np.tanh(v) * w)


def local_scaled_by_helper_in_loop(x):
    v = np.cos(x)
    acc = 0.0
    for i in range(2):
        acc = acc + scales_param(v, x)
    return acc + np.sum(v * x)


def argument_scaled_by_helper(x):
    s = scales_param(x, x)
    return np.sum(np.tanh(x)) + s


@pytest.mark.parametrize("fn", [local_written_by_helper, local_scaled_by_helper_in_loop])
def test_helper_updates_its_parameter_in_place(fn):
    """The caller's array changes (found by the fuzz campaign: `p *= q` was a rebinding)."""
    check_modes(fn, (np.array([-0.15, 0.2, 0.7, 0.1]),), 0)


def test_helper_updating_the_callers_argument_is_refused():
    with pytest.raises(s2s.S2SError, match="changes the argument"):
        s2s.grad(argument_scaled_by_helper)(np.array([0.3, 0.5]))
