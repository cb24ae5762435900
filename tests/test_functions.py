"""Functions as people write and pass them (issue 12): defaults and keyword-only parameters
of the differentiated function and of helpers, keyword arguments, calls into the user's own
modules; checked against central finite differences in reverse and forward mode."""
import functools

import numpy as np
import pytest

from scipy.special import logsumexp

import s2s
from s2s import derive, emit
from s2s.source import from_file
from s2s.testing import assert_close, check_mode, numerical_grad
from tests import functions_model as mymodel

MODES = ("grad", "jvp", "hvp")
x0 = np.array([0.3, -0.7, 1.1])
X0 = np.array([[0.2, -0.1, 0.4], [0.5, 0.3, -0.6], [-0.3, 0.8, 0.1], [0.7, -0.2, 0.2]])


def with_default(x, scale=2.0):
    return scale * np.sum(x ** 3)


def keyword_only(x, *, p=3, s=1.5):
    return s * np.sum(x ** p)


def keywords_and_modules(x, X):
    """Keyword arguments (in any order), keyword-only helper parameters, a module's function."""
    return keyword_only(x, s=0.5) + keyword_only(p=2, x=x) + mymodel.loss(x, X, scale=3.0) \
        + mymodel.POWER * np.sum(x)


@pytest.mark.parametrize("mode", MODES + ("hessian",))
def test_keywords_and_module_qualified_helpers(mode):
    check_mode(mode, keywords_and_modules, (x0, X0))


def test_defaults_of_the_differentiated_function():
    assert_close(s2s.grad(with_default)(x0), 6.0 * x0 ** 2)
    assert_close(s2s.grad(with_default)(x0, scale=0.5), 1.5 * x0 ** 2)
    assert_close(s2s.grad(with_default)(x0, 0.5), 1.5 * x0 ** 2)
    value, grads = s2s.value_and_grad(with_default, argnums=(0, 1))(x0, 0.5)
    assert value == pytest.approx(with_default(x0, 0.5))
    assert_close(grads[1], np.sum(x0 ** 3))
    value, tangent = s2s.jvp(with_default, (x0,), (np.ones(3),))
    assert tangent == pytest.approx(np.sum(6.0 * x0 ** 2))
    assert_close(s2s.grad(keyword_only)(x0, s=2.0), 6.0 * x0 ** 2)
    assert_close(s2s.grad(keyword_only)(x0), 4.5 * x0 ** 2)
    value, tangent = s2s.jvp(keyword_only, (x0,), (np.ones(3),))
    assert tangent == pytest.approx(np.sum(4.5 * x0 ** 2))
    with pytest.raises(TypeError):
        s2s.grad(with_default)(x0, 1.0, 2.0)


def test_module_qualified_call_read_from_files(tmp_path):
    """``import mymodel`` beside the file s2s-diff reads: its functions are inlined."""
    (tmp_path / "mymodel.py").write_text(
        "import numpy as np\nPOWER = 2\n\ndef loss(w, X, *, scale=2.0):\n"
        "    return scale * np.sum(np.tanh(X @ w) ** POWER)\n")
    (tmp_path / "train.py").write_text(
        "import numpy as np\nimport mymodel\nimport mymodel as mm\n\n"
        "def objective(w, X):\n    return mymodel.loss(w, X, scale=0.5) + mm.loss(X=X, w=w)"
        " * mymodel.POWER\n")
    gen = derive.reverse_module(from_file(str(tmp_path / "train.py"), "objective"), ["w"])
    dobjective = emit.compile_module(gen.text, "objective", gen.injected)[gen.entry]

    def objective(w, X):
        return 0.5 * np.sum(np.tanh(X @ w) ** 2) + 2 * 2.0 * np.sum(np.tanh(X @ w) ** 2)
    assert_close(dobjective(x0, X0), numerical_grad(objective, [x0, X0], 0))


# --- lambdas and functools.partial (the function given to s2s, and helpers) ------------------

def loss(W, X, T):
    return np.sum(np.tanh(X @ W) * T) + 0.1 * np.sum(W ** 2)


W0 = np.array([[0.3, -0.5], [0.8, 0.1], [-0.4, 0.6]])
T0 = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])
square = lambda z: z ** 2  # noqa: E731 (a module-level lambda, called as a helper)
loss_on_X = functools.partial(loss, X=X0)


def calls_lambda_and_partial(W, T):
    return np.sum(square(W)) + loss_on_X(W, T=T)


