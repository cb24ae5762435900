"""The numba target: the same readable derivative, compiled with ``numba.njit`` (nopython).

The test extra installs numba, so these tests run in CI.
"""
import ast
import inspect

import numba
import numpy as np
import pytest
import scipy.special

import s2s
from s2s import derive, numba_errors, targets
from s2s.errors import S2SError
from s2s.naming import Namer
from s2s.source import from_function
from s2s.testing import assert_close, numerical_grad


def rk4_decay(k, x0, dt, steps):
    x = x0
    for i in range(steps):
        a = -k * x
        b = -k * (x + 0.5 * dt * a)
        c = -k * (x + 0.5 * dt * b)
        d = -k * (x + dt * c)
        x = x + dt / 6.0 * (a + 2.0 * b + 2.0 * c + d)
    return x * x


def per_sample(w, b, X, y):
    total = 0.0
    for i in range(X.shape[0]):
        p = 1.0 / (1.0 + np.exp(-(X[i] @ w + b)))
        total = total - (y[i] * np.log(p) + (1.0 - y[i]) * np.log(1.0 - p))
    return total / X.shape[0]


def strided(x, n):
    s = 0.0
    for i in range(1, n, 3):
        s = s * 0.5 + x[i] ** 2
    j = 0
    while j < 2:
        s = s + np.sin(x[j])
        j = j + 1
    return s


def test_scalar_loop_compiles_and_matches_finite_differences():
    g = s2s.grad(rk4_decay, argnums=(0, 1), target="numba")
    args = (0.7, 1.3, 0.05, 40)
    got = g(*args)
    assert isinstance(got[0], float)
    assert_close(got, s2s.grad(rk4_decay, argnums=(0, 1))(*args))
    assert_close(got[0], numerical_grad(rk4_decay, args, 0))
    text = s2s.source(g)
    assert "@numba.njit(cache=True)\ndef grad_rk4_decay(" in text and "reversed(" not in text
    assert isinstance(g.__s2s_module__.compiled[next(iter(g.__s2s_module__.compiled))][1],
                      numba.core.registry.CPUDispatcher)


@pytest.mark.parametrize("shape", [(7, 3), (1, 4)])
def test_array_loop_compiles_and_matches(shape):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=shape), (rng.random(shape[0]) > 0.5) * 1.0
    w, b = rng.normal(size=shape[1]), 0.2
    got = s2s.grad(per_sample, argnums=(0, 1), target="numba")(w, b, X, y)
    assert isinstance(got[0], np.ndarray) and isinstance(got[1], float)
    assert_close(got[0], numerical_grad(per_sample, (w, b, X, y), 0))
    assert_close(got[1], numerical_grad(per_sample, (w, b, X, y), 1))


@pytest.mark.parametrize("n", [2, 8, 10])
def test_strided_and_while_loops(n):
    x = np.linspace(0.1, 1.0, 10)
    got = s2s.grad(strided, target="numba")(x, n)
    assert_close(got, numerical_grad(strided, (x, n), 0))


@pytest.mark.parametrize("args", [(5,), (2, 9), (1, 10, 3), (9, -1, -2), (3, 3), (0, 10, 4)])
def test_reversed_ranges_visit_the_same_indices(args):
    expected = list(reversed(range(*args)))
    text = "range(" + ", ".join(map(str, args)) + ")"
    import ast
    node = targets._reversed_range(ast.parse(text, mode="eval").body.args)
    assert list(eval(ast.unparse(node))) == expected


def log_gamma(x):
    return np.sum(scipy.special.gamma(x))


def line_of(fn, text):
    """The line of ``fn``'s file that holds ``text``, within ``fn``."""
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_what_numba_cannot_compile_is_refused_with_the_reason():
    g = s2s.grad(log_gamma, target="numba")
    with pytest.raises(S2SError, match="numba cannot compile the derivative of log_gamma: "
                                       "Unknown attribute 'gamma'") as e:
        g(np.ones(3))
    assert e.value.filename.endswith("test_numba_target.py")
    assert e.value.line == line_of(log_gamma, "scipy.special.gamma")  # the statement numba typed
    assert "generated derivative" in e.value.message


