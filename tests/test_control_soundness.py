"""Wrong derivatives that differential testing found in loops, inlined helpers and the
optimizer (issue 9), with their neighbours: each checked against central differences
in every mode (``s2s.grad``, ``s2s.jvp``, ``s2s.hvp``, and ``s2s.hessian`` where cheap).
"""
import numpy as np
import pytest

import s2s
from s2s.testing import MODES, check_mode, check_modes

RNG = np.random.default_rng(9)
ALL = MODES + ("hessian",)


# --- 1. trip counts of loops inside loops ------------------------------------------------------

def while_in_for(a):  # the reproduction: each outer iteration must replay its own trip count
    for t in range(2):
        i = 0
        while i < 1:
            i = i + 1
            a = a * a
    return a


def for_in_while(a):
    k = 0
    while k < 3:
        k = k + 1
        for j in range(k):
            a = np.sin(a) * 1.5
    return np.sum(a)


def while_in_while(a):
    k = 0
    while k < 3:
        k = k + 1
        i = 0
        while i < k:
            i = i + 1
            a = np.sin(a) * 1.5
    return np.sum(a)


def _grow(x, m):
    i = 0
    while i < m:
        i = i + 1
        x = np.cos(x) + x
    return x


def while_in_helper_in_for(a):
    for t in range(3):
        a = _grow(a, t + 1) * 0.5
    return np.sum(a)


def break_in_inner_for(a):
    for t in range(3):
        for j in range(4):
            if j > t:
                break
            a = np.sin(a) * 1.5
    return np.sum(a)


def break_in_inner_while(a):
    for t in range(3):
        i = 0
        while i < 10:
            i = i + 1
            if i > t + 1:
                break
            a = np.sin(a) * 1.5
    return np.sum(a)


def continue_in_inner_while(a):
    for t in range(3):
        i = 0
        while i < 4:
            i = i + 1
            if i == 2:
                continue
            a = np.sin(a) * 1.5 + t
    return np.sum(a)


def three_deep(a):
    for s in range(2):
        k = 0
        while k < 2:
            k = k + 1
            i = 0
            while i < k + s:
                i = i + 1
                a = np.sin(a) * 1.5
    return np.sum(a)


def while_in_branch_in_for(a):
    for t in range(4):
        if t % 2 == 0:
            i = 0
            while i < t + 1:
                i = i + 1
                a = np.sin(a) * 1.5
        else:
            a = a * 1.1
    return np.sum(a)


def data_dependent_trips(a):
    for t in range(3):
        while np.sum(a ** 2) > 0.5:
            a = a * 0.7
        a = a * 2.0
    return np.sum(a ** 3)


def test_while_in_for_reproduction():
    check_modes(while_in_for, (0.9,), modes=ALL)


@pytest.mark.parametrize("f", [for_in_while, while_in_while, while_in_helper_in_for,
                               break_in_inner_for, break_in_inner_while, continue_in_inner_while,
                               three_deep, while_in_branch_in_for, data_dependent_trips])
def test_nested_loop_trip_counts(f):
    check_modes(f, (RNG.uniform(0.2, 0.6, 3),), modes=ALL if f is three_deep else MODES)


# --- 2. the result of an inlined helper with an early return, in a loop ------------------------

def _layer(w, thr):
    if np.mean(w) > thr:
        return w[1] * w[0]
    return 1.0


def helper_early_return_in_loop(a):  # the reproduction: the result's adjoint must restart
    u = np.ones(3) * 0.5
    for t in range(3):
        u = np.stack([_layer(u, -10.0), a, 0.5])
    return u[0]


def _several(w, thr):
    if np.mean(w) > thr:
        return w[1] * w[0]
    if np.mean(w) > 0.0:
        return np.sum(w ** 2)
    return 1.0


def several_returns_in_loop(a):
    u = np.ones(3) * 0.5
    for t in range(3):
        u = np.stack([_several(u, 0.65), a, 0.5 * a])
    return u[0] + u[2]


def two_calls_per_iteration(a):
    u = np.ones(3) * 0.5
    for t in range(3):
        u = np.stack([_layer(u, -10.0) + _layer(u * 2.0, 10.0), a, 0.5])
    return u[0]


def several_returns_in_while(a):
    u = np.ones(3) * 0.5
    k = 0
    while k < 3:
        k = k + 1
        u = np.stack([_several(u, 0.7), a, u[0]])
    return u[0] + u[2]


def _first_large(w):
    for i in range(3):
        if w[i] > 0.55:
            return w[i] * w[0]
    return np.sum(w)


def helper_returning_from_its_loop(a):
    u = np.linspace(0.4, 0.6, 3)  # constant, though u is active later: needs no rule
    for t in range(3):
        u = np.stack([_first_large(u), a, a * a])
    return u[0] + u[1]


