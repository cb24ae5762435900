"""Derivatives inside differentiated functions (issue 12): ``s2s.grad``, ``value_and_grad`` and
``hvp`` called in a function that is itself differentiated. The inner derivative is generated
source, a derivative unit of the outer module (`s2s.nested`); checked against central finite
differences in reverse and forward mode."""
import numpy as np
import pytest

import s2s
from s2s.testing import assert_close, check_mode, numerical_grad

rng = np.random.default_rng(5)


# --- a saddle point: inner gradient descent in y, outer gradient in x ------------------------

def payoff(x, y):
    return np.sum(x * y) + 0.5 * np.sum(y ** 2) - 0.3 * np.sum(np.cos(x)) + 0.1 * np.sum(x ** 2 * y)


dpayoff_dy = s2s.grad(payoff, argnums=1)


def best_response_value(x):
    """min over y by 12 gradient steps (s2s's gradient), then the payoff there."""
    y = np.zeros_like(x)
    for i in range(12):
        y = y - 0.4 * dpayoff_dy(x, y)
    return payoff(x, y)


def until_converged(x):
    """The same descent, as many steps as the data needs (a while loop)."""
    y = np.zeros_like(x)
    step = s2s.grad(payoff, argnums=1)(x, y)
    n = 0
    while np.sum(step ** 2) > 1e-12 and n < 200:
        y = y - 0.4 * step
        step = s2s.grad(payoff, argnums=1)(x, y)
        n = n + 1
    return payoff(x, y)


def finite_difference_response(x, eps=1e-5):
    """The same descent with a central-difference inner gradient: no s2s at all."""
    y = np.zeros_like(x)
    for i in range(12):
        y = y - 0.4 * numerical_grad(payoff, (x, y), 1, eps)
    return payoff(x, y)


x0 = np.array([0.3, -0.5, 0.8])


@pytest.mark.parametrize("mode", ["grad", "jvp", "hvp", "hessian"])
def test_saddle_point_through_the_inner_loop(mode):
    check_mode(mode, best_response_value, (x0,))


def test_saddle_point_against_an_independent_check():
    got = s2s.grad(best_response_value)(x0)
    assert_close(got, numerical_grad(finite_difference_response, (x0,), 0, 1e-4), rtol=1e-4, atol=1e-6)
    text = s2s.source(s2s.grad(best_response_value))
    assert "def dpayoff_dy(x, y):" in text and "vjp_dpayoff_dy(x, y, " in text
    assert "def jvp_grad_payoff(x, y, " in text  # the Hessian of payoff, by forward mode


@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_saddle_point_with_a_while_loop(mode):
    check_mode(mode, until_converged, (x0,))


# --- Newton's method, differentiated end to end ------------------------------------------------

def energy(x, a):
    return a * x ** 4 / 4.0 + x ** 2 / 2.0 - a * x


slope = s2s.grad(energy)
curvature = s2s.grad(slope)
curvature_times = s2s.hvp(energy)


def newton(a):
    x = 1.0
    for i in range(6):
        x = x - slope(x, a) / curvature(x, a)
    return x


def newton_hvp(a, x):
    for i in range(4):
        x = x - slope(x, a) / curvature_times(x, a, 1.0)
    return x


@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_newton_iteration(mode):
    check_mode(mode, newton, (0.7,))
    check_mode(mode, newton_hvp, (0.7, 1.2), argnums=(0, 1))
    assert abs(slope(newton(0.7), 0.7)) < 1e-10  # it converged: the root of the slope


# --- a loss that penalises the norm of its input gradient --------------------------------------

def model(w, X):
    return np.sum(np.tanh(X @ w) ** 2)


def penalised(w, X):
    dX = s2s.grad(model, argnums=1)(w, X)
    return model(w, X) + 0.1 * np.sum(dX ** 2)


def value_and_both(w, X):
    value, dw = s2s.value_and_grad(model)(w, X)
    dw2, dX = s2s.grad(model, argnums=(0, 1))(w, X)
    return value * np.sum(dw ** 2) + np.sum(dX * X) + np.sum(dw2)


@pytest.mark.parametrize("mode, fn", [("grad", penalised), ("jvp", penalised), ("hvp", penalised),
                                      ("grad", value_and_both), ("jvp", value_and_both)])
def test_input_gradient_penalty(mode, fn):
    check_mode(mode, fn, (rng.standard_normal(3) * 0.5, rng.standard_normal((4, 3))), argnums=(0, 1))


# --- a directional derivative inside: s2s.jvp ---------------------------------------------------

def field(x, w):
    return np.tanh(w * x) + 0.1 * x ** 2


def directional(x, w):
    value, slope = s2s.jvp(field, (x, w), (np.ones_like(x), 0.0))
    return np.sum(value * slope) + np.sum(slope ** 2)


@pytest.mark.parametrize("mode", ["grad", "jvp", "hvp"])
def test_jvp_inside(mode):
    check_mode(mode, directional, (x0, 0.7), argnums=(0, 1))


# --- Jacobians and Hessians inside: a vector Newton step, a Jacobian penalty ---------------------

def bowl(x, a):
    return np.sum(a * x ** 4) / 4.0 + 0.5 * np.sum(x ** 2) + 0.3 * x[0] * x[1] - np.sum(a * x)


