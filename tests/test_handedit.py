"""Hand-edited derivatives: used while the primal is unchanged, refused (StaleDerivative) after."""
import importlib.util
import itertools
import re
import textwrap

import numpy as np
import pytest

import s2s
from cli.main import main as s2s_diff
from s2s.handedit import StaleDerivativeWarning
from s2s.testing import numerical_grad

MODEL = textwrap.dedent('''\
    import numpy as np
    import s2s


    def predict(w, X):
        return np.tanh(X @ w)


    def loss(w, X, y):
        r = predict(w, X) - y
        return np.sum(r ** 2)
    ''')
_names = itertools.count()


def load(path):
    name = f"s2s_test_handedit_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inputs():
    rng = np.random.default_rng(3)
    return rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5)


def double_the_gradient(path):
    """The hand edit: the entry point's final ``return expr`` becomes ``return 2 * (expr)``."""
    text = path.read_text()
    last = list(re.finditer(r"^    return (.+)$", text, flags=re.M))[-1]
    path.write_text(text[:last.start()] + f"    return 2 * ({last.group(1)})" + text[last.end():])


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("S2S_CACHE", "0")
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "grads").mkdir()
    assert s2s_diff(["model.py", "--fn", "loss", "-o", "grads/dloss.py"]) == 0
    double_the_gradient(tmp_path / "grads" / "dloss.py")
    return tmp_path


def test_the_edit_is_used(project):
    model = load(project / "model.py")
    args = inputs()
    # the edit doubles the gradient on purpose: S2S_CHECK=1 would catch it (test_selfcheck.py)
    dloss = s2s.grad(model.loss, source="grads/dloss.py", check=False)
    np.testing.assert_allclose(dloss(*args), 2 * numerical_grad(model.loss, args, 0), rtol=1e-6)
    assert "return 2 * (" in s2s.source(dloss)
    value, g = s2s.value_and_grad(model.loss, source="grads/dloss.py", check=False)(*args)
    assert value == model.loss(*args)
    np.testing.assert_allclose(g, 2 * numerical_grad(model.loss, args, 0), rtol=1e-6)
    (g_tuple,) = s2s.grad(model.loss, argnums=(0,), source="grads/dloss.py", check=False)(*args)
    np.testing.assert_array_equal(g_tuple, dloss(*args))


def test_the_edit_is_used_by_the_decorator(project):
    # the decorator is not part of the primal's digest, so the file is still current
    (project / "model.py").write_text(MODEL.replace(
        "def loss(", '@s2s.differentiable(source="grads/dloss.py", check=False)\ndef loss('))
    model = load(project / "model.py")
    args = inputs()
    np.testing.assert_allclose(model.loss.grad(*args), 2 * numerical_grad(model.loss, args, 0),
                               rtol=1e-6)


def test_changed_primal_is_refused(project):
    (project / "model.py").write_text(MODEL.replace("np.sum(r ** 2)", "np.sum(r ** 2) / 2"))
    model = load(project / "model.py")
    dloss = s2s.grad(model.loss, source="grads/dloss.py")
    with pytest.raises(s2s.StaleDerivative) as caught:
        dloss(*inputs())
    message = caught.value.render()
    lines = (project / "grads" / "dloss.py").read_text().splitlines()
    hash_line = next(i for i, line in enumerate(lines, 1) if line.startswith("primal-sha256:"))
    assert message.startswith(f"grads/dloss.py:{hash_line}:1: error: grads/dloss.py was generated "
                              "from an older `loss`")
    assert "model.py" in message
    assert "`s2s-diff model.py --fn loss -o grads/dloss.py`" in message
    assert "accept_stale=True" in message


def test_changed_helper_is_refused(project):
    (project / "model.py").write_text(MODEL.replace("np.tanh(X @ w)", "np.sin(X @ w)"))
    model = load(project / "model.py")
    with pytest.raises(s2s.StaleDerivative):
        s2s.grad(model.loss, source="grads/dloss.py")(*inputs())


def test_decorator_refuses_a_stale_edit_at_import(project):
    (project / "model.py").write_text(MODEL.replace("np.sum(r ** 2)", "np.sum(r ** 2) / 2").replace(
        "def loss(", '@s2s.differentiable(source="grads/dloss.py")\ndef loss('))
    with pytest.raises(s2s.StaleDerivative, match="s2s-diff model.py --fn loss -o grads/dloss.py"):
        load(project / "model.py")


