"""A log-sum-exp's shift has no derivative (s2s/invariance.py): the generated form (no mask of
the maximum's ties), the numbers against finite differences, and the spellings where the
shift does not line up with the sum, which must keep their derivative in the shift."""
import numpy as np
import pytest

from s2s.testing import check_mode

from tests.test_generated_code import body_of, generated


def mixture(x, a):
    """gmm's responsibilities: the shift over the first axis, no keepdims; a scalar shift."""
    inner = a[:, None] - 0.5 * x ** 2
    m = np.max(inner, axis=0)
    lse = m + np.log(np.sum(np.exp(inner - m), axis=0))
    am = np.max(a)
    return np.sum(lse) - 3.0 * (am + np.log(np.sum(np.exp(a - am))))


def log_softmax(z, y):
    """mlp's: keepdims, the shift added on the right, the sum as a method."""
    m = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - m)
    lse = np.log(e.sum(axis=-1, keepdims=True)) + m
    return -np.sum(y * (z - lse))


def log_mean_exp(x):
    m = np.max(x, axis=1, keepdims=True)
    return np.sum(m + np.log(np.mean(np.exp(x - m), axis=1, keepdims=True)))


def shift_by_column(x, s):  # s: (3, 1), constant along the summed axis of (3, 4)
    return np.sum(s + np.log(np.sum(np.exp(x - s), axis=1, keepdims=True)))


@pytest.mark.parametrize("f, shapes", [(mixture, ((4, 6), (4,))), (log_softmax, ((5, 3), (5, 3))),
                                       (log_mean_exp, ((3, 4),)), (shift_by_column, ((3, 4), (3, 1)))])
def test_the_shift_of_a_log_sum_exp_is_not_differentiated(f, shapes, rng):
    args = tuple(rng.standard_normal(s) for s in shapes)
    argnums = tuple(range(len(args)))
    body = body_of(generated(f, *args, argnums=argnums), f"grad_{f.__name__}")
    assert not any("==" in line for line in body), body  # no mask of the maximum's ties
    for mode in ("grad", "hvp", "jvp"):
        check_mode(mode, f, args, argnums=argnums)


def tie_at_the_maximum(x):
    m = np.max(x, axis=0)
    return np.sum(m + np.log(np.sum(np.exp(x - m), axis=0)))


def test_ties_at_the_maximum(rng):
    """The maximum attained twice in a column: the shift's derivative (a tie mask) is 0 anyway."""
    x = rng.standard_normal((4, 3))
    x[2] = x[0] = np.max(x, axis=0) + 1.0
    check_mode("grad", tie_at_the_maximum, (x,))


# The shift does not line up with the sum: its derivative is not zero and must stay.

def wrong_axis(x):  # (n, n): the row maxima subtracted along rows
    m = np.max(x, axis=1)
    return np.sum(m + np.log(np.sum(np.exp(x - m), axis=1)))


def kept_axis_without_keepdims(x):  # (n, 1) + (n,): an outer sum
    m = np.max(x, axis=1, keepdims=True)
    return np.sum(m + np.log(np.sum(np.exp(x - m), axis=1)))


def shift_read_again(x):  # d = x - m read twice: m's derivative through it is needed
    m = np.max(x, axis=0)
    d = x - m
    return np.sum(m + np.log(np.sum(np.exp(d), axis=0))) + np.sum(d ** 2)


def shift_rebound(x):
    m = np.max(x, axis=0)
    e = np.exp(x - m)
    m = 2.0 * m
    return np.sum(m + np.log(np.sum(e, axis=0)))


def other_shift(x, c):  # added back is not what was subtracted
    m = np.max(x, axis=0)
    return np.sum(c + np.log(np.sum(np.exp(x - m), axis=0))) * np.sum(m)


def with_initial(x):  # initial= adds a constant inside the sum
    m = np.max(x, axis=0)
    return np.sum(m + np.log(np.sum(np.exp(x - m), axis=0, initial=0.5)))


def shift_over_the_summed_axis(x, s):  # a (3, 1) shift, summed over the columns of (3, 4)
    return np.sum(s + np.log(np.sum(np.exp(x - s), axis=1, keepdims=True)))


@pytest.mark.parametrize("f, shapes", [
    (wrong_axis, ((4, 4),)), (kept_axis_without_keepdims, ((4, 3),)), (shift_read_again, ((4, 3),)),
    (shift_rebound, ((4, 3),)), (other_shift, ((4, 3), (3,))), (with_initial, ((4, 3),)),
    (shift_over_the_summed_axis, ((3, 4), (3, 4))), (shift_over_the_summed_axis, ((3, 4), (4,)))])
def test_a_shift_that_does_not_cancel_keeps_its_derivative(f, shapes, rng):
    args = tuple(rng.standard_normal(s) for s in shapes)
    if f is with_initial:
        args = (np.abs(args[0]),)
    check_mode("grad", f, args, argnums=tuple(range(len(args))))
    if f in (wrong_axis, kept_axis_without_keepdims):
        body = body_of(generated(f, *args), f"grad_{f.__name__}")
        assert any("==" in line for line in body), body  # the maximum's derivative is there


def test_a_full_shift_over_the_summed_axis_is_differentiated(rng):
    """``s`` of the shape of ``x``: each element its own shift; d/ds is not zero."""
    x, s = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    body = body_of(generated(shift_over_the_summed_axis, x, s, argnums=1), "grad_shift_over_the_summed_axis")
    assert any(line.startswith("ds") for line in body), body


def lse_and_its_log(x):
    m = np.max(x, axis=0)
    t = np.log(np.sum(np.exp(x - m), axis=0))
    return m + t, t  # t depends on m: through the second output d/dm is not zero


def test_a_log_returned_as_well_keeps_the_shifts_derivative(rng):
    import s2s
    from s2s.testing import numerical_grad

    x = rng.standard_normal((4, 3))
    g1, g2 = rng.standard_normal(3), rng.standard_normal(3)
    _, vjp_fn = s2s.vjp(lse_and_its_log, x)
    (got,) = vjp_fn((g1, g2))

    def scalar(x):
        a, b = lse_and_its_log(x)
        return np.sum(a * g1) + np.sum(b * g2)
    np.testing.assert_allclose(got, numerical_grad(scalar, (x,), 0), rtol=1e-6, atol=1e-8)


def forward_algorithm(x, w):
    """A log-sum-exp per step of a loop, its shift a row maximum saved for the backward sweep."""
    alpha = x[0]
    for t in range(3):
        scores = alpha[:, None] + w
        m = np.max(scores, axis=0)
        alpha = m + np.log(np.sum(np.exp(scores - m), axis=0)) + x[t + 1]
    return np.sum(alpha ** 2)


def test_a_log_sum_exp_in_a_loop(rng):
    args = (rng.standard_normal((4, 3)), rng.standard_normal((3, 3)))
    body = body_of(generated(forward_algorithm, *args, argnums=(0, 1)), "grad_forward_algorithm")
    assert not any("==" in line for line in body), body
    for mode in ("grad", "hvp"):
        check_mode(mode, forward_algorithm, args, argnums=(0, 1))
