"""Stage 4 (forward mode): a tangent statement beside each primal statement.

After `forward` runs, every core-language statement is followed by the
statement that carries its tangent (the tangent of ``x`` is ``dx``, clashes
resolved by the function's Namer). Loops and branches are kept as they are
and nothing is stored. Tangents are symbolic zeros until a value depends on
the inputs: those get no code at all. Where control flow joins, a tangent
that only one path defines is zero-filled on the other paths (``dy =
np.zeros_like(y)``), and a tangent that a loop iteration defines for the next
one is zero-initialized before the loop.

In-place statements (``x[i] = v``, ``x[i] += v``, ``np.add.at``,
``stack.append(v)``, ``stack.pop()``), which generated gradients use, get
in-place tangents; a tangent is copied before its first in-place update when
it may share memory with another value (or be a read-only broadcast view).

`forward_module` runs the whole pipeline and renders ``jvp_<f>(params...,
d<param>...)``, which returns ``(value, tangent)``.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import inspect
from dataclasses import dataclass, field

import numpy as np

from . import alias, analyze, derive, emit, forward_optimize, ode, targets, units
from .alias import VIEWS
from .fresh import own_gradients
from .errors import CUSTOM_VJP_HINT, NoRule, S2SError, UnsupportedSyntax, called, no_derivative_in
from .astutil import assign as _assign, at as _at, call as _call, copy_tree, walk
from .naming import Namer, adjoint_base
from .normalize import Normalized, normalize
from .rules import generated_code
from .source import FunctionSource, comments, param_names, summary
from .template import simplify, substitute, template_names

MUTATIONS = ("setitem", "additem", "append", "add_at")


@dataclass
class ForwardResult:
    """Primal and tangent statements, interleaved, ready to render."""

    fn: Normalized
    wrt: list[str]
    tangent_params: list[str]  # the tangent parameter of each wrt
    statements: list[ast.stmt]
    result_tangent: str | None  # None: the output does not depend on wrt
    helpers: set[str] = field(default_factory=set)
    tangents: dict[str, str] = field(default_factory=dict)  # variable -> its tangent's name
    scalars: set[str] = field(default_factory=set)  # variables that always hold a scalar
    result_tangents: dict[str, str] = field(default_factory=dict)  # output leaf -> its tangent


def forward(fn: Normalized, wrt: list[str], known_scalars=(), known_shapes=None) -> ForwardResult:
    """Tangent code for d fn.result along the tangents of the parameters ``wrt``.

    ``known_shapes`` (parameter -> shape), like ``known_scalars``, only removes
    ``np.broadcast_to`` where shapes are known to match.
    """
    alias.resolve(fn, known_scalars, known_shapes)
    result = _Forward(fn, wrt, known_scalars, known_shapes).run()
    returned = list(fn.results or [fn.result]) + list(result.result_tangents.values())
    result.statements = forward_optimize.optimize(result.statements, returned, result.tangents)
    return result


def operation(value, constants=None) -> analyze.Operation:
    """`analyze.operation`, with the rules of the helpers that generated code calls."""
    op = analyze.operation(value, constants)
    qualname = getattr(value, "s2s_op", None) or ""
    rule = generated_code.lookup(qualname)
    if op.kind != "norule" or rule is None:
        return op
    if rule.nondifferentiable:
        return analyze.Operation("constant")
    return analyze._bind(rule, qualname, list(value.args), value.keywords, constants)


def _without_mutations(fn: Normalized) -> Normalized:
    """``fn`` without its in-place statements, for analyses of kinds and shapes (which they keep)."""
    def plain(stmts):
        out = []
        for stmt in stmts:
            if getattr(stmt, "s2s_op", None) in MUTATIONS:
                continue
            if isinstance(stmt, (ast.If, ast.For, ast.While)):
                stmt = copy.copy(stmt)
                stmt.body = plain(stmt.body) or [ast.Pass()]
                if isinstance(stmt, ast.If):
                    stmt.orelse = plain(stmt.orelse)
            out.append(stmt)
        return out
    return dataclasses.replace(fn, body=plain(fn.body))


# --- activity with in-place statements --------------------------------------------

def _flows(fn: Normalized):
    """(target, sources, node) for each way a value flows into a variable."""
    for node in walk(ast.Module(body=fn.body, type_ignores=[])):
        kind = getattr(node, "s2s_op", None)
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
            vkind = getattr(value, "s2s_op", None)
            if vkind == "pop":
                yield target, _names(value.func.value), node
            elif vkind == "list":
                continue
            elif isinstance(value, (ast.Tuple, ast.List)):
                yield target, _names(value), node
            else:
                op = operation(value, fn.constants)
                if op.kind == "norule":
                    yield target, _names(value), node
                else:
                    yield target, {n for ns in analyze.differentiable_operands(op).values() for n in ns}, node
        elif kind in ("setitem", "additem"):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            yield target.value.id, _names(node.value), node
        elif kind == "append":
            yield _base(node.value.func.value), _names(node.value.args[0]), node
        elif kind == "add_at":
            call = node.value
            yield _base(call.args[0]), _names(call.args[2]) if len(call.args) > 2 else set(), node


def _aliases(fn: Normalized):
    """(copy, original, node) for each ``y = x`` and ``y = x[i]``: values that may share memory."""
    for node in walk(ast.Module(body=fn.body, type_ignores=[])):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Name):
                yield node.targets[0].id, value.id, node
            elif getattr(value, "s2s_op", None) == "subscript" and isinstance(value.value, ast.Name):
                yield node.targets[0].id, value.value.id, node


def alias_family(fn: Normalized) -> set[str]:
    """Variables updated in place, and those that may share memory with one of them."""
    family = {target for target, _, node in _flows(fn) if getattr(node, "s2s_op", None) in MUTATIONS
              and getattr(node, "s2s_op", None) != "append"}
    pairs = [(a, b) for a, b, _ in _aliases(fn)]
    changed = True
    while changed:
        changed = False
        for a, b in pairs:
            if (a in family) != (b in family):
                family |= {a, b}
                changed = True
    return family


def tangent_activity(fn: Normalized, wrt) -> set[str]:
    """Variables that depend on ``wrt`` and reach ``fn.result``, following in-place statements.

    A write into ``y`` where ``y = x`` (or a view ``y = x[i]``) changes ``x`` too.
    """
    flows = list(_flows(fn))
    family = alias_family(fn)
    # a write through an alias of a module constant is refused (`alias`): no flow back into it
    flows += [(b, {a}, node) for a, b, node in _aliases(fn) if a in family and b not in fn.constants]
    active = analyze.varied_and_useful([(t, s) for t, s, _ in flows], wrt, fn.results or [fn.result])
    analyze.refuse_constant_parameters(fn, flows, wrt)
    for target, sources, node in flows:
        if target in active and sources & active and isinstance(node, ast.Assign) and \
                isinstance(node.targets[0], ast.Name) and getattr(node.value, "s2s_op", None) not in (
                "pop", "list") and not isinstance(node.value, (ast.Tuple, ast.List)) and \
                operation(node.value, fn.constants).kind == "norule":
            raise analyze._no_rule(fn, node)
    return active


# --- the transform ------------------------------------------------------------------

@dataclass
class _State:
    """What holds at one point of the generated code.

    ``owned`` maps each variable whose tangent is defined (not a symbolic zero)
    to whether that tangent is a buffer of our own, safe to update in place;
    ``defined`` holds the variables the primal may have assigned by then,
    ``scalar`` those that hold a Python scalar there (their zero tangent is 0.0),
    ``views`` maps each variable that may hold a view made by a `VIEWS`
    function to the array it may view, and ``bound`` holds the variables the primal
    has surely assigned (on every path) by then.
    """

    owned: dict[str, bool]
    defined: set[str]
    scalar: set[str] = field(default_factory=set)  # variables holding a Python scalar here
    views: dict[str, set] = field(default_factory=dict)
    bound: set[str] = field(default_factory=set)

    def copy(self) -> "_State":
        return _State(dict(self.owned), set(self.defined), set(self.scalar),
                      {k: set(v) for k, v in self.views.items()}, set(self.bound))

    def add_views(self, pairs) -> None:
        for target, source in pairs:
            self.views.setdefault(target, set()).add(source)

    def __contains__(self, var) -> bool:
        return var in self.owned


class _Forward:
    def __init__(self, fn: Normalized, wrt, known_scalars, known_shapes=None):
        self.fn = fn
        self.wrt = list(wrt)
        self.namer = fn.namer
        self.active = tangent_activity(fn, wrt)
        self.family = alias_family(fn)
        self.written = {target for target, _, node in _flows(fn)  # arrays written in place
                        if getattr(node, "s2s_op", None) in MUTATIONS and node.s2s_op != "append"}
        plain = _without_mutations(fn)
        self.scalars = analyze.scalar_names(plain, known_scalars, known_shapes)
        known = {**{s: () for s in known_scalars}, **(known_shapes or {})}
        self.shapes = analyze.array_shapes(plain, known) if known else {}
        self.tangents: dict[str, str] = {}
        self.helpers: set[str] = set()
        self.exits: list[list] = []  # per enclosing loop: (state, break node) at each break
        self.copied: list[set] = []  # per enclosing loop: tangents its body copies to own them
        self.pairs: set[str] = set()  # values (value, residuals) of a unit's det_fwd (see `units`)
        # Names assigned a tuple (or list) of arrays: a unit's det_bwd adjoints, a helper's
        # (`unstack`, `split_like`), a library function's outputs; their tangents are tuples too.
        self.tuples: set[str] = set()
        self.arrays: set[str] = set()  # names assigned anything else
        # Lists of tangents that hold only buffers of our own: a tangent popped from one is the
        # very buffer appended, as the popped value is (a write into it must not copy it).
        self.own_stacks: set[str] = set()  # made empty here (`saved = []`)
        self.mixed_stacks: set[str] = set()  # made otherwise, or given a tangent not ours
        self.popped_owned: set[str] = set()
        self.unbound_zeros: set[str] = set()  # zero tangents made where the primal may be unbound

    def tan(self, name: str) -> str:
        if name not in self.tangents:
            self.tangents[name] = self.namer.fresh(adjoint_base(name))
        return self.tangents[name]

    def error(self, message, node, cls=S2SError, hint=None):
        return self.fn.src.error(cls, message, node, hint=hint, stage="forward")

    def run(self) -> ForwardResult:
        params = [self.tan(w) for w in self.wrt]
        state = _State({w: False for w in self.wrt}, set(self.fn.params),  # callers' arrays: not ours
                       {p for p in self.fn.params if p in self.scalars}, bound=set(self.fn.params))
        body, state = self.block(self.fn.body, state)
        # A value assigned on some paths only (an early return's result inside a loop) whose
        # zero tangent is made where it may not be assigned yet: None until then (F5).
        body = [_at(ast.Assign([ast.Name(v, ast.Store())], ast.Constant(None)), self.fn.src.node)
                for v in sorted(self.unbound_zeros)] + body
        result = self.fn.result
        tangent = self.tan(result) if state is not None and result in state else None
        tangents = {r: self.tan(r) for r in self.fn.results or [result] if state is not None and r in state}
        return ForwardResult(self.fn, self.wrt, params, body, tangent, self.helpers, self.tangents,
                             self.scalars, tangents)

    # -- statements ----------------------------------------------------------------

    def block(self, stmts, state):
        """Statements with their tangents; the state after them (None: a ``break`` was hit)."""
        out = []
        for stmt in stmts:
            if state is None:
                break
            code, state = self.statement(stmt, state)
            out += code
        return out, state

    def statement(self, stmt, state: _State):
        kind = getattr(stmt, "s2s_op", None)
        if kind in MUTATIONS:
            return self.mutation(stmt, kind, state.copy())
        if isinstance(stmt, ast.Assign):
            return self.assign(stmt, state.copy())
        if isinstance(stmt, ast.If):
            return self.branch(stmt, state)
        if isinstance(stmt, (ast.For, ast.While)):
            return self.loop(stmt, state)
        if isinstance(stmt, ast.Break):
            node = _at(ast.Break(), stmt)
            if self.exits:  # a copy: the join after the branch must not change what held here
                self.exits[-1].append((state.copy(), node))
            return [node], None
        if isinstance(stmt, (ast.Pass, ast.Assert, ast.Raise, ast.Expr)):  # (print, logging)
            return [copy_tree(stmt)], state
        raise self.error(f"{type(stmt).__name__} statements are not supported in forward mode",
                         stmt, UnsupportedSyntax)

    def assign(self, stmt, state: _State):
        target = stmt.targets[0].id
        if getattr(stmt.value, "s2s_op", None) == "unit" and target in self.active:
            return self.unit_assign(stmt, target, state)
        if isinstance(stmt.value, ast.Name) and stmt.value.id == target:  # x = x: nothing changes
            return [copy_tree(stmt)], state
        code = [copy_tree(stmt)]
        state.owned.pop(target, None)  # the old tangent dies with the old value
        state.views.pop(target, None)
        value = stmt.value
        state.add_views(self.view_pairs([stmt]))
        if getattr(value, "s2s_op", None) == "pop" and target not in self.active and \
                value.func.value.id in self.active:  # keep the list of tangents in step
            code.append(_at(ast.Expr(_call(f"{self.tan(value.func.value.id)}.pop")), stmt))
        (self.tuples if self.returns_tuple(value) else self.arrays).add(target)
        if target in self.active and target in self.family:
            code += self.share(value, target, state, stmt)
        if target in self.active:
            self.stack_owned(target, getattr(value, "s2s_op", None) == "list", stmt)
            expr, owned = self.tangent_of(stmt.value, target, state)
            if expr is not None:
                code.append(_assign(self.tan(target), expr, stmt))
                state.owned[target] = owned
        state.defined.add(target)
        state.bound.add(target)
        if target in self.scalars or (isinstance(value, ast.Constant) and type(value.value) in (int, float)) \
                or (isinstance(value, ast.Name) and value.id in state.scalar):  # b = s, s a float
            state.scalar.add(target)
        else:
            state.scalar.discard(target)
        return code, state

    def unit_assign(self, stmt, target, state: _State):
        """``t = det(m)`` of a recursive helper: ``t, dt = jvp_det(m, dm)`` (see `s2s.units`)."""
        args = stmt.value.args
        positions = tuple(i for i, a in enumerate(args) if self.defined(a, state))
        if not positions and units.returns_pair(stmt.value):  # the pair's tangent (zeros) has its
            positions = tuple(i for i, a in enumerate(args) if isinstance(a, ast.Name))[:1]  # shape
        state.owned.pop(target, None)
        state.views.pop(target, None)
        state.defined.add(target)
        state.scalar.discard(target)
        if not positions:
            return [copy_tree(stmt)], state
        name = units.call_name(stmt.value, "jvp", positions)
        call = _call(name, *[copy_tree(a) for a in args],
                     *[self.tangent_atom(args[i], state) for i in positions])
        pair = ast.Tuple([ast.Name(target, ast.Store()), ast.Name(self.tan(target), ast.Store())],
                         ast.Store())
        state.owned[target] = False  # (the base case may return an argument's tangent)
        if units.returns_pair(stmt.value):
            self.pairs.add(target)
        elif units.returns_tuple(stmt.value):
            self.tuples.add(target)
        return [_at(ast.Assign([pair], call), stmt)], state

    def returns_tuple(self, value) -> bool:
        """Does the call ``value`` return a tuple or list of arrays (and its tangent a tuple)?"""
        op = operation(value, self.fn.constants)
        if op.kind != "rule":
            return False
        if op.rule.outputs is not None and op.rule.output_count(op.static or {}) is not None:
            return True  # np.split, np.linalg.eigh, ...
        return generated_code.returns_tuple(op.rule.qualname)  # unstack, split_like, ...

    def stack_owned(self, stack, owned: bool, origin) -> None:
        """Record what list ``stack`` is made of (see ``own_stacks``)."""
        if owned:
            self.own_stacks.add(stack)
            return
        self.mixed_stacks.add(stack)
        if stack in self.popped_owned:
            raise self.error(f"forward mode cannot tell whether the tangents in {stack!r} are its own "
                             "buffers (one was popped and written in place before this)", origin,
                             UnsupportedSyntax, hint="copy the value before writing into it")

    def share(self, value, target, state: _State, origin) -> list[ast.stmt]:
        """Before ``target`` aliases a value that is updated in place, make that value's tangent
        a buffer of our own, so the two tangents share memory as the two values do.

        (A view made by a `VIEWS` function is tracked in ``state.views`` instead: a write
        while it may be alive is refused, see `check_write`.)"""
        op = operation(value, self.fn.constants)
        if op.kind in ("copy", "subscript"):
            x = op.args["x"]
            if x.id in state.scalar:
                return []  # a Python float: shares no memory (its tangent has no .copy)
            return self.own(x.id, state, origin) if x.id in self.active else []
        return []

    def view_pairs(self, stmts):
        """(target, array) for each ``target = f(array)`` in ``stmts`` where f may return a view."""
        for node in walk(ast.Module(body=list(stmts), type_ignores=[])):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                op = operation(node.value, self.fn.constants)
                if op.kind == "rule" and op.rule.qualname in VIEWS:
                    for arg in list(op.args.values())[:1]:
                        if isinstance(arg, ast.Name) and arg.id not in self.scalars:
                            yield node.targets[0].id, arg.id

    def check_write(self, buffer, item, state: _State, stmt) -> None:
        """Refuse a write into an array that may be a view made by a `VIEWS` function, or
        that such a view may read, where a derivative flows: the tangents would not follow.
        (`alias.resolve` has spelled out such writes already.)"""
        return
        viewed = {t for t, sources in state.views.items() if buffer in sources}
        involved = {buffer, *state.views.get(buffer, ()), *viewed} | _names(item)
        if (buffer in state.views or viewed) and involved & self.active:
            name = buffer if buffer in state.views else sorted(viewed)[0]
            raise self.error(f"{name!r} may be a view (reshape, transpose, broadcast_to...) that shares "
                             "memory with another array, and this write changes both; forward mode does "
                             "not follow writes through views", stmt, UnsupportedSyntax,
                             hint="copy it first (np.copy) or write into the original array")

    def tangent_of(self, value, target, state: _State):
        """(tangent expression, owned) of ``target = value``; (None, _) for a symbolic zero."""
        kind = getattr(value, "s2s_op", None)
        if kind == "pop":
            stack = value.func.value.id
            if stack not in self.active:
                return None, False
            owned = stack in self.own_stacks and stack not in self.mixed_stacks
            if owned:
                self.popped_owned.add(stack)
            return _call(f"{self.tan(stack)}.pop"), owned
        if kind == "list":
            return ast.List([], ast.Load()), True
        if isinstance(value, ast.Constant) and value.value is None:
            return ast.Constant(None), True  # a placeholder (saved before it is first set): no memory
            # to share, and a copy of it would not share the array the primal later holds there
        if isinstance(value, (ast.Tuple, ast.List)):
            if not any(self.defined(e, state) for e in value.elts):
                return None, False
            return type(value)([self.tangent_atom(e, state) for e in value.elts], ast.Load()), False
        op = operation(value, self.fn.constants)
        if op.kind in ("copy", "subscript", "unpack", "float"):
            x = op.args["x"]
            if not self.defined(x, state):
                return None, False
            dx = ast.Name(self.tan(x.id), ast.Load())
            if op.kind == "copy":
                return dx, state.owned[x.id]  # an alias, as the primal is (owned: see `share`)
            if op.kind == "float":
                return _call("float", dx), False
            view = ast.Subscript(dx, copy_tree(value.slice), ast.Load())
            view.s2s_op = value.s2s_op  # (a view: `alias.sharing` links it to its array)
            return view, op.kind == "subscript" and state.owned[x.id]
        if op.kind == "rule":
            expr = self.rule_tangent(op, value, target, state)
            return expr, _fresh(expr)
        if op.kind == "custom" and any(self.defined(a, state) for a in op.args.values()):
            raise self.error("a custom_vjp function has no forward-mode rule (its fwd/bwd pair is "
                             "a VJP)", value, NoRule,
                             hint="use reverse mode (s2s.grad), or call a function s2s can read")
        return None, False

    def rule_tangent(self, op, value, target, state: _State):
        rule = op.rule
        operands = analyze.differentiable_operands(op)
        wanted = [p for p, names in operands.items()
                  if any(n in self.active and n in state for n in names)]
        if not wanted:
            return None
        if rule.jvp is None:
            raise self.error(f"the rule for {rule.qualname} has no JVP (forward-mode rule)", value,
                             NoRule, hint="add one with s2s.rules.registry.jvp, or stop the "
                                          "gradient through that argument")
        try:
            templates = rule.jvp_templates(op.static)
        except NotImplementedError as exc:
            raise self.error(f"{called(rule, value)}: {exc}", value, NoRule, hint=CUSTOM_VJP_HINT)
        names = dict(op.args, ans=ast.Name(target, ast.Load()))
        for p in wanted:
            if p not in templates:
                raise no_derivative_in(self, rule, p, value)
            names["d" + p] = self.tangent_atom(op.args[p], state)
        terms = [simplify(substitute(_drop_defaults(templates[p], op), names, self.helpers))
                 for p in wanted]
        total = simplify(functools.reduce(lambda a, b: ast.BinOp(a, ast.Add(), b), terms))
        if rule.elementwise and self.needs_broadcast(op, [templates[p] for p in wanted], target):
            total = _call("np.broadcast_to", total, _call("np.shape", ast.Name(target, ast.Load())))
        return total

    def needs_broadcast(self, op, templates, target) -> bool:
        """Can the sum of an elementwise rule's terms be smaller than its output?"""
        if target in self.scalars:
            return False
        mentioned = set()
        for text in templates:
            names = template_names(text)
            if "ans" in names:
                return False
            mentioned |= {p for p in op.args if p in names or "d" + p in names}
        arrays = {p for p, node in op.args.items()
                  if isinstance(node, ast.Name) and node.id not in self.scalars}
        if arrays <= mentioned:
            return False
        return self.shape_of_terms(op, mentioned) != self.shapes.get(target, "unknown")

    def shape_of_terms(self, op, params):
        """The broadcast shape of these operands, where all their shapes are known."""
        shapes = []
        for p in params:
            node = op.args[p]
            shape = () if not isinstance(node, ast.Name) or node.id in self.scalars else self.shapes.get(node.id)
            if not isinstance(shape, tuple):
                return None
            shapes.append(shape)
        try:
            return tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            return None

    def defined(self, node, state: _State) -> bool:
        """Does ``node`` name a variable whose tangent is defined here?"""
        return isinstance(node, ast.Name) and node.id in self.active and node.id in state and \
            node.id not in self.fn.constants  # (a module's array: no tangent)

    def tangent_atom(self, node, state: _State) -> ast.expr:
        """The tangent of an argument: its tangent's name, zeros, or a tuple of those."""
        if isinstance(node, (ast.Tuple, ast.List)):
            return type(node)([self.tangent_atom(e, state) for e in node.elts], ast.Load())
        if self.defined(node, state):
            return ast.Name(self.tan(node.id), ast.Load())
        return self.zeros_expr(node, state)

    def zeros_expr(self, node, state: _State | None = None) -> ast.expr:
        if isinstance(node, ast.Constant) or (isinstance(node, ast.Name) and (
                node.id in self.scalars or (state is not None and node.id in state.scalar))):
            return ast.Constant(0.0)
        if isinstance(node, ast.Name) and node.id in self.tuples and node.id not in self.arrays:
            return ast.parse(f"tuple(np.zeros_like(p) for p in {node.id})", mode="eval").body
        return _call("np.zeros_like", copy_tree(node))

    def zeros(self, var, origin, state: _State) -> list[ast.stmt]:
        """``dvar = zeros`` where the primal may hold ``var`` (elsewhere, neither is read)."""
        if var not in state.bound and var not in self.fn.constants:  # (a module's array is bound)
            self.unbound_zeros.add(var)
        return [_assign(self.tan(var), self.zeros_expr(ast.Name(var, ast.Load()), state), origin)]

    # -- in-place statements ------------------------------------------------------------

    def mutation(self, stmt, kind, state: _State):
        """An in-place statement: its tangent first, then the write (the tangent's right side may
        read a view of the buffer being written, ``buf[1] += np.sum(buf[1:2] ** 2)``)."""
        return self.mutation_tangent(stmt, kind, state) + [copy_tree(stmt)], state

    def mutation_tangent(self, stmt, kind, state: _State) -> list[ast.stmt]:
        code = []
        if kind == "append":
            stack = _base(stmt.value.func.value)
            if stack in self.active:
                if stack not in state:
                    raise self.error("a list of saved values must be created in the function that "
                                     "appends to it", stmt, UnsupportedSyntax)
                item = stmt.value.args[0]
                code += self.own_saved(item, state, stmt)
                self.stack_owned(stack, isinstance(item, ast.Name) and (
                    not self.defined(item, state) or state.owned[item.id]), stmt)
                code.append(_at(ast.Expr(_call(f"{self.tan(stack)}.append",
                                               self.tangent_atom(item, state))), stmt))
            return code
        if kind == "add_at":
            args = stmt.value.args
            buffer, index, item = _base(args[0]), args[1], args[2]
            self.check_write(buffer, item, state, stmt)
            if buffer not in self.active or not self.defined(item, state):
                return code
            code += self.own(buffer, state, stmt)
            call = _call("np.add.at", ast.Name(self.tan(buffer), ast.Load()), copy_tree(index),
                         ast.Name(self.tan(item.id), ast.Load()))
            code.append(_at(ast.Expr(call), stmt))
            return code
        target = stmt.targets[0] if kind == "setitem" else stmt.target
        buffer, item = target.value.id, stmt.value
        self.check_write(buffer, item, state, stmt)
        if buffer not in self.active:
            return code
        has_item = self.defined(item, state)
        if not has_item and (kind == "additem" or buffer not in state):
            return code  # nothing is added / zeros are written into zeros
        code += self.own(buffer, state, stmt)
        element = ast.Subscript(ast.Name(self.tan(buffer), ast.Load()), copy_tree(target.slice),
                                ast.Store())
        dv = ast.Name(self.tan(item.id), ast.Load()) if has_item else ast.Constant(0.0)
        node = ast.Assign([element], dv) if kind == "setitem" else ast.AugAssign(element, ast.Add(), dv)
        code.append(_at(node, stmt))
        return code

    def own_saved(self, item, state: _State, origin) -> list[ast.stmt]:
        """Before ``stack.append(item)``: the tangent that later writes into ``item`` fill, as the
        primal saves the very array it writes (not a second zeros array, or a copy made later)."""
        if not (isinstance(item, ast.Name) and item.id in self.active and item.id not in state.scalar):
            return []
        var = item.id
        if var not in state:
            return self.own(var, state, origin)
        if state.owned[var] or var not in self.written:
            return []
        state.owned[var] = True
        name = self.tan(var)  # (np.copy: the primal may still be its None placeholder)
        if var in self.tuples:
            return [_assign(name, self.tuple_copy(var, origin), origin)]
        return [_assign(name, _call("np.copy", ast.Name(name, ast.Load())), origin)]

    def tuple_copy(self, var, origin) -> ast.expr:
        """A copy of the tangent of ``var`` (a tuple of arrays), element by element."""
        if var in self.arrays:
            raise self.error(f"forward mode cannot tell whether {var!r} holds a tuple of arrays or "
                             "an array here, and the tangent must be copied before a write",
                             origin, UnsupportedSyntax, hint="use a different name for each")
        return ast.parse(f"tuple(np.copy(d) for d in {self.tan(var)})", mode="eval").body

    def own(self, var, state: _State, origin) -> list[ast.stmt]:
        """Make the tangent of ``var`` a buffer of our own before it is updated in place."""
        owned = state.owned.get(var)
        state.owned[var] = True
        if owned is None:
            return self.zeros(var, origin, state)
        if not owned:
            for copies in self.copied:
                copies.add(var)
            name = self.tan(var)
            if var in self.pairs:  # (value, residuals) of a unit: the value's tangent is copied
                pair = ast.parse(f"(np.copy({name}[0]), {name}[1])", mode="eval").body
                return [_assign(name, pair, origin)]
            if var in self.tuples:  # each element's tangent is copied
                return [_assign(name, self.tuple_copy(var, origin), origin)]
            return [_assign(name, _call(f"{name}.copy"), origin)]
        return []

    # -- branches and loops ----------------------------------------------------------------

    def branch(self, stmt, state: _State):
        body, s1 = self.block(stmt.body, state.copy())
        orelse, s2 = self.block(stmt.orelse, state.copy())
        if s1 is not None and s2 is not None:
            # A tangent that one branch defines is zero on the other, where the primal may
            # hold the variable; where it cannot, nothing reads the tangent either.
            for var in sorted(set(s1.owned) ^ set(s2.owned)):
                for branch_state, code in ((s1, body), (s2, orelse)):
                    if var not in branch_state and var in branch_state.defined:
                        code += self.zeros(var, stmt, branch_state)
                    branch_state.owned.setdefault(var, True)
            joined = _State({v: s1.owned[v] and s2.owned[v] for v in s1.owned}, s1.defined | s2.defined,
                            s1.scalar & s2.scalar, s1.views, s1.bound & s2.bound)
            joined.add_views((t, v) for t, sources in s2.views.items() for v in sources)
        else:
            joined = s1 if s1 is not None else s2
        node = _at(ast.If(copy_tree(stmt.test), body or [ast.Pass()], orelse), stmt)
        return [node], joined

    def loop(self, stmt, state: _State):
        """The loop with tangents; those the body carries to the next trip start defined."""
        start = state.copy()
        inits: dict[str, bool] = {}
        owned_first: list[ast.stmt] = []  # copies made once before the loop, not on every trip
        scalar = set(start.scalar)  # scalars on entry to every trip
        # On later trips, anything the body assigns may hold a value.
        assigned = start.defined | _assigned(stmt)
        views = start.views  # views alive at the head: on entry, or made on an earlier trip
        while True:
            entry = _State({**start.owned, **inits}, set(assigned), set(scalar),
                           {k: set(v) for k, v in views.items()}, set(start.bound))
            if isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name):
                entry.bound.add(stmt.target.id)
            self.exits.append([])
            self.copied.append(set())
            body, end = self.block(stmt.body, entry.copy())
            breaks = self.exits.pop()
            copied = self.copied.pop()
            ends = ([end] if end is not None else []) + [s for s, _ in breaks]
            new = sorted({v for s in ends for v in s.owned if v not in entry})
            lost = sorted({v for v in entry.owned if entry.owned[v] and
                           any(s.owned.get(v) is False for s in ends)})
            kept = scalar.intersection(*(s.scalar for s in ends))
            grown = _State({}, set(), views={k: set(v) for k, v in views.items()})
            for s in ends:
                grown.add_views((t, v) for t, sources in s.views.items() for v in sources)
            if grown.views != views:
                views = grown.views
                continue
            # A tangent the body copies before updating it in place: copy it once, before.
            gained = sorted(v for v in copied if v in start.owned and not entry.owned[v] and ends and
                            all(s.owned.get(v) is True for s in ends))
            if gained and not new and not lost and kept == scalar:
                for v in gained:
                    owned_first += self.own(v, start, stmt)
                continue
            if not new and not lost and kept == scalar:
                break
            scalar = kept
            inits.update({v: True for v in new})
            for v in lost:
                (inits if v in inits else start.owned)[v] = False
        if end is not None:
            body += [z for v in sorted(entry.owned) if v not in end for z in self.zeros(v, stmt, end)]
        for exit_state, node in breaks:
            missing = [z for v in sorted(entry.owned) if v not in exit_state
                       for z in self.zeros(v, stmt, exit_state)]
            if missing:
                body = _insert_before(body, node, missing)
        new_loop = copy.copy(stmt)
        new_loop.body = body or [ast.Pass()]
        new_loop.orelse = []
        if isinstance(stmt, ast.For):
            new_loop.target, new_loop.iter = copy_tree(stmt.target), copy_tree(stmt.iter)
        else:
            new_loop.test = copy_tree(stmt.test)
        # A tangent carried from one trip to the next starts at zero, where the primal may
        # already hold the variable; where it cannot, the first trip writes both first.
        code = [z for v in sorted(inits) if v in start.defined for z in self.zeros(v, stmt, start)]
        entry.bound = set(start.bound)  # the body may not run
        return owned_first + code + [new_loop], entry


