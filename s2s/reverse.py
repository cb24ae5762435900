"""Stage 4 (reverse mode): a forward sweep and a backward sweep, as Python statements.

The backward sweep visits the core-language statements in reverse. It sees
the forward sweep's variables exactly as they were at each point because
every assignment that overwrites a value inside a loop or branch saves what
it overwrites on a plain list (``saved_h.append(h)``) and the backward sweep
restores it (``h = saved_h.pop()``) right after reversing that assignment.
A value written once per loop iteration and read only after its write is
saved after the write and restored at the top of the reversed iteration.
Most of these saves are never read; `optimize` removes them.

Adjoints are symbolic zeros until their first contribution, which is a plain
assignment; later contributions accumulate (in place when the buffer is the
sweep's own). Branch outcomes are recomputed from the saved condition and
loops replay the same range backwards (``n_iter`` counts trips where a loop
can ``break``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np

from . import alias, analyze, invariance, units
from .astutil import assign as _assign, at as _at, at_line, call as _call, copy_tree, dotted
from .astutil import Transformer, filter_statements, find_nodes, names_in as _names_in, statements
from .errors import CUSTOM_VJP_HINT, NoRule, S2SError, called, no_derivative_in
from .hoist import hoist_invariants
from .naming import adjoint_base, stack_base
from .normalize import Normalized
from .rules.registry import Rule
from .saves import SaveRestore, is_scalar_atom
from .template import is_basic_index, simplify, substitute, template_names


class Comment(ast.stmt):
    """A comment line in generated code (rendered by `emit`)."""

    _fields = ("text",)


@dataclass
class ReverseResult:
    """The two sweeps of a reverse-mode derivative, ready to optimize and emit."""

    fn: Normalized
    wrt: list[str]
    seed: str  # the adjoint of the output: a parameter of the generated function
    forward: list[ast.stmt]
    backward: list[ast.stmt]
    gradients: list[str | None]  # adjoint name per wrt (None: the gradient is zero)
    helpers: set[str] = field(default_factory=set)
    stacks: list[str] = field(default_factory=list)
    scalars: set[str] = field(default_factory=set)  # names known to hold scalars
    seeds: list[str] = field(default_factory=list)  # the adjoint of each output leaf
    shapes: dict = field(default_factory=dict)  # what the analysis knows of each name's shape
    adjoint_shapes: dict = field(default_factory=dict)  # adjoint name -> its primal's shape, if known
    floats: set = field(default_factory=set)  # Python float arguments the function never rebinds


def reverse(fn: Normalized, wrt: list[str], known_scalars=(), seed_value=None,
            known_shapes=None, int_arrays=(), recompute_steps=True) -> ReverseResult:
    """Build the sweeps for d fn.result / d wrt.

    ``known_scalars`` / ``known_shapes``: arguments known to be Python floats /
    arrays of a given shape (a tuple) or rank (an int) — what ``s2s.grad`` saw
    on its first call, or the CLI's ``--shapes``. ``recompute_steps``: the backward
    sweep recomputes a loop step's scalar arithmetic from the carried scalars (see
    `SaveRestore.restorable_early`) rather than saving it.
    """
    return _Reverse(fn, wrt, known_scalars, seed_value, known_shapes, int_arrays,
                    recompute_steps).run()


class _Reverse(SaveRestore):
    def __init__(self, fn: Normalized, wrt, known_scalars, seed_value, known_shapes=None,
                 int_arrays=(), recompute_steps=True):
        self.fn = fn
        self.recompute_steps = recompute_steps
        self.wrt = list(wrt)
        analysis = alias.resolve(fn, known_scalars, known_shapes)
        self.active = analyze.activity(fn, wrt)
        if analysis is not None and not int_arrays:  # the same analysis of the same code
            self.shapes, self.scalars = analysis
        else:
            known = {**{k: () for k in known_scalars}, **(known_shapes or {})}
            self.shapes = analyze.array_shapes(fn, known, int_arrays)
            self.scalars = analyze.scalar_names(fn, known_scalars, shapes=self.shapes)
        self.ranks = {k: len(v) if isinstance(v, tuple) else v for k, v in self.shapes.items()}
        fn.body = hoist_invariants(fn.body, fn.params, self.scalars)
        invariance.mark(fn, self.shapes, self.scalars)  # a log-sum-exp's shift: no derivative
        # After hoisting: two equal invariants become one name, which may be the one that was
        # read by nothing (g(g(x, s), s) with g returning -s: d/ds was 0; fuzz seed 52 #3096)
        self._operations: dict[int, tuple] = {}  # id(value) -> (value, its operation)
        self.active = analyze.activity(fn, wrt, self._operations)
        self.shape_roots = analyze.shape_roots(fn, self.scalars)
        self.namer = fn.namer
        self.adjoints: dict[str, str] = {}
        self.primal_of: dict[str, ast.expr] = {}  # adjoint name -> the value it is the adjoint of
        self.tuple_len = {a.value.value.id: a.value.s2s_unpack_len for a in analyze.assignments(fn.body)
                          if getattr(a.value, "s2s_op", None) == "unpack"}
        self.lazy: dict[str, ast.Call] = {}  # adjoint -> its value np.broadcast_to(s, shape), s a scalar
        self.stacks: dict[str, str] = {}
        self.helpers: set[str] = set()
        self.seed_value = seed_value
        self.dropped_saves: set[int] = set()  # saves replaced by recomputation
        self._mentions: dict[int, tuple] = {}
        self.top_level = {s.targets[0].id for s in fn.body if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)}
        self.loop_indices = {n.target.id for n in statements(ast.Module(body=fn.body, type_ignores=[]))
                             if isinstance(n, ast.For)}
        self.writes = list(analyze.writes(fn.body))
        self.written = set().union(*(w.s2s_shares for w in self.writes))
        self.assign_count: dict[str, int] = {}
        for a in analyze.assignments(fn.body):
            name = a.targets[0].id
            self.assign_count[name] = self.assign_count.get(name, 0) + 1
        self.output_scalars = self.zero_dimensional() if seed_value is not None else set()
        self.known_floats = (set(known_scalars) | {n for n, c in fn.constants.items() if type(c.value) is float}) \
            - set(self.assign_count)

    def zero_dimensional(self) -> set[str]:
        """Names that hold 0-d values because the output does: a gradient's output is checked
        to be a scalar before the backward sweep runs, and an elementwise operation's result
        has the rank of its largest operand (names bound once, at the top level, or arguments
        never bound)."""
        defs = {s.targets[0].id: s for s in self.fn.body if isinstance(s, ast.Assign)
                and isinstance(s.targets[0], ast.Name)}
        out, todo = set(), [self.fn.result]
        while todo:
            name = todo.pop()
            stmt = defs.get(name)
            if name in out or self.assign_count.get(name, 0) != (stmt is not None) or \
                    stmt is None and name not in self.fn.params:
                continue
            out.add(name)
            op = self.operation(stmt.value) if stmt is not None else None
            if op is not None and (op.kind == "copy" or op.kind == "rule" and op.rule.elementwise):
                todo += [n.id for n in op.args.values() if isinstance(n, ast.Name)]
        return out

    def operation(self, value) -> analyze.Operation:
        """`analyze.operation` of a primal value (worked out once: a loop's body is reversed
        until its adjoints settle, and the sweeps do not change the primal's values)."""
        return analyze.remembered_operation(value, self.fn.constants, self._operations)

    def adj(self, name: str) -> str:
        if name not in self.adjoints:
            self.adjoints[name] = self.namer.fresh(adjoint_base(name))
            self.primal_of[self.adjoints[name]] = ast.Name(name, ast.Load())
        return self.adjoints[name]

    def component(self, name: str, index: int) -> str:
        """The adjoint of ``name[index]`` for a tuple that the code unpacks."""
        key = f"{name}[{index}]"
        if key not in self.adjoints:
            self.adjoints[key] = self.namer.fresh(f"{adjoint_base(name)}_{index}")
            self.primal_of[self.adjoints[key]] = ast.Subscript(
                ast.Name(name, ast.Load()), ast.Constant(index), ast.Load())
        return self.adjoints[key]

    def stack(self, name: str) -> str:
        if name not in self.stacks:
            self.stacks[name] = self.namer.fresh(stack_base(name))
        return self.stacks[name]

    def error(self, message, node, cls=S2SError, hint=None):
        src = getattr(node, "s2s_src", None) or self.fn.src
        return src.error(cls, message, node, hint=hint, stage="reverse")

    # -- driver ----------------------------------------------------------------

    def run(self) -> ReverseResult:
        forward = self.forward_block(self.fn.body, loop=None, nested=False)
        seed = self.adj(self.fn.result)
        state = {seed: False}
        seeds = [self.adj(r) for r in self.fn.results or [self.fn.result]]
        state.update({s: False for s in seeds})
        backward = []
        top_level = {s.targets[0].id for s in self.fn.body if isinstance(s, ast.Assign)
                     and isinstance(s.targets[0], ast.Name)}
        if self.seed_value is not None and (self.assign_count.get(self.fn.result, 0) > 1
                                            or self.fn.result not in top_level):
            # The output is overwritten in a loop or branch: seed its adjoint explicitly.
            backward.append(_assign(seed, ast.Constant(self.seed_value), self.fn.body[-1]))
            self.seed_value = None
        backward += self.backward_block(self.fn.body, state)
        grads = [self.adj(w) if self.adj(w) in state else None for w in self.wrt]
        stacks = [self.stacks[v] for v in sorted(self.stacks)]
        forward = filter_statements(forward, lambda s: id(s) not in self.dropped_saves)
        adjoint_shapes = {a: self.shapes[p.id] for a, p in self.primal_of.items()
                          if isinstance(p, ast.Name) and p.id in self.shapes}
        return ReverseResult(self.fn, self.wrt, seed, forward, backward, grads, self.helpers, stacks,
                             self.scalars, seeds, shapes=self.shapes, adjoint_shapes=adjoint_shapes,
                             floats=set(self.known_floats))

    # -- forward sweep: the primal, plus saves --------------------------------------

    def backward_block(self, stmts, state) -> list[ast.stmt]:
        out = []
        for stmt in reversed(stmts):
            out += self.backward_statement(stmt, state)
        return out

    def backward_statement(self, stmt, state) -> list[ast.stmt]:
        if getattr(stmt, "s2s_op", None) in ("setitem", "additem"):
            return self.backward_write(stmt, state)
        if isinstance(stmt, ast.Assign):
            code = self.backward_assign(stmt, state)
            if getattr(stmt, "s2s_save", None) == "before":
                # Restored at the top of the reversed iteration (`backward_loop`) when the
                # write's own adjoint does not read the value it wrote.
                stmt.s2s_restored_early = getattr(stmt, "s2s_early", False) and stmt.targets[0].id not in \
                    _names_in(ast.Module(body=code, type_ignores=[]))
                if not stmt.s2s_restored_early:
                    code.append(self.pop(stmt.targets[0].id, stmt))
            return code
        if isinstance(stmt, ast.If):
            return self.backward_if(stmt, state)
        if isinstance(stmt, (ast.For, ast.While)):
            return self.backward_loop(stmt, state)
        return []

    def backward_assign(self, stmt, state) -> list[ast.stmt]:
        target = stmt.targets[0].id
        if target in self.tuple_len and target in self.active:
            return self.backward_multi_output(stmt, state)
        d = self.adj(target)
        if target not in self.active or d not in state:
            return []  # a symbolic zero: nothing flows back
        op = self.operation(stmt.value)
        g = ast.Name(d, ast.Load())
        if self.seed_value is not None and d == self.adj(self.fn.result):
            g = ast.Constant(self.seed_value)
        lazy = self.lazy.pop(d, None)
        if lazy is not None and _sources(lazy) & {self.adj(n.id) for n in (op.args or {}).values()
                                                  if isinstance(n, ast.Name)}:
            lazy = None  # y = np.sum(f(y)): the scalar dy is written by the first partial
        if lazy is not None and self.keeps_shape(op, stmt, target):
            g = copy_tree(lazy.args[0])  # the scalar itself: the partials carry the shape
        elif lazy is not None and (op.kind == "copy" or self.passes_through(op, target)):
            g = copy_tree(lazy)  # pass the broadcast on, still recognizable
        del state[d]  # the value before this write starts with a zero adjoint
        code: list[ast.stmt] = []
        for var, contribution in self.contributions(op, stmt, target, g):
            code += contribution(var, state) if callable(contribution) else \
                self.accumulate(var, contribution, state, stmt)
        if code:
            code.insert(0, self.comment(stmt))
        return code

    def backward_multi_output(self, stmt, state) -> list[ast.stmt]:
        """Reverse ``t = f(...)`` where the code unpacks the tuple ``t``: ``g`` is a tuple."""
        target = stmt.targets[0].id
        parts = [self.component(target, i) for i in range(self.tuple_len[target])]
        if not any(p in state for p in parts):
            return []
        g = ast.Tuple([ast.Name(p, ast.Load()) if p in state else
                       _call("np.zeros_like", copy_tree(self.primal_of[p])) for p in parts], ast.Load())
        if isinstance(self.shapes.get(target), tuple) and self.shapes[target]:  # an array unpacked by rows
            g = _call("np.stack", g)
        for p in parts:
            state.pop(p, None)
        op = self.operation(stmt.value)
        code: list[ast.stmt] = []
        for var, contribution in self.contributions(op, stmt, target, g):
            code += contribution(var, state) if callable(contribution) else \
                self.accumulate(var, contribution, state, stmt)
        return [self.comment(stmt)] + code if code else []

    def comment(self, stmt) -> Comment:
        src = getattr(stmt, "s2s_src", None) or self.fn.src
        line = src.lines[stmt.lineno - 1].strip() if stmt.lineno <= len(src.lines) else ""
        node = Comment(f"{at_line(stmt, self.fn.src)}: {line}")
        node.s2s_line = (id(src), stmt.lineno)
        return node

    def contributions(self, op, stmt, target, g):
        """(variable, adjoint expression or emitter) for each active operand."""
        value = stmt.value
        if op.kind == "copy":
            return self.active_only([(op.args["x"], g)])
        if op.kind == "float":
            x = op.args["x"]
            expr = g if _name(x) in self.scalars else _call("np.full", _call("np.shape", x), g)
            return self.active_only([(x, expr)])
        if op.kind == "subscript":
            x = op.args["x"]
            if _name(x) not in self.active:
                return []
            if _only_new_axes(value.slice):  # x[:, None] holds every element of x: reshape back
                shape = self.shapes_from_roots(_call("np.shape", ast.Name(x.id, ast.Load())))
                return [(x.id, _call("np.reshape", g, shape))]
            return [(x.id, lambda var, state: self.index_add(var, value.slice, g, state, stmt))]
        if op.kind == "unpack":
            x = op.args["x"]
            if _name(x) not in self.active:
                return []
            part = self.component(x.id, value.slice.value)
            return [(None, lambda var, state: self.accumulate_adjoint(part, g, state, stmt))]
        if op.kind == "custom":
            return self.custom_contributions(op, stmt, target, g)
        if op.kind == "unit":
            return self.unit_contributions(op, stmt, g)
        if op.kind != "rule":
            return []
        return self.rule_contributions(op, stmt, target, g)

    def custom_contributions(self, op, stmt, target, g):
        """``pair = f_fwd(*args)``: the adjoints are ``f_bwd(pair[1], g_out)``, one per argument."""
        args = list(op.args.values())
        if not any(isinstance(a, ast.Name) and a.id in self.active for a in args):
            return []
        g_out = g.elts[0] if isinstance(g, ast.Tuple) else \
            ast.Subscript(g, ast.Constant(0), ast.Load())
        residuals = ast.Subscript(ast.Name(target, ast.Load()), ast.Constant(1), ast.Load())
        expr = ast.Call(ast.Name(stmt.value.s2s_bwd, ast.Load()), [residuals, g_out], [])
        return [(None, self.tuple_contribution(expr, ast.Tuple(args, ast.Load()), stmt))]

    def unit_contributions(self, op, stmt, g):
        """``t = det(m)`` of a recursive helper: ``dm = vjp_det(m, dt)`` (see `s2s.units`),
        the adjoints of the arguments active here, a tuple of them when there are several."""
        args = list(op.args.values())
        positions = tuple(i for i, a in enumerate(args) if isinstance(a, ast.Name) and a.id in self.active)
        if not positions:
            return []
        name = units.call_name(stmt.value, "vjp", positions)
        call = ast.Call(ast.Name(name, ast.Load()), [copy_tree(a) for a in args] + [g], [])
        if len(positions) == 1:
            return [(args[positions[0]].id, call)]
        return [(None, self.tuple_contribution(call, ast.Tuple([args[i] for i in positions], ast.Load()),
                                               stmt))]

    def active_only(self, pairs):
        return [(p.id, e) for p, e in pairs if isinstance(p, ast.Name) and p.id in self.active]

    def rule_contributions(self, op, stmt, target, g):
        rule: Rule = op.rule
        operands = analyze.differentiable_operands(op)
        wanted = [p for p, names in operands.items() if any(n in self.active for n in names)]
        if not wanted:
            return []
        ndim = {p: self.ranks[n.id] if isinstance(n, ast.Name) else 0 for p, n in op.args.items()
                if (isinstance(n, ast.Name) and n.id in self.ranks) or is_scalar_atom(n, ())}
        shapes = {p: self.shapes[n.id] for p, n in op.args.items()
                  if isinstance(n, ast.Name) and isinstance(self.shapes.get(n.id), tuple)}
        try:
            templates = rule.vjp_templates(op.static, ndim, shapes)
        except NotImplementedError as exc:
            raise self.error(f"{called(rule, stmt.value)}: {exc}", stmt.value, NoRule, hint=CUSTOM_VJP_HINT)
        out = []
        for param in wanted:
            if param not in templates:
                raise no_derivative_in(self, rule, param, stmt.value)
            names = dict(op.args, ans=ast.Name(target, ast.Load()), g=g)
            expr = self.shapes_from_roots(simplify(substitute(templates[param], names, self.helpers)))
            node = op.args[param]
            if isinstance(node, ast.Name):
                if rule.elementwise:
                    expr = self.unbroadcast(expr, node, op, target)
                out.append((node.id, expr))
            elif isinstance(node, (ast.Tuple, ast.List)):
                out.append((None, self.tuple_contribution(expr, node, stmt)))
        return _doubled(out)

    def shapes_from_roots(self, expr):
        """``np.shape(t)`` -> its value where the shape is known, or ``np.shape(x)`` when ``t``
        always has the shape of an unchanging ``x``: the backward sweep need not keep ``t``."""
        if not any(isinstance(n.func, ast.Attribute) and n.func.attr in ("shape", "size")
                   for n in find_nodes(expr, ast.Call)):
            return expr  # (what `_ShapeReads` would give: it only rewrites np.shape and np.size)
        return _ShapeReads(self.shapes, self.shape_roots).visit(expr)

    def unbroadcast(self, expr, operand, op, target):
        """Sum a contribution back over broadcast axes, unless it cannot broadcast."""
        scalars = self.scalars | self.output_scalars
        if operand.id in scalars:
            return expr if target in scalars else simplify(_call("np.sum", expr))
        # Every other array argument can broadcast this one, differentiable or not.
        others = [n for p, n in op.args.items() if n is not operand and not is_scalar_atom(n, self.scalars)
                  and not (isinstance(n, ast.Constant) and n.value is None)]
        if not others:
            return expr
        shape = self.shapes.get(operand.id)
        if isinstance(shape, tuple) and shape == self.shapes.get(target):
            return expr  # same shape as the result: nothing was broadcast
        summed = _leading_sum(expr, shape, self.shapes.get(target))
        if summed is not None:
            return simplify(summed)
        self.helpers.add("unbroadcast")
        return self.shapes_from_roots(_call("unbroadcast", expr, _call("np.shape", operand)))

    def tuple_contribution(self, expr, node, stmt):
        def emit(_, state):
            parts = self.namer.fresh("dparts")
            code = [_assign(parts, expr, stmt)]
            for i, elt in enumerate(node.elts):
                if isinstance(elt, ast.Name) and elt.id in self.active:
                    item = ast.Subscript(ast.Name(parts, ast.Load()), ast.Constant(i), ast.Load())
                    code += self.accumulate(elt.id, item, state, stmt)
            return code
        return emit

    def is_scalar_broadcast(self, expr) -> bool:
        """``np.broadcast_to(s, shape)`` with ``s`` a scalar expression (scalars, their adjoints)."""
        return _broadcasts(expr) and scalar_expr(expr.args[0], self.scalars | self.scalar_adjoints())

    def scalar_adjoints(self) -> set[str]:
        """Adjoints of scalars are scalars."""
        return {d for d, v in self.primal_of.items() if isinstance(v, ast.Name) and v.id in self.scalars}

    def keeps_shape(self, op, stmt, target) -> bool:
        """Does every partial of this elementwise op have the shape of its result?

        True when each active operand's partial reads the result, or an operand
        known to have the result's shape (the only array operand, or one whose
        shape is known to match): ``g * (1 - ans ** 2)`` for ``tanh``, ``g * 2 * x``
        for ``x ** 2``, ``g * Y`` for ``Y * p`` with ``Y`` and ``p`` alike.
        """
        if op.kind != "rule" or not op.rule.elementwise:
            return False
        templates = op.rule.vjp_templates(op.static)
        full = self.shapes.get(target)
        arrays = [p for p, n in op.args.items() if not is_scalar_atom(n, self.scalars)]
        for param, node in op.args.items():
            if not (isinstance(node, ast.Name) and node.id in self.active) or param not in templates:
                continue
            names = template_names(templates[param])
            # A partial that reads the result, or an operand of the result's full shape.
            full_operands = {p for p, n in op.args.items() if isinstance(n, ast.Name) and (
                (isinstance(full, tuple) and self.shapes.get(n.id) == full) or arrays == [p])}
            if not ({"ans"} | full_operands) & names:
                return False
        return True

    def passes_through(self, op, target) -> bool:
        """Is every active operand's partial ``g`` itself, on an operand of the result's
        known shape (``a + b`` with ``a`` and ``b`` alike)? Then a scalar broadcast flows on."""
        if op.kind != "rule" or not op.rule.elementwise:
            return False
        templates = op.rule.vjp_templates(op.static)
        full = self.shapes.get(target)
        active = [(p, n) for p, n in op.args.items()
                  if isinstance(n, ast.Name) and n.id in self.active and p in templates]
        return isinstance(full, tuple) and all(
            templates[p].strip() == "g" and self.shapes.get(n.id) == full for p, n in active)

    def accumulate(self, var, expr, state, origin) -> list[ast.stmt]:
        """Add one contribution to the adjoint of ``var``."""
        return self.accumulate_adjoint(self.adj(var), expr, state, origin)

    def accumulate_adjoint(self, d, expr, state, origin) -> list[ast.stmt]:
        for k in [k for k, v in self.lazy.items() if d in _sources(v)]:
            del self.lazy[k]  # broadcasts of d's old value are no longer d
        if d not in state:
            state[d] = _owned(expr)
            if self.is_scalar_broadcast(expr):
                self.lazy[d] = expr  # np.broadcast_to(s, shape): remember it
            return [_assign(d, expr, origin)]
        if self.lazy.pop(d, None) is None and self.is_scalar_broadcast(expr):
            expr = expr.args[0]  # the adjoint already has the full shape: add the scalar
        op: ast.operator = ast.Add()
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
            op, expr = ast.Sub(), expr.operand  # d -= e, not d += -e: one pass fewer
        if state[d]:
            return [_at(ast.AugAssign(ast.Name(d, ast.Store()), op, expr), origin)]
        state[d] = True
        return [_assign(d, ast.BinOp(ast.Name(d, ast.Load()), op, expr), origin)]

    def index_add(self, var, index, g, state, origin) -> list[ast.stmt]:
        """The adjoint of ``x[index]``: add ``g`` into those elements of ``dx``."""
        d = self.adj(var)
        self.lazy.pop(d, None)  # no longer the broadcast scalar it may have started as
        code = []
        if d not in state:
            code.append(_assign(d, _call("np.zeros_like", ast.Name(var, ast.Load())), origin))
        elif not state[d]:
            code.append(_assign(d, _call(f"{d}.copy"), origin))
        state[d] = True
        index = copy_tree(index)
        if is_basic_index(index, self.scalars):
            target = ast.Subscript(ast.Name(d, ast.Load()), index, ast.Store())
            code.append(_at(ast.AugAssign(target, ast.Add(), g), origin))
        else:  # repeated integer indices must each add their share
            index = _SlicesAsCalls().visit(index)  # np.add.at(d, (slice(None), idx), g)
            code.append(_at(ast.Expr(_call("np.add.at", ast.Name(d, ast.Load()), index, g)), origin))
        return code

    def backward_write(self, stmt, state) -> list[ast.stmt]:
        """Reverse ``x[idx] = v``: the written region's adjoint goes to ``v`` and is cleared
        (the elements it held before did not reach the output), then the region is restored.
        ``x[idx] += v`` passes the region's adjoint to ``v`` and keeps it."""
        adds = stmt.s2s_op == "additem"
        target, value = (stmt.target if adds else stmt.targets[0]), stmt.value
        base, index = target.value.id, target.slice
        d = self.adj(base)
        code: list[ast.stmt] = []
        if base in self.active and d in state:
            code += self.own(d, state, stmt)
            region = ast.Subscript(ast.Name(d, ast.Load()), copy_tree(index), ast.Load())
            if isinstance(value, ast.Name) and value.id in self.active:
                code += self.accumulate(value.id, self.region_adjoint(region, base, index, value),
                                        state, stmt)
            if not adds:
                cleared = ast.Subscript(ast.Name(d, ast.Load()), copy_tree(index), ast.Store())
                code.append(_assign_to(cleared, ast.Constant(0.0), stmt))
                code[-1].s2s_clears = d  # (dropped where nothing reads d after)
        code.append(self.restore_region(stmt))
        return [self.comment(stmt)] + code

    def region_adjoint(self, region, base, index, value) -> ast.expr:
        """What ``v`` receives from the adjoint ``dx[idx]`` of the region ``x[idx] = v`` wrote."""
        if not is_basic_index(index, self.scalars):
            # Repeated indices write one of their values: only that one reaches the output.
            self.helpers.add("setitem_winners")
            winners = _call("setitem_winners", _call("np.shape", ast.Name(base, ast.Load())),
                            _SlicesAsCalls().visit(copy_tree(index)))
            region = ast.BinOp(region, ast.Mult(), winners)
        elif not self.is_element(base, index):
            region = ast.Call(ast.Attribute(region, "copy", ast.Load()), [], [])  # cleared next
        if value.id in self.scalars:
            return region if self.is_element(base, index) else _call("np.sum", region)
        shape = self.shapes.get(value.id)
        if isinstance(shape, tuple) and shape == self.region_shape(base, index):
            return region
        self.helpers.add("unbroadcast")
        return self.shapes_from_roots(_call("unbroadcast", region, _call("np.shape", value)))

    def is_element(self, base, index) -> bool:
        """Does ``x[idx]`` select one element (all indices ints, one per axis)?"""
        parts = index.elts if isinstance(index, ast.Tuple) else [index]
        return self.ranks.get(base) == len(parts) and all(
            not isinstance(p, ast.Slice) and is_basic_index(p, self.scalars) and
            not (isinstance(p, ast.Constant) and p.value in (None, Ellipsis)) for p in parts)

    def region_shape(self, base, index):
        """The shape of ``x[idx]``, where the shapes tell it."""
        shapes = {**self.shapes, "#": self.shapes.get(base)}
        probe = ast.Subscript(ast.Name("#", ast.Load()), index, ast.Load())
        probe.s2s_op = "subscript"
        return analyze._subscript_shape(probe, shapes, {}, {})

    def own(self, d, state, origin) -> list[ast.stmt]:
        """Make the adjoint ``d`` a buffer of the sweep's own before it is updated in place."""
        self.lazy.pop(d, None)
        if state[d]:
            return []
        state[d] = True
        return [_assign(d, _call(f"{d}.copy"), origin)]

    # -- branches and loops --------------------------------------------------------

    def backward_if(self, stmt, state) -> list[ast.stmt]:
        self.lazy.clear()
        s1, s2 = dict(state), dict(state)
        body = self.backward_block(stmt.body, s1)
        self.lazy.clear()  # what one branch knows of its adjoints is not so in the other
        orelse = self.backward_block(stmt.orelse, s2)
        self.lazy.clear()
        for d in sorted(set(s1) | set(s2)):
            for branch_state, code in ((s1, body), (s2, orelse)):
                if d not in branch_state:
                    code.append(self.zeros(d, stmt))
                    branch_state[d] = True
        state.clear()
        state.update({d: s1[d] and s2[d] for d in s1})
        if not body and not orelse:
            return []
        node = _at(ast.If(copy_tree(stmt.test), body or [ast.Pass()], orelse), stmt)
        return [node]

    def zeros(self, d, origin):
        primal = self.primal_of[d]
        if isinstance(primal, ast.Name) and primal.id in self.scalars:
            return _assign(d, ast.Constant(0.0), origin)  # a Python float adds fastest
        return _assign(d, _call("np.zeros_like", copy_tree(primal)), origin)

    def backward_loop(self, stmt, state) -> list[ast.stmt]:
        self.lazy.clear()
        # Iterate to a fixpoint: adjoints that one iteration defines must be defined (zeros)
        # before the loop, and an adjoint may be updated in place only if every iteration
        # leaves it owned.
        start = dict(state)
        inits: dict[str, bool] = {}
        while True:
            entry = {**start, **inits}
            inner = dict(entry)
            self.lazy.clear()  # an iteration cannot rely on what the previous one left
            body = self.backward_block(stmt.body, inner)
            new = [d for d in inner if d not in entry]
            lost = [d for d in entry if d in inner and entry[d] and not inner[d]]
            if not new and not lost:
                break
            inits.update({d: True for d in new})
            for d in lost:
                (inits if d in inits else start)[d] = False
        for d in entry:
            if d not in inner:
                body.append(self.zeros(d, stmt))
        # Carried scalars first: the values the iteration computed from them are recomputed.
        restores = [self.pop(s.targets[0].id, s) for s in stmt.body
                    if getattr(s, "s2s_restored_early", False)]
        recomputed = {s.targets[0].id for s in restores}
        carried = set(recomputed)  # and what is computed from them: arithmetic only is recomputed
        for s in stmt.body:
            if isinstance(s, ast.Assign) and getattr(s, "s2s_save", None) == "after":
                s.value.s2s_target = s.targets[0].id
                recompute = self.cheap(s.value, stmt, recomputed)
                if _names_in(s.value) & carried:
                    # From a carried scalar, a call (np.exp(x)) costs more than a pop: saved.
                    recompute = recompute and not find_nodes(s.value, ast.Call)
                    if recompute:
                        carried.add(s.targets[0].id)
                if recompute:
                    # Recomputing x[i] or scalar arithmetic costs what a pop costs: keep nothing.
                    recomputed.add(s.targets[0].id)
                    self.dropped_saves.add(id(s.s2s_push_node))
                    restores.append(copy_tree(s))
                else:
                    restores.append(self.pop(s.targets[0].id, s))
                    recomputed.add(s.targets[0].id)  # restored here, so later values may use it
        body = restores + body
        self.lazy.clear()
        state.clear()
        state.update(entry)
        code = [self.zeros(d, stmt) for d in inits]
        counter = getattr(stmt, "s2s_counter", None)
        if counter and hasattr(stmt, "s2s_push_node"):
            code.append(self.pop(counter, stmt))  # this run's trip count
        if isinstance(stmt, ast.For):
            trips = copy_tree(stmt.iter)
            backwards = isinstance(trips, ast.Call) and dotted(trips.func) == "reversed"
            if backwards:  # the loop ran over reversed(range(...)): replay it forwards
                trips = trips.args[0]
            if counter:
                if backwards:
                    trips = ast.Subscript(trips, ast.Slice(None, None, ast.Constant(-1)), ast.Load())
                trips = ast.Subscript(trips, ast.Slice(None, ast.Name(counter, ast.Load()), None), ast.Load())
            replay = _call("reversed", trips) if counter or not backwards else trips
            header = ast.For(copy_tree(stmt.target), replay, body, [])
        else:
            header = ast.For(ast.Name("_", ast.Store()), _call("range", ast.Name(counter, ast.Load())),
                             body, [])
        code.append(_at(header, stmt))
        return code


# --- small AST helpers -------------------------------------------------------------







def _doubled(contributions):
    """One ``2 * e`` for an operand passed twice with equal partials (``np.dot(w, w)``,
    ``x * x``): exact, as ``e + e`` is."""
    if len(contributions) != 2 or contributions[0][0] is None or \
            contributions[0][0] != contributions[1][0]:
        return contributions
    (var, first), (_, second) = contributions
    if not isinstance(first, ast.expr) or ast.dump(first) != ast.dump(second):
        return contributions
    return [(var, simplify(ast.BinOp(ast.Constant(2), ast.Mult(), first)))]


def _leading_sum(expr, shape, full):
    """``np.sum(g, axis=0)`` where the shapes show that broadcasting added leading axes (``b``
    of shape (4,) in a (B, 4) result), then ``np.sum(g, axis=1, keepdims=True)`` over the
    axes where ``shape`` has a 1 (``(5, 1)`` in a (5, 3) result); None when they do not tell."""
    if not (isinstance(shape, tuple) and isinstance(full, tuple)) or len(full) < len(shape):
        return None
    if not all(isinstance(n, int) for n in shape + full):
        return None
    extra = len(full) - len(shape)
    pairs = list(zip(shape, full[extra:]))
    if any(s != f and s != 1 for s, f in pairs):
        return None
    ones = [i for i, (s, f) in enumerate(pairs) if s == 1 and f != 1]
    if not extra and not ones:
        return None
    if extra:
        expr = _sum(expr, range(extra), [])
    return _sum(expr, ones, [ast.keyword("keepdims", ast.Constant(True))]) if ones else expr


def _sum(expr, axes, keywords):
    axes = list(axes)
    axis = ast.Constant(axes[0]) if len(axes) == 1 else ast.Tuple([ast.Constant(i) for i in axes], ast.Load())
    return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "sum", ast.Load()), [expr],
                    [ast.keyword("axis", axis), *keywords])


