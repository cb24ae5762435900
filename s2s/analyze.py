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
import math
from dataclasses import dataclass

import numpy as np

from . import rules
from .astutil import copy_tree, names_in as _names_in, statements, walk
from .errors import CUSTOM_VJP_HINT, NoRule
from .source import is_distribution
from .normalize import Normalized
from .rules import generated_code
from .rules.registry import DYNAMIC, Rule

NONDIFF_BUILTINS = {"builtins.len", "builtins.int", "builtins.bool", "builtins.slice", "index"}
NONDIFF_ATTRS = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes", "strides"}
# Scalars whatever the rank of their argument (det and trace are not: they map over a stack).
FULL_REDUCTIONS = {f"{prefix}.{name}" for prefix in ("numpy", "ndarray")
                   for name in ("sum", "mean", "max", "min", "prod", "var", "std")} | {
    "scipy.special.logsumexp", "numpy.vdot"}
SCALAR_OPS = {"builtins.len", "builtins.float", "builtins.int", "builtins.bool"}


@dataclass
class Operation:
    """One differentiable operation: its rule and its arguments, by parameter name."""

    kind: str  # "rule" | "copy" | "subscript" | "unpack" | "tuple" | "float" | "constant"
    rule: Rule | None = None
    args: dict | None = None  # param name -> ast.expr (atoms, tuples of atoms, or constants)
    static: dict | None = None  # param name -> static value or DYNAMIC
    # Params whose partials are left out: identically zero together with another operation's
    # (the shift of a log-sum-exp, `invariance`).
    invariant: tuple = ()


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
    if op in ("custom", "unit"):  # a custom_vjp pair, a recursive helper's unit (`units`)
        return Operation(op, args={f"arg{i}": a for i, a in enumerate(value.args)})
    if op.startswith("ndarray.") and isinstance(value, ast.Attribute):
        if value.attr in NONDIFF_ATTRS:
            return Operation("constant")
        rule = rules.lookup(op)
        return _bind(rule, op, [value.value], [], constants) if rule else Operation("norule")
    if isinstance(value, ast.BinOp) and hasattr(value, "s2s_arg"):  # the sigmoid, written out
        return _bind(rules.lookup(op), op, [value.s2s_arg], [], constants)
    if isinstance(value, ast.BinOp):
        bound = _bind(rules.lookup(op), op, [value.left, value.right], [], constants)
        bound.invariant = getattr(value, "s2s_invariant", ())
        return bound
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
            rule = rules.lookup(op) or rules.lookup("numpy." + op[5:])
        else:
            rule = rules.lookup(op) or _constant_helper(op)
        if rule is None:
            return Operation("norule")
        return _bind(rule, op, args, keywords, constants)
    return Operation("constant")


def remembered_operation(value, constants, memo) -> Operation:
    """`operation`, kept in ``memo`` (id(value) -> (value, operation)) when there is one."""
    if memo is None:
        return operation(value, constants)
    hit = memo.get(id(value))
    if hit is None or hit[0] is not value:
        hit = memo[id(value)] = (value, operation(value, constants))
    return hit[1]


def _constant_helper(op):
    """The rule of a generated-code helper that computes no derivative (``lu_permutation``,
    which rules/scipy_linalg.py's lowerings call too)."""
    rule = generated_code.lookup(op) if op.startswith("s2s.helpers.") else None
    return rule if rule is not None and rule.nondifferentiable else None


def _bind(rule, op, args, keywords, constants) -> Operation:
    """The operation of a call to ``rule``; a constant where the result is not floating point:
    a nondifferentiable rule, or a cast to integers or booleans (``x.astype(int)``)."""
    if rule is None:
        return Operation("norule")
    if rule.nondifferentiable:
        return Operation("constant")
    try:
        bound = _bound(rule.signature, args, keywords)
    except TypeError as exc:
        raise ValueError(f"arguments do not match {rule.qualname}{rule.signature}: {exc}")
    arguments = {}
    static = {}
    for name, node in bound:
        if isinstance(node, ast.AST):
            arguments[name] = node
            static[name] = _static_value(node, constants)
        elif isinstance(node, tuple) and all(isinstance(n, ast.AST) for n in node):
            tup = ast.Tuple(list(node), ast.Load())
            if node:
                ast.copy_location(tup, node[0])
            arguments[name] = tup
            static[name] = _static_value(tup, constants)
        else:  # a default value
            arguments[name] = ast.Constant(node)
            static[name] = node
    if not _float_dtype(static.get("dtype")):
        return Operation("constant")
    return Operation("rule", rule, arguments, static)


