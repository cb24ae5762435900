"""Scalar loops: invariants computed once before the loop, and a step recomputed in the
backward sweep from the saved loop-carried values (what a hand-written adjoint does)."""
import numpy as np
import pytest

import s2s
from s2s.testing import check_mode


def rk4(a, b, dt, x0, y0, steps):
    x = x0
    y = y0
    for i in range(steps):
        k1x = a * x - x * y
        k1y = x * y - b * y
        x2 = x + 0.5 * dt * k1x
        y2 = y + 0.5 * dt * k1y
        k2x = a * x2 - x2 * y2
        k2y = x2 * y2 - b * y2
        x = x + dt / 2.0 * (k1x + k2x)
        y = y + dt / 2.0 * (k1y + k2y)
    return x * x + y * y


def source(f, *args, argnums=0, target="numpy"):
    g = s2s.grad(f, argnums=argnums, target=target)
    g(*args)
    return str(s2s.source(g))


def sweeps(text):
    forward, backward = text.split("# backward")
    return forward.split("# forward")[1], backward


def code(text):
    """``text`` without its comments."""
    lines = (line.split("  # ")[0] for line in text.splitlines())
    return "\n".join(line for line in lines if not line.strip().startswith("#"))


ARGS = (1.1, 0.9, 0.05, 0.8, 0.6, 7)


def test_the_step_is_recomputed_from_the_saved_state():
    text = source(rk4, *ARGS, argnums=(0, 1, 2, 3, 4))
    forward, backward = sweeps(text)
    assert text.count(".append(") == 2 and "saved_x.append(x)" in text and "saved_y.append(y)" in text
    loop = backward.split("for i in reversed(range(steps)):\n")[1].splitlines()
    assert [line.strip() for line in loop[:2]] == ["x = saved_x.pop()", "y = saved_y.pop()"]
    assert "x2 = x + t" in backward  # recomputed, not popped
    for mode in ("grad", "hvp"):
        check_mode(mode, rk4, ARGS, argnums=(0, 1, 2, 3, 4))


def test_loop_invariant_scalars_are_computed_once_before_the_loop():
    forward, backward = (code(sweep) for sweep in sweeps(source(rk4, *ARGS, argnums=(0, 1, 2))))
    text = forward + backward
    before, loop = forward.split("for i in range(steps):")
    assert text.count("0.5 * dt") == 1 and "0.5 * dt" in before
    assert text.count("dt / 2.0") == 1 and "dt / 2.0" in before
    # the two lines' `0.5 * dt` are one value: one adjoint accumulates over the loop
    assert backward.count("ddt") == 3  # ddt = ..., ddt += ..., return
    # dt is differentiated: the hoisted values' adjoints add up over the loop
    check_mode("grad", rk4, ARGS, argnums=(2,))


def test_no_trip_at_all():
    g = s2s.grad(rk4, argnums=(0, 2, 3))
    assert g(1.1, 0.9, 0.05, 0.8, 0.6, 0) == (0.0, 0.0, pytest.approx(1.6))


def test_the_numba_target_hoists_but_keeps_the_saves():
    """Compiled, storing a float costs less than recomputing the step (RK4: 3%)."""
    text = source(rk4, *ARGS, argnums=(0, 1), target="numba")
    forward, _ = (code(sweep) for sweep in sweeps(text))
    assert forward.split("for i in range(steps):")[0].count("0.5 * dt") == 1
    assert "saved_x2 = np.empty(n_i)" in text and "x2 = saved_x2[i]" in text
    got = s2s.grad(rk4, argnums=(0, 1), target="numba")(*ARGS)
    np.testing.assert_allclose(got, s2s.grad(rk4, argnums=(0, 1))(*ARGS), rtol=1e-12)


def symplectic(a, x, y, steps):
    for i in range(steps):
        x = x + 0.1 * a * y  # the write of y reads the new x: x is restored where it was
        y = y - 0.1 * x * x
    return x * y


def exp_map(a, x, steps):
    for i in range(steps):
        x = np.exp(a * x) - 1.0  # t = np.exp(...): a call on a carried value is saved, not redone
    return x


def written_value_read_back(a, x, steps):
    for i in range(steps):
        x = np.exp(a * x)  # the adjoint of exp reads the result: x is restored after it
    return x


def with_break(a, x, steps):
    for i in range(steps):
        x = x * a + 0.1
        if x > 2.0:
            break
    return x * x


def while_loop(a, x):
    n = 0
    while n < 5:
        x = x * a + 0.5 * a
        n = n + 1
    return x


def nested(a, x, n, m):
    for i in range(n):
        for j in range(m):
            x = x + 0.25 * a * x * (1.0 - x)
        x = x * 0.5 * a
    return x


@pytest.mark.parametrize("f, args", [
    (symplectic, (0.7, 0.4, 0.9, 6)),
    (exp_map, (0.6, 0.3, 5)),
    (written_value_read_back, (0.2, 0.3, 4)),
    (with_break, (1.3, 0.5, 8)),
    (while_loop, (0.8, 0.3)),
    (nested, (0.9, 0.3, 3, 4)),
])
def test_carried_scalars_differentiate_right(f, args):
    nums = (0, 1) if f is not nested else (0, 1)
    check_mode("grad", f, args, argnums=nums)


def test_a_carried_value_read_after_its_write_is_restored_where_it_was():
    _, backward = sweeps(source(symplectic, 0.7, 0.4, 0.9, 6, argnums=(0, 1)))
    loop = [line.strip() for line in backward.split("reversed(range(steps)):\n")[1].splitlines()]
    assert loop[0] == "y = saved_y.pop()" and "x = saved_x.pop()" in loop[1:]


def test_a_call_on_a_carried_value_is_saved_not_recomputed():
    forward, backward = (code(s) for s in sweeps(source(exp_map, 0.6, 0.3, 5, argnums=(0, 1))))
    assert "np.exp(" in forward and "np.exp(" not in backward


def test_invariants_leave_nested_loops_and_divisions_by_variables_stay():
    def f(a, x, n, m):
        for i in range(n):
            for j in range(m):
                x = x + 0.25 * a * x - a / n * x
        return x

    forward, _ = sweeps(source(f, 0.9, 0.3, 3, 4, argnums=(0, 1)))
    before, loops = forward.split("for i in range(n):")
    assert "0.25 * a" in before and "a / n" in loops
    check_mode("grad", f, (0.9, 0.3, 3, 4), argnums=(0, 1))


def per_sample(w, X, y):
    total = 0.0
    for i in range(X.shape[0]):
        total = total + np.logaddexp(0.0, -y[i] * np.dot(X[i], w))
    return total / X.shape[0]


def test_order_free_backward_loops_run_forwards_on_numpy_too():
    """Each reversed iteration only adds into dw: the rows are read in memory order (5% faster
    on logreg_loop than a reversed pass)."""
    rng = np.random.default_rng(3)
    args = (rng.standard_normal(3), rng.standard_normal((6, 3)), np.sign(rng.standard_normal(6)))
    _, backward = sweeps(source(per_sample, *args))
    assert "reversed(" not in backward and "for i in range(" in backward
    check_mode("grad", per_sample, args)
