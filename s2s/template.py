"""Rule templates to AST: substitute names, then fold what is trivially constant."""
from __future__ import annotations

import ast
import functools
import math

from .astutil import Transformer, copy_tree, walk
from .rules import helpers as helper_module

HELPERS = {name for name in vars(helper_module) if not name.startswith("_") and callable(
    getattr(helper_module, name))}


@functools.lru_cache(maxsize=None)
def _parse(template: str) -> ast.expr:
    return ast.parse(template, mode="eval").body


@functools.lru_cache(maxsize=None)
def template_names(template: str) -> frozenset:
    """Every name the template reads."""
    return frozenset(n.id for n in walk(_parse(template)) if isinstance(n, ast.Name))


def substitute(template: str, names: dict, helpers_used: set | None = None) -> ast.expr:
    """The template's AST with each name in ``names`` replaced by a copy of its node."""
    return _instantiate(_parse(template), names, helpers_used)


def _instantiate(node, names, helpers_used):
    """A copy of ``node`` (a template's cached parse, never modified) with the names
    substituted: what ``copy.deepcopy`` then a substituting transformer make, in one pass."""
    if isinstance(node, ast.Name):
        if node.id in names:
            return copy_tree(names[node.id])
        if helpers_used is not None and node.id in HELPERS:
            helpers_used.add(node.id)
    new = node.__class__.__new__(node.__class__)
    for key, value in node.__dict__.items():  # fields and source positions
        if isinstance(value, ast.AST):
            value = _instantiate(value, names, helpers_used)
        elif isinstance(value, list):
            value = [_instantiate(v, names, helpers_used) if isinstance(v, ast.AST) else v for v in value]
        new.__dict__[key] = value
    return new


def _num(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def _power_of_two(value) -> bool:
    m = abs(float(value))
    return m > 0 and m == 2.0 ** round(math.log2(m))


def _float(node) -> bool:
    """Is ``node`` surely a float: a float number or a true division at its top?"""
    return isinstance(node, ast.Constant) and type(node.value) is float or \
        isinstance(node, ast.BinOp) and (isinstance(node.op, ast.Div) or _float(node.left) or _float(node.right))


class _Simplify(Transformer):
    """Fold ``x * 1``, ``x + 0``, ``x ** 1``, ``--x``, ``2 - 1`` and the like."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        a, b = _num(node.left), _num(node.right)
        op = type(node.op)
        if a is not None and b is not None and op in (ast.Add, ast.Sub, ast.Mult):
            value = {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}[op]
            return ast.copy_location(ast.Constant(value), node)
        if a is not None and b and op is ast.Div and max(abs(a), abs(b)) < 2 ** 53 and len(repr(a / b)) < 8:
            return ast.copy_location(ast.Constant(a / b), node)  # as numpy divides them (0.0005, not 0.333...)
        if op is ast.Mult and b is not None and isinstance(node.left, ast.BinOp) and \
                isinstance(node.left.op, ast.Mult) and _num(node.left.right) is not None and \
                (_power_of_two(b) or _power_of_two(node.left.right.value)) and _float(node.left.left):
            # (x * 0.5) * 2 is x * 1.0 exactly (a power of two only moves the exponent)
            return self.visit(ast.copy_location(ast.BinOp(node.left.left, ast.Mult(), ast.Constant(
                node.left.right.value * b)), node))
        if op is ast.Mult:
            if a == 1:
                return node.right
            if b == 1:
                return node.left
            if a == -1:
                return self.visit(ast.UnaryOp(ast.USub(), node.right))
            if b == -1:
                return self.visit(ast.UnaryOp(ast.USub(), node.left))
            negated = node.right if a is not None else node.left if b is not None else None
            if isinstance(negated, ast.UnaryOp) and isinstance(negated.op, ast.USub):  # 2 * -w: -2 * w
                return ast.copy_location(ast.BinOp(ast.Constant(-(a if a is not None else b)), ast.Mult(),
                                                   negated.operand), node)
        if op in (ast.Add,) and a == 0:
            return node.right
        if op in (ast.Add, ast.Sub) and b == 0:
            return node.left
        if op is ast.Div and b == 1:
            return node.left
        if op is ast.Pow and b == 1:
            return node.left
        if op is ast.Sub and isinstance(node.right, ast.UnaryOp) and isinstance(node.right.op, ast.USub):
            return ast.BinOp(node.left, ast.Add(), node.right.operand)
        if op is ast.Add and isinstance(node.right, ast.UnaryOp) and isinstance(node.right.op, ast.USub):
            return ast.BinOp(node.left, ast.Sub(), node.right.operand)
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.USub):
            inner = node.operand
            if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.USub):
                return inner.operand
            if _num(inner) is not None:
                return ast.copy_location(ast.Constant(-inner.value), node)
        return node

    def visit_Call(self, node):
        """``np.sum(-g, ...)`` -> ``-np.sum(g, ...)``: negate the small side (one pass fewer)."""
        self.generic_visit(node)
        if ast.unparse(node.func) == "np.sum" and len(node.args) == 1 and \
                isinstance(node.args[0], ast.UnaryOp) and isinstance(node.args[0].op, ast.USub):
            node.args[0] = node.args[0].operand
            return ast.copy_location(ast.UnaryOp(ast.USub(), node), node)
        return node


def simplify(expr: ast.expr) -> ast.expr:
    return _Simplify().visit(expr)


def is_basic_index(index: ast.expr, scalars=()) -> bool:
    """Ints, slices, None and Ellipsis only: no element can be selected twice."""
    if isinstance(index, ast.Tuple):
        return all(is_basic_index(e, scalars) for e in index.elts)
    if isinstance(index, ast.Slice):
        return True
    if isinstance(index, ast.Constant):
        return index.value is None or index.value is Ellipsis or type(index.value) is int
    if isinstance(index, ast.Name):
        return index.id in scalars
    if isinstance(index, ast.BinOp):
        return is_basic_index(index.left, scalars) and is_basic_index(index.right, scalars)
    if isinstance(index, ast.UnaryOp):
        return is_basic_index(index.operand, scalars)
    return False
