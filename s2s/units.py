"""Derivative units: a recursive helper differentiated once, as functions of its own.

Inlining cannot follow recursion. A user helper that calls itself (directly or
through other helpers) stays a call in the core language (``t = det(m)``, tagged
"unit"; in reverse mode ``pair = det_fwd(m)``, tagged "custom"), and the generated
module gets, after its main function:

- reverse mode, the ``custom_vjp`` protocol (`s2s.custom`): ``det_fwd(A)`` runs the
  forward sweep and returns ``(value, residuals)``, the residuals being what the
  backward sweep reads of it (stacks of saved values included);
  ``det_bwd(residuals, g)`` returns the adjoint of every argument, as a tuple;
- forward mode: ``jvp_det(A, dA)`` returns ``(value, tangent)``, for the arguments
  active at the call; ``det(A)``, the helper lowered, where none is.

The recursive calls inside these units call the units themselves; second
derivatives are forward mode over ``det_fwd`` and ``det_bwd`` (their residual
lists travel with their tangents). A helper that writes into its arguments,
takes or returns containers, or is passed functions is refused.

While a module is generated, each unit is named by a placeholder
(``s2s_unit_<n>``); `complete` generates every unit the module's functions
call, transitively, and then gives each its final name.
"""
from __future__ import annotations

import ast
import contextlib
import re
from dataclasses import dataclass

from . import alias
from .astutil import walk
from .errors import UnsupportedSyntax
from .pytree import Static
from .source import HELPER_NAMES, Binding, FunctionSource, param_names

PLACEHOLDER = re.compile(r"\bs2s_unit_(\d+)\b")


@dataclass(frozen=True)
class Unit:
    """One function of a module's units: ``kind`` is "primal", "vjp" or "jvp"."""

    src: FunctionSource
    kind: str
    positions: tuple = ()  # the arguments differentiated (vjp, jvp)
    mutation: bool = False  # normalized with the in-place statements of generated code
    inner: object = None  # a derivative called inside a differentiated function (`nested.Inner`)

    def __deepcopy__(self, memo):  # copies of the call node share it (it holds whole sources)
        return self


_GENERATIONS: list[dict] = []  # one per module being generated (nested: a derivative inside)


@contextlib.contextmanager
def generation():
    """The units of one generated module (placeholders are numbered per module)."""
    _GENERATIONS.append({"units": [], "index": {}, "recursive": {}, "made": {}, "sources": {}})
    try:
        yield
    finally:
        _GENERATIONS.pop()


def current() -> dict:
    """The tables of the module being generated (`nested` keeps what it made there)."""
    if not _GENERATIONS:
        raise RuntimeError("units are made while a module is generated (units.generation)")
    return _GENERATIONS[-1]


def placeholder(src: FunctionSource, kind: str, positions=(), mutation=False, inner=None) -> str:
    """The placeholder name of a unit while its module is generated."""
    table = current()
    key = (_key(src), kind, tuple(positions), mutation)
    if key not in table["index"]:
        table["index"][key] = len(table["units"])
        table["units"].append(Unit(src, kind, tuple(positions), mutation, inner))
    return f"s2s_unit_{table['index'][key]}"


def unit_of(name: str) -> Unit:
    return current()["units"][int(PLACEHOLDER.fullmatch(name).group(1))]


def _key(src: FunctionSource):
    return (src.filename, src.name, src.node.lineno)


# --- which helpers are units -----------------------------------------------------------

def is_recursive(callee: FunctionSource) -> bool:
    """Does ``callee`` call itself, directly or through other user functions?"""
    key = _key(callee)
    known = current()["recursive"] if _GENERATIONS else {}
    if key in known:
        return known[key]
    found = False
    if not callee.enclosing and callee.definer is None:  # nested defs: never units
        from .provenance import callees, dependencies
        found = any(_key(fs) == key for c in callees(callee) for fs in dependencies(c))
    known[key] = found
    return found