# --- the module -----------------------------------------------------------------------

def forward_function(src: FunctionSource, wrt: list[str], name: str, mutation: bool):
    """``name(params..., d<wrt>...)`` returning ``(value, tangent)``, as a function of a module
    that `units` completes: (its text, the `Normalized` function, the helpers it uses)."""
    params = derive.check_wrt(src, wrt)
    fn = normalize(src, Namer(params), allow_mutation=mutation)
    result = forward(fn, wrt)
    doc = f"Jacobian-vector product of {src.name} with respect to {', '.join(wrt)}."
    return _function(src, fn, result, name, doc, [("", result.statements)],
                     f"{derive.output(fn, lambda a: a)}, {_tangent_text(result)}",
                     fn.signature + result.tangent_params)


def primal_function(src: FunctionSource, name: str, mutation: bool):
    """``name(params...)``: the helper itself, lowered as s2s runs it (see `s2s.units`)."""
    fn = normalize(src, Namer(param_names(src.node)), allow_mutation=mutation)
    result = forward(fn, [])
    doc = summary(src) or f"{src.name}, as s2s runs it (its derivatives call it)."
    return _function(src, fn, result, name, doc, [("", result.statements)],
                     derive.output(fn, lambda a: a), fn.signature, own_doc=True)


def _function(src, fn, result, name, doc, sections, returns, params, own_doc=False):
    if not alias.generated(fn):  # (lines of a generated file that is not in this module: none)
        emit.mark_lines(result.statements, fn.src)
    doc = doc if own_doc else emit.docstring(doc, summary(src), src.name)
    text = emit.render_function(name, params, doc, sections,
                                returns, notes=comments(src), noted="")
    used = result.helpers | {i[7:] for i in fn.imports if i.startswith("helper:")}
    return text, fn, used


