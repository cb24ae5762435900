"""Stage 6, array passes: fewer whole passes over arrays in the backward sweep.

Each rewrite removes a pass over an array that a careful hand-written gradient
would not make, and keeps every value the same up to rounding:

- a broadcast read only by elementwise arithmetic with an operand of the broadcast
  shape is not materialized: ``b = np.broadcast_to(np.expand_dims(g, 2), S);
  d = b * 2 * x`` -> ``d = np.expand_dims(g, 2) * 2 * x`` (``x`` of shape ``S``);
- a scaled adjoint that every reader scales again is scaled once per reader:
  ``t = g * dt; u = t * kappa; v = t * c`` -> ``u = g * (dt * kappa); v = g * (dt * c)``;
- two accumulations into the same region of an array, with nothing between them
  that reads the array, become one: ``du[1:-1, :-2] -= a; ...; du[1:-1, :-2] += b``
  -> ``du[1:-1, :-2] += b - a`` (one strided update instead of two).

And cheaper calls where an array's rank is known: ``np.expand_dims(g, 1)`` -> ``g[:, None]``,
``np.reshape(g, s)`` -> ``g.reshape(s)`` and ``d += np.broadcast_to(e, S)`` -> ``d += e``
(numpy's functions cost 1-10 us per call in Python, the indexing and the method 0.1 us: on a
gradient of many small arrays, percents).
"""
from __future__ import annotations

import ast

from .alias import sweep_sharing
from .astutil import all_names, child_nodes, stored_names, walk
from .optimize import _scaled, _scaling, reads
from .reverse import Comment, ReverseResult

_ELEMENTWISE = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def lean(result: ReverseResult, returns) -> None:
    """Apply the three rewrites to ``result.backward`` (see the module docstring)."""
    counts: dict[str, int] = {}
    for name in all_names(result.forward) + all_names(result.backward) + list(returns):
        counts[name] = counts.get(name, 0) + 1
    shapes = dict(result.shapes)
    shapes.update({a: s for a, s in result.adjoint_shapes.items() if a not in shapes})
    scalars = set(result.scalars) | {a for a, s in result.adjoint_shapes.items() if s == ()}
    shares = sweep_sharing(result.forward + result.backward)
    _blocks(result.backward, lambda block: _implicit_broadcasts(block, counts, shapes))
    _blocks(result.backward, lambda block: _scale_per_reader(block, counts, scalars))
    _blocks(result.backward, lambda block: _merge_accumulations(block, shares))
    _cheap_calls(result.backward, shapes)


def _blocks(stmts, rewrite):
    """Rewrite every statement list in place, innermost first."""
    for stmt in stmts:
        if isinstance(stmt, (ast.If, ast.For, ast.While)):
            _blocks(stmt.body, rewrite)
            if isinstance(stmt, ast.If):
                _blocks(stmt.orelse, rewrite)
    stmts[:] = rewrite(stmts)


def _in_place(stmt) -> bool:
    """Does ``stmt`` write into an array (or is it anything but ``name = value``)?"""
    return not (isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets))


# --- broadcasts that elementwise arithmetic does anyway -------------------------------------

def _implicit_broadcasts(stmts, counts, shapes):
    out = []
    pending: dict[str, ast.Assign] = {}  # b -> its np.broadcast_to(e, S), read once, not yet read
    for stmt in stmts:
        if isinstance(stmt, Comment):
            out.append(stmt)
            continue
        for name in sorted(reads(stmt) & set(pending)) if not isinstance(stmt, (ast.If, ast.For, ast.While)) \
                else []:
            definition = pending.pop(name)
            if _only_read(stmt, name, counts) and _read_broadcast(stmt, name, definition.value, shapes):
                out.remove(definition)
        if isinstance(stmt, (ast.If, ast.For, ast.While)) or _in_place(stmt):
            pending.clear()
        else:
            written = stored_names(stmt)
            for name in [n for n, d in pending.items() if reads(d.value) & written or n in written]:
                del pending[name]
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and \
                _broadcast_call(stmt.value):
            pending[stmt.targets[0].id] = stmt
        out.append(stmt)
    return out


def _only_read(stmt, name, counts) -> bool:
    """Is ``stmt`` the only statement that reads this value of ``name`` (its first reader):
    the name's one read anywhere, or a read by ``name = ...``, after which the name is
    another value?"""
    return counts.get(name) == 2 or (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and
                                     isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == name)


def _broadcast_call(value) -> bool:
    return isinstance(value, ast.Call) and ast.unparse(value.func) == "np.broadcast_to" and \
        len(value.args) == 2 and not value.keywords


