"""s2s.grad's call path: after the first call of a specialisation only the compiled
derivative runs, and only while nothing it was generated from changed.

What must still be noticed on every call: a helper function defined again (a notebook
cell run twice), a function's code replaced in place (IPython's autoreload), a global or
closure variable rebound, arguments of a new shape or dtype. Every gradient is checked
against central finite differences.
"""
import sys

import numpy as np
import pytest

import s2s
from s2s import cache
from s2s.testing import assert_close, numerical_grad

module = sys.modules[__name__]
SCALE = 2.0


def square(x):
    return x * x


def cube(x):
    return x * x * x


def uses_helper(x):
    return np.sum(square(x) * SCALE)


def scaled(x):
    return np.sum(SCALE * np.sin(x))


def other_body(x):
    return np.sum(np.cos(x) * 3.0)


def rk4_step(k, x):
    return x + 0.5 * (-k * x)


def rk4_other(k, x):
    return x * np.exp(-k)


def both(f, args):
    return tuple(numerical_grad(f, args, n) for n in range(len(args)))


@pytest.mark.parametrize("target", ["numpy", "numba"])
def test_a_helper_defined_again_is_differentiated_again(target):
    x = np.array([0.5, -1.0, 2.0])
    grad = s2s.grad(uses_helper, target=target)
    assert_close(grad(x), numerical_grad(uses_helper, (x,), 0))
    original = square
    try:
        module.square = cube  # the helper's cell run again with another body
        assert_close(grad(x), numerical_grad(uses_helper, (x,), 0))
        assert_close(grad(x), 3 * SCALE * x ** 2)
    finally:
        module.square = original


def test_a_function_whose_code_is_replaced_is_differentiated_again():
    """IPython's autoreload swaps ``__code__`` of the live function (and of its helpers)."""
    def f(x):
        return np.sum(np.sin(x) * 2.0)
    grad = s2s.grad(f)
    x = np.array([0.3, 1.2])
    assert_close(grad(x), 2.0 * np.cos(x))
    f.__code__ = other_body.__code__
    assert_close(grad(x), numerical_grad(f, (x,), 0))
    assert_close(grad(x), -3.0 * np.sin(x))

    grad = s2s.grad(rk4_step, argnums=(0, 1))  # a helper's code, through the primal's call
    k, x = 0.7, 1.3
    first = grad(k, x)
    assert_close(first, both(rk4_step, (k, x)))
    saved = rk4_step.__code__
    try:
        rk4_step.__code__ = rk4_other.__code__
        assert_close(grad(k, x), both(rk4_step, (k, x)))
    finally:
        rk4_step.__code__ = saved


def test_a_rebound_closure_variable_is_followed():
    def make():
        scale = 2.0

        def f(x):
            return np.sum(scale * x ** 2)

        def set_scale(value):
            nonlocal scale
            scale = value
        return f, set_scale

    f, set_scale = make()
    grad = s2s.grad(f)
    x = np.array([1.0, -2.0])
    assert_close(grad(x), 4.0 * x)
    set_scale(5.0)
    assert_close(grad(x), numerical_grad(f, (x,), 0))
    assert_close(grad(x), 10.0 * x)


def test_a_global_number_changed_under_numba_compiles_again():
    x = np.array([0.2, 0.9])
    grad = s2s.grad(scaled, target="numba")
    assert_close(grad(x), SCALE * np.cos(x))
    try:
        module.SCALE = -1.5  # numba froze the old number into the compiled code
        assert_close(grad(x), numerical_grad(scaled, (x,), 0))
        assert_close(grad(x), -1.5 * np.cos(x))
    finally:
        module.SCALE = 2.0


def test_new_shapes_and_dtypes_get_their_own_specialisation():
    grad = s2s.grad(uses_helper)
    derivative = grad.__s2s_module__
    for shape in [(3,), (5,), (2, 3), (3,)]:
        x = np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape)
        assert_close(grad(x), numerical_grad(uses_helper, (x,), 0))
    assert len(derivative.compiled) == 3
    x32 = np.linspace(-1.0, 1.0, 5).astype(np.float32)
    g32 = grad(x32)
    assert g32.dtype == np.float32  # the gradient has its argument's dtype
    assert_close(g32, 2 * SCALE * x32, rtol=1e-6)
    with pytest.raises(TypeError, match="integer"):
        grad(np.arange(5))
    assert type(s2s.grad(square)(1.5)) is float and s2s.grad(square)(1.5) == 3.0


