"""Array worlds other than numpy: what a target changes in a generated derivative.

A target changes the array module and the few idioms that differ, not the shape of
the code. cupy: ``np.`` becomes ``cp.`` (see `to_cupy`). Dask: the backward sweep
accumulates adjoints by rebinding (``dw = dw + X.T @ dz``) instead of updating numpy
buffers in place, and scatter-adds go through ``index_add``, so that adjoints that
meet a Dask array stay lazy Dask arrays (see `for_dask`). numba: the same code, in
the subset ``numba.njit`` compiles (loops count down with a negative step instead of
``reversed``), every function of the module compiled in nopython mode (see `for_numba`).
"""
from __future__ import annotations

import ast
import re

from .astutil import copy_tree, find_nodes, name_nodes, names_in, stored_names, walk

TARGETS = ("numpy", "cupy", "dask", "numba")


def to_cupy(text: str) -> str:
    """The same module for cupy arrays: ``np.`` -> ``cp.``, scipy.special -> cupyx.scipy.special."""
    text = re.sub(r"\bnp\.", "cp.", text)
    return re.sub(r"(?<![\w.])scipy\.special\.", "cupyx.scipy.special.", text)


def for_dask(stmts: list, helpers: set) -> list:
    """``stmts`` with every in-place update written as a rebinding (Dask arrays are immutable).

    ``d += g`` -> ``d = d + g``; ``d[i] += g`` and ``np.add.at(d, i, g)`` ->
    ``d = index_add(d, i, g)``; ``np.size(a)``, which Dask lacks, -> the product of its
    shape. The buffers rebound are the derivative's own adjoints,
    which nothing else reads, so rebinding and updating in place compute the same values.
    """
    return [_Rebind(helpers).visit(s) for s in stmts]


class _Rebind(ast.NodeTransformer):
    def __init__(self, helpers: set):
        self.helpers = helpers

    def visit_AugAssign(self, node):
        if isinstance(node.target, ast.Name):
            load = ast.Name(node.target.id, ast.Load())
            new = ast.Assign([node.target], ast.BinOp(load, node.op, node.value))
        elif isinstance(node.op, ast.Add) and isinstance(node.target, ast.Subscript) \
                and isinstance(node.target.value, ast.Name):
            new = self._index_add(node.target.value.id, node.target.slice, node.value)
        else:
            return node
        return ast.copy_location(_keep_marks(node, new), node)

    def visit_Expr(self, node):
        self.generic_visit(node)
        call = node.value
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "np.add.at" \
                and len(call.args) == 3 and isinstance(call.args[0], ast.Name):
            new = self._index_add(call.args[0].id, call.args[1], call.args[2])
            return ast.copy_location(_keep_marks(node, new), node)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if ast.unparse(node.func) == "np.linalg.cholesky" and len(node.args) == 1 and not node.keywords:
            # Dask's cholesky returns the upper factor: transpose it to numpy's lower one
            a = ast.unparse(node.args[0])
            return ast.copy_location(ast.parse(
                f"np.swapaxes(np.linalg.cholesky({a}), -1, -2) if hasattr({a}, '__dask_graph__') "
                f"else np.linalg.cholesky({a})", mode="eval").body, node)
        if ast.unparse(node.func) == "np.size" and len(node.args) == 1 and not node.keywords:
            # Dask has no np.size: the product of the shape says the same
            return ast.copy_location(ast.parse(
                f"int(np.prod(np.shape({ast.unparse(node.args[0])})))", mode="eval").body, node)
        return node

    def _index_add(self, name, index, value):
        self.helpers.add("index_add")
        from .reverse import _SlicesAsCalls  # x[1:]'s index as a value: slice(1, None)
        index = _SlicesAsCalls().visit(copy_tree(index))
        call = ast.Call(ast.Name("index_add", ast.Load()), [ast.Name(name, ast.Load()), index, value], [])
        return ast.Assign([ast.Name(name, ast.Store())], call)


def _keep_marks(old, new):
    """Carry the ``s2s_*`` annotations (origin lines for comments) over to ``new``."""
    for key, value in vars(old).items():
        if key.startswith("s2s_"):
            setattr(new, key, value)
    return new


def for_numba(stmts: list) -> list:
    """``stmts`` with ``for i in reversed(range(a, b, c))`` counting down with a range of its own
    (numba has no ``reversed``): ``range(b - 1, -1, -1)`` for ``range(b)``; and a scalar
    "broadcast" to shape ``()`` (``np.broadcast_to(s, ())``, the adjoint of a scalar) as the
    scalar itself: numba cannot unify the read-only 0-d array with the floats it meets later."""
    return [_CountDown().visit(s) for s in stmts]