def _read_broadcast(stmt, name, broadcast, shapes) -> bool:
    """Replace the read of ``name`` (holding ``broadcast``) by the value it broadcasts when the
    elementwise expression around the read has an operand of the broadcast shape; True if done."""
    parents = {id(child): node for node in walk(stmt) for child in child_nodes(node)}
    uses = [n for n in walk(stmt) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]
    if len(uses) != 1:
        return False
    use = uses[0]
    node, root = use, None
    while isinstance(parents.get(id(node)), ast.BinOp) and isinstance(parents[id(node)].op, _ELEMENTWISE) or \
            isinstance(parents.get(id(node)), ast.UnaryOp) and isinstance(parents[id(node)].op, ast.USub):
        node = root = parents[id(node)]
    if root is None:
        return False
    shape = broadcast.args[1]
    if not any(leaf is not use and _has_shape(leaf, shape, shapes) for leaf in _leaves(root)):
        return False
    parent = parents[id(use)]
    for field in ("left", "right", "operand"):
        if getattr(parent, field, None) is use:
            setattr(parent, field, broadcast.args[0])
    return True


def _leaves(node):
    if isinstance(node, ast.BinOp) and isinstance(node.op, _ELEMENTWISE):
        return _leaves(node.left) + _leaves(node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _leaves(node.operand)
    return [node]


def _has_shape(leaf, shape, shapes) -> bool:
    """Is ``leaf`` a name known to have the shape ``shape`` (a constant, or ``np.shape(leaf)``)?"""
    if not isinstance(leaf, ast.Name):
        return False
    if isinstance(shape, ast.Call) and ast.unparse(shape.func) == "np.shape" and len(shape.args) == 1:
        return isinstance(shape.args[0], ast.Name) and shape.args[0].id == leaf.id
    known = shapes.get(leaf.id)
    return isinstance(shape, ast.Constant) and isinstance(known, tuple) and known == shape.value


# --- one scaling per reader ---------------------------------------------------------------

def _scale_per_reader(stmts, counts, scalars):
    """``t = g * s`` read only by scalings ``u = t * s2`` (two or more, before anything is
    written in place or ``g``, ``s`` rebound): each reader scales ``g`` itself."""
    code = [s for s in stmts if not isinstance(s, Comment)]
    drop, replace = set(), {}
    for i, stmt in enumerate(code):
        if not (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)):
            continue
        name = stmt.targets[0].id
        uses = counts.get(name, 0) - 1
        scaled = _scaling(stmt, scalars) if uses >= 2 else None
        if scaled is None:
            continue
        a, factors = scaled
        needs = reads(stmt.value)
        readers = []
        for later in code[i + 1:]:
            if isinstance(later, (ast.If, ast.For, ast.While)) or _in_place(later) or id(later) in drop:
                break
            if name in reads(later):
                use = _scaling(later, scalars)
                if use is None or use[0].id != name or id(later) in replace:
                    break
                readers.append((later, use[1]))
            if stored_names(later) & (needs | {name}) or len(readers) == uses:
                break
        if len(readers) != uses:
            continue
        drop.add(id(stmt))
        for later, more in readers:
            new = ast.copy_location(ast.Assign(later.targets, _scaled(a, _flat(factors + more))), later)
            for key, value in vars(later).items():
                if key.startswith("s2s_"):
                    setattr(new, key, value)
            replace[id(later)] = new
    if not drop:
        return stmts
    return [replace.get(id(s), s) for s in stmts if id(s) not in drop]


def _flat(factors):
    """(op, factor) pairs with products split: ``(*, -0.5 * vel)`` -> ``(*, -0.5), (*, vel)``."""
    out = []
    for op, f in factors:
        if isinstance(op, ast.Mult) and isinstance(f, ast.BinOp) and isinstance(f.op, ast.Mult):
            out += _flat([(op, f.left), (op, f.right)])
        else:
            out.append((op, f))
    return out


# --- one update per region ----------------------------------------------------------------

def _accumulation(stmt) -> str | None:
    """The array of ``x[idx] += e`` / ``x[idx] -= e`` (a region of a named array), or None."""
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, (ast.Add, ast.Sub)) and \
            isinstance(stmt.target, ast.Subscript) and isinstance(stmt.target.value, ast.Name):
        return stmt.target.value.id
    return None