def return_from_loop(a):
    s = 0.0
    for t in range(4):
        s = s + np.sum(np.sin(a * t))
        if s > 1.5:
            return s * np.sum(a)
    return s


@pytest.mark.parametrize("a", [0.3, 0.7])
@pytest.mark.parametrize("f", [helper_early_return_in_loop, several_returns_in_loop,
                               two_calls_per_iteration, several_returns_in_while])
def test_inlined_result_adjoint_restarts_each_iteration(f, a):
    check_modes(f, (a,), modes=ALL if f is helper_early_return_in_loop else MODES)


@pytest.mark.parametrize("a", [0.3, 0.7])
def test_helper_returning_from_its_loop(a):
    check_modes(helper_returning_from_its_loop, (a,), modes=("grad", "jvp"))


def test_helper_returning_from_its_loop_hvp():  # issue 9 item 13: the gradient's np.broadcast_to
    check_mode("hvp", helper_returning_from_its_loop, (0.3,))


@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_return_from_loop(scale):
    check_modes(return_from_loop, (RNG.uniform(0.2, 0.6, 3) * scale,))


# --- 3. an adjoint that starts as a broadcast scalar, then gets elements added ---------------

def copy_then_element(b):  # the reproduction: the gradient is [1, 1, 2, 1, 1]
    c = b
    return c[2] + np.sum(c)


def copy_of_copy(b):
    c = b
    d = c
    return d[2] + np.sum(d)


def repeated_indices(b):
    c = b
    return np.sum(c[[0, 0, 2]]) + np.sum(c)


def row_of_matrix(B):
    c = B
    return np.sum(c[1, :] ** 2) + np.sum(c)


def elements_then_reduction(b):
    c = b
    return np.sum(c) + c[2] * c[0] + np.mean(c) + c[1:3].sum()


def test_copy_then_element_reproduction():
    b = RNG.uniform(0.2, 0.6, 5)
    np.testing.assert_allclose(s2s.grad(copy_then_element)(b), [1, 1, 2, 1, 1])
    check_modes(copy_then_element, (b,), modes=ALL)


@pytest.mark.parametrize("f, shape", [(copy_of_copy, (5,)), (repeated_indices, (5,)),
                                      (row_of_matrix, (3, 4)), (elements_then_reduction, (5,))])
def test_broadcast_adjoint_then_index_add(f, shape):
    check_modes(f, (RNG.uniform(0.2, 0.6, shape),))


# --- 5. zip stops at its shortest sequence; enumerate counts from its start ----------------

def zip_unequal(r, x):  # the reproduction: x has 4 entries, r 1 row
    acc = 0.0
    for a, row in zip(x, r):
        acc = acc + a * np.sum(row)
    return acc


def zip_neighbours(x):
    acc = 0.0
    for a, b in zip(x, x[1:]):
        acc = acc + (b - a) ** 2
    return acc


def zip_three(x, r, w):
    acc = 0.0
    for a, row, c in zip(x, r, w):
        acc = acc + a * np.sum(row * c)
    return acc


def zip_in_while(x, r):
    acc = 0.0
    k = 0
    while k < 2:
        k = k + 1
        for a, row in zip(x, r):
            acc = acc + np.sin(a * acc) * np.sum(row)
    return acc


def zip_break(x, r):
    acc = 0.0
    for a, row in zip(x, r):
        if acc > 1.0:
            break
        acc = acc + a * np.sum(row ** 2)
    return acc


def enumerate_from(x):
    acc = 0.0
    for i, v in enumerate(x, 1):
        acc = acc + v * i
    return acc


def enumerate_from_keyword(x):
    acc = 0.0
    for i, v in enumerate(x, start=2):
        acc = acc + v * x[i - 2] * i
    return acc


def min_of_three(x, y):
    return min(x * y, x + 0.5, y * 2.0) + max(np.sum(x), y, 0.3)


X4 = RNG.uniform(0.2, 0.9, 4)
R1, R6 = RNG.uniform(0.2, 0.9, (1, 3)), RNG.uniform(0.2, 0.9, (6, 3))


@pytest.mark.parametrize("r", [R1, R6])
def test_zip_unequal_reproduction(r):
    check_modes(zip_unequal, (r, X4), argnums=(0, 1))


@pytest.mark.parametrize("f, args", [
    (zip_neighbours, (X4,)), (zip_three, (X4, R6, R6[:3])), (zip_in_while, (X4, R1)),
    (zip_in_while, (X4[:2], R6)), (zip_break, (X4, R6)), (zip_break, (3 * X4, R6)),
    (zip_break, (X4[:2], R6)), (min_of_three, (0.3, 0.9)), (min_of_three, (0.8, 0.2)),
    (enumerate_from, (X4,)), (enumerate_from_keyword, (X4,))])