class _Slot:
    """A stand-in argument: `_plan` binds these to learn where each parameter's value comes from."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key


_plans: dict = {}  # (id(signature), positional count, keyword names) -> (signature, plan)


def _bound(signature, args, keywords) -> list:
    """``signature.bind(*args, **keywords)`` with defaults applied, as (parameter, value)
    pairs in its order; the binding worked out once per signature and call pattern."""
    names = tuple(k.arg for k in keywords)
    key = (id(signature), len(args), names)
    hit = _plans.get(key)
    if hit is None or hit[0] is not signature:
        hit = _plans[key] = (signature, _plan(signature, len(args), names))
    values = {k.arg: k.value for k in keywords}
    out = []
    for param, kind, where in hit[1]:
        if kind == "arg":
            out.append((param, args[where]))
        elif kind == "kw":
            out.append((param, values[where]))
        elif kind == "args":  # *args
            out.append((param, tuple(args[i] for i in where)))
        elif kind == "kwargs":  # **kwargs
            out.append((param, {k: values[k] for k in where}))
        else:
            out.append((param, where))  # a default value
    return out


def _plan(signature, count, names) -> list:
    """(parameter, kind, where) for binding ``count`` positional and ``names`` keyword
    arguments to ``signature`` (raises `inspect.Signature.bind`'s TypeError)."""
    bound = signature.bind(*[_Slot(i) for i in range(count)], **{k: _Slot(k) for k in names})
    bound.apply_defaults()
    plan = []
    for param, value in bound.arguments.items():
        kind = signature.parameters[param].kind
        if isinstance(value, _Slot):
            plan.append((param, "arg" if isinstance(value.key, int) else "kw", value.key))
        elif kind is kind.VAR_POSITIONAL:
            plan.append((param, "args", tuple(v.key for v in value)))
        elif kind is kind.VAR_KEYWORD:
            plan.append((param, "kwargs", tuple(value)))
        else:
            plan.append((param, "default", value))
    return plan


def _float_dtype(dtype) -> bool:
    """False for a dtype known not to be floating point; True otherwise (None, unknown: run time)."""
    if dtype is None or dtype is DYNAMIC:
        return True
    try:
        return np.dtype(dtype).kind in "fc"
    except TypeError:
        return True


def _static_value(node, constants):
    if hasattr(node, "s2s_dtype"):  # float, np.float64 (see calls.CallLowering.dtype)
        return node.s2s_dtype
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
            if node is not None and p not in op.invariant:
                out[p] = _names(node)
        return out
    if op.kind in ("custom", "unit"):
        return {p: _names(n) for p, n in op.args.items()}
    return {"x": _names(op.args["x"])}


def _names(node) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [n for e in node.elts for n in _names(e)]
    return []


def assignments(body):
    """Every core-language assignment to a name, in any block (not ``x[i] = v``)."""
    for node in statements(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            yield node


def writes(body):
    """Every write into array elements, ``x[idx] = v`` ("setitem") or ``x[idx] += v``
    ("additem"), in any block."""
    for node in statements(ast.Module(body=body, type_ignores=[])):
        if getattr(node, "s2s_op", None) in ("setitem", "additem"):
            yield node


def activity(fn: Normalized, wrt, memo=None) -> set[str]:
    """Variables that depend on ``wrt`` and reach ``fn.result``. ``memo``: id(value) ->
    (value, its `operation`), used and filled (the caller's, while the values do not change)."""
    ops = [(a.targets[0].id, remembered_operation(a.value, fn.constants, memo), a)
           for a in assignments(fn.body)]
    flows = []
    for target, op, node in ops:
        sources = {n for names in differentiable_operands(op).values() for n in names}
        flows.append((target, _names_in(node.value) if op.kind == "norule" else sources, node))
    for node in writes(fn.body):  # x[idx] = v: the new x depends on v
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        flows.append((target.value.id, set(_names(node.value)), node))
    active = varied_and_useful([(t, s) for t, s, _ in flows], wrt, fn.results or [fn.result])
    refuse_constant_parameters(fn, flows, wrt, {id(node): op for _, op, node in ops})
    for target, op, node in ops:
        if op.kind == "norule" and target in active and _names_in(node.value) & active:
            raise _no_rule(fn, node)  # its derivative is needed, and unknown
    return active


def refuse_constant_parameters(fn: Normalized, flows, wrt, operations=None) -> None:
    """A value that depends on ``wrt`` and reaches the result through a parameter a rule does
    not differentiate (``np.pad(x, 1, constant_values=c)``) is refused, not taken as constant.
    ``flows``: ``(target, sources, node)`` as the activity analyses build them;
    ``operations``: the `operation` of each assignment's value, by id of the assignment,
    where the caller has just worked them out."""
    hidden = {}
    for _, _, node in flows:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            op = operations[id(node)] if operations and id(node) in operations else \
                operation(node.value, fn.constants)
            if op.kind == "rule" and _undifferentiated(op):
                hidden[id(node)] = (op, _undifferentiated(op))
    if not hidden:
        return
    more = [(t, s | {n for ns in hidden[id(node)][1].values() for n in ns}) if id(node) in hidden
            else (t, s) for t, s, node in flows]
    reach = varied_and_useful(more, wrt, fn.results or [fn.result])
    for target, _, node in flows:
        op, params = hidden.get(id(node), (None, {}))
        for param, names in params.items():
            if target in reach and names & reach:
                raise fn.src.error(NoRule, f"{op.rule.qualname} is not differentiated with respect "
                                   f"to its argument {param!r}, which depends on "
                                   f"{', '.join(sorted(wrt))} here", node.value,
                                   hint="pass a value that does not depend on them; or "
                                        + CUSTOM_VJP_HINT, stage="analyze")


def _undifferentiated(op: Operation) -> dict[str, set[str]]:
    """Parameter -> the names passed to it, for the parameters of ``op``'s rule that it does not
    differentiate (keyword arguments gathered by ``**kwargs`` included). An elementwise rule's
    are integer orders (``polygamma(n, x)``), never differentiable, so none are listed."""
    out = {}
    if op.rule.elementwise:
        return out
    for param, node in op.args.items():
        if param in op.rule.differentiable_params:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, dict):  # **kwargs
            out.update({k: set(_names(v)) for k, v in node.value.items() if isinstance(v, ast.AST)
                        and _names(v)})
        elif _names(node):
            out[param] = set(_names(node))
    return out


def varied_and_useful(flows, wrt, results) -> set[str]:
    """Names that depend on ``wrt`` and reach ``results``, over ``(target, sources)`` flows."""
    varied = set(wrt)
    changed = True
    while changed:
        changed = False
        for target, sources in flows:
            if target not in varied and sources & varied:
                varied.add(target)
                changed = True
    useful = {results} if isinstance(results, str) else set(results)
    changed = True
    while changed:
        changed = False
        for target, sources in flows:
            if target in useful and target in varied and not sources <= useful:
                useful |= sources
                changed = True
    return varied & useful


STATS_METHODS = {"logpdf", "pdf", "logpmf", "pmf", "cdf", "logcdf", "sf", "logsf"}


def _no_rule(fn: Normalized, node: ast.Assign):
    call = node.value
    name = call.s2s_op
    if getattr(call, "s2s_lowered", None) and call.s2s_lowered != name:
        name = f"{name} (which {call.s2s_lowered} is made of)"
    hint = CUSTOM_VJP_HINT
    if getattr(call, "s2s_called", None):  # a method of a value whose type s2s does not know
        name = f"{call.s2s_called} (a method of a value that is not an array)"
        if call.s2s_op.split(".")[-1] in STATS_METHODS:
            hint = ("for a frozen scipy.stats distribution, call the method on the distribution: "
                    "norm.logpdf(x, loc, scale), or norm(loc, scale).logpdf(x) in one expression; or "
                    + CUSTOM_VJP_HINT)
    if is_distribution(name):
        name = f"{name}(...) (a frozen distribution kept in a variable)"
        hint = (f"call the method in the same expression: {call.s2s_op.split('.')[-1]}(loc, scale).logpdf(x), "
                "or pass the parameters to the method: logpdf(x, loc, scale)")
    return fn.src.error(NoRule, f"no derivative rule for {name}", call, hint=hint, stage="analyze")


def scalar_names(fn: Normalized, known_scalars=(), known_shapes=None, shapes=None) -> set[str]:
    """Variables that always hold a Python (or 0-d) scalar (``shapes``: `array_shapes`, if known)."""
    if shapes is None:
        shapes = array_shapes(fn, {**{k: () for k in known_scalars}, **(known_shapes or {})})
    ranked = {n for n, v in shapes.items() if v == () or v == 0}
    return ranked | _scalar_names(fn, known_scalars)


def _scalar_names(fn: Normalized, known_scalars=()) -> set[str]:
    defs: dict[str, list[ast.expr]] = {}
    for a in assignments(fn.body):
        defs.setdefault(a.targets[0].id, []).append(a.value)
    loop_indices = {n.target.id for n in statements(ast.Module(body=fn.body, type_ignores=[]))
                    if isinstance(n, ast.For)}
    # A float argument that is assigned again is a scalar only if every value it gets is.
    scalars = (set(known_scalars) | loop_indices) - set(defs)
    unknown_params = set(fn.params) - set(known_scalars)  # an argument may be an array
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


# --- shapes and ranks -----------------------------------------------------------

REDUCTIONS = {"sum", "mean", "max", "min", "prod", "var", "std", "logsumexp"}
_UNSET = object()  # not computed yet (optimistic start of the fixpoint)
SHAPE_TUPLE = "shape-tuple"  # the value of x.shape: indexing it gives an int


def array_shapes(fn: Normalized, known=None, int_arrays=()) -> dict[str, tuple | int]:
    """What is known of each variable's shape on every path.

    A tuple is the exact shape, an int only the rank (``ndim``); names whose
    shape is unknown or differs between paths are absent. ``known`` gives the
    same for arguments: what ``s2s.grad`` saw on its first call (``()`` for a
    Python float), or the CLI's ``--shapes``. ``int_arrays`` names arguments known
    to be integer arrays, so indexing with them has a known result shape.
    """
    known = dict(known or {})
    index_arrays = {p: known[p] for p in int_arrays if isinstance(known.get(p), tuple)}
    defs: dict[str, list[ast.expr]] = {}
    for a in assignments(fn.body):
        defs.setdefault(a.targets[0].id, []).append(a.value)
    facts: dict[str, object] = {}
    for node in statements(ast.Module(body=fn.body, type_ignores=[])):
        if isinstance(node, ast.For) and node.target.id not in defs:
            facts[node.target.id] = ()
    for name, binding in fn.constants.items():  # module constants: numbers are scalars
        if isinstance(binding.value, (int, float)) and not isinstance(binding.value, bool):
            facts[name] = ()
        elif isinstance(binding.value, np.ndarray):
            facts[name] = binding.value.shape
    for p in fn.params:
        facts[p] = known.get(p) if p not in defs else _UNSET
    for name in defs:
        facts[name] = _UNSET
    ints: dict[str, object] = {  # names whose int (or tuple of ints) value the shapes fix
        name: b.value for name, b in fn.constants.items()  # module constants written as they are
        if type(b.value) is int or (type(b.value) is tuple and all(type(v) is int for v in b.value))}
    ops: dict[int, Operation | None] = {}  # id(value) -> its operation, worked out once here
    for _ in range(2 * len(defs) + 4):  # optimistic fixpoint over loop-carried names
        changed = False
        for name, values in defs.items():
            known_values = {_known_value(v, facts, ints) for v in values}
            if len(known_values) == 1 and None not in known_values and name not in fn.params:
                if ints.get(name) != next(iter(known_values)):
                    ints[name] = next(iter(known_values))
                    changed = True
            elif name in ints:  # no longer one known value on every path
                del ints[name]
                changed = True
            seen = [_shape(v, facts, fn.constants, ints, index_arrays, ops) for v in values]
            if name in fn.params:
                seen.append(known.get(name))
            new = _join_all(seen)
            if facts.get(name, _UNSET) is not new and facts.get(name) != new:
                facts[name] = new
                changed = True
        if not changed:
            break
    return {k: v for k, v in facts.items() if v is not None and v is not _UNSET and v != SHAPE_TUPLE}


def array_ranks(fn: Normalized, known=None) -> dict[str, int]:
    """``ndim`` of each variable where it is the same on every path."""
    return {k: len(v) if isinstance(v, tuple) else v for k, v in array_shapes(fn, known).items()}


def _join_all(values):
    values = [v for v in values if v is not _UNSET]
    if not values:
        return _UNSET
    first = values[0]
    if all(v == first for v in values):
        return first
    ranks = {_rank_of(v) for v in values}
    return ranks.pop() if len(ranks) == 1 and None not in ranks else None


def _rank_of(fact):
    if isinstance(fact, tuple):
        return len(fact)
    return fact if isinstance(fact, int) else None


def _atom(node, facts):
    if isinstance(node, ast.Constant):
        return () if isinstance(node.value, (int, float)) and not isinstance(node.value, bool) else None
    if isinstance(node, ast.Name):
        return facts.get(node.id)
    return None


CONSTRUCTORS = {"numpy.zeros", "numpy.ones", "numpy.empty", "numpy.full", "numpy.eye", "numpy.arange"}


def _known_value(value, facts, ints):
    """The int (or tuple of ints) ``value`` is sure to have, given the known shapes."""
    if isinstance(value, ast.Constant):
        return value.value if type(value.value) is int else None
    if isinstance(value, ast.Name):
        return ints.get(value.id)
    if isinstance(value, ast.Tuple):
        items = [_known_value(e, facts, ints) for e in value.elts]
        return tuple(items) if all(isinstance(i, int) for i in items) else None
    op = getattr(value, "s2s_op", None)
    if op == "ndarray.shape" and isinstance(value, ast.Attribute):
        shape = _atom(value.value, facts)
        return shape if isinstance(shape, tuple) else None
    if op == "builtins.len" and value.args:
        shape = _atom(value.args[0], facts)
        return shape[0] if isinstance(shape, tuple) and shape else None
    if op in ("subscript", "unpack"):
        base, index = _known_value(value.value, facts, ints), _known_value(value.slice, facts, ints)
        if isinstance(base, tuple) and isinstance(index, int) and -len(base) <= index < len(base):
            return base[index]
        return None
    if isinstance(value, (ast.BinOp, ast.UnaryOp)):
        parts = [_known_value(c, facts, ints) for c in ast.iter_child_nodes(value) if isinstance(c, ast.expr)]
        if all(isinstance(p, int) for p in parts):
            try:
                return eval(compile(ast.Expression(_with_values(value, ints)), "<shape>", "eval"))  # noqa: S307
            except (ArithmeticError, TypeError):
                return None
    return None


def _with_values(node, ints):
    class Sub(ast.NodeTransformer):
        def visit_Name(self, name):
            return ast.copy_location(ast.Constant(ints[name.id]), name)
    return ast.fix_missing_locations(Sub().visit(copy_tree(node)))


def _shape(value, facts, constants, ints, index_arrays, ops):
    """What is known of ``value``'s shape (``ops``: operations already worked out, by value)."""
    if isinstance(value, (ast.Name, ast.Constant)):
        return _atom(value, facts)
    op = getattr(value, "s2s_op", None)
    if op in SCALAR_OPS or (op or "").startswith("math."):
        return ()
    if op in ("ndarray.shape", "numpy.shape"):
        return SHAPE_TUPLE
    if op in ("ndarray.ndim", "ndarray.size"):
        return ()
    if op in CONSTRUCTORS and isinstance(value, ast.Call) and value.args:
        shape = _known_value(value.args[0], facts, ints)
        if op in ("numpy.eye", "numpy.arange") and (len(value.args) != 1 or value.keywords):
            return None  # eye(n, m), arange(start, stop): not worth the arithmetic
        if op == "numpy.eye":
            return (shape, shape) if isinstance(shape, int) else None
        shape = (shape,) if isinstance(shape, int) else shape
        return shape if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape) else None
    if op in ("numpy.zeros_like", "numpy.ones_like", "numpy.empty_like", "numpy.full_like",
              "numpy.copy", "numpy.array", "numpy.asarray") and isinstance(value, ast.Call):
        shape = _atom(value.args[0], facts) if value.args else None
        return shape if isinstance(shape, tuple) and shape != () else None  # (np.array(2.0) is 0-d)
    if op == "ndarray.copy" and isinstance(value, ast.Call) and not value.args:
        return _atom(value.func.value, facts)
    if op in ("ndarray.reshape", "numpy.reshape") and isinstance(value, ast.Call):
        return _reshaped(value, op, facts, ints)
    if op in ("subscript", "unpack"):
        if _atom(value.value, facts) == SHAPE_TUPLE:
            return () if _is_int_scalar(value.slice, facts) else None
        if op == "unpack":  # rows of an array (no shape is known for a function's tuple result)
            whole = _atom(value.value, facts)
            return whole[1:] if isinstance(whole, tuple) and whole else None
        return _subscript_shape(value, facts, ints, index_arrays or {})
    if id(value) not in ops:
        try:
            ops[id(value)] = operation(value, constants)
        except ValueError:
            ops[id(value)] = None
    operation_ = ops[id(value)]
    if operation_ is None or operation_.kind != "rule":
        return None
    rule, args, static = operation_.rule, operation_.args, operation_.static
    atoms = {p: _atom(n, facts) for p, n in args.items() if isinstance(n, (ast.Name, ast.Constant))
             and not (isinstance(n, ast.Constant) and n.value is None)}
    if _UNSET in atoms.values():
        return _UNSET
    name = rule.qualname.split(".")[-1]
    if rule.elementwise:
        return _broadcast(list(atoms.values()))
    if rule.qualname in ("numpy.matmul", "numpy.dot"):
        a, b = (atoms.get(p) for p in list(rule.signature.parameters)[:2])
        return _matmul(a, b, dot=rule.qualname == "numpy.dot")
    if rule.qualname == "s2s.helpers.odeint_solve":  # a state per time: (len(t), len(y0))
        y0, t = (_atom(n, facts) for n in args["inputs"].elts[:2])
        if _UNSET in (y0, t):
            return _UNSET
        return (t[0], y0[0]) if isinstance(y0, tuple) and isinstance(t, tuple) and len(y0) == len(t) == 1 else 2
    if name in REDUCTIONS and "a" in atoms:
        return _reduce(atoms["a"], static.get("axis"), static.get("keepdims", False))
    if rule.qualname == "ndarray.T" or (rule.qualname == "numpy.transpose" and static.get("axes") is None):
        a = atoms.get("a")
        return tuple(reversed(a)) if isinstance(a, tuple) else a
    if rule.qualname == "numpy.transpose" and isinstance(static.get("axes"), tuple):
        a, axes = atoms.get("a"), static["axes"]
        if isinstance(a, tuple) and sorted(axes) == list(range(len(a))):
            return tuple(a[i] for i in axes)
        return _rank_of(a)
    return None


