"""Saves in arrays allocated once: for a loop whose trip count is known before it runs.

After `optimize`, a value saved once per iteration of ``for t in range(n)`` (and of
every loop around it, all over ranges that the loops do not change) goes into an
array made before the outermost of those loops, written and read by index::

    saved_h = np.empty((n, 128))        # instead of saved_h = []
    saved_h[t] = h                      # instead of saved_h.append(h)
    h = saved_h[t]                      # instead of h = saved_h.pop()

Only values the analysis knows the exact shape of, and that hold floats (active
values, and regions of active arrays), are stored this way; their trip-count
axis comes first, so ``saved_h`` is also the stacked per-iteration values that
`batching` multiplies at once. Everything else keeps its list: ``while`` loops,
loops that can ``break``, a name saved at more than one place, and, on the numpy
target, Python floats (a list keeps them Python floats, which compute three
times faster than numpy scalars; numba compiles the arrays instead).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from .astutil import call as _call, copy_tree, filter_statements, names_in, statements
from .astutil import stored_names, walk
from .reverse import ReverseResult


@dataclass
class Stored:
    """One preallocated save: its array, where it is made, and its index per iteration."""

    stack: str
    loops: list  # the forward loops around the save, outermost first
    shape: tuple  # of one saved value
    push: ast.Expr
    pops: list
    back_loop: ast.For  # the backward loop that reads it


def preallocate(result: ReverseResult, target: str) -> dict[str, Stored]:
    """Rewrite the eligible saves of ``result`` in place; return them by array name."""
    if target == "dask":  # writing a Dask array into a numpy buffer would compute it
        return {}
    pushes: dict[str, list] = {}
    _walk(result.forward, [], lambda node, loops: _push_of(node, result.stacks, pushes, loops))
    pops: dict[str, list] = {}
    _walk(result.backward, [], lambda node, loops: _pop_of(node, result.stacks, pops, loops))
    undefined = {s.targets[0].id for s in result.forward if isinstance(s, ast.Assign)
                 and isinstance(s.value, ast.Constant) and s.value.value is None}
    chosen: dict[str, Stored] = {}
    countable: dict[tuple, bool] = {}  # per chain of loops
    for stack, sites in pushes.items():
        if len(sites) != 1 or len(pops.get(stack, ())) != 1:
            continue
        push, loops = sites[0]
        shape = getattr(push, "s2s_save_shape", None)
        if shape is None or not getattr(push, "s2s_save_float", False) or \
                getattr(push, "s2s_push", None) in undefined:
            continue
        if shape == () and target != "numba":
            continue  # Python floats stay Python floats on a list
        key = tuple(id(lp) for lp in loops)
        if key not in countable:
            countable[key] = bool(loops) and _countable(loops)
        if not countable[key]:
            continue
        pop, back_loops = pops[stack][0]
        if [_header(lp) for lp in back_loops[-len(loops):]] != [_header(lp) for lp in loops] \
                or len(back_loops) != len(loops):
            continue  # not restored in the same iteration of the same loops
        chosen[stack] = Stored(stack, loops, shape, push, [pop], back_loops[-1])
    counts = _trip_names(chosen.values(), result)
    sizes = sizes_in(result.forward)
    reads = {}
    for stored in chosen.values():
        reads.update(_rewrite(stored, result, counts, sizes))
    if reads:  # x = saved_x.pop() -> x = saved_x[t], in one pass
        result.backward = _swap(result.backward, reads)
    result.stacks = [s for s in result.stacks if s not in chosen]
    return chosen


def drop_unread(result: ReverseResult, stored: dict[str, Stored]) -> None:
    """Drop the arrays of saves that the backward sweep no longer reads (a restore that
    `batching` left dead): their allocation and their writes."""
    read = {n.id for n in walk(ast.Module(body=result.backward, type_ignores=[]))
            if isinstance(n, ast.Name)}
    unread = {name for name in stored if name not in read}
    if not unread:
        return

    def keep(stmt):
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
        if isinstance(target, ast.Subscript):
            target = target.value
        return not (isinstance(target, ast.Name) and target.id in unread)

    result.forward = filter_statements(result.forward, keep)


def zeros_by_shape(result: ReverseResult, stored: dict[str, Stored]) -> bool:
    """``np.zeros_like(a)`` after ``a = saved_a[t]`` (a float64 array of a known shape, as every
    preallocated save) is ``np.zeros(shape)``: when that was all the backward sweep read of
    ``a`` (the LSTM's ``da = np.zeros_like(a)``), ``a`` need not be saved. True if it changed."""
    changed = False
    if not stored:
        return changed

    def block(stmts):
        nonlocal changed
        shapes: dict[str, tuple] = {}  # name -> shape, restored in this block and not rebound
        for stmt in stmts:
            if isinstance(stmt, (ast.If, ast.For, ast.While)):
                block(stmt.body)
                block(stmt.orelse)
                shapes.clear()
                continue
            for node in walk(stmt) if shapes else ():
                for field, value in ast.iter_fields(node):
                    if _zeros_like_of(value, shapes):
                        setattr(node, field, _call("np.zeros", ast.Constant(shapes[value.args[0].id])))
                        changed = True
            for name in stored_names(stmt):
                shapes.pop(name, None)
            value = getattr(stmt, "value", None)
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and \
                    isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) and \
                    value.value.id in stored:
                shapes[stmt.targets[0].id] = stored[value.value.id].shape

    block(result.backward)
    return changed