def test_zip_lengths(f, args):
    check_modes(f, args, argnums=tuple(range(len(args))))


# --- 10. a loop's counter that is also an ordinary variable ------------------------------------

def index_then_loop_variable(W, s):  # the reproduction: the gradient lands on W[1]
    t = 1
    s += W[t]
    for t in range(1):
        d = s
    return np.sum(d)


def index_then_enumerate(x):
    i = 2
    y = x[i]
    acc = 0.0
    for i, v in enumerate(x):
        acc = acc + v * np.sin(acc + 1.0)
    return y * acc


def index_read_after_loop(W):
    s = W[0]
    for t in range(3):
        s = s * W[t]
    return np.sum(s + W[t] * s)


def parameter_as_loop_variable(W, k):
    s = W[k]
    for k in range(2):
        s = s * W[k]
    return np.sum(s)


def same_counter_nested(W):
    s = W[0]
    for i in range(2):
        for i in range(3):
            s = np.sin(s * W[i])
        s = s + W[i] * s
    return np.sum(s)


def counter_between_loops(W):
    s = W[1]
    for i in range(3):
        s = s * W[i]
    y = W[i] * s
    for i in range(2):
        s = s + W[i] * y
    return np.sum(s)


def counter_written_in_body(W):
    s = W[0]
    for i in range(3):
        i = i + 1
        s = s * W[i]
    return np.sum(s)


W43 = RNG.uniform(0.3, 0.9, (4, 3))


def test_index_then_loop_variable_reproduction():
    s = RNG.uniform(0.3, 0.9, 3)
    grad = s2s.grad(index_then_loop_variable)(W43[:2], s.copy())
    np.testing.assert_allclose(grad, [[0, 0, 0], [1, 1, 1]])
    check_modes(index_then_loop_variable, (W43[:2], s), argnums=(0, 1))


@pytest.mark.parametrize("f, args", [
    (index_then_enumerate, (W43[0],)), (index_read_after_loop, (W43,)),
    (parameter_as_loop_variable, (W43, 3)), (same_counter_nested, (W43,)),
    (counter_between_loops, (W43,)), (counter_written_in_body, (W43,))])
def test_loop_counter_used_elsewhere(f, args):
    check_modes(f, args)


# --- 12. a float argument (or variable) that becomes an array --------------------------------

def float_rebound_then_branch(a, b, s):  # the reproduction
    a = b * 2.0
    if s < 0.0:
        a = a + a
    return np.sum(np.tanh(a))


def float_times_array_then_branch(a, b, s):
    a = a * b
    if s < 0.0:
        a = a + a * b
    return np.sum(np.tanh(a))


def kind_per_branch(a, b, s):
    if s < 0.0:
        a = np.sum(b * a)
    else:
        a = b * a
    return np.sum(np.tanh(a) * b)


def float_local_becomes_array(b, s):
    acc = 0.5
    if s < 0.0:
        acc = acc + b
    return np.sum(np.tanh(acc)) * np.sum(b)


def float_becomes_array_in_loop(a, b):
    for i in range(2):
        a = np.sin(a * b) + 1.0
    return np.sum(a * a)


B3 = RNG.uniform(0.3, 0.9, 3)


@pytest.mark.parametrize("s", [-1.0, 1.0])
@pytest.mark.parametrize("f", [float_rebound_then_branch, float_times_array_then_branch,
                               kind_per_branch])
def test_float_argument_becomes_array(f, s):
    check_modes(f, (0.3, B3, s), argnums=(0, 1), modes=ALL if s < 0 and f is
                float_rebound_then_branch else MODES)


@pytest.mark.parametrize("f, args", [(float_local_becomes_array, (B3, -1.0)),
                                     (float_local_becomes_array, (B3, 1.0)),
                                     (float_becomes_array_in_loop, (0.3, B3))])
def test_float_variable_becomes_array(f, args):
    check_modes(f, args, argnums=(0, 1) if isinstance(args[1], np.ndarray) else 0)


# --- reversed(): over a range, with a break, and over an array's elements --------------------

def over_reversed_range(x):
    s = 0.0
    for k in reversed(range(3)):
        s = s * x[k] + 0.5
    return s


def break_over_reversed_range(x):
    s = 0.5
    for k in reversed(range(4)):
        if s > 0.9:
            break
        s = s * x[k] + 0.5
    return s


def over_reversed_elements(x):  # the elements, not indices: their adjoints flow back
    s = 0.5
    for v in reversed(x):
        s = s * v + 0.5
    return s


@pytest.mark.parametrize("f, scale", [(over_reversed_range, 1.0), (break_over_reversed_range, 1.0),
                                      (break_over_reversed_range, 2.0), (over_reversed_elements, 1.0)])
def test_reversed_loops(f, scale):
    check_modes(f, (scale * X4,))
