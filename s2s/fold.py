"""Stage 6, first step: constants of the backward sweep folded into their readers.

The backward sweep starts from the seed ``1.0`` and the rules pass it on as they
pass any adjoint: ``dt4 = 1.0; dt8 = 1.0; dt7 = dt8 * t5; dt2 = dt4 / 1000 * e``.
A name bound once, at the top level of the backward sweep, to a number (or to
``np.sum`` of one) is that number wherever it is read, so its readers take the
number and fold it: ``dt7 = t5; dt2 = 0.001 * e`` (the copy then goes too).

A fold that leaves a reader holding another value itself (``dt7 = 1.0 * t5`` ->
``dt7 = t5``) makes the two names one array: it is done only where neither is
updated in place anywhere and the value is surely floating point (``1.0 * k`` is
a float, ``k`` may be an int).
"""
from __future__ import annotations

import ast

from .alias import linked
from .astutil import copy_tree, name_nodes, statements, stored_names, walk
from .fresh import NEW_CALLS, VIEW_CALLS
from .reverse import Comment
from .template import simplify

_ARITHMETIC = (ast.BinOp, ast.UnaryOp)
# numpy functions whose value is a new float array (or a float) for any numeric argument
_FLOAT_CALLS = {"np.exp", "np.log", "np.tanh", "np.sin", "np.cos", "np.sqrt", "np.mean", "np.log1p",
                "np.expm1", "np.logaddexp", "np.float64", "float", "np.cosh", "np.sinh", "np.arctan",
                "np.tan", "np.arcsin", "np.arccos", "np.log2", "np.log10", "np.exp2"}


def fold_constants(result, returns) -> None:
    """Substitute the backward sweep's numeric constants into their readers (see module)."""
    if not any(_numeric(s) for s in result.backward):
        return
    writes: dict[str, int] = {}
    for stmt in statements(ast.Module(body=result.forward + result.backward, type_ignores=[])):
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.For)):
            for name in stored_names(stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target):
                writes[name] = writes.get(name, 0) + 1
    facts = _Facts(result.forward + result.backward, result.floats | set(result.wrt))
    constants: dict[str, ast.expr] = {}
    for stmt in result.backward:
        if isinstance(stmt, Comment) or not constants and not _constant_target(stmt, writes):
            continue
        if constants:
            _substitute(stmt, constants, facts)
        name = _constant_target(stmt, writes)
        if name is not None:  # (np.sum of a number is that number)
            value = stmt.value.args[0] if isinstance(stmt.value, ast.Call) else stmt.value
            stmt.value = constants[name] = simplify(value)


class _Facts:
    """What a fold that leaves a name for a name needs, worked out the first time it is asked."""

    def __init__(self, stmts, known_floats):
        self.stmts, self.known_floats = stmts, known_floats
        self._in_place = self._floats = None

    @property
    def in_place(self) -> set[str]:
        if self._in_place is None:
            self._in_place = _updated_in_place(self.stmts)
        return self._in_place

    @property
    def floats(self) -> set[str]:
        if self._floats is None:
            self._floats = _float_names(self.stmts, self.known_floats)
        return self._floats


def _numeric(stmt) -> bool:
    """``name = <number>``, or ``name = f(<number>)`` (`_constant_target` checks ``f``)."""
    value = getattr(stmt, "value", None) if isinstance(stmt, ast.Assign) else None
    if isinstance(value, ast.Call) and len(value.args) == 1:
        value = value.args[0]
    return _number(value) is not None


