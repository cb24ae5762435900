"""The checked-in derivatives in generated_examples/ are current, and correct."""
import importlib
import os

import numpy as np
import pytest

from generated_examples.regenerate import COMMAND, EXAMPLES, ROOT, expected_text, generated_text
from s2s.testing import assert_close, numerical_grad

IDS = [e.module for e in EXAMPLES]


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_checked_in_file_is_what_s2s_generates(example):
    path = os.path.join(ROOT, example.output_path)
    assert os.path.exists(path), f"{example.output_path} is missing; run `{COMMAND}`"
    with open(path, encoding="utf-8") as fh:
        checked_in = fh.read()
    assert checked_in == expected_text(example), (
        f"{example.output_path} differs from what s2s generates now; run `{COMMAND}` "
        "and review the diff")


def loaded(example):
    primal = getattr(importlib.import_module(f"generated_examples.{example.module}"), example.fn)
    derivative = importlib.import_module(f"generated_examples.{os.path.basename(example.output_path)[:-3]}")
    params = list(primal.__code__.co_varnames[:primal.__code__.co_argcount])
    return primal, derivative, params


@pytest.mark.parametrize("example", [e for e in EXAMPLES if not e.forward],
                         ids=[e.module for e in EXAMPLES if not e.forward])
def test_checked_in_gradient_matches_finite_differences(example):
    primal, derivative, params = loaded(example)
    grad = getattr(derivative, f"grad_{example.fn}")
    for args in example.inputs(np.random.default_rng(0)):
        grads = grad(*args)
        grads = grads if isinstance(grads, tuple) else (grads,)
        assert len(grads) == len(example.wrt)
        for name, g in zip(example.wrt, grads):
            expected = numerical_grad(primal, args, params.index(name))
            assert_close(g, expected, rtol=1e-6, atol=1e-7, what=f"{example.module}: d{name}")


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.forward],
                         ids=[e.module for e in EXAMPLES if e.forward])
def test_checked_in_tangent_matches_finite_differences(example):
    primal, derivative, params = loaded(example)
    jvp = getattr(derivative, f"jvp_{example.fn}")
    rng = np.random.default_rng(1)
    for args in example.inputs(np.random.default_rng(0)):
        tangents = [rng.standard_normal(np.shape(args[params.index(w)])) for w in example.wrt]
        tangents = [float(t) if np.ndim(t) == 0 else t for t in tangents]

        def along(t):
            moved = list(args)
            for w, d in zip(example.wrt, tangents):
                moved[params.index(w)] = args[params.index(w)] + t * d
            return primal(*moved)

        value, tangent = jvp(*args, *tangents)
        assert_close(value, primal(*args), what=f"{example.module}: value")
        expected = (along(1e-6) - along(-1e-6)) / 2e-6
        assert_close(tangent, expected, rtol=1e-6, atol=1e-7, what=f"{example.module}: tangent")


def test_no_absolute_paths_in_generated_files():
    for example in EXAMPLES:
        with open(os.path.join(ROOT, example.output_path), encoding="utf-8") as fh:
            text = fh.read()
        assert ROOT not in text
        assert f"source-file: {example.primal_path}\n" in text


def test_branch_example_is_checked_in_every_branch():
    sums = [np.sum(args[0]) for args in EXAMPLES[IDS.index("branches")].inputs(np.random.default_rng(0))]
    assert sums[0] > 1.0 and sums[1] < -1.0 and -1.0 <= sums[2] <= 1.0


def _ruff(*paths):
    """``ruff check`` (default rules) on paths: its output, empty when they pass."""
    ruff = pytest.importorskip("ruff", reason="ruff is in the test extra: pip install -e '.[test]'")
    import subprocess
    binary = ruff.find_ruff_bin()
    done = subprocess.run([binary, "check", "--no-cache", "--isolated", *paths],
                          capture_output=True, text=True, cwd=ROOT)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_generated_examples_pass_ruff_with_default_rules():
    assert _ruff("generated_examples") == ""


def test_generated_imports_are_sorted_for_ruff(tmp_path):
    """math, numpy and scipy.special together: stdlib first, then the array modules."""
    from cli.main import main
    model = tmp_path / "model.py"
    model.write_text("import math\nimport numpy as np\nimport scipy.special\n\nSCALE = 2.0\n\n\n"
                     "def loss(x, t):\n    return math.exp(t) * np.sum(scipy.special.expit(x)) * SCALE\n")
    for mode, name in (("reverse", "grad.py"), ("forward", "jvp.py")):
        assert main([str(model), "--fn", "loss", "--wrt", "x,t", "--mode", mode, "--shapes", "t=",
                     "-o", str(tmp_path / name)]) == 0
    text = (tmp_path / "grad.py").read_text()
    assert "import math\n\nimport numpy as np\nimport scipy.special\n\nSCALE = 2.0\n" in text
    assert _ruff(str(tmp_path / "grad.py"), str(tmp_path / "jvp.py")) == ""


def test_hand_edited_example_keeps_its_edit_where_the_generated_one_fails():
    """logreg_stable_grad.py is the generated file plus a hand edit; the record beside it is
    the current generation (so `--update` has nothing to do), and the edit is still there."""
    from s2s.emit import compile_module
    from s2s.update import base_path
    example = EXAMPLES[IDS.index("logreg_stable")]
    with open(base_path(os.path.join(ROOT, example.output_path)), encoding="utf-8") as fh:
        generated = fh.read()
    assert generated == generated_text(example)
    _, derivative, _ = loaded(example)
    w, X, y = np.full(3, -1000.0), np.ones((8, 3)), np.ones(8)  # margins of -3000
    np.testing.assert_array_equal(derivative.grad_loss(w, X, y), -np.ones(3))
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(compile_module(generated, "loss")["grad_loss"](w, X, y)).all()
