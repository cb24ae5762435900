"""Root causes found by the random-program campaigns (`python -m tests.fuzz`), each as its
shrunk reproduction, in grad, jvp and hvp against finite differences (the list with the
open ones: /work/notes/fuzz-findings.md)."""
import numpy as np
import pytest

from s2s import S2SError
from s2s.testing import check_mode, check_modes


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


def rows_scaled_twice(x, y, s):
    """Seed 5 program 593 (hvp): forward mode folded ``np.sum(dt8 * t7)`` (``t7 = buf[::2]``, a
    view) into a later statement, past the restore of ``buf[0]`` that changes what it reads."""
    buf = x.copy()
    buf[0] *= y[1] / (s ** 2 + 1.0)
    buf[::2] *= s
    return s + np.sum(buf)


def overlapping_update_in_a_loop(y):
    """hvp: the backward sweep restores ``buf[0:2]`` in the buffer it popped, which the saved
    view ``buf[1:3]`` shares; forward mode copied the popped tangent before that write, so the
    view's tangent did not see it."""
    s = 0.0
    for i in range(2):
        buf = y * 1.5
        buf[0:2] += buf[1:3] * y[3]
        s = s + np.sum(buf ** 2)
    return s


def test_a_view_read_after_a_restore_of_its_array():
    x = np.array([[-0.33, 0.67, -0.95], [-0.22, 0.50, -0.80], [0.4, 0.1, -0.3]])
    check_modes(rows_scaled_twice, (x, np.array([0.57, 1.02, -0.36]), -0.55), (0, 1, 2))


def test_an_overlapping_update_in_a_loop():
    check_modes(overlapping_update_in_a_loop, (np.array([0.3, 1.2, 0.7, -0.4]),), 0)


def scaled_tail_of_a_copy(y, s):
    """Seed 21 program 2066 (hvp): the copy's tangent is a symbolic zero when it is saved, so
    forward mode saved one zeros buffer and wrote the tangent of ``buf[1:] *= s`` into another;
    the saved view ``buf[1:]`` and the saved buffer no longer shared memory."""
    k = 0
    while k < 2:
        x = np.tanh(np.cos(y))
        buf = x.copy()
        k = k + 1
        buf[1:] *= s
        s = s + np.sum(buf) * 0.5
    return s * np.sum(y)


def test_a_write_into_a_copy_saved_before_its_tangent_exists():
    check_modes(scaled_tail_of_a_copy, (np.array([-0.74, -0.05, 1.07, 0.12]), -0.32), (0, 1))


OFFSET = np.linspace(-0.3, 0.4, 4)


def returns_in_while_loops(c, s, scale=0.4):
    k1 = 0
    while k1 < 2 and np.sum(c) < 0.0:
        return scale - OFFSET  # a constant: the result has no tangent here
    k2 = 0
    while k2 < 1 and np.sum(s) < -0.5:
        return c
    return c * s * OFFSET


def calls_returns_in_while_loops(x):
    """F5 (jvp): the result's zero tangent was made before the second loop from ``result``,
    which is unassigned on the path that gets there: an UnboundLocalError."""
    return np.sum(returns_in_while_loops(x ** 2 * 0.1, x)) + np.sum(returns_in_while_loops(-x, x))


@pytest.mark.parametrize("x", [np.array([0.3, 1.2, 0.7, -0.4]), np.array([-0.9, -0.6, 0.2, -0.5])])
def test_a_helper_returning_inside_while_loops(x):
    check_modes(calls_returns_in_while_loops, (x,), 0)


# Found by the generator's `views` feature (tests/fuzz_views.py): writes through a view taken
# in a loop. The alias analysis looked for one assignment of the view's name in the whole
# function (refused: the name is assigned again after the write); it now takes the assignment
# that reaches the write. hvp: forward mode saved the caller's tangent of `buf = x * 1.0`, then
# wrote into its own copy of it: the saved buffer is now the one written.

