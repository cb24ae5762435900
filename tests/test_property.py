"""Random small programs (expressions, loops, branches) against finite differences."""
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import s2s
from s2s.testing import numerical_grad
from tests import fuzz

UNARY = ["np.sin({})", "np.tanh({})", "np.cos({})", "({}) * 0.5", "-({})", "({}) ** 2 * 0.1",
         "np.exp(np.sin({}))", "np.sqrt(({}) ** 2 + 1.0)", "({})[::-1]", "np.sum({}) * 0.1",
         "np.max({})", "np.mean({}, axis=0, keepdims=True)", "np.tanh({}).sum() * 0.2"]
BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / (({}) ** 2 + 1.0)",
          "({})[1] * ({})", "np.maximum({}, ({}) * 0.3)", "np.dot({}, {}) * 0.1"]


@st.composite
def expressions(draw, names, depth=2):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        leaf = draw(st.sampled_from(names + ["0.7", "a"]))
        return leaf
    if draw(st.booleans()):
        return draw(st.sampled_from(UNARY)).format(draw(expressions(names, depth - 1)))
    template = draw(st.sampled_from(BINARY))
    return template.format(draw(expressions(names, depth - 1)), draw(expressions(names, depth - 1)))


@st.composite
def statements(draw, names, depth=1):
    kind = draw(st.sampled_from(["assign", "assign", "for", "if", "while", "break"] if depth
                                else ["assign"]))
    target = draw(st.sampled_from(names))
    if kind == "assign":
        return [f"{target} = {draw(expressions(names))}"]
    body = [f"    {line}" for s in range(draw(st.integers(1, 2)))
            for line in draw(statements(names, depth - 1))]
    if kind == "for":
        return [f"for i in range({draw(st.integers(0, 3))}):"] + body
    if kind == "break":
        return [f"for i in range({draw(st.integers(1, 4))}):"] + body + [
            f"    if np.sum({target}) > {draw(st.sampled_from(['0.0', '1.0']))}:", "        break"]
    if kind == "while":
        return ["k = 0", f"while k < {draw(st.integers(0, 3))}:", "    k = k + 1"] + body
    orelse = [f"    {line}" for line in draw(statements(names, depth - 1))]
    return [f"if np.sum({target}) > {draw(st.sampled_from(['0.0', '0.5', '-0.5']))}:"] + body + \
        ["else:"] + orelse


@st.composite
def programs(draw):
    names = ["x", "y", "z"]
    lines = ["y = x * 0.5", "z = np.sin(x) + a"]
    for _ in range(draw(st.integers(1, 4))):
        lines += draw(statements(names))
    lines.append(f"return np.sum({draw(expressions(names, 1))}) + np.sum(x * z) * 0.1")
    return "\n".join(["def f(x, a):"] + ["    " + line for line in lines]) + "\n"


def load(text):
    return fuzz.load("import numpy as np\n\n\n" + text)


def nudged(x, a):
    """A drawn vector and scalar moved off round values (0.0 most of all), where a branch
    test sits on its threshold and the function has a kink finite differences cannot see."""
    return np.array(x) + np.array([0.01234, -0.03109, 0.02171]), a + 0.00713


def valid_value(f, x, a):
    """``f(x, a)``, where the drawn program is valid and its value sensible (else the draw is
    skipped: an axis on a scalar, an overflow)."""
    try:
        value = f(x, a)
    except (ValueError, TypeError, IndexError):
        assume(False)
    assume(np.isfinite(value) and abs(value) <= 1e6)
    return value


def smooth_here(f, x, a):
    return fuzz.smooth_here(f, (x, a), (0, 1))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3), st.floats(-1, 1))