def outer_in_place(stmts: list, shape_of, namer, sources: dict) -> None:
    """``dW += np.outer(a, b)`` (or ``-=``) with ``a`` and ``b`` vectors of known length, as
    the numba target writes it: a loop nest that adds into ``dW`` in place. numba would
    allocate the n x m product on every call (every iteration of a backward loop), then
    read it again to add it: three passes over ``dW``'s size instead of one. ``dW`` must have
    the product's shape, and neither factor be computed from ``dW`` (``sources``: see
    `assigned_from`)."""
    from .reverse import Comment
    for i, stmt in reversed(list(enumerate(stmts))):  # from the end: comments go in before
        if isinstance(stmt, (ast.For, ast.While, ast.If)):
            outer_in_place(stmt.body, shape_of, namer, sources)
            outer_in_place(stmt.orelse, shape_of, namer, sources)
            continue
        value = getattr(stmt, "value", None)
        if not (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, (ast.Add, ast.Sub))
                and isinstance(stmt.target, ast.Name) and isinstance(value, ast.Call)
                and ast.unparse(value.func) == "np.outer" and len(value.args) == 2 and not value.keywords
                and all(isinstance(a, ast.Name) and _vector(shape_of(a.id)) for a in value.args)
                and shape_of(stmt.target.id) == tuple(shape_of(a.id)[0] for a in value.args)
                and not any(_reaches(a.id, stmt.target.id, sources) for a in value.args)):
            continue
        row, col = namer.fresh("i"), namer.fresh("j")
        d, (a, b) = stmt.target.id, (x.id for x in value.args)
        op = "+=" if isinstance(stmt.op, ast.Add) else "-="
        nest = ast.parse(f"for {row} in range({d}.shape[0]):\n"
                         f"    for {col} in range({d}.shape[1]):\n"
                         f"        {d}[{row}, {col}] {op} {a}[{row}] * {b}[{col}]").body[0]
        for node in walk(nest):
            ast.copy_location(node, stmt)
            if isinstance(node, ast.stmt):
                _keep_marks(stmt, node)
        stmts[i:i + 1] = [Comment(f"{ast.unparse(stmt)}, without the product in memory"), nest]


def elementwise_in_place(stmts: list, shape_of, scalars, namer, shares: dict) -> None:
    """``d += e`` (or ``-=``), ``e`` an elementwise expression of arrays of ``d``'s (known)
    shape, scalars and numbers, as the numba target writes it: a loop nest that adds into
    ``d`` element by element. numba would allocate ``e`` on every call (every iteration of
    a backward loop: a per-sample ``dw += dz * X[i]``), fill it, then read it again to add
    it. Each element of ``e`` reads the same element of its arrays, so the order does not
    matter, as long as none of them may share memory with ``d`` (``shares``: `memory_shared`)."""
    from .reverse import Comment
    for i, stmt in reversed(list(enumerate(stmts))):  # from the end: comments go in before
        if isinstance(stmt, (ast.For, ast.While, ast.If)):
            elementwise_in_place(stmt.body, shape_of, scalars, namer, shares)
            elementwise_in_place(stmt.orelse, shape_of, scalars, namer, shares)
            continue
        if not (isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, (ast.Add, ast.Sub))
                and isinstance(stmt.target, ast.Name)):
            continue
        d, shape = stmt.target.id, shape_of(stmt.target.id)
        if not (isinstance(shape, tuple) and 1 <= len(shape) <= 3 and all(isinstance(n, int) for n in shape)):
            continue
        arrays = _elementwise_arrays(stmt.value, shape, shape_of, scalars)
        if not arrays or any(a != d and a in shares.get(d, ()) for a in arrays):
            continue
        index = [namer.fresh(c) for c in "ijk"[:len(shape)]]
        at = ast.Tuple([ast.Name(n, ast.Load()) for n in index], ast.Load()) if len(index) > 1 \
            else ast.Name(index[0], ast.Load())
        value = _Indexed(set(arrays), at).visit(copy_tree(stmt.value))
        op = "+=" if isinstance(stmt.op, ast.Add) else "-="
        text = "".join(f"{'    ' * k}for {n} in range({d}.shape[{k}]):\n" for k, n in enumerate(index))
        text += f"{'    ' * len(index)}{d}[{ast.unparse(at)}] {op} {ast.unparse(value)}"
        nest = ast.parse(text).body[0]
        for node in walk(nest):
            ast.copy_location(node, stmt)
            if isinstance(node, ast.stmt):
                _keep_marks(stmt, node)
        stmts[i:i + 1] = [Comment(f"{ast.unparse(stmt)}, element by element"), nest]


