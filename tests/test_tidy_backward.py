"""Backward sweeps as a person writes them (s2s/fold.py, s2s/clears.py): the seed folded into
its readers, no zeroing of rows nothing reads again; the form, and the numbers against finite
differences."""
import ast
import re

import numpy as np

import s2s
from s2s import derive
from s2s.source import from_function
from s2s.testing import assert_close, check_mode, check_modes, numerical_grad

from tests.test_generated_code import body_of, generated


def penalized(w, X, y, lam):
    z = X @ w
    return np.mean(np.logaddexp(0.0, -y * z)) + 0.5 * lam * np.sum(w * w)


def test_the_seed_is_folded_into_its_readers(rng):
    """``dt4 = 1.0; dt8 = 1.0; dt7 = dt8 * t5; dt2 = dt4 / 1000 * ...`` -> ``dw = t5 * 2 * w``,
    ``dt2 = 0.0005 * ...`` (the same numbers: the constants multiply out left to right)."""
    args = (rng.standard_normal(4), rng.standard_normal((1000, 4)), np.sign(rng.standard_normal(1000)), 0.3)
    body = body_of(generated(penalized, *args), "grad_penalized")
    assert not any(line.endswith(("= 1.0", "np.sum(1.0)")) for line in body), body
    assert "dw = t5 * 2 * w" in body and any(line.startswith("dt2 = 0.0005 * ") for line in body), body
    for mode in ("grad", "hvp"):
        check_mode(mode, penalized, args)


def test_a_checked_scalar_output_needs_no_sums_of_its_parts(rng):
    """Shape-polymorphic: the output is checked to be 0-d before the backward sweep, so the
    operands of ``a + lam * s`` are 0-d too: ``dt7 = np.sum(dt8 * t5)`` is ``t5`` itself."""
    text = derive.reverse_module(from_function(penalized), ["w"]).text
    body = body_of(text, "grad_penalized")
    assert "np.sum(1.0)" not in text and not any("= np.sum(" in line for line in body), body
    assert "dw = t5 * 2 * w" in body, body
    namespace = {}
    exec(compile(text, "<generated>", "exec"), namespace)
    for lam in (0.3, np.float64(0.7), np.array(1.5)):
        args = (rng.standard_normal(3), rng.standard_normal((7, 3)), np.sign(rng.standard_normal(7)), lam)
        assert_close(namespace["grad_penalized"](*args), numerical_grad(penalized, args, 0))
    try:  # a lam of shape (1,) makes the output an array: still refused
        namespace["grad_penalized"](*args[:3], np.array([0.3]))
    except ValueError as exc:
        assert "must return a scalar" in str(exc)
    else:
        raise AssertionError("an output of shape (1,) was not refused")


def scaled_copy(x, c):
    k = 2.0 * c
    return np.sum(k * x) + np.sum(x ** 2)


def int_scale(x, k):
    return k * x


def int_scale_sum(x, k):
    return np.sum(k * x)


def negative_weighted(x, T):
    return -np.sum(x * T)


def test_a_fold_never_hands_out_or_updates_another_array(rng):
    """``dx = 1.0 * k`` then ``dx += 2 * x`` in place: folded to ``dx = k`` it would write into
    ``k``; and ``1.0 * k`` is a float where ``k`` may be an int."""
    x, c = rng.standard_normal(5), rng.standard_normal(5)
    c0 = c.copy()
    g = s2s.grad(scaled_copy)(x, c)
    assert_close(g, numerical_grad(scaled_copy, (x, c), 0))
    g2 = s2s.grad(scaled_copy)(x, c)
    assert_close(g2, g) and np.array_equal(c, c0)
    assert g is not g2 and not np.shares_memory(g, c)
    assert type(s2s.grad(int_scale)(1.5, 3)) is float
    assert s2s.grad(int_scale_sum)(np.ones(3), np.array([1, 2, 3])).dtype == np.float64
    g = s2s.grad(negative_weighted)(np.ones(3), np.array([1, 2, 3]))  # -1.0 * T, not -T
    assert g.dtype == np.float64 and np.array_equal(g, [-1.0, -2.0, -3.0])
    text = derive.reverse_module(from_function(negative_weighted), ["x"],  # (s2s.grad casts)
                                 known_shapes={"x": (3,), "T": (3,)}).text
    namespace = {}
    exec(compile(text, "<generated>", "exec"), namespace)
    assert namespace["grad_negative_weighted"](np.ones(3), np.array([1, 2, 3])).dtype == np.float64
    check_mode("hvp", scaled_copy, (x, c))


