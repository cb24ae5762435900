"""Saves in arrays allocated once (`s2s.preallocate`) and batched accumulation (`s2s.batching`).

Every derivative is checked against central finite differences (and hvp, which
differentiates the generated code again); the generated text is checked for the form.
"""
import numpy as np
import pytest

import s2s
from s2s.testing import check_mode, check_modes


def rnn(W, U, h, x):
    for t in range(x.shape[0]):
        h = np.tanh(W @ h + U @ x[t])
    return np.sum(h ** 2)


def lstm_like(Wx, Wh, xs):
    h = np.zeros((xs.shape[1], Wh.shape[0]))
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ Wx + h @ Wh)
    return np.sum(h)


def nested(W, h):
    for i in range(2):
        for j in range(3):
            h = np.tanh(W @ h) * (i + 1)
    return np.sum(h)


def strided_with_branch(w, x):
    s = 0.0
    for i in range(1, 7, 2):
        if x[i] > 0:
            s = np.sin(s + w * x[i])
        else:
            s = s * w
    return s * s


def triangular(W, h):
    for i in range(3):
        for j in range(i):
            h = np.tanh(W @ h)
    return np.sum(h)


def while_loop(w, h):
    k = 0
    while k < 3:
        h = np.tanh(w * h)
        k = k + 1
    return np.sum(h)


def negative_trips(w, n):
    s = 1.0
    for i in range(n):
        s = np.sin(s * w)
    return s


def source(f, *args, argnums=0, target="numpy"):
    g = s2s.grad(f, argnums=argnums, target=target)
    g(*args)
    return s2s.source(g)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_recurrence_saves_into_one_array_and_batches_both_weights(rng):
    args = (rng.standard_normal((4, 4)) * 0.5, rng.standard_normal((4, 3)), rng.standard_normal(4),
            rng.standard_normal((5, 3)))
    text = source(rnn, *args, argnums=(0, 1))
    assert "saved_h = np.empty((t2, 4))" in text and "saved_h[t] = h" in text
    assert "np.outer" not in text and "append" not in text
    assert "dU = dt6_steps.T @ x" in text.replace("dt7", "dt6") or "_steps.T @ x" in text
    for mode in ("grad", "hvp"):
        check_mode(mode, rnn, args, argnums=(0, 1))


def test_transposed_products_batch_over_the_rows_of_every_step(rng):
    args = (rng.standard_normal((3, 4)), rng.standard_normal((4, 4)) * 0.5, rng.standard_normal((6, 2, 3)))
    text = source(lstm_like, *args, argnums=(0, 1))
    assert ".reshape(-1, 4).T @" in text and "xs.reshape(-1, 3).T @" in text
    check_mode("grad", lstm_like, args, argnums=(0, 1))


def test_nested_ranges_share_one_array_with_an_axis_per_loop(rng):
    args = (rng.standard_normal((3, 3)) * 0.5, rng.standard_normal(3))
    text = source(nested, *args)
    assert "saved_h = np.empty((2, 3, 3))" in text and "saved_h[i, j] = h" in text
    check_mode("grad", nested, args)
    check_mode("hvp", nested, args)


def test_branches_and_strided_ranges_index_by_iteration_on_numba(rng):
    args = (0.7, rng.standard_normal(8))
    text = source(strided_with_branch, *args, target="numba")
    assert "np.empty(len(range(1, 7, 2)))" in text and "[(i - 1) // 2] = s" in text
    got = s2s.grad(strided_with_branch, target="numba")(*args)
    assert got == pytest.approx(s2s.grad(strided_with_branch)(*args), rel=1e-12)
    check_mode("grad", strided_with_branch, args)


def test_loops_whose_trip_count_is_not_known_in_advance_keep_lists(rng):
    args = (rng.standard_normal((3, 3)) * 0.5, rng.standard_normal(3))
    assert "saved_h = []" in source(triangular, *args)  # range(i) changes with the outer loop
    check_mode("grad", triangular, args)
    assert "saved_h = []" in source(while_loop, 0.8, rng.standard_normal(3))
    check_mode("grad", while_loop, (0.8, rng.standard_normal(3)))


def test_a_negative_trip_count_runs_no_iteration(rng):
    g = s2s.grad(negative_trips, target="numba")
    assert g(0.5, -3) == 0.0
    assert "n_i = max(n, 0)" in s2s.source(g) and "saved_s = np.empty(n_i)" in s2s.source(g)
    assert g(0.5, 4) == pytest.approx(s2s.grad(negative_trips)(0.5, 4), rel=1e-12)


def per_sample(w, X, y):
    total = 0.0
    for i in range(X.shape[0]):
        total = total + np.logaddexp(0.0, -y[i] * np.dot(X[i], w))
    return total


def test_numba_runs_independent_backward_iterations_forwards(rng):
    """Each iteration only adds into dw: compiled, the rows are read in memory order."""
    args = (rng.standard_normal(3), rng.standard_normal((6, 3)), np.sign(rng.standard_normal(6)))
    text = source(per_sample, *args, target="numba")
    assert "for i in range(n" not in text.split("# backward")[0]  # (no forward loop at all)
    assert "for i in range(t" in text.split("# backward")[1] and "-1, -1)" not in text
    np.testing.assert_allclose(s2s.grad(per_sample, target="numba")(*args), s2s.grad(per_sample)(*args),
                               rtol=1e-12)
    # a loop-carried adjoint keeps the reversed order
    text = source(rnn, rng.standard_normal((4, 4)) * 0.5, rng.standard_normal((4, 3)),
                  rng.standard_normal(4), rng.standard_normal((5, 3)), target="numba")
    assert "range(t2 - 1, -1, -1)" in text


def shifted_recurrence(x, w):
    alpha = x[0]
    for t in range(1, x.shape[0]):
        alpha = np.sum(np.tanh(alpha[:, None] + w), axis=0) + x[t]
    return np.sum(alpha ** 2)


def strided_count(w, x):
    s = w * len(range(1, x.shape[0], 2)) + w * len(range(x.shape[0], 0, -3))
    for i in range(1, x.shape[0], 2):
        s = np.sin(s * x[i])
    return s * len(range(x.shape[0] - 1, 1)) + s


def test_saves_of_a_range_with_a_start_are_differentiated_again(rng):
    """The gradient allocates ``np.empty((len(range(1, n)), 3))``; hvp reads that back
    (``len(range(a, b, c))`` is integer arithmetic, any sign of step, empty ranges too)."""
    args = (rng.standard_normal((4, 3)), rng.standard_normal((3, 3)))
    assert "len(range(1, " in source(shifted_recurrence, *args)
    for mode in ("grad", "hvp", "jvp"):
        check_mode(mode, shifted_recurrence, args, argnums=(0, 1))
    for n in (1, 2, 5, 8):
        check_modes(strided_count, (0.3, rng.standard_normal(n)), modes=("grad", "hvp", "jvp"))
