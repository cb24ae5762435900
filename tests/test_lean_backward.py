"""Backward sweeps without extra passes over arrays (s2s/lean.py, and views saved as copies):
the generated form, and the numbers against finite differences."""
import re

import numpy as np
import pytest

import s2s
from s2s.testing import check_mode

from tests.test_generated_code import body_of, generated


def rowwise_energy(x, w):
    return np.sum(np.sum(x ** 2, axis=1) * w) + np.sum(np.exp(x - np.max(x, axis=0)))


def test_a_reductions_adjoint_broadcasts_inside_the_arithmetic_that_reads_it(rng):
    """``np.broadcast_to(np.expand_dims(g, 1), S) * 2 * x`` with ``x`` of shape S: the
    expanded ``g`` broadcasts in the product; no full-size array of copies of ``g``."""
    args = (rng.standard_normal((5, 3)), rng.standard_normal(5))
    text = generated(rowwise_energy, *args, argnums=(0, 1))
    body = body_of(text, "grad_rowwise_energy")
    assert "broadcast_to" not in text
    assert "dx += w[:, None] * 2 * x" in body, body
    assert "-np.sum(" in text and "np.sum(-" not in text  # the negation on the small side
    for mode in ("grad", "hvp"):
        check_mode(mode, rowwise_energy, args, argnums=(0, 1))


def stencil(u0, vel, kappa, dt):
    u = u0.copy()
    for step in range(3):
        lap = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]
        adv = vel * (u[1:-1, 2:] - u[1:-1, :-2]) * 0.5
        u[1:-1, 1:-1] += dt * (kappa * lap - adv)
    return np.sum(u ** 2)


def test_each_region_of_a_stencils_adjoint_is_updated_once(rng):
    """The interior's adjoint scaled once per reader (``dt * kappa``, ``dt * vel``), and one
    strided update per shifted region, as a hand-written stencil gradient does."""
    args = (rng.standard_normal((6, 7)), 0.4, 0.2, 0.3)
    body = body_of(generated(stencil, *args), "grad_stencil")
    updates = [re.split(" [+-]= ", line)[0] for line in body if line.startswith("du[")]
    assert len(updates) == len(set(updates)) == 5, body
    assert any(line.endswith("* (dt * kappa)") for line in body), body
    assert not any(line.endswith("* dt") for line in body), body  # no pass that only scales by dt
    for mode in ("grad", "hvp"):
        check_mode(mode, stencil, args)


def shift_twice(u, a):
    v = u.copy()
    b = v[1:] * a
    v[:-1] = b  # reversed: reads and clears dv[:-1] between the two updates of dv[1:]
    return np.sum(v[1:] ** 2) + np.sum(v * a)


def scale_through_view(u, a):
    v = u * a
    w = v[1:, :] * 2.0
    v[1:, :1] += w[:, 1:2]
    return np.sum(v[1:, :] * v[1:, :]) + np.sum(v[:, 1:] * a)


@pytest.mark.parametrize("f", [shift_twice, scale_through_view])
def test_updates_of_one_region_with_a_read_between_stay_apart(f, rng):
    args = (rng.standard_normal((4, 3)), 0.7)
    for mode in ("grad", "hvp"):
        check_mode(mode, f, args)


def rnn_fill(W, U, xs, h0):
    T = xs.shape[0]
    H = np.empty((T + 1, h0.shape[0]))
    H[0] = h0
    for t in range(T):
        H[t + 1] = np.tanh(W @ H[t] + U @ xs[t])
    return np.sum(H[1:] ** 2) / T


