"""Shift-invariant log-sum-exp: ``s + log(sum(exp(x - s)))`` has no derivative in ``s``.

The stable log-sum-exp subtracts a shift (usually the maximum) before ``exp`` and adds it
back after ``log``. Its derivative in the shift is ``1 - sum(softmax) = 0`` exactly, for
any value of the shift, so the shift's two partials (``1`` and ``-1`` times the softmax)
are dropped together: the shift is not differentiated through these two operations, and
``np.max``'s derivative (a mask of ties, one more pass over ``x``) is not computed when
nothing else reads the shift. Every order of derivative of the dropped part is zero too.

The identity needs every element of the sum to be shifted by the value that is added back
to its result: the shift is constant along the summed axes, and (without ``keepdims``)
lies entirely outside them, so that it lines up with the sum's result. That is proved from
known ranks and shapes, or from the shift being itself a reduction with ``keepdims=True``
over the same (negative) axes; anything else is left alone.
"""
from __future__ import annotations

import ast

from . import analyze
from .astutil import name_nodes, statements

# Reductions whose result keeps 1-axes where they reduce (with keepdims=True).
KEEPDIMS_REDUCTIONS = {"numpy.max", "numpy.min", "numpy.amax", "numpy.amin", "numpy.sum",
                       "numpy.mean"}
SUMS = {"numpy.sum", "numpy.mean"}  # log(mean(exp(x - s))) + s is shift-invariant as well


def mark(fn, shapes: dict, scalars: set) -> None:
    """Tag the shift's operand in ``d = x - s`` and ``y = s + log(...)`` (``s2s_invariant``,
    read by `analyze.operation`) wherever ``fn``'s body computes a shifted log-sum-exp."""
    defs, reads = {}, {}
    for a in analyze.assignments(fn.body):
        defs.setdefault(a.targets[0].id, []).append(a)
    for stmt in statements(ast.Module(body=fn.body, type_ignores=[])):
        for n in name_nodes(stmt) if not isinstance(stmt, (ast.For, ast.While, ast.If)) else \
                [n for part in _headers(stmt) for n in name_nodes(part)]:
            if isinstance(n.ctx, ast.Load):
                reads[n.id] = reads.get(n.id, 0) + 1
    for name in set(fn.results or ()) | {fn.result}:  # a value returned is read too
        reads[name] = reads.get(name, 0) + 1
    for block in _blocks(fn.body):
        position = {id(s): i for i, s in enumerate(block)}
        for stmt in block:
            found = _shifted_lse(stmt, block, position, defs, reads, shapes, scalars, fn.constants)
            if found:
                (sub, sub_param), (add, add_param) = found
                sub.s2s_invariant = (sub_param,)
                add.s2s_invariant = (add_param,)


def _headers(stmt):
    """The expressions a compound statement reads itself (not its blocks)."""
    if isinstance(stmt, ast.For):
        return [stmt.target, stmt.iter]
    return [stmt.test]


def _blocks(body):
    yield body
    for stmt in statements(ast.Module(body=body, type_ignores=[])):
        for field in ("body", "orelse"):
            block = getattr(stmt, field, None)
            if isinstance(stmt, (ast.For, ast.While, ast.If)) and block:
                yield block


def _shifted_lse(stmt, block, position, defs, reads, shapes, scalars, constants):
    """``((x - s) node, its param), ((s + log) node, its param)`` when ``stmt`` is
    ``y = s + t`` (or ``t + s``) with ``t = log(r)``, ``r = sum(e, axis)``, ``e = exp(d)``,
    ``d = x - s``, each temporary defined once and read once, in this order in ``block``,
    with nothing between that rebinds ``s`` or writes into any array; else None."""
    value = stmt.value if isinstance(stmt, ast.Assign) else None
    if not (isinstance(value, ast.BinOp) and getattr(value, "s2s_op", None) == "numpy.add"
            and isinstance(value.left, ast.Name) and isinstance(value.right, ast.Name)):
        return None
    for shift, log_name, add_param in ((value.left, value.right, "x1"), (value.right, value.left, "x2")):
        chain = _chain(log_name.id, position[id(stmt)], position, defs, reads, constants)
        if chain is None:
            continue
        d, static = chain
        if not (isinstance(d.value.right, ast.Name) and d.value.right.id == shift.id):
            continue
        if not _undisturbed(block[position[id(d)] + 1:position[id(stmt)]], shift.id):
            continue
        if _invariant(shift.id, d.targets[0].id, static, shapes, scalars, defs, constants):
            return (d.value, "x2"), (value, add_param)
    return None


