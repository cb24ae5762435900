"""Containers, for the normalize stage: tuples, lists and dicts whose structure is static.

`ContainerLowering` is mixed into the normalizer. A container value never
reaches the engine: a name bound to one (``t = (x, 2 * x)``, a structured
parameter, a helper's tuple result) is bound to a `pytree.Static` whose leaves
are atoms, so ``t[1]``, ``a, b = t``, ``params["W1"]``, ``len(t)``, ``t + u``,
``lst.append(v)`` and ``d[k] = v`` are resolved while normalizing, and a loop
over a container (``for W, b in layers``, ``zip``, ``enumerate``, a
comprehension) is unrolled. Inside a loop or branch that is not unrolled a
name rebound to a container gets leaf names of its own (``t_0``, ``t_1``) so
that every path agrees; what cannot be known statically (an index that is not
a constant, a list that grows in a loop of unknown length) is refused with
its position.
"""
from __future__ import annotations

import ast
import copy
import operator

from .astutil import assign as _assign, at, names_in, stored_names, walk
from .errors import UnsupportedSyntax
from .generators import materialized
from .pytree import Static, display
from .rules import lookup as rule_of
from .rules.registry import DYNAMIC

KINDS = {ast.Tuple: "tuple", ast.List: "list"}
STATIC_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                 ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
STATIC_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
                  ast.Eq: operator.eq, ast.NotEq: operator.ne}
SEQUENCE_PARAMS = {"numpy.stack", "numpy.concatenate", "numpy.concat", "numpy.hstack", "numpy.vstack",
                   "numpy.column_stack", "numpy.dstack"}
NOT_KNOWN = object()