def fill(W, h0, T):
    H = np.empty((T + 1, h0.shape[0]))
    H[0] = h0
    for t in range(T):
        H[t + 1] = np.tanh(W @ H[t])
    return np.sum(H[1:] ** 2)


def fill_two_back(W, h0, T):
    H = np.zeros((T + 2, h0.shape[0]))
    H[0] = h0
    H[1] = np.tanh(h0)
    for t in range(T):
        H[t + 2] = np.tanh(W @ H[t + 1] + H[t])
    return np.sum(H[2:] ** 2)


def fill_backwards(W, h0, T):
    H = np.zeros((T + 1, h0.shape[0]))
    H[T] = h0
    for t in range(T):
        H[T - 1 - t] = np.tanh(W @ H[T - t])
    return np.sum(H ** 2)


def write_twice(w, T):
    H = np.zeros((T + 2, w.shape[0]))
    H[0] = w
    for t in range(T):
        H[t + 1] = np.tanh(H[t])
        H[t + 2] = np.sin(H[t + 1]) * w  # row t + 2 is written again by the next step
    return np.sum(H ** 2)


def test_rows_no_later_step_reads_are_not_zeroed(rng):
    """``dt = dH[t + 1].copy(); dH[t + 1] = 0.0``: no later (smaller) step reads row t + 1, so
    ``dt = dH[t + 1]``; where one may (another offset, another index), the clear stays."""
    W, h0 = 0.5 * rng.standard_normal((4, 4)), rng.standard_normal(4)
    for f, dropped in ((fill, True), (fill_two_back, True), (fill_backwards, False)):
        text = generated(f, W, h0, 5, argnums=(0, 1))
        body = body_of(text, f"grad_{f.__name__}")
        clears = [line for line in body if re.fullmatch(r"dH\[[^]]*\bt\b[^]]*\] = 0\.0", line)]
        assert (not clears) == dropped, (f.__name__, body)
        assert (not re.search(r"dH\[[^]]*\bt\b[^]]*\]\.copy\(\)", text)) == dropped, (f.__name__, body)
        for mode in ("grad", "hvp"):
            check_mode(mode, f, (W, h0, 5), argnums=(0, 1))
    # the next step reads row t + 1's adjoint afresh (offset 2 > 1): that clear stays
    w = rng.standard_normal(3)
    body = body_of(generated(write_twice, w, 4), "grad_write_twice")
    assert "dH[t + 1] = 0.0" in body and "dH[t + 2] = 0.0" not in body, body
    check_mode("grad", write_twice, (w, 4))


def gates(Wx, Wh, xs):
    T = xs.shape[0]
    H = Wh.shape[0]
    h = np.zeros(H)
    for t in range(T):
        a = xs[t] @ Wx + h @ Wh
        i = np.tanh(a[:H])
        f = 1.0 / (1.0 + np.exp(-a[H:2 * H]))
        h = i * f + a[2 * H:]
    return np.sum(h ** 2)


def test_an_adjoint_made_of_blocks_is_written_block_by_block(rng):
    """``da = np.zeros_like(a); da[:, H:2 * H] += df`` -> ``da[:, H:2 * H] = df`` (blocks of one
    size apart), and ``a`` is not saved each step only for ``np.zeros_like(a)``."""
    H, m = 3, 2
    args = (0.5 * rng.standard_normal((m, 3 * H)), 0.5 * rng.standard_normal((H, 3 * H)),
            rng.standard_normal((4, m)))
    text = generated(gates, *args, argnums=(0, 1))
    body = body_of(text, "grad_gates")
    assert "saved_a" not in text and "np.zeros_like(a)" not in text, body
    assert {"da[:H] = dt6", "da[H:2 * H] = dt7", "da[2 * H:] = dh"} <= set(body), body
    assert not any(line.startswith("da[") and "+=" in line for line in body), body
    for mode in ("grad", "hvp"):
        check_mode(mode, gates, args, argnums=(0, 1))
    # shape-polymorphic: the blocks are still told apart (H is a size), a is still saved
    text = derive.reverse_module(from_function(gates), ["Wx", "Wh"]).text
    assert not any(line.startswith("da[") and "+=" in line for line in body_of(text, "grad_gates")), text