def _tangent_text(result) -> str:
    def tangent_of(atom):
        if atom.id in result.result_tangents:
            return ast.Name(result.result_tangents[atom.id], ast.Load())
        return ast.parse("0.0" if atom.id in result.scalars else f"np.zeros_like({atom.id})").body[0].value
    return derive.output(result.fn, tangent_of)


def forward_module(src: FunctionSource, wrt: list[str], name: str | None = None,
                   target: str = "numpy", known_scalars=(), known_shapes=None,
                   structures=None) -> derive.Generated:
    """Generate ``jvp_<f>(params..., d<wrt>...)`` returning ``(value, tangent)``.

    ``structures``: the `pytree.spec` of container arguments (their tangents have
    the same structure)."""
    with units.generation():
        return _forward_module(src, wrt, name, target, known_scalars, known_shapes, structures)


def _forward_module(src, wrt, name, target, known_scalars, known_shapes, structures):
    params = derive.check_wrt(src, wrt)
    fn = normalize(src, Namer(params), allow_mutation=True, structures=structures,
                   lengths=derive.lengths(known_shapes))
    known_scalars, known_shapes = derive.leaf_knowledge(fn, known_scalars, known_shapes)
    leaves = derive.flat_wrt(fn, wrt)
    result = forward(fn, leaves, known_scalars, known_shapes)
    return _render(src, fn, result, name, target, known_scalars, known_shapes, wrt)


