"""Loop-invariant scalars computed once, before their loop (a rewrite of the normalized code
that `reverse` makes before it builds the sweeps).

A normalizer temporary such as ``t7 = 0.5 * dt`` inside a loop that never rebinds ``dt``
holds the same value on every trip. Computed once before the loop, it costs the forward
sweep nothing per trip, and the backward sweep reads it as an unchanging value instead of
recomputing it in every reversed iteration (its adjoint, if it has one, accumulates across
the loop). Only Python-scalar arithmetic that cannot raise moves (``+``, ``-``, ``*``,
negation, division by a nonzero constant), so a loop that runs no trip behaves the same.
"""
from __future__ import annotations

import ast

from .analyze import writes
from .astutil import name_nodes, stored_names
from .naming import TEMP

_SAFE_OPS = (ast.Add, ast.Sub, ast.Mult)


def hoist_invariants(body: list[ast.stmt], params, scalars) -> list[ast.stmt]:
    """``body`` with the loop-invariant scalar temporaries of its loops moved before them."""
    stores: dict[str, int] = {}
    for node in name_nodes(ast.Module(body=body, type_ignores=[])):
        if isinstance(node.ctx, ast.Store):
            stores[node.id] = stores.get(node.id, 0) + 1
    movable = {n for n, count in stores.items() if count == 1 and TEMP.match(n) and n in scalars}
    # 0-d arrays written in place (`s[...] = v`) change without a rebinding: never operands
    scalars = set(scalars) - set().union(*(w.s2s_shares for w in writes(body)))
    renames: dict[str, str] = {}
    body = _block(body, set(params), movable, scalars, renames)
    for node in name_nodes(ast.Module(body=body, type_ignores=[])):
        if node.id in renames:
            node.id = renames[node.id]
    return body


def _block(stmts, defined, movable, scalars, renames) -> list[ast.stmt]:
    """``stmts`` with their loops' invariants hoisted; ``defined``: names set before ``stmts``."""
    out: list[ast.stmt] = []
    defined = set(defined)
    for stmt in stmts:
        if isinstance(stmt, (ast.For, ast.While)):
            stmt.body = _block(stmt.body, defined, movable, scalars, renames)
            rebound = stored_names(stmt)
            kept, hoisted = [], {}
            for inner in stmt.body:
                target = inner.targets[0].id if isinstance(inner, ast.Assign) and \
                    isinstance(inner.targets[0], ast.Name) else None
                if target in movable and _invariant(inner.value, defined, rebound, scalars):
                    key = ast.dump(inner.value)
                    if key in hoisted:  # `0.5 * dt` on two lines: one value, one adjoint
                        renames[target] = hoisted[key]
                    else:
                        hoisted[key] = target
                        out.append(inner)  # before the loop, in the order the loop had them
                    defined.add(target)
                    rebound.discard(target)
                else:
                    kept.append(inner)
            stmt.body = kept
        elif isinstance(stmt, ast.If):
            stmt.body = _block(stmt.body, defined, movable, scalars, renames)
            stmt.orelse = _block(stmt.orelse, defined, movable, scalars, renames)
        elif isinstance(stmt, ast.Assign):
            defined |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        out.append(stmt)
    return out


def _invariant(value, defined, rebound, scalars) -> bool:
    """Scalar arithmetic that cannot raise, on constants and names set before the loop that
    the loop does not rebind."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, (int, float)) and not isinstance(value.value, bool)
    if isinstance(value, ast.Name):
        return value.id in defined and value.id not in rebound and value.id in scalars
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, (ast.USub, ast.UAdd)):
        return _invariant(value.operand, defined, rebound, scalars)
    if isinstance(value, ast.BinOp) and isinstance(value.op, _SAFE_OPS):
        return _invariant(value.left, defined, rebound, scalars) and \
            _invariant(value.right, defined, rebound, scalars)
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Div):
        divisor = value.right
        return _invariant(value.left, defined, rebound, scalars) and \
            isinstance(divisor, ast.Constant) and isinstance(divisor.value, (int, float)) and \
            not isinstance(divisor.value, bool) and divisor.value != 0
    return False