@pytest.mark.parametrize("mode", MODES)
def test_lambda_given_to_s2s(mode):
    check_mode(mode, lambda w: loss(w, X0, T0), (W0,))
    check_mode(mode, lambda w, X, scale=2.0: scale * loss(w, X, T0), (W0, X0), (0, 1))


@pytest.mark.parametrize("mode", MODES)
def test_partial_given_to_s2s(mode):
    check_mode(mode, functools.partial(loss, X=X0, T=T0), (W0,))
    check_mode(mode, functools.partial(loss, W0), (X0, T0), (0, 1))


@pytest.mark.parametrize("mode", MODES)
def test_lambda_and_partial_helpers(mode):
    check_mode(mode, calls_lambda_and_partial, (W0, T0), (0, 1))


def test_lambda_and_partial_read_as_functions():
    """The generated function is named for what it differentiates, with the lambda's defaults."""
    dloss = s2s.grad(lambda w, s=2.0: s * loss(w, X0, T0))
    assert_close(dloss(W0), 2.0 * numerical_grad(loss, [W0, X0, T0], 0))
    assert "def grad_lambda_(w, s):" in s2s.source(dloss)
    dpartial = s2s.grad(functools.partial(loss, X=X0, T=T0))
    assert_close(dpartial(W0), numerical_grad(loss, [W0, X0, T0], 0))
    assert "def grad_partial_loss(W):" in s2s.source(dpartial)
    assert dpartial.__name__ == "grad_partial_loss"


# --- nested defs, lambdas inside, closures, functions passed to helpers -----------------------

A0 = np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6], [0.3, 0.2, 0.1]])


def nested_defs(x, W):
    scale = 2.0
    sq = lambda z: z ** 2  # noqa: E731
    def layer(h):
        return np.tanh(W @ h) * scale
    def two_layers(h):  # a nested def calling another
        return layer(layer(h)) + sq(h)
    return np.sum(two_layers(x)) + np.sum(sq(x)) + (lambda t: np.sum(t ** 3))(x)


