"""What the generated code looks like: what it stores, what it computes, how long it is."""
import re

import numpy as np

import s2s
from s2s.forward import forward_module
from s2s.source import from_function
from s2s.testing import assert_close, check_mode, numerical_grad


def body_of(text, name):
    """Lines of the generated function ``name`` (docstring and comments, trailing ones too, dropped)."""
    lines = text.split(f"def {name}(")[1].splitlines()[1:]
    out = []
    for line in lines:
        if line and not line.startswith(" "):
            break
        stripped = line.split("  # ")[0].strip()
        if stripped and not stripped.startswith("#") and not stripped.startswith('"""'):
            out.append(stripped)
    return out


def generated(f, *args, argnums=0):
    g = s2s.grad(f, argnums=argnums)
    g(*args)
    return s2s.source(g)


def running_sum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i]
    return s


def recurrent(W, h):
    for t in range(10):
        h = np.tanh(W @ h)
    return np.sum(h)


def squares(w, X, y):
    return np.sum((X @ w - y) ** 2)


def test_straight_line_code_stores_nothing(rng):
    text = generated(squares, rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5))
    assert ".append(" not in text and ".pop(" not in text and "saved_" not in text


def test_accumulating_loop_stores_nothing(rng):
    text = generated(running_sum, rng.standard_normal(6))
    assert ".append(" not in text and "saved_" not in text


def test_recurrence_stores_one_value_per_iteration(rng):
    text = generated(recurrent, rng.standard_normal((4, 4)) * 0.5, rng.standard_normal(4))
    body = body_of(text, "grad_recurrent")
    # in an array made once (the trip count is known before the loop), written and read by index
    assert [line for line in body if "saved_h" in line] == [
        "saved_h = np.empty((10, 4))", "saved_h[t] = h", "h = saved_h[t]", "dW = dt1_steps.T @ saved_h"]
    assert not any(".append(" in line or ".pop(" in line for line in body)


def test_weight_gradient_of_a_recurrence_is_one_matrix_product(rng):
    """``dW += np.outer(dt1, h)`` per step becomes one product of the stacked steps after the loop."""
    W, h = rng.standard_normal((4, 4)) * 0.5, rng.standard_normal(4)
    body = body_of(generated(recurrent, W, h), "grad_recurrent")
    assert not any("np.outer" in line for line in body)
    assert "dt1_steps[t] = dt1" in body and body[-2:] == ["dW = dt1_steps.T @ saved_h", "return dW"]
    hs = [h]
    for _ in range(10):
        hs.append(np.tanh(W @ hs[-1]))
    dh, dW = np.ones(4), np.zeros((4, 4))
    for t in reversed(range(10)):  # by hand
        dz = dh * (1 - hs[t + 1] ** 2)
        dW += np.outer(dz, hs[t])
        dh = W.T @ dz
    np.testing.assert_allclose(s2s.grad(recurrent)(W, h), dW, rtol=1e-12)


def test_first_contribution_is_an_assignment_and_inactive_adjoints_are_absent(rng):
    text = generated(squares, rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5))
    body = body_of(text, "grad_squares")
    assert not any("zeros_like" in line for line in body)
    assert not any(re.match(r"d(X|y)\b", line) for line in body)  # X and y are not differentiated


def test_sum_of_squares_gradient_is_three_lines(rng):
    text = generated(squares, rng.standard_normal(3), rng.standard_normal((5, 3)), rng.standard_normal(5))
    body = body_of(text, "grad_squares")
    assert body == ["t2 = X @ w - y", "dt2 = 2.0 * t2", "dw = X.T @ dt2", "return dw"]


def test_backward_blocks_cite_the_primal_line(rng):
    text = generated(recurrent, rng.standard_normal((4, 4)) * 0.5, rng.standard_normal(4))
    assert "# line 36: h = np.tanh(W @ h)" in text.replace("line 35", "line 36") or \
        re.search(r"# line \d+: h = np\.tanh\(W @ h\)", text)


def test_the_module_imports_only_numpy_and_stands_alone(rng):
    text = generated(recurrent, rng.standard_normal((4, 4)) * 0.5, rng.standard_normal(4))
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import numpy as np"]
    namespace = {}
    exec(compile(text, "standalone.py", "exec"), namespace)  # no s2s needed to run it
    W, h = np.eye(4) * 0.5, np.ones(4)
    np.testing.assert_allclose(namespace["grad_recurrent"](W, h), s2s.grad(recurrent)(W, h))


def test_same_input_gives_byte_identical_code(rng):
    args = (rng.standard_normal((4, 4)), rng.standard_normal(4))
    assert generated(recurrent, *args) == generated(recurrent, *args)


def commented(w, X):
    """Sum of squares of a tanh layer.

    Only the first line travels into the derivative's docstring.
    """
    # the layer
    h = np.tanh(X @ w)  # in (-1, 1)
    for i in range(2):  # twice
        # shrink
        h = h * 0.5
    return np.sum(h ** 2)


