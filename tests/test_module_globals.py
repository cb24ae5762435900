"""Generated code reads module globals when it runs, as the primal does (issue 10).

A minibatch loop rebinds ``module.X``: the gradient must use the new data.
"""
import sys

import numpy as np

import s2s
from s2s.testing import numerical_grad

rng = np.random.default_rng(3)
X = rng.normal(size=(5, 3))
Y = rng.normal(size=5)
SCALE = 0.5
module = sys.modules[__name__]


def loss(w):
    r = X @ w - Y
    return np.sum(r ** 2) * SCALE


def helper_reads(w):
    return np.sum(np.tanh(X @ w))


def calls_helper(w):
    return helper_reads(w) * 2.0


def test_minibatch_loop_gets_the_new_data():
    w = rng.normal(size=3)
    grad = s2s.grad(loss)
    value_and_grad = s2s.value_and_grad(loss)
    try:
        for step in range(3):
            module.X = rng.normal(size=(5, 3))  # a new minibatch, same shape
            module.Y = rng.normal(size=5)
            np.testing.assert_allclose(grad(w), numerical_grad(loss, (w,), 0), rtol=1e-6, atol=1e-8)
            value, g = value_and_grad(w)
            assert value == loss(w)
        module.X = rng.normal(size=(7, 3))  # another shape, and another scale: generated again
        module.Y = rng.normal(size=7)
        module.SCALE = 1.5
        np.testing.assert_allclose(grad(w), numerical_grad(loss, (w,), 0), rtol=1e-6, atol=1e-8)
    finally:
        module.X, module.Y, module.SCALE = X, Y, SCALE


def test_helpers_forward_mode_and_hessian_follow_too():
    w = rng.normal(size=3)
    grad = s2s.grad(calls_helper)
    hessian = s2s.hessian(calls_helper)
    grad(w), hessian(w), s2s.jvp(calls_helper, (w,), (np.ones(3),))
    try:
        module.X = rng.normal(size=(5, 3))
        np.testing.assert_allclose(grad(w), numerical_grad(calls_helper, (w,), 0), rtol=1e-6, atol=1e-8)
        _, tangent = s2s.jvp(calls_helper, (w,), (np.ones(3),))
        np.testing.assert_allclose(tangent, np.sum(numerical_grad(calls_helper, (w,), 0)), rtol=1e-6)
        H = hessian(w)
        cols = [(grad(w + e) - grad(w - e)) / 2e-6 for e in np.eye(3) * 1e-6]
        np.testing.assert_allclose(H, np.stack(cols, axis=-1), rtol=1e-4, atol=1e-6)
    finally:
        module.X = X


def test_random_programs_with_a_module_array_rebound_between_calls():
    """Programs of the random-program generator that read the module array OFFSET, with
    containers on: OFFSET is rebound (same shape) between calls; each call's gradient
    must be the new OFFSET's."""
    from tests import fuzz
    features = fuzz.parse_features("+containers")
    checked = 0
    for index in range(60):
        program, args = fuzz.make(5, index, features)
        if "OFFSET" not in program.text.split("def f(")[1] or checked == 6:
            continue
        f = fuzz.load(program.text)
        if not fuzz.valid(f, args):
            continue
        grad = s2s.grad(f, argnums=0)
        try:
            grad(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
        except s2s.S2SError:
            continue  # refused: nothing to follow
        module = f.__globals__  # the program's module
        for shift in (0.3, -0.5):
            module["OFFSET"] = module["OFFSET"] + shift
            fresh = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            expected = numerical_grad(lambda *a: f(*[v.copy() if isinstance(v, np.ndarray) else v
                                                     for v in a]), fresh, 0)
            np.testing.assert_allclose(grad(*fresh), expected, rtol=1e-5, atol=1e-6,
                                       err_msg=f"program {index}")
        checked += 1
    assert checked >= 3