def rk4(f, y0, ts):
    y = y0
    for i in range(len(ts) - 1):
        h = ts[i + 1] - ts[i]
        k1 = f(y)
        k2 = f(y + h / 2 * k1)
        k3 = f(y + h / 2 * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def dynamics(y):
    return np.tanh(A0 @ y)


def ode_losses(y0, B):
    """An ODE stepper given a closure, a module function and a numpy function."""
    ts = np.linspace(0.0, 1.0, 3)
    def field(y):
        return np.sin(B @ y) - 0.1 * y
    return np.sum(rk4(field, y0, ts) ** 2) + np.sum(rk4(dynamics, y0, ts)) + np.sum(rk4(np.tanh, y0, ts))


def fixed_point(f, a, x0):
    x = x0
    for _ in range(30):
        x = f(a, x)
    return x


def fixed_point_loss(a):
    return np.sum(fixed_point(lambda a, x: 0.5 * np.cos(a * x), a, np.zeros(3)))


def scan(step, h0, xs):
    h = h0
    for t in range(xs.shape[0]):
        h = step(h, xs[t])
    return h


def rnn(W, xs):
    def step(h, x):
        return np.tanh(W @ h + x)
    return np.sum(scan(step, np.zeros(3), xs))


def make_model(sizes, reg):
    """A factory: closures over an int, a list of shapes, an array, and each other."""
    shapes = list(zip(sizes[:-1], sizes[1:]))
    count = sum(m * n for m, n in shapes)
    offset = np.linspace(-0.5, 0.5, sizes[-1])

    def predict(w, X):
        start = 0
        for m, n in shapes:
            X = np.tanh(X @ w[start:start + m * n].reshape((m, n)))
            start += m * n
        return X + offset

    def loss(w, X):
        return np.sum(predict(w, X) ** 2) + reg * np.dot(w, w)
    return count, loss


def shadowed_by_a_parameter(x):
    """``g``'s parameter ``f`` holds a value, not the nested function ``f``."""
    def f(z):
        return z * 3.0
    def g(f, z):
        return f * z
    return np.sum(g(np.sin(x), x)) + np.sum(f(x))


def tables_of_functions(x):
    """Functions kept in a list and a dict, called with constant keys and looped over."""
    acts = [np.tanh, np.sin, lambda z: z ** 2]
    table = {"a": np.cos, "b": lambda z: 3.0 * z}
    total = 0.0
    for g in acts:
        total = total + np.sum(g(x))
    return total + np.sum(acts[1](x) * table["b"](x)) + np.sum(table["a"](x))


XS = np.random.default_rng(0).normal(size=(4, 3))
CASES = [(nested_defs, (x0, A0), (0, 1)), (ode_losses, (x0, A0), (0, 1)),
         (fixed_point_loss, (np.array([0.5, 1.0, 1.5]),), 0), (rnn, (A0, XS), (0, 1)),
         (shadowed_by_a_parameter, (x0,), 0), (tables_of_functions, (x0,), 0)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn, args, argnums", CASES, ids=[c[0].__name__ for c in CASES])
def test_nested_defs_closures_and_function_arguments(fn, args, argnums, mode):
    if mode == "hvp" and fn is ode_losses:
        argnums = 1  # (the second derivative of three inlined RK4 solvers takes seconds)
        args = (x0, 0.3 * A0)
    check_mode(mode, fn, args, argnums)


@pytest.mark.parametrize("mode", MODES)
def test_closures_of_a_factory(mode):
    count, model_loss = make_model([3, 4, 2], 0.1)
    w = np.random.default_rng(1).normal(size=count) * 0.5
    check_mode(mode, model_loss, (w, X0), (0, 1))


def test_scan_reads_like_a_loop():
    text = s2s.source(s2s.grad(rnn))
    assert "for t in range(" in text and "def step" not in text


# --- the factory of issue 12, exactly as written: closures and a generator consumed by a loop --

def make_nn_funs(layer_sizes, L2_reg):                 # a factory returning closures
    shapes = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    N = sum((m + 1) * n for m, n in shapes)
    def unpack_layers(W_vect):                          # a generator consumed by a loop
        for m, n in shapes:
            yield W_vect[:m * n].reshape((m, n)), W_vect[m * n:m * n + n]
            W_vect = W_vect[(m + 1) * n:]
    def predictions(W_vect, inputs):
        for W, b in unpack_layers(W_vect):
            outputs = np.dot(inputs, W) + b
            inputs = np.tanh(outputs)
        return outputs - logsumexp(outputs, axis=1, keepdims=True)
    def loss(W_vect, X, T):
        log_prior = -L2_reg * np.dot(W_vect, W_vect)
        return -log_prior - np.sum(predictions(W_vect, X) * T)
    return N, predictions, loss


N, predict, nn_loss = make_nn_funs([4, 8, 3], 0.1)
_rng = np.random.default_rng(0)
W_NN = _rng.normal(size=N) * 0.3
X_NN = _rng.normal(size=(5, 4))
T_NN = np.eye(3)[_rng.integers(0, 3, 5)]


@pytest.mark.parametrize("mode", MODES)
def test_the_factory_as_written(mode):
    check_mode(mode, nn_loss, (W_NN, X_NN, T_NN), 0 if mode == "hvp" else (0, 1))
    check_mode(mode, lambda w: nn_loss(w, X_NN, T_NN), (W_NN,))
    check_mode(mode, functools.partial(nn_loss, X=X_NN, T=T_NN), (W_NN,))


def test_the_generator_unrolls_into_the_layers():
    text = s2s.source(s2s.grad(nn_loss))
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert "yield" not in code and "unpack_layers" not in code
    assert "m2 = 8" in text  # the second layer's shape, from the closure's list of shapes


# --- refused, with the place and what to do ----------------------------------------------------

def closure_reads_a_container(x):
    params = {"w": x * 2.0}
    def f(z):
        return z * params["w"]
    return np.sum(f(x))


def calls_a_stored_function(x, i):
    fns = [np.sin, np.cos]
    return np.sum(fns[i](x)) * len(fns)


@pytest.mark.parametrize("fn, message", [
    (closure_reads_a_container, "reads the container"),
    (calls_a_stored_function, "cannot tell which function of 'fns'")])
def test_refused_with_a_place(fn, message):
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(fn)(x0, 2) if fn is calls_a_stored_function else s2s.grad(fn)(x0)
    assert message in str(info.value)
    assert f"{__file__}:" in str(info.value)


@pytest.mark.parametrize("fn, args", [
    (lambda w: loss(w, X0, T0), (W0,)), (functools.partial(loss, X=X0, T=T0), (W0,)),
    (nested_defs, (x0, A0)), (tables_of_functions, (x0,)), (with_default, (x0,))],
    ids=["lambda", "partial", "nested_defs", "tables", "default"])
def test_hessians(fn, args):
    check_mode("hessian", fn, args)
