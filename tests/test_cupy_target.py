"""The cupy target: generated code that names only what cupy has, and computes what numpy does.

Three levels, so that the suite passes on a machine without a GPU, or without cupy:

- names: every ``cp.<...>`` and ``cupyx.<...>`` attribute the cupy-target code
  uses exists in the installed cupy (needs cupy installed, not a GPU);
- numbers: the same cupy-target text, run with numpy standing in for cupy, gives
  the numpy target's numbers (needs nothing);
- on a GPU: the cupy-target code runs on cupy arrays (skipped without a device).
"""
from __future__ import annotations

import ast
import importlib
import os
import sys
import types
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import scipy.special

import s2s
from s2s import derive, emit
from s2s.forward import forward_module

source_module = sys.modules["s2s.source"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def logistic_sigmoid(w, X, y):
    """Uses scipy.special, which the cupy target takes from cupyx.scipy.special."""
    p = scipy.special.expit(X @ w)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


@dataclass(frozen=True)
class Case:
    name: str
    load: Callable  # () -> FunctionSource
    wrt: tuple
    inputs: Callable  # rng -> argument tuple
    modes: tuple = ("reverse", "forward")


def from_example(module, fn="loss"):
    path = os.path.join(ROOT, "generated_examples", f"{module}.py")
    return lambda: source_module.from_file(path, fn)


def generated_gradient(module, fn="loss"):
    """The source of s2s's gradient of an example (forward mode over it makes second derivatives)."""
    def load():
        primal = getattr(importlib.import_module(f"generated_examples.{module}"), fn)
        _, compiled = s2s.grad(primal).__s2s_module__.module(())
        return source_module.from_function(compiled)
    return load


def logistic_inputs(rng):
    X = rng.standard_normal((8, 3))
    return rng.standard_normal(3), 0.1, X, (rng.random(8) < 0.5).astype(float)


def mlp_inputs(rng):
    Y = np.eye(3)[rng.integers(0, 3, 5)]
    return (rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((4, 3)),
            rng.standard_normal(3), rng.standard_normal((5, 3)), Y)


def rnn_inputs(rng):
    return (0.5 * rng.standard_normal((4, 4)), 0.5 * rng.standard_normal((4, 3)), rng.standard_normal(4),
            rng.standard_normal(4), rng.standard_normal((5, 3)))


def branch_inputs(rng):
    return rng.random(4) * 0.2 + 0.5, 1.5


def sigmoid_inputs(rng):
    return rng.standard_normal(3), rng.standard_normal((6, 3)), (rng.random(6) < 0.5).astype(float)


CASES = [
    Case("logistic_loop", from_example("logistic_loop"), ("w", "b"), logistic_inputs),
    Case("mlp", from_example("mlp"), ("W1", "b1", "W2", "b2"), mlp_inputs),
    Case("rnn", from_example("rnn"), ("W", "U", "v", "h0"), rnn_inputs),
    Case("branches", from_example("branches"), ("x", "scale"), branch_inputs),
    Case("sigmoid", lambda: source_module.from_function(logistic_sigmoid), ("w",), sigmoid_inputs),
    Case("mlp_second_derivative", generated_gradient("mlp"), ("W1", "b2"), mlp_inputs, ("forward",)),
]
# derive.reverse_module renames np. to cp. but leaves scipy.special.* as it is (see FORWARD_NEEDS.md).
def generated(case: Case, mode: str, target: str) -> derive.Generated:
    src = case.load()
    if mode == "forward":
        return forward_module(src, list(case.wrt), target=target)
    return derive.reverse_module(src, list(case.wrt), target=target)


ALL = [pytest.param(c, m) for c in CASES for m in c.modes]
IDS = [f"{c.name}-{m}" for c in CASES for m in c.modes]


# --- names -----------------------------------------------------------------------------

def attribute_chains(tree, roots=("cp", "cupyx")):
    """Every dotted name rooted at one of ``roots``, longest first per expression."""
    chains = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts, inner = [], node
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in roots:
                chains.add(".".join([inner.id] + parts[::-1]))
    return {c for c in chains if not any(other.startswith(c + ".") for other in chains)}


def free_roots(tree):
    """Module-like names the code reads but neither defines nor imports."""
    defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    defined |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    defined |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            defined |= {(a.asname or a.name.split(".")[0]) for a in node.names}
    used = {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    return used - defined


@pytest.mark.parametrize("case, mode", ALL, ids=IDS)
def test_every_cupy_name_exists(case, mode):
    cupy = pytest.importorskip("cupy", reason="cupy is not installed (pip install 's2s[cupy]')")
    text = generated(case, mode, "cupy").text
    tree = ast.parse(text)
    assert "import cupy as cp" in text
    assert "np." not in text and "numpy" not in text.split('"""', 2)[2]
    assert not free_roots(tree), f"names used but not imported: {free_roots(tree)}"
    modules = {"cp": cupy}
    if any(c.startswith("cupyx.") for c in attribute_chains(tree)):
        modules["cupyx"] = importlib.import_module("cupyx.scipy.special") and sys.modules["cupyx"]
    missing = []
    for chain in sorted(attribute_chains(tree)):
        root, *parts = chain.split(".")
        obj = modules[root]
        for part in parts:
            if not hasattr(obj, part):
                missing.append(chain)
                break
            obj = getattr(obj, part)
    assert not missing, f"not in cupy {cupy.__version__}: {missing}"


# --- numbers, with numpy standing in for cupy ------------------------------------------------

def numpy_stand_in(text: str, label: str, injected: dict) -> dict:
    """Run cupy-target text with ``cp`` bound to numpy and ``cupyx.scipy`` to scipy."""
    lines = [line for line in text.splitlines(True)
             if line.strip() not in ("import cupy as cp", "import cupyx.scipy.special")]
    namespace = {"cp": np, "cupyx": types.SimpleNamespace(scipy=scipy), **injected}
    return emit.compile_module("".join(lines), label, namespace)


@pytest.mark.parametrize("case, mode", ALL, ids=IDS)
def test_cupy_text_computes_what_numpy_text_does(case, mode):
    args = case.inputs(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    if mode == "forward":
        params = [a.arg for a in case.load().node.args.args]
        tangents = [rng.standard_normal(np.shape(args[params.index(w)])) for w in case.wrt]
        args = args + tuple(float(t) if np.ndim(t) == 0 else t for t in tangents)
    reference = generated(case, mode, "numpy")
    cupy_text = generated(case, mode, "cupy")
    want = emit.compile_module(reference.text, case.name, reference.injected)[reference.entry](*args)
    got = numpy_stand_in(cupy_text.text, case.name, cupy_text.injected)[cupy_text.entry](*args)
    for g, w in zip(_leaves(got), _leaves(want)):
        np.testing.assert_array_equal(g, w)


def _leaves(x):
    if isinstance(x, tuple):
        return [leaf for item in x for leaf in _leaves(item)]
    return [x]


# --- on a GPU ---------------------------------------------------------------------------------

def gpu():
    cupy = pytest.importorskip("cupy", reason="cupy is not installed (pip install 's2s[cupy]')")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - any CUDA failure means: no usable device
        pytest.skip(f"no CUDA device: {type(exc).__name__}: {exc}")
    if count < 1:
        pytest.skip("no CUDA device")
    return cupy


@pytest.mark.parametrize("case, mode", ALL, ids=IDS)
def test_cupy_code_runs_on_the_gpu(case, mode):
    cupy = gpu()
    args = case.inputs(np.random.default_rng(0))
    if mode == "forward":
        params = [a.arg for a in case.load().node.args.args]
        rng = np.random.default_rng(1)
        args = args + tuple(rng.standard_normal(np.shape(args[params.index(w)])) for w in case.wrt)
    reference = generated(case, mode, "numpy")
    want = emit.compile_module(reference.text, case.name, reference.injected)[reference.entry](*args)
    on_gpu = generated(case, mode, "cupy")
    namespace = emit.compile_module(on_gpu.text, case.name, on_gpu.injected)
    device_args = [cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    got = namespace[on_gpu.entry](*device_args)
    for g, w in zip(_leaves(got), _leaves(want)):
        np.testing.assert_allclose(cupy.asnumpy(cupy.asarray(g)), w, rtol=1e-10, atol=1e-12)
