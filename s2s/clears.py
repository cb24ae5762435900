"""Stage 6: no zeroing of adjoint rows that nothing reads again.

Reversing ``H[t + 1] = v`` passes the row's adjoint to ``v`` and zeroes the row
(``dv = dH[t + 1].copy(); dH[t + 1] = 0.0``): the elements it held did not reach
the output. In a backward loop ``for t in reversed(range(n))`` whose every use of
``dH`` is a row ``t + c``, a later step (a smaller ``t``) reads a row ``t' + c' ==
t + c0`` only when ``c' > c0``; when no use has a larger offset than the cleared
row, none after the clear has its offset, and ``dH`` is not read after the loop,
the zeros are never read and the clear goes (and with it the copy before it,
see `optimize._drop_needless_copies`).
"""
from __future__ import annotations

import ast

from .astutil import name_nodes, walk
from .reverse import Comment


def drop_row_clears(backward: list, live_after_each) -> None:
    """Drop the dead row clears of top-level backward loops in ``backward`` (in place).

    ``live_after_each(i)``: the names live after ``backward[i]``."""
    for i, loop in enumerate(backward):
        if not (isinstance(loop, ast.For) and _descending(loop) and not loop.orelse):
            continue
        index = loop.target.id
        clears = [s for s in loop.body if getattr(s, "s2s_clears", None)]
        if not clears:
            continue
        live = None
        own = {d: _own_memory(backward, d) for d in {c.s2s_clears for c in clears}}  # (before
        for clear in clears:  # any row is taken as a view: views of dead rows are harmless)
            d = clear.s2s_clears
            if not own[d]:
                continue
            if live is None:
                live = live_after_each(i)
            c0 = _offset(clear.targets[0].slice, index)
            if c0 is None or d in live and not _rows_below(backward[i + 1:], d, _start(loop) + c0):
                continue
            if _dead_clear(loop.body, clear, d, index):
                _take_row(loop.body, clear)
                loop.body.remove(clear)


def _take_row(body, clear) -> None:
    """``g = dH[t + 1].copy()`` just before the dead clear of that row: ``g = dH[t + 1]``. No
    write reaches the row again (the clear was dead: no use after it has its offset, no later
    step a larger one), so the view keeps the values the copy would."""
    code = [s for s in body if not isinstance(s, Comment)]
    at = code.index(clear)
    if at == 0 or not isinstance(code[at - 1], ast.Assign):
        return
    row = ast.dump(clear.targets[0]).replace("ctx=Store()", "ctx=Load()")

    def taken(value):
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                value.func.attr == "copy" and not value.args and not value.keywords and \
                ast.dump(value.func.value) == row:
            return value.func.value
        return value

    for parent in walk(code[at - 1]):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, list):
                value[:] = [taken(v) for v in value]
            else:
                setattr(parent, field, taken(value))


def _own_memory(stmts, d) -> bool:
    """Is every value bound to ``d`` a new array, and no name bound to a view of ``d``?"""
    for node in walk(ast.Module(body=stmts, type_ignores=[])):
        if isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == d for t in node.targets) and not _new(node.value):
                return False
            if any(not isinstance(t, ast.Subscript) for t in node.targets) and _shows(node.value, d):
                return False
    return True


def _new(value) -> bool:
    """Does ``value`` make a new array (arithmetic, a copy, new zeros)?"""
    if isinstance(value, (ast.BinOp, ast.UnaryOp, ast.Compare)):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        return isinstance(func, ast.Attribute) and func.attr == "copy" and not value.args or \
            ast.unparse(func) in ("np.zeros_like", "np.zeros", "np.copy", "np.ones_like")
    return False


def _shows(value, d) -> bool:
    """May ``value`` be (a view of) ``d``'s memory: does ``d`` appear outside new arrays?"""
    if isinstance(value, ast.Name):
        return value.id == d
    if _new(value):
        return False
    return any(_shows(child, d) for child in ast.iter_child_nodes(value))


def _descending(loop) -> bool:
    """``for t in reversed(range(...))`` over a range of step 1 (the backward sweep's order)."""
    it = loop.iter
    return isinstance(loop.target, ast.Name) and isinstance(it, ast.Call) and \
        isinstance(it.func, ast.Name) and it.func.id == "reversed" and len(it.args) == 1 and \
        isinstance(it.args[0], ast.Call) and isinstance(it.args[0].func, ast.Name) and \
        it.args[0].func.id == "range" and 1 <= len(it.args[0].args) <= 2


def _start(loop) -> float:
    """The first value of the range (``-inf`` when not a known int)."""
    bounds = loop.iter.args[0].args
    if len(bounds) == 1:
        return 0
    first = bounds[0]
    return first.value if isinstance(first, ast.Constant) and type(first.value) is int else float("-inf")


def _rows_below(stmts, d, lowest) -> bool:
    """Does every use of ``d`` in ``stmts`` read one row ``k``, ``0 <= k < lowest`` (rows the
    loop never clears: after it, ``dH[0]`` is still read)?"""
    for stmt in stmts:
        for node in name_nodes(stmt):
            if node.id == d:
                break
        else:
            continue
        rows = [n for n in walk(stmt) if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name)
                and n.value.id == d]
        uses = [n for n in name_nodes(stmt) if n.id == d]
        if len(rows) != len(uses):
            return False
        for row in rows:
            k = row.slice.elts[0] if isinstance(row.slice, ast.Tuple) and row.slice.elts else row.slice
            if not (isinstance(k, ast.Constant) and type(k.value) is int and 0 <= k.value < lowest):
                return False
    return True


def _dead_clear(body, clear, d, index) -> bool:
    c0 = _offset(clear.targets[0].slice, index)
    after = False
    for stmt in body:
        if stmt is clear:
            after = True
            continue
        if index in {n.id for n in name_nodes(stmt) if isinstance(n.ctx, ast.Store)}:
            return False  # the loop's index rebound
        for offset in _row_offsets(stmt, d, index):
            if offset is None or offset > c0 or (after and offset == c0):
                return False
    return True


def _row_offsets(stmt, d, index):
    """The offset ``c`` of each use of ``d`` in ``stmt`` (``d[index + c]``; None: any other use)."""
    rows = set()
    out = []
    for node in walk(stmt):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == d:
            rows.add(id(node.value))
            out.append(_offset(node.slice, index))
    for node in name_nodes(stmt):
        if node.id == d and id(node) not in rows:
            out.append(None)
    return out


def _offset(index_node, index):
    """``c`` for the row index ``index + c`` (``index``, ``index - c``, first of a tuple)."""
    node = index_node.elts[0] if isinstance(index_node, ast.Tuple) and index_node.elts else index_node
    if isinstance(node, ast.Name) and node.id == index:
        return 0
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)) and \
            isinstance(node.left, ast.Name) and node.left.id == index and \
            isinstance(node.right, ast.Constant) and type(node.right.value) is int:
        return node.right.value if isinstance(node.op, ast.Add) else -node.right.value
    return None