def test_the_steady_state_runs_the_compiled_code_only():
    grad = s2s.grad(uses_helper, argnums=0)
    x = np.array([0.1, 0.2, 0.3])
    before = dict(cache.STATS)
    grad(x)
    generated = cache.STATS["generated"] + cache.STATS["hits"]
    for _ in range(5):
        assert_close(grad(x), 2 * SCALE * x)
    assert cache.STATS["generated"] + cache.STATS["hits"] == generated
    assert generated > before["generated"] + before["hits"]
    floats = s2s.grad(rk4_step, argnums=(0, 1), target="numba")
    for _ in range(3):  # a tuple of Python floats, straight from the compiled code
        got = floats(0.7, 1.3)
        assert type(got) is tuple and all(type(g) is float for g in got)
        assert_close(got, both(rk4_step, (0.7, 1.3)))


def weighted(w, b, x):
    return np.sum(np.tanh(w * x) * b) + b * b


@pytest.mark.parametrize("target", ["numpy", "numba"])
def test_steady_state_results_keep_their_arguments_kinds(target):
    """Gradients of a tuple of arrays, of floats and arrays mixed, of float32 arrays: the
    quick test of a result must let `finish` shape what it would shape."""
    grad = s2s.grad(weighted, argnums=(0, 1), target=target)
    x = np.linspace(-1.0, 1.0, 4)
    for dtype in (np.float64, np.float32, np.float64):
        w = np.linspace(0.5, 1.0, 4).astype(dtype)
        for _ in range(2):  # the first call, then the steady state
            gw, gb = grad(w, 0.7, x)
            assert gw.dtype == dtype and gw.shape == (4,) and type(gb) is float
            assert_close((gw, gb), both(lambda w, b: weighted(w, b, x), (w.astype(np.float64), 0.7)),
                         rtol=1e-4 if dtype == np.float32 else 1e-6)
    grad_w = s2s.grad(weighted, argnums=(0, 2), target=target)  # two arrays
    w = np.linspace(0.5, 1.0, 4)
    for _ in range(2):
        gw, gx = grad_w(w, 0.7, x)
        assert_close(gw, numerical_grad(weighted, (w, 0.7, x), 0))
        assert_close(gx, numerical_grad(weighted, (w, 0.7, x), 2))


class Tagged(np.ndarray):
    """A subclass of ndarray: not what the fast call checks for, served the general way."""


@pytest.mark.parametrize("target", ["numpy", "numba"])
def test_the_fast_call_serves_the_last_kinds_and_the_general_way_the_rest(target):
    """`fastcall`: the function users hold serves the kinds of the last call; keywords,
    defaults, subclasses and other shapes go the general way, with the same gradients, and
    `s2s.source` shows the derivative the last call ran."""
    grad = s2s.grad(weighted, argnums=(0, 1), target=target)
    x4, x5 = np.linspace(-1.0, 1.0, 4), np.linspace(-1.0, 1.0, 5)
    for x in (x4, x4, x5, x5, x4, x5):  # shapes alternate: the fast call follows
        w = np.linspace(0.5, 1.0, x.size)
        want = both(lambda w, b: weighted(w, b, x), (w, 0.7))
        assert_close(grad(w, 0.7, x), want)
        assert f"shapes=w=({x.size},) x=({x.size},)" in s2s.source(grad)  # the last call's
        assert_close(grad(w, b=0.7, x=x), want)  # keywords
        gw, gb = grad(w.view(Tagged), 0.7, x)  # a subclass
        assert type(gb) is float and gw.shape == w.shape
        assert_close((np.asarray(gw), gb), want)
    with pytest.raises(TypeError, match="integer"):
        grad(np.arange(4), 0.7, x4)
    assert_close(grad(np.linspace(0.5, 1.0, 4), 0.7, x4),
                 both(lambda w, b: weighted(w, b, x4), (np.linspace(0.5, 1.0, 4), 0.7)))


def ratio(a, b):
    return a / b + a * b


def test_an_error_of_the_compiled_code_is_raised_as_it_is():
    """numba raises ZeroDivisionError as Python does: an error of the code running, not a
    refusal to compile it (on the first call and from the fast call alike)."""
    grad = s2s.grad(ratio, argnums=(0, 1), target="numba")
    with pytest.raises(ZeroDivisionError):
        grad(1.0, 0.0)
    assert_close(grad(1.0, 2.0), both(ratio, (1.0, 2.0)))
    with pytest.raises(ZeroDivisionError):
        grad(1.0, 0.0)
    assert_close(grad(3.0, 2.0), both(ratio, (3.0, 2.0)))