def _zeros_like_of(value, shapes) -> bool:
    return isinstance(value, ast.Call) and ast.unparse(value.func) == "np.zeros_like" and \
        len(value.args) == 1 and not value.keywords and isinstance(value.args[0], ast.Name) and \
        value.args[0].id in shapes


def _walk(stmts, loops, visit):
    for stmt in stmts:
        visit(stmt, loops)
        if isinstance(stmt, ast.For):
            _walk(stmt.body, loops + [stmt], visit)
        elif isinstance(stmt, ast.While):
            _walk(stmt.body, loops + [stmt], visit)
        elif isinstance(stmt, ast.If):
            _walk(stmt.body, loops, visit)
            _walk(stmt.orelse, loops, visit)
        else:
            for node in walk(stmt):
                if node is not stmt and isinstance(node, ast.expr):
                    visit(node, loops)


def _push_of(node, stacks, pushes, loops):
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        if isinstance(func, ast.Attribute) and func.attr == "append" and \
                isinstance(func.value, ast.Name) and func.value.id in stacks:
            pushes.setdefault(func.value.id, []).append((node, loops))


def _pop_of(node, stacks, pops, loops):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr == "pop" and isinstance(node.func.value, ast.Name) and \
            node.func.value.id in stacks:
        pops.setdefault(node.func.value.id, []).append((node, loops))


def _header(loop) -> str | None:
    """``t in range(...)`` of a forward loop or of the backward loop that replays it."""
    if not isinstance(loop, ast.For):
        return None
    it = loop.iter
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "reversed":
        it = it.args[0]
    return f"{ast.unparse(loop.target)} in {ast.unparse(it)}"


def range_args(loop) -> list | None:
    """The arguments of ``for t in range(...)``, or None for any other loop."""
    it = loop.iter if isinstance(loop, ast.For) else None
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range" \
            and 1 <= len(it.args) <= 3 and not it.keywords and isinstance(loop.target, ast.Name):
        return it.args
    return None


def _countable(loops) -> bool:
    """Every loop runs over a range that none of them changes, and its index is its own."""
    inside = set()
    for node in statements(loops[0]):
        if isinstance(node, ast.For):
            inside |= stored_names(node.target)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            inside |= stored_names(node)
    for depth, loop in enumerate(loops):
        args = range_args(loop)
        if args is None or not all(_simple(a) for a in args):
            return False
        if any(isinstance(n, ast.Break) for n in statements(loop)):
            return False
        reads = {n for a in args for n in names_in(a)}
        if depth and reads & inside:
            return False  # an inner range that changes with the outer loops
        owners = [n for n in statements(loop) if isinstance(n, (ast.Assign, ast.AugAssign))
                  and loop.target.id in stored_names(n)]
        inner = [n for n in statements(loop) if isinstance(n, ast.For) and n is not loop
                 and loop.target.id in stored_names(n.target)]
        if owners or inner:
            return False  # the index is reassigned in the body
    return True


def _simple(node) -> bool:
    """A range bound that can be evaluated again before the loop: names, numbers, arithmetic."""
    return all(isinstance(n, (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Attribute,
                              ast.Subscript, ast.operator, ast.unaryop, ast.Load))
               for n in walk(node))


def trips(loop, sizes=frozenset()) -> ast.expr:
    """How many times ``for t in range(...)`` runs, as an expression (``sizes``: names
    known to hold a size, never negative)."""
    args = range_args(loop)
    if len(args) == 1:
        n = args[0]
        if (isinstance(n, ast.Constant) and isinstance(n.value, int) and n.value >= 0) or \
                (isinstance(n, ast.Name) and n.id in sizes):
            return copy_tree(n)
        return _call("max", copy_tree(n), ast.Constant(0))
    return _call("len", _call("range", *[copy_tree(a) for a in args]))


def slot(loop) -> ast.expr:
    """Which iteration of ``for t in range(...)`` this is: ``t``, ``t - a``, ``(t - a) // c``."""
    args = range_args(loop)
    t = ast.Name(loop.target.id, ast.Load())
    if len(args) == 1 or (isinstance(args[0], ast.Constant) and args[0].value == 0 and len(args) == 2):
        return t
    offset = ast.BinOp(t, ast.Sub(), copy_tree(args[0]))
    if isinstance(args[0], ast.Constant) and args[0].value == 0:
        offset = t
    if len(args) == 3:
        return ast.BinOp(offset, ast.FloorDiv(), copy_tree(args[2]))
    return offset