def test_rows_of_a_filled_array_are_saved_as_copies_and_the_weight_gradient_batched(rng):
    """``h = H[t]`` is a view of an array written later (``H[t + 1] = ...``), but nothing
    writes its row between its definition and its last read: it is saved by value into a
    preallocated array, and ``dW += np.outer(dz, h)`` becomes one product after the loop."""
    args = (0.5 * rng.standard_normal((4, 4)), rng.standard_normal((4, 3)),
            rng.standard_normal((5, 3)), rng.standard_normal(4))
    text = generated(rnn_fill, *args, argnums=(0, 1))
    body = body_of(text, "grad_rnn_fill")
    assert "np.outer" not in text and any(line.startswith("dW = ") and " @ saved_" in line
                                          for line in body), body
    assert ".append(" not in text
    for mode in ("grad", "hvp"):
        check_mode(mode, rnn_fill, args, argnums=(0, 1))
    assert s2s.grad(rnn_fill, argnums=(0, 1), target="numba")  # builds; numbers below
    got = s2s.grad(rnn_fill, argnums=(0, 1), target="numba")(*args)
    want = s2s.grad(rnn_fill, argnums=(0, 1))(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def rows_rewritten(W, xs, h0):
    T = xs.shape[0]
    H = np.zeros((T + 1, h0.shape[0]))
    H[0] = h0
    for t in range(T):
        r = H[t]
        H[t] = H[t] * 0.5  # writes r's elements before r is read
        H[t + 1] = np.tanh(W @ r + xs[t])
    return np.sum(H ** 2)


def test_a_view_whose_elements_change_before_its_read_stays_a_reference(rng):
    args = (0.5 * rng.standard_normal((3, 3)), rng.standard_normal((4, 3)), rng.standard_normal(3))
    text = generated(rows_rewritten, *args)
    assert "saved_r.append(r)" in text
    for mode in ("grad", "hvp"):
        check_mode(mode, rows_rewritten, args)


def reductions_over_axes(x, v):
    a = np.sum(np.sum(x ** 2, axis=(0, 2)) * v)  # g of shape (4,) back to (3, 4, 2): g[None, :, None]
    b = np.sum(np.max(x, axis=-1) ** 2)  # axis -1 of a rank-3 array: g[:, :, None]
    c = np.sum(np.sum(v, axis=0) * v)  # a sum to a scalar: its adjoint may be a float
    return a + b + c


def column_energy(w, c):
    s = np.sum(w, axis=1)  # (3,) back to (3, 5) into dw: broadcast by the update itself
    d = s[:, None] * c  # x[:, None]'s adjoint: a reshape back
    return np.sum(d ** 2) + np.sum(np.exp(w) * c)


def test_new_axes_by_indexing_and_reshapes_as_methods(rng):
    """``np.expand_dims(g, axis)`` -> ``g[:, None]`` (numpy's function costs 30 times an index
    in Python) where ``g``'s rank is known, never for a scalar; ``np.reshape(g, s)`` -> ``g.reshape(s)``."""
    args = (rng.standard_normal((3, 4, 2)), rng.standard_normal(4))
    body = body_of(generated(reductions_over_axes, *args, argnums=(0, 1)), "grad_reductions_over_axes")
    assert "dx += v[None, :, None] * 2 * x" in body, body  # (dt2 = 1.0 * v folded)
    assert any(line.startswith("dx = dt4[:, :, None] * (x == t4[:, :, None])") for line in body), body
    assert "dv += np.expand_dims(dt6, 0)" in body, body  # dt6 is a scalar: the function stays
    args = (rng.standard_normal((3, 5)), rng.standard_normal((3, 5)))
    body = body_of(generated(column_energy, *args, argnums=(0, 1)), "grad_column_energy")
    assert "ds = dt1.reshape((3,))" in body and "dw += ds[:, None]" in body, body  # no broadcast_to
    for f, a in ((reductions_over_axes, (rng.standard_normal((3, 4, 2)), rng.standard_normal(4))),
                 (column_energy, args)):
        for mode in ("grad", "hvp"):
            check_mode(mode, f, a, argnums=(0, 1))


def sum_then_exp(x, w):
    e = np.exp(x)
    s = np.sum(x, axis=1)  # reversed first: dx is a broadcast, then dx = dx + de * e rebinds it
    return np.sum(s * w) + np.sum(e ** 2)


def test_a_broadcast_read_by_its_own_update(rng):
    args = (rng.standard_normal((4, 3)), rng.standard_normal(4))
    body = body_of(generated(sum_then_exp, *args, argnums=(0, 1)), "grad_sum_then_exp")
    assert not any("broadcast_to" in line for line in body), body
    assert any(line.startswith("dx = w[:, None] + ") for line in body), body  # (ds = 1.0 * w folded)
    for mode in ("grad", "hvp"):
        check_mode(mode, sum_then_exp, args, argnums=(0, 1))