def memory_shared(stmts: list) -> dict:
    """Name -> the names that may share its memory (`alias.linked`), from how each is bound:
    to a name, an element, a slice, an attribute, a view (`alias.VIEWS`), an item popped
    from a list (what was appended), the target of a loop over an array; an arithmetic
    result or any other call is memory of its own."""
    from .alias import VIEWS, linked
    pairs = []
    for node in walk(ast.Module(body=stmts, type_ignores=[])):
        if isinstance(node, (ast.Assign, ast.For)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bases = _bases(node.value if isinstance(node, ast.Assign) else node.iter, VIEWS)
            pairs += [(t.id, b) for target in targets for t in walk(target)
                      if isinstance(t, ast.Name) for b in bases]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "append" and node.args:
            pairs += [(b, a) for b in _bases(node.func.value, VIEWS) for a in _bases(node.args[0], VIEWS)]
    return linked(pairs)


def _bases(value, views) -> list:
    """The names whose memory ``value`` may be (or be part of)."""
    if isinstance(value, ast.Name):
        return [value.id]
    if isinstance(value, (ast.Subscript, ast.Attribute, ast.Starred)):
        return _bases(value.value, views)
    if isinstance(value, (ast.Tuple, ast.List)):
        return [b for e in value.elts for b in _bases(e, views)]
    if isinstance(value, ast.IfExp):
        return _bases(value.body, views) + _bases(value.orelse, views)
    if isinstance(value, ast.Call):
        f = value.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "np":
            return _bases(value.args[0], views) if value.args and f"numpy.{f.attr}" in views else []
        if isinstance(f, ast.Attribute):  # a method: pop, reshape, view...; copy makes memory
            return [] if f.attr == "copy" else _bases(f.value, views)
        return [b for a in value.args for b in _bases(a, views)]  # a function: it may return one
    return []


def _elementwise_arrays(expr, shape, shape_of, scalars):
    """The arrays ``expr`` reads, when it is an elementwise expression (``+ - * /``, a
    number power, negation) of arrays of exactly ``shape``, scalars and numbers, and reads
    one array at least; else None."""
    arrays = []

    def ok(node) -> bool:
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return ok(node.left) and isinstance(node.right, ast.Constant) \
                    and type(node.right.value) in (int, float)
            return isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)) and ok(node.left) and ok(node.right)
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, ast.USub) and ok(node.operand)
        if isinstance(node, ast.Constant):
            return type(node.value) in (int, float)
        if isinstance(node, ast.Name):
            if node.id in scalars or shape_of(node.id) == ():
                return True
            if shape_of(node.id) == shape:
                arrays.append(node.id)
                return True
        return False
    return arrays if ok(expr) and arrays else None


class _Indexed(ast.NodeTransformer):
    """Each of ``arrays`` read at ``at``: ``a`` -> ``a[i, j]``."""

    def __init__(self, arrays, at):
        self.arrays, self.at = arrays, at

    def visit_Name(self, node):
        if node.id in self.arrays:
            return ast.Subscript(node, copy_tree(self.at), ast.Load())
        return node


def assigned_from(stmts: list) -> dict:
    """Each name assigned in ``stmts`` -> the names its assignments read."""
    sources: dict[str, set] = {}
    for node in walk(ast.Module(body=stmts, type_ignores=[])):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.iter if isinstance(node, ast.For) else node.value
            read = {n.id for n in walk(value) if isinstance(n, ast.Name)} if value else set()
            for n in (n for t in targets for n in walk(t) if isinstance(n, ast.Name)):
                sources.setdefault(n.id, set()).update(read)
    return sources


def _reaches(name: str, target: str, sources: dict) -> bool:
    """Was ``name`` computed (through any chain of assignments) from ``target``?"""
    seen, todo = set(), [name]
    while todo:
        n = todo.pop()
        if n == target:
            return True
        if n not in seen:
            seen.add(n)
            todo.extend(sources.get(n, ()))
    return False


def _vector(shape) -> bool:
    return isinstance(shape, tuple) and len(shape) == 1 and isinstance(shape[0], int)


