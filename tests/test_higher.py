"""Higher derivatives and the JAX-style API: jvp, vjp, elementwise_grad, jacobian, hessian, hvp.

Second derivatives are forward mode over the *generated* gradient; each is
checked against central differences of the (checked) gradient in float64.
"""
from __future__ import annotations

import ast

import numpy as np
import pytest

import s2s
from s2s.rules import generated_code, helpers
from s2s.testing import EPS, assert_close, numerical_grad

RNG = np.random.default_rng(3)


def numerical_jacobian(fn, args, argnum):
    """d fn(*args) / d args[argnum], shaped out.shape + x.shape, by central differences."""
    x = np.asarray(args[argnum], dtype=float)
    out_shape = np.shape(fn(*args))
    columns = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = EPS
        e = e.reshape(x.shape)
        hi, lo = list(args), list(args)
        hi[argnum], lo[argnum] = x + e, x - e
        columns.append(np.ravel((np.asarray(fn(*hi)) - np.asarray(fn(*lo))) / (2 * EPS)))
    return np.stack(columns, axis=-1).reshape(out_shape + x.shape)


# --- functions ---------------------------------------------------------------------

def square(x):
    return x ** 2


def cube(x):
    return x ** 3 - 2.0 * x


def quadratic(x):
    return 2 * x ** 2 - 5 * x + 3


def logistic_loss(w, X, y):
    z = X @ w
    p = 1.0 / (1.0 + np.exp(-z))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)) + 0.01 * np.sum(w ** 2)