def _merge_accumulations(stmts, shares):
    out = list(stmts)
    for j, later in enumerate(out):
        base = _accumulation(later)
        if base is None:
            continue
        memory = shares.get(base, {base})
        key = ast.dump(later.target)
        if (reads(later.value) | reads(later.target.slice)) & memory:
            continue
        written: set[str] = set()
        for k in range(j - 1, -1, -1):
            stmt = out[k]
            if stmt is None or isinstance(stmt, Comment):
                continue
            if isinstance(stmt, (ast.If, ast.For, ast.While)):
                break
            other = _accumulation(stmt)
            if other is not None and shares.get(other, {other}) & memory:
                own = reads(stmt.value) | reads(stmt.target.slice)
                if own & memory:
                    break
                if ast.dump(stmt.target) == key:
                    if set().union(*(shares.get(n, {n}) for n in own)) & written:
                        break  # what it adds changes before the later update
                    later.value = _combined(stmt, later)
                    out[k] = None
                    break
                written.add(other)
                continue
            if reads(stmt) & memory:
                break
            written |= stored_names(stmt) | _updated(stmt)
            if not isinstance(stmt, (ast.Assign, ast.AugAssign)):
                written |= reads(stmt)  # a call may write into its arguments
    return [s for s in out if s is not None]


def _updated(stmt) -> set[str]:
    """The array an in-place statement writes (``x[i] = v``, ``x += v``)."""
    target = stmt.target if isinstance(stmt, ast.AugAssign) else (
        stmt.targets[0] if isinstance(stmt, ast.Assign) else None)
    while isinstance(target, ast.Subscript):
        target = target.value
    return {target.id} if isinstance(target, ast.Name) else set()


def _combined(first, second) -> ast.expr:
    """What both accumulations add, under ``second``'s operator: ``x += a; x += b`` ->
    ``x += a + b``; ``x -= a; x += b`` -> ``x += b - a``; ``x += a; x -= b`` -> ``x -= b - a``."""
    if type(first.op) is type(second.op):
        return ast.BinOp(first.value, ast.Add(), second.value)
    return ast.BinOp(second.value, ast.Sub(), first.value)


# --- cheaper calls ------------------------------------------------------------------------

def _cheap_calls(stmts, shapes) -> None:
    """``np.expand_dims(g, axis)`` -> ``g[:, None]`` and ``np.reshape(g, s)`` -> ``g.reshape(s)``
    for a name ``g`` of known rank (an array: a Python float has no axes to index), and
    ``d += np.broadcast_to(e, S)`` -> ``d += e`` for ``d`` of shape ``S``, in place."""
    for node in walk(ast.Module(body=list(stmts), type_ignores=[])):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub)) and \
                isinstance(node.target, ast.Name) and _broadcast_call(node.value) and \
                _has_shape(node.target, node.value.args[1], shapes):
            node.value = node.value.args[0]  # the in-place update broadcasts it
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, ast.expr):
                setattr(node, field, _cheaper(value, shapes))
            elif isinstance(value, list):
                value[:] = [_cheaper(v, shapes) if isinstance(v, ast.expr) else v for v in value]


def _cheaper(node, shapes):
    if not (isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords and
            isinstance(node.args[0], ast.Name)):
        return node
    func, (x, arg) = ast.unparse(node.func), node.args
    shape = shapes.get(x.id)
    rank = len(shape) if isinstance(shape, tuple) else shape if isinstance(shape, int) else None
    if not rank:
        return node
    if func == "np.reshape":
        return ast.copy_location(ast.Call(ast.Attribute(x, "reshape", ast.Load()), [arg], []), node)
    if func == "np.expand_dims":
        index = _new_axes(rank, arg)
        return node if index is None else ast.copy_location(ast.Subscript(x, index, ast.Load()), node)
    return node


def _new_axes(rank, axis):
    """The index that inserts new axes at ``axis`` (a constant int or tuple of ints) into an
    array of ``rank`` axes, as ``np.expand_dims`` does: ``[:, None]``; None if not valid."""
    axes = [axis] if isinstance(axis, ast.Constant) else list(axis.elts) if isinstance(axis, ast.Tuple) else []
    if not axes or not all(isinstance(a, ast.Constant) and type(a.value) is int for a in axes):
        return None
    out = rank + len(axes)
    positions = {a.value % out for a in axes if -out <= a.value < out}
    if len(positions) != len(axes):
        return None  # out of range or repeated: np.expand_dims raises, and so should this
    parts = [ast.Constant(None) if i in positions else ast.Slice() for i in range(out)]
    while len(parts) > 1 and isinstance(parts[-1], ast.Slice):
        parts.pop()
    return parts[0] if len(parts) == 1 else ast.Tuple(parts, ast.Load())
