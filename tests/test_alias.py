"""Aliasing and writes into arrays (`s2s.alias`): numpy's in-place semantics, in every mode.

Each function is checked against central finite differences: its gradient
(reverse mode), a directional derivative (forward mode, ``s2s.jvp``) and, where
the function is smooth, a Hessian-vector product (forward over reverse).
"""
import numpy as np
import pytest

import s2s
from s2s.testing import assert_close, numerical_grad

RNG = np.random.default_rng(11)


def check(f, args, argnums=0, hvp=True):
    """Gradient, JVP and HVP of ``f`` at ``args`` against central differences."""
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    args = tuple(np.array(a, dtype=float) if isinstance(a, (list, np.ndarray)) else a for a in args)
    grads = s2s.grad(f, argnums=argnums)(*args)
    for i, g in zip(argnums, grads):
        assert_close(g, numerical_grad(f, args, i))
    tangents = tuple(RNG.standard_normal(np.shape(a)) if i in argnums else np.zeros(np.shape(a))
                     for i, a in enumerate(args))
    _, tangent = s2s.jvp(f, args, tangents)
    expected = sum(np.sum(numerical_grad(f, args, i) * tangents[i]) for i in argnums)
    assert_close(tangent, expected, what="tangent")
    if hvp:
        i = argnums[0]
        v = RNG.standard_normal(np.shape(args[i]))
        grad = s2s.grad(f, argnums=i)
        eps = 1e-5
        up = grad(*_put(args, (i,), (args[i] + eps * v,)))
        down = grad(*_put(args, (i,), (args[i] - eps * v,)))
        assert_close(s2s.hvp(f, argnums=i)(*args, v), (up - down) / (2 * eps), rtol=1e-4, atol=1e-5,
                     what="Hessian-vector product")


def _put(args, positions, values):
    out = list(args)
    for i, v in zip(positions, values):
        out[i] = v
    return tuple(out)


# --- issue 9, item 4: augmented assignment through an alias ---------------------------

def through_a_copy(x):
    v = x * 1.0
    z = v
    z += x
    return np.sum(v * z)  # sum(4 x ** 2)


def through_a_full_slice(x):
    v = x * 1.0
    z = v[:]
    z += x
    return np.sum(v * z)


def through_a_transpose(x):
    v = x * 1.0
    z = v.T
    z += x.T
    return np.sum(v * np.sin(z))


def through_a_row(x):
    v = x * 1.0
    z = v[0]
    z += x[1]
    return np.sum(v * v) + np.sum(z ** 3)


@pytest.mark.parametrize("f", [through_a_copy, through_a_full_slice, through_a_transpose, through_a_row])
def test_augmented_assignment_through_an_alias_updates_the_shared_array(f):
    x = RNG.uniform(0.5, 1.5, (3, 3))
    check(f, (x,))
    if f is through_a_copy:
        assert_close(s2s.grad(f)(x), 8 * x)


def element_of_a_vector(x):
    v = x * 1.0
    z = v[0]  # a numpy scalar: a copy, so z += ... rebinds z
    z += x[1]
    return np.sum(v * v) * z


def test_an_element_of_a_vector_is_a_copy():
    check(element_of_a_vector, (RNG.uniform(0.5, 1.5, 4),))


def copies_in_a_loop(x):
    acc = x * 0.0
    total = 0.0
    for i in range(3):
        prev = acc
        acc += x * i  # prev sees it too
        total = total + np.sum(prev * x)
    return total + np.sum(acc ** 2)


def test_aliases_inside_a_loop():
    check(copies_in_a_loop, (RNG.uniform(0.5, 1.5, 3),))


# --- issue 9, item 8: a write whose right side reads a view of the written array ----------

def reads_a_view_of_itself(x):
    buf = x.copy()
    buf[1] += np.sum(buf[1:2] ** 2)
    return np.sum(buf * buf)


def test_write_reading_a_view_of_the_same_array():
    check(reads_a_view_of_itself, (RNG.uniform(0.5, 1.5, 3),))


def shifted(x, w):
    a = x.copy()
    a[1:] = a[:-1] * w
    return np.sum(a ** 3)


def test_write_whose_right_side_reads_the_array_being_written():
    check(shifted, (RNG.uniform(0.5, 1.5, 4), RNG.uniform(0.5, 1.5, 3)), argnums=(0, 1))


# --- issue 9, item 14: forward mode through helpers that write --------------------------

def writes_and_appends(x):
    out = np.zeros(3)
    out[0] = x[1] * 2.0
    out[1:] += x[:2] ** 2
    items = []
    items.append(out)
    return items.pop()


def calls_a_writing_helper(x):
    return np.sum(np.sin(writes_and_appends(x)))


def test_forward_mode_inlines_helpers_that_write_and_append():
    x, t = RNG.uniform(0.5, 1.5, 3), RNG.standard_normal(3)
    _, tangent = s2s.jvp(calls_a_writing_helper, (x,), (t,))
    assert_close(tangent, np.dot(numerical_grad(calls_a_writing_helper, (x,), 0), t), what="tangent")