def loop_and_branch(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = s + x[i] ** 3
        else:
            s = s + np.sin(x[i]) * x[0]
    return s * np.sum(x ** 2)


def rnn_loss(W, h, xs):
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
    return np.sum(h ** 2)


def vector_fn(x):
    return np.concatenate([np.sin(x) * x[0], np.cumsum(x ** 2)])


def squash(x, A):
    return np.tanh(A @ x) * np.sum(x)


# --- derivatives of derivatives -------------------------------------------------------

def test_second_derivative_of_square_is_two():
    d2 = s2s.grad(s2s.grad(square))
    assert d2(3.0) == 2.0
    assert d2(-1.5) == 2.0
    assert "def jvp_grad_square(" in s2s.source(d2)


def test_third_derivative_of_a_scalar_function():
    d3 = s2s.grad(s2s.grad(s2s.grad(cube)))
    assert d3(0.7) == pytest.approx(6.0)
    assert s2s.grad(s2s.grad(cube))(0.7) == pytest.approx(6 * 0.7)


def test_elementwise_grad_and_its_own_elementwise_grad():
    x = np.arange(-4, 4, 0.01)
    first = s2s.elementwise_grad(quadratic)
    second = s2s.elementwise_grad(first)
    assert_close(first(x), 4 * x - 5, rtol=1e-12, atol=1e-12)
    assert_close(second(x), np.full_like(x, 4.0), rtol=1e-12, atol=1e-12)
    assert first(1.0) == pytest.approx(-1.0)
    assert "def jvp_vjp_quadratic(" in s2s.source(second)


def test_hessian_of_logistic_regression():
    w, X = RNG.standard_normal(3), RNG.standard_normal((8, 3))
    y = (RNG.random(8) < 0.5).astype(float)
    H = s2s.hessian(logistic_loss)(w, X, y)
    grad = s2s.grad(logistic_loss)
    assert_close(H, numerical_jacobian(grad, (w, X, y), 0), rtol=1e-6, atol=1e-7)
    assert_close(H, H.T, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_hessian_through_a_loop_and_a_branch(seed):
    x = np.random.default_rng(seed).standard_normal(5)
    assert np.any(x > 0) and np.any(x < 0)
    H = s2s.hessian(loop_and_branch)(x)
    assert_close(H, numerical_jacobian(s2s.grad(loop_and_branch), (x,), 0), rtol=1e-6, atol=1e-6)


def test_hessian_of_an_rnn_with_respect_to_its_weights():
    W, h, xs = 0.5 * RNG.standard_normal((3, 3)), RNG.standard_normal(3), RNG.standard_normal((4, 3))
    H = s2s.hessian(rnn_loss)(W, h, xs)
    assert H.shape == (3, 3, 3, 3)
    assert_close(H, numerical_jacobian(s2s.grad(rnn_loss), (W, h, xs), 0), rtol=1e-6, atol=1e-7)


def test_hvp_is_hessian_times_vector():
    w, X = RNG.standard_normal(3), RNG.standard_normal((8, 3))
    y = (RNG.random(8) < 0.5).astype(float)
    v = RNG.standard_normal(3)
    H = s2s.hessian(logistic_loss)(w, X, y)
    assert_close(s2s.hvp(logistic_loss)(w, X, y, v), H @ v, rtol=1e-10, atol=1e-12)
    x = RNG.standard_normal(5)
    v = RNG.standard_normal(5)
    assert_close(s2s.hvp(loop_and_branch)(x, v), s2s.hessian(loop_and_branch)(x) @ v,
                 rtol=1e-10, atol=1e-12)


def test_gradient_of_a_gradient_with_respect_to_another_argument():
    def f(a, x):
        return a * np.sum(np.sin(x))
    x = RNG.standard_normal(4)
    d_a = s2s.grad(f)  # sum(sin(x))
    assert_close(s2s.grad(d_a, argnums=1)(0.3, x), np.cos(x), rtol=1e-12, atol=1e-12)


def test_second_derivative_source_is_generated_and_readable():
    hess = s2s.hessian(logistic_loss)
    text = s2s.source(hess)  # before any call: the module for array arguments
    assert "Forward-mode derivative of `grad_logistic_loss`" in text
    tree = ast.parse(text)
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("jvp_")]
    assert fn.name == "jvp_grad_logistic_loss"
    assert [a.arg for a in fn.args.args][:3] == ["w", "X", "y"]
    assert "matmul_vjp_b" not in text or "def matmul_vjp_b(" in text  # helpers are copied in


# --- jacobian, jvp, vjp ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["forward", "reverse", None])
def test_jacobian_of_a_vector_function(mode):
    x = RNG.standard_normal(4)
    J = s2s.jacobian(vector_fn, mode=mode)(x)
    assert J.shape == (8, 4)
    assert_close(J, numerical_jacobian(vector_fn, (x,), 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_with_respect_to_a_matrix(mode):
    x, A = RNG.standard_normal(3), RNG.standard_normal((2, 3))
    J = s2s.jacobian(squash, argnums=1, mode=mode)(x, A)
    assert J.shape == (2, 2, 3)
    assert_close(J, numerical_jacobian(squash, (x, A), 1), rtol=1e-6, atol=1e-7)


def test_jacobian_picks_the_cheaper_mode():
    wide, tall = RNG.standard_normal(10), RNG.standard_normal(2)
    jac = s2s.jacobian(vector_fn)
    jac(tall)  # 2 inputs, 4 outputs: forward
    assert "Forward-mode" in s2s.source(jac)
    def reduce(x):
        return np.stack([np.sum(x ** 2), np.prod(np.cos(x))])
    jac = s2s.jacobian(reduce)
    J = jac(wide)  # 10 inputs, 2 outputs: reverse
    assert "Reverse-mode" in s2s.source(jac)
    assert_close(J, numerical_jacobian(reduce, (wide,), 0), rtol=1e-6, atol=1e-7)


def test_jvp_matches_finite_differences():
    w, X = RNG.standard_normal(3), RNG.standard_normal((8, 3))
    y = (RNG.random(8) < 0.5).astype(float)
    tw, tX = RNG.standard_normal(3), RNG.standard_normal((8, 3))
    value, tangent = s2s.jvp(logistic_loss, (w, X, y), (tw, tX, np.zeros(8)))
    assert value == pytest.approx(logistic_loss(w, X, y))
    expected = (logistic_loss(w + EPS * tw, X + EPS * tX, y) - logistic_loss(w - EPS * tw, X - EPS * tX, y)) / (2 * EPS)
    assert tangent == pytest.approx(expected, rel=1e-6)


def test_jvp_ignores_tangents_of_integer_arguments():
    def f(x, n):
        return x ** n
    value, tangent = s2s.jvp(f, (2.0, 3), (1.0, 0))
    assert (value, tangent) == (8.0, pytest.approx(12.0))


def test_jvp_of_a_generated_gradient_is_a_hessian_vector_product():
    x, v = RNG.standard_normal(5), RNG.standard_normal(5)
    grad = s2s.grad(loop_and_branch)
    value, tangent = s2s.jvp(grad, (x,), (v,))
    assert_close(value, grad(x), rtol=1e-12, atol=1e-12)
    assert_close(tangent, numerical_jacobian(grad, (x,), 0) @ v, rtol=1e-6, atol=1e-6)


def test_vjp_matches_the_jacobian():
    x, A = RNG.standard_normal(3), RNG.standard_normal((2, 3))
    value, vjp_fn = s2s.vjp(squash, x, A)
    assert_close(value, squash(x, A), rtol=1e-12, atol=1e-12)
    u = RNG.standard_normal(2)
    dx, dA = vjp_fn(u)
    assert_close(dx, u @ numerical_jacobian(squash, (x, A), 0), rtol=1e-6, atol=1e-7)
    assert_close(dA, np.tensordot(u, numerical_jacobian(squash, (x, A), 1), axes=1), rtol=1e-6, atol=1e-7)
    assert "vjp_squash" in s2s.source(vjp_fn)


def test_vjp_of_a_scalar_function_is_its_gradient():
    x = RNG.standard_normal(4)
    _, vjp_fn = s2s.vjp(lambda_free_loss, x)
    (g,) = vjp_fn(1.0)
    assert_close(g, numerical_grad(lambda_free_loss, (x,), 0), rtol=1e-6, atol=1e-7)


def lambda_free_loss(x):
    return np.sum(np.exp(x) * x)


def test_unsupported_nestings_are_refused():
    x = RNG.standard_normal(3)
    hess = s2s.hessian(loop_and_branch)
    with pytest.raises(s2s.S2SError):
        s2s.grad(hess)(x)
    with pytest.raises(s2s.S2SError):
        s2s.vjp(s2s.grad(loop_and_branch), x)
    with pytest.raises(s2s.S2SError):
        s2s.grad(s2s.grad(loop_and_branch))(x)  # the inner gradient is not a scalar


# --- rules of the helpers generated code calls ---------------------------------------------

LINEAR_CASES = [
    ("unbroadcast", lambda: (RNG.standard_normal((3, 4)), (1, 4))),
    ("expand_reduced", lambda: (RNG.standard_normal(3), (3, 4), 1, False)),
    ("matmul_vjp_a", lambda: (RNG.standard_normal((3, 2)), RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2)))),
    ("matmul_vjp_b", lambda: (RNG.standard_normal(3), RNG.standard_normal((3, 4)), RNG.standard_normal(4))),
    ("unstack", lambda: (RNG.standard_normal((3, 4)), 1)),
    ("undiff", lambda: (RNG.standard_normal((3, 4)), 1, -1)),
    ("sort_adjoint", lambda: (RNG.standard_normal(5), RNG.standard_normal(5), -1)),
    ("index_add", lambda: (RNG.standard_normal((5, 2)), np.array([0, 3, 3]), RNG.standard_normal((3, 2)))),
]


def _leaves(x):
    return list(x) if isinstance(x, tuple) else [x]


@pytest.mark.parametrize("name, make", LINEAR_CASES, ids=[c[0] for c in LINEAR_CASES])
def test_linear_helper_rules(name, make):
    helpers.np = np
    rule = generated_code.lookup(f"s2s.helpers.{name}")
    args = make()
    values = dict(zip(rule.signature.parameters, args))
    fn = getattr(helpers, name)
    for p, template in rule.jvp_templates({}).items():
        tangent = RNG.standard_normal(np.shape(values[p]))
        namespace = {"np": np, **{h: getattr(helpers, h) for h in dir(helpers) if not h.startswith("_")},
                     **values, "d" + p: tangent}
        got = eval(compile(ast.parse(template, mode="eval"), name, "eval"), namespace)  # noqa: S307
        def moved(t, p=p, tangent=tangent):  # copies: index_add adds in place
            return fn(*[v + t * tangent if q == p else v.copy() if isinstance(v, np.ndarray) else v
                        for q, v in values.items()])
        want = [(np.asarray(a) - np.asarray(b)) / (2 * EPS) for a, b in zip(_leaves(moved(EPS)), _leaves(moved(-EPS)))]
        for g, w in zip(_leaves(got), want):
            assert_close(g, w, rtol=1e-6, atol=1e-7, what=f"{name} JVP wrt {p}")


def test_eigh_gaps_rule():
    helpers.np = np
    w = np.array([0.3, 1.1, 2.6])
    rule = generated_code.lookup("s2s.helpers.eigh_gaps")
    dw, g = RNG.standard_normal(3), RNG.standard_normal((3, 3))
    ans = helpers.eigh_gaps(w)
    tangent = eval(rule.jvp_templates({})["w"], {"np": np, "ans": ans, "dw": dw})  # noqa: S307
    assert_close(tangent, (helpers.eigh_gaps(w + EPS * dw) - helpers.eigh_gaps(w - EPS * dw)) / (2 * EPS),
                 rtol=1e-6, atol=1e-7)
    adjoint = eval(rule.vjp_templates({})["w"], {"np": np, "ans": ans, "g": g})  # noqa: S307
    assert_close(adjoint, numerical_grad(lambda v: np.sum(g * helpers.eigh_gaps(v)), (w,), 0),
                 rtol=1e-6, atol=1e-7)


def test_every_helper_rule_names_a_helper():
    for qualname, rule in generated_code.RULES.items():
        name = qualname.rsplit(".", 1)[1]
        assert callable(getattr(helpers, name, None)), qualname
        assert set(rule.differentiable_params) <= set(rule.signature.parameters), qualname


INTEGER_ARGUMENTS = {"shape", "axis", "axes", "keepdims", "offset", "axis1", "axis2", "k", "uplo", "reps",
                     "repeats", "pad_width", "n", "indices"}


THIRD_ORDER = {"expm_frechet2": {"a"},  # expm's third derivative in its point: refused (no rule)
               # np.einsum with '...': a second derivative in the operands is refused (see
               # test_rules.py::test_einsum_ellipsis_second_derivative_is_refused)
               "einsum_vjp": {"operands"},
               # the ODE's solves: a second derivative reads odeint_adjoint as odeint_vjp
               # (s2s/ode.py); forward over forward and third derivatives are refused
               # (tests/test_ode.py)
               "odeint_adjoint": {"ans", "inputs"}, "odeint_tangent": {"ans", "inputs"},
               "odeint_vjp_tangent": {"point"}}


def test_every_helper_is_differentiable_again():
    """A helper generated code calls has a forward rule for each argument that may carry a
    derivative, or forward mode reads its source (then it must be in the subset s2s reads)."""
    from s2s.normalize import normalize
    from s2s.source import HELPER_NAMES, from_function
    for name in sorted(HELPER_NAMES):
        rule = generated_code.lookup(f"s2s.helpers.{name}")
        if name in generated_code.FROM_SOURCE:
            assert rule is None, name
            normalize(from_function(getattr(helpers, name)), allow_mutation=True)  # refuses what it cannot read
        else:
            assert rule is not None, f"helper {name} has no forward rule and is not read from source"
            if not rule.nondifferentiable:  # all but integer arguments (shapes, axes, indices)
                missing = set(rule.differentiable_params) - set(rule.jvp_templates({})) - INTEGER_ARGUMENTS
                assert missing <= THIRD_ORDER.get(name, set()), (name, missing)


# --- forward mode reads every idiom of the gradients s2s writes (issue 9, item 13) ----------

IDX = np.array([0, 2, 2])


def prod_of_tanh(x):
    return np.prod(np.tanh(x))


def clipped(x):  # the adjoint masks with `&`
    return np.sum(np.clip(x, -0.5, 0.5) ** 2 * x)


def enumerated(x):  # dx = np.broadcast_to(s, ...), then dx[i] += ... after a copy
    s = 0.0
    for i, v in enumerate(x):
        s = s + v ** 2 * i
    return s * np.sum(x)


def fancy_columns(x):  # np.add.at(dX, (slice(None), IDX), g)
    X = np.outer(x, x)
    return np.sum(X[:, IDX] ** 3)


def loop_with_break(x):  # for i in reversed(range(3)[:n_iter]) while the body pops n_iter
    for t in range(1):
        for i in range(3):
            x = np.sin(x) * 1.5
            if np.sum(x) > 2.0:
                break
    return np.sum(x ** 2)


def copy_then_write(x):  # dz = np.reshape(dv, ...), then dz = dz.copy(); dz[0] += ...
    z = np.cos(x)
    for j, e in enumerate(x):
        z = z + e ** 2 * 0.1 * j
    v = z.copy()
    return np.sum(np.sin(v) * z[0] + v)


def cumulative(x):
    return np.sum(np.cumprod(np.tanh(x)) * x)


def solved(x):
    A = np.outer(x, x[::-1]) + 4.0 * np.eye(4)
    return np.sum(np.linalg.solve(A, x) ** 2)


def factored(x):
    S = np.outer(x, x) + np.diag([1.0, 2.5, 4.0, 5.5])  # distinct eigenvalues
    w, v = np.linalg.eigh(S)
    return np.sum(np.linalg.cholesky(S) * x) + np.sum(w ** 2 * x) + np.sum(v[:, 0] ** 2 * x)


def normed(x):
    return np.linalg.norm(x) ** 3 + np.linalg.norm(np.outer(x, x) + np.eye(4), "fro")


IDIOMS = [prod_of_tanh, clipped, enumerated, fancy_columns, loop_with_break, copy_then_write, cumulative,
          solved, factored, normed]


@pytest.mark.parametrize("fn", IDIOMS, ids=[f.__name__ for f in IDIOMS])
def test_hessians_through_every_idiom_of_generated_gradients(fn):
    x = np.array([0.31, -0.47, 0.74, 0.12])
    v = RNG.standard_normal(4)
    grad = s2s.grad(fn)
    assert_close(grad(x), numerical_grad(fn, (x,), 0), rtol=1e-6, atol=1e-7)
    want = (grad(x + EPS * v) - grad(x - EPS * v)) / (2 * EPS)
    assert_close(s2s.hvp(fn)(x, v), want, rtol=1e-5, atol=1e-6)
    H = s2s.hessian(fn)(x)
    assert_close(H @ v, want, rtol=1e-5, atol=1e-6)


def write_through_a_reshape(x):
    y = np.reshape(x * 2.0, (2, 2))
    z = np.reshape(y, (4,))  # a view of y
    y[0, 0] += 1.0
    return np.sum(z ** 2)


def test_a_write_while_a_view_is_alive_is_still_refused():
    with pytest.raises(s2s.S2SError, match="may share memory with 'z'"):
        s2s.jvp(write_through_a_reshape, (np.ones(4),), (np.ones(4),))


OFFSET = np.linspace(-0.3, 0.4, 4)


def rebinds_to_a_module_array(x, y):
    """A gradient that saves x in a stack array, then rebinds x to a module array: forward
    mode over it took the module array for an alias of the stack (its tangent `dOFFSET`)."""
    for _ in x.copy():
        x = OFFSET
    return np.sum(np.tanh(x * y)) + y * np.sum(x)


def test_hvp_when_a_variable_is_rebound_to_a_module_array():
    x, v = np.array([0.3, 0.7, -0.2, 0.1]), np.array([1.0, 0.5, -1.0, 0.2])
    for argnum, args, direction in [(0, (x, 0.5), v), (1, (x, 0.5), 1.0)]:
        grad = s2s.grad(rebinds_to_a_module_array, argnums=argnum)
        jac = np.reshape(numerical_jacobian(grad, args, argnum), (np.size(direction),) * 2)
        expected = jac @ np.ravel(direction)
        hvp = s2s.hvp(rebinds_to_a_module_array, argnums=argnum)(*args, direction)
        assert_close(np.ravel(hvp), np.ravel(expected), rtol=1e-6, atol=1e-7)
