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


# F9: a helper that updates its parameter in place, called on a row (a view) of the caller's
# array: numpy changes the caller's array. The inlined `u3 = r4; u3 -= q` wrote through a copy
# of the row; the write now goes on into the row, then into the array.

def shift_in_place(q, u):
    u -= q
    return 1.0


def bump_first(q, u):
    u[0] += q
    return 1.0


def rows_shifted(x, s):
    u = np.log(1 + np.sin(x) ** 2)
    for r in u:
        a = shift_in_place(s, r)
    return np.sum(np.tanh(u))


def rows_shifted_by_index(x, s):
    u = np.log(1 + np.sin(x) ** 2)
    i = 0
    while i < len(u):
        a = shift_in_place(s * u[i, 0], u[i])
        i += 1
    return np.sum(np.tanh(u) * x)


def slice_shifted(x, s):
    u = np.log(1 + np.sin(x) ** 2)
    v = u[1:3]
    a = shift_in_place(s * x[0], v)
    return np.sum(np.tanh(u)) + np.sum(v * x[1:3])


def first_elements_bumped(x, s):
    u = np.log(1 + np.sin(x) ** 2)
    for i in range(2):
        a = bump_first(s * u[i, 1], u[i])
    return np.sum(np.tanh(u))


def written_through_a_copy(x, s):
    v = np.cos(x)
    w = v[0:1]
    p = v
    p[0] = s * x[0]
    return np.sum(w * x) + np.sum(v ** 2)


ROW_CASES = [rows_shifted, rows_shifted_by_index, first_elements_bumped]


@pytest.mark.parametrize("fn", ROW_CASES, ids=[c.__name__ for c in ROW_CASES])
def test_a_helper_writing_into_a_row_of_the_callers_array(fn):
    x = np.array([[0.3, 0.5, 0.7], [0.1, -0.2, 0.4], [0.9, 0.2, -0.6]])
    check_modes(fn, (x, 0.3), (0, 1))


@pytest.mark.parametrize("fn", [slice_shifted, written_through_a_copy])
def test_a_write_through_a_copy_of_a_view(fn):
    check_modes(fn, (np.array([0.3, 0.5, 0.7, -0.4]), 0.3), (0, 1))


def element_updated_twice(x, s):
    """Seed 22 program 1690: the second ``buf[1] -= s`` read ``buf[1]`` as the first read it
    (the optimizer merged the two reads: ``buf`` is bound once, but written in between)."""
    buf = np.ones((4,)) * 0.5
    buf[1] -= 1.3
    buf[1] -= s * x[0]
    x = x + np.sum(buf) * 0.5
    return np.sum(np.tanh(x))


def test_an_element_read_again_after_a_write():
    check_modes(element_updated_twice, (np.array([-1.16, -0.74, 0.24, -0.12]), 0.43), (0, 1))