def _broadcast(facts):
    if not facts or None in facts:
        return None
    if all(isinstance(f, tuple) for f in facts):
        try:
            return tuple(np.broadcast_shapes(*facts))
        except ValueError:
            return None
    return max(_rank_of(f) for f in facts)


def _matmul(a, b, dot=False):
    if a is None or b is None:
        return None
    if dot and (a == () or b == () or a == 0 or b == 0):
        return b if a in ((), 0) else a
    ra, rb = _rank_of(a), _rank_of(b)
    if ra is None or rb is None or ra == 0 or rb == 0 or (dot and (ra > 2 or rb > 2)):
        return None
    if not (isinstance(a, tuple) and isinstance(b, tuple)):
        return max(ra, rb) - (ra == 1) - (rb == 1)
    a2 = (1,) + a if ra == 1 else a
    b2 = b + (1,) if rb == 1 else b
    if a2[-1] != b2[-2]:
        return None
    try:
        batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    except ValueError:
        return None
    return batch + (a2[-2],) * (ra > 1) + (b2[-1],) * (rb > 1)


def _reshaped(call, op, facts, ints):
    """``x.reshape((m, n))`` / ``np.reshape(x, (m, -1))``: the new shape, where its sizes are
    known ints (a ``-1`` from the size of ``x``)."""
    if op == "ndarray.reshape":
        array, shape = call.func.value, (call.args[0] if len(call.args) == 1 else ast.Tuple(call.args))
    else:
        shape = call.args[1] if len(call.args) == 2 else next(
            (k.value for k in call.keywords if k.arg in ("shape", "newshape")), None)
        array = call.args[0] if call.args else None
    if shape is None or array is None or any(k.arg == "order" for k in call.keywords) or \
            (op == "numpy.reshape" and len(call.args) > 2):
        return None
    base, sizes = _atom(array, facts), _known_value(shape, facts, ints)
    if base is _UNSET:
        return _UNSET
    sizes = (sizes,) if isinstance(sizes, int) else sizes
    if not isinstance(sizes, tuple) or not all(isinstance(n, int) and n >= -1 for n in sizes) \
            or sizes.count(-1) > 1:
        return None
    if -1 in sizes:
        rest = math.prod(n for n in sizes if n != -1)
        if not isinstance(base, tuple) or rest == 0 or math.prod(base) % rest:
            return None
        sizes = tuple(math.prod(base) // rest if n == -1 else n for n in sizes)
    if isinstance(base, tuple) and math.prod(base) != math.prod(sizes):
        return None  # numpy raises: leave it to the run
    return sizes


def _reduce(a, axis, keepdims):
    if axis is None and keepdims is False:
        return ()  # a full reduction is a scalar, whatever the shape it reduces
    if a is None or axis is DYNAMIC or keepdims is DYNAMIC:
        return None
    r = _rank_of(a)
    if axis is None:
        return tuple(1 for _ in range(r)) if keepdims and isinstance(a, tuple) else (r if keepdims else ())
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(x, int) and -r <= x < r for x in axes):
        return None
    axes = {x % r for x in axes}
    if not isinstance(a, tuple):
        return r if keepdims else r - len(axes)
    return tuple((1 if i in axes else n) for i, n in enumerate(a) if keepdims or i not in axes)