def copy_updated_in_a_loop(x, y, s):
    for i in range(2):
        buf = y * 1.0
        v = buf
        v -= np.tanh(y) * s
        x = x + np.sum(buf ** 2) * 0.5
    return np.sum(x ** 2)


def transpose_updated_in_a_loop(x, y, s):
    for i in range(2):
        buf = x.copy()
        v = buf.T
        v -= s * y[1]
        x = x + np.sum(buf ** 2) * 0.5
    return np.sum(x ** 2)


def row_updated_through_a_copy_in_a_loop(x, y, s):
    for i in range(2):
        buf = x * 1.0
        v = buf[1]
        w = v
        w *= np.tanh(s * x[0])
        x = x + np.sum(buf ** 2) * 0.5 + np.sum(v) * 0.1
    return np.sum(x ** 2)


VIEW_CASES = [copy_updated_in_a_loop, transpose_updated_in_a_loop, row_updated_through_a_copy_in_a_loop]


@pytest.mark.parametrize("fn", VIEW_CASES, ids=[c.__name__ for c in VIEW_CASES])
def test_a_write_through_a_view_taken_in_a_loop(fn):
    x = np.array([[0.3, 0.5, 0.7], [0.1, -0.2, 0.4]])
    check_modes(fn, (x, np.array([0.2, 0.4, -0.3]), 0.3), (0, 1, 2))


def row_updated_in_a_loop(x, y):
    """Seed 31 program 1086 (jvp): ``v -= e`` on a row taken in a loop left ``v = v`` after
    spelling the write out (the loop's names are not renamed), and forward mode took that
    for a new value without a tangent."""
    for r in x:
        buf = x.copy()
        v = buf[0]
        v -= np.sin(r)
        y = y + np.sum(buf) * 0.5 + np.sum(v) * 0.1
    return np.sum(y ** 2)


def test_a_row_updated_in_place_in_a_loop():
    x = np.array([[0.75, -0.3, 0.18], [-0.42, 0.4, 0.06]])
    check_modes(row_updated_in_a_loop, (x, np.array([0.97, -0.6, 0.42])), (0, 1))


def float_rebound_to_an_array_then_viewed(x, s):
    """Seed 31 program 3474 (jvp crash): ``b = s`` (a float) made forward mode copy the float's
    tangent (``ds.copy()``) because ``b`` is later written through a view."""
    b = s
    b = x / (x ** 2 + 2.0) * b
    for i in range(1):
        a = b[:]
        a *= np.tanh(s)
        b = b + np.sum(a) * 0.1
    return np.sum(np.tanh(b))


def float_parameter_rebound_then_viewed(x, y, s):
    """Seed 33 program 685 (hvp crash): the same through the gradient's own ``b1 = y; t6 = b1``."""
    b = y
    b = np.exp(np.sin(s / (x ** 2 + 1.0))) * b
    for i in range(1):
        b = np.tanh(b)
    a = b[:]
    a -= 0.7 - s
    return b[-1] * b[0]


def test_a_float_rebound_to_an_array_written_through_a_view():
    x = np.array([0.02, 0.93, 0.66, 0.26])
    check_modes(float_rebound_to_an_array_then_viewed, (x, -0.63), (0, 1))
    check_modes(float_parameter_rebound_then_viewed, (x, 0.88, -0.34), (0, 1, 2))


def stacked_after_a_loop(x, y):
    """Seed 40 program 7621 (hvp crash): the gradient's ``dparts = unstack(dt, 0)`` is a tuple,
    and a row of it is later written in place; forward mode copied the tuple's tangent as an
    array's (``ddparts.copy()``). Now keyed on what the call returns (a tuple)."""
    t = x[1] + x * y
    for i in range(2):
        x = x * 0.5
    return np.sum(np.stack([x, t]) ** 2)


def joined_unequal_after_a_loop(x, y):
    """The same through ``split_like`` (the adjoint of a join of pieces of unequal widths)."""
    t = x[1] + x * y
    for i in range(2):
        x = x * 0.5
    return np.sum(np.hstack([x, t[:, :2]]) ** 2)