def _name(node):
    return node.id if isinstance(node, ast.Name) else None


def _assign_to(target, value, origin):
    return _at(ast.Assign([target], value), origin)





class _ShapeReads(Transformer):
    def __init__(self, shapes, roots):
        self.shapes, self.roots = shapes, roots

    def visit_Call(self, node):
        self.generic_visit(node)
        func = dotted(node.func)
        if func not in ("np.shape", "np.size") or len(node.args) != 1 or \
                not isinstance(node.args[0], ast.Name):
            return node
        name = node.args[0].id
        shape = self.shapes.get(name)
        if isinstance(shape, tuple):  # the module is specialized to these shapes
            return ast.Constant(shape if func == "np.shape" else int(np.prod(shape, dtype=int)))
        if name in self.roots:
            node.args[0] = ast.Name(self.roots[name], ast.Load())
        return node


class _SlicesAsCalls(ast.NodeTransformer):
    """``x[:, i]``'s index as a value: ``(slice(None), i)`` (a bare ``:`` is only syntax)."""

    def visit_Slice(self, node):
        self.generic_visit(node)
        parts = [p if p is not None else ast.Constant(None) for p in (node.lower, node.upper, node.step)]
        if node.step is None:
            parts.pop()  # slice(start, stop): never slice(stop), which would mean something else
        if node.lower is None and node.upper is None and node.step is None:
            parts = [ast.Constant(None)]
        return ast.Call(ast.Name("slice", ast.Load()), parts, [])