def _subscript_shape(value, facts, ints, index_arrays):
    base = _atom(value.value, facts)
    if base is None or base is _UNSET:
        return base
    parts = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
    dummy_index = []
    exact = isinstance(base, tuple)
    consumed = added = 0
    advanced = False
    for part in parts:
        if isinstance(part, ast.Slice):
            bounds = [None if b is None else _known_value(b, facts, ints)
                      for b in (part.lower, part.upper, part.step)]
            given = [part.lower, part.upper, part.step]
            if all(g is None or isinstance(b, int) for g, b in zip(given, bounds)):
                dummy_index.append(slice(*bounds))
            else:
                exact = False
            consumed += 1
            added += 1
        elif isinstance(part, ast.Constant) and part.value is None:
            dummy_index.append(None)
            added += 1
        elif _is_int_scalar(part, facts):
            dummy_index.append(part.value if isinstance(part, ast.Constant) else 0)
            consumed += 1
        elif isinstance(part, ast.Name) and part.id in index_arrays:
            dummy_index.append(np.zeros(index_arrays[part.id], dtype=np.intp))
            consumed += 1
            advanced = True
        else:
            return None  # an index array of unknown dtype: a bool mask would select by value
    rank = _rank_of(base)
    if consumed > rank:
        return None
    if exact:
        try:
            return np.broadcast_to(np.empty(()), base)[tuple(dummy_index)].shape
        except (IndexError, TypeError, ValueError):
            return None if advanced else rank - consumed + added
    return None if advanced else rank - consumed + added


