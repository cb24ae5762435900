"""Stage 3: what each assignment reads, which values are active, which are scalars.

- `operation` says, for one core-language value, which rule applies and which
  atoms feed which of its differentiable parameters;
- `activity` finds the variables that depend on the inputs being
  differentiated AND reach the output (only those get adjoints);
- `scalar_names` finds variables that are always Python or 0-d scalars, so the
  engine knows where no broadcasting can happen.

Results are side tables (sets and dicts); the tree is not modified.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from . import rules
from .errors import NoRule
from .normalize import Normalized
from .rules.registry import DYNAMIC, Rule

NONDIFF_BUILTINS = {"builtins.len", "builtins.int", "builtins.bool"}
NONDIFF_ATTRS = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes", "strides"}
FULL_REDUCTIONS = {f"{prefix}.{name}" for prefix in ("numpy", "ndarray")
                   for name in ("sum", "mean", "max", "min", "prod", "var", "std")} | {
    "scipy.special.logsumexp", "numpy.linalg.det", "numpy.trace", "numpy.vdot"}
SCALAR_OPS = {"builtins.len", "builtins.float", "builtins.int", "builtins.bool"}


@dataclass
class Operation:
    """One differentiable operation: its rule and its arguments, by parameter name."""

    kind: str  # "rule" | "copy" | "subscript" | "unpack" | "tuple" | "float" | "constant"
    rule: Rule | None = None
    args: dict | None = None  # param name -> ast.expr (atoms, tuples of atoms, or constants)
    static: dict | None = None  # param name -> static value or DYNAMIC


def operation(value: ast.expr, constants=None) -> Operation:
    """Classify the value of a core-language assignment."""
    op = getattr(value, "s2s_op", None)
    if isinstance(value, ast.Name):
        return Operation("copy", args={"x": value})
    if op is None or op in NONDIFF_BUILTINS:
        return Operation("constant")
    if op == "builtins.float":
        return Operation("float", args={"x": value.args[0]})
    if op == "subscript":
        return Operation("subscript", args={"x": value.value})
    if op == "unpack":
        return Operation("unpack", args={"x": value.value})
    if op.startswith("ndarray.") and isinstance(value, ast.Attribute):
        if value.attr in NONDIFF_ATTRS:
            return Operation("constant")
        rule = rules.lookup(op)
        return _bind(rule, op, [value.value], [], constants) if rule else Operation("norule")
    if isinstance(value, ast.BinOp):
        return _bind(rules.lookup(op), op, [value.left, value.right], [], constants)
    if isinstance(value, ast.UnaryOp):
        return _bind(rules.lookup(op), op, [value.operand], [], constants)
    if isinstance(value, ast.Call):
        args, keywords = list(value.args), value.keywords
        if op.startswith("ndarray."):
            rule = rules.lookup(op)
            if rule is None and op[8:] in rules.METHODS:
                rule = rules.lookup(rules.METHODS[op[8:]])
            args = [value.func.value] + args
        elif op.startswith("math."):
            rule = rules.lookup("numpy." + op[5:]) or rules.lookup(op)
        else:
            rule = rules.lookup(op)
        if rule is None:
            return Operation("norule")
        return _bind(rule, op, args, keywords, constants)
    return Operation("constant")


def _bind(rule, op, args, keywords, constants) -> Operation:
    if rule is None:
        return Operation("norule")
    if rule.nondifferentiable:
        return Operation("constant")
    try:
        bound = rule.signature.bind(*args, **{k.arg: k.value for k in keywords})
    except TypeError as exc:
        raise ValueError(f"arguments do not match {rule.qualname}{rule.signature}: {exc}")
    bound.apply_defaults()
    arguments = {}
    static = {}
    for name, node in bound.arguments.items():
        if isinstance(node, ast.AST):
            arguments[name] = node
            static[name] = _static_value(node, constants)
        elif isinstance(node, tuple) and all(isinstance(n, ast.AST) for n in node):
            tup = ast.Tuple(list(node), ast.Load())
            arguments[name] = tup
            static[name] = _static_value(tup, constants)
        else:  # a default value
            arguments[name] = ast.Constant(node)
            static[name] = node
    return Operation("rule", rule, arguments, static)


def _static_value(node, constants):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [_static_value(e, constants) for e in node.elts]
        return DYNAMIC if any(v is DYNAMIC for v in values) else tuple(values)
    if isinstance(node, ast.Name) and constants and node.id in constants:
        value = constants[node.id].value
        if isinstance(value, (int, float, bool, tuple, type(None))):
            return value
    return DYNAMIC


def differentiable_operands(op: Operation) -> dict[str, list[str]]:
    """Param name -> the variable names that flow into it differentiably."""
    if op.kind in ("constant", "norule"):
        return {}
    if op.kind == "rule":
        out = {}
        for p in op.rule.differentiable_params:
            node = op.args.get(p)
            if node is not None:
                out[p] = _names(node)
        return out
    return {"x": _names(op.args["x"])}


def _names(node) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [n for e in node.elts for n in _names(e)]
    return []


def assignments(body):
    """Every core-language Assign, in any block."""
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.Assign):
            yield node


def activity(fn: Normalized, wrt) -> set[str]:
    """Variables that depend on ``wrt`` and reach ``fn.result``."""
    ops = [(a.targets[0].id, operation(a.value, fn.constants), a) for a in assignments(fn.body)]
    varied = set(wrt)
    changed = True
    while changed:
        changed = False
        for target, op, node in ops:
            if target in varied:
                continue
            sources = {n for names in differentiable_operands(op).values() for n in names}
            if op.kind == "norule":
                sources = {n for n in _names_in(node.value)}
            if sources & varied:
                if op.kind == "norule":
                    raise _no_rule(fn, node)
                varied.add(target)
                changed = True
    useful = {fn.result}
    changed = True
    while changed:
        changed = False
        for target, op, _ in ops:
            if target in useful and target in varied:
                for names in differentiable_operands(op).values():
                    for n in names:
                        if n not in useful:
                            useful.add(n)
                            changed = True
    return varied & useful


def _names_in(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _no_rule(fn: Normalized, node: ast.Assign):
    name = node.value.s2s_op
    return fn.src.error(
        NoRule, f"no derivative rule for {name}", node.value,
        hint="add one with s2s.rules.registry.vjp/jvp (see `s2s-diff --list-rules`), "
             "or wrap the argument in s2s.stop_gradient if it should be a constant",
        stage="analyze")


def scalar_names(fn: Normalized, known_scalars=()) -> set[str]:
    """Variables that always hold a Python (or 0-d) scalar."""
    defs: dict[str, list[ast.expr]] = {}
    for a in assignments(fn.body):
        defs.setdefault(a.targets[0].id, []).append(a.value)
    loop_indices = {n.target.id for n in ast.walk(ast.Module(body=fn.body, type_ignores=[]))
                    if isinstance(n, ast.For)}
    scalars = set(known_scalars) | (loop_indices - set(defs))
    unknown_params = set(fn.params) - scalars  # an argument may be an array
    candidates = set(defs) - unknown_params
    changed = True
    while changed:  # greatest fixpoint: assume scalar, drop what is not
        changed = False
        for name in list(candidates):
            if not all(_is_scalar(v, candidates | scalars) for v in defs[name]):
                candidates.discard(name)
                changed = True
    return scalars | candidates


def _is_scalar(value, scalars) -> bool:
    if isinstance(value, ast.Constant):
        return isinstance(value.value, (int, float)) and not isinstance(value.value, bool)
    if isinstance(value, ast.Name):
        return value.id in scalars
    op = getattr(value, "s2s_op", None)
    if op in SCALAR_OPS:
        return True
    if isinstance(value, ast.BinOp) and op != "numpy.matmul":
        return _is_scalar(value.left, scalars) and _is_scalar(value.right, scalars)
    if isinstance(value, ast.UnaryOp):
        return _is_scalar(value.operand, scalars)
    if isinstance(value, ast.Call) and op and op.startswith("math."):
        return True
    if isinstance(value, ast.Call) and op in FULL_REDUCTIONS:
        # np.sum(x) with no axis (and no keepdims) is a scalar.
        keywords = {k.arg for k in value.keywords}
        positional = len(value.args) + (1 if op.startswith("ndarray.") else 0)
        return not ({"axis", "keepdims"} & keywords) and positional <= 1
    return False
