"""Stage 6, last step: gradients the caller owns.

The optimizer folds ``dx = dt * y`` with ``dt = 1.0`` into ``dx = y``, and the
adjoint of ``np.sum(x)`` is ``np.broadcast_to(1.0, np.shape(x))``: returned as
they are, the first is the caller's own ``y`` (``g *= 2`` would change it) and
the second is read-only. A gradient whose last value may be an argument, a
module array, a view of one or a broadcast gets a copy where it is returned:
``dx = np.copy(y)``. Everything else (arithmetic, reductions, products, new
arrays) is already a fresh array.
"""
from __future__ import annotations

import ast

from .alias import VIEWS
from .astutil import stored_names

# calls that may return a view of (or the very) array they are given: alias's list, by
# short name, and the `unbroadcast` helper (it returns its argument when the shape matches)
VIEW_CALLS = {view.rsplit(".", 1)[1] for view in VIEWS} | {"ascontiguousarray", "imag", "unbroadcast"}


def own_gradients(backward: list, forward: list, gradients, scalars) -> None:
    """Copy, in ``backward``, each gradient in ``gradients`` that may share the caller's memory."""
    local = set().union(*(stored_names(s) for s in forward + backward))
    last = {}  # name -> index of its last top-level plain assignment in backward
    for i, stmt in enumerate(backward):
        for name in stored_names(stmt):
            last[name] = i if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], ast.Name) else None
    for grad in dict.fromkeys(g for g in gradients if g):
        i = last.get(grad)
        if grad in scalars or i is None:
            continue
        stmt = backward[i]
        if _may_alias(stmt.value, forward + backward[:i], local):
            stmt.value = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "copy", ast.Load()),
                                  [stmt.value], [])


def _may_alias(value, before, local) -> bool:
    """Whether ``value`` may be (a view of) an argument, a module array or a read-only broadcast."""
    if isinstance(value, ast.Name):
        if value.id not in local:
            return True  # an argument or a module global
        for stmt in reversed(before):
            if value.id in stored_names(stmt):
                plain = isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                    and isinstance(stmt.targets[0], ast.Name)
                return _may_alias(stmt.value, before[:before.index(stmt)], local) if plain else False
        return True
    if isinstance(value, (ast.Subscript, ast.Starred)):
        return _may_alias(value.value, before, local)
    if isinstance(value, ast.Attribute):
        return value.attr in ("T", "mT", "real", "imag", "flat") or _may_alias(value.value, before, local)
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in VIEW_CALLS:
            return name == "broadcast_to" or any(_may_alias(a, before, local) for a in value.args[:1]) \
                or (isinstance(func, ast.Attribute) and _may_alias(func.value, before, local)
                    and not (isinstance(func.value, ast.Name) and func.value.id == "np"))
        return False
    if isinstance(value, ast.IfExp):
        return _may_alias(value.body, before, local) or _may_alias(value.orelse, before, local)
    return False
