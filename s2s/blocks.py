"""Stage 6: an adjoint built block by block is written, not accumulated, block by block.

Reversing ``i = a[:, :H]; f = a[:, H:2 * H]; ...`` makes ``da = np.zeros_like(a)`` and
adds each block's adjoint into it: ``da[:, H:2 * H] += df``. A block that no earlier
update since the zeros touched holds zeros, so ``da[:, H:2 * H] = df`` stores the same
values. Blocks are told apart when, on one axis, their bounds are multiples of one
size (a name set from a shape or ``len``, never negative) or numbers, in order:
``[k * H, m * H)`` and ``[m * H, ...)`` share no element however long the axis is.
"""
from __future__ import annotations

import ast

from .astutil import name_nodes
from .reverse import Comment


def write_blocks(stmts, sizes) -> None:
    """Rewrite ``stmts`` (a backward sweep) in place; ``sizes()``: the names that hold a size
    (asked for once, when a region's bound is a name)."""
    _write_blocks(stmts, _Lazy(sizes))


class _Lazy:
    """A set made the first time something is looked up in it."""

    def __init__(self, make):
        self.make, self.names = make, None

    def __contains__(self, name) -> bool:
        if self.names is None:
            self.names = self.make()
        return name in self.names


def _write_blocks(stmts, sizes) -> None:
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, (ast.If, ast.For, ast.While)):
            _write_blocks(stmt.body, sizes)
            _write_blocks(stmt.orelse, sizes)
        elif _zeros(stmt):
            _first_writes(stmts, i, stmt.targets[0].id, sizes)


def _zeros(stmt) -> bool:
    return isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and \
        isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Call) and \
        ast.unparse(stmt.value.func) in ("np.zeros", "np.zeros_like")


def _first_writes(stmts, start, d, sizes) -> None:
    written = []  # the regions updated since the zeros, as intervals per axis
    for j in range(start + 1, len(stmts)):
        stmt = stmts[j]
        if isinstance(stmt, Comment):
            continue
        if isinstance(stmt, (ast.If, ast.For, ast.While)):
            return
        mentions = any(n.id == d for n in name_nodes(stmt))
        if not mentions:
            continue
        if not (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add) and
                isinstance(stmt.target, ast.Subscript) and isinstance(stmt.target.value, ast.Name) and
                stmt.target.value.id == d and not any(n.id == d for n in name_nodes(stmt.value))):
            return
        region = _region(stmt.target.slice, sizes)
        if region is None:
            return
        if all(_apart(region, other) for other in written):
            stmts[j] = ast.copy_location(ast.Assign([stmt.target], stmt.value), stmt)
        written.append(region)


def _region(index, sizes):
    """Per axis, ``(low, high)`` bounds as ``(multiple, size name)`` (``None`` for an int
    index or an open end), or None where the index is anything else."""
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    out = []
    for part in parts:
        if isinstance(part, ast.Slice):
            if part.step is not None:
                return None
            low = (0, None) if part.lower is None else _bound(part.lower, sizes)
            high = (float("inf"), None) if part.upper is None else _bound(part.upper, sizes)
            if low is None or high is None:
                return None
            out.append((low, high))
        elif isinstance(part, ast.Constant) and type(part.value) is int and part.value >= 0:
            out.append(((part.value, None), (part.value + 1, None)))
        else:
            return None
    return out


def _bound(node, sizes):
    """``(k, n)`` for ``k * n`` (``n`` a size, ``k`` a non-negative int), ``(k, None)`` for ``k``."""
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        return (node.value, None)
    if isinstance(node, ast.Name) and node.id in sizes:
        return (1, node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for k, n in ((node.left, node.right), (node.right, node.left)):
            if isinstance(k, ast.Constant) and type(k.value) is int and k.value >= 0 and \
                    isinstance(n, ast.Name) and n.id in sizes:
                return (k.value, n.id)
    return None


def _apart(a, b) -> bool:
    """Do the regions ``a`` and ``b`` share no element (told apart on some axis)?"""
    if len(a) != len(b):
        return False
    return any(_before(ha, lb) or _before(hb, la) for (la, ha), (lb, hb) in zip(a, b))


def _before(high, low) -> bool:
    """``high <= low`` for every value of the sizes (bounds of one size, or plain numbers)."""
    (k, n), (m, p) = high, low
    if k == 0:
        return True
    if n == p or (n is None and p is None):
        return k <= m
    return False
