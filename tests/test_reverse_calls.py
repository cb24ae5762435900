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