dbowl = s2s.grad(bowl)
hessian_of_bowl = s2s.hessian(bowl)


def vector_newton(a):
    x = np.ones(3)
    for i in range(4):
        x = x - np.linalg.solve(hessian_of_bowl(x, a), dbowl(x, a))
    return np.sum(x ** 2)


def squash(x):
    return np.tanh(x) * x[::-1]


def jacobian_penalty(x):
    J = s2s.jacobian(squash)(x)
    return np.sum(J ** 2) + np.sum(x)


@pytest.mark.parametrize("mode, fn, args", [
    ("grad", vector_newton, (np.array([0.7, 1.2, 0.9]),)),
    ("jvp", vector_newton, (np.array([0.7, 1.2, 0.9]),)),
    ("grad", jacobian_penalty, (x0,)), ("jvp", jacobian_penalty, (x0,)),
    ("hvp", jacobian_penalty, (x0,))])
def test_jacobian_and_hessian_inside(mode, fn, args):
    check_mode(mode, fn, args)


# --- nested twice, and inside a recursive helper --------------------------------------------------

def wavy(x):
    return np.sum(np.sin(x) * x)


dwavy = s2s.grad(wavy)


def gradient_energy(x):
    return np.sum(dwavy(x) ** 2)


dgradient_energy = s2s.grad(gradient_energy)


def twice_nested(x):
    """A derivative of a function that calls a derivative."""
    return np.sum(np.tanh(dgradient_energy(x)))


def descend(x, n):
    return x if n == 0 else descend(x - 0.1 * dwavy(x), n - 1)


def recursive_descent(x):
    return np.sum(descend(x, 3) ** 2)


@pytest.mark.parametrize("mode, fn", [("grad", twice_nested), ("jvp", twice_nested),
                                      ("grad", recursive_descent), ("jvp", recursive_descent),
                                      ("hvp", recursive_descent), ("hessian", recursive_descent)])
def test_nested_twice_and_in_a_recursive_helper(mode, fn):
    check_mode(mode, fn, (x0,))


# --- refused, with the place ------------------------------------------------------------------

def with_aux(x):
    return np.sum(x ** 2), x


def calls_aux_gradient(x):
    g, aux = s2s.grad(with_aux, has_aux=True)(x)
    return np.sum(g)


def calls_jacobian(x):
    return np.sum(s2s.jacobian(np.tanh)(x))


def calls_two_jacobians(x):
    return np.sum(s2s.jacobian(squash, argnums=(0,))(x))


@pytest.mark.parametrize("fn, message", [
    (calls_aux_gradient, "has_aux"), (calls_jacobian, "s2s.jacobian is given something s2s cannot read"),
    (calls_two_jacobians, "s2s.jacobian inside a differentiated function takes one argnums")])
def test_refused_with_a_place(fn, message):
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(fn)(x0)
    assert message in str(info.value) and f"{__file__}:" in str(info.value)


MODULE = '''
import numpy as np
import s2s

X = np.array([1.0, 2.0, 3.0])


def inner(w, y):
    return np.sum((X * w - y) ** 2)


dinner = s2s.grad(inner)


def outer(w):
    return np.sum(dinner(w, 1.0) ** 2)
'''


def test_a_global_the_inner_function_reads_is_followed(tmp_path, monkeypatch):
    """Rebinding a module global that only the inner function reads changes the gradient."""
    (tmp_path / "rebound_inner.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import rebound_inner as m
    grad, w = s2s.grad(m.outer), np.array([0.5, -0.2, 0.1])
    assert_close(grad(w), numerical_grad(m.outer, (w,), 0))
    monkeypatch.setattr(m, "X", np.array([3.0, -1.0, 2.0]))  # same shape: swapped in
    assert_close(grad(w), numerical_grad(m.outer, (w,), 0))
    monkeypatch.setattr(m, "X", np.array([3.0, -1.0, 2.0, 5.0]))  # generated again
    assert_close(grad(np.ones(4)), numerical_grad(m.outer, (np.ones(4),), 0))


STATIC = '''
import numpy as np
import s2s


def payoff(x, y):
    return np.sum(x * y) + 0.5 * np.sum(y ** 2) + 0.1 * np.sum(x ** 2 * y)


dpdy = s2s.grad(payoff, argnums=1)


def descent(x):
    y = np.zeros_like(x)
    for i in range(5):
        y = y - 0.5 * s2s.grad(payoff, argnums=1)(x, y)
    return payoff(x, y) + np.sum(dpdy(x, x) ** 2)
'''


def test_read_from_a_file(tmp_path, monkeypatch):
    """s2s-diff reads ``dpdy = s2s.grad(payoff, argnums=1)`` and the form written in place."""
    from s2s import derive, emit
    from s2s.source import from_file
    (tmp_path / "game.py").write_text(STATIC)
    gen = derive.reverse_module(from_file(str(tmp_path / "game.py"), "descent"), ["x"])
    grad = emit.compile_module(gen.text, "descent", gen.injected)[gen.entry]
    monkeypatch.syspath_prepend(str(tmp_path))
    import game  # the primal, run for the finite differences
    assert_close(grad(x0), numerical_grad(game.descent, (x0,), 0))
    assert "def dpdy(x, y):" in gen.text and "def grad_payoff(x, y):" in gen.text