def _only_new_axes(index) -> bool:
    """An index of full slices and ``None`` only: it selects every element once."""
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    return all((isinstance(p, ast.Slice) and p.lower is None and p.upper is None and p.step is None)
               or (isinstance(p, ast.Constant) and p.value is None) for p in parts)




def _sources(broadcast) -> set[str]:
    """The names the scalar ``s`` of ``np.broadcast_to(s, shape)`` reads (``dx / 1`` reads dx)."""
    return _names_in(broadcast.args[0])


def _broadcasts(expr) -> bool:
    """``np.broadcast_to(a, b)``."""
    return isinstance(expr, ast.Call) and dotted(expr.func) == "np.broadcast_to" and len(expr.args) == 2


def scalar_expr(node, scalars) -> bool:
    """Arithmetic on scalar names and numbers, sizes and counts."""
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float)
    if isinstance(node, ast.Name):
        return node.id in scalars
    if isinstance(node, ast.BinOp):
        return scalar_expr(node.left, scalars) and scalar_expr(node.right, scalars)
    if isinstance(node, ast.UnaryOp):
        return scalar_expr(node.operand, scalars)
    if isinstance(node, ast.Call):
        return dotted(node.func) in ("np.size", "reduced_count", "len")
    return False


def _owned(expr) -> bool:
    """Is ``expr`` a freshly allocated value (safe to update in place)?"""
    return isinstance(expr, (ast.BinOp, ast.UnaryOp)) or (
        isinstance(expr, ast.Call) and (dotted(expr.func) == "np.zeros_like" or (
            isinstance(expr.func, ast.Attribute) and expr.func.attr == "copy" and not expr.args)))
