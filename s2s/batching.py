"""Batched accumulation: one matrix product after a loop instead of one small one per iteration.

A backward loop that adds ``np.outer(g, h)`` (or ``x.T @ g``) into an adjoint on every
iteration adds, in all, one matrix product of the stacked per-iteration values::

    for t in reversed(range(n)):            for t in reversed(range(n)):
        ...                                     ...
        h = saved_h[t]                          h = saved_h[t]
        dW += np.outer(dz, h)        ->         dz_steps[t] = dz
    (dW = np.zeros_like(W) before)          dW = dz_steps.T @ saved_h

That is what a careful person writes by hand (one GEMM, not n rank-one updates). It is
done when at least one factor is stacked anyway: an array of saves (`preallocate`), or
the rows ``x[t]`` of an argument nothing writes; the other factor, computed in the
loop, is kept in an array of its own (``dz_steps``). The sum is the same; only the
order of the additions differs.
"""
from __future__ import annotations

import ast
import functools
from collections import Counter

from .alias import written_arrays
from .astutil import call as _call, dotted, name_nodes, names_in, statements, stored_names
from .preallocate import Stored, insert_before, range_args, sizes_in, slot, trips
from .reverse import Comment, ReverseResult


def batch(result: ReverseResult, stored: dict[str, Stored]) -> bool:
    """Batch the accumulations of ``result``'s top-level backward loops; True if any was."""
    changed = False
    for loop in [s for s in result.backward if isinstance(s, ast.For)]:
        changed |= _Loop(result, stored, loop).run()
    return changed


def _replayed(loop) -> ast.For | None:
    """``for t in range(...)`` that the backward loop ``for t in reversed(range(...))`` replays."""
    it = loop.iter
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "reversed" \
            and len(it.args) == 1:
        fwd = ast.For(loop.target, it.args[0], [], [])
        return fwd if range_args(fwd) is not None else None
    return None


