"""Root causes found by the random-program campaigns (`python -m tests.fuzz`), each as its
shrunk reproduction, in grad, jvp and hvp against finite differences (the list with the
open ones: /work/notes/fuzz-findings.md)."""
import numpy as np
import pytest

from s2s.testing import check_modes


def max_into_itself(y):
    """F4: the adjoint of ``np.sum`` of a scalar is ``dy`` itself; the first partial of
    ``np.maximum`` overwrote ``dy`` and the second read the new value."""
    for i in range(2):
        y = np.sum(np.maximum(y, 0.3 * y))
    return y * np.sin(y)


def product_into_itself(y):
    for i in range(1):
        y = np.sum(np.sin(y) * y)
    return y


def scaled_element_in_a_loop(y):
    """F7: the backward sweep recomputed ``buf[1]`` (the factor of ``buf[1] *= y[2]``) from the
    buffer as the write left it, not as it was before; now that value is saved."""
    s = 0.0
    for i in range(2):
        buf = y * 1.5
        buf[1] *= y[2]
        buf[3] += buf[0] * y[1]
        s = s + np.sum(buf ** 2)
    return s


def mean_into_itself(y):
    """F8: as F4, through ``np.mean``, whose adjoint is the scalar expression ``dy / 1``."""
    for k in range(3):
        y = np.mean(y / (y ** 2 + 1.0))
    return y


CASES = [max_into_itself, product_into_itself, mean_into_itself]


@pytest.mark.parametrize("y", [np.array([0.3, 1.2, 0.7, -0.4]), np.array([-0.5, 0.1, 2.0, 0.9])])
def test_a_loop_that_writes_elements_it_read(y):
    check_modes(scaled_element_in_a_loop, (y,), 0)


@pytest.mark.parametrize("fn", CASES, ids=[c.__name__ for c in CASES])
@pytest.mark.parametrize("y", [-0.15, 0.45, np.array([-0.15, 0.2, 0.7])], ids=["neg", "pos", "array"])
def test_found_by_fuzz(fn, y):
    check_modes(fn, (y,), 0)