def test_accept_stale_uses_the_edit_with_a_warning(project):
    old = load(project / "model.py")
    args = inputs()
    edited = 2 * numerical_grad(old.loss, args, 0)  # what the hand-edited file computes
    (project / "model.py").write_text(MODEL.replace("np.sum(r ** 2)", "np.sum(r ** 2) / 2"))
    model = load(project / "model.py")
    dloss = s2s.grad(model.loss, source="grads/dloss.py", accept_stale=True, check=False)
    with pytest.warns(StaleDerivativeWarning, match="using stale derivative grads/dloss.py"):
        got = dloss(*args)
    np.testing.assert_allclose(got, edited, rtol=1e-6)


def test_regenerated_file_is_current_again(project):
    (project / "model.py").write_text(MODEL.replace("np.sum(r ** 2)", "np.sum(r ** 2) / 2"))
    assert s2s_diff(["model.py", "--fn", "loss", "-o", "grads/dloss.py"]) == 0
    model = load(project / "model.py")
    args = inputs()
    np.testing.assert_allclose(s2s.grad(model.loss, source="grads/dloss.py")(*args),
                               numerical_grad(model.loss, args, 0), rtol=1e-6)


def test_a_file_for_other_arguments_is_refused(project):
    model = load(project / "model.py")
    with pytest.raises(s2s.S2SError, match="differentiates with respect to w, not X"):
        s2s.grad(model.loss, argnums=1, source="grads/dloss.py")(*inputs())


def test_a_file_without_header_is_refused(project):
    (project / "grads" / "plain.py").write_text("def grad_loss(w, X, y):\n    return w\n")
    model = load(project / "model.py")
    with pytest.raises(s2s.S2SError, match="has no s2s header"):
        s2s.grad(model.loss, source="grads/plain.py")(*inputs())


def test_static_and_live_digests_agree(tmp_path, monkeypatch):
    """s2s-diff (reads the file) and s2s.grad (reads the live function) compute the same digest."""
    from s2s.provenance import primal_digest
    from s2s.source import from_file, from_function
    (tmp_path / "acts.py").write_text("import numpy as np\n\n\ndef act(z):\n    return np.tanh(z)\n")
    (tmp_path / "sibling_model.py").write_text(textwrap.dedent('''\
        import numpy as np
        import s2s
        from acts import act

        FACTOR = 2.5


        @s2s.differentiable
        def loss(w, X):  # comments and decorators do not count
            return np.sum(act(X @ w)) * FACTOR
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("S2S_CACHE", "0")
    live = load(tmp_path / "sibling_model.py").loss
    static = primal_digest(from_file(str(tmp_path / "sibling_model.py"), "loss"))
    assert primal_digest(from_function(live)) == static
    (tmp_path / "acts.py").write_text("import numpy as np\n\n\ndef act(z):\n    return np.sin(z)\n")
    assert primal_digest(from_file(str(tmp_path / "sibling_model.py"), "loss")) != static


def test_a_file_specialized_to_shapes_serves_only_those(project):
    assert s2s_diff(["model.py", "--fn", "loss", "--shapes", "w=3", "X=5x3", "y=5",
                     "-o", "grads/dloss5.py"]) == 0
    model = load(project / "model.py")
    dloss = s2s.grad(model.loss, source="grads/dloss5.py")
    args = inputs()
    np.testing.assert_allclose(dloss(*args), numerical_grad(model.loss, args, 0), rtol=1e-6)
    w, X, y = args
    with pytest.raises(s2s.S2SError, match=r"generated for X of shape \(5, 3\), not \(4, 3\)"):
        dloss(w, X[:4], y[:4])
    (project / "model.py").write_text(MODEL.replace("np.sum(r ** 2)", "np.sum(r ** 2) / 2"))
    stale = s2s.grad(load(project / "model.py").loss, source="grads/dloss5.py")
    with pytest.raises(s2s.StaleDerivative, match="--shapes X=5x3 w=3 y=5 -o grads/dloss5.py"):
        stale(*args)