def crashes_numba(x, y, s):
    h = np.sum(x) * 0.5
    for i in range(0):
        h = np.sum(y, axis=1)[-1] * 0.5
        y = np.tanh(np.outer(np.sum(x, axis=1), x[1]))
    z = h
    for i in range(1):
        z = z + s * np.sin(z)
    x = x + np.sum(z) * 0.5
    return np.sum(np.tanh(x))


def test_a_plain_error_raised_inside_numba_is_a_refusal_too():
    """numba's own code generation fails with IndexError on the derivative of ``np.sum(z)``
    (``np.broadcast_to(dz, np.shape(z))``, z a float; fuzz c54 found four such crashes, also
    AttributeError): a refusal at that line, not numba's error reaching the user."""
    g = s2s.grad(crashes_numba, argnums=(0, 1, 2), target="numba")
    with pytest.raises(S2SError, match="numba's compiler failed with IndexError") as e:
        g(np.ones((2, 3)), np.ones((2, 3)), 0.4)
    assert e.value.line == line_of(crashes_numba, "x = x + np.sum(z)")
    assert e.value.source_line.strip() == "x = x + np.sum(z) * 0.5"
    assert_close(s2s.grad(crashes_numba, argnums=(0, 1, 2))(np.ones((2, 3)), np.ones((2, 3)), 0.4),
                 tuple(numerical_grad(crashes_numba, (np.ones((2, 3)), np.ones((2, 3)), 0.4), n)
                       for n in range(3)))  # the numpy target differentiates it


def test_decorator_and_cli_names():
    @s2s.differentiable(target="numba")
    def square(x):
        return x * x

    assert square.grad(3.0) == 6.0
    text = derive.reverse_module(from_function(rk4_decay), ["k"], target="numba").text
    assert "import numba" in text and "target=numba" in text


SCALE = np.array([1.0, 2.0, 3.0])


def scaled(x):
    return np.sum(SCALE * x ** 2)


def test_a_rebound_module_array_is_not_frozen_into_the_compiled_code():
    global SCALE
    g = s2s.grad(scaled, target="numba")
    x = np.array([0.5, -1.0, 2.0])
    assert_close(g(x), 2 * SCALE * x)
    old = SCALE
    try:
        SCALE = np.array([-1.0, 0.5, 4.0])
        assert_close(g(x), 2 * SCALE * x)
        assert_close(g(x), numerical_grad(scaled, (x,), 0))
    finally:
        SCALE = old


def branchy(W, xs):
    s = 0.0
    h = xs[0]
    for t in range(xs.shape[0]):
        if t % 2 == 0:
            h = np.tanh(W @ xs[t])
        else:
            h = np.sin(W @ h)
        s = s + np.sum(h * h)
    return s


def test_outer_products_are_added_in_place():
    """``dW += np.outer(dz, h)`` in a backward loop: a loop nest adding into dW (numba would
    allocate the n x m product on every iteration); gradients as finite differences say."""
    rng = np.random.default_rng(5)
    args = (rng.normal(size=(4, 4)) / 2, rng.normal(size=(6, 4)))  # in branches: not batched
    grad = s2s.grad(branchy, target="numba")
    assert_close(grad(*args), numerical_grad(branchy, args, 0))
    text = s2s.source(grad)
    code = [line for line in text.splitlines() if not line.strip().startswith("#")]
    assert not any("np.outer" in line for line in code) and "dW[i, j] += " in text
    code = ast.parse("a = dW[0]\nfor t in range(3):\n    dW += np.outer(a, b)\n    dV -= np.outer(c, b)\n"
                     "    dU += np.outer(c, b)").body
    shapes = {"dW": (2, 2), "dV": (2, 2), "a": (2,), "b": (2,), "c": (2,)}  # dU: not known
    targets.outer_in_place(code, shapes.get, Namer(), targets.assigned_from(code))
    kept = [type(s).__name__ for s in code[1].body]
    assert kept == ["AugAssign", "Comment", "For", "AugAssign"]  # a is a row of dW: kept
    assert ast.unparse(code[1].body[2]) == ("for i in range(dV.shape[0]):\n    for j in range(dV.shape[1]):\n"
                                            "        dV[i, j] -= c[i] * b[j]")


