"""Functions as people write and pass them (issue 12): defaults and keyword-only parameters
of the differentiated function and of helpers, keyword arguments, calls into the user's own
modules; checked against central finite differences in reverse and forward mode."""
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