class ContainerLowering:
    """The normalizer's methods for containers (see the module docstring)."""

    def init_containers(self, structures, lengths):
        self.bindings: dict[str, Static] = {}  # names bound to containers
        self.static_ints: dict[str, int] = {}  # names whose int value is known here
        self.lengths = dict(lengths or {})  # parameter -> len(), from known shapes
        self.flow_depth = 0  # loops and branches (not unrolled) we are inside
        self.stable: dict[str, Static] = {}  # a name's own leaf names, for control flow
        self.created_at: dict[int, tuple] = {}  # id -> (container, loop/branch depth it was made at)
        once = _assigned_once(self.src.node)
        self.source_names = source_names = names_in(self.src.node)
        self.reassigned = source_names - ((set(self.params) - stored_names(self.src.node)) | once)
        self.stacks = _stacks(self.src.node, _is_generated(self.src)) if self.allow_mutation else set()

    # -- values ---------------------------------------------------------------

    def dynamic_stack(self, expr) -> bool:
        """``[]`` for a stack that a loop pushes and another pops (generated code; forward mode
        follows it as it runs)."""
        return self.allow_mutation and isinstance(expr, ast.List) and not expr.elts and \
            getattr(expr, "s2s_stack", False)

    def value(self, expr, out):
        """A `Static` container, or (as `simple`) one operation on atoms."""
        if isinstance(expr, ast.Name) and expr.id in self.bindings:
            return self.bindings[expr.id]
        if isinstance(expr, (ast.Tuple, ast.List)) and not self.dynamic_stack(expr):
            return Static(KINDS[type(expr)], [self.element(e, out) for e in expr.elts])
        if isinstance(expr, ast.Dict):
            keys = []
            for k in expr.keys:
                key = self.static_value(k) if k is not None else NOT_KNOWN
                if key is NOT_KNOWN or not isinstance(key, (str, int, float, bool, tuple)):
                    raise self.error("dict keys must be constants known when the derivative is "
                                     "generated", k or expr)
                keys.append(key)
            return Static("dict", [self.element(v, out) for v in expr.values], keys)
        if isinstance(expr, (ast.ListComp, ast.GeneratorExp)):
            return self.comprehension(expr, out)
        if isinstance(expr, ast.Subscript) and not self.is_index_maker(expr.value):
            base = self.container_of(expr.value, out)
            if isinstance(base, Static):
                return self.static_item(base, expr.slice, expr)
            if base is not None:
                node = ast.Subscript(base, self.inactive(expr.slice, out), ast.Load())
                node.s2s_op = "subscript"
                return at(node, expr)
        if isinstance(expr, ast.BinOp) and any(self.is_container_expr(e) or self.container_root(e)
                                               for e in (expr.left, expr.right)):
            left, right = self.container_of(expr.left, out), self.container_of(expr.right, out)
            if isinstance(left, Static) or isinstance(right, Static):
                return self.container_binop(expr, left, right)
            return self.operation_of(at(ast.BinOp(left, expr.op, right), expr), out)
        if isinstance(expr, ast.Call):
            result = self.container_call(expr, out)
            if result is not None:
                return result
        if isinstance(expr, ast.IfExp):
            test = self.static_value(expr.test)
            if test is not NOT_KNOWN:
                return self.value(expr.body if test else expr.orelse, out)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and \
                expr.value.id in self.bindings:
            tree = self.bindings[expr.value.id]
            if tree.kind == "namedtuple" and expr.attr in tree.keys:
                return tree.items[tree.keys.index(expr.attr)]
            raise self.error(f"a {tree.kind} has no attribute {expr.attr!r} s2s can read", expr)
        return self.operation_of(expr, out)

    def container_of(self, expr, out):
        """A `Static` for ``expr``, or an atom holding its value (None: not computed)."""
        if isinstance(expr, ast.Name) and expr.id not in self.bindings:
            return self.name(expr)
        value = self.value(expr, out)
        if isinstance(value, Static) or isinstance(value, (ast.Name, ast.Constant)):
            return value
        name = self.namer.temp()
        out.append(_assign(name, value, expr))
        return ast.Name(name, ast.Load())

    def is_container_expr(self, expr) -> bool:
        return isinstance(expr, (ast.Tuple, ast.List, ast.Dict, ast.ListComp)) or (
            isinstance(expr, ast.Name) and expr.id in self.bindings)

    def element(self, expr, out):
        """An item of a container display: a `Static`, a constant, or a name that keeps its value."""
        value = self.value(expr, out)
        if isinstance(value, Static) or isinstance(value, ast.Constant):
            return value
        if isinstance(value, ast.Name) and value.id not in self.reassigned:
            return value
        name = self.namer.temp()  # a tuple holds the value, not the variable
        out.append(_assign(name, value, expr))
        return ast.Name(name, ast.Load())

    def as_array(self, tree: Static, origin, out, sequence=False) -> ast.expr:
        """A container used where a value is needed: a display (``sequence``) or ``np.stack``."""
        if tree.kind == "dict":
            raise self.error("a dict cannot be used as an array", origin,
                             hint="read its entries: d['key']")
        items = [self.as_array(i, origin, out) if isinstance(i, Static) else i for i in tree.items]
        node = at((ast.List if tree.kind == "list" else ast.Tuple)(items, ast.Load()), origin)
        if sequence:
            return node
        if not items:
            raise self.error("an empty container cannot be used as an array", origin)
        stack = ast.Call(self.canonical_func("numpy.stack", origin), [node], [])
        stack.s2s_op = "numpy.stack"
        name = self.namer.temp()
        out.append(_assign(name, at(stack, origin), origin))
        return ast.Name(name, ast.Load())

    def static_item(self, tree: Static, index, origin):
        key = self.static_value(index)
        if key is NOT_KNOWN:
            raise self.error(f"an index into a {tree.kind} must be known when the derivative is "
                             "generated (a constant, or the variable of a loop over a container)",
                             index, hint="loop over the container itself: for item in items")
        try:
            if isinstance(key, slice):
                if tree.kind == "dict":
                    raise TypeError("slice of a dict")
                out = tree.copy()
                out.items = tree.items[key]
                out.kind = "tuple" if tree.kind == "namedtuple" else tree.kind
                return out
            return tree.get(key)
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise self.error(f"{type(exc).__name__} indexing a {tree.kind} with {key!r}", origin,
                             cls=UnsupportedSyntax) from None

    def static_value(self, expr):
        """The Python value of ``expr`` if it is known while normalizing, else NOT_KNOWN."""
        if isinstance(expr, ast.Constant):
            return expr.value
        if isinstance(expr, ast.Name):
            if expr.id in self.static_ints:
                return self.static_ints[expr.id]
            if expr.id not in self.locals:
                binding = self.src.resolve(expr)
                if binding is not None and binding.kind == "constant" and \
                        isinstance(binding.value, (int, str, bool)):
                    return binding.value
            return NOT_KNOWN
        if isinstance(expr, ast.Slice):
            parts = [None if p is None else self.static_value(p) for p in (expr.lower, expr.upper, expr.step)]
            return NOT_KNOWN if NOT_KNOWN in parts else slice(*parts)
        if isinstance(expr, ast.Tuple):
            parts = [self.static_value(e) for e in expr.elts]
            return NOT_KNOWN if NOT_KNOWN in parts else tuple(parts)
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, (ast.USub, ast.Not)):
            v = self.static_value(expr.operand)
            return NOT_KNOWN if v is NOT_KNOWN else (-v if isinstance(expr.op, ast.USub) else not v)
        if isinstance(expr, ast.BinOp) and type(expr.op) in STATIC_BINOPS:
            a, b = self.static_value(expr.left), self.static_value(expr.right)
            if NOT_KNOWN in (a, b) or not all(type(v) is int for v in (a, b)):
                return NOT_KNOWN
            return STATIC_BINOPS[type(expr.op)](a, b)
        if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and type(expr.ops[0]) in STATIC_COMPARE:
            a, b = self.static_value(expr.left), self.static_value(expr.comparators[0])
            if NOT_KNOWN in (a, b) or not all(type(v) in (int, str, bool) for v in (a, b)):
                return NOT_KNOWN
            return STATIC_COMPARE[type(expr.ops[0])](a, b)
        if isinstance(expr, ast.BoolOp):
            values = [self.static_value(v) for v in expr.values]
            if NOT_KNOWN in values:
                return NOT_KNOWN
            return all(values) if isinstance(expr.op, ast.And) else any(values)
        if isinstance(expr, ast.Call) and self.builtin_name(expr) == "len" and len(expr.args) == 1:
            return self.static_length(expr.args[0])
        return NOT_KNOWN

    def static_length(self, expr):
        if isinstance(expr, ast.Name) and expr.id in self.bindings:
            return len(self.bindings[expr.id].items)
        if isinstance(expr, ast.Name) and expr.id in self.lengths and expr.id not in \
                stored_names(self.src.node):
            return self.lengths[expr.id]
        if isinstance(expr, (ast.Tuple, ast.List)):
            return len(expr.elts)
        return NOT_KNOWN

    def builtin_name(self, call):
        if not isinstance(call.func, ast.Name) or call.func.id in self.locals:
            return None
        binding = self.src.resolve(call.func)
        return binding.qualname if binding is not None and binding.kind == "builtin" else None

    # -- operators and calls ----------------------------------------------------

    def container_binop(self, expr, left, right):
        if isinstance(expr.op, ast.Add) and isinstance(left, Static) and isinstance(right, Static) \
                and left.kind == right.kind and left.kind in ("list", "tuple"):
            return Static(left.kind, left.items + right.items)
        if isinstance(expr.op, ast.Mult):
            tree, count = (left, self.static_value(right)) if isinstance(left, Static) else \
                (right, self.static_value(left))
            if isinstance(tree, Static) and type(count) is int and tree.kind in ("list", "tuple"):
                return Static(tree.kind, tree.items * count)
        raise self.error("this operator on a tuple, list or dict is not supported (only `+` of two "
                         "lists or two tuples, and `*` by a constant int)", expr,
                         hint="use np.stack(items) to make an array of the items first")

    def container_call(self, expr, out):
        """Calls that take or give containers; None for the others (lowered by `call`)."""
        name = self.builtin_name(expr)
        if name == "len" and len(expr.args) == 1:
            length = self.static_length(expr.args[0])
            return None if length is NOT_KNOWN else at(ast.Constant(length), expr)
        if name in ("list", "tuple") and len(expr.args) == 1:
            tree = self.sequence(expr.args[0], out)
            if isinstance(tree, Static):
                items = tree.keys if tree.kind == "dict" else tree.items
                return Static(name, [ast.Constant(k) for k in items] if tree.kind == "dict" else list(items))
            raise self.error(f"{name}() of an array is not supported", expr,
                             hint="index the array, or use list comprehension over a container")
        if name == "sum" and expr.args:
            return self.builtin_sum(expr, out)
        func = expr.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                func.value.id in self.bindings:
            return self.method(self.bindings[func.value.id], func.attr, expr, out)
        binding = self.src.resolve(func) if name is None else None
        if binding is not None and binding.kind == "user":
            return None  # `inline` gives containers back itself
        if binding is not None and binding.kind == "library" and binding.qualname in (
                "numpy.array", "numpy.asarray") and expr.args and self.is_container_expr(expr.args[0]):
            tree = self.value(expr.args[0], out)
            return self.array_of(tree, expr, out)
        count = self.library_result_length(expr) if name is None else None
        if count is not None:
            return self.unpacked_result(binding.qualname, expr, count, out)
        return None

    def library_result_length(self, expr: ast.Call):
        """How many arrays the call ``expr`` of a rule returns (``np.split(x, 3)``: 3), or None."""
        binding = self.src.resolve(expr.func)
        if binding is None or binding.kind != "library":
            return None
        rule = rule_of(binding.qualname)
        if rule is None or rule.outputs is None or any(isinstance(a, ast.Starred) for a in expr.args):
            return None
        try:
            bound = rule.signature.bind(*expr.args, **{k.arg: k.value for k in expr.keywords if k.arg})
        except TypeError:
            return None
        static = {}
        for name, param in rule.signature.parameters.items():
            if name not in bound.arguments:
                static[name] = param.default
                continue
            try:
                static[name] = ast.literal_eval(bound.arguments[name])
            except ValueError:
                value = self.static_value(bound.arguments[name])
                static[name] = DYNAMIC if value is NOT_KNOWN else value
        return rule.output_count(static)

    def unpacked_result(self, qualname, expr, count, out) -> Static:
        """A call that returns ``count`` arrays, bound as a container of them, so that its
        items are read (``pieces[0]``, ``for piece in pieces``) as if the code unpacked it."""
        whole = self.atom_of(self.operation_of(expr, out), expr, out)
        items = []
        for i in range(count):
            item = at(ast.Subscript(copy.copy(whole), ast.Constant(i), ast.Load()), expr)
            item.s2s_op = "unpack"
            item.s2s_unpack_len = count
            items.append(self.atom_of(item, expr, out))
        return Static("list" if "split" in qualname else "tuple", items)

    def array_of(self, tree, origin, out):
        """``np.array([a, b])`` of values: ``np.stack``, nested lists stacked level by level."""
        return ast.Name(self.as_array(tree, origin, out).id, ast.Load())

    def sequence(self, expr, out):
        """`value`, or the items a generator yields when ``expr`` calls one (a generator is read
        as a list only where Python iterates it: list(), tuple(), sum(), zip(), enumerate(),
        comprehensions; see `generators.materialized`)."""
        generator = self.generator_of(expr)
        return self.value(expr, out) if generator is None else materialized(self, expr, generator, out)

    def builtin_sum(self, expr, out):
        tree = self.sequence(expr.args[0], out)
        if not isinstance(tree, Static):
            return None
        total = self.value(expr.args[1], out) if len(expr.args) > 1 else ast.Constant(0)
        for item in tree.items:
            if isinstance(item, Static):
                raise self.error("sum() of nested containers is not supported", expr)
            total = self.simple(at(ast.BinOp(self.atom_of(total, expr, out), ast.Add(), item), expr), out) \
                if not (isinstance(total, ast.Constant) and total.value == 0) else item
        return total

    def atom_of(self, value, origin, out):
        if isinstance(value, (ast.Name, ast.Constant)):
            return value
        name = self.namer.temp()
        out.append(_assign(name, value, origin))
        return ast.Name(name, ast.Load())

    def method(self, tree: Static, attr, expr, out):
        args = expr.args
        if attr in ("keys", "values", "items") and tree.kind == "dict" and not args:
            if attr == "keys":
                return Static("list", [ast.Constant(k) for k in tree.keys])
            if attr == "values":
                return Static("list", list(tree.items))
            return Static("list", [Static("tuple", [ast.Constant(k), v]) for k, v in
                                   zip(tree.keys, tree.items)])
        if attr == "get" and tree.kind == "dict" and args:
            key = self.static_value(args[0])
            if key is NOT_KNOWN:
                raise self.error("dict keys must be constants", args[0])
            if key in tree.keys:
                return tree.get(key)
            return self.value(args[1], out) if len(args) > 1 else ast.Constant(None)
        if attr == "copy" and not args:
            return tree.copy()
        if attr == "index" or attr == "count":
            raise self.error(f"{attr}() on a container is not supported", expr)
        if attr == "pop":
            return self.pop_value(expr, out)
        if attr in ("append", "extend", "insert"):
            raise self.error(f"{attr}() returns nothing to use; call it as a statement", expr)
        raise self.error(f"{tree.kind}.{attr}() is not supported", expr)

    def mutate(self, stmt, out) -> bool:
        """``lst.append(v)``, ``extend``, ``insert``, ``pop`` and ``d.update`` as statements."""
        call = stmt.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name) and call.func.value.id in self.bindings):
            return False
        tree = self.bindings[call.func.value.id]
        self.check_mutable(tree, call)
        attr, args = call.func.attr, call.args
        if attr == "append" and len(args) == 1 and tree.kind == "list":
            tree.items.append(self.element(args[0], out))
        elif attr == "extend" and len(args) == 1 and tree.kind == "list":
            other = self.value(args[0], out)
            if not isinstance(other, Static):
                raise self.error("extend() takes a list or tuple here", args[0])
            tree.items.extend(other.items)
        elif attr == "insert" and len(args) == 2 and tree.kind == "list":
            index = self.static_value(args[0])
            if type(index) is not int:
                raise self.error("insert() needs a constant position", args[0])
            tree.items.insert(index, self.element(args[1], out))
        elif attr == "pop" and tree.kind == "list" and len(args) <= 1:
            index = self.static_value(args[0]) if args else -1
            if type(index) is not int:
                raise self.error("pop() needs a constant position", call)
            tree.items.pop(index)
        elif attr == "update" and tree.kind == "dict" and len(args) == 1:
            other = self.value(args[0], out)
            if not isinstance(other, Static) or other.kind != "dict":
                raise self.error("update() takes a dict here", args[0])
            for k, v in zip(other.keys, other.items):
                self.set_item(tree, k, v)
        else:
            raise self.error(f"{tree.kind}.{attr}() is not supported here", call)
        return True

    def pop_value(self, expr, out):
        """``v = lst.pop()``: the item, removed from the list."""
        call = expr
        tree = self.bindings[call.func.value.id]
        self.check_mutable(tree, call)
        index = self.static_value(call.args[0]) if call.args else -1
        if tree.kind != "list" or type(index) is not int or not tree.items:
            raise self.error("pop() of a list, at a constant position", call)
        return tree.items.pop(index)

    def check_mutable(self, tree, node):
        if tree.kind in ("tuple", "namedtuple"):
            raise self.error(f"a {tree.kind} cannot be changed", node)
        depth = self.created_at.get(id(tree), (None, 0))[1]
        if depth < 0:
            raise self.error(f"this changes a {tree.kind} that is an argument (Python changes the "
                             "caller's container too)", node, hint="copy it first: "
                             "items = list(items), d = dict(d) (or d.copy())")
        if self.flow_depth != depth:
            raise self.error(f"this {tree.kind} changes inside a loop or branch: s2s models "
                             "containers whose structure is known when the derivative is generated",
                             node, hint="build it in a loop over a container or a range of known "
                             "length (unrolled), or use arrays (np.stack, np.where)")

    def set_item(self, tree, key, value):
        if tree.kind == "dict":
            if key in tree.keys:
                tree.items[tree.keys.index(key)] = value
            else:
                tree.keys.append(key)
                tree.items.append(value)
        else:
            tree.items[key] = value

    def store_item(self, target, value, stmt, out) -> bool:
        """``d[key] = value`` / ``lst[i] = value`` on a container bound to a name."""
        if not (isinstance(target.value, ast.Name) and target.value.id in self.bindings):
            return False
        tree = self.bindings[target.value.id]
        self.check_mutable(tree, target)
        key = self.static_value(target.slice)
        if key is NOT_KNOWN:
            raise self.error("a key written into a container must be known when the derivative is "
                             "generated", target.slice)
        try:
            self.set_item(tree, key, value)
        except (IndexError, TypeError) as exc:
            raise self.error(f"{type(exc).__name__} writing into a {tree.kind}", target) from None
        return True

    # -- binding names ------------------------------------------------------------

    def bind(self, target, value, stmt, out):
        """Bind ``target`` (a name or a tuple of targets) to a `Static` value."""
        if isinstance(target, ast.Name):
            self.static_ints.pop(target.id, None)
            self.created_at.setdefault(id(value), (value, self.flow_depth))
            self.bindings[target.id] = value  # (where paths join, `materialize` makes them agree)
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            if len(target.elts) != len(value.items):
                raise self.error(f"cannot unpack a {value.kind} of {len(value.items)} items into "
                                 f"{len(target.elts)} names", target)
            for elt, item in zip(target.elts, value.items):
                self.bind_item(elt, item, stmt, out)
            return
        if isinstance(target, ast.Subscript) and self.store_item(target, value, stmt, out):
            return
        raise self.error(f"cannot assign a {value.kind} to {type(target).__name__}", target)

    def bind_item(self, target, item, stmt, out):
        if isinstance(item, Static):
            self.bind(target, item, stmt, out)
        elif isinstance(target, (ast.Tuple, ast.List)):
            self.unpack_value(target, item, stmt, out)
        elif isinstance(target, ast.Subscript):
            if not self.store_item(target, item, stmt, out):
                raise self.error("only containers the function builds can be assigned into "
                                 "here", target)
        elif isinstance(target, ast.Name):
            self.forget(target.id)
            if not (isinstance(item, ast.Name) and item.id == target.id):
                out.append(_assign(target.id, copy.copy(item), stmt))
        else:
            raise self.error("only names can be unpacked into", target)

    def unpack_value(self, target, whole, stmt, out):
        """``a, b = v`` for a value that is not a known container: rows of an array."""
        for i, elt in enumerate(target.elts):
            item = at(ast.Subscript(copy.copy(whole), ast.Constant(i), ast.Load()), stmt)
            item.s2s_op = "subscript"
            if isinstance(elt, (ast.Tuple, ast.List)):
                name = self.namer.temp()
                out.append(_assign(name, item, stmt))
                self.unpack_value(elt, ast.Name(name, ast.Load()), stmt, out)
            elif isinstance(elt, ast.Name):
                self.forget(elt.id)
                out.append(_assign(elt.id, item, stmt))
            else:
                raise self.error("only names can be unpacked into", elt)

    def forget(self, name):
        """``name`` now holds a plain value."""
        self.bindings.pop(name, None)
        self.static_ints.pop(name, None)

    def materialize(self, name, tree: Static, origin, out) -> Static:
        """Copy ``tree``'s leaves into ``name``'s own leaf names (``t_0``, ``t_1``) and give those."""
        own = self.stable.get(name)
        if own is None:
            own = _leaf_names(tree, name, self.namer)
            self.stable[name] = own
            self.locals |= {a.id for a in own.flat()}
            self.reassigned |= {a.id for a in own.flat()}
        elif own.structure() != tree.structure():
            raise self.error(f"{name!r} holds containers of different structures on different "
                             "paths or iterations", origin,
                             hint="give the containers the same structure, or use separate names")
        if own is tree:
            return own
        at_end = len(out) - 1 if out and isinstance(out[-1], ast.Break) else len(out)
        copies = [_assign(leaf.id, copy.copy(atom), origin) for leaf, atom in zip(own.flat(), tree.flat())
                  if not (isinstance(atom, ast.Name) and atom.id == leaf.id)]
        out[at_end:at_end] = copies  # before a block's closing `break` (an early return's)
        return own

    # -- control flow ---------------------------------------------------------------

    def branch_bodies(self, stmt):
        """The two normalized blocks of an ``if``; containers rebound in one agree after it."""
        before = dict(self.bindings)
        ints = dict(self.static_ints)
        self.flow_depth += 1
        body = self.block(stmt.body)
        after_body = self.bindings
        ints_body = self.static_ints
        self.bindings, self.static_ints = dict(before), dict(ints)
        orelse = self.block(stmt.orelse)
        after_else = self.bindings
        self.flow_depth -= 1
        self.static_ints = {k: v for k, v in ints_body.items() if self.static_ints.get(k) == v}
        merged = dict(before)
        for name in set(after_body) | set(after_else):
            a, b = after_body.get(name), after_else.get(name)
            if a is b:
                if a is not None:
                    merged[name] = a
                continue
            self.flow_depth += 1
            for tree, code in ((a, body), (b, orelse)):
                if tree is not None:
                    merged[name] = self.materialize(name, tree, stmt, code)
            self.flow_depth -= 1
        self.bindings = merged
        return body or [ast.Pass()], orelse

    def loop_body(self, stmt, body_fn, out):
        """A loop body normalized with containers rebound in it given their own leaf names."""
        if not self.touches_containers(stmt):
            self.flow_depth += 1
            try:
                return body_fn()
            finally:
                self.flow_depth -= 1
        saved = (dict(self.bindings), dict(self.static_ints), copy.copy(self.namer.counters),
                 set(self.namer.taken))
        self.flow_depth += 1
        body_fn()  # a trial: which names end the iteration bound to other containers?
        changed = {n for n, t in self.bindings.items() if saved[0].get(n) is not t}
        self.bindings, self.static_ints = dict(saved[0]), dict(saved[1])
        self.flow_depth -= 1
        for name in sorted(changed):
            if name in self.bindings:
                self.flow_depth += 1
                self.bindings[name] = self.materialize(name, self.bindings[name], stmt, out)
                self.flow_depth -= 1
        for name in stored_names(stmt):
            self.static_ints.pop(name, None)
        self.flow_depth += 1
        body = body_fn()
        for name in sorted(changed):
            if name in self.bindings:
                self.bindings[name] = self.materialize(name, self.bindings[name], stmt, body)
        self.flow_depth -= 1
        return body

    def touches_containers(self, stmt) -> bool:
        for node in walk(stmt):
            if isinstance(node, (ast.Tuple, ast.List, ast.Dict, ast.ListComp, ast.GeneratorExp)) and \
                    isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
                return True
            if isinstance(node, ast.Name) and node.id in self.bindings:
                return True
            if isinstance(node, ast.Call) and not isinstance(node.func, ast.Attribute):
                binding = self.src.resolve(node.func)
                if binding is not None and binding.kind == "user":
                    return True
        return False

    def unrolled_items(self, stmt, out):
        """The items a ``for`` loop visits, when it is unrolled (else None)."""
        it = stmt.iter
        kind = self.builtin_name(it) if isinstance(it, ast.Call) else None
        if kind in ("zip", "enumerate"):
            statics = [self.static_items(a, out) for a in it.args[:1 if kind == "enumerate" else None]]
            if kind == "enumerate" and statics[0] is not None:
                start = self.static_value(it.args[1]) if len(it.args) > 1 else 0
                return [Static("tuple", [ast.Constant(start + i), item])
                        for i, item in enumerate(statics[0])]
            if kind == "zip" and all(s is not None for s in statics):
                return [Static("tuple", list(items)) for items in zip(*statics)]
            if kind == "zip" and any(s is not None for s in statics):
                raise self.error("zip of a container with an array is not supported", it,
                                 hint="zip containers with containers (list(array) is not modelled)")
            return None
        if kind == "range":
            bounds = [self.static_value(a) for a in it.args]
            if NOT_KNOWN in bounds or not self.touches_containers(ast.Module(stmt.body, [])):
                return None
            if not any(isinstance(n, ast.Name) and n.id in self.bindings for n in walk(
                    ast.Module(stmt.body, []))):
                return None
            return [ast.Constant(i) for i in range(*bounds)]
        if kind is None and (self.is_container_expr(it) or isinstance(it, (ast.Subscript, ast.Call))):
            tree = self.sequence(it, out) if not isinstance(it, ast.Call) or self.builtin_name(it) or \
                isinstance(it.func, ast.Attribute) and isinstance(it.func.value, ast.Name) and \
                it.func.value.id in self.bindings or self.generator_of(it) is not None or \
                self.library_result_length(it) is not None else None
            if isinstance(tree, Static):
                if tree.kind == "dict":
                    return [ast.Constant(k) for k in tree.keys]
                return list(tree.items)
            if tree is not None:
                raise self.error("this loop's sequence is not a container s2s knows", it)
        if isinstance(it, ast.Name) and it.id in self.lengths and it.id not in self.bindings and \
                self.grows_container(stmt):
            return [at(_subscript(it.id, i), it) for i in range(self.lengths[it.id])]
        return None

    def static_items(self, expr, out):
        """The items of a container expression (nested zip/enumerate too), else None."""
        if isinstance(expr, ast.Call) and self.builtin_name(expr) in ("zip", "enumerate"):
            loop = at(ast.For(ast.Name("_", ast.Store()), expr, [], []), expr)
            return self.unrolled_items(loop, out)
        if self.is_container_expr(expr) or isinstance(expr, (ast.Subscript, ast.Call)) and \
                self.container_root(expr) or self.generator_of(expr) is not None:
            tree = self.sequence(expr, out)
            if isinstance(tree, Static):
                return [ast.Constant(k) for k in tree.keys] if tree.kind == "dict" else list(tree.items)
        return None

    def container_root(self, expr) -> bool:
        """Is ``expr`` a read of (or method call on) a container bound to a name?"""
        while isinstance(expr, (ast.Subscript, ast.Call, ast.Attribute)):
            expr = expr.value if not isinstance(expr, ast.Call) else expr.func
        return isinstance(expr, ast.Name) and expr.id in self.bindings

    def grows_container(self, stmt) -> bool:
        """Does the loop body add items to a list (``hs.append(h)``, ``hs = hs + [h]``)?"""
        for node in walk(ast.Module(stmt.body, [])):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("append", "extend", "insert") and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id in self.bindings:
                return True
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                    node.targets[0].id in self.bindings and isinstance(node.value, ast.BinOp):
                return True
        return False

    def unrolled_loop(self, stmt, items, out):
        for node in walk(ast.Module(stmt.body, [])):
            if isinstance(node, ast.Break):
                raise self.error("break in a loop over a container is not supported", node,
                                 hint="loop over a slice of the container instead")
        for item in items:
            self.bind_loop_target(stmt.target, item, stmt, out)
            for s in stmt.body:
                self.statement(s, out)

    def bind_loop_target(self, target, item, stmt, out):
        if isinstance(item, Static):
            self.bind(target, item, stmt, out)
            return
        if isinstance(target, ast.Name):
            self.forget(target.id)
            value = self.simple(item, out) if isinstance(item, ast.Subscript) else copy.copy(item)
            out.append(_assign(target.id, value, stmt))
            if isinstance(item, ast.Constant) and type(item.value) in (int, str):
                self.static_ints[target.id] = item.value  # a key or position: known here
            return
        self.bind_item(target, item, stmt, out)

    def comprehension(self, expr, out) -> Static:
        """``[f(x) for x in xs if c]`` over a container or a range of known length: unrolled."""
        items = []
        saved = (dict(self.bindings), dict(self.static_ints))

        def walk(generators):
            if not generators:
                items.append(self.element(expr.elt, out))
                return
            gen = generators[0]
            loop = ast.For(gen.target, gen.iter, [], [])
            at(loop, gen.iter)
            values = self.comprehension_items(loop, out)
            for item in values:
                self.bind_loop_target(gen.target, item, loop, out)
                keep = True
                for cond in gen.ifs:
                    test = self.static_value(cond)
                    if test is NOT_KNOWN:
                        raise self.error("a comprehension's condition must be known when the "
                                         "derivative is generated", cond)
                    keep = keep and test
                if keep:
                    walk(generators[1:])

        walk(expr.generators)
        self.bindings, self.static_ints = saved[0], {**saved[1]}
        return Static("list", items)

    def comprehension_items(self, loop, out):
        it = loop.iter
        if isinstance(it, ast.Call) and self.builtin_name(it) == "range":
            bounds = [self.static_value(a) for a in it.args]
            if NOT_KNOWN not in bounds:
                return [ast.Constant(i) for i in range(*bounds)]
        items = self.unrolled_items(loop, out)
        if items is None and isinstance(it, ast.Name) and it.id in self.lengths:
            return [at(_subscript(it.id, i), it) for i in range(self.lengths[it.id])]
        if items is None:
            raise self.error("a comprehension must loop over a container, or a range or array "
                             "whose length is known when the derivative is generated", it,
                             hint="call through s2s.grad (which knows the shapes), or pass --shapes")
        return items


