"""Small AST helpers that every stage uses: build nodes, read names, filter statement lists."""
from __future__ import annotations

import ast
import copy
import os
from collections import deque


def at(node, origin):
    """``node`` with the source position of ``origin`` (when it has one)."""
    if origin is not None and hasattr(origin, "lineno"):
        node.lineno = origin.lineno
        node.col_offset = origin.col_offset
        node.end_lineno = getattr(origin, "end_lineno", origin.lineno)
        node.end_col_offset = getattr(origin, "end_col_offset", origin.col_offset)
    return node


def assign(name: str, value: ast.expr, origin=None) -> ast.Assign:
    """``name = value``, placed at ``origin``."""
    return at(ast.Assign([ast.Name(name, ast.Store())], value), origin)


def call(func: str, *args) -> ast.Call:
    """``func(*args)`` for a dotted name such as ``np.zeros_like``."""
    parts = func.split(".")
    expr: ast.expr = ast.Name(parts[0], ast.Load())
    for part in parts[1:]:
        expr = ast.Attribute(expr, part, ast.Load())
    return ast.Call(expr, list(args), [])


_ATOMS = frozenset((str, int, float, complex, bool, bytes, type(None), type(Ellipsis)))


def copy_tree(node):
    """``copy.deepcopy(node)``, faster for syntax trees: nodes and lists are copied here,
    immutable constants kept (as deepcopy keeps them), any other value given to deepcopy,
    all with one memo, so that what the tree shares its copy shares too."""
    memo: dict = {}
    return _copy(node, memo)


def _copy(value, memo):
    if isinstance(value, ast.AST):
        return _copy_node(value, memo)
    if type(value) is list:
        return _copy_list(value, memo)
    if type(value) in _ATOMS:
        return value
    return copy.deepcopy(value, memo)


def _copy_node(node, memo):
    new = memo.get(id(node))
    if new is not None:
        return new
    new = memo[id(node)] = node.__class__.__new__(node.__class__)
    fields = node.__dict__.copy()  # atoms kept as they are; the rest replaced by copies
    atoms, AST = _ATOMS, ast.AST
    for key, item in fields.items():
        if item.__class__ in atoms:
            continue
        if isinstance(item, AST):
            fields[key] = memo.get(id(item)) or _copy_node(item, memo)
        elif item.__class__ is list:
            fields[key] = _copy_list(item, memo)
        else:
            fields[key] = copy.deepcopy(item, memo)
    new.__dict__ = fields
    return new


def _copy_list(items, memo):
    new = memo.get(id(items))
    if new is not None:
        return new
    new = memo[id(items)] = []
    atoms, AST = _ATOMS, ast.AST
    for item in items:
        if isinstance(item, AST):
            new.append(memo.get(id(item)) or _copy_node(item, memo))
        elif item.__class__ in atoms:
            new.append(item)
        else:
            new.append(_copy(item, memo))
    return new


class Transformer(ast.NodeTransformer):
    """`ast.NodeTransformer`, faster: the same visits and replacements, each class's
    ``visit_<Class>`` method looked up once."""

    _visitors: dict = {}  # (transformer class, node class) -> its visit method, or None

    def visit(self, node):
        key = (self.__class__, node.__class__)
        try:
            method = self._visitors[key]
        except KeyError:
            method = self._visitors[key] = getattr(self.__class__, "visit_" + node.__class__.__name__, None)
        return method(self, node) if method is not None else self.generic_visit(node)

    def generic_visit(self, node):
        for field in node._fields:
            try:
                old = getattr(node, field)
            except AttributeError:
                continue
            if isinstance(old, list):
                new = []
                for value in old:
                    if isinstance(value, ast.AST):
                        value = self.visit(value)
                        if value is None:
                            continue
                        if not isinstance(value, ast.AST):
                            new.extend(value)
                            continue
                    new.append(value)
                old[:] = new
            elif isinstance(old, ast.AST):
                value = self.visit(old)
                if value is None:
                    delattr(node, field)
                else:
                    setattr(node, field, value)
        return node


def child_nodes(node) -> list:
    """``list(ast.iter_child_nodes(node))``, faster."""
    out = []
    for field in node._fields:
        try:
            child = getattr(node, field)
        except AttributeError:
            continue
        if isinstance(child, ast.AST):
            out.append(child)
        elif isinstance(child, list):
            out += [item for item in child if isinstance(item, ast.AST)]
    return out


def walk(node):
    """`ast.walk`, faster: the same nodes in the same order (breadth first), each node's
    children read just before it is yielded. Generation walks trees thousands of times."""
    todo = deque([node])
    popleft, append = todo.popleft, todo.append
    AST = ast.AST
    while todo:
        node = popleft()
        for field in node._fields:
            try:
                child = getattr(node, field)
            except AttributeError:
                continue
            if isinstance(child, AST):
                append(child)
            elif isinstance(child, list):
                for item in child:
                    if isinstance(item, AST):
                        append(item)
        yield node