def test_random_programs_match_finite_differences(text, x, a):
    f = load(text)
    x, a = nudged(x, a)
    valid_value(f, x, a)
    dx, da = s2s.grad(f, argnums=(0, 1))(x, a)
    want_x = numerical_grad(f, (x, a), 0)
    want_a = numerical_grad(f, (x, a), 1)
    assume(smooth_here(f, x, a))
    np.testing.assert_allclose(dx, want_x, rtol=1e-4, atol=1e-5, err_msg=text)
    np.testing.assert_allclose(da, want_a, rtol=1e-4, atol=1e-5, err_msg=text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.lists(st.floats(-1.5, 1.5), min_size=6, max_size=6),
       st.lists(st.floats(-1, 1), min_size=3, max_size=3))
def test_random_programs_on_matrices_with_a_broadcast_row(text, x, a):
    """The same programs on a (2, 3) matrix and a (1, 3) row: broadcasting everywhere."""
    f = load(text)
    x = np.array(x).reshape(2, 3) + np.array([[0.0123, -0.0311, 0.0217], [0.0051, -0.0194, 0.0372]])
    a = np.array(a).reshape(1, 3) + np.array([[0.00713, -0.00419, 0.00257]])
    valid_value(f, x, a)
    dx, da = s2s.grad(f, argnums=(0, 1))(x, a)
    want_x, want_a = numerical_grad(f, (x, a), 0), numerical_grad(f, (x, a), 1)
    assume(smooth_here(f, x, a))
    np.testing.assert_allclose(dx, want_x, rtol=1e-4, atol=1e-5, err_msg=text)
    np.testing.assert_allclose(da, want_a, rtol=1e-4, atol=1e-5, err_msg=text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.floats(-1.5, 1.5), st.floats(-1, 1))
def test_random_programs_on_python_floats(text, x, a):
    """The same programs on Python floats: the code specialized for scalars."""
    f = load(text)
    x, a = x + 0.01234, a + 0.00713
    valid_value(f, x, a)
    dx, da = s2s.grad(f, argnums=(0, 1))(x, a)
    assume(smooth_here(f, x, a))
    assert isinstance(dx, float) and isinstance(da, float)
    np.testing.assert_allclose(dx, numerical_grad(f, (x, a), 0), rtol=1e-4, atol=1e-5, err_msg=text)
    np.testing.assert_allclose(da, numerical_grad(f, (x, a), 1), rtol=1e-4, atol=1e-5, err_msg=text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3), st.floats(-1, 1))
def test_random_programs_forward_mode(text, x, a):
    """``s2s.jvp`` along a fixed direction against central differences of ``f``."""
    f = load(text)
    x, a = nudged(x, a)
    value = valid_value(f, x, a)
    assume(smooth_here(f, x, a))
    tx, ta = np.array([0.3, -0.7, 0.2]), 0.5
    primal, tangent = s2s.jvp(f, (x, a), (tx, ta))
    eps = 1e-6
    want = (f(x + eps * tx, a + eps * ta) - f(x - eps * tx, a - eps * ta)) / (2 * eps)
    np.testing.assert_allclose(primal, value, rtol=1e-12, err_msg=text)
    np.testing.assert_allclose(tangent, want, rtol=1e-4, atol=1e-5, err_msg=text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3), st.floats(-1, 1))
def test_random_programs_hessian_vector_products(text, x, a):
    """``s2s.hvp`` (forward over the generated reverse) against differences of the gradient."""
    f = load(text)
    x, a = nudged(x, a)
    valid_value(f, x, a)
    assume(smooth_here(f, x, a))
    grad = s2s.grad(f)
    v = np.array([0.3, -0.7, 0.2])
    want = (grad(x + 1e-5 * v, a) - grad(x - 1e-5 * v, a)) / 2e-5
    coarse = (grad(x + 1e-4 * v, a) - grad(x - 1e-4 * v, a)) / 2e-4
    assume(np.allclose(want, coarse, rtol=1e-3, atol=1e-4))  # the gradient is smooth here too
    try:
        got = s2s.hvp(f)(x, a, v)
    except s2s.S2SError as exc:  # a refusal is allowed (views it cannot follow), a wrong value not
        assume("view" not in str(exc))
        raise
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4, err_msg=text)