def _render(src, fn, result, name, target, known_scalars, known_shapes, wrt):
    entry = name or f"jvp_{src.name}"

    def tangent_of(atom):
        if atom.id in result.result_tangents:
            return ast.Name(result.result_tangents[atom.id], ast.Load())
        return ast.parse("0.0" if atom.id in result.scalars else f"np.zeros_like({atom.id})").body[0].value
    value, tangent = derive.output(fn, lambda a: a), derive.output(fn, tangent_of)
    wrt_text = ", ".join(wrt)
    tangent_params, prologue = derive.structured_params(fn, wrt, {w: t for w, t in zip(
        result.wrt, result.tangent_params)}, prefix="d")
    along = ", ".join(tangent_params)
    doc = (f"Jacobian-vector product of {src.name} with respect to {wrt_text}: "
           f"its value and its tangent along {along}.")
    if target != "dask":  # (Dask arrays are immutable)
        scalars = {t for v, t in list(result.result_tangents.items()) + list(result.tangents.items())
                   if v in result.scalars}  # the tangents of scalars
        own_gradients(result.statements, fn.prologue + prologue, result.result_tangents.values(), scalars)
    emit.mark_lines(result.statements, fn.src)
    function = emit.render_function(entry, fn.signature + tangent_params,
                                    emit.docstring(doc, summary(src), src.name),
                                    [("", fn.prologue + prologue + result.statements)],
                                    f"{value}, {tangent}", notes=comments(src), noted="")
    used = result.helpers | {i[7:] for i in fn.imports if i.startswith("helper:")}
    functions, unit_helpers = units.complete([function], fn, target)
    used |= unit_helpers
    constants, injected = derive._constants(fn)
    imports = derive._imports(fn.imports, target)
    functions = ode.module_parts(fn.imports, used, imports, constants, injected, result.scalars,
                                 target=target) + functions
    helpers = emit.helper_sources(sorted(used)) if used else ""
    options = {"mode": "forward", "wrt": ",".join(wrt), "target": target}
    options.update(derive.specialized(fn, known_scalars, known_shapes))
    head = emit.header("Forward-mode derivative", src.name, src.filename, src.digest(), options, entry)
    text = emit.module_text(head, imports, constants, helpers, functions)
    if target == "cupy":
        text = targets.to_cupy(text)
    return derive.Generated(text, entry, injected)


