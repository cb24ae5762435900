"""Calls with structure: multi-output functions, tuple arguments, scipy ufuncs, dtype arguments."""
import numpy as np
import pytest
from scipy.special import expit, logsumexp

import s2s
from s2s.testing import assert_grad_close


def where_broadcast(x, y):
    return np.sum(np.where(x > 0, y, 0.0) * x)


def scipy_ufuncs(x):
    return np.sum(expit(x) * logsumexp(x))


def einsum_product(A, B):
    return np.sum(np.einsum("ij,jk->ik", A, B) ** 2)


def astype(x):
    return np.sum(x.astype(np.float64) ** 2)


def eigh_unpacked(a):
    w, v = np.linalg.eigh(a @ a.T + np.eye(3))
    return np.sum(w ** 2) + np.sum(v[:, 0] ** 4)


def split_unpacked(x):
    a, b = np.split(x, 2)
    return np.sum(a * b)


def slogdet_one_output(a):
    sign, logdet = np.linalg.slogdet(a @ a.T + np.eye(3))
    return logdet


def concatenate_list(x, y):
    z = np.concatenate([x, y * 2.0, x])
    return np.sum(z ** 3)


CASES = [
    (where_broadcast, ((2, 3), (3,)), (0, 1)),
    (scipy_ufuncs, ((4,),), 0),
    (einsum_product, ((2, 3), (3, 4)), (0, 1)),
    (astype, ((3,),), 0),
    (eigh_unpacked, ((3, 3),), 0),
    (split_unpacked, ((4,),), 0),
    (slogdet_one_output, ((3, 3),), 0),
    (concatenate_list, ((2,), (3,)), (0, 1)),
]


@pytest.mark.parametrize("fn, shapes, argnums", CASES, ids=[c[0].__name__ for c in CASES])
def test_structured_calls(rng, fn, shapes, argnums):
    args = tuple(rng.standard_normal(s) for s in shapes)
    assert_grad_close(fn, s2s.grad(fn, argnums=argnums), args, argnums)


def gather_columns(x, idx):
    return np.sum(x[:, idx] ** 2) + np.sum(x[1:, idx[0]] * 3.0) + np.sum(x[::2, :][:, idx] ** 3)


def test_fancy_index_with_slices_and_repeats(rng):
    """``np.add.at`` needs ``slice(None)`` where the source reads ``:``; repeats add up."""
    x = rng.standard_normal((4, 5))
    idx = np.array([0, 2, 2, 4, 0])
    assert_grad_close(gather_columns, s2s.grad(gather_columns), (x, idx), 0)


def float_loop(a, b):
    s = 0.0
    for i in range(50):
        s = s + a * b * 0.01
        a = a * 0.99
    return s


def test_float_accumulators_stay_floats():
    grad = s2s.grad(float_loop, argnums=(0, 1))
    assert_grad_close(float_loop, grad, (0.7, 1.3), (0, 1))
    body = s2s.source(grad).split("def grad_float_loop")[1]
    assert "zeros_like" not in body  # 0-d arrays would make every += a ufunc call


def masked(x, mask, y):
    return np.sum((x[mask] * 2.0 - y[: np.sum(mask)]) ** 2)


def gathered(x, idx, y):
    return np.sum((x[:, idx] - y) ** 2)


def test_boolean_masks_and_integer_index_arrays(rng):
    """Shapes after an index array are known only for integer arrays, never for masks."""
    x, y = rng.standard_normal(6), rng.standard_normal(6)
    mask = np.array([True, False, True, True, False, True])
    assert_grad_close(masked, s2s.grad(masked), (x, mask, y), 0)
    X, idx = rng.standard_normal((3, 4)), np.array([1, 1, 3])
    for y in (rng.standard_normal((3, 3)), rng.standard_normal(3), rng.standard_normal((3, 1))):
        assert_grad_close(gathered, s2s.grad(gathered, argnums=(0, 2)), (X, idx, y), (0, 2))