def unit_call(norm, callee: FunctionSource, expr: ast.Call, out, inner=None) -> ast.expr:
    """The normalizer's ``det(m)`` for a recursive helper: one call on atoms, tagged "unit"
    (``inner``: ``callee`` is a derivative made by s2s, see `nested`)."""
    from .calls import tag
    args = callee.node.args
    if args.vararg or args.kwarg:
        raise norm.error(f"{callee.name} is recursive and takes *args or **kwargs: its derivative "
                         "unit takes named parameters", expr, hint="name each parameter")
    params = param_names(callee.node)
    given = norm.bind_arguments(callee, params, expr)
    defaults = norm.helper_defaults(callee, params)
    atoms = []
    for p in params:
        node = given.get(p)
        if node is not None and norm.function_value(node) is not None or \
                node is None and isinstance(defaults.get(p), Binding):
            raise norm.error(f"{callee.name} is recursive and is given a function ({p!r}): "
                             "s2s does not differentiate that", node,
                             hint="call the function inside the helper by its own name")
        if node is None and p not in defaults:
            raise norm.error(f"{callee.name}() is missing argument {p!r}", expr)
        value = norm.value(node, out) if node is not None else defaults[p]
        if isinstance(value, Static):
            raise norm.error(f"{callee.name} is recursive and is given a container ({p!r}): "
                             "its derivative unit takes arrays and numbers", node or expr,
                             hint="pass an array (np.stack the items), or index into it inside")
        atoms.append(norm.atom_of(value, expr, out))
    if not norm.allow_mutation and inner is None:  # reverse mode: the custom_vjp protocol
        return norm.vjp_pair(placeholder(callee, "fwd"), placeholder(callee, "bwd"), atoms, expr, out)
    name = placeholder(callee, "primal", mutation=norm.allow_mutation or inner is not None,
                       inner=inner)
    node = tag(ast.Call(ast.Name(name, ast.Load()), atoms, []), "unit", expr)
    node.s2s_unit = unit_of(name)
    node.s2s_called = callee.name
    return node


# --- the units' functions ------------------------------------------------------------

def call_name(value: ast.Call, kind: str, positions) -> str:
    """The placeholder of the ``kind`` unit of the helper that ``value`` (a "unit" call) calls."""
    unit = value.s2s_unit
    return placeholder(unit.src, kind, positions, unit.mutation, unit.inner)


def returns_pair(value: ast.Call) -> bool:
    """Does this "unit" call return ``(value, residuals)`` (a generated ``det_fwd``, read back)?"""
    returns = [n for n in walk(value.s2s_unit.src.node) if isinstance(n, ast.Return)]
    return bool(returns) and all(isinstance(r.value, ast.Tuple) and len(r.value.elts) == 2 and
                                 isinstance(r.value.elts[1], ast.Tuple) for r in returns)


def returns_tuple(value: ast.Call) -> bool:
    """Does this "unit" call return a tuple on every path (a ``det_bwd``'s adjoints)?"""
    returns = [n for n in walk(value.s2s_unit.src.node) if isinstance(n, ast.Return)]
    return bool(returns) and all(isinstance(r.value, ast.Tuple) for r in returns)