def _chain(name, end, position, defs, reads, constants):
    """``(d = x - s, the sum's static arguments)`` for ``name = log(sum(exp(d)))`` spelled
    over single-use temporaries defined in this order in the block that ``position``
    numbers, before its statement ``end``; else None."""
    steps = []
    for qualnames in ({"numpy.log"}, SUMS, {"numpy.exp"}, {"numpy.subtract"}):
        nodes = defs.get(name, [])
        if len(nodes) != 1 or reads.get(name) != 1 or id(nodes[0]) not in position:
            return None
        node = nodes[0]
        if position[id(node)] >= end:
            return None
        end = position[id(node)]
        try:
            op = analyze.operation(node.value, constants)
        except ValueError:
            return None
        if op.kind != "rule" or op.rule.qualname not in qualnames:
            return None
        steps.append((node, op))
        arg = op.args.get("x", op.args.get("a"))
        if len(steps) < 4 and not isinstance(arg, ast.Name):
            return None
        name = arg.id if len(steps) < 4 else name
    (d, _), static = steps[3], steps[1][1].static
    if static.get("dtype") is not None or static.get("out") is not None or \
            static.get("where", True) is not True or static.get("initial") is not None:
        return None  # (initial= adds a constant to the sum: no longer invariant)
    return (d, static) if isinstance(d.value, ast.BinOp) else None


def _undisturbed(between, shift) -> bool:
    """Nothing in ``between`` rebinds ``shift`` or writes into an array, and no compound
    statement (which could)."""
    for stmt in between:
        if not isinstance(stmt, ast.Assign) or not isinstance(stmt.targets[0], ast.Name):
            return False
        if stmt.targets[0].id == shift or getattr(stmt.value, "s2s_op", None) in ("setitem", "additem"):
            return False
    return True


def _invariant(shift, d, static, shapes, scalars, defs, constants) -> bool:
    """Is the shift constant along the summed axes of ``d``, and lined up with the sum's result?"""
    axis, keepdims = static.get("axis"), static.get("keepdims", False)
    if axis is analyze.DYNAMIC or keepdims not in (True, False):
        return False
    rank_s = 0 if shift in scalars else _rank(shapes.get(shift))
    rank_d = _rank(shapes.get(d))
    if rank_s == 0:
        return True  # one shift for every element
    if axis is None:
        return keepdims and _kept(shift, None, defs, constants)  # a (1, 1, ...) shift
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(a, int) for a in axes):
        return False
    for a in axes:
        outside = rank_s is not None and rank_d is not None and -rank_d <= a < rank_d and \
            a % rank_d < rank_d - rank_s
        if outside:
            continue
        if not keepdims:
            return False  # a 1-axis of the shift would meet another axis of the sum's result
        if not (_one_at(shapes.get(shift), a, rank_d) or _kept(shift, a, defs, constants)):
            return False
    return True


def _rank(fact):
    return len(fact) if isinstance(fact, tuple) else fact if isinstance(fact, int) else None


def _one_at(shape, axis, rank_d) -> bool:
    """Is the shift's size 1 at ``d``'s axis ``axis`` (the shift's shape known)?"""
    if not isinstance(shape, tuple) or rank_d is None or not -rank_d <= axis < rank_d:
        return False
    i = axis % rank_d - (rank_d - len(shape))
    return i < 0 or (i < len(shape) and shape[i] == 1)


def _kept(shift, axis, defs, constants) -> bool:
    """Is ``shift`` a reduction with ``keepdims=True`` over ``axis`` (None: every axis)? Only
    negative axes line up whatever the ranks (broadcasting aligns shapes on the right)."""
    nodes = defs.get(shift, [])
    if len(nodes) != 1:
        return False
    try:
        op = analyze.operation(nodes[0].value, constants)
    except ValueError:
        return False
    if op.kind != "rule" or op.rule.qualname not in KEEPDIMS_REDUCTIONS or op.static.get("keepdims") is not True:
        return False
    reduced = op.static.get("axis")
    if axis is None:
        return reduced is None
    reduced = reduced if isinstance(reduced, tuple) else (reduced,)
    return axis < 0 and axis in reduced