def test_a_row_of_a_tuple_of_adjoints_written_in_place():
    x = np.array([[0.3, 0.5, 0.7], [0.1, -0.2, 0.4]])
    check_modes(stacked_after_a_loop, (x, np.array([0.2, 0.4, -0.3])), (0, 1))
    check_modes(stacked_after_a_loop, (x[0], 0.7), (0, 1))
    check_modes(joined_unequal_after_a_loop, (x, np.array([0.2, 0.4, -0.3])), (0, 1))


def rebound_then_written_through_a_view(x, y, n):
    """Seed 34 program 964 (hvp crash, and a wrong hvp once that was fixed): ``u`` is saved
    before its first value (the gradient binds it to None first), then written through a view
    ``a`` that the gradient saves. Forward mode took the None's tangent for one that is not
    its own, so it copied ``du`` before the backward loop: None.copy() where the loop does not
    run, and where it runs a copy that no longer shared memory with the saved view's tangent
    (the restore through the view missed it)."""
    k = 0
    while k < n:
        u = np.tanh(x)
        u = u * x
        a = u[:]
        a -= u ** 2 * 0.1
        x = x + np.sum(u) * 0.5
        k = k + 1
    return np.sum(np.tanh(x)) + np.sum(np.tanh(y))


@pytest.mark.parametrize("n", [0, 1, 2])
def test_a_value_saved_before_it_is_set_then_written_through_a_view(n):
    x = np.array([0.3, 0.5, 0.7])
    check_modes(rebound_then_written_through_a_view, (x, np.array([0.2, 0.4, -0.3]), n), (0, 1))


def _recursive(z, n):
    if n == 0:
        return z
    return np.sin(_recursive(z * 0.9, n - 1)) + z


def _scaled(s, q):
    s *= np.tanh(q)
    return s * q


def _scaled_in_a_loop(s, q):
    for i in range(1):
        s *= np.tanh(q)
    return s * q


def number_updated_by_a_helper(x, y):
    """Seed 50 program 805 (grad crash; without the loop, a wrong gradient): ``s *= e`` in a
    helper given a recursive helper's result, a Python float here. The alias stage took it for
    an array the caller's ``z`` shares: ``z`` took the new value (or ``s[...] = ...`` crashed),
    where Python makes a new float. Its rank is not known: refused."""
    z = _recursive(x * 0.5, 1)
    t = _scaled(z, y)
    return np.tanh(z) * 0.3 + np.tanh(t) * x


def number_updated_by_a_helper_in_a_loop(x, y):
    z = _recursive(-0.4, 0)
    t = _scaled_in_a_loop(z, y)
    return np.tanh(z) * 0.3 + np.tanh(t) * x


@pytest.mark.parametrize("fn", [number_updated_by_a_helper, number_updated_by_a_helper_in_a_loop])
def test_a_number_of_unknown_rank_updated_in_place_is_refused(fn):
    for mode in ("grad", "jvp", "hvp"):
        with pytest.raises(S2SError, match=r"test_fuzz_findings.py:\d+:\d+: error: 's' may be a number"):
            check_mode(mode, fn, (0.3, -0.7), 0)


def _negated(t, s):
    return -s


def an_invariant_twice_in_a_loop(x, s):
    """Seed 52 program 3096 (grad, hvp wrong: d/ds was 0): the inner call's ``-s`` is read by
    nothing, the outer one's is; hoisting both before the loop made them one name, the unread
    one, which the activity analysis (run before hoisting) had left without an adjoint."""
    for i in range(2):
        x = _negated(_negated(x, s), s) * 0.5 + x
    s = 0.7
    return np.sum(np.tanh(x)) * s


@pytest.mark.parametrize("args", [(0.6, -0.35), (np.array([0.6, -0.2]), 0.4)])
def test_an_invariant_computed_twice_in_a_loop(args):
    check_modes(an_invariant_twice_in_a_loop, args, (0, 1))


