"""Tuples, lists, dicts and namedtuples of arrays and floats (pytrees): issue 10.

Every case is checked against central finite differences in reverse mode
(`s2s.grad`), forward mode (`s2s.jvp` along a random tangent) and, where the
arguments are arrays, `s2s.hessian`.
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

import s2s
from s2s.errors import S2SError
from s2s.testing import EPS

Point = collections.namedtuple("Point", "x y")


# --- pytree-aware finite differences ----------------------------------------------------

def _float_leaf(v):
    return type(v) is float or (isinstance(v, np.ndarray) and v.dtype.kind == "f")


def _map(tree, fn):
    if isinstance(tree, dict):
        return {k: _map(v, fn) for k, v in tree.items()}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_map(v, fn) for v in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_map(v, fn) for v in tree)
    return fn(tree)


def _leaves(tree):
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _leaves(v)]
    if isinstance(tree, (tuple, list)):
        return [x for v in tree for x in _leaves(v)]
    return [tree]


def _nudged(tree, k, index, h):
    """``tree`` with element ``index`` of its ``k``-th float leaf moved by ``h``."""
    count = iter(range(10 ** 6))

    def nudge(v):
        if not _float_leaf(v) or next(count) != k:
            return v
        if type(v) is float:
            return v + h
        v = v.copy()
        v[index] += h
        return v
    return _map(tree, nudge)


def fd_grad(f, args, n):
    """Central differences of scalar ``f`` w.r.t. ``args[n]``, in ``args[n]``'s structure."""
    x = args[n]
    floats = [v for v in _leaves(x) if _float_leaf(v)]
    grads = []
    for k, v in enumerate(floats):
        g = np.zeros(np.shape(v))
        for index in np.ndindex(np.shape(v)):
            hi = f(*args[:n], _nudged(x, k, index, EPS), *args[n + 1:])
            lo = f(*args[:n], _nudged(x, k, index, -EPS), *args[n + 1:])
            g[index] = (hi - lo) / (2 * EPS)
        grads.append(float(g) if type(v) is float else g)
    it = iter(grads)
    return _map(x, lambda v: next(it) if _float_leaf(v) else None)


def assert_tree_close(actual, expected, what):
    assert type(actual) is type(expected) or (expected is None and actual is None), \
        f"{what}: {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), what
        for k in expected:
            assert_tree_close(actual[k], expected[k], f"{what}[{k!r}]")
    elif isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected), what
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_tree_close(a, e, f"{what}[{i}]")
    elif expected is not None:
        assert np.shape(actual) == np.shape(expected), what
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=what)


def check(f, args, argnums=0, hessian=None):
    """grad, jvp (and hessian for array arguments) of ``f`` against finite differences."""
    rng = np.random.default_rng(1)
    nums = (argnums,) if isinstance(argnums, int) else argnums
    grads = s2s.grad(f, argnums=nums)(*args)
    for n, g in zip(nums, grads):
        assert_tree_close(g, fd_grad(f, args, n), f"{f.__name__}: d/d arg {n}")
    # forward mode: the tangent along random directions is <grad, direction>
    tangents = [_map(a, lambda v: rng.normal(size=np.shape(v)) * 1.0 if _float_leaf(v) else v)
                for a in args]
    tangents = [_map(t, lambda v: float(v) if isinstance(v, np.ndarray) and v.ndim == 0 else v)
                for t in tangents]
    value, tangent = s2s.jvp(f, args, tangents)
    np.testing.assert_allclose(value, f(*args), rtol=1e-12)
    expected = 0.0
    for n in range(len(args)):
        g = fd_grad(f, args, n)
        expected += sum(np.sum(a * b) for a, b in zip(_leaves(g), _leaves(tangents[n])) if a is not None)
    np.testing.assert_allclose(tangent, expected, rtol=1e-5, atol=1e-6, err_msg=f"{f.__name__}: jvp")
    if hessian is not None:
        n = hessian
        H = s2s.hessian(f, argnums=n)(*args)
        x = args[n]
        cols = []
        for index in np.ndindex(np.shape(x)):
            e = np.zeros(np.shape(x))
            e[index] = EPS
            hi = s2s.grad(f, argnums=n)(*args[:n], x + e, *args[n + 1:])
            lo = s2s.grad(f, argnums=n)(*args[:n], x - e, *args[n + 1:])
            cols.append((hi - lo) / (2 * EPS))
        expected = np.stack([np.ravel(c) for c in cols], axis=-1).reshape(np.shape(x) * 2)
        np.testing.assert_allclose(H, expected, rtol=1e-4, atol=1e-5, err_msg=f"{f.__name__}: hessian")


