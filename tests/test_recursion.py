"""Recursion with data-dependent depth (issue 12): each recursive helper is its own derivative
unit (``det``, ``vjp_det``, ``jvp_det`` in the generated module, see `s2s.units`), checked
against central finite differences in reverse mode, forward mode and second order."""
import numpy as np
import pytest

import s2s
from generated_examples.determinant import det  # by cofactor expansion: depth = the matrix's size
from s2s.testing import assert_close, check_mode, numerical_jvp

rng = np.random.default_rng(12)


def det_loss(A):
    return det(A) ** 2 + np.sum(A * A)


def tree_reduce(x, lo, hi):
    """A product-sum over the halves of x[lo:hi]: depth log2 of its length."""
    if hi - lo == 1:
        return np.tanh(x[lo])
    mid = (lo + hi) // 2
    return tree_reduce(x, lo, mid) * tree_reduce(x, mid, hi) + 0.5 * x[mid]


def tree_loss(x):
    return tree_reduce(x, 0, x.shape[0]) ** 2


def power(x, k):
    return 1.0 if k == 0 else x * power(x, k - 1)


def depths(x):
    """Three depths in one function, one of them on an element."""
    return np.sum(power(x, 3)) + np.sum(power(x, 1) * power(x[0], 2))


def halve(x):
    """Data-dependent depth: halve until the sum is small."""
    if np.sum(x * x) > 1.0:
        return np.sin(halve(x * 0.5))
    return np.sum(x * x) + x[0]


def is_even(x, n):  # mutual recursion
    return x if n == 0 else np.cos(is_odd(x, n - 1))


def is_odd(x, n):
    return np.sin(x) if n == 0 else is_even(x * 1.5, n - 1)


def mutual(x):
    return np.sum(is_even(x, 4) * is_even(x, 3))


def in_a_loop(x, W):
    """A recursive helper called in a loop whose argument is overwritten each trip."""
    h = x
    for i in range(3):
        h = np.tanh(W @ power(h, i + 1))
    return np.sum(h)


def sines(z, n):
    return 1.3 * z if n == 0 else np.sin(sines(z * 0.9, n - 1)) + z


def updates_the_value(x, s):
    """The helper's value is updated in place after a loop that may change it (fuzz seed 33
    #35): along s, its tangent starts as the zeros of the helper's (value, residuals)."""
    p = sines(np.log(1.0 + x[1] ** 2), 2)
    k = 0
    while k < 0:
        k = k + 1
        a3 = p[:]
        a3 += s / (p ** 2 + 1.0)
        p = p + np.sum(a3) * 0.1
    a4 = p
    a4 += np.sum(x)
    return np.sum(np.tanh(a4)) * 0.3 + np.sum(np.tanh(s)) * 0.3


@pytest.mark.parametrize("argnums", [0, 1])
def test_a_value_updated_in_place_second_order(argnums):
    check_mode("hvp", updates_the_value, (rng.standard_normal((2, 3)), 0.3), argnums=argnums)


@pytest.mark.parametrize("n", [3, 4, 5])
@pytest.mark.parametrize("mode", ["grad", "jvp", "hvp"])
def test_determinant_by_cofactors(mode, n):
    A = rng.standard_normal((n, n))
    assert np.isclose(det(A), np.linalg.det(A))
    check_mode(mode, det_loss, (A,))


def test_determinant_6x6_and_its_hessian():
    A = rng.standard_normal((6, 6))
    V = rng.standard_normal((6, 6))
    dA = s2s.grad(det)(A)
    assert_close(np.sum(dA * V), numerical_jvp(det, (A,), (V,)))  # along a direction
    assert_close(dA, np.linalg.det(A) * np.linalg.inv(A).T)  # Jacobi's formula
    check_mode("jvp", det, (A,))
    check_mode("hessian", det_loss, (rng.standard_normal((3, 3)),))


