"""The Dask path: the same generated derivative on Dask arrays, lazily, on a real cluster.

Data arguments are ``dask.array`` arrays chunked along the sample axis, parameters are
small numpy arrays; the gradient comes back as Dask arrays, computed once, and must
equal the numpy gradient on the same data. The test extra installs dask and
distributed, so these tests run in CI.
"""
import dask
import dask.array as da
import distributed
import numpy as np
import pytest

import s2s
from cli.main import parse_shapes
from generated_examples.regenerate import EXAMPLES, primal_source
from s2s import derive, emit
from s2s.rules.helpers import index_add
from s2s.source import from_file
from s2s.testing import assert_close, numerical_grad


def logreg(w, b, X, y):
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def mlp(W1, b1, W2, X, Y):
    h = np.tanh(X @ W1 + b1)
    return np.sum((h @ W2 - Y) ** 2) / X.shape[0] + 0.01 * np.sum(W1 ** 2)


def embedding(E, idx, y):
    return np.sum((np.sum(E[idx], axis=1) - y) ** 2)


def _data(rng, n=40, d=3):
    X = rng.normal(size=(n, d))
    return X, (rng.random(n) > 0.5).astype(float)


def _chunked(*arrays, rows=16):
    return [da.from_array(a, chunks=(rows,) + a.shape[1:]) for a in arrays]


def _no_lazy_leaves(values):
    return not any(hasattr(v, "__dask_graph__") for v in values)


def test_grad_of_dask_data_is_lazy_and_equals_numpy():
    rng = np.random.default_rng(0)
    X, y = _data(rng)
    w, b = rng.normal(size=3), np.array(0.3)
    dlogreg = s2s.grad(logreg, argnums=(0, 1))
    expected = dlogreg(w, b, X, y)
    lazy = dlogreg(w, b, *_chunked(X, y))
    assert all(hasattr(g, "__dask_graph__") for g in lazy), "gradients stay Dask arrays"
    got = dask.compute(*lazy)
    for g, e in zip(got, expected):
        assert_close(g, e)
    assert_close(expected[0], numerical_grad(logreg, (w, b, X, y), 0))


def test_value_and_grad_is_one_graph_computed_once():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))
    W1, b1, W2 = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2))
    vg = s2s.value_and_grad(mlp, argnums=(0, 1, 2))
    value, grads = vg(W1, b1, W2, *_chunked(X, Y, rows=7))
    value, grads = dask.compute(value, grads)  # one compute: shared work is done once
    assert _no_lazy_leaves(grads)
    assert_close(value, mlp(W1, b1, W2, X, Y))
    for g, e in zip(grads, s2s.grad(mlp, argnums=(0, 1, 2))(W1, b1, W2, X, Y)):
        assert_close(g, e)
    assert_close(grads[0], numerical_grad(mlp, (W1, b1, W2, X, Y), 0))


def test_dask_target_writes_no_in_place_update():
    src = from_file("generated_examples/mlp.py", "loss")
    text = derive.reverse_module(src, ["W1", "b1", "W2", "b2"], target="dask").text
    assert "+=" not in text and "np.add.at" not in text
    assert "dW2 = dW2 + " in text and "target=dask" in text


@pytest.mark.parametrize("example", [e for e in EXAMPLES if not e.forward and "--shapes" in e.options],
                         ids=lambda e: e.module)
def test_bundled_examples_on_dask_arrays(example):
    """Each bundled model's Dask-path derivative (shape-polymorphic, as `s2s.grad` makes
    it for Dask arguments), with every array argument chunked, against the numpy one."""
    src = primal_source(example)  # read, or imported (--import)
    wrt = example.wrt
    shapes = parse_shapes(example.options[example.options.index("--shapes") + 1:], _params(src))
    structures = {p: s for p, s in shapes.items() if s and isinstance(s[0], str)}  # containers
    numpy_gen = derive.reverse_module(src, wrt, as_tuple=True, structures=structures)
    dask_gen = derive.reverse_module(src, wrt, target="dask", as_tuple=True, structures=structures)
    numpy_grad = emit.compile_module(numpy_gen.text, "np", numpy_gen.injected)[numpy_gen.entry]
    dask_grad = emit.compile_module(dask_gen.text, "dask", dask_gen.injected)[dask_gen.entry]
    for args in example.inputs(np.random.default_rng(0))[:1]:
        lazy_args = [da.from_array(a, chunks=max(1, a.shape[0] // 2)) if isinstance(a, np.ndarray)
                     and a.ndim and wrt.count(p) == 0 else a
                     for a, p in zip(args, _params(src))]
        got = dask.compute(*dask_grad(*lazy_args))
        for g, e in zip(got, numpy_grad(*args)):
            assert_close(g, e)


def _params(src):
    return [a.arg for a in src.node.args.args]


@pytest.mark.parametrize("index", [2, -1, slice(1, 3), np.array([0, 2, 2, 1])])
def test_index_add_is_lazy_for_dask_values(index):
    rng = np.random.default_rng(2)
    d = rng.normal(size=(4, 3))
    g = rng.normal(size=np.zeros((4, 3))[index].shape)
    expected = d.copy()
    np.add.at(expected, index, g)
    lazy = index_add(d.copy(), index, da.from_array(g))
    assert hasattr(lazy, "__dask_graph__")
    assert_close(lazy.compute(), expected)
    lazy_index = index_add(d.copy(), da.from_array(index), g) if isinstance(index, np.ndarray) else None
    if lazy_index is not None:
        assert_close(lazy_index.compute(), expected)


def test_scatter_add_of_repeated_dask_indices():
    rng = np.random.default_rng(3)
    E, idx = rng.normal(size=(5, 2)), rng.integers(0, 5, size=(12, 3))
    y = rng.normal(size=(12, 2))
    expected = s2s.grad(embedding)(E, idx, y)
    got = s2s.grad(embedding)(E, da.from_array(idx, chunks=(4, 3)), da.from_array(y, chunks=(4, 2)))
    assert_close(dask.compute(got)[0], expected)
    assert_close(expected, numerical_grad(embedding, (E, idx, y), 0))


def test_gradients_on_a_local_cluster_of_worker_processes():
    rng = np.random.default_rng(4)
    X, y = _data(rng, n=400, d=5)
    Y = rng.normal(size=(400, 2))
    w, b = rng.normal(size=5), np.array(-0.2)
    W1, b1, W2 = rng.normal(size=(5, 4)), rng.normal(size=4), rng.normal(size=(4, 2))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        Xd, yd, Yd = _chunked(X, y, Y, rows=100)
        lazy = (s2s.grad(logreg, argnums=(0, 1))(w, b, Xd, yd),
                s2s.grad(mlp, argnums=(0, 1, 2))(W1, b1, W2, Xd, Yd))
        (dw, db), mlp_grads = client.compute(lazy, sync=True)
    expected = s2s.grad(logreg, argnums=(0, 1))(w, b, X, y)
    assert_close(dw, expected[0])
    assert_close(db, expected[1])
    for g, e in zip(mlp_grads, s2s.grad(mlp, argnums=(0, 1, 2))(W1, b1, W2, X, Y)):
        assert_close(g, e)