def add_numbers_at_first_write(stmts):
    """``d = e; d += 1.0`` -> ``d = e + 1.0`` (``d = -y; d += 1.0`` -> ``d = 1.0 - y``): one
    pass over the array, the same values (a number keeps the array's dtype either way)."""
    out: list = []
    first = None  # the last statement kept, comments aside
    for stmt in stmts:
        for field in ("body", "orelse"):
            if isinstance(stmt, (ast.If, ast.For, ast.While)):
                setattr(stmt, field, add_numbers_at_first_write(getattr(stmt, field)))
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, (ast.Add, ast.Sub)) and \
                isinstance(stmt.target, ast.Name) and _number(stmt.value) is not None and \
                isinstance(first, ast.Assign) and len(first.targets) == 1 and \
                isinstance(first.targets[0], ast.Name) and first.targets[0].id == stmt.target.id and \
                not any(k.startswith("s2s_") for k in vars(first)) and \
                not any(n.id == stmt.target.id for n in name_nodes(first.value)):
            value = simplify(first.value) if type(_number(stmt.value)) is float else first.value  # (a float)
            if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub) and isinstance(stmt.op, ast.Add):
                first.value = ast.BinOp(stmt.value, ast.Sub(), value.operand)  # -y + c == c - y
            else:
                first.value = simplify(ast.BinOp(value, stmt.op, stmt.value))
            continue
        out.append(stmt)
        if not isinstance(stmt, Comment):
            first = stmt
    return out


def _constant_target(stmt, writes) -> str | None:
    """``name`` for ``name = <number>`` (or ``np.sum(<number>)``), ``name`` bound nowhere else."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
            and writes.get(stmt.targets[0].id) == 1 and _numeric(stmt):
        value = stmt.value
        if not isinstance(value, ast.Call) or (ast.unparse(value.func) == "np.sum" and not value.keywords):
            return stmt.targets[0].id
    return None


def _number(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _number(node.operand)
    return None


def _substitute(stmt, constants, facts) -> None:
    """Read the constants in ``stmt`` (compound statements: at every depth), folding each
    assignment's value, unless the fold would make its target share another name's array."""
    if isinstance(stmt, Comment) or not any(n.id in constants for n in name_nodes(stmt)):
        return
    if isinstance(stmt, (ast.If, ast.For, ast.While)):
        header = stmt.test if isinstance(stmt, (ast.If, ast.While)) else stmt.iter
        _replace(header, constants)
        for inner in stmt.body + stmt.orelse:
            _substitute(inner, constants, facts)
        return
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        _replace(stmt, constants)
        if isinstance(stmt, ast.AugAssign):  # d += 1.0 * v -> d += v: v is only read
            folded = simplify(stmt.value)
            if not _negates_non_float(folded, facts.floats):
                stmt.value = folded
        return
    if not {n.id for n in name_nodes(stmt.value)} & set(constants):
        return
    read = _replace(ast.Expr(copy_tree(stmt.value)), constants).value
    folded = simplify(read)
    if _float_constants(read) and not _float_constants(folded) and not _float_value(folded, facts.floats) \
            or _negates_non_float(folded, facts.floats) and not _negates_non_float(read, facts.floats):
        stmt.value = read  # -1.0 * n: a float, where -n is an int when n is one
        return
    if isinstance(stmt.value, _ARITHMETIC) and not isinstance(folded, _ARITHMETIC) and \
            _number(folded) is None:
        # ``d = 1.0 * y`` -> ``d = y``: one array under two names, and an int stays an int
        shared = {stmt.targets[0].id} | {n.id for n in name_nodes(folded)}
        fresh_float = isinstance(folded, ast.Call) and ast.unparse(folded.func) in _FLOAT_CALLS
        floats = isinstance(folded, ast.Name) and folded.id in facts.floats
        if not fresh_float and (not floats or shared & facts.in_place):
            # a new array: np.copy(y) of a float y, else 1.0 * y (a float one)
            stmt.value = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "copy", ast.Load()),
                                  [folded], []) if floats else read
            return
    stmt.value = folded


def _negates_non_float(node, floats) -> bool:
    """Does ``node`` negate a value that may not be a float (``-(a < b)``: numpy refuses ``-``
    on a mask, and wraps unsigned integers)?"""
    return any(isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub) and not _float_value(n.operand, floats)
               for n in walk(node))


def _float_constants(node) -> bool:
    """Does ``node`` hold a float number or a true division (which make a float of an int)?"""
    return any(isinstance(n, ast.Constant) and type(n.value) is float or
               isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) for n in walk(node))


def _replace(node, constants):
    """``node`` with every read of a constant's name replaced by (a copy of) the constant."""
    for parent in walk(node):
        for field, child in ast.iter_fields(parent):
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) and child.id in constants:
                setattr(parent, field, copy_tree(constants[child.id]))
            elif isinstance(child, list):
                for i, item in enumerate(child):
                    if isinstance(item, ast.Name) and isinstance(item.ctx, ast.Load) and item.id in constants:
                        child[i] = copy_tree(constants[item.id])
    return node