def test_elementwise_accumulations_are_added_in_place():
    """``dw += dz * X[i]`` in a per-sample backward loop: a loop adding into dw element by
    element (numba would allocate the product for every sample, then read it again);
    gradients as finite differences say. Kept as they are: a term that may share dw's
    memory, one of another shape (a broadcast), a call, an unknown shape."""
    rng = np.random.default_rng(6)
    args = (rng.normal(size=3), 0.3, rng.normal(size=(7, 3)), (rng.random(7) > 0.5) * 1.0)
    grad = s2s.grad(per_sample, argnums=(0, 1), target="numba")
    assert_close(grad(*args), tuple(numerical_grad(per_sample, args, n) for n in (0, 1)))
    assert "element by element" in s2s.source(grad)
    code = ast.parse("r = dw[::-1]\nq = np.reshape(dv, (3,))\nfor t in range(3):\n"
                     "    dw += s * (x - y) ** 2 / 2.0\n    dw += r * s\n    du += -x\n    dv -= q * s\n"
                     "    dw -= q * s\n    dw += row * s\n    dw += np.tanh(x)\n    dz += x").body
    shapes = {"dw": (3,), "dv": (3,), "du": (3, 1), "x": (3,), "y": (3,), "r": (3,), "q": (3,),
              "row": (1, 3), "s": ()}  # dz: not known; du's shape is not x's
    targets.elementwise_in_place(code, shapes.get, set(), Namer(), targets.memory_shared(code))
    kept = [type(s).__name__ for s in code[2].body]
    assert kept == ["Comment", "For", "AugAssign", "AugAssign", "AugAssign", "Comment", "For",
                    "AugAssign", "AugAssign", "AugAssign"]  # r, q: views of dw, dv
    assert ast.unparse(code[2].body[1]) == "for i2 in range(dw.shape[0]):\n    dw[i2] += s * (x[i2] - y[i2]) ** 2 / 2.0"
    assert ast.unparse(code[2].body[6]) == "for i in range(dw.shape[0]):\n    dw[i] -= q[i] * s"


def sum_of_a_scalar(x, y):
    h = np.sum(x) * 0.5
    for i in range(0):
        y = np.tanh(y)
        h = np.sum(y)
    return np.sum(h) * np.sum(x)


def test_a_scalar_adjoint_is_not_a_0d_array():
    """The adjoint of ``np.sum(h)``, h a float, is ``np.broadcast_to(s, ())`` in the numpy
    target: a read-only 0-d array numba cannot unify with the float ``dh`` becomes later; the
    numba target writes the scalar itself (refused before)."""
    args = (np.array([0.5, 1.0, -0.3]), np.array([0.2, 0.4, 0.1]))
    grad = s2s.grad(sum_of_a_scalar, argnums=(0, 1), target="numba")
    assert_close(grad(*args), tuple(numerical_grad(sum_of_a_scalar, args, n) for n in (0, 1)))
    assert "dh = t4" in s2s.source(grad)
    numpy_grad = s2s.grad(sum_of_a_scalar, argnums=(0, 1))
    numpy_grad(*args)
    assert "dh = np.broadcast_to(t4, ())" in s2s.source(numpy_grad)


def test_an_interruption_while_numba_compiles_is_not_a_refusal(monkeypatch):
    """An exception raised outside numba while it compiles (a timeout's signal handler) is
    raised as it is: only what numba itself raises is a refusal."""
    class Interrupted(Exception):
        pass

    def interrupted(compiled, args):
        raise Interrupted("no answer in 120 s")
    monkeypatch.setattr(numba_errors, "compile_for", interrupted)
    with pytest.raises(Interrupted):
        s2s.grad(rk4_decay, target="numba")(0.5, 1.0, 0.1, 3)
