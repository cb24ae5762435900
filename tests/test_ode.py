"""scipy.integrate.odeint and solve_ivp (s2s/ode.py): the derivative of the solution with
respect to the initial state, the arguments (args= and closure variables) and the time
grid, by the adjoint equations (s2s.grad) and the forward sensitivities (s2s.jvp), against
central differences of the solver at tight tolerances; second derivatives by forward mode
over the gradient (s2s.hvp, s2s.hessian); options without a rule are refused."""
from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.integrate import odeint, solve_ivp

import s2s
from s2s.errors import NoRule, S2SError
from s2s.testing import numerical_grad

TOL = {"rtol": 1e-10, "atol": 1e-10}
T = np.linspace(0.0, 2.0, 6)
Y0 = np.array([1.0, -0.5])


def oscillator(y, t, k, c):
    return np.array([y[1], -k * y[0] - c * y[1] + 0.3 * np.sin(t)])


def fit(k, c, y0, t):  # args=, every input differentiated
    ys = odeint(oscillator, y0, t, args=(k, c), rtol=1e-10, atol=1e-10)
    return np.sum((ys[:, 0] - 0.2 * t) ** 2)


def closure(theta, y0, t):  # a lambda reading an argument of the function
    ys = odeint(lambda y, s: -theta * y + np.cos(s) * y[::-1], y0, t, rtol=1e-10, atol=1e-10)
    return np.sum(ys ** 2)


def matrix(a, y0, t):  # a nested def reading a matrix, returning a list
    def linear(y, s):
        z = a @ y
        return [z[0] - y[0] ** 3 / 3, z[1]]
    ys = odeint(linear, y0, t, tfirst=False, rtol=1e-10, atol=1e-10)
    return np.sum(np.tanh(ys))


def time_first(k, y0, t):
    ys = odeint(lambda s, y, k: np.array([y[1], -k * np.sin(y[0])]), y0, t, (k,), tfirst=True,
                rtol=1e-10, atol=1e-10)
    return np.sum(ys[-1] ** 2) + np.sum(ys[:, 1])


def ivp(k, y0, t0, ts):  # sol.y at t_eval, from t_span[0]
    sol = solve_ivp(lambda s, y: np.array([y[1], -k * y[0] * (1 + 0.1 * s)]), (t0, 3.0), y0, t_eval=ts,
                    rtol=1e-10, atol=1e-10)
    return np.sum(sol.y[0] * sol.t) + np.sum(sol.y[1] ** 2)


def ivp_method(k, c, y0, ts):
    sol = solve_ivp(oscillator_tfirst, (0.0, 2.5), y0, method="DOP853", t_eval=ts, args=(k, c),
                    rtol=1e-11, atol=1e-11)
    return np.sum(sol.y ** 2)


def oscillator_tfirst(t, y, k, c):
    return oscillator(y, t, k, c)


TS = np.linspace(0.0, 2.0, 5)


def ivp_from_start(k, y0):  # t_eval starts where t_span does
    sol = solve_ivp(oscillator_tfirst, (0.0, 2.0), y0, "LSODA", TS, args=(k, 0.2), rtol=1e-10, atol=1e-10)
    return np.sum(sol.y[:, 1:] ** 2) + np.sum(sol.y[1, 0] * y0)


RNG = np.random.default_rng(5)
CASES = [
    (fit, (1.3, 0.4, Y0, T)),
    (closure, (0.7, Y0, T)),
    (matrix, (np.array([[-0.5, 1.0], [-1.0, -0.2]]), Y0, T)),
    (time_first, (0.9, Y0, T)),
    (ivp, (1.1, Y0, 0.1, np.linspace(0.2, 2.5, 5))),
    (ivp_method, (1.2, 0.3, Y0, np.linspace(0.5, 2.4, 4))),
    (ivp_from_start, (0.8, Y0)),
]


def _moved(args, tangents, h):
    return [a + h * t for a, t in zip(args, tangents)]


