"""Stage 6, last step: derivatives the caller owns.

The optimizer folds ``dx = dt * y`` with ``dt = 1.0`` into ``dx = y``, the
adjoint of ``np.sum(x)`` is ``np.broadcast_to(1.0, np.shape(x))``, and the
tangent of ``f(x) = x`` is ``dout = dx``: returned as they are, the first is
the caller's own ``y`` (``g *= 2`` would change it), the second is read-only and
the third is the caller's own tangent. A gradient or tangent whose last value
may be an argument, a module array, a view of one or a broadcast gets a copy
where it is set (``dx = np.copy(y)``), or, when it is set in a loop or a branch,
after the last statement (``dout = np.copy(dout)``). Everything else
(arithmetic, reductions, products, new arrays) is already a fresh array.
"""
from __future__ import annotations

import ast

from .alias import VIEWS
from .astutil import assign, call, names_in, statements, stored_names

# calls that may return a view of (or the very) array they are given: alias's list, by
# short name, and the `unbroadcast` helper (it returns its argument when the shape matches)
VIEW_CALLS = {view.rsplit(".", 1)[1] for view in VIEWS} | {"ascontiguousarray", "imag", "unbroadcast"}
_ALWAYS = {"broadcast_to", "expand_reduced"}  # read-only broadcasts
NEW_CALLS = {"float", "int", "bool", "len", "range", "abs", "odeint_adjoint"}  # new values, never a view


def own_gradients(backward: list, forward: list, gradients, scalars) -> None:
    """Copy, in ``backward``, each of ``gradients`` (gradients or tangents: names that
    ``backward`` returns) that may share the caller's memory."""
    everything = forward + backward
    writes = {id(s): stored_names(s) for s in everything}  # (no statement's writes change here)
    local = set().union(*writes.values())
    shared = _shared(everything, local)
    last = {}  # name -> index of its last top-level plain assignment in backward
    for i, stmt in enumerate(backward):
        for name in writes[id(stmt)]:
            last[name] = i if _plain(stmt) else None
    for grad in dict.fromkeys(g for g in gradients if g):
        if grad in scalars:
            continue
        i = last.get(grad)
        if i is not None:
            if _may_alias(backward[i].value, forward + backward[:i], local, shared):
                backward[i].value = call("np.copy", backward[i].value)
        elif grad not in local or grad in shared:  # a parameter, or set in a loop or branch
            copy = assign(grad, call("np.copy", ast.Name(grad, ast.Load())))
            copy.lineno = copy.end_lineno = copy.col_offset = copy.end_col_offset = 0  # no line of its own
            backward.append(ast.fix_missing_locations(copy))


def _plain(stmt) -> bool:
    return isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)


def _shared(stmts, local) -> set[str]:
    """Local names that may hold (a view of) an argument, a module array or a broadcast
    after one of their assignments anywhere (in loops and branches too; unpacked, or a
    ``for`` target over such an array): a fixpoint, blind to order."""
    stores = [(node.targets, node.value) for stmt in stmts for node in statements(stmt)
              if isinstance(node, ast.Assign)]
    stores += [([node.target], node.iter) for stmt in stmts for node in statements(stmt)
               if isinstance(node, ast.For)]
    shared: set[str] = set()
    changed = True
    while changed:
        changed = False
        for targets, value in stores:
            for target in targets:
                pairs = zip(target.elts, value.elts) if isinstance(target, (ast.Tuple, ast.List)) \
                    and isinstance(value, (ast.Tuple, ast.List)) and len(target.elts) == len(value.elts) \
                    else [(target, value)]
                for t, v in pairs:
                    if isinstance(t, (ast.Subscript, ast.Attribute)):
                        continue  # x[i] = v copies v into x: x still holds its own array
                    if _may_alias(v, None, local, shared) or (
                            isinstance(v, (ast.Tuple, ast.List)) and not isinstance(t, ast.Name)
                            and any(_may_alias(e, None, local, shared) for e in v.elts)):
                        new = names_in(t) - shared
                        shared |= new
                        changed = changed or bool(new)
    return shared


def _may_alias(value, before, local, shared) -> bool:
    """Whether ``value`` may be (a view of) an argument, a module array or a read-only
    broadcast, after the statements ``before`` (a name last set in a loop, a branch or by
    unpacking, or ``before`` None: whether it is in ``shared``)."""
    if isinstance(value, ast.Name):
        if value.id not in local:
            return True  # an argument or a module global
        for k in range(len(before or ()) - 1, -1, -1):
            if value.id in stored_names(before[k]):
                if _plain(before[k]):
                    return _may_alias(before[k].value, before[:k], local, shared)
                return value.id in shared
        return value.id in shared
    if isinstance(value, (ast.Subscript, ast.Starred)):
        return _may_alias(value.value, before, local, shared)
    if isinstance(value, ast.Attribute):
        return value.attr in ("T", "mT", "real", "imag", "flat") or _may_alias(value.value, before, local, shared)
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if isinstance(func, ast.Name) and name not in VIEW_CALLS | _ALWAYS | NEW_CALLS:  # a helper or a unit:
            return any(_may_alias(a, before, local, shared)  # it may return what it is given
                       for a in value.args + [k.value for k in value.keywords])
        if name in VIEW_CALLS | _ALWAYS:
            return name in _ALWAYS or any(_may_alias(a, before, local, shared) for a in value.args[:1]) \
                or (isinstance(func, ast.Attribute) and _may_alias(func.value, before, local, shared)
                    and not (isinstance(func.value, ast.Name) and func.value.id == "np"))
        return False
    if isinstance(value, ast.IfExp):
        return _may_alias(value.body, before, local, shared) or _may_alias(value.orelse, before, local, shared)
    return False