def two_writes_of_one_sum(x, y):
    """Seed 52 program 3495 (hvp wrong by up to 0.36; the fuzz filed it as imprecise): in the
    gradient, ``dt5 = dbuf[:-1]`` is read before ``dbuf[1:] = 0.0`` overwrites part of it;
    forward mode's tangent view ``ddt5 = ddbuf[:-1]`` had no view mark, so `alias.sharing`
    did not link it to ``ddbuf`` and its reader was folded past the write."""
    buf = y.copy()
    buf[1:] -= np.sum(x, axis=1) ** 2
    buf[:-1] += np.sum(x, axis=1)
    x = x - y
    return np.tanh(np.sum(buf)) + np.sum(np.tanh(x))


def test_a_tangent_view_read_before_its_array_is_cleared():
    x = np.array([[0.99, -0.47, -0.67], [0.2, -0.57, 0.06]])
    check_modes(two_writes_of_one_sum, (x, np.array([-0.7, 1.05, 0.51])), (0, 1))


def scaled_after_an_element_update(s, x):
    """Seed 61 program 1721 (grad wrong by 2e-4 there, 5 % here): the backward loop ``db = db *
    0.8; ds += db[i]`` was taken for order-free (`targets.ascending`: ``db`` counted as set in
    the trip before its read was checked) and ran forwards, so ``ds`` summed ``db[0]`` scaled
    twice and ``db[1]`` once instead of the other way round."""
    b = np.ones(2) * 0.5
    for i in range(2):
        b[i] += s * x
        b *= 0.8
    return np.sum(b * b)


def test_a_carried_adjoint_keeps_its_loop_reversed():
    check_modes(scaled_after_an_element_update, (-0.3, 1.2), (0, 1), modes=("grad", "jvp", "hvp", "numba"))


def a_view_saved_in_a_loop_then_written(x, s):
    """Seed 64 program 2185 (grad wrong, d/ds off by 1.5 here): ``st = x[::-1]`` is saved
    for the backward sweep by reference (``saved_st.append(st)``) in the loop's first trip;
    ``a7 = x[0]; a7 += 1.0`` after the loop writes ``x`` and so the saved view. The region
    was restored only when a name sharing ``x`` was read after it, not the stack."""
    x = x + 0.2
    st = x[::-1]
    for i in range(1):
        t = np.tanh(st * s)
        st = st * 0.5 + t
    s = s + np.sum(st) * 0.5
    a7 = x[0]
    a7 += 1.0
    return s + np.sum(np.tanh(x)) * 0.3


def a_view_saved_in_two_trips_then_written(x, s):
    x = x + 0.2
    st = x[::-1]
    for i in range(2):
        t = np.tanh(st * s)
        st = st * 0.5 + t
    s = s + np.sum(st) * 0.5
    x[0] += 1.0
    return s + np.sum(np.tanh(x)) * 0.3


def test_a_view_saved_in_a_loop_then_written_after_it():
    x = np.array([[1.05, -0.11, -0.27], [0.30, 0.60, -1.16]])
    for f in (a_view_saved_in_a_loop_then_written, a_view_saved_in_two_trips_then_written):
        check_modes(f, (x, -0.12), (0, 1), modes=("grad", "jvp", "hvp"))


def an_inner_loop_index_read_after_it(x, s):
    """Seed 66 program 404 (grad wrong, old): ``i3`` is set in the inner loop and read after
    it, and an outer loop runs both again. Restored at the top of each reversed inner trip, it
    held the first trip's index where the outer loop's previous trip reads the last one."""
    buf = np.ones((3,)) * 0.5
    for k in range(2):
        for i3 in range(2):
            buf[1:] = buf[:-1] * 0.5 + x[0, :2]
        s += np.sum(buf * x[i3 % 2]) * 0.1
    return s


def test_an_inner_loop_index_read_after_it_in_an_outer_loop():
    x = np.array([[-0.9, 1.01, -1.02], [0.16, -0.46, 0.20]])
    check_modes(an_inner_loop_index_read_after_it, (x, 0.03), (0, 1), modes=("grad", "jvp", "hvp"))