def _is_int_scalar(part, facts):
    if isinstance(part, ast.Constant):
        return type(part.value) is int
    if isinstance(part, ast.Name):
        return facts.get(part.id) == ()
    if isinstance(part, ast.BinOp):
        return _is_int_scalar(part.left, facts) and _is_int_scalar(part.right, facts)
    if isinstance(part, ast.UnaryOp):
        return _is_int_scalar(part.operand, facts)
    return False


def shape_roots(fn: Normalized, scalars) -> dict[str, str]:
    """Names whose shape is, on every path, that of an argument or unchanging value.

    ``t = np.sin(x) * 2.0`` has the shape of ``x``: a backward sweep that
    needs ``np.shape(t)`` can read ``np.shape(x)`` and need not keep ``t``.
    """
    defs: dict[str, list[ast.expr]] = {}
    for a in assignments(fn.body):
        defs.setdefault(a.targets[0].id, []).append(a.value)
    top = {s.targets[0].id for s in fn.body if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)}
    stable = {p for p in fn.params if p not in defs} | {n for n in top if len(defs[n]) == 1}
    roots: dict[str, str] = {}

    def root(name, depth=0):
        if name in roots:
            return roots[name]
        if depth > 50 or name not in defs or len(defs[name]) != 1 or name in fn.params:
            return name  # an argument that is also written holds two values
        value = defs[name][0]
        source = None
        if isinstance(value, ast.Name):
            source = value.id
        else:
            try:
                op = operation(value, fn.constants)
            except ValueError:
                return name
            if op.kind == "rule" and op.rule.elementwise:
                arrays = sorted({n.id for n in op.args.values() if isinstance(n, ast.Name)
                                 and n.id not in scalars})
                if len(arrays) == 1:
                    source = arrays[0]
        return root(source, depth + 1) if source else name

    for name in defs:
        r = root(name)
        if r != name and r in stable:
            roots[name] = r
    return roots