# --- small AST helpers -------------------------------------------------------------------







def _names(node) -> set[str]:
    return {n.id for n in walk(node) if isinstance(n, ast.Name)}


def _base(node) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _fresh(expr) -> bool:
    """Is ``expr`` a newly allocated array (safe to update in place)?"""
    if isinstance(expr, (ast.BinOp, ast.UnaryOp)):
        return True
    return isinstance(expr, ast.Call) and ast.unparse(expr.func) in (
        "np.zeros_like", "np.copy", "np.array")


REDUCTION_DEFAULTS = {"axis": None, "keepdims": False}
REDUCTIONS = {"sum", "mean", "max", "min", "prod", "std", "var", "amax", "amin", "logsumexp"}


def _drop_defaults(template: str, op) -> str:
    """Leave out ``axis=axis``-style keywords that pass the callee's own default."""
    params = op.rule.signature.parameters
    own = op.rule.qualname.rsplit(".", 1)[-1]
    tree = ast.parse(template, mode="eval")
    changed = False
    for node in walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = _callee(node.func)
        kept = []
        for kw in node.keywords:
            arg = op.args.get(kw.arg)
            if isinstance(kw.value, ast.Name) and kw.value.id == kw.arg and isinstance(arg, ast.Constant):
                if callee == own and kw.arg in params:
                    default = params[kw.arg].default
                elif callee in REDUCTIONS and kw.arg in REDUCTION_DEFAULTS:
                    default = REDUCTION_DEFAULTS[kw.arg]
                else:
                    default = inspect.Parameter.empty
                if _same(arg.value, default):
                    changed = True
                    continue
            kept.append(kw)
        node.keywords = kept
    return ast.unparse(tree) if changed else template


def _callee(func) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def _assigned(stmt) -> set[str]:
    return {n.id for n in walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _insert_before(stmts, marker, extra):
    out = []
    for stmt in stmts:
        if stmt is marker:
            out += extra
        elif isinstance(stmt, ast.If):
            stmt.body = _insert_before(stmt.body, marker, extra)
            stmt.orelse = _insert_before(stmt.orelse, marker, extra)
        elif isinstance(stmt, (ast.For, ast.While)):
            pass  # a break belongs to its own loop
        out.append(stmt)
    return out
