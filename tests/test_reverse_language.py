"""Every construct of the supported language, checked against central finite differences."""
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from numpy import exp as npexp

import s2s
from s2s import emit
from s2s.testing import assert_grad_close, numerical_grad

SCALE = 0.5


def check(f, args, argnums=0):
    assert_grad_close(f, s2s.grad(f, argnums=argnums), args, argnums)


# --- straight-line code ---------------------------------------------------------

def arithmetic(x, y):
    a = x * y + x / (y * y + 1.0) - -x
    b = a ** 2 + 3.0 ** x
    return np.sum(b * SCALE)


def aliases(x):
    return npexp(x).sum() + np.sum(np.tanh(x)) + math.pi


def methods(X):
    Y = X.T @ X
    return Y.sum() + X.mean(axis=0).sum() + X.reshape(-1).sum() + X.max()


def unpack_and_augment(x, y):
    a, b = x * 2.0, y * 3.0
    a += b
    a *= y
    a -= x
    a /= 2.0
    b, a = a, b
    return np.sum(a * b)


def math_on_floats(a, b):
    return math.exp(a) * math.sin(b) + math.log(a * a + 1.0) + math.sqrt(b * b + 1.0)


@pytest.mark.parametrize("shape_x, shape_y", [
    ((3,), (3,)), ((), (4,)), ((4,), ()), ((2, 3), (3,)), ((1, 3), (2, 3)), ((2, 1), (2, 3)),
])
def test_broadcasting_arithmetic(rng, shape_x, shape_y):
    x = rng.uniform(0.5, 1.5, shape_x)
    y = rng.uniform(0.5, 1.5, shape_y)
    check(arithmetic, (x, y), (0, 1))


def test_python_float_arguments_give_floats(rng):
    g = s2s.grad(arithmetic, argnums=(0, 1))(0.7, 1.3)
    assert all(isinstance(v, float) for v in g)
    check(arithmetic, (0.7, 1.3), (0, 1))
    check(arithmetic, (0.7, rng.uniform(0.5, 1.5, 3)), (0, 1))


def test_numpy_aliases_and_methods(rng):
    check(aliases, (rng.standard_normal(4),))
    check(methods, (rng.standard_normal((3, 4)),))


def test_unpacking_and_augmented_assignment(rng):
    check(unpack_and_augment, (rng.standard_normal(3), rng.uniform(1, 2, 3)), (0, 1))


def test_math_functions():
    check(math_on_floats, (0.7, 1.3), (0, 1))


def test_gradient_dtype_and_shape_follow_the_argument(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    g = s2s.grad(lambda_free_sum)(x)
    assert g.shape == (2, 3) and g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x, rtol=1e-6)


def lambda_free_sum(x):
    return np.sum(x * x)


# --- loops ------------------------------------------------------------------------

def range_loops(x, n):
    s = 0.0
    for i in range(n):
        s = s + x[i] * x[i]
    for i in range(1, n, 2):
        s = s + np.sin(x[i])
    for i in range(n - 1, -1, -1):
        s = s * 0.9 + x[i]
    return s


def nested(x, W):
    h = x
    for i in range(3):
        for j in range(2):
            h = np.tanh(W @ h) + h * 0.1
    return np.sum(h ** 2)


def rows(X, w):
    total = 0.0
    for row in X:
        total = total + np.tanh(row @ w)
    for i, row in enumerate(X):
        total = total + i * np.sum(row)
    for a, b in zip(X, X):
        total = total + np.sum(a * b)
    return total


def while_loop(x):
    while np.sum(x * x) < 50.0:
        x = x * 1.7 + 0.1
    return np.sum(x)


def break_and_continue(x):
    s = 0.0
    for i in range(12):
        if i % 3 == 0:
            continue
        s = s + np.sum(x ** 2) * i
        if s > 30.0:
            break
        s = s + x[0]
    return s


def test_range_loops(rng):
    check(range_loops, (rng.standard_normal(6), 6))


def test_nested_loops(rng):
    check(nested, (rng.standard_normal(3), rng.standard_normal((3, 3)) * 0.5), (0, 1))


def test_loops_over_rows(rng):
    check(rows, (rng.standard_normal((4, 3)), rng.standard_normal(3)), (0, 1))


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_while_loop(rng, scale):
    check(while_loop, (rng.uniform(0.1, 1, 3) * scale,))


@pytest.mark.parametrize("scale", [0.05, 0.5, 3.0])
def test_break_and_continue(rng, scale):
    check(break_and_continue, (rng.uniform(0.5, 1, 3) * scale,))


# --- branches ---------------------------------------------------------------------