def complete(functions: list[str], main, target: str):
    """Generate every unit ``functions`` call (transitively) and name them all.

    ``main`` is the main function's `Normalized`: the units' module constants and
    imports are added to its own. Returns (function texts, helpers the units use).
    """
    from . import derive, forward
    done: dict[str, str] = {}
    helpers: set[str] = set()
    queue = [n for text in functions for n in _placeholders(text)]
    while queue:
        name = queue.pop(0)
        if name in done:
            continue
        unit = unit_of(name)
        if target == "numba":
            raise unit.src.error(UnsupportedSyntax, f"{unit.src.name} is recursive: its derivative "
                                 f"units are not made for the {target} target", unit.src.node,
                                 hint="differentiate with the numpy target", stage="normalize")
        if unit.kind == "vjp":  # (of an inner derivative: recursive helpers use fwd/bwd)
            from . import nested
            made, fn, used = {name: nested.vjp_function(unit, name, lambda src, positions: placeholder(
                src, "jvp", positions, True, unit.inner))}, None, set()
        elif unit.kind in ("fwd", "bwd"):
            pair = [placeholder(unit.src, "fwd"), placeholder(unit.src, "bwd")]
            fwd, bwd, fn, used = derive.pair_function(unit.src, pair, target)
            made = dict(zip(pair, (fwd, bwd)))
        elif unit.kind == "primal":
            text, fn, used = forward.primal_function(unit.src, name, unit.mutation)
            made = {name: text}
        else:
            text, fn, used = forward.forward_function(unit.src, _wrt(unit), name, unit.mutation)
            made = {name: text}
        if fn is not None and unit.inner is None and not alias.generated(fn):
            _refuse_writes(fn)  # (generated code copies what it does not own before writing)
        if fn is not None and fn.result_tree is not None and unit.inner is None and \
                not alias.generated(fn):  # (a generated det_fwd returns its residuals too)
            raise fn.src.error(UnsupportedSyntax, f"{fn.src.name} is recursive and returns a "
                               "container: its derivative units return one array or number",
                               fn.src.node, hint="return one value (np.stack the items)",
                               stage="normalize")
        if fn is not None:
            _merge(main, fn)
        done.update(made)
        helpers |= used
        queue += [n for text in made.values() for n in _placeholders(text) if n not in done]
    if not done:
        return functions, helpers
    texts = functions + list(done.values())
    names = _final_names(list(done), texts, main)
    replace = lambda m: names.get(m.group(0), m.group(0))  # noqa: E731
    return [PLACEHOLDER.sub(replace, t) for t in texts], helpers


def _wrt(unit: Unit) -> list[str]:
    params = param_names(unit.src.node)
    return [params[i] for i in unit.positions]


def _placeholders(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(0) for m in PLACEHOLDER.finditer(text)))


def _final_names(placeholders, texts, main) -> dict[str, str]:
    """``det``, ``vjp_det``, ``jvp_det``: free in the whole module."""
    from .naming import Namer
    taken = set(main.constants) | HELPER_NAMES
    for text in texts:  # the names the code uses (not its comments)
        for node in walk(ast.parse(text)):
            taken |= {v for v in (getattr(node, "id", None), getattr(node, "arg", None),
                                  getattr(node, "name", None)) if isinstance(v, str)}
    namer = Namer(taken)
    out = {}
    for p in placeholders:
        unit = unit_of(p)
        base = unit.src.name if unit.kind == "primal" else f"{unit.src.name}_{unit.kind}" \
            if unit.kind in ("fwd", "bwd") else f"{unit.kind}_{unit.src.name}"
        out[p] = namer.fresh(base)
    return out


def _merge(main, fn) -> None:
    """A unit's module constants and imports, taken over by the module's main function."""
    for name, binding in fn.constants.items():
        mine = main.constants.get(name)
        if mine is not None and mine.value is not binding.value:
            raise fn.src.error(UnsupportedSyntax, f"{fn.src.name} reads the global {name!r}, "
                               "and another function of this derivative reads another value "
                               "of that name", fn.src.node, hint="give one of them another name",
                               stage="normalize")
        main.constants[name] = binding
    main.imports |= fn.imports


def _refuse_writes(fn) -> None:
    """A unit must not write into its arguments: its callers' arrays would change."""
    params = set(fn.params)
    for stmt in walk(ast.Module(body=fn.body, type_ignores=[])):
        if not isinstance(stmt, ast.stmt) or getattr(stmt, "s2s_op", None) in ("append",):
            continue
        name = alias.written_name(stmt)
        if name is None:
            continue
        shares = getattr(stmt, "s2s_shares", None) or {name}
        if name in params or shares & params:
            raise fn.src.error(UnsupportedSyntax, f"{fn.src.name} is recursive and writes into "
                               f"its argument {name!r}: its derivative unit would change the "
                               "caller's array", stmt, hint=f"write into a copy: "
                               f"{name} = np.copy({name})", stage="normalize")