def _is_generated(src) -> bool:
    import os
    from .emit import generated_folder
    return os.path.dirname(src.filename or "") == generated_folder()


def _stacks(fn_node, generated=False) -> set[str]:
    """Lists that a loop or branch appends to and that are popped: stacks of saved values
    (in generated code, also those returned: a recursive helper's residuals, see `units`)."""
    popped, pushed = set(), set()
    for node in walk(fn_node):
        if generated and isinstance(node, ast.Return) and node.value is not None:
            popped |= names_in(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.attr == "pop" and not node.args:
            popped.add(node.func.value.id)
        if isinstance(node, (ast.For, ast.While, ast.If)):
            for call in walk(node):
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and \
                        isinstance(call.func.value, ast.Name) and call.func.attr == "append":
                    pushed.add(call.func.value.id)
    return popped & pushed


def _subscript(name, i):
    node = ast.Subscript(ast.Name(name, ast.Load()), ast.Constant(i), ast.Load())
    node.s2s_op = "subscript"
    return node


def _leaf_names(tree: Static, name, namer) -> Static:
    """``tree``'s structure with fresh leaf names ``t_0``, ``t_W1`` (by position or key)."""
    def walk(t, base):
        items = []
        for i, item in enumerate(t.items):
            label = t.keys[i] if t.kind in ("dict", "namedtuple") and isinstance(t.keys[i], str) \
                and t.keys[i].isidentifier() else str(i)
            if isinstance(item, Static):
                items.append(walk(item, f"{base}_{label}"))
            else:
                items.append(ast.Name(namer.fresh(f"{base}_{label}"), ast.Load()))
        out = t.copy()
        out.items = items
        return out
    return walk(tree, name)


def _assigned_once(fn_node) -> set[str]:
    """Names assigned exactly once, outside any loop (their value never changes once set)."""
    counts: dict[str, int] = {}
    in_loops: set[str] = set()
    for node in walk(fn_node):
        if isinstance(node, (ast.For, ast.While)):
            in_loops |= stored_names(node)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            counts[node.id] = counts.get(node.id, 0) + 1
    return {n for n, c in counts.items() if c == 1 and n not in in_loops}


def display_of(tree, origin) -> ast.expr:
    return at(display(tree), origin)