# --- issue 11: writes into arrays the function makes ----------------------------------------

def fills_rows(x, W):
    H = np.zeros((4, x.shape[0]))
    H[0] = x
    for t in range(3):
        H[t + 1] = np.tanh(W @ H[t])
    return np.sum(H ** 2)


def augmented_writes(x):
    a = np.ones(4)
    a[1:3] *= x[:2]
    a[0] += np.sum(x)
    a[3] /= x[2]
    a[-1] -= x[0] ** 2
    return np.sum(np.sin(a))


def repeated_indices(x):
    a = np.zeros(3)
    a[np.array([0, 2, 0])] = x  # numpy keeps one of the two writes into a[0]
    b = x.copy()
    b[np.array([1, 1, 2])] -= x ** 2
    return np.sum(a * np.arange(1.0, 4.0)) + np.sum(b ** 3)


def masked(x):
    a = x * 2.0
    a[a > 1.5] = 0.0
    a[..., 1] *= 3.0
    a[0, np.newaxis] = x[0, 0] ** 2
    return np.sum(a ** 2)


def in_branches_and_while(x):
    y = np.empty_like(x)
    i = 0
    while i < x.shape[0]:
        if x[i] > 1.0:
            y[i] = np.sin(x[i])
        else:
            y[i] = x[i] ** 2
            y[i] += 1.0
        i += 1
    return np.sum(y * x)


@pytest.mark.parametrize("f, args, argnums", [
    (fills_rows, ((3,), (3, 3)), (0, 1)),
    (augmented_writes, ((3,),), 0),
    (repeated_indices, ((3,),), 0),
    (masked, ((3, 2),), 0),
    (in_branches_and_while, ((5,),), 0),
    (shifted, ((4,), (3,)), 1),
])
def test_writes_into_arrays(f, args, argnums):
    values = tuple(RNG.uniform(0.3, 1.7, shape) for shape in args)
    check(f, values, argnums, hvp=f is not masked)


def test_a_row_write_saves_only_the_row():
    text = s2s.source(_called(s2s.grad(fills_rows, argnums=(0, 1)), np.ones(3), np.eye(3)))
    # nothing of H is saved (its rows are saved as the values written: t5), not all of it
    assert "saved_H" not in text and "H.copy()" not in text and "np.copy(H)" not in text


def _called(f, *args):
    f(*args)
    return f


# --- refusals -------------------------------------------------------------------------------

def writes_into_its_argument(x):
    y = x
    y[0] = 3.0
    return np.sum(y)


def writes_through_a_reshape_of_a_live_array(x):
    t = x * 2.0
    y = np.reshape(t, (-1,))
    y[0] = 1.0
    return np.sum(t)


@pytest.mark.parametrize("f, message", [
    (writes_into_its_argument, "changes the argument 'x' in place"),
    (writes_through_a_reshape_of_a_live_array, "may share memory with 't'"),
])
def test_refusals_name_the_line(f, message):
    for derivative in (s2s.grad(f), lambda x: s2s.jvp(f, (x,), (x,))):
        with pytest.raises(s2s.S2SError, match=message) as info:
            derivative(np.ones(3))
        assert "test_alias.py:" in str(info.value) and "y[0] = " in str(info.value)


# --- the benchmark problems that write into arrays -------------------------------------------

def test_stencil_simulation_with_slice_writes():
    from benchmarks.problems import stencil
    u0, vel, kappa, dt, _ = stencil.make_args(np.random.default_rng(0), 8, 20)
    check(stencil.loss, (u0, vel, kappa, dt, 20))
    assert_close(s2s.grad(stencil.loss)(u0, vel, kappa, dt, 20), stencil.grad_loss(u0, vel, kappa, dt, 20))


def test_rnn_filling_a_preallocated_array_by_rows():
    from benchmarks.problems import rnn_fill
    args = rnn_fill.make_args(np.random.default_rng(1), 4, 3, 6)
    check(rnn_fill.loss, args, argnums=(0, 1, 2))
    for ours, hand in zip(s2s.grad(rnn_fill.loss, argnums=(0, 1, 2))(*args), rnn_fill.grad_loss(*args)):
        assert_close(ours, hand)
    text = s2s.source(_called(s2s.grad(rnn_fill.loss, argnums=(0, 1, 2)), *args))
    assert "for t in reversed(range(T)):" in text and "H.copy()" not in text


def doubles(v):
    v += v  # numpy doubles the caller's array
    return np.sum(v) * 0.5


def doubles_a_local(x):
    y = x * 1.0
    s = doubles(y)
    return s + np.sum(y ** 2)  # reads the doubled y


def doubles_an_argument(x, y):
    s = doubles(y)
    return s + np.sum(y * x)


def test_a_helper_updating_its_argument_in_place():
    # found by the random-program generator (writes): the helper's `v += v` was a rebinding
    check(doubles_a_local, (RNG.uniform(0.5, 1.5, 3),))
    with pytest.raises(s2s.S2SError, match="changes the argument 'y' in place"):
        s2s.grad(doubles_an_argument)(np.ones(3), np.ones(3))