rng = np.random.default_rng(0)
x3 = rng.normal(size=3)
A23 = rng.normal(size=(2, 3))


# --- the reproductions of issue 10 --------------------------------------------------------

def pair(x):
    return np.sin(x), x ** 2


def f1(x):
    a, b = pair(x)  # helper returning a tuple
    return np.sum(a * b)


def f2(x):
    t = (x, 2 * x)  # tuple in a name
    return np.sum(t[1] * t[0])


def f3(t):
    a, b, c = t  # tuple argument
    return np.sum(a * b + c)


def f4(a):
    b = [1, a * a, 2]  # list display
    return np.sum(b)


def f5(A):
    r0, r1 = A  # rows of an array
    return np.sum(r0 * r1)


def f6(W, U, xs):
    h = np.zeros(W.shape[0])
    hs = []
    for x in xs:
        h = np.tanh(W @ h + U @ x)
        hs = hs + [h]  # a list built by +
    return np.sum(np.stack(hs) ** 2)


def f7(x):
    for v in [x, 2 * x]:  # a loop over a list
        x = x + v * x
    return np.sum(x)


def m(a):
    return 2 * a, a


def f8(params, X):  # dict parameter
    h = np.tanh(X @ params["W1"] + params["b1"])
    return np.sum(h @ params["W2"])


def f9(layers, X):  # list of (W, b)
    for W, b in layers[:-1]:
        X = np.tanh(X @ W + b)
    W, b = layers[-1]
    return np.sum(X @ W + b)


def params8():
    return {"W1": rng.normal(size=(2, 3)), "b1": rng.normal(size=3), "W2": rng.normal(size=3)}


def layers9():
    return [(rng.normal(size=(2, 3)), rng.normal(size=3)), (rng.normal(size=(3, 3)), rng.normal(size=3)),
            (rng.normal(size=(3, 1)), rng.normal(size=1))]


@pytest.mark.parametrize("f, args, hessian", [
    (f1, (x3,), 0), (f2, (x3,), 0), (f3, ((x3, x3 + 1.0, x3 - 2.0),), None), (f4, (1.5,), 0),
    (f5, (A23,), 0), (f6, (rng.normal(size=(3, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))), 0),
    (f7, (x3,), 0), (f8, (params8(), rng.normal(size=(4, 2))), None),
    (f9, (layers9(), rng.normal(size=(4, 2))), None),
], ids=lambda v: getattr(v, "__name__", ""))
def test_reproductions(f, args, hessian):
    check(f, args, hessian=hessian)