@pytest.mark.parametrize("mode", ["grad", "jvp", "hvp", "hessian"])
@pytest.mark.parametrize("size", [4, 7])
def test_tree_reduction_depth_from_the_length(mode, size):
    check_mode(mode, tree_loss, (rng.standard_normal(size) * 0.7,))


@pytest.mark.parametrize("fn, x", [(depths, rng.standard_normal(3)), (mutual, rng.standard_normal(3)),
                                   (halve, np.array([1.5, -2.0, 0.7])), (halve, np.array([0.3, 0.2]))])
@pytest.mark.parametrize("mode", ["grad", "jvp", "hessian"])
def test_depth_differs_between_calls(mode, fn, x):
    check_mode(mode, fn, (x,))


@pytest.mark.parametrize("mode", ["grad", "jvp", "hvp"])
def test_unit_called_in_a_loop(mode):
    check_mode(mode, in_a_loop, (rng.standard_normal(3) * 0.5, rng.standard_normal((3, 3)) * 0.5),
               argnums=(0, 1))


def test_the_units_are_functions_of_the_module():
    grad = s2s.grad(det_loss)
    grad(rng.standard_normal((3, 3)))
    text = s2s.source(grad)
    assert "def det_fwd(A):" in text and "def det_bwd(residuals, dresult):" in text
    assert "t1 = det_fwd(A)" in text and "det_bwd(t1[1], " in text  # the caller's sweeps
    assert "det_fwd(np.concatenate(" in text.split("def det_fwd")[1]  # the units call themselves
    assert "det_bwd(t14[1], " in text.split("def det_bwd")[1]
    assert "def minor" not in text  # a helper that does not recurse is inlined


def keeps_a_list(x):
    return np.sum(listed([x, x * 2.0], 2))


def listed(xs, n):
    return xs[0] if n == 0 else listed([xs[1], xs[0] * xs[1]], n - 1)


def returns_a_pair(x):
    return np.sum(pair_down(x, 2)[0])


def pair_down(x, n):
    if n == 0:
        return x, x * 2.0
    a, b = pair_down(np.sin(x), n - 1)
    return a, b * 2.0


def passes_a_function(x):
    return np.sum(apply_n(np.sin, x, 2))


def apply_n(f, x, n):
    return x if n == 0 else apply_n(f, f(x), n - 1)


@pytest.mark.parametrize("fn, message, place", [
    (keeps_a_list, "is given a container ('xs')", "listed([x, x * 2.0], 2)"),
    (passes_a_function, "is given a function ('f')", "np.sin"),
    (returns_a_pair, "pair_down is recursive and returns a container", "def pair_down"),
])
def test_refused_with_a_place(fn, message, place):
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(fn)(np.ones(3))
    assert message in str(info.value) and f"{__file__}:" in str(info.value)
    assert place in str(info.value)


def test_numba_target_is_refused_for_units():
    pytest.importorskip("numba")
    with pytest.raises(s2s.S2SError, match="recursive: its derivative units are not made for the numba"):
        s2s.grad(tree_loss, target="numba")(np.ones(4))


def shrink(z, n):
    if n == 0:
        return z[1] - z
    return np.sin(shrink(z * 0.9, n - 1)) + z


def unit_result_read_by_rows(x, s):
    """The gradient reads a row of a unit's adjoint tuple that a later write may alias: forward
    mode copied that tuple as if it were an array (hvp: 'tuple' has no attribute 'copy')."""
    for _ in range(1):
        x = shrink(s + x, 1)
    for _ in range(2):
        x = x / ((1.3 - x[0]) ** 2 + 1.0)
    return np.sum(np.tanh(x))


@pytest.mark.parametrize("mode", ["grad", "hvp"])
def test_a_unit_adjoint_tuple_owned_in_forward_mode(mode):
    x = np.random.default_rng(0).standard_normal((2, 3))
    check_mode(mode, unit_result_read_by_rows, (x, 0.3), (0, 1))