def overlapping(W, x):
    H = W.shape[0]
    a = x @ W
    return np.sum(np.tanh(a[:2 * H]) ** 2) + np.sum(np.sin(a[H:]))


def test_overlapping_blocks_still_add(rng):
    """``a[:2 * H]`` and ``a[H:]`` share ``a[H:2 * H]``: the second update adds to the first."""
    args = (rng.standard_normal((3, 9)), rng.standard_normal(3))
    body = body_of(generated(overlapping, *args), "grad_overlapping")
    assert sum(line.startswith("da[") and " += " in line for line in body) == 1, body
    check_mode("grad", overlapping, args)


def mean_half_squares(W, X, Y):
    B = X.shape[0]
    r = X @ W - Y
    return 0.5 * np.sum(r * r) / B


def test_a_chain_of_scalar_adjoints_is_one_factor(rng):
    """``dt28 = 1.0 / B; dt27 = dt28 * 0.5; dr = dt27 * 2 * r`` -> ``dr = 1.0 / B * r`` (the
    scalars inlined; ``* 0.5 * 2`` is ``* 1.0`` exactly: powers of two move the exponent)."""
    args = (rng.standard_normal((3, 2)), rng.standard_normal((5, 3)), rng.standard_normal((5, 2)))
    body = body_of(generated(mean_half_squares, *args), "grad_mean_half_squares")
    assert "dr = 1.0 / B * r" in body, body
    for mode in ("grad", "hvp"):
        check_mode(mode, mean_half_squares, args)
    from s2s.template import simplify
    fold = lambda text: ast.unparse(simplify(ast.parse(text, mode="eval").body))  # noqa: E731
    assert fold("1.0 / B * 0.5 * 2 * r") == "1.0 / B * r" and fold("x / 4 * 0.5 * 2") == "x / 4"
    assert fold("n * 0.5 * 2") == "n * 0.5 * 2"  # n may be an int: n * 1.0 is a float, n is not
    assert fold("1.0 / B * 0.1 * 3") == "1.0 / B * 0.1 * 3"  # (x * 0.1) * 3 != x * 0.3 bit for bit


def negated_kink(x, s):
    z = np.sum(x * x) * 0.5
    return -(np.maximum(z, z * 0.3)) + np.sum(np.tanh(s)) * 0.3 + np.sum(np.tanh(z)) * 0.3


def test_a_negated_mask_added_into_an_adjoint_stays_a_float_product():
    """Fuzz seed 65 #1015: the fold wrote ``dz += -(z >= t)``, and numpy refuses ``-`` on a
    boolean array (it would wrap an unsigned one): ``-1.0 * (z >= t)`` stays."""
    args = (np.array([0.4, -0.9, 1.3]), np.array([0.2, -0.5]))
    g = s2s.grad(negated_kink, argnums=(0, 1))
    g(*args)
    assert "+= -(" not in s2s.source(g)
    check_modes(negated_kink, args, (0, 1), modes=("grad", "jvp", "hvp"))


def negated_constant_kink(x, s):
    z = np.sum(x * x) * 0.5
    return -(np.maximum(0.7, z * 0.3)) + np.sum(np.tanh(s)) * 0.3 + np.sum(np.tanh(z)) * 0.3


def test_a_negated_mask_assigned_stays_a_float_product():
    """Fuzz seed 65 #2213: ``dt = -1.0 * (0.7 < t)`` was folded to ``dt = -(0.7 < t)``."""
    for x in (np.array([0.4, -0.9, 1.3]), np.array([2.4, -1.9, 3.3])):  # both sides of the kink
        args = (x, np.array([0.2, -0.5]))
        g = s2s.grad(negated_constant_kink, argnums=(0, 1))
        g(*args)
        assert "= -(" not in s2s.source(g)
        check_modes(negated_constant_kink, args, (0, 1), modes=("grad", "jvp", "hvp"))
