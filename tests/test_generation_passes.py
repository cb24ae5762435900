"""Generation's fast tree helpers give what the slow ones give, and dead code goes in few passes.

Generation time matters (issue 14: under 50 ms for the benchmark functions), so the
pipeline walks and copies trees with `astutil`'s helpers instead of `ast.walk` and
`copy.deepcopy`: these tests hold them to the same results. No timing here.
"""
import ast
import copy
import glob
import os
import sys

import numpy as np

import s2s
from s2s import astutil, optimize

SOURCES = sorted(glob.glob(os.path.join(os.path.dirname(s2s.__file__), "*.py")))[:12]


def trees():
    for path in SOURCES:
        with open(path, encoding="utf-8") as fh:
            yield ast.parse(fh.read())


def test_walk_yields_ast_walks_nodes_in_its_order():
    for tree in trees():
        mine, theirs = list(astutil.walk(tree)), list(ast.walk(tree))
        assert len(mine) == len(theirs) and all(a is b for a, b in zip(mine, theirs))


def test_statements_are_walks_statements_in_its_order():
    for tree in trees():
        mine = list(astutil.statements(tree))
        theirs = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
        assert len(mine) == len(theirs) and all(a is b for a, b in zip(mine, theirs))


def test_name_helpers_match_walk():
    for tree in trees():
        names = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
        assert sorted(astutil.all_names([tree])) == sorted(n.id for n in names)
        assert astutil.loaded_names(tree) == {n.id for n in names if isinstance(n.ctx, ast.Load)}
        assert astutil.stored_names(tree) == {n.id for n in names if isinstance(n.ctx, ast.Store)}


def test_copy_tree_is_deepcopy():
    for tree in trees():
        assert ast.dump(astutil.copy_tree(tree), include_attributes=True) == \
            ast.dump(copy.deepcopy(tree), include_attributes=True)
    g = ast.Name("g", ast.Load())
    g.s2s_shape = (2, 3)
    array = np.zeros(3)
    expr = ast.BinOp(ast.BinOp(g, ast.Mult(), g), ast.Add(),
                     ast.BinOp(ast.Constant(array), ast.Add(), ast.Constant(array)))
    for e in (astutil.copy_tree(expr), copy.deepcopy(expr)):
        assert e.left.left is e.left.right is not g  # a node met twice is copied once
        assert e.left.left.s2s_shape == (2, 3)
        assert e.right.left.value is e.right.right.value is not array  # other values: deepcopy's


def f(x, n):
    s = 0.0
    for i in range(n):
        a = x * 2.0
        b = a + 1.0
        c = b * b
        d = c - a
        e = d * 3.0  # a chain of values only the dead recomputation of e reads
        s = s + x * x + 0.0 * e
    return s


def test_a_chain_of_dead_values_goes_in_one_pass(monkeypatch):
    passes = []
    live_before = optimize.live_before

    def counted(stmts, live_after, on_dead=None):
        if sys._getframe(1).f_code.co_name == "_remove_dead":
            passes.append(len(stmts))
        return live_before(stmts, live_after, on_dead)

    monkeypatch.setattr(optimize, "live_before", counted)
    monkeypatch.setenv("S2S_CACHE", "0")
    dx = s2s.grad(f)(1.5, 3)
    assert abs(dx - 3 * (2 * 1.5)) < 1e-12
    # Each pass runs over both sweeps; the 5 recomputations a..e that nothing reads go in one
    # (then one pass finds nothing more), instead of one pass per link of the chain.
    assert len(passes) <= 6, passes
