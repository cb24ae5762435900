"""Stage 2: lower a function to the core language, still plain Python.

After `normalize` runs:

- every assignment has a single Name target and its value is one operation on
  atoms (names and constants): ``t1 = X @ w``; the value node carries the
  operation's qualified name in ``s2s_op`` (``numpy.matmul``, ``ndarray.T``);
  conditions, index expressions and shapes stay whole (they are never active);
- augmented assignment, tuple unpacking and ``a if c else b`` are desugared;
  ``for x in X`` is an indexed ``range`` loop; helper calls are inlined;
- ``continue`` and early ``return`` are gone: code after a branch that jumps
  is moved into the branch that falls through, so each ``break`` ends its
  block, and the function ends in a single ``return <name>``;
- names reassigned in straight-line top-level code are renamed (``h``, ``h2``),
  so only variables written inside loops or branches are ever overwritten;
- every node keeps the line and column of the user's code it came from.
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

from .astutil import assign as _assign, at, names_in as _names_in, stored_names as assigned_names, walk
from .astutil import copy_tree, name_nodes, statements
from .calls import CallLowering, is_numpy_type, tag as _tag
from .containers import NOT_KNOWN, ContainerLowering
from .controlflow import Jump, remove_jumps, rename_straight_line, split_aux_returns, tailify
from .errors import NameResolutionError, UnsupportedSyntax
from .fence import fence
from .generators import is_generator, name_generator_lines, unrolled_generator
from .naming import Namer
from .pytree import Leaves, Static, from_spec, leaf_kinds, unpacking
from .source import Binding, FunctionSource, is_docstring, param_names, star_params

BINOPS = {ast.Add: "numpy.add", ast.Sub: "numpy.subtract", ast.Mult: "numpy.multiply",
          ast.Div: "numpy.divide", ast.Pow: "numpy.power", ast.MatMult: "numpy.matmul",
          ast.FloorDiv: "numpy.floor_divide", ast.Mod: "numpy.mod"}
BITOPS = (ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift)  # masks and integer bits
UNARYOPS = {ast.USub: "numpy.negative", ast.UAdd: "numpy.positive"}

@dataclass
class Normalized:
    """A function in the core language."""

    name: str
    params: list[str]
    body: list[ast.stmt]
    result: str
    src: FunctionSource
    namer: Namer
    constants: dict[str, Binding] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)  # top-level modules the code uses
    aux: str | None = None  # with has_aux: the name holding the auxiliary output
    result_tree: Static | None = None  # a returned container: its leaves are `results`
    results: list[str] = field(default_factory=list)  # every output leaf (result first)
    aux_tree: object = None  # with has_aux: the auxiliary output (a Static, a name or a constant)
    signature: list[str] = field(default_factory=list)  # the parameters as the user wrote them
    leaves: Leaves = field(default_factory=Leaves)  # structured parameters and their leaf names
    prologue: list[ast.stmt] = field(default_factory=list)  # reads leaves out of parameters


def normalize(src: FunctionSource, namer: Namer | None = None, stack=(),
              has_aux: bool = False, allow_mutation: bool = False, structures=None,
              lengths=None, functions=None) -> Normalized:
    """Lower ``src`` to the core language (see the module docstring).

    With ``has_aux`` every ``return`` must return a pair ``(output, aux)``.
    With ``allow_mutation`` (forward mode, which can follow it) the in-place
    statements that generated gradients use are kept, tagged in ``s2s_op``:
    ``x[i] = v`` ("setitem"), ``x[i] += v`` ("additem"), ``stack.append(v)``
    ("append"), ``np.add.at(d, i, g)`` ("add_at"); ``stack.pop()`` values are
    tagged "pop" and ``[]`` values "list".

    ``structures`` gives the `pytree.spec` of parameters that are containers: each
    of their leaves becomes a parameter of its own (``params_W1``), read out of
    the container by ``Normalized.prologue``. ``lengths`` gives ``len()`` of
    array parameters where it is known (loops that grow a list are unrolled).
    ``functions`` binds names to functions known where the code is inlined: a
    parameter given a function, the nested defs and lambdas of the function it is in.
    """
    return _Normalizer(src, namer, stack, has_aux, allow_mutation, structures, lengths,
                       functions).run()


class _Normalizer(ContainerLowering, CallLowering):
    def __init__(self, src: FunctionSource, namer: Namer | None, stack, has_aux=False,
                 allow_mutation=False, structures=None, lengths=None, functions=None):
        self.src = src
        self.has_aux = has_aux
        self.allow_mutation = allow_mutation
        self.stack = tuple(stack) + ((src.filename, src.name, src.node.lineno),)  # functions being read
        params = param_names(src.node) + star_params(src.node)
        self.params = params
        self.own_locals = set(params) | assigned_names(src.node)
        self.locals = self.own_locals | src.enclosing
        self.tables: dict[str, dict] = {}  # names bound to a list or dict of functions
        self.blocks: list[list] = []  # the statement lists being lowered, innermost last
        self.functions: dict[str, Binding] = {  # names bound to functions (see `calls`)
            k: v for k, v in (functions or {}).items() if k in params or k not in self.own_locals}
        self.namer = namer or Namer()
        for name in self.locals | _names_in(src.node):
            self.namer.reserve(name)
        self.constants: dict[str, Binding] = {}
        self.imports: set[str] = set()
        self.inline_renames: dict[str, str] = {}
        self.init_containers(structures, lengths)
        self.leaves = Leaves()
        for p, spec in (structures or {}).items():
            if spec[0] != "leaf":
                tree = from_spec(spec, p, self.namer.fresh)
                self.leaves.trees[p] = tree
                self.leaves.kinds.update(leaf_kinds(spec, tree))
                self.bindings[p] = tree
                self.created_at[id(tree)] = (tree, -1)  # an argument: the caller's container
                for sub in tree.flat_containers():
                    self.created_at[id(sub)] = (sub, -1)
                self.locals |= {a.id for a in tree.flat()}
        self.shared_indices = _indices_used_elsewhere(src.node)

    def error(self, message, node, hint=None, cls=UnsupportedSyntax):
        return self.src.error(cls, message, node, hint=hint, stage="normalize")

    # -- driver -------------------------------------------------------------

    def run(self) -> Normalized:
        fence(self.src, inlined=len(self.stack) > 1)
        body = [s for s in self.src.node.body if not is_docstring(s)]
        returns = [n for n in statements(ast.Module(body=body, type_ignores=[])) if isinstance(n, ast.Return)]
        if not returns or any(r.value is None for r in returns):
            raise self.error(f"{self.src.name} must return a value on every path", self.src.node,
                             hint="end the function with `return <value>`")
        aux = None
        if self.has_aux:
            aux = self.namer.fresh("aux")
            self.locals.add(aux)
            body = split_aux_returns(body, aux, self)
            returns = [n for n in walk(ast.Module(body=body, type_ignores=[]))
                       if isinstance(n, ast.Return)]
        simple_return = len(returns) == 1 and body[-1] is returns[0]
        result = None
        if not simple_return:
            result = self.namer.fresh("result")
            self.locals.add(result)
            body = self.lower_loop_returns(body, result, depth=0)
        body = remove_jumps(tailify(body))
        stmts = self.block(body)
        if simple_return:
            ret = stmts.pop()
            tree = getattr(ret, "s2s_tree", None) or ret.value
        else:
            tree = self.bindings.get(result) or ast.Name(result, ast.Load())
        stmts = [s for s in stmts if not isinstance(s, ast.Return)]
        origin = returns[-1]
        tree = self.output_names(tree, stmts, origin)
        aux_tree = None
        if aux:
            aux_tree = self.bindings.get(aux) or ast.Name(aux, ast.Load())
        params = [leaf for p in self.params for leaf in self.leaves.flat(p)]
        stmts, renamed = rename_straight_line(stmts, params, self.namer)
        tree = _renamed(tree, renamed)
        aux_tree = _renamed(aux_tree, renamed)
        stmts = self.name_leaves_as_read(stmts, {a.id for a in (
            tree.flat() if isinstance(tree, Static) else [tree]) if isinstance(a, ast.Name)})
        params = [leaf for p in self.params for leaf in self.leaves.flat(p)]
        results = [a.id for a in (tree.flat() if isinstance(tree, Static) else [tree])]
        prologue = [at(s, self.src.node) for p, t in self.leaves.trees.items() for s in unpacking(p, t)]
        return Normalized(self.src.name, params, stmts, results[0], self.src, self.namer,
                          self.constants, self.imports,
                          aux_tree.id if isinstance(aux_tree, ast.Name) else None,
                          tree if isinstance(tree, Static) else None, results, aux_tree,
                          list(self.params), self.leaves, prologue)

    def name_leaves_as_read(self, stmts, outputs):
        """A leaf read once, by ``W = layers_0_0`` at the top level, takes the name ``W``:
        the generated code unpacks ``[(W, b), (W2, b2)] = layers`` and returns ``[(dW, db),
        (dW2, db2)]``, as a person would write it."""
        reads: dict[str, int] = {}
        writes: dict[str, int] = {}
        for node in name_nodes(ast.Module(body=stmts, type_ignores=[])):
            table = writes if isinstance(node.ctx, ast.Store) else reads
            table[node.id] = table.get(node.id, 0) + 1
        copies = {s.value.id: s for s in stmts if isinstance(s, ast.Assign)
                  and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.Name)}
        renames, dropped = {}, set()
        for tree in self.leaves.trees.values():
            for leaf in tree.flat():
                s = copies.get(leaf.id)
                if s is None or reads.get(leaf.id) != 1:
                    continue
                name = s.targets[0].id
                if writes.get(name) != 1 or name in outputs or name in self.params:
                    continue
                renames[leaf.id] = name
                dropped.add(id(s))
        if not renames:
            return stmts
        for p, tree in self.leaves.trees.items():
            self.leaves.trees[p] = tree.map(lambda a: ast.Name(renames.get(a.id, a.id), ast.Load()))
        self.leaves.kinds = {renames.get(k, k): v for k, v in self.leaves.kinds.items()}
        return [s for s in stmts if id(s) not in dropped]

    def output_names(self, tree, stmts, origin):
        """Each output leaf a distinct name that the body assigns (copies where needed)."""
        seen = set()
        params = {leaf for p in self.params for leaf in self.leaves.flat(p)}

        def own(atom):
            if isinstance(atom, ast.Name) and atom.id not in seen and atom.id not in params:
                seen.add(atom.id)
                return atom
            name = self.namer.fresh("out")
            stmts.append(_assign(name, copy.copy(atom), origin))
            seen.add(name)
            return ast.Name(name, ast.Load())
        return tree.map(own) if isinstance(tree, Static) else own(tree)

    # -- early returns ------------------------------------------------------

    def lower_loop_returns(self, block, result, depth):
        """``return e`` -> ``result = e`` + a jump; inside loops via a ``returned`` flag."""
        out = []
        for stmt in block:
            if isinstance(stmt, ast.Return):
                out.append(at(ast.Assign([ast.Name(result, ast.Store())], stmt.value), stmt))
                if depth:
                    out.append(at(ast.Assign([ast.Name(self.returned_flag(), ast.Store())],
                                              ast.Constant(True)), stmt))
                    out.append(at(ast.Break(), stmt))
                else:
                    out.append(at(Jump(), stmt))
                break
            if isinstance(stmt, ast.If):
                stmt = copy.copy(stmt)
                stmt.body = self.lower_loop_returns(stmt.body, result, depth)
                stmt.orelse = self.lower_loop_returns(stmt.orelse, result, depth)
                out.append(stmt)
            elif isinstance(stmt, (ast.For, ast.While)):
                has_return = any(isinstance(n, ast.Return) for n in walk(stmt))
                stmt = copy.copy(stmt)
                stmt.body = self.lower_loop_returns(stmt.body, result, depth + 1)
                out.append(stmt)
                if has_return:
                    exit_ = ast.Break() if depth else Jump()
                    out.append(at(ast.If(ast.Name(self.returned_flag(), ast.Load()),
                                          [at(exit_, stmt)], []), stmt))
            else:
                out.append(stmt)
        return out

    def returned_flag(self) -> str:
        if not hasattr(self, "_returned"):
            self._returned = self.namer.fresh("returned")
            self.locals.add(self._returned)
        return self._returned

    # -- statements -----------------------------------------------------------

    def block(self, stmts) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        if getattr(self, "_returned", None) and not getattr(self, "_flag_done", False):
            self._flag_done = True
            out.append(at(ast.Assign([ast.Name(self._returned, ast.Store())], ast.Constant(False)),
                           self.src.node))
        self.blocks.append(stmts)  # (see `calls.CallLowering.define`)
        for stmt in stmts:
            self.statement(stmt, out)
        self.blocks.pop()
        return out

    def statement(self, stmt, out):
        if isinstance(stmt, ast.Assign):
            first = stmt.targets[0]
            if len(stmt.targets) > 1 and not isinstance(first, ast.Name):
                raise self.error("in a chained assignment `a = b = ...` the first target must be a "
                                 "name", first, hint="assign each target on its own line")
            self.assign(first, stmt.value, stmt, out)
            for target in stmt.targets[1:]:  # a = b = v: both hold the same object
                self.assign(target, ast.Name(first.id, ast.Load()), stmt, out)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is None:
                return
            self.assign(stmt.target, stmt.value, stmt, out)
        elif isinstance(stmt, ast.AugAssign):
            if isinstance(stmt.target, ast.Subscript) and isinstance(stmt.op, ast.Add):
                out.append(self.mutation(stmt, "additem", out))
                return
            if isinstance(stmt.target, ast.Subscript):
                self.augmented_item(stmt, out)
                return
            if not isinstance(stmt.target, ast.Name):
                raise self.error(f"cannot assign to {type(stmt.target).__name__}", stmt.target)
            value = at(ast.BinOp(ast.Name(stmt.target.id, ast.Load()), stmt.op, stmt.value), stmt)
            start = len(out)
            self.assign(ast.Name(stmt.target.id, ast.Store()), value, stmt, out)
            for node in reversed(out[start:]):  # numpy updates an array in place: see `s2s.alias`
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp) and \
                        isinstance(node.value.left, ast.Name) and node.value.left.id == stmt.target.id:
                    node.s2s_inplace = True
                    break
        elif isinstance(stmt, ast.Return):
            value = self.value(stmt.value, out)
            if isinstance(value, Static):
                node = at(ast.Return(ast.Constant(None)), stmt)
                node.s2s_tree = value
                out.append(node)
                return
            if not isinstance(value, ast.Name):
                name = self.namer.temp()
                out.append(_assign(name, value, stmt))
                value = ast.Name(name, ast.Load())
            out.append(at(ast.Return(value), stmt))
        elif isinstance(stmt, ast.If) and self.static_value(stmt.test) is not NOT_KNOWN:
            for s in (stmt.body if self.static_value(stmt.test) else stmt.orelse):
                self.statement(s, out)  # decided when the derivative is generated
        elif isinstance(stmt, ast.If):
            if isinstance(stmt.test, ast.Name) and stmt.test.id in self.locals and \
                    stmt.test.id not in assigned_names(stmt):
                cond = stmt.test.id  # already a saved outcome (as in generated code)
            else:
                cond = self.namer.fresh("cond")
                out.append(_assign(cond, self.inactive(stmt.test, out), stmt))
            body, orelse = self.branch_bodies(stmt)
            out.append(at(ast.If(ast.Name(cond, ast.Load()), body, orelse), stmt))
        elif isinstance(stmt, ast.For):
            self.for_loop(stmt, out)
        elif isinstance(stmt, ast.While):
            test = self.inactive(stmt.test)
            body = self.loop_body(stmt, lambda: self.block(stmt.body), out)
            out.append(at(ast.While(test, body, []), stmt))
        elif isinstance(stmt, ast.FunctionDef):
            self.define(stmt.name, stmt, stmt)
        elif isinstance(stmt, (ast.Break, ast.Pass)):
            out.append(stmt)
        elif isinstance(stmt, (ast.Assert, ast.Raise)):
            out.append(at(self.inactive_stmt(stmt, out), stmt))
        elif isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant):
                return
            if self.mutate(stmt, out):
                return
            kind = self.mutating_call(stmt.value)
            if kind:
                node = at(ast.Expr(self.add_at_node(stmt.value, out) if kind == "add_at" else
                                    self.mutating_call_node(stmt.value, out)), stmt)
                node.s2s_op = kind
                out.append(node)
                return
            if self.is_report(stmt.value):  # print(...), logging: kept, with no effect on derivatives
                out.append(at(self.inactive_stmt(stmt, out), stmt))
                return
            raise self.error("an expression statement has no effect on the result (or mutates "
                             "something, which s2s does not differentiate)", stmt,
                             hint="remove it, or assign its value to a name that is used")
        else:
            raise self.error(f"{type(stmt).__name__} statements are not supported", stmt)

    def assign(self, target, value, stmt, out):
        if isinstance(value, ast.Lambda) and isinstance(target, ast.Name):
            self.define(target.id, value, stmt)
            return
        if isinstance(target, ast.Name) and self.function_table(target.id, value, stmt):
            return
        if isinstance(target, ast.Name):
            self.functions.pop(target.id, None)
        if isinstance(target, (ast.Name, ast.Tuple, ast.List)) or (
                isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                and target.value.id in self.bindings):
            if isinstance(target, ast.Name) and target.id in self.stacks:
                value.s2s_stack = True
            value = self.value(value, out)
            if isinstance(value, Static):
                self.bind(target, value, stmt, out)
                return
            if isinstance(target, ast.Subscript):
                self.store_item(target, self.atom_of(value, stmt, out), stmt, out)
                return
        if isinstance(target, ast.Name):
            self.forget(target.id)
            if isinstance(value, ast.Name) and value.id == target.id:
                return  # x = x does nothing
            if not isinstance(value, ast.Name) and target.id in _operand_names(value):
                # x = f(x): compute into a temporary so the old x stays readable.
                name = self.namer.temp()
                out.append(_assign(name, value, stmt))
                value = ast.Name(name, ast.Load())
            out.append(_assign(target.id, value, stmt))
        elif isinstance(target, (ast.Tuple, ast.List)):
            names = []
            for elt in target.elts:
                if not isinstance(elt, ast.Name):
                    raise self.error("only names can be unpacked into", elt)
                names.append(elt.id)
            if not isinstance(value, ast.Call):  # rows of an array
                self.unpack_value(target, self.atom_of(value, stmt, out), stmt, out)
                return
            whole = self.atom_of(value, stmt, out)
            for name in names:
                self.forget(name)
            for i, name in enumerate(names):
                item = at(ast.Subscript(whole, ast.Constant(i), ast.Load()), stmt)
                item.s2s_op = "unpack"
                item.s2s_unpack_len = len(names)
                out.append(_assign(name, item, stmt))
        elif isinstance(target, ast.Subscript):
            out.append(self.mutation(at(ast.Assign([target], value), stmt), "setitem", out))
        else:
            raise self.error(f"cannot assign to {type(target).__name__}", target)

    def mutation(self, stmt, kind, out):
        """``x[idx] = v`` / ``x[idx] += v`` (forward mode) with ``x`` a name and ``v`` an atom."""
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
        new_target = ast.Subscript(self.written_array(target), self.inactive(target.slice, out),
                                   ast.Store())
        value = self.atom(stmt.value, out)
        node = ast.Assign([new_target], value) if kind == "setitem" else \
            ast.AugAssign(new_target, ast.Add(), value)
        node.s2s_op = kind
        return at(node, stmt)

    def written_array(self, target) -> ast.Name:
        """The local array that ``target`` (``x[idx]``) writes into."""
        if not isinstance(target.value, ast.Name):
            raise self.error("only `name[index] = value` can be assigned into", target,
                             hint="name the array first: `row = x[i]`, then `row[j] = v`")
        if target.value.id not in self.locals:
            raise self.error(f"assignment into {target.value.id!r} changes a module-level array",
                             target, hint=f"copy it first: `{target.value.id}_copy = "
                                          f"{target.value.id}.copy()`, and write into the copy")
        return ast.Name(target.value.id, ast.Load())

    def augmented_item(self, stmt, out):
        """``x[idx] op= v`` -> ``t1 = x[idx]; t2 = t1 op v; x[idx] = t2``."""
        op = BINOPS.get(type(stmt.op))
        if op is None:
            raise self.error(f"operator {type(stmt.op).__name__} is not supported", stmt)
        array = self.written_array(stmt.target)
        index = self.inactive(stmt.target.slice, out)
        old = self.namer.temp()
        out.append(_assign(old, _tag(ast.Subscript(array, index, ast.Load()), "subscript", stmt), stmt))
        value = self.atom(stmt.value, out)
        new = self.namer.temp()
        out.append(_assign(new, _tag(ast.BinOp(ast.Name(old, ast.Load()), stmt.op, value), op, stmt), stmt))
        write = ast.Assign([ast.Subscript(copy_tree(array), copy_tree(index), ast.Store())],
                           ast.Name(new, ast.Load()))
        write.s2s_op = "setitem"
        out.append(at(write, stmt))

    def mutating_call(self, call) -> str | None:
        if not (self.allow_mutation and isinstance(call, ast.Call)):
            return None
        if isinstance(call.func, ast.Attribute) and call.func.attr == "append" and len(call.args) == 1:
            return "append"
        binding = self.src.resolve(call.func)
        if binding is not None and binding.qualname == "numpy.add.at":
            return "add_at"
        return None

    def add_at_node(self, call, out):
        """``np.add.at(d, index, g)``: the index is never differentiated (``(slice(None), i)``)."""
        if len(call.args) != 3 or call.keywords:
            return self.simple(call, out)
        buffer, index, value = call.args
        node = ast.Call(self.inactive(call.func), [self.atom(buffer, out), self.inactive(index),
                                                   self.atom(value, out)], [])
        return _tag(node, "numpy.add.at", call)

    def mutating_call_node(self, call, out):
        receiver = self.atom(call.func.value, out)
        return ast.Call(ast.Attribute(receiver, "append", ast.Load()), [self.atom(call.args[0], out)], [])

    def for_loop(self, stmt, out):
        if not isinstance(stmt.target, (ast.Name, ast.Tuple)):
            raise self.error("loop targets must be names", stmt.target)
        table = self.table_of(stmt.iter) if isinstance(stmt.target, ast.Name) else None
        if table is not None:  # for f in (np.sin, np.cos): unrolled
            for binding in table.values():
                self.functions[stmt.target.id] = binding
                for s in stmt.body:
                    self.statement(s, out)
            self.functions.pop(stmt.target.id, None)
            return
        generator = self.generator_of(stmt.iter)
        if generator is not None:
            start = len(out)
            for s in unrolled_generator(self, stmt, generator):
                self.statement(s, out)
            name_generator_lines(out[start:], generator.function.get(), self.src)
            return
        items = self.constant_items(stmt.iter)
        if items is None:
            items = self.unrolled_items(stmt, out)
        if items is not None:
            self.unrolled_loop(stmt, items, out)
            return
        it = stmt.iter
        prologue = []
        binding = self.src.resolve(it.func) if isinstance(it, ast.Call) else None
        kind = binding.qualname if binding and binding.kind == "builtin" else None
        assigned = assigned_names(ast.Module(body=stmt.body, type_ignores=[]))
        if kind == "range" and isinstance(stmt.target, ast.Name):
            args = [self.loop_bound(a, assigned, out) for a in it.args]
            index = self.loop_index(stmt.target.id, stmt, prologue)
        elif kind == "reversed" and isinstance(stmt.target, ast.Name) and self.is_range(it.args[0]):
            # reversed(range(...)), as generated backward sweeps write it: kept whole. Python
            # reads the range once; a name the body reassigns is read into a copy before.
            it, starts = self.inactive(it), {}
            for node in walk(it):
                if isinstance(node, ast.Name) and node.id in assigned and node.id in self.locals:
                    if node.id not in starts:
                        starts[node.id] = self.namer.fresh(node.id + "_start")
                        out.append(_assign(starts[node.id], ast.Name(node.id, ast.Load()), stmt.iter))
                    node.id = starts[node.id]
            index = self.loop_index(stmt.target.id, stmt, prologue)
            self.forget(index)
            body = self.loop_body(stmt, lambda: self.loop_prologue(prologue) + self.block(stmt.body),
                                  out)
            out.append(at(ast.For(ast.Name(index, ast.Store()), it, body or [ast.Pass()], []), stmt))
            return
        else:
            if kind == "enumerate":
                seqs, targets = [it.args[0]], None
                if not (isinstance(stmt.target, ast.Tuple) and len(stmt.target.elts) == 2):
                    raise self.error("unpack enumerate as `for i, x in enumerate(X)`", stmt.target)
                start = it.args[1:] + [k.value for k in it.keywords if k.arg == "start"]
                if start:  # enumerate(X, start): the count is the position plus start
                    index = self.namer.fresh("i")
                    count = ast.BinOp(ast.Name(index, ast.Load()), ast.Add(),
                                      self.loop_bound(start[0], assigned, out))
                    prologue.append(_assign(stmt.target.elts[0].id, _tag(count, "numpy.add", it), stmt))
                else:
                    index = self.loop_index(stmt.target.elts[0].id, stmt, prologue)
                targets = [stmt.target.elts[1]]
            elif kind == "reversed":  # the elements of X[::-1]
                backwards = ast.Subscript(it.args[0], ast.Slice(None, None, ast.Constant(-1)), ast.Load())
                seqs, targets, index = [at(backwards, it)], [stmt.target], self.namer.fresh("i")
            elif kind == "zip":
                seqs = it.args
                if not (isinstance(stmt.target, ast.Tuple) and len(stmt.target.elts) == len(seqs)):
                    raise self.error("unpack zip as `for a, b in zip(A, B)`", stmt.target)
                targets, index = stmt.target.elts, self.namer.fresh("i")
            else:
                seqs, targets, index = [it], [stmt.target], self.namer.fresh("i")
            atoms = [self.loop_bound(s, assigned, out) for s in seqs]
            lengths = [at(ast.Call(ast.Name("len", ast.Load()), [copy.copy(a)], []), stmt) for a in atoms]
            if len(lengths) == 1:
                length = lengths[0]
                length.s2s_op = "builtins.len"
            else:  # zip stops at the shortest sequence (never differentiated: no s2s_op)
                length = at(ast.Call(ast.Name("min", ast.Load()), lengths, []), stmt)
            n = self.namer.fresh("n")
            out.append(_assign(n, length, stmt))
            args = [ast.Name(n, ast.Load())]
            for tgt, seq in zip(targets, atoms):
                item = at(ast.Subscript(copy.copy(seq), ast.Name(index, ast.Load()), ast.Load()), stmt)
                item.s2s_op = "subscript"
                self.assign(tgt, item, stmt, prologue) if not isinstance(tgt, ast.Name) else \
                    prologue.append(_assign(tgt.id, item, stmt))
        rng = at(ast.Call(ast.Name("range", ast.Load()), args, []), stmt)
        self.forget(index)
        body = self.loop_body(stmt, lambda: self.loop_prologue(prologue) + self.block(stmt.body), out)
        out.append(at(ast.For(ast.Name(index, ast.Store()), rng, body or [ast.Pass()], []), stmt))

    def generator_of(self, it) -> Binding | None:
        """The user generator function that ``it`` calls (``unpack_layers(w)``), else None."""
        if not isinstance(it, ast.Call) or isinstance(it.func, ast.Lambda):
            return None
        binding = self.function_binding(it.func)
        if binding is None or binding.kind != "user" or not is_generator(binding.function.get()):
            return None
        return binding

    def constant_items(self, it):
        """The items of a module constant or closure variable that is a list or tuple of
        numbers (``for m, n in shapes``): the loop is unrolled over them."""
        if not isinstance(it, ast.Name) or it.id in self.locals:
            return None
        binding = self.src.resolve(it)
        if binding is None or binding.kind != "constant" or not isinstance(binding.value, (list, tuple)):
            return None

        def item(v):
            if isinstance(v, (list, tuple)):
                items = [item(i) for i in v]
                return None if None in items else Static("list" if isinstance(v, list) else "tuple", items)
            return at(ast.Constant(v), it) if type(v) in (int, float, bool, str) else None
        items = [item(v) for v in binding.value]
        return None if any(i is None for i in items) or len(items) > 64 else items

    def loop_prologue(self, prologue):
        for s in prologue:
            self.forget(s.targets[0].id)
        return [copy_tree(s) for s in prologue]

    def is_range(self, node) -> bool:
        """``range(...)``, or a slice of one (``range(n)[:n_iter]``, as backward sweeps write)."""
        while isinstance(node, ast.Subscript):
            node = node.value
        binding = self.src.resolve(node.func) if isinstance(node, ast.Call) else None
        return binding is not None and binding.kind == "builtin" and binding.qualname == "range"

    def loop_index(self, name, stmt, prologue) -> str:
        """The variable a ``range``/``enumerate`` loop counts in: ``name`` itself, unless
        ``name`` also lives outside the loop (an index used before it, a value read after
        it): then a fresh index, copied into ``name`` at the top of the body, so ``name``
        is an ordinary variable whose overwritten values the backward sweep restores."""
        if name not in self.shared_indices:
            return name
        index = self.namer.fresh(name)
        prologue.append(_assign(name, ast.Name(index, ast.Load()), stmt))
        return index

    def loop_bound(self, expr, assigned_in_body, out):
        """An atom for a value the loop header reads, safe from writes in the body."""
        atom = self.atom(expr, out)
        if isinstance(atom, ast.Name) and atom.id in assigned_in_body:
            name = self.namer.fresh(atom.id + "_start")
            out.append(_assign(name, atom, expr))
            atom = ast.Name(name, ast.Load())
        return atom

    # -- expressions ----------------------------------------------------------

    def atom(self, expr, out, fresh_copy=False) -> ast.expr:
        """A Name or Constant holding the value of ``expr`` (emitting temporaries)."""
        if isinstance(expr, ast.Constant):
            return expr
        if isinstance(expr, ast.Name) and not fresh_copy and expr.id not in self.bindings:
            return self.name(expr)
        value = self.simple(expr, out)
        if isinstance(value, ast.Constant) or isinstance(value, ast.Name) and value.id in self.constants:
            return value  # (a constant named for an object's attribute: self.W)
        name = self.namer.temp()
        out.append(_assign(name, value, expr))
        return ast.Name(name, ast.Load())

    def name(self, node: ast.Name) -> ast.expr:
        if node.id in self.tables or node.id in self.functions and self.functions[node.id].kind != "object":
            raise self.error(f"the function {node.id!r} is used as a value", node,
                             hint="s2s inlines functions where they are called or passed to a "
                                  "helper; call it here instead")
        if node.id in self.locals or node.id not in self.source_names:  # (or one of ours)
            return ast.Name(node.id, ast.Load())
        binding = self.src.resolve(node)
        if binding is None:
            raise self.error(f"cannot resolve name {node.id!r}", node, cls=NameResolutionError,
                             hint="define it before use, pass it as an argument, or import it "
                                  "at module level")
        if binding.kind == "constant" or binding.kind == "object" and not isinstance(binding.value, type):
            self.constants[node.id] = binding  # (an object passed to a helper: read as it runs)
            return ast.Name(node.id, ast.Load())
        raise self.error(f"{node.id!r} is a {binding.kind} ({binding.qualname}), used as a value", node)

    def simple(self, expr, out) -> ast.expr:
        """One operation on atoms, tagged with its qualified name in ``s2s_op``; a container
        used as a value becomes ``np.stack`` of its items."""
        value = self.value(expr, out)
        return self.as_array(value, expr, out) if isinstance(value, Static) else value

    def operation_of(self, expr, out) -> ast.expr:
        """`simple`, for expressions that are not containers."""
        if isinstance(expr, (ast.Name, ast.Constant)):
            return self.atom(expr, out)
        if isinstance(expr, ast.BinOp) and self.logistic_argument(expr) is not None:
            # 1 / (1 + exp(-a)), the logistic sigmoid written out: one operation whose
            # derivative is ans * (1 - ans), so the backward sweep keeps only its result.
            arg = self.atom(self.logistic_argument(expr), out)
            exp = _tag(ast.Call(self.canonical_func("numpy.exp", expr), [
                ast.UnaryOp(ast.USub(), arg)], []), "numpy.exp", expr)
            node = ast.BinOp(copy_tree(expr.left), ast.Div(),
                             ast.BinOp(copy_tree(expr.right.left), ast.Add(), exp))
            node.s2s_arg = arg
            return _tag(node, "scipy.special.expit", expr)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, BITOPS):
            return self.inactive(expr)  # ints and booleans only (numpy refuses floats): never active
        if isinstance(expr, ast.BinOp):
            op = BINOPS.get(type(expr.op))
            if op is None:
                raise self.error(f"operator {type(expr.op).__name__} is not supported", expr)
            left, right = self.atom(expr.left, out), self.atom(expr.right, out)
            if isinstance(expr.op, ast.Mult) and isinstance(left, ast.Name) and \
                    isinstance(right, ast.Name) and left.id == right.id:
                # x * x is x ** 2: one adjoint term instead of two equal ones
                return _tag(ast.BinOp(left, ast.Pow(), ast.Constant(2)), BINOPS[ast.Pow], expr)
            return _tag(ast.BinOp(left, expr.op, right), op, expr)
        if isinstance(expr, ast.UnaryOp):
            if isinstance(expr.op, ast.Not) or isinstance(expr.op, ast.Invert):
                return self.inactive(expr)
            operand = self.atom(expr.operand, out)
            if isinstance(operand, ast.Constant):  # -1.5, -np.inf: a constant, static to the rules
                return at(ast.Constant(-operand.value if isinstance(expr.op, ast.USub) else operand.value), expr)
            return _tag(ast.UnaryOp(expr.op, operand), UNARYOPS[type(expr.op)], expr)
        if isinstance(expr, ast.Call):
            return self.call(expr, out)
        if isinstance(expr, ast.Attribute):
            binding = self.src.resolve(expr) or self.argument_attribute(expr)
            if binding is not None:
                return self.global_value(binding, expr)
            return _tag(ast.Attribute(self.atom(expr.value, out), expr.attr, ast.Load()),
                        f"ndarray.{expr.attr}", expr)
        if isinstance(expr, ast.Subscript):
            if self.is_index_maker(expr.value):  # np.s_[1:3]: an index, never active
                return _tag(self.inactive(expr, out), "index", expr)
            node = ast.Subscript(self.atom(expr.value, out), self.inactive(expr.slice, out), ast.Load())
            return _tag(node, "subscript", expr)
        if isinstance(expr, ast.IfExp):
            cond = self.namer.fresh("cond")
            out.append(_assign(cond, self.inactive(expr.test, out), expr))
            name = self.namer.temp()
            body, orelse = [], []
            self.flow_depth += 1
            body.append(_assign(name, self.simple(expr.body, body), expr))
            orelse.append(_assign(name, self.simple(expr.orelse, orelse), expr))
            self.flow_depth -= 1
            out.append(at(ast.If(ast.Name(cond, ast.Load()), body, orelse), expr))
            return ast.Name(name, ast.Load())
        if isinstance(expr, ast.List) and not expr.elts and self.allow_mutation:
            return _tag(ast.List([], ast.Load()), "list", expr)
        if isinstance(expr, (ast.Tuple, ast.List)):
            return at(type(expr)([self.atom(e, out) for e in expr.elts], ast.Load()), expr)
        if isinstance(expr, (ast.Compare, ast.BoolOp)):
            return self.inactive(expr)
        raise self.error(f"{type(expr).__name__} expressions are not supported", expr)

    def logistic_argument(self, expr):
        """``a`` when ``expr`` is ``1 / (1 + np.exp(-a))`` (any spelling of 1 and exp)."""
        def one(node):
            return isinstance(node, ast.Constant) and node.value == 1 and type(node.value) in (int, float)

        if not (isinstance(expr.op, ast.Div) and one(expr.left) and isinstance(expr.right, ast.BinOp)
                and isinstance(expr.right.op, ast.Add) and one(expr.right.left)):
            return None
        call = expr.right.right
        if not (isinstance(call, ast.Call) and len(call.args) == 1 and not call.keywords
                and isinstance(call.args[0], ast.UnaryOp) and isinstance(call.args[0].op, ast.USub)):
            return None
        binding = self.src.resolve(call.func)
        if binding is None or binding.qualname not in ("numpy.exp", "math.exp"):
            return None
        return call.args[0].operand

    def global_value(self, binding: Binding, node) -> ast.expr:
        if binding.kind == "constant" and isinstance(binding.value, (int, float, bool)):
            return at(ast.Constant(binding.value), node)
        if binding.kind in ("constant", "object") and "." in binding.qualname and \
                not isinstance(binding.value, type):
            return self.object_constant(binding, node)  # self.W, network.first
        if binding.kind == "library" and binding.qualname in ("numpy.newaxis",):
            return at(ast.Constant(None), node)
        if binding.kind == "library" and is_numpy_type(binding.qualname):
            return self.canonical_func(binding.qualname, node)  # a dtype argument: np.float64
        if binding.kind == "library" and binding.qualname in ("numpy.pi", "numpy.e", "math.pi",
                                                              "math.e", "numpy.inf", "math.inf"):
            import math
            return at(ast.Constant(getattr(math, binding.qualname.split(".")[1])), node)
        raise self.error(f"{binding.qualname} cannot be used as a value here", node)



def _renamed(tree, renames):
    if isinstance(tree, Static):
        return tree.map(lambda a: ast.Name(renames.get(a.id, a.id), ast.Load()) if isinstance(a, ast.Name) else a)
    if isinstance(tree, ast.Name):
        return ast.Name(renames.get(tree.id, tree.id), ast.Load())
    return tree


def _indices_used_elsewhere(func) -> set[str]:
    """Names that count a loop (``for t in range``, ``for t, x in enumerate``) and are also
    a parameter, assigned otherwise, read outside the loops that count in them, or
    counted by two nested loops."""
    def counted(loop):
        if not (isinstance(loop, ast.For) and isinstance(loop.iter, ast.Call) and
                isinstance(loop.iter.func, ast.Name) and loop.iter.func.id in ("range", "enumerate", "reversed")):
            return None
        target = loop.target.elts[0] if isinstance(loop.target, ast.Tuple) else loop.target
        return target.id if isinstance(target, ast.Name) else None

    indices = {counted(n) for n in walk(func)} - {None}
    shared = indices & set(param_names(func))

    def visit(node, enclosing):
        name = counted(node)
        if name is not None:
            if name in enclosing:
                shared.add(name)
            visit(node.iter, enclosing)
            for elt in node.target.elts[1:] if isinstance(node.target, ast.Tuple) else ():
                visit(elt, enclosing)
            for stmt in node.body + node.orelse:
                visit(stmt, enclosing | {name})
            return
        if isinstance(node, ast.Name) and node.id in indices and (
                isinstance(node.ctx, ast.Store) or node.id not in enclosing):
            shared.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, enclosing)

    for stmt in func.body:
        visit(stmt, frozenset())
    return shared


def _operand_names(value) -> set[str]:
    return _names_in(value)