@pytest.mark.parametrize("f, args", CASES, ids=[f.__name__ for f, _ in CASES])
def test_gradient_and_tangent(f, args):
    nums = tuple(range(len(args)))
    value, grads = s2s.value_and_grad(f, argnums=nums)(*args)
    assert value == pytest.approx(f(*args), rel=1e-12)
    for n, got in zip(nums, grads):
        np.testing.assert_allclose(got, numerical_grad(f, args, n), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{f.__name__}: d/d argument {n}")
    tangents = [float(RNG.standard_normal()) if np.ndim(a) == 0 else RNG.standard_normal(np.shape(a)) * 0.3
                for a in args]
    value, tangent = s2s.jvp(f, args, tangents)
    want = (f(*_moved(args, tangents, 1e-6)) - f(*_moved(args, tangents, -1e-6))) / 2e-6
    assert value == pytest.approx(f(*args), rel=1e-12)
    assert tangent == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_generated_code_names_the_right_hand_side_and_its_derivatives():
    from s2s import derive
    from s2s.source import from_function
    text = derive.reverse_module(from_function(fit), ["k", "c"]).text
    assert "def oscillator(y, t, k, c):" in text and "def oscillator_vjp(y, t, k, c, " in text
    assert "odeint_solve(oscillator, oscillator_vjp, oscillator_jvp, (y0, t, k, c), {'rtol': 1e-10, " \
           "'atol': 1e-10})" in text
    assert "odeint_adjoint(" in text


SECOND = [CASES[i] for i in (0, 2, 4, 6)]  # odeint args, closure matrix, t_span[0], t_eval[0] == t0


@pytest.mark.parametrize("f, args", SECOND, ids=[f.__name__ for f, _ in SECOND])
def test_second_derivatives(f, args):
    """Forward mode over the gradient (s2s.hvp, s2s.hessian) in every input at once, against
    central differences of the gradient: the adjoint solve's tangent (odeint_vjp_tangent)."""
    nums = tuple(range(len(args)))
    grad = s2s.grad(f, argnums=nums)
    tangents = [float(RNG.standard_normal()) if np.ndim(a) == 0 else RNG.standard_normal(np.shape(a)) * 0.3
                for a in args]
    _, got = s2s.jvp(grad, args, tangents)
    plus, minus = grad(*_moved(args, tangents, 1e-4)), grad(*_moved(args, tangents, -1e-4))
    for n, (column, p, m) in enumerate(zip(got, plus, minus)):
        np.testing.assert_allclose(column, (np.asarray(p) - m) / 2e-4, rtol=1e-5, atol=1e-6,
                                   err_msg=f"{f.__name__}: d/d argument {n} of the gradient")
    v = tangents[0]
    want = (grad(*_moved(args, [v] + [0.0] * len(args), 1e-4))[0] -
            grad(*_moved(args, [v] + [0.0] * len(args), -1e-4))[0]) / 2e-4
    np.testing.assert_allclose(s2s.hvp(f)(*args, v), want, rtol=1e-5, atol=1e-6)


def decay(theta, t):  # y' = -k y from y0 = theta[1:], k = theta[0]: y = y0 exp(-k t)
    ys = odeint(lambda y, s: -theta[0] * y, theta[1:], t, rtol=1e-13, atol=1e-13)
    return np.sum(np.linspace(1.0, 2.0, len(t))[:, None] * ys ** 2)


def test_hessian_against_the_exact_solution():
    """L = sum_t w_t |y0|^2 exp(-2 k t): the Hessian in (k, y0) to 1e-9, the solver's accuracy."""
    theta, t = np.array([0.7, 1.0, -0.5, 2.0]), np.linspace(0.0, 1.5, 7)
    k, y0, w = theta[0], theta[1:], np.linspace(1.0, 2.0, len(t))
    e = w * np.exp(-2 * k * t)
    want = np.zeros((4, 4))
    want[0, 0] = np.sum(4 * t ** 2 * e) * (y0 @ y0)
    want[0, 1:] = want[1:, 0] = np.sum(-4 * t * e) * y0
    want[1:, 1:] = 2 * np.sum(e) * np.eye(3)
    np.testing.assert_allclose(s2s.hessian(decay)(theta, t), want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(s2s.hvp(decay)(theta, t, np.eye(4)[0]), want[0], rtol=1e-9, atol=1e-9)


def test_a_third_derivative_is_refused():
    """Forward mode over the Hessian-vector product reads the tangent solve: refused."""
    with pytest.raises(NoRule, match="this derivative through scipy.integrate.odeint or solve_ivp"):
        s2s.hvp(s2s.grad(fit))(1.3, 0.4, Y0, T, 1.0)


def events(y0, t):
    return np.sum(solve_ivp(oscillator_tfirst, (0.0, 2.0), y0, t_eval=t, args=(1.0, 0.1),
                            events=lambda s, y, k, c: y[0]).y)


def dense(y0, t):
    return np.sum(solve_ivp(oscillator_tfirst, (0.0, 2.0), y0, t_eval=t, args=(1.0, 0.1), dense_output=True).y)


def no_t_eval(y0, t):
    return np.sum(solve_ivp(oscillator_tfirst, (0.0, 2.0), y0, args=(1.0, 0.1)).y)


def unknown_method(y0, t):
    return np.sum(solve_ivp(oscillator_tfirst, (0.0, 2.0), y0, method=Solver, t_eval=t, args=(1.0, 0.1)).y)


class Solver:
    pass


def jacobian(y0, t):
    return np.sum(odeint(oscillator, y0, t, args=(1.0, 0.1), Dfun=lambda y, s, k, c: np.eye(2)))


def variable_tolerance(y0, t):
    tol = np.sum(y0) * 1e-8
    return np.sum(odeint(oscillator, y0, t, args=(1.0, 0.1), rtol=tol))


def library_rhs(y0, t):
    return np.sum(odeint(np.sin, y0, t))


def wrong_arity(y0, t):
    return np.sum(odeint(oscillator, y0, t, args=(1.0,)))


@pytest.mark.parametrize("f, message, snippet", [
    (events, "scipy.integrate.solve_ivp: events= has no derivative rule", "lambda s, y, k, c: y[0]"),
    (dense, "dense_output= has no derivative rule", "True).y"),
    (no_t_eval, "solve_ivp without t_eval= has no derivative", "solve_ivp("),
    (unknown_method, "scipy.integrate.solve_ivp: method=", "Solver"),  # not a constant, or no rule
    (jacobian, "scipy.integrate.odeint: Dfun= has no derivative rule", "lambda y, s, k, c"),
    (variable_tolerance, "rtol= must be a constant", "tol)"),
    (library_rhs, "the right-hand side of an ODE must be a Python function", "np.sin"),
    (wrong_arity, "the right-hand side oscillator takes 4 arguments; scipy.integrate.odeint passes it 3",
     "oscillator, y0"),
])
def test_options_without_a_rule_are_refused_where_they_are(f, message, snippet):
    with pytest.raises(S2SError) as info:
        s2s.grad(f)(Y0, T)
    err = info.value
    assert re.search(re.escape(message), str(err)), str(err)
    assert err.filename == __file__
    line = open(__file__).read().splitlines()[err.line - 1]
    assert line[err.col:].startswith(snippet), (line, err.col)


@pytest.mark.parametrize("target", ["cupy", "numba"])
def test_targets_other_than_numpy_and_dask_are_refused(target):
    from s2s import derive
    from s2s.source import from_function
    with pytest.raises(NoRule, match=f"an ODE solve has no derivative for the {target} target") as info:
        derive.reverse_module(from_function(fit), ["k"], target=target)
    assert info.value.filename == __file__
    assert open(__file__).read().splitlines()[info.value.line - 1][info.value.col:].startswith("odeint(oscillator")


def damped(k, y0, ts):  # one mode decays 50 times faster than the others
    sol = solve_ivp(lambda s, y: np.array([-k * y[0] + y[1], -50.0 * (y[1] - np.cos(s))]), (0.0, 2.0), y0,
                    method="Radau", t_eval=ts, rtol=1e-10, atol=1e-10)
    return np.sum(sol.y ** 2)


def test_the_adjoint_reads_the_state_of_a_forward_solve():
    """Integrating the state backwards beside the adjoint amplifies the error in a mode the ODE
    damps (3e-6 for this gradient in k, 1e-10 tolerances); reading it from a dense forward
    solve of each interval keeps the gradient at the solver's accuracy."""
    args = (1.3, np.array([1.0, 0.2]), np.linspace(0.2, 1.8, 5))
    got = s2s.grad(damped)(*args)
    assert got == pytest.approx(numerical_grad(damped, args, 0), rel=1e-8, abs=1e-8)


def shadowed(x):  # a local named like its function, passed to a call: not a recursive call
    shadowed = np.sin(x)
    return np.cos(shadowed), shadowed


def calls_shadowed(x):
    a, b = shadowed(x)
    return np.sum(a * b)


def test_a_passed_local_named_like_its_function_is_not_a_call_of_it():
    """Functions passed to a call count as called (an ODE's right-hand side, for the disk cache
    and for recursion); a local variable of the same name does not."""
    x = np.linspace(0.1, 1.0, 4)
    np.testing.assert_allclose(s2s.grad(calls_shadowed)(x), numerical_grad(calls_shadowed, (x,), 0),
                               rtol=1e-6, atol=1e-8)


def test_ode_fit_example_hessian():
    """Issue 13's ODE parameter fit (generated_examples/ode_fit.py): its Hessian in the log rates
    and its Hessian-vector product in the initial state, against differences of the gradient."""
    from generated_examples.ode_fit import loss
    from generated_examples.regenerate import ode_fit_inputs
    rates, z0, t, observed = ode_fit_inputs(np.random.default_rng(0))[0]
    grad = s2s.grad(loss, argnums=(0, 1))
    H = s2s.hessian(loss)(rates, z0, t, observed)
    want = np.stack([(grad(rates + 1e-4 * e, z0, t, observed)[0] - grad(rates - 1e-4 * e, z0, t, observed)[0]) / 2e-4
                     for e in np.eye(4)])
    np.testing.assert_allclose(H, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(H, H.T, rtol=1e-7, atol=1e-8)
    v = np.array([0.3, -0.7])
    want = (grad(rates, z0 + 1e-4 * v, t, observed)[1] - grad(rates, z0 - 1e-4 * v, t, observed)[1]) / 2e-4
    np.testing.assert_allclose(s2s.hvp(loss, argnums=1)(rates, z0, t, observed, v), want, rtol=1e-5, atol=1e-6)