def branches(x, y):
    if np.sum(x) > 1.0:
        z = x * y
    elif np.sum(x) > -1.0:
        z = np.exp(x) + y
    else:
        w = y * 2.0
        z = w * w
    q = x if np.sum(y) > 0 else -x * 3.0
    return np.sum(z * q)


def adjoint_in_one_branch(x, y):
    z = x * 2.0
    if np.sum(y) > 0:
        z = z + y * y
    return np.sum(z)


def early_return(x):
    for i in range(5):
        x = x * 1.5
        if np.sum(x) > 4.0:
            return np.sum(x ** 2)
    if np.sum(x) < 0:
        return -np.sum(x)
    return np.sum(np.sin(x))


def branch_in_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = s + x[i] ** 2
        else:
            s = s - np.sin(x[i])
    return s


@pytest.mark.parametrize("offset", [-3.0, 0.0, 3.0])
def test_if_elif_else(rng, offset):
    x = rng.uniform(-0.3, 0.3, 3) + offset / 3
    for y in (rng.standard_normal(3), -np.abs(rng.standard_normal(3))):
        check(branches, (x, y), (0, 1))


def test_adjoint_created_in_one_branch_is_defined_after_the_join(rng):
    x = rng.standard_normal(3)
    check(adjoint_in_one_branch, (x, np.abs(x)), (0, 1))
    check(adjoint_in_one_branch, (x, -np.abs(x)), (0, 1))


@pytest.mark.parametrize("x", [[0.1, 0.2], [2.0, 1.0], [-3.0, -1.0]])
def test_early_return(x):
    check(early_return, (np.array(x),))


def test_branch_inside_loop(rng):
    check(branch_in_loop, (rng.standard_normal(7),))


# --- calls -------------------------------------------------------------------------

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def layer(W, x):
    return sigmoid(W @ x)


def two_layers(W1, W2, x):
    return np.sum(layer(W2, layer(W1, x)) ** 2)


def calls_in_loop(W, x):
    for i in range(3):
        x = layer(W, x) + x * 0.5
    return np.sum(x)


def helper_with_early_return(x):
    if np.sum(x) > 0:
        return x * 2.0
    return x * 3.0


def calls_helper_with_return(x):
    return np.sum(helper_with_early_return(x) ** 2) + np.sum(helper_with_early_return(-x))


def test_nested_helper_calls(rng):
    check(two_layers, (rng.standard_normal((4, 3)), rng.standard_normal((2, 4)), rng.standard_normal(3)),
          (0, 1, 2))


def test_helper_calls_inside_loops(rng):
    check(calls_in_loop, (rng.standard_normal((3, 3)) * 0.5, rng.standard_normal(3)), (0, 1))


def test_helper_with_early_return(rng):
    check(calls_helper_with_return, (rng.standard_normal(3),))


# --- the API ---------------------------------------------------------------------

def loss(w, X, y):
    r = X @ w - y
    return np.sum(r ** 2) / len(y)


def loss_with_aux(w, X, y):
    r = X @ w - y
    return np.sum(r ** 2), r


def test_argnums_int_and_tuple(rng):
    w, X, y = rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5)
    dw = s2s.grad(loss)(w, X, y)
    assert isinstance(dw, np.ndarray) and dw.shape == (3,)
    np.testing.assert_allclose(dw, 2 * X.T @ (X @ w - y) / 5)
    grads = s2s.grad(loss, argnums=(0, 1))(w, X, y)
    assert isinstance(grads, tuple) and len(grads) == 2
    np.testing.assert_allclose(grads[1], numerical_grad(loss, (w, X, y), 1), rtol=1e-6)
    value, (dw2,) = s2s.value_and_grad(loss, argnums=(0,))(w, X, y)
    assert value == pytest.approx(loss(w, X, y))
    np.testing.assert_allclose(dw2, dw)


def test_has_aux(rng):
    w, X, y = rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5)
    dw, aux = s2s.grad(loss_with_aux, has_aux=True)(w, X, y)
    np.testing.assert_allclose(aux, X @ w - y)
    np.testing.assert_allclose(dw, 2 * X.T @ (X @ w - y))
    (value, aux2), dw2 = s2s.value_and_grad(loss_with_aux, has_aux=True)(w, X, y)
    assert value == pytest.approx(np.sum((X @ w - y) ** 2))
    np.testing.assert_allclose(dw2, dw)


def vector_output(x):
    return x * 2.0


def test_non_scalar_output_is_an_error(rng):
    # the first call's shapes show it: refused while generating, at the return statement
    with pytest.raises(s2s.S2SError, match=r"vector_output returns an array of shape 3, not a scalar"):
        s2s.grad(vector_output)(rng.standard_normal(3))
    # shape-polymorphic code checks when it runs
    namespace = emit.compile_module(s2s.source(s2s.grad(vector_output)), "vector_output")
    with pytest.raises(ValueError, match="must return a scalar"):
        namespace["grad_vector_output"](rng.standard_normal(3))