def index_of(loops) -> ast.expr:
    parts = [slot(lp) for lp in loops]
    return parts[0] if len(parts) == 1 else ast.Tuple(parts, ast.Load())


def sizes_in(stmts) -> set[str]:
    """Names the forward sweep sets to a size (``n = x.shape[0]``, ``len(x)``, ``t1[0]`` after
    ``t1 = x.shape``), never negative."""
    shapes, out = set(), set()
    for s in stmts:
        if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name):
            v = s.value
            if isinstance(v, ast.Attribute) and v.attr == "shape":
                shapes.add(s.targets[0].id)
            elif (isinstance(v, ast.Subscript) and isinstance(v.value, ast.Attribute)
                    and v.value.attr == "shape") or (
                    isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "len") or (
                    isinstance(v, ast.Subscript) and isinstance(v.value, ast.Name) and v.value.id in shapes):
                out.add(s.targets[0].id)
    return out


def _trip_names(stored, result) -> dict:
    """A loop whose trip count is an expression (``max(steps, 0)``) that several arrays need
    gets it once, in a name of its own (``n_i = max(steps, 0)``) before the first of them."""
    sizes = sizes_in(result.forward)
    uses: dict[int, list] = {}
    for s in stored:
        for lp in s.loops:
            uses.setdefault(id(lp), [lp, 0])[1] += 1
    names = {}
    for key, (loop, count) in uses.items():
        expr = trips(loop, sizes)
        if count > 1 and not isinstance(expr, (ast.Name, ast.Constant)):
            name = result.fn.namer.fresh(f"n_{loop.target.id.strip('_') or 'trips'}")
            names[key] = (name, expr, loop)
    return names


def allocation(name, loops, shape, sizes, counts=None) -> ast.Assign:
    """``name = np.empty((trips..., *shape))``."""
    counts = counts or {}
    dims = [ast.Name(counts[id(lp)][0], ast.Load()) if id(lp) in counts else trips(lp, sizes)
            for lp in loops] + [ast.Constant(d) for d in shape]
    size = dims[0] if len(dims) == 1 else ast.Tuple(dims, ast.Load())
    return ast.Assign([ast.Name(name, ast.Store())], _call("np.empty", size), lineno=0)


def insert_before(stmts, anchor, new) -> bool:
    """Put the statements ``new`` right before ``anchor``, at whatever depth it is."""
    for i, stmt in enumerate(stmts):
        if stmt is anchor:
            stmts[i:i] = new
            return True
        for field in ("body", "orelse"):
            if isinstance(stmt, (ast.If, ast.For, ast.While)) and insert_before(
                    getattr(stmt, field), anchor, new):
                return True
    return False


def _rewrite(stored: Stored, result: ReverseResult, counts, sizes) -> dict:
    """Write the save by index and allocate its array; return what replaces its pops."""
    push = stored.push
    index = index_of(stored.loops)
    target = ast.Subscript(ast.Name(stored.stack, ast.Load()), index, ast.Store())
    value = push.value.args[0]
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "copy":
        value = value.func.value  # a region: writing it into the array copies it
    new = ast.Assign([target], value)
    ast.copy_location(new, push)
    for key, value in vars(push).items():
        if key.startswith("s2s_"):
            setattr(new, key, value)
    _replace(result.forward, push, new)
    stored.push = new
    made = [allocation(stored.stack, stored.loops, stored.shape, sizes, counts)]
    for loop in stored.loops:
        if id(loop) in counts and not getattr(loop, "s2s_counted", False):
            loop.s2s_counted = True  # n_i = max(steps, 0), once
            name, expr, _ = counts[id(loop)]
            made.insert(0, ast.Assign([ast.Name(name, ast.Store())], expr, lineno=0))
    insert_before(result.forward, stored.loops[0], made)
    return {id(pop): ast.Subscript(ast.Name(stored.stack, ast.Load()), copy_tree(index), ast.Load())
            for pop in stored.pops}


def _replace(stmts, old, new) -> bool:
    for i, stmt in enumerate(stmts):
        if stmt is old:
            stmts[i] = new
            return True
        for field in ("body", "orelse"):
            if isinstance(stmt, (ast.If, ast.For, ast.While)) and _replace(getattr(stmt, field), old, new):
                return True
    return False


def _swap(nodes: list, new: dict) -> list:
    """``nodes`` with each expression whose id is in ``new`` replaced, at any depth, in place
    (the list itself is copied; statements keep their identity)."""
    out = list(nodes)
    todo = [out]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, ast.AST):
                    if id(item) in new:
                        node[i] = ast.copy_location(new[id(item)], item)
                    else:
                        todo.append(item)
            continue
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                todo.append(value)
            elif isinstance(value, ast.AST):
                if id(value) in new:
                    setattr(node, field, ast.copy_location(new[id(value)], value))
                else:
                    todo.append(value)
    return out
