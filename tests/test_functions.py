"""Functions as people write and pass them (issue 12): defaults and keyword-only parameters
of the differentiated function and of helpers, keyword arguments, calls into the user's own
modules; checked against central finite differences in reverse and forward mode."""
import functools

import numpy as np
import pytest

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