def test_generation_happens_once(rng, monkeypatch):
    from s2s import api
    calls = []
    original = api.emit.compile_module
    monkeypatch.setattr(api.emit, "compile_module", lambda *a, **k: calls.append(1) or original(*a, **k))
    g = s2s.grad(loss)
    w, X, y = rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5)
    g(w, X, y)
    first = len(calls)
    assert 1 <= first <= 2  # at creation (any arguments), then for these argument kinds
    for _ in range(3):
        g(w * 2, X, y)
    assert len(calls) == first


def test_source_is_the_compiled_module(rng):
    g = s2s.grad(loss)
    text = s2s.source(g)
    assert text.startswith('"""') and "import numpy as np" in text and "def grad_loss(w, X, y):" in text
    namespace = {}
    exec(compile(text, "<generated>", "exec"), namespace)
    w, X, y = rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5)
    np.testing.assert_allclose(namespace["grad_loss"](w, X, y), g(w, X, y))


def test_tracebacks_show_generated_lines(rng):
    import traceback
    g = s2s.grad(loss)
    try:
        g(rng.standard_normal(4), rng.standard_normal((5, 3)), rng.standard_normal(5))
    except ValueError:
        frames = traceback.extract_tb(__import__("sys").exc_info()[2])
        generated = [f for f in frames if os.path.dirname(f.filename) == emit.generated_folder()]
        assert generated and generated[-1].line.strip()  # linecache knows the text
    else:
        pytest.fail("a shape mismatch must raise")


TRACEBACK_SCRIPT = """\
import numpy as np
import s2s


def loss(w, X):
    return np.sum(np.tanh(X @ w) ** 2)


s2s.grad(loss)(np.ones(4), np.ones((5, 3)))
"""


@pytest.mark.parametrize("cache", ["1", "0"])
def test_default_traceback_printer_shows_the_generated_line(tmp_path, cache):
    """Python's own printer (in C before 3.13, reading files from disk) quotes the generated line."""
    (tmp_path / "model.py").write_text(TRACEBACK_SCRIPT)
    env = {**os.environ, "S2S_CACHE": cache, "S2S_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "model.py"], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 1 and "ValueError" in done.stderr
    frame = re.search(r'File "([^"]*)", line (\d+), in grad_loss\n(.*)\n', done.stderr)
    assert frame, done.stderr
    assert re.fullmatch(r"\w+ = np\.tanh\(X @ w\)  # line 6", frame[3].strip()), frame[3]
    # a real file (S2S_CACHE=0 or not): pdb can list it and set breakpoints in it
    assert frame[1].startswith(str(tmp_path / "cache" / "generated"))
    with open(frame[1]) as fh:
        assert fh.read().splitlines()[int(frame[2]) - 1] == frame[3]


def running_sum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s * 0.5 + x[i] ** 2
    return s


def test_value_and_grad_of_a_value_overwritten_in_a_loop(rng):
    x = rng.standard_normal(5)
    value, dx = s2s.value_and_grad(running_sum)(x)
    assert value == pytest.approx(running_sum(x))
    np.testing.assert_allclose(dx, numerical_grad(running_sum, (x,), 0), rtol=1e-6)


def builtin_extrema(a, b):
    return max(a * 2.0, b) + min(a, b * b) + abs(a - b)


@pytest.mark.parametrize("a, b", [(1.0, 0.5), (0.2, 3.0), (-1.0, 0.7)])
def test_builtin_max_min_abs(a, b):
    check(builtin_extrema, (a, b), (0, 1))


def written_out_sigmoids(x, W):
    a = 1.0 / (1.0 + np.exp(-(W @ x)))
    b = 1 / (1 + np.exp(x))  # not the logistic pattern (no minus): differentiated as written
    return np.sum(a * 2.0) + np.sum(b ** 2)


def test_the_written_out_sigmoid_keeps_only_its_result(rng):
    x, W = rng.standard_normal(3), rng.standard_normal((4, 3))
    grad = s2s.grad(written_out_sigmoids, argnums=(0, 1))
    check(written_out_sigmoids, (x, W), (0, 1))
    text = s2s.source(grad)
    assert "a * (1 - a)" in text
    _, tangent = s2s.jvp(written_out_sigmoids, (x, W), (np.ones(3), np.zeros((4, 3))))
    assert tangent == pytest.approx(float(np.sum(grad(x, W)[0])), rel=1e-6)  # forward mode agrees
