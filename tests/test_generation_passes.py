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


def test_find_nodes_finds_walks_nodes():
    kinds = (ast.Call, ast.Constant, ast.Name, ast.Break, ast.comprehension)
    for tree in trees():
        for kind in kinds:
            mine = sorted(id(n) for n in astutil.find_nodes(tree, kind))
            assert mine == sorted(id(n) for n in ast.walk(tree) if isinstance(n, kind))


def test_rule_arguments_bind_as_inspect_binds_them():
    """`analyze._bound` (a binding plan per signature and call pattern) against
    `inspect.Signature.bind` with defaults applied, for every rule and many call patterns,
    mistakes included (the same TypeError)."""
    import random

    from s2s import analyze
    from s2s.rules.registry import RULES

    rng = random.Random(0)
    for rule in RULES.values():
        params = list(rule.signature.parameters)
        for _ in range(8):
            args = [ast.Name(f"a{i}", ast.Load()) for i in range(rng.randint(0, len(params) + 1))]
            words = rng.sample(params + ["unknown"], rng.randint(0, min(3, len(params))))
            keywords = [ast.keyword(w, ast.Name("k" + w, ast.Load())) for w in words]
            try:
                bound = rule.signature.bind(*args, **{k.arg: k.value for k in keywords})
                bound.apply_defaults()
                expected = [(p, list(v.items()) if isinstance(v, dict) else v)
                            for p, v in bound.arguments.items()]
            except TypeError as exc:
                expected = str(exc)
            try:
                got = [(p, list(v.items()) if isinstance(v, dict) else v)
                       for p, v in analyze._bound(rule.signature, args, keywords)]
            except TypeError as exc:
                got = str(exc)
            assert got == expected, (rule.qualname, len(args), words)


def test_swapping_pops_replaces_only_those_nodes():
    from s2s.preallocate import _swap

    tree = ast.parse("for t in range(n):\n    x = s.pop()\n    y = x + s.pop()\nz = s.pop()")
    pops = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call) and
                   isinstance(n.func, ast.Attribute) and n.func.attr == "pop"), key=lambda n: n.lineno)
    new = {id(p): ast.Name(f"r{i}", ast.Load()) for i, p in enumerate(pops)}
    loop = tree.body[0]
    out = _swap(tree.body, new)
    assert out is not tree.body and out[0] is loop  # statements keep their identity
    assert ast.unparse(ast.Module(out, [])) == \
        "for t in range(n):\n    x = r0\n    y = x + r1\nz = r2"
    assert out[1].value.lineno == 4  # placed where the pop was