def ascending(backward: list, returns) -> None:
    """Backward loops whose iterations do not depend on each other run forwards
    (``for i in range(n)``, not ``reversed``): the arrays they read stream in the order
    memory prefetchers follow (a reversed 10 000-row pass ran 8x slower compiled by numba,
    5% slower in CPython, on this machine).

    A loop qualifies when its body is plain statements, each name it assigns is written
    before it is read in the iteration and not read after the loop, and everything else is
    an accumulation ``d += ...`` into an adjoint the body does not otherwise touch (or a
    per-iteration slot ``dz_steps[t] = dz``): the sums are the same in any order.
    """
    for i, stmt in enumerate(backward):
        if isinstance(stmt, ast.For) and _order_free(stmt, backward[i + 1:], returns):
            stmt.iter = stmt.iter.args[0]


def _order_free(loop, after, returns) -> bool:
    it = loop.iter
    if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "reversed"
            and len(it.args) == 1 and isinstance(it.args[0], ast.Call)
            and isinstance(it.args[0].func, ast.Name) and it.args[0].func.id == "range"):
        return False
    from .reverse import Comment
    body = [s for s in loop.body if not isinstance(s, Comment)]
    uses: dict[str, int] = {}
    for s in body:
        for node in name_nodes(s):
            uses[node.id] = uses.get(node.id, 0) + 1
    assigned = {n for s in body for n in stored_names(s)}  # (the analysis changes nothing)
    local: set[str] = set()
    for s in body:
        if isinstance(s, ast.AugAssign) and isinstance(s.op, (ast.Add, ast.Sub)):
            base = s.target
            while isinstance(base, ast.Subscript):
                base = base.value
            if not isinstance(base, ast.Name) or uses.get(base.id) != 1 or _pops(s):
                return False
            read = {n.id for n in name_nodes(s) if n is not base}
            if any(n not in local and n in assigned for n in read):
                return False  # adds a value of the previous iteration
            continue
        if not isinstance(s, ast.Assign) or len(s.targets) != 1 or _pops(s):
            return False
        read = names_in(s.value)
        target = s.targets[0]
        if isinstance(target, ast.Subscript):
            if not getattr(s, "s2s_step_store", False):
                return False
            read |= names_in(target.slice)
        elif not isinstance(target, ast.Name):
            return False
        carried = {n for n in read if n in uses and n not in local and n in assigned}
        if carried:
            return False  # read here before this iteration writes it: the previous iteration's
        if isinstance(target, ast.Name):  # (after: ``db = db * 0.8`` reads the previous one)
            local.add(target.id)
    later = {n for s in after for n in names_in(s)} | set(returns)
    return not (local & later)


def _pops(stmt) -> bool:
    """``stmt`` pops a stack (``x = stack.pop()``)."""
    return any(isinstance(n.func, ast.Attribute) and n.func.attr == "pop"
               for n in find_nodes(stmt, ast.Call))


def njit_functions(text: str, cache: bool = True) -> str:
    """Every top-level function of a module's text compiled with ``numba.njit`` (nopython
    mode only), cached on disk unless the module reads globals injected at load time
    (numba freezes a global array into its cached code, which would then go stale)."""
    decorator = "@numba.njit(cache=True)" if cache else "@numba.njit"
    return re.sub(r"^def ", decorator + "\ndef ", text, flags=re.M)


class _CountDown(ast.NodeTransformer):
    def visit_Call(self, node):
        self.generic_visit(node)
        if ast.unparse(node.func) == "np.broadcast_to" and len(node.args) == 2 and not node.keywords \
                and ast.unparse(node.args[1]) == "()":
            return node.args[0]  # the same value: s had no axes to broadcast
        return node

    def visit_For(self, node):
        self.generic_visit(node)
        it = node.iter
        if (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "reversed"
                and len(it.args) == 1 and isinstance(it.args[0], ast.Call)
                and isinstance(it.args[0].func, ast.Name) and it.args[0].func.id == "range"):
            node.iter = ast.copy_location(_reversed_range(it.args[0].args), it)
        return node


def _reversed_range(args) -> ast.expr:
    """``range(...)`` that visits ``range(*args)`` backwards."""
    if len(args) == 1:
        text = f"range({_paren(args[0])} - 1, -1, -1)"
    elif len(args) == 2:
        a, b = _paren(args[0]), _paren(args[1])
        text = f"range({b} - 1, {a} - 1, -1)"
    else:  # the last element a + (n - 1) * c, down to a, for either sign of c
        a, b, c = (_paren(x) for x in args)
        text = f"range({a} + (len(range({a}, {b}, {c})) - 1) * {c}, {a} - {c}, -{c})"
    return ast.parse(text, mode="eval").body


def _paren(node) -> str:
    text = ast.unparse(node)
    return text if isinstance(node, (ast.Name, ast.Constant, ast.Attribute, ast.Call,
                                     ast.Subscript)) else f"({text})"