def test_f6_all_arguments():
    W, U, xs = rng.normal(size=(3, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    grads = s2s.grad(f6, argnums=(0, 1, 2))(W, U, xs)
    for n in range(3):
        assert_tree_close(grads[n], fd_grad(f6, (W, U, xs), n), f"arg {n}")


def test_tuple_output_vjp():
    value, vjp_fn = s2s.vjp(m, 2.0)
    assert value == (4.0, 2.0)
    assert vjp_fn((1.0, 1.0)) == (3.0,)
    assert vjp_fn((0.5, -1.0)) == (0.0,)


def test_identity():
    def ident(a):
        return a
    assert s2s.grad(ident)(2.0) == 1.0
    assert s2s.jvp(ident, (2.0,), (3.0,)) == (2.0, 3.0)
    value, vjp_fn = s2s.vjp(ident, x3)
    np.testing.assert_allclose(vjp_fn(x3 * 2)[0], x3 * 2)


# --- container arguments at several nestings ------------------------------------------------

def nested(p, X):
    (W1, b1), extra = p["layer"], p["extra"]
    h = np.tanh(X @ W1 + b1)
    return np.sum(h * extra[0]) + extra[1] * np.sum(h ** 2)


def point_norm(p):
    return p.x ** 2 + 3.0 * p.x * np.sum(p.y)


def with_ints(cfg, x):
    return np.sum(x ** cfg["power"]) * cfg["scale"]


def test_nested_dict_of_tuples():
    p = {"layer": (rng.normal(size=(2, 3)), rng.normal(size=3)), "extra": [rng.normal(size=3), 0.7]}
    check(nested, (p, rng.normal(size=(4, 2))))
    check(nested, (p, rng.normal(size=(4, 2))), argnums=1)


def test_namedtuple():
    p = Point(1.5, rng.normal(size=3))
    g = s2s.grad(point_norm)(p)
    assert isinstance(g, Point)
    assert_tree_close(g, fd_grad(point_norm, (p,), 0), "point")
    check(point_norm, (p,))


def test_int_leaves_come_back_as_none():
    cfg = {"power": 2, "scale": 1.5}
    g = s2s.grad(with_ints)(cfg, x3)
    assert g["power"] is None and g["scale"] == pytest.approx(np.sum(x3 ** 2))
    np.testing.assert_allclose(s2s.grad(with_ints, argnums=1)(cfg, x3), 3.0 * x3)


def test_value_and_grad_and_aux_containers():
    def loss(params, X):
        h = X @ params["W1"] + params["b1"]
        return np.sum(h ** 2), {"h": h, "n": 2}
    params, X = params8(), rng.normal(size=(4, 2))
    (value, aux), g = s2s.value_and_grad(loss, has_aux=True)(params, X)
    h = X @ params["W1"] + params["b1"]
    assert value == pytest.approx(np.sum(h ** 2))
    np.testing.assert_allclose(aux["h"], h)
    assert aux["n"] == 2
    np.testing.assert_allclose(g["W2"], 0.0)
    assert_tree_close(g, fd_grad(lambda p, X: loss(p, X)[0], (params, X), 0), "grad")
    g2, aux2 = s2s.grad(loss, has_aux=True)(params, X)
    assert_tree_close(g2, g, "grad with aux")


def test_jvp_of_tuple_output():
    def two(x):
        return np.sin(x), {"sq": x ** 2}
    value, tangent = s2s.jvp(two, (x3,), (np.ones(3),))
    np.testing.assert_allclose(value[0], np.sin(x3))
    np.testing.assert_allclose(tangent[0], np.cos(x3))
    np.testing.assert_allclose(tangent[1]["sq"], 2 * x3)


def test_vjp_of_dict_output_and_container_input():
    def f(p):
        return {"a": p[0] * p[1], "b": np.sum(p[0])}
    p = (x3, x3 + 1.0)
    value, vjp_fn = s2s.vjp(f, p)
    (g,) = vjp_fn({"a": np.ones(3), "b": 2.0})
    np.testing.assert_allclose(g[0], p[1] + 2.0)
    np.testing.assert_allclose(g[1], p[0])


# --- container code ---------------------------------------------------------------------------

def indexing_and_slicing(x):
    t = [x, 2 * x, x ** 2, np.sin(x)]
    u = t[1:3] + t[-1:]
    a, (b, c) = u[0], (u[1], u[2])
    return np.sum(a * b + c) + len(t)


def append_extend_pop(x):
    lst = []
    lst.append(x)
    lst.extend([x * 2, np.cos(x)])
    last = lst.pop()
    lst.append(last * x)
    return np.sum(np.array(lst) ** 2)


def zip_enumerate(x):
    ws = [x, x ** 2, np.exp(x)]
    cs = [1.0, 2.0, 3.0]
    total = 0.0
    for i, (w, c) in enumerate(zip(ws, cs)):
        total = total + c * i * np.sum(w)
    return total


def comprehension(x):
    parts = [np.sin(x * k) for k in range(3)]
    return np.sum(np.stack(parts) ** 2) + sum(np.sum(p) for p in parts)


def dict_reads_writes(x):
    d = {"a": x}
    d["b"] = d["a"] * 2
    d["a"] = np.tanh(d["b"])
    total = 0.0
    for k in d:
        total = total + np.sum(d[k])
    return total + np.sum(d.get("c", x))


def index_by_loop_variable(x):
    t = (x, np.sin(x), x ** 3)
    acc = 0.0
    for i in range(len(t)):
        acc = acc + np.sum(t[i]) * (i + 1)
    return acc


def container_in_loop(x):
    acc = (x, 0.0)
    for _ in range(3):
        acc = (acc[0] * 1.5, acc[1] + np.sum(acc[0]))
    return acc[1]


def container_in_branch(x):
    if np.sum(x) > 0:
        t = (x, np.sin(x))
    else:
        t = (np.cos(x), x)
    return np.sum(t[0] * t[1])


def stack_array_of_actives(x):
    M = np.array([[x[0], x[1]], [x[2] * x[0], 1.0]])
    return np.sum(M @ M)


def helper_takes_tuple(t):
    return t[0] * t[1]


def tuple_to_helper(x):
    return np.sum(helper_takes_tuple((x, np.cos(x))))


@pytest.mark.parametrize("f", [indexing_and_slicing, append_extend_pop, zip_enumerate, comprehension,
                               dict_reads_writes, index_by_loop_variable, container_in_loop,
                               container_in_branch, stack_array_of_actives, tuple_to_helper],
                         ids=lambda f: f.__name__)
def test_container_code(f):
    check(f, (x3,), hessian=0)
    check(f, (-x3,))


# --- readable output --------------------------------------------------------------------------

def test_layers_gradient_is_a_list_of_named_adjoints():
    layers = layers9()
    s2s_grad = s2s.grad(f9)
    g = s2s_grad(layers, rng.normal(size=(4, 2)))
    assert isinstance(g, list) and all(isinstance(t, tuple) and len(t) == 2 for t in g)
    text = s2s.source(s2s_grad)
    assert "= layers" in text and "return [(" in text
    assert "np.add.at" not in text


def test_dict_gradient_is_a_dict_display():
    grad = s2s.grad(f8)
    grad(params8(), rng.normal(size=(4, 2)))
    text = s2s.source(grad)
    assert "params_W1 = params['W1']" in text
    assert "return {'W1': dparams_W1, 'b1': dparams_b1, 'W2': dparams_W2}" in text


# --- refusals -------------------------------------------------------------------------------

def dynamic_index(x, i):
    t = (x, 2 * x)
    return np.sum(t[i])


def grows_in_while(x):
    hs = []
    while len(hs) < 3:
        hs.append(x)
    return np.sum(np.stack(hs))


@pytest.mark.parametrize("f, message", [
    (dynamic_index, "index into a tuple must be known"),
    (grows_in_while, "changes inside a loop or branch"),
])
def test_refusals(f, message):
    with pytest.raises(S2SError) as info:
        s2s.grad(f)(x3, 1) if f is dynamic_index else s2s.grad(f)(x3)
    assert message in str(info.value)
    assert ":0:" not in str(info.value)


# --- loop-carried values whose shape changes ----------------------------------------------------

def layer_sizes(x, sizes):
    h = x
    for m, n in zip(sizes[:-1], sizes[1:]):  # h changes shape each iteration
        W = np.ones((m, n)) * 0.1 + np.arange(m)[:, None] * 0.05
        h = np.tanh(h @ W) * np.sum(x)
    return np.sum(h)


def grows(x):
    h = x
    for _ in range(3):
        h = np.concatenate([h, h[:1] * 2.0])
    return np.sum(h ** 2)


@pytest.mark.parametrize("sizes", [[3, 4, 2], (3, 5, 4, 2), np.array([3, 4, 2])], ids=["list", "tuple", "array"])
def test_loop_carried_shape_changes(sizes):
    x = np.array([0.3, -0.2, 0.5])
    check(layer_sizes, (x, sizes))
    check(grows, (x,))  # hessian: forward mode over split_like's tuple is helper "higher"'s (issue 9 item 13)


# --- jacobian and hessian with respect to containers ---------------------------------------------

def test_hessian_of_container_arguments():
    p = {"a": x3 * 0.5, "s": 0.7, "n": 2}

    def f(p):
        return np.sum(np.sin(p["a"]) * p["s"] ** 2) * p["n"]
    H = s2s.hessian(f)(p)
    a, s = p["a"], p["s"]
    np.testing.assert_allclose(H["a"]["a"], np.diag(-np.sin(a) * s ** 2 * 2), atol=1e-10)
    np.testing.assert_allclose(H["a"]["s"], np.cos(a) * 2 * s * 2, atol=1e-10)
    np.testing.assert_allclose(H["s"]["s"], np.sum(np.sin(a)) * 2 * 2, atol=1e-10)
    assert H["a"]["n"] is None and H["n"] is None
    layers = layers9()
    X = rng.normal(size=(4, 2))
    H = s2s.hessian(f9)(layers, X)
    g = s2s.grad(f9)
    W = layers[0][0]
    column = []
    for index in np.ndindex(W.shape):
        e = np.zeros_like(W)
        e[index] = EPS
        hi = g([(W + e, layers[0][1])] + layers[1:], X)[1][0]
        lo = g([(W - e, layers[0][1])] + layers[1:], X)[1][0]
        column.append((hi - lo) / (2 * EPS))
    expected = np.stack([np.ravel(c) for c in column], axis=-1).reshape(layers[1][0].shape + W.shape)
    np.testing.assert_allclose(H[1][0][0][0], expected, rtol=1e-4, atol=1e-6)


def test_jacobian_of_container_output_and_input():
    def f(t):
        return {"prod": t[0] * t[1], "sum": np.sum(t[0])}
    t = (x3, x3 + 1.0)
    J = s2s.jacobian(f)(t)
    np.testing.assert_allclose(J["prod"][0], np.diag(t[1]))
    np.testing.assert_allclose(J["prod"][1], np.diag(t[0]))
    np.testing.assert_allclose(J["sum"][0], np.ones(3))
    np.testing.assert_allclose(J["sum"][1], np.zeros(3))


def built_in_a_branch(x, y):
    if np.sum(y) > 0:
        items = []
        for _ in range(2):
            items = items + [x * 2.0]
        items.append(np.sin(x))
        total = np.sum(np.stack(items) ** 2)
    else:
        total = np.sum(x)
    return total


def appends_to_argument(items, x):
    items.append(x)
    return np.sum(np.stack(items))


def test_lists_built_inside_a_branch():
    check(built_in_a_branch, (x3, x3 + 1.0))
    check(built_in_a_branch, (x3, -x3 - 1.0))


def test_changing_an_argument_container_is_refused():
    with pytest.raises(S2SError, match="that is an argument"):
        s2s.grad(appends_to_argument, argnums=1)([x3], x3)


def pair_from_loop(x):
    for i in range(3):
        if np.sum(x) > 0.2 * i:
            return x * i, np.sin(x)
    return 0.7, np.tanh(x)


def returns_pair_from_a_loop(x):
    p, v = pair_from_loop(x)
    return np.sum(p * v)


def test_helper_returning_a_tuple_from_inside_a_loop():  # fuzz seed 11, program 682
    check(returns_pair_from_a_loop, (x3,), hessian=0)
    check(returns_pair_from_a_loop, (-x3 - 1.0,), hessian=0)


def test_hessian_of_a_tuple_argument():  # f3: sum(a * b + c)
    H = s2s.hessian(f3)((x3, x3 + 1.0, x3 - 2.0))
    np.testing.assert_allclose(H[0][1], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(H[1][0], np.eye(3), atol=1e-12)
    for i, j in ((0, 0), (1, 1), (2, 2), (0, 2), (2, 1)):
        np.testing.assert_allclose(H[i][j], np.zeros((3, 3)), atol=1e-12)


# --- a function's tuple or list result, held in a name and indexed --------------------------

def split_indexed(x):
    p = np.split(x, [1, 3])  # pieces of sizes 1, 2, 3
    return np.sum(p[0]) + np.sum(p[2] ** 2) * p[1][1]


def array_split_looped(x):
    total = 0.0
    for piece in np.array_split(x, 4):  # sizes 2, 2, 1, 1
        total = total + np.sum(piece) ** 2
    return total


def hsplit_vsplit(a):
    left = np.hsplit(a, 2)
    top, bottom = np.vsplit(left[1], [1])
    return np.sum(left[0] * left[1]) + np.sum(top ** 3) - np.sum(np.sin(bottom))


def split_rejoined(x):
    parts = np.split(x, [2])
    return np.sum(np.concatenate([parts[1] ** 2, parts[0]]) * np.arange(6.0))


def decompositions_indexed(a):
    sym = a + a.T
    eig = np.linalg.eigh(sym)
    sl = np.linalg.slogdet(sym + 10 * np.eye(4))
    q = np.linalg.qr(a + 4 * np.eye(4))
    return np.sum(eig[0] ** 2) + np.sum(eig[1][:, 0] ** 4) + sl[1] + np.sum(q[1] * q[0])


@pytest.mark.parametrize("f, args", [
    (split_indexed, (rng.normal(size=6),)), (array_split_looped, (rng.normal(size=6),)),
    (hsplit_vsplit, (rng.normal(size=(3, 4)),)), (split_rejoined, (rng.normal(size=6),)),
    (decompositions_indexed, (rng.normal(size=(4, 4)),)),
], ids=lambda v: getattr(v, "__name__", ""))
def test_tuple_results_held_in_a_name(f, args):
    """``p = np.split(x, [1, 3]); p[0]`` crashed (``np.zeros_like`` of ragged pieces): a result
    whose length the arguments give is read like a tuple the code unpacks."""
    check(f, args, hessian=0)
