"""Users' own derivatives: the custom_vjp fwd/bwd pair, and template rules in the registry."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import s2s
from s2s.rules import RULES
from s2s.rules.registry import elementwise
from s2s.testing import assert_grad_close, numerical_grad


@s2s.custom_vjp
def softclip(x, scale):
    return np.tanh(x) * scale


def softclip_fwd(x, scale):
    y = np.tanh(x)
    return y * scale, (y, scale)


def softclip_bwd(residuals, g):
    y, scale = residuals
    return g * scale * (1 - y ** 2), np.sum(g * y)


softclip.defvjp(softclip_fwd, softclip_bwd)


def uses_softclip(x, w):
    s = 0.0
    for i in range(3):
        s = s + np.sum(softclip(x * w + i, 0.5 + i) ** 2)
    return s


def test_custom_vjp_pair_is_called_and_correct(rng):
    x, w = rng.standard_normal(4), rng.standard_normal(4)
    grad = s2s.grad(uses_softclip, argnums=(0, 1))
    assert_grad_close(uses_softclip, grad, (x, w), (0, 1))
    text = s2s.source(grad)
    assert "softclip_fwd(" in text and "softclip_bwd(" in text
    assert "np.tanh" not in text.split("def grad_uses_softclip")[1]  # not inlined


def wrong_bwd(residuals, g):
    y, scale = residuals
    return g * scale, 0.0  # forgets the (1 - y**2) factor


@s2s.custom_vjp
def badclip(x, scale):
    return np.tanh(x) * scale


badclip.defvjp(softclip_fwd, wrong_bwd)


def uses_badclip(x):
    return np.sum(badclip(x, 2.0))


def test_the_users_rule_is_what_runs(rng):
    """A deliberately wrong user VJP gives a gradient the finite differences reject."""
    x = rng.standard_normal(3)
    got = s2s.grad(uses_badclip, check=False)(x)  # S2S_CHECK=1 would catch it: test_selfcheck.py
    np.testing.assert_allclose(got, np.full(3, 2.0))
    assert not np.allclose(got, numerical_grad(uses_badclip, (x,), 0), rtol=1e-3)


def fast_softplus(x):
    return np.logaddexp(0.0, x)


def uses_softplus(x):
    return np.sum(fast_softplus(x * 2.0) ** 2)


@pytest.fixture
def softplus_rule():
    name = f"{fast_softplus.__module__}.fast_softplus"
    elementwise(name, "x", "1 / (1 + np.exp(-x))")
    yield name
    del RULES[name]


def test_template_rule_for_a_users_function(rng, softplus_rule):
    x = rng.standard_normal(5)
    grad = s2s.grad(uses_softplus)
    assert_grad_close(uses_softplus, grad, (x,), 0)
    assert "np.exp(-" in s2s.source(grad)  # the rule's template, not an inlined body


MODEL = textwrap.dedent('''
    import numpy as np
    import s2s

    @s2s.custom_vjp
    def cube(x):
        return x ** 3

    def cube_fwd(x):
        return x ** 3, x

    def cube_bwd(x, g):
        return (3.0 * g * x ** 2,)

    cube.defvjp(cube_fwd, cube_bwd)

    def loss(x):
        return np.sum(cube(x) * 2.0)
''')


def test_cli_output_imports_the_pair_from_the_model(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    out = subprocess.run([sys.executable, "-m", "cli.main", "model.py", "--fn", "loss", "-o", "dloss.py"],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "dloss.py").read_text()
    assert "from model import cube_bwd, cube_fwd" in text
    check = subprocess.run([sys.executable, "-c", "import numpy as np, dloss; "
                            "print(dloss.grad_loss(np.array([1.0, -2.0])).tolist())"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert eval(check.stdout) == [6.0, 24.0]  # d/dx 2 x^3 = 6 x^2