class _Loop:
    def __init__(self, result: ReverseResult, stored, loop):
        self.result, self.loop = result, loop
        self.fwd = _replayed(loop)
        self.stored = {name: s for name, s in stored.items() if s.back_loop is loop
                       and len(s.loops) == 1 and any(st is s.push for st in s.loops[0].body)}
        self.counts = Counter(n.id for n in name_nodes(loop))
        self.defs: dict[str, list] = {}  # name -> the statements of the loop that write it
        for n in statements(loop):
            if not isinstance(n, (Comment, ast.For, ast.While, ast.If)):
                names = stored_names(n) | written_arrays(n)
                if isinstance(n, ast.AugAssign):
                    names |= {_base(n.target)}
                for name in names:
                    self.defs.setdefault(name, []).append(n)

    @functools.cached_property
    def written(self) -> set[str]:
        everything = self.result.forward + self.result.backward
        return set().union(*(stored_names(s) | written_arrays(s) for s in everything))

    @functools.cached_property
    def sizes(self) -> set[str]:
        return sizes_in(self.result.forward)

    def run(self) -> bool:
        if self.fwd is None or any(isinstance(n, (ast.Break, ast.Continue)) for n in statements(self.loop)):
            return False
        body = self.loop.body
        steps: dict[str, str] = {}  # a factor computed in the loop -> its array of steps
        self.first: dict[str, int] = {}  # ... -> where it is stored (no write may follow before a use)
        after: list[ast.stmt] = []
        kept: list[ast.stmt] = []
        for k, stmt in enumerate(body):
            plan = self.plan(stmt, k)
            if plan is None:
                kept.append(stmt)
                continue
            d, product, computed = plan
            for name, shape in computed:
                self.first.setdefault(name, k)
                if name not in steps:
                    steps[name] = self.result.fn.namer.fresh(f"{name}_steps")
                    self.allocate(steps[name], shape)
                    index = slot(self.fwd)
                    store = ast.Assign([ast.Subscript(ast.Name(steps[name], ast.Load()), index,
                                                      ast.Store())], ast.Name(name, ast.Load()), lineno=0)
                    store.s2s_step_store = True  # one slot per iteration: any order writes the same
                    kept.append(store)
            product = _Steps(steps).visit(product)
            after.append(self.total(d, product))
        if not after:
            return False
        self.loop.body = kept
        block, i = _position(self.result.backward, self.loop)
        block[i + 1:i + 1] = after
        return True

    def plan(self, stmt, k):
        """(adjoint, the product over all steps, [(factor computed here, its shape)]) or None."""
        if not (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add)
                and isinstance(stmt.target, ast.Name)):
            return None
        d, value = stmt.target.id, stmt.value
        if isinstance(value, ast.Call) and dotted(value.func) == "np.outer" and \
                len(value.args) == 2 and not value.keywords:
            a, b = value.args
            rank, transposed = 1, False
        elif isinstance(value, ast.BinOp) and isinstance(value.op, ast.MatMult) and \
                isinstance(value.left, ast.Attribute) and value.left.attr == "T":
            a, b = value.left.value, value.right
            rank, transposed = 2, True
        else:
            return None
        if not (isinstance(a, ast.Name) and isinstance(b, ast.Name)):
            return None
        if self.counts.get(d) != 1:
            return None  # the adjoint is read or written elsewhere in the loop
        fa, fb = self.factor(a.id, k), self.factor(b.id, k)
        if fa is None or fb is None or (fa[0] is None and fb[0] is None):
            return None  # neither factor is stacked anyway
        (sa, shape_a), (sb, shape_b) = fa, fb
        if len(shape_a) != rank or len(shape_b) != rank or (rank == 2 and shape_a[0] != shape_b[0]):
            return None
        computed = [(n.id, shape) for n, (s, shape) in ((a, fa), (b, fb)) if s is None]
        sa = sa if sa is not None else ast.Name(f"#{a.id}", ast.Load())  # the steps array, later
        sb = sb if sb is not None else ast.Name(f"#{b.id}", ast.Load())
        if transposed:  # sum_t x_t.T @ y_t over (n, r, p) and (n, r, q) stacks
            sa = ast.Call(ast.Attribute(sa, "reshape", ast.Load()),
                          [ast.UnaryOp(ast.USub(), ast.Constant(1)), ast.Constant(shape_a[1])], [])
            sb = ast.Call(ast.Attribute(sb, "reshape", ast.Load()),
                          [ast.UnaryOp(ast.USub(), ast.Constant(1)), ast.Constant(shape_b[1])], [])
        del transposed
        return d, ast.BinOp(ast.Attribute(sa, "T", ast.Load()), ast.MatMult(), sb), computed

    def factor(self, name, k):
        """(the stacked values of ``name`` over all iterations, or None if computed here; the
        shape of one) — or None when it cannot be stacked."""
        body = self.loop.body
        defs = self.defs.get(name, [])
        own = [i for i, s in enumerate(body) if any(s is d for d in defs)]
        if len(own) != len(defs) or not own or own[-1] >= self.first.get(name, k):
            return None  # defined in a branch, or only after this point
        first = body[own[0]]
        if len(own) == 1 and isinstance(first, ast.Assign) and isinstance(first.value, ast.Subscript):
            stacked = self.stack_of(first.value)
            if stacked is not None:
                return stacked
        shape = self.result.adjoint_shapes.get(name, self.result.shapes.get(name))
        if not (isinstance(shape, tuple) and all(isinstance(n, int) for n in shape)):
            return None
        if any(isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
               for s in (body[i] for i in own[1:])):
            return None
        return None, shape

    def stack_of(self, value: ast.Subscript):
        """``saved_h[t]`` -> (saved_h, shape of h); ``x[t]`` (an argument nothing writes) -> (x, ...)."""
        base = value.value
        if not isinstance(base, ast.Name):
            return None
        s = self.stored.get(base.id)
        if s is not None and ast.unparse(value.slice) == ast.unparse(slot(s.loops[0])):
            return ast.Name(base.id, ast.Load()), s.shape
        t = self.fwd.target.id
        shape = self.result.shapes.get(base.id)
        if isinstance(value.slice, ast.Name) and value.slice.id == t and base.id in self.result.fn.params \
                and base.id not in self.written and len(range_args(self.fwd)) == 1 and \
                isinstance(shape, tuple) and len(shape) >= 2 and all(isinstance(n, int) for n in shape):
            n = range_args(self.fwd)[0]
            if _is_length_of(n, base.id, self.result.forward):
                return ast.Name(base.id, ast.Load()), shape[1:]
            rows = ast.Slice(None, trips(self.fwd, self.sizes), None)
            return ast.Subscript(ast.Name(base.id, ast.Load()), rows, ast.Load()), shape[1:]
        return None

    def allocate(self, name, shape):
        dims = [trips(self.fwd, self.sizes)] + [ast.Constant(n) for n in shape]
        made = ast.Assign([ast.Name(name, ast.Store())], _call("np.empty", ast.Tuple(dims, ast.Load())
                                                               if len(dims) > 1 else dims[0]), lineno=0)
        insert_before(self.result.backward, self.loop, [made])

    def total(self, d, product) -> ast.stmt:
        """``d = product`` where ``d`` was zeros made just before the loop, else ``d += product``."""
        block, i = _position(self.result.backward, self.loop)
        for j in range(i - 1, -1, -1):
            s = block[j]
            if isinstance(s, Comment) or d not in names_in(s):
                continue
            if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name) and s.targets[0].id == d \
                    and isinstance(s.value, ast.Call) and dotted(s.value.func) == "np.zeros_like":
                del block[j]
                return ast.Assign([ast.Name(d, ast.Store())], product, lineno=0)
            break
        return ast.AugAssign(ast.Name(d, ast.Store()), ast.Add(), product, lineno=0)


class _Steps(ast.NodeTransformer):
    def __init__(self, steps):
        self.steps = steps

    def visit_Name(self, node):
        if node.id.startswith("#"):
            return ast.Name(self.steps[node.id[1:]], ast.Load())
        return node


def _base(node):
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_length_of(n, array, forward) -> bool:
    """Is ``n`` ``array.shape[0]`` (directly, or a name the forward sweep set to it)?"""
    def is_len(v):
        return (isinstance(v, ast.Subscript) and isinstance(v.value, ast.Attribute) and v.value.attr == "shape"
                and isinstance(v.value.value, ast.Name) and v.value.value.id == array
                and isinstance(v.slice, ast.Constant) and v.slice.value == 0) or (
            isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "len"
            and len(v.args) == 1 and isinstance(v.args[0], ast.Name) and v.args[0].id == array)
    if is_len(n):
        return True
    shapes = {s.targets[0].id for s in forward if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
              and isinstance(s.value, ast.Attribute) and s.value.attr == "shape"
              and isinstance(s.value.value, ast.Name) and s.value.value.id == array}

    def is_first(v):  # t1[0] after t1 = x.shape
        return isinstance(v, ast.Subscript) and isinstance(v.value, ast.Name) and v.value.id in shapes \
            and isinstance(v.slice, ast.Constant) and v.slice.value == 0
    if isinstance(n, ast.Name):
        defs = [s for s in forward if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
                and s.targets[0].id == n.id]
        return len(defs) == 1 and (is_len(defs[0].value) or is_first(defs[0].value))
    return False


def _position(stmts, node):
    for i, s in enumerate(stmts):
        if s is node:
            return stmts, i
    raise ValueError("loop not at the top level of the backward sweep")
