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


CASES = [max_into_itself, product_into_itself]


@pytest.mark.parametrize("fn", CASES, ids=[c.__name__ for c in CASES])
@pytest.mark.parametrize("y", [-0.15, 0.45, np.array([-0.15, 0.2, 0.7])], ids=["neg", "pos", "array"])
def test_found_by_fuzz(fn, y):
    check_modes(fn, (y,), 0)
