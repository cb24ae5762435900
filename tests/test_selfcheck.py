"""S2S_CHECK=1 / check=True: the first call of each specialisation checks itself against finite differences."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import s2s
from cli.main import main as s2s_diff
from s2s import higher

MODEL = textwrap.dedent('''\
    import numpy as np


    def loss(w, X, y):
        r = np.tanh(X @ w) - y
        return np.sum(r ** 2)
    ''')


def load(path, name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inputs():
    rng = np.random.default_rng(3)
    return rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5)


@pytest.fixture
def wrong_edit(tmp_path, monkeypatch):
    """A generated file with a deliberately wrong hand edit: one factor 2.0 became 2.5."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL)
    assert s2s_diff(["model.py", "--fn", "loss", "-o", "dloss.py"]) == 0
    text = (tmp_path / "dloss.py").read_text()
    assert text.count("2.0 * ") == 1
    (tmp_path / "dloss.py").write_text(text.replace("2.0 * ", "2.5 * "))
    return load(tmp_path / "model.py", "s2s_selfcheck_model")


def test_a_wrong_hand_edit_is_caught(wrong_edit, tmp_path):
    dloss = s2s.grad(wrong_edit.loss, source="dloss.py", check=True)
    with pytest.raises(s2s.GradientMismatch) as caught:
        dloss(*inputs())
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'model.py'}:4:1: error: self-check of the derivative "
                              f"of `loss` (run from {tmp_path / 'dloss.py'}) failed")
    found = re.search(r"derivative (\S+), central difference (\S+) \(relative error (\S+) >", message)
    assert found and float(found[1]) == pytest.approx(1.25 * float(found[2]), rel=1e-4)


def test_the_environment_variable_turns_it_on(wrong_edit, monkeypatch):
    monkeypatch.setenv("S2S_CHECK", "1")
    with pytest.raises(s2s.GradientMismatch):
        s2s.value_and_grad(wrong_edit.loss, source="dloss.py")(*inputs())
    with pytest.raises(s2s.GradientMismatch):
        s2s.grad(wrong_edit.loss, argnums=(0,), source="dloss.py")(*inputs())
    s2s.grad(wrong_edit.loss, source="dloss.py", check=False)(*inputs())  # check=False wins
    monkeypatch.setenv("S2S_CHECK", "0")
    s2s.grad(wrong_edit.loss, source="dloss.py")(*inputs())


def test_the_decorator_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("S2S_CACHE", "0")
    (tmp_path / "model.py").write_text(MODEL)
    assert s2s_diff([str(tmp_path / "model.py"), "--fn", "loss", "-o", str(tmp_path / "dloss.py")]) == 0
    text = (tmp_path / "dloss.py").read_text()
    (tmp_path / "dloss.py").write_text(text.replace("2.0 * ", "-2.0 * "))
    (tmp_path / "model.py").write_text(MODEL.replace(
        "def loss(", 'import s2s\n\n\n@s2s.differentiable(source="dloss.py", check=True)\ndef loss('))
    model = load(tmp_path / "model.py", "s2s_selfcheck_decorated")
    with pytest.raises(s2s.GradientMismatch, match="derivative of `loss`"):
        model.loss.grad(*inputs())


def wrong_bwd(residuals, g):
    (x,) = residuals
    return (g * np.cos(x) * 1.01,)  # one percent off


def fwd(x):
    return np.sin(x), (x,)


@s2s.custom_vjp
def mysin(x):
    return np.sin(x)


mysin.defvjp(fwd, wrong_bwd)


def uses_mysin(x, k):
    return np.sum(mysin(x) * k)


def test_one_percent_off_is_caught_and_a_right_gradient_passes():
    x = np.linspace(-1.0, 1.0, 7)
    with pytest.raises(s2s.GradientMismatch, match="generated.*uses_mysin"):
        s2s.grad(uses_mysin, check=True)(x, 2.0)
    good = s2s.grad(lambda_free_loss, argnums=(0, 1), check=True)
    good(x, 2.0)
    good(np.linspace(0, 1, 5), 2.0)  # a new specialisation, checked too
    good(x.astype(np.float32), 2.0)  # float32: checked with a float32 tolerance


def lambda_free_loss(x, k):
    return np.sum(np.sin(x) * k) + k ** 2


def test_only_the_first_call_of_each_specialisation_is_checked(monkeypatch):
    from s2s import selfcheck
    evaluations = []
    original = selfcheck._central

    def counted(primal, args, direction):
        return original(lambda *a: evaluations.append(1) or primal(*a), args, direction)
    monkeypatch.setattr(selfcheck, "_central", counted)

    def cube(x):
        return np.sum(x ** 3)

    g = s2s.grad(cube, check=True)
    g(np.ones(3))
    assert len(evaluations) == 2  # two primal evaluations: one central difference
    g(np.ones(3) * 2)
    assert len(evaluations) == 2  # same specialisation: not again
    g(np.ones(4))
    assert len(evaluations) == 4  # a new shape is a new specialisation


def test_jvp_checks_itself(monkeypatch):
    def f(x, k):
        return np.sin(x) * k

    x, t = np.linspace(-1, 1, 4), np.ones(4)
    value, tangent = s2s.jvp(f, (x, 2.0), (t, 0.5), check=True)
    np.testing.assert_allclose(tangent, 2.0 * np.cos(x) + 0.5 * np.sin(x))

    def g(x, k):
        return np.cos(x) * k
    original = higher._jvp_module

    def wrong(fn, positions, kinds):
        gen, compiled = original(fn, positions, kinds)
        return gen, lambda *args: (compiled(*args)[0], 1.02 * compiled(*args)[1])
    monkeypatch.setattr(higher, "_jvp_module", wrong)
    with pytest.raises(s2s.GradientMismatch, match="tangent along a random direction|tangent"):
        s2s.jvp(g, (x, 2.0), (t, 0.5), check=True)


def test_pytest_under_s2s_check_catches_a_wrong_hand_edit(tmp_path):
    """What a user's own test suite gets from S2S_CHECK=1, in a fresh process."""
    (tmp_path / "model.py").write_text(MODEL)
    assert s2s_diff([str(tmp_path / "model.py"), "--fn", "loss", "-o", str(tmp_path / "dloss.py")]) == 0
    text = (tmp_path / "dloss.py").read_text()
    (tmp_path / "dloss.py").write_text(text.replace("2.0 * ", "2.5 * "))
    (tmp_path / "run.py").write_text(textwrap.dedent('''\
        import numpy as np
        import s2s
        import model
        s2s.grad(model.loss, source="dloss.py")(np.ones(3), np.ones((2, 3)), np.zeros(2))
        print("not caught")
        '''))
    env = {**os.environ, "S2S_CHECK": "1", "S2S_CACHE": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 1 and "not caught" not in done.stdout
    assert "s2s.errors.GradientMismatch" in done.stderr and "dloss.py" in done.stderr