def test_users_comments_travel_into_the_forward_sweep():
    rng = np.random.default_rng(0)
    w, X = rng.standard_normal(3), rng.standard_normal((4, 3))
    g = s2s.grad(commented)
    np.testing.assert_allclose(g(w, X), numerical_grad(commented, (w, X), 0), rtol=1e-6)
    text = s2s.source(g)
    assert '''    """Gradient of commented with respect to w.

    commented: Sum of squares of a tanh layer.
    """
''' in text
    assert "    # forward\n    # the layer\n    # in (-1, 1)\n    h = np.tanh(X @ w)  # line " in text
    assert "        # shrink\n" in text and "    # twice\n" in text
    assert "only the first line" not in text.lower()
    jvp_text = forward_module(from_function(commented), ["w"]).text
    assert "commented: Sum of squares of a tanh layer." in jvp_text
    assert "    # the layer\n    # in (-1, 1)\n    h = np.tanh(X @ w)  # line " in jvp_text


def logistic_loglike(beta, X, y):
    Xbeta = X @ beta
    return np.sum(Xbeta + np.log1p(np.exp(-Xbeta))) - y @ Xbeta


def test_a_sums_seed_flows_through_additions_as_a_scalar():
    """The adjoint of np.sum is a broadcast of a scalar; through ``a + b`` with operands
    alike it stays the scalar (no n-element broadcast array is built, which a Dask graph
    would have to ship to its workers)."""
    rng = np.random.default_rng(0)
    beta, X, y = rng.normal(size=3), rng.normal(size=(6, 3)), (rng.random(6) > 0.5) * 1.0
    text = generated(logistic_loglike, beta, X, y)
    assert "broadcast_to" not in text
    assert "dXbeta = 1.0 - y" in body_of(text, "grad_logistic_loglike")
    assert_close(s2s.grad(logistic_loglike)(beta, X, y),
                 numerical_grad(logistic_loglike, (beta, X, y), 0))


def diffuse(u0, c, dt):
    u = u0.copy()
    for step in range(3):
        lap = u[:-2] + u[2:] - 2.0 * u[1:-1]
        adv = c * (u[2:] - u[:-2]) * 0.5
        u[1:-1] += dt * (lap - adv)
    return np.sum(u ** 2)


def test_scalar_factors_of_an_adjoint_fold_into_one_pass(rng):
    """``t = -g; s = t * 0.5; r = s * c`` is one scaling of g, and ``d += -g`` is ``d -= g``
    (here merged with the other update of the same region: ``d += e - g``)."""
    u0 = rng.standard_normal(8)
    body = body_of(generated(diffuse, u0, 0.3, 0.1), "grad_diffuse")
    assert not any(re.fullmatch(r"\w+ = -\w+", line) for line in body)  # no negated copies
    assert any(re.fullmatch(r"\w+ = \w+ \* \(-0\.5 \* c\)", line) for line in body)
    assert any(re.fullmatch(r"du\[:-2\] \+= \w+ - \w+", line) for line in body)
    check_mode("grad", diffuse, (u0, 0.3, 0.1))
    check_mode("hvp", diffuse, (u0, 0.3, 0.1))


def dense(W, b, X):
    return np.sum(np.tanh(X @ W + b))


def test_a_bias_broadcast_over_rows_sums_them_without_a_helper(rng):
    args = (rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((5, 3)))
    text = generated(dense, *args, argnums=(0, 1))
    assert "def unbroadcast" not in text and "db = np.sum(dt2, axis=0)" in text
    check_mode("grad", dense, args, argnums=(0, 1))


SIZES = (3, 4)


def flat_layer(w, X, T):
    m, n = SIZES
    W = w[:m * n].reshape((m, n))
    V = np.reshape(w[m * n:], (-1, 2))
    out = np.dot(X, W)
    out = out - np.max(out, axis=1, keepdims=True)
    return -np.dot(w, w) - np.sum(out * T) + np.sum(V ** 2)


def test_known_reshapes_and_keepdims_broadcasts_leave_no_runtime_helpers(rng):
    """Shapes through ``reshape((m, n))`` / ``(-1, 2)`` and full reductions are known: no
    unbroadcast, dot_vjp or "must return a scalar" check, and no np.sum of a constant seed."""
    args = (rng.standard_normal(16), rng.standard_normal((5, 3)), rng.standard_normal((5, 4)))
    text = generated(flat_layer, *args)
    for absent in ("unbroadcast", "dot_vjp", "np.ndim", "np.sum(1.0)", "np.sum(-1.0)"):
        assert absent not in text, absent
    assert "-np.sum(" in text and "np.sum(-" not in text and "axis=1, keepdims=True)" in text
    assert "dw = -2 * w" in text  # np.dot(w, w): one contribution, not two equal ones
    check_mode("grad", flat_layer, args)