# Fields that hold no node a name can occur in (contexts, operators, identifiers, flags):
# `name_nodes` does not look into them.
_LEAF_FIELDS = frozenset(("ctx", "op", "ops", "id", "attr", "arg", "kind", "type_comment", "level",
                          "is_async", "conversion", "module"))
_NAME_FIELDS: dict = {}  # node class -> its other fields


def name_nodes(node) -> list[ast.Name]:
    """Every ``ast.Name`` in ``node``, in no particular order (faster than filtering `walk`)."""
    out, todo = [], [node]
    pop, append = todo.pop, todo.append
    Name, AST, table = ast.Name, ast.AST, _NAME_FIELDS
    while todo:
        node = pop()
        if isinstance(node, Name):
            out.append(node)
        elif isinstance(node, AST):
            fields = table.get(node.__class__)
            if fields is None:
                fields = table[node.__class__] = tuple(
                    f for f in node.__class__._fields if f not in _LEAF_FIELDS)
            for field in fields:
                child = getattr(node, field, None)
                if isinstance(child, list):
                    todo += child
                elif isinstance(child, AST):
                    append(child)
    return out


def find_nodes(node, kinds) -> list:
    """Every node of the class(es) ``kinds`` in ``node`` (itself included), in no particular
    order (faster than filtering `walk`). Not for contexts, operators or identifiers:
    `name_nodes`' traversal does not look into the fields that hold them."""
    out, todo = [], [node]
    pop, append = todo.pop, todo.append
    AST, table = ast.AST, _NAME_FIELDS
    while todo:
        node = pop()
        if not isinstance(node, AST):
            continue
        if isinstance(node, kinds):
            out.append(node)
        fields = table.get(node.__class__)
        if fields is None:
            fields = table[node.__class__] = tuple(
                f for f in node.__class__._fields if f not in _LEAF_FIELDS)
        for field in fields:
            child = getattr(node, field, None)
            if isinstance(child, list):
                todo += child
            elif isinstance(child, AST):
                append(child)
    return out


def statements(node):
    """``node`` if it is a statement, and every statement in its blocks at any depth, in
    `walk`'s order (breadth first): what filtering `walk` for statements gives, faster, as
    expressions hold no statements."""
    todo = deque([node])
    popleft, append = todo.popleft, todo.append
    while todo:
        node = popleft()
        for field in node._fields:
            block = getattr(node, field, None)
            if type(block) is list:
                for item in block:
                    if isinstance(item, (ast.stmt, ast.excepthandler, ast.match_case)):
                        append(item)
        if isinstance(node, ast.stmt):
            yield node


def dotted(node) -> str | None:
    """``np.linalg.norm`` for that chain of attributes on a name, as ``ast.unparse`` spells
    it; None for any other expression (whose spelling no dotted name equals)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def names_in(node) -> set[str]:
    """Every name in ``node``, read or written."""
    return {n.id for n in name_nodes(node)}


def stored_names(node) -> set[str]:
    """Every name ``node`` writes."""
    return {n.id for n in name_nodes(node) if isinstance(n.ctx, ast.Store)}


def loaded_names(node) -> set[str]:
    """Every name ``node`` reads."""
    return {n.id for n in name_nodes(node) if isinstance(n.ctx, ast.Load)}


def all_names(stmts) -> list[str]:
    """Every occurrence of every name in ``stmts``, in no particular order (for counting uses)."""
    return [n.id for stmt in stmts for n in name_nodes(stmt)]


def filter_statements(stmts, keep):
    """``stmts`` without those ``keep`` rejects, at any depth (empty bodies get ``pass``)."""
    out = []
    for stmt in stmts:
        if not keep(stmt):
            continue
        if isinstance(stmt, ast.If):
            stmt.body = filter_statements(stmt.body, keep) or [ast.Pass()]
            stmt.orelse = filter_statements(stmt.orelse, keep)
        elif isinstance(stmt, (ast.For, ast.While)):
            stmt.body = filter_statements(stmt.body, keep) or [ast.Pass()]
        out.append(stmt)
    return out


def replace_once(stmt, name: str, value: ast.expr) -> bool:
    """Replace the single read of ``name`` in ``stmt`` by ``value``."""
    for parent in walk(stmt):
        for field in parent._fields:
            try:
                child = getattr(parent, field)
            except AttributeError:
                continue
            if isinstance(child, ast.Name) and child.id == name and isinstance(child.ctx, ast.Load):
                setattr(parent, field, value)
                return True
            if isinstance(child, list):
                for i, item in enumerate(child):
                    if isinstance(item, ast.Name) and item.id == name and isinstance(item.ctx, ast.Load):
                        child[i] = value
                        return True
    return False


def at_line(stmt, primal) -> str:
    """``line N`` of the primal, or ``helper, line N`` / ``helper, file.py line N`` of an inlined helper."""
    src = getattr(stmt, "s2s_src", None) or primal
    if src is primal:
        return f"line {stmt.lineno}"
    if src.filename == primal.filename:
        return f"{src.name}, line {stmt.lineno}"
    return f"{src.name}, {os.path.basename(src.filename)} line {stmt.lineno}"