def _updated_in_place(stmts) -> set[str]:
    """Names any statement writes into (``x += e``, ``x[i] = e``, ``np.add.at(x, ...)``), and
    every name that may share memory with one of them."""
    written, links = set(), []
    for node in statements(ast.Module(body=list(stmts), type_ignores=[])):
        target = node.target if isinstance(node, ast.AugAssign) else \
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.Assign):
            links += [(name, source) for name in stored_names(node) for source in _view_sources(node.value)]
        if isinstance(node, ast.AugAssign) or isinstance(target, (ast.Subscript, ast.Attribute)):
            while isinstance(target, (ast.Subscript, ast.Attribute)):
                target = target.value
            if isinstance(target, ast.Name):
                written.add(target.id)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "append" and isinstance(func.value, ast.Name):
                # saved.append(x): the list holds x, and x is unchanged
                links += [(func.value.id, source) for a in node.value.args for source in _view_sources(a)]
            else:  # np.add.at(x, ...), or any call: it may write into what it is given
                written |= {n.id for n in name_nodes(node.value) if n.id != "np"}
    sharing = linked(links)
    return set().union(*(sharing.get(name, {name}) for name in written)) if written else set()


def _view_sources(value) -> set[str]:
    """The names whose memory ``value`` may be (or view): itself, its element or attribute,
    a view call's array (``x.T``, ``np.reshape(x, s)``, ``unbroadcast(x, s)``), a list's item."""
    if isinstance(value, ast.Name):
        return {value.id}
    if isinstance(value, (ast.Subscript, ast.Starred, ast.Attribute)):
        return _view_sources(value.value)
    if isinstance(value, ast.IfExp):
        return _view_sources(value.body) | _view_sources(value.orelse)
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        receiver = _view_sources(func.value) - {"np"} if isinstance(func, ast.Attribute) else set()
        if name == "pop":
            return receiver
        if name in VIEW_CALLS:
            return receiver | (_view_sources(value.args[0]) if value.args else set())
        if isinstance(func, ast.Name) and name not in NEW_CALLS:  # a helper may return its argument
            return set().union(*(_view_sources(a) for a in value.args))
    return set()


def _float_names(stmts, known=()) -> set[str]:
    """Names every binding of which is surely a float value (a float constant or division in
    its arithmetic, a float-valued numpy function), and the ``known`` Python floats."""
    values: dict[str, list] = {}
    for node in statements(ast.Module(body=list(stmts), type_ignores=[])):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.For)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    values.setdefault(target.id, []).append(
                        node.value if isinstance(node, ast.Assign) else None)
    floats = set(values) | set(known)
    changed = True
    while changed:  # greatest fixpoint
        changed = False
        for name in list(floats - set(known)):
            if not all(v is not None and _float_value(v, floats) for v in values[name]):
                floats.discard(name)
                changed = True
    return floats


def _float_value(value, floats) -> bool:
    if isinstance(value, ast.Constant):
        return type(value.value) is float
    if isinstance(value, ast.Name):
        return value.id in floats
    if isinstance(value, ast.UnaryOp):
        return _float_value(value.operand, floats)
    if isinstance(value, ast.BinOp):
        return isinstance(value.op, ast.Div) or isinstance(value.op, (ast.Add, ast.Sub, ast.Mult, ast.Pow,
                                                                       ast.MatMult)) \
            and (_float_value(value.left, floats) or _float_value(value.right, floats))
    if isinstance(value, ast.Call):
        func = ast.unparse(value.func)
        return func in _FLOAT_CALLS or func in _KEEP_FLOAT_CALLS and bool(value.args) and \
            _float_value(value.args[0], floats)
    if isinstance(value, ast.Subscript):  # an element or a region of a float array
        return _float_value(value.value, floats)
    return False


# numpy functions whose value is a float when their (first) argument is
_KEEP_FLOAT_CALLS = {"np.sum", "np.max", "np.min", "np.prod", "np.cumsum", "np.dot", "np.matmul",
                     "np.transpose", "np.reshape", "np.diag", "np.trace", "np.outer", "np.abs"}
