"""Calls, for the normalize stage: library functions, builtins, custom VJPs, inlined helpers.

`CallLowering` is mixed into the normalizer: it lowers ``f(args)`` to one tagged
call on atoms (``numpy.tanh``), a builtin, a ``custom_vjp`` pair, or the body of
a user function inlined with its locals renamed; `InactiveRewriter` resolves
the names of expressions that are never differentiated (tests, indices).
"""
from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import inspect

import numpy as np

from . import alias, nested, units
from .astutil import assign as _assign, at, copy_tree, stored_names as assigned_names, walk
from .controlflow import rename
from .generators import is_generator
from .errors import CUSTOM_VJP_HINT, NameResolutionError, NoRule
from .containers import NOT_KNOWN
from .naming import Namer
from .pytree import Static, display
from .rules.registry import DYNAMIC, LOWERINGS
from .source import Binding, FunctionSource, _Known, _LazyUser, _bind_value, _import_attr, \
    is_distribution, param_names, star_params


MODULE_ALIASES = {"numpy": "np", "math": "math", "scipy": "scipy"}  # their names in generated code
DTYPE_BUILTINS = {"float": float, "int": int, "bool": bool, "complex": complex}


class CallLowering:
    """The normalizer's methods for calls (see the module docstring)."""

    def call(self, expr: ast.Call, out) -> ast.expr:
        if self.allow_mutation and isinstance(expr.func, ast.Attribute) and expr.func.attr == "pop" \
                and not expr.args and self.src.resolve(expr.func) is None:
            node = ast.Call(ast.Attribute(self.atom(expr.func.value, out), "pop", ast.Load()), [], [])
            return tag(node, "pop", expr)
        expr = self.unfreeze(self.spread(expr, out))
        binding = self.function_binding(expr.func)
        if is_derivative(binding) or isinstance(expr.func, ast.Call) and \
                is_derivative(self.src.resolve(expr.func.func)):
            return nested.derivative_call(self, expr, out)  # s2s.grad(g)(x) inside f
        if binding is None and isinstance(expr.func, ast.Attribute):
            receiver = self.atom(expr.func.value, out)
            node = ast.Call(ast.Attribute(receiver, expr.func.attr, ast.Load()),
                            [self.argument(a, out) for a in expr.args],
                            [ast.keyword(k.arg, self.argument(k.value, out)) for k in expr.keywords])
            node.s2s_called = ast.unparse(expr.func)  # named so in errors: rv.logpdf, not ndarray.logpdf
            return tag(node, f"ndarray.{expr.func.attr}", expr)
        if binding is None:
            name = expr.func.id if isinstance(expr.func, ast.Name) else ast.unparse(expr.func)
            raise self.error(f"cannot resolve the function {name!r}", expr.func, cls=NameResolutionError,
                             hint="import it at module level, or define it in the same module")
        if binding.kind == "object":
            binding = self.callable_object(binding, expr)  # model(x): its __call__
        if binding.kind == "custom":
            return self.custom_call(binding, expr, out)
        if binding.kind == "user":
            return self.inline(binding, expr, out)
        if binding.kind == "builtin":
            return self.builtin(binding.qualname, expr, out)
        if binding.kind != "library":
            raise self.error(f"{ast.unparse(expr.func)} is not a function s2s can call", expr.func)
        if binding.qualname.startswith(("scipy.integrate.", "s2s.helpers.odeint_")):
            from . import ode  # odeint, solve_ivp
            if binding.qualname in ode.SOLVERS + ode.GENERATED:
                return ode.lower(self, binding.qualname, expr, out)
        if binding.qualname in LOWERINGS:
            return self.lowered(binding.qualname, expr, out)
        if binding.qualname in ("numpy.array", "numpy.asarray") and expr.args and (
                isinstance(expr.args[0], (ast.List, ast.Tuple)) or self.is_container_expr(expr.args[0])):
            return self.array_of_items(binding.qualname, expr, out)
        func = self.canonical_func(binding.qualname, expr.func)
        node = ast.Call(func, [self.argument(a, out) for a in expr.args],
                        [ast.keyword(k.arg, self.argument(k.value, out)) for k in expr.keywords])
        return tag(node, binding.qualname, expr)

    def function_binding(self, func) -> Binding | None:
        """What the called expression ``func`` is: a function defined or given here (a nested
        def, a lambda, a parameter given a function), else what the name means globally."""
        if isinstance(func, ast.Lambda):
            return self.local_function("lambda_", func, func)
        if isinstance(func, ast.Name) and func.id in self.functions:
            return self.functions[func.id]
        method = self.method_of_argument(func)
        if method is not None:  # p.apply(z), p an object given to this helper
            return method
        table = self.table_of(func.value) if isinstance(func, ast.Subscript) else None
        if table is not None:  # fns[0](x), fns["relu"](x), ACTIVATIONS["relu"](x)
            key = self.static_value(func.slice)
            if key not in table:
                raise self.error(f"s2s cannot tell which function of {ast.unparse(func.value)!r} "
                                 "this calls (its index is known only when the code runs)", func,
                                 hint="index it with a constant, or branch on the index with "
                                      "if/elif and call each function by its key")
            return table[key]
        if isinstance(func, ast.Name) and func.id in self.locals:
            raise self.error(f"{func.id!r} is called, but s2s cannot tell which function it holds",
                             func, hint="call the function by its own name, or pass it directly "
                                        "as an argument")
        return self.src.resolve(func)

    def used_after_only(self, name, stmt) -> bool:
        """Is every read of ``name`` in the function after ``stmt``, in the block it is in?"""
        block = self.blocks[-1] if self.blocks else []
        if not any(s is stmt for s in block):
            return False
        after = block[[id(s) for s in block].index(id(stmt)) + 1:]

        def reads(nodes):
            return sum(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                       for s in nodes for n in walk(s))
        return reads(after) >= reads(self.src.node.body)

    def table_of(self, node) -> dict | None:
        """The functions of a list or dict of them, by key: one made here (see `function_table`)
        or a module's (or object's) constant, ``ACTIVATIONS = {"relu": relu, "tanh": np.tanh}``."""
        if isinstance(node, ast.Name) and node.id in self.tables:
            return self.tables[node.id]
        if not isinstance(node, (ast.Name, ast.Attribute)) or isinstance(node, ast.Name) and \
                node.id in self.locals:
            return None
        binding = self.src.resolve(node)
        value = binding.value if binding is not None and binding.kind == "constant" else None
        if not isinstance(value, (list, tuple, dict)) or not value:
            return None
        items = dict(value) if isinstance(value, dict) else dict(enumerate(value))
        if not any(callable(v) for v in items.values()):
            return None
        found = {k: _function_default(v, ast.unparse(node)) for k, v in items.items()}
        if None in found.values():
            raise self.error(f"{ast.unparse(node)} holds functions and values, or functions s2s "
                             "cannot read", node, hint="keep your own and numpy functions in their "
                                                       "own list or dict")
        return found

    def define(self, name: str, node, stmt):
        """A nested ``def name`` or ``name = lambda ...``: inlined where it is called, so it reads
        the variables it names as they are then (Python's late binding), also when it is
        defined in a loop or branch (or moved into one, after an early return) and used only
        after it in the same block: defined on every path that calls it."""
        if self.flow_depth and not self.used_after_only(name, stmt):
            raise self.error("a function defined inside a loop or branch and used outside it is "
                             "not supported", stmt, hint="define it at the top level of the function")
        stores = [n for n in walk(self.src.node) if n is not self.src.node and (
            isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id == name
            or isinstance(n, ast.FunctionDef) and n.name == name)]
        if len(stores) != 1:
            raise self.error(f"{name!r} is bound to a function and assigned again", stmt,
                             hint="give each function and value its own name")
        if getattr(node, "decorator_list", None):
            raise self.error("decorators on nested functions are not supported", node.decorator_list[0])
        self.forget(name)
        self.functions[name] = self.local_function(name, node, stmt)

    def function_table(self, name: str, value, stmt) -> bool:
        """``fns = [f, np.tanh]`` or ``{"a": f}``: a table of functions known here, called as
        ``fns[0](x)`` with a constant index (False when ``value`` is not such a display)."""
        if isinstance(value, (ast.List, ast.Tuple)) and value.elts:
            keys, elts = list(range(len(value.elts))), value.elts
        elif isinstance(value, ast.Dict) and value.keys and None not in value.keys:
            keys, elts = [self.static_value(k) for k in value.keys], value.values
        else:
            return False
        found = [self.function_value(e) for e in elts]
        if not all(found):
            if any(found):
                raise self.error("a list or dict that mixes functions and values is not supported",
                                 value, hint="keep functions in their own list")
            return False
        if self.flow_depth or sum(isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and
                                  n.id == name for n in walk(self.src.node)) != 1:
            raise self.error(f"a list or dict of functions must be assigned once, at the top "
                             f"level of the function", stmt, hint=f"give {name!r} its own name")
        self.tables[name] = dict(zip(keys, found))
        return True

    def local_function(self, name: str, node, stmt) -> Binding:
        """A binding for a nested def or lambda, reading the variables it names from here."""
        if isinstance(node, ast.Lambda):
            body = at(ast.Return(node.body), node.body)
            fdef = at(ast.FunctionDef(name, node.args, [body], [], None, None), node)
        else:
            fdef = copy.copy(node)
        own = set(param_names(fdef)) | assigned_names(fdef)
        reads = {n.id for n in walk(fdef) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        src = FunctionSource(fdef, self.src.filename, self.src.lines, self.src.col_shift, self.src.scope,
                             enclosing=frozenset((reads - own) & self.locals), definer=self.src,
                             outer_functions=self.functions)
        return Binding("user", name, function=_Known(src))

    def lowered(self, qualname: str, expr: ast.Call, out) -> ast.expr:
        """``scipy.stats.norm.logpdf(...)``: the numpy function registered for it, inlined
        (see rules/stats.py); its statements are placed at the call and named by it."""
        fn = LOWERINGS[qualname]
        function = _LazyUser(fn)
        if fn.s2s_static:  # lower=True: the branches on it folded away, the argument dropped
            values, expr = self.static_arguments(qualname, fn.s2s_static, expr)
            function = _Specialized(function.get(), values)
        start = len(out)
        result = self.inline(Binding("user", fn.__qualname__, function=function), expr, out)
        for stmt in out[start:]:
            for node in walk(stmt):
                if isinstance(node, (ast.stmt, ast.expr)):
                    ast.copy_location(node, expr)
                    node.s2s_lowered = qualname  # errors name what the user called
                node.__dict__.pop("s2s_src", None)
        return result

    def static_arguments(self, qualname: str, names, expr: ast.Call):
        """The constant values of parameters ``names`` at this call (defaults where not
        given), and the call without them, every other argument passed by keyword."""
        signature = inspect.signature(_import_attr(qualname))
        try:
            bound = signature.bind_partial(*expr.args, **{k.arg: k.value for k in expr.keywords})
        except TypeError as exc:
            raise self.error(f"{qualname}: {exc}", expr)
        values = {}
        for name in names:
            node = bound.arguments.get(name)
            if node is None:
                values[name] = signature.parameters[name].default
            else:
                try:
                    values[name] = ast.literal_eval(node)  # 3, -2, "T", (0, 1)
                except ValueError:
                    values[name] = DYNAMIC
        check = LOWERINGS[qualname].s2s_check
        reason = check(**values) if check else None
        if reason:
            raise self.error(f"{qualname}: {reason}", expr, cls=NoRule, hint=CUSTOM_VJP_HINT)
        for name, value in values.items():
            if value is DYNAMIC:
                raise self.error(f"{qualname}: {name}= must be a constant for s2s", bound.arguments[name],
                                 cls=NoRule, hint=f"write the value of {name} in the call")
        rest = [ast.keyword(k, v) for k, v in bound.arguments.items() if k not in names]
        return values, at(ast.Call(expr.func, [], rest), expr)

    def unfreeze(self, expr: ast.Call) -> ast.Call:
        """``norm(mu, s).logpdf(x)`` -> ``norm.logpdf(x, mu, s)``: a frozen scipy.stats
        distribution's method takes the distribution's arguments after its own."""
        func = expr.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)):
            return expr
        frozen = func.value
        binding = self.src.resolve(frozen.func)
        if binding is None or binding.kind != "library" or not is_distribution(binding.qualname):
            return expr
        method = at(ast.Attribute(frozen.func, func.attr, ast.Load()), func)
        return at(ast.Call(method, expr.args + frozen.args, frozen.keywords + expr.keywords), expr)

    def array_of_items(self, qualname, expr, out) -> ast.expr:
        """``np.array([a, b])``: the items stacked (``np.stack``), cast if a dtype is given."""
        keywords = {k.arg: k.value for k in expr.keywords}
        if set(keywords) - {"dtype"} or len(expr.args) > 1:
            raise self.error(f"{qualname} of a list takes only a dtype here", expr,
                             hint="write np.stack([...]) and cast with .astype(dtype)")
        items = self.value(expr.args[0], out)
        stacked = self.as_array(items, expr, out) if hasattr(items, "items") else self.atom(items, out)
        if "dtype" not in keywords:
            return stacked
        node = ast.Call(ast.Attribute(stacked, "astype", ast.Load()), [self.argument(keywords["dtype"], out)], [])
        return tag(node, "ndarray.astype", expr)

    def custom_call(self, binding: Binding, expr: ast.Call, out) -> ast.expr:
        """``f(x)`` with a user VJP: ``pair = f_fwd(x)``, the value is ``pair[0]`` (see `s2s.custom`)."""
        if expr.keywords:
            raise self.error("pass the arguments of a custom_vjp function by position", expr)
        fwd, bwd = binding.value
        names = []
        for fn in (fwd, bwd):
            if isinstance(fn, str):  # read from a file: the generated module imports it
                module, name = fn.rsplit(".", 1)
                self.imports.add(f"from:{module}:{name}")
            else:
                name = fn.__name__
                self.constants[name] = Binding("constant", name, value=fn)
            names.append(name)
        return self.vjp_pair(names[0], names[1], [self.atom(a, out) for a in expr.args], expr, out)

    def vjp_pair(self, fwd: str, bwd: str, atoms, expr, out) -> ast.expr:
        """``pair = fwd(atoms)``, the value ``pair[0]``; the backward sweep calls ``bwd``."""
        call = tag(ast.Call(ast.Name(fwd, ast.Load()), atoms, []), "custom", expr)
        call.s2s_bwd = bwd
        pair = self.namer.temp()
        out.append(_assign(pair, call, expr))
        item = tag(ast.Subscript(ast.Name(pair, ast.Load()), ast.Constant(0), ast.Load()), "unpack", expr)
        item.s2s_unpack_len = 2
        return item

    def argument(self, expr, out):
        if isinstance(expr, ast.Name) and expr.id in self.bindings or isinstance(
                expr, (ast.ListComp, ast.GeneratorExp, ast.Dict)):
            value = self.value(expr, out)
            return self.as_array(value, expr, out, sequence=True) if isinstance(value, Static) else value
        dtype = self.dtype(expr)
        if dtype is not None:
            return dtype
        if isinstance(expr, (ast.Tuple, ast.List)):
            return at(type(expr)([self.argument(e, out) for e in expr.elts], ast.Load()), expr)
        if isinstance(expr, ast.Slice):
            return self.inactive(expr)
        return self.atom(expr, out)

    def canonical_func(self, qualname: str, node) -> ast.expr:
        """``numpy.linalg.solve`` -> ``np.linalg.solve`` (the generated module's spelling)."""
        if qualname.startswith("s2s.helpers."):  # copied into the generated module
            self.imports.add("helper:" + qualname[12:])
            return at(ast.Name(qualname[12:], ast.Load()), node)
        if qualname == "ndarray":  # isinstance(x, np.ndarray)
            qualname = "numpy.ndarray"
        parts = qualname.split(".")
        top = parts[0]
        self.imports.add(top)
        expr: ast.expr = ast.Name(MODULE_ALIASES.get(top, top), ast.Load())
        for part in parts[1:]:
            expr = ast.Attribute(expr, part, ast.Load())
        return at(expr, node)

    def dtype(self, expr) -> ast.expr | None:
        """A type passed as a dtype (``float``, ``np.float64``), kept in place: its value is static.

        The node's ``s2s_dtype`` is the type itself (see `analyze`: casts to integers and
        booleans are never active)."""
        if isinstance(expr, ast.Name) and expr.id in DTYPE_BUILTINS and expr.id not in self.locals:
            binding = self.src.resolve(expr)
            if binding is not None and binding.kind == "builtin":
                node = at(ast.Name(expr.id, ast.Load()), expr)
                node.s2s_dtype = DTYPE_BUILTINS[expr.id]
                return node
        if isinstance(expr, (ast.Name, ast.Attribute)):
            binding = self.src.resolve(expr)
            if binding is not None and binding.kind == "library" and is_numpy_type(binding.qualname):
                node = self.canonical_func(binding.qualname, expr)
                node.s2s_dtype = getattr(np, binding.qualname[6:])
                return node
        return None

    def builtin(self, name, expr, out):
        if name == "len" and len(expr.args) == 1 and not expr.keywords and \
                isinstance(expr.args[0], ast.Call) and self.is_range(expr.args[0]) and \
                not expr.args[0].keywords and 1 <= len(expr.args[0].args) <= 3 and \
                not any(isinstance(a, ast.Starred) for a in expr.args[0].args):
            return self.builtin("max", range_length(expr.args[0]), out)  # len(range(a, b)): an integer
        args = [self.atom(a, out) for a in expr.args]
        if name == "abs":
            return tag(ast.Call(self.canonical_func("numpy.abs", expr.func), args, []), "numpy.abs", expr)
        if name == "sum" and len(args) == 1 and not expr.keywords:  # over the first axis
            node = ast.Call(self.canonical_func("numpy.sum", expr.func), args,
                            [ast.keyword("axis", ast.Constant(0))])
            return tag(node, "numpy.sum", expr)
        if name == "round":  # piecewise constant: never active
            return tag(ast.Call(ast.Name(name, ast.Load()), args, []), "builtins.round", expr)
        if name == "slice":  # an index, never active
            return tag(ast.Call(ast.Name(name, ast.Load()), args, []), "builtins.slice", expr)
        if name in ("float", "len", "int", "bool"):
            return tag(ast.Call(ast.Name(name, ast.Load()), args, []), f"builtins.{name}", expr)
        if name in ("min", "max"):
            if len(args) < 2 or expr.keywords:
                raise self.error(f"builtin {name}() is differentiated only with two or more "
                                 "arguments", expr, hint=f"use np.{name}(x) for the {name} of an array")
            while len(args) > 2:  # min(a, b, c) is min(min(a, b), c)
                pair = tag(ast.Call(ast.Name(name, ast.Load()), args[:2], []), f"builtins.{name}", expr)
                first = self.namer.temp()
                out.append(_assign(first, pair, expr))
                args = [ast.Name(first, ast.Load())] + args[2:]
            return tag(ast.Call(ast.Name(name, ast.Load()), args, []), f"builtins.{name}", expr)
        raise self.error(f"builtin {name}() is only supported in a for loop header", expr)

    def inactive(self, expr, out=None) -> ast.expr:
        """An expression that is never differentiated (a test, an index): names resolved, and
        calls to the user's own functions computed first into ``out``."""
        return InactiveRewriter(self, out).visit(copy_tree(expr))

    def inactive_stmt(self, stmt, out=None):
        stmt = copy_tree(stmt)
        report = stmt.value if isinstance(stmt, ast.Expr) else None
        return InactiveRewriter(self, out, report).visit(stmt)

    def is_report(self, call) -> bool:
        """``print(...)`` or a ``logging`` call: output for the user, no effect on the result."""
        if not isinstance(call, ast.Call):
            return False
        import logging
        if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
            receiver = self.src.resolve(call.func.value)  # logging.info(...), log.debug(...)
            if receiver is not None and (receiver.qualname == "logging" or isinstance(
                    receiver.value, (logging.Logger, logging.LoggerAdapter))):
                return True
        binding = self.src.resolve(call.func)
        return binding is not None and ((binding.kind == "builtin" and binding.qualname == "print")
                                        or binding.qualname.startswith("logging."))

    def is_index_maker(self, node) -> bool:
        """``np.s_`` or ``np.index_exp``: subscripting them builds an index."""
        binding = self.src.resolve(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
        return binding is not None and binding.qualname in ("numpy.s_", "numpy.index_exp")

    # -- helper calls -------------------------------------------------------

    def inline(self, binding: Binding, expr: ast.Call, out) -> ast.expr:
        """Inline a user function: its locals renamed, parameters bound to the arguments
        (the leaves of a container argument bound to the container's items)."""
        callee = binding.function.get()
        if is_generator(callee):
            raise self.error(f"{callee.name} is a generator: s2s reads generators only where "
                             "Python iterates them (for, list(), tuple(), sum(), zip(), enumerate(), "
                             "comprehensions)", expr,
                             hint=f"make a list first: `list({callee.name}(...))`")
        if units.is_recursive(callee):  # its own derivative unit (see `s2s.units`)
            return units.unit_call(self, callee, expr, out)
        if (callee.filename, callee.name, callee.node.lineno) in self.stack:  # (not model.forward
            # calling layer.forward: two functions of one name)
            raise self.error(f"recursive call to {callee.name}: s2s cannot differentiate recursion",
                             expr, hint="rewrite the recursion as a loop")
        from .normalize import normalize  # the callee goes through the same stage
        params = param_names(callee.node)
        given = self.bind_arguments(callee, params, expr)
        defaults = self.helper_defaults(callee, params)
        params += star_params(callee.node)
        missing = [p for p in params if p not in given and p not in defaults]
        if missing:
            raise self.error(f"{callee.name}() is missing argument {missing[0]!r}", expr)
        passed = {p: b for p in params if p in given and (b := self.function_value(given[p]))}
        passed |= {p: b for p, b in defaults.items() if p not in given and isinstance(b, Binding)}
        values = {p: self.value(given[p], out) if p in given else defaults[p] for p in params
                  if p not in passed}
        structures = {p: static_spec(v) for p, v in values.items() if isinstance(v, Static)}
        back = {}  # a closure's reads renamed where the helper uses the same names, and back
        for p, b in list(passed.items()):
            self.check_closure(b, expr)
            passed[p] = self.unclashed(b, callee, params, back)
        objects = {p: b for p in params if p in given and p not in passed and
                   (b := self.object_argument(given[p])) is not None}
        functions = {k: b for k, b in callee.outer_functions.items() if k not in params} | passed | objects
        namer = Namer()
        self.check_closure(binding, expr)
        for b in functions.values():
            self.check_closure(b, expr)
            for name in closure_reads(b):
                namer.reserve(name)  # never a name the helper's code makes up
        inner = normalize(callee, namer, self.stack, structures=structures,
                          allow_mutation=self.allow_mutation, functions=functions)
        written_here = assigned_names(ast.Module(body=inner.body, type_ignores=[])) | set(params)
        for p, b in functions.items():
            captured = closure_reads(b) & (written_here | set(inner.constants))
            if captured and b.function.get().definer is not callee:
                raise self.error(f"{b.qualname} reads {sorted(captured)[0]!r} from the function "
                                 f"it is defined in, and {callee.name} has its own "
                                 f"{sorted(captured)[0]!r} (a variable, or a global it reads)", expr,
                                 hint="rename one of them")
        params = [p for p in params if p not in passed]
        self.imports |= inner.imports
        renames = self.helper_constants(inner.constants)
        written = assigned_names(ast.Module(body=inner.body, type_ignores=[]))
        # A parameter the helper updates in place (p += e, p[i] = v) writes into the caller's
        # array: bound through a name of its own, the alias analysis sees the two share memory.
        updated = {alias.written_name(s) for s in walk(ast.Module(body=inner.body, type_ignores=[]))
                   if isinstance(s, ast.stmt)}
        bound = []
        for p in params:
            if isinstance(values[p], Static):
                bound += zip(inner.leaves.flat(p), values[p].flat())
            else:
                bound.append((p, self.atom_of(values[p], expr, out)))
        for p, atom in bound:
            if isinstance(atom, ast.Name) and p not in written | updated:
                renames[p] = atom.id
            else:
                renames[p] = self.namer.fresh(p)
                out.append(_assign(renames[p], atom, expr))
        local_names = written | (set(inner.results) - set(inner.constants) - callee.enclosing)
        for name in sorted(local_names - {p for p, _ in bound}):
            renames[name] = self.namer.fresh(name)
        renames.update(back)
        body = [rename(copy_tree(s), renames) for s in inner.body]
        for stmt in body:  # comments in the derivative name the helper's own lines
            for node in walk(stmt):
                if isinstance(node, ast.stmt) and not hasattr(node, "s2s_src"):
                    node.s2s_src = callee
        out.extend(body)
        if inner.result_tree is not None:
            return inner.result_tree.map(lambda a: ast.Name(renames.get(a.id, a.id), ast.Load()))
        return ast.Name(renames.get(inner.result, inner.result), ast.Load())

    # -- objects of the user's classes (self.W, model.loss(x), model(x)) --------------

    def object_constant(self, binding: Binding, node) -> ast.Name:
        """An array (or object) held by an object (``self.W``, ``network.first``): a constant of
        the generated module, named for its attribute (one name per value)."""
        value = binding.value
        if not isinstance(value, (np.ndarray, np.generic)) and binding.kind != "object":
            raise self.error(f"{binding.qualname} holds a {type(value).__name__}: s2s reads "
                             "arrays and numbers from objects", node,
                             hint="read it into a variable outside, and pass it as an argument")
        names = self.__dict__.setdefault("object_names", {})
        if id(value) not in names:
            names[id(value)] = self.namer.fresh(binding.qualname.rsplit(".", 1)[1])
            self.constants[names[id(value)]] = Binding("constant", binding.qualname, value=value)
        return at(ast.Name(names[id(value)], ast.Load()), node)

    def object_argument(self, expr) -> Binding | None:
        """The user's object an argument passes (``use_params(prm, z)``), or None."""
        if isinstance(expr, ast.Name) and expr.id in self.functions:
            found = self.functions[expr.id]
            return found if found.kind == "object" else None
        if not isinstance(expr, (ast.Name, ast.Attribute)) or isinstance(expr, ast.Name) and \
                expr.id in self.locals:
            return None
        binding = self.src.resolve(expr)
        return binding if binding is not None and binding.kind == "object" and \
            not isinstance(binding.value, type) else None

    def argument_attribute(self, node) -> Binding | None:
        """``p.scale``, ``p.apply`` (``p.layer.forward``) where parameter ``p`` was given one of
        the user's objects: read as the same attribute of a global object is, and recorded in
        this function's scope under the object (so that `source.rebound` follows it)."""
        parts, root = [], node
        while isinstance(root, ast.Attribute):
            parts.append(root.attr)
            root = root.value
        if not parts or not isinstance(root, ast.Name) or root.id not in self.functions or \
                self.functions[root.id].kind != "object":
            return None
        owner = self.functions[root.id].value
        key = f"<object {id(owner)}>"
        self.src.scope.setdefault(key, Binding("object", key, value=owner))
        path: ast.expr = ast.Name("_", ast.Load())
        for attr in reversed(parts):
            path = ast.Attribute(path, attr, ast.Load())
        found = self.src.resolve(path, {"_": key})
        if found is not None and found.kind in ("constant", "object"):
            found = dataclasses.replace(found, qualname=ast.unparse(node))  # named p.W in comments
        return found

    def method_of_argument(self, func) -> Binding | None:
        """``p.apply(z)`` with ``p`` given an object: the method (see `argument_attribute`)."""
        found = self.argument_attribute(func)
        if found is not None and found.kind not in ("user", "custom", "object"):  # (object: __call__)
            raise self.error(f"{ast.unparse(func)} is not a method s2s can read", func)
        return found

    def callable_object(self, binding: Binding, expr) -> Binding:
        if isinstance(binding.value, type):
            raise self.error(f"making a {binding.value.__name__} inside a differentiated function is "
                             "not supported", expr, hint="make the object outside, and call its methods")
        method = getattr(type(binding.value), "__call__", None)
        if not inspect.isfunction(method):
            raise self.error(f"{ast.unparse(expr.func)} is an object s2s cannot call", expr.func,
                             hint="call one of its methods")
        key = f"<object {id(binding.value)}>"  # kept where `source.rebound` follows what it reads
        self.src.scope.setdefault(key, Binding("object", key, value=binding.value))
        return self.src.resolve(ast.Attribute(ast.Name("_", ast.Load()), "__call__", ast.Load()),
                                {"_": key})

    # -- f(*xs), f(**kw), def f(*args, **kw) -------------------------------------

    def spread(self, expr: ast.Call, out) -> ast.Call:
        """``f(*xs, **kw)`` with ``xs`` a tuple or list and ``kw`` a dict that s2s knows (a
        display, or built in the function, or a helper's ``*args``): the items passed one
        by one, ``f(a, b, scale=s)``."""
        if not any(isinstance(a, ast.Starred) for a in expr.args) and all(k.arg for k in expr.keywords):
            return expr
        args, keywords = [], []
        for a in expr.args:
            if isinstance(a, ast.Starred):
                tree = self.known_container(a.value, "*", out)
                items = [ast.Constant(k) for k in tree.keys] if tree.kind == "dict" else tree.items
                args += [copy_tree(display(i)) for i in items]
            else:
                args.append(a)
        for k in expr.keywords:
            if k.arg is not None:
                keywords.append(k)
                continue
            tree = self.known_container(k.value, "**", out)
            if tree.kind != "dict" or not all(isinstance(key, str) for key in tree.keys):
                raise self.error("** takes a dict with string keys", k.value)
            keywords += [at(ast.keyword(key, copy_tree(display(i))), k.value)
                         for key, i in zip(tree.keys, tree.items)]
        names = [k.arg for k in keywords]
        for name in names:
            if names.count(name) > 1:
                raise self.error(f"the call gets two values for {name!r}", expr)
        return at(ast.Call(expr.func, args, keywords), expr)

    def known_container(self, node, star, out) -> Static:
        tree = self.value(node, out)
        if not isinstance(tree, Static):
            raise self.error(f"{star}{ast.unparse(node)}: s2s passes the items of a tuple, list or "
                             "dict whose length it knows, not of an array", node,
                             hint="pass the items one by one, or make a tuple: f(*(a, b))")
        return tree

    def bind_arguments(self, callee, params, expr: ast.Call) -> dict[str, ast.expr]:
        """The argument each parameter of ``callee`` gets at call ``expr``, as Python binds
        them: ``*args`` a tuple display of the extra positional ones, ``**kw`` a dict
        display of the extra keywords."""
        args = callee.node.args
        positional = params[:len(params) - len(args.kwonlyargs)]
        given: dict[str, ast.expr] = {}
        if len(expr.args) > len(positional) and args.vararg is None:
            raise self.error(f"{callee.name}() takes {len(positional)} positional arguments", expr)
        for p, a in zip(positional, expr.args):
            given[p] = a
        if args.vararg is not None:
            given[args.vararg.arg] = at(ast.Tuple(list(expr.args[len(positional):]), ast.Load()), expr)
        extra = {}
        for kw in expr.keywords:
            if kw.arg in given or kw.arg in extra:
                raise self.error(f"{callee.name}() got two values for {kw.arg!r}", kw.value)
            if kw.arg in params and kw.arg not in [a.arg for a in args.posonlyargs]:
                given[kw.arg] = kw.value
            elif args.kwarg is not None:
                extra[kw.arg] = kw.value
            else:
                raise self.error(f"{callee.name}() has no parameter {kw.arg!r}", kw.value)
        for a in list(expr.args[len(positional):]) + list(extra.values()):
            if self.function_value(a) is not None:
                raise self.error(f"a function passed to {callee.name} through *args or **kwargs is "
                                 "not supported", a, hint=f"give {callee.name} a parameter for it")
        if args.kwarg is not None:
            given[args.kwarg.arg] = at(ast.Dict([ast.Constant(k) for k in extra], list(extra.values())),
                                       expr)
        return given

    def function_value(self, expr) -> Binding | None:
        """The function an argument passes (``rk4(f, y0, ts)``), or None for a value."""
        if isinstance(expr, ast.Lambda):
            return self.local_function("lambda_", expr, expr)
        if isinstance(expr, ast.Name) and expr.id in self.functions:
            found = self.functions[expr.id]
            return None if found.kind == "object" else found
        if isinstance(expr, (ast.Name, ast.Attribute)) and not (
                isinstance(expr, ast.Name) and expr.id in self.locals):
            binding = self.src.resolve(expr)
            if binding is not None and binding.kind in ("user", "custom"):
                return binding
            if binding is not None and binding.kind == "library" and self.dtype(expr) is None and \
                    binding.qualname.split(".")[0] in ("numpy", "scipy", "math"):
                return binding  # np.tanh passed to a helper that calls it
        return None

    def unclashed(self, binding: Binding, callee, params, back) -> Binding:
        """A closure passed to ``callee`` that reads a name ``callee`` also uses (its own
        variable, or a global it reads), with that read renamed to a fresh name, which `inline`
        renames back (``back``) once the helper's own names are renamed."""
        fs = binding.function.get() if isinstance(binding.function, _Known) else None
        if fs is None or not fs.enclosing:
            return binding
        used = {n.id for n in walk(callee.node) if isinstance(n, ast.Name)} | set(params)
        clash = fs.enclosing & used
        if not clash or any(isinstance(n, ast.arg) and n.arg in clash for n in walk(fs.node)):
            return binding  # (a lambda inside it binding the name: refused in `inline`)
        names = {v: self.namer.fresh(v) for v in sorted(clash)}
        back.update({new: old for old, new in names.items()})
        node = rename(copy_tree(fs.node), names)
        src = dataclasses.replace(fs, node=node, enclosing=frozenset(names.get(v, v) for v in fs.enclosing))
        return Binding(binding.kind, binding.qualname, function=_Known(src))

    def check_closure(self, binding: Binding, where):
        """A nested def or lambda of this function reads variables, not containers s2s holds."""
        fs = binding.function.get() if isinstance(binding.function, _Known) else None
        if fs is not None and fs.definer is self.src and fs.enclosing & set(self.bindings):
            name = sorted(fs.enclosing & set(self.bindings))[0]
            raise self.error(f"{binding.qualname} reads the container {name!r} of the function "
                             "it is defined in", where, hint=f"pass {name!r} as an argument")

    def helper_constants(self, constants) -> dict[str, str]:
        """Take over the module constants an inlined helper reads; rename those whose name
        means something else here (a parameter or local of the caller, another constant)."""
        renames = {}
        for name, binding in constants.items():
            mine = self.constants.get(name) or (None if name in self.locals else self.src.scope.get(name))
            same = mine is not None and mine.kind == binding.kind and mine.value is binding.value
            if not same and (name in self.locals or mine is not None or name in self.namer.taken):
                renames[name] = self.namer.fresh(name)
            new = renames.get(name, name)
            self.namer.reserve(new)
            qualname = binding.qualname if "." in binding.qualname else new  # self.W: kept
            self.constants[new] = Binding(binding.kind, qualname, binding.function, binding.value)
        return renames

    def helper_defaults(self, callee, params) -> dict[str, ast.expr]:
        """Atoms for a helper's default values, which Python evaluated in the helper's module
        when it defined the helper (``def h(x, s=SCALE)``)."""
        args = callee.node.args
        positional = params[:len(params) - len(args.kwonlyargs)]
        names = positional[len(positional) - len(args.defaults):] + [
            a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        nodes = args.defaults + [d for d in args.kw_defaults if d is not None]
        live = None
        if callee.live is not None:
            kw = getattr(callee.live, "__kwdefaults__", None) or {}
            live = list(getattr(callee.live, "__defaults__", None) or ()) + [
                kw[a.arg] for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        atoms = {}
        for i, (p, node) in enumerate(zip(names, nodes)):
            function = _function_default(live[i] if live is not None else callee.resolve(node), p)
            if function is not None:  # def layer(h, act=np.tanh): passed like an argument
                atoms[p] = function
                continue
            if live is not None:
                value = live[i]
            else:
                binding = callee.resolve(node)
                try:
                    value = binding.value if binding and binding.kind == "constant" else \
                        ast.literal_eval(node)
                except ValueError:
                    raise callee.error(NameResolutionError, f"cannot read the default value of "
                                       f"{p!r}", node, hint="use a number or a module constant",
                                       stage="normalize") from None
            if value is None or isinstance(value, (bool, int, float, str)):
                atoms[p] = ast.Constant(value)
            else:  # an array: a constant of the generated module, named as in the helper
                name = self.namer.fresh(node.id if isinstance(node, ast.Name) else p)
                self.constants[name] = Binding("constant", name, value=value)
                atoms[p] = ast.Name(name, ast.Load())
        return atoms


class _Specialized:
    """A lowering's source with its static parameters replaced by their values, the
    parameters removed and the branches on them folded (see `CallLowering.lowered`)."""

    def __init__(self, src, values):
        self.src, self.values = src, values

    def get(self):
        node = _Fold(self.values).visit(copy_tree(self.src.node))
        args = node.args
        keep = [i for i, a in enumerate(args.args) if a.arg not in self.values]
        first_default = len(args.args) - len(args.defaults)
        args.defaults = [d for i, d in zip(range(first_default, len(args.args)), args.defaults) if i in keep]
        args.args = [args.args[i] for i in keep]
        kept = [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if a.arg not in self.values]
        args.kwonlyargs, args.kw_defaults = [a for a, _ in kept], [d for _, d in kept]
        return dataclasses.replace(self.src, node=node)


class _Fold(ast.NodeTransformer):
    """Constant values for names, and ``if``/``a if c else b`` on constant tests folded."""

    def __init__(self, values):
        self.values = values

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return ast.copy_location(ast.Constant(self.values[node.id]), node)
        return node

    def _test(self, test):
        if any(isinstance(n, ast.Name) for n in walk(test)):
            return None
        try:
            return (bool(eval(compile(ast.Expression(test), "<lowering>", "eval"), {"__builtins__": {}})),)
        except Exception:  # noqa: BLE001 - not a constant test
            return None

    def visit_IfExp(self, node):
        self.generic_visit(node)
        folded = self._test(node.test)
        return node if folded is None else (node.body if folded[0] else node.orelse)

    def visit_If(self, node):
        self.generic_visit(node)
        folded = self._test(node.test)
        return node if folded is None else (node.body if folded[0] else node.orelse)


class InactiveRewriter(ast.NodeTransformer):
    """Resolve names in a never-differentiated expression; refuse unknown names."""

    def __init__(self, norm, out=None, report=None):
        self.norm = norm
        self.out = out  # where a call to the user's own function is computed first
        self.report = report  # print(...) or logging.info(...): called as it is

    def visit_Name(self, node):
        if node.id in self.norm.tables or node.id in self.norm.functions and \
                self.norm.functions[node.id].kind != "object":
            raise self.norm.error(f"the function {node.id!r} is used as a value", node,
                                  hint="call it here, or compute the value you need first")
        if node.id in self.norm.bindings:
            return display(self.norm.bindings[node.id])
        if node.id in self.norm.locals:
            return node
        binding = self.norm.src.resolve(node)
        if binding is None and hasattr(builtins, node.id):
            return node  # ValueError in a raise, isinstance in an assert
        if binding is None:
            raise self.norm.error(f"cannot resolve name {node.id!r}", node, cls=NameResolutionError)
        if binding.kind == "constant":
            self.norm.constants[node.id] = binding
            return node
        if binding.kind == "builtin":
            return node
        if binding.kind == "library":
            return self.norm.canonical_func(binding.qualname, node)
        if binding.kind == "module":
            return self.norm.canonical_func(binding.qualname, node)
        raise self.norm.error(f"{node.id!r} ({binding.kind}) cannot be used in a condition or index",
                              node, hint="compute it into a variable first")

    def visit_Attribute(self, node):
        binding = self.norm.src.resolve(node) or self.norm.argument_attribute(node)
        if binding is not None:
            if binding.kind == "library" and binding.qualname == "numpy.newaxis":
                return ast.copy_location(ast.Constant(None), node)
            if binding.kind in ("library", "module"):
                return self.norm.canonical_func(binding.qualname, node)
            if binding.kind == "constant" and isinstance(binding.value, (bool, int, float)):
                return ast.copy_location(ast.Constant(binding.value), node)  # mymodel.N
            if binding.kind == "constant" and "." in binding.qualname:
                return self.norm.object_constant(binding, node)  # self.idx
            if binding.kind == "constant":
                raise self.norm.error(f"{ast.unparse(node)} is read from another module", node,
                                      hint="import the value by name (`from mymodel import N`)")
        self.generic_visit(node)
        return node

    def visit_Subscript(self, node):
        tree = self.static_tree(node)
        if tree is not None:
            return tree
        self.generic_visit(node)
        return node

    def static_tree(self, node):
        """A read of a container the normalizer knows (``params["n"]``): its leaf, or None."""
        base, indices = node, []
        while isinstance(base, ast.Subscript):
            indices.append(base.slice)
            base = base.value
        if not (isinstance(base, ast.Name) and base.id in self.norm.bindings):
            return None
        tree = self.norm.bindings[base.id]
        for index in reversed(indices):
            if not isinstance(tree, Static):
                return None
            tree = self.norm.static_item(tree, index, node)
        return display(tree)

    def visit_Call(self, node):
        if self.norm.builtin_name(node) == "len" and len(node.args) == 1:
            length = self.norm.static_length(node.args[0])
            if length is not NOT_KNOWN:
                return ast.copy_location(ast.Constant(length), node)
        binding = self.norm.src.resolve(node.func)
        if node is self.report:
            self.generic_visit(node)
            return node
        if binding is not None and binding.kind == "user" and self.out is not None:
            return self.norm.atom(node, self.out)  # computed into a variable just before
        if binding is not None and binding.kind == "user":
            raise self.norm.error("calls to your own functions in a while loop's test are not "
                                  "supported", node, hint="compute the value into a variable first, "
                                  "and again at the end of the loop's body")
        self.generic_visit(node)
        return node


def _function_default(value, name) -> Binding | None:
    """The function a helper's parameter defaults to (a live value or a static binding)."""
    binding = value if isinstance(value, Binding) else \
        _bind_value(value, name) if callable(value) and not isinstance(value, type) else None
    if binding is None or binding.kind not in ("user", "custom", "library") or \
            binding.kind == "library" and binding.qualname.split(".")[0] not in ("numpy", "scipy", "math"):
        return None
    return binding


# --- helpers on statement lists -------------------------------------------------


def is_derivative(binding) -> bool:
    """A derivative made by s2s (or s2s's own API) where a differentiated function calls it."""
    return binding is not None and binding.kind == "derivative"


def closure_reads(binding: Binding) -> frozenset:
    """The variables of its definer that a nested def or lambda reads (else nothing)."""
    if not isinstance(binding.function, _Known):
        return frozenset()
    return binding.function.get().enclosing


def static_spec(tree: Static):
    """The `pytree.spec` of a container the normalizer knows (leaf kinds unknown)."""
    keys = tree.keys if tree.kind == "dict" else (tree.cls if tree.kind == "namedtuple" else None)
    if tree.kind == "dict":
        keys = tuple(keys)
    return (tree.kind, keys, tuple(static_spec(i) if isinstance(i, Static) else ("leaf", None)
                                   for i in tree.items))


def tag(node, op, origin):
    """``node`` tagged with the qualified name of its operation, placed at ``origin``."""
    node.s2s_op = op
    return at(node, origin)


def is_numpy_type(qualname: str) -> bool:
    value = getattr(np, qualname[6:], None) if qualname.startswith("numpy.") else None
    return isinstance(value, type) and issubclass(value, np.generic)


def range_length(call) -> ast.expr:
    """``len(range(...))`` as integer arithmetic: ``max(n, 0)``, ``max(b - a, 0)`` or
    ``max(-((a - b) // c), 0)`` (the ceiling of ``(b - a) / c`` for either sign of ``c``)."""
    args = [copy_tree(a) for a in call.args]
    if len(args) == 1:
        n = args[0]
    elif len(args) == 2:
        n = ast.BinOp(args[1], ast.Sub(), args[0])
    else:
        n = ast.UnaryOp(ast.USub(), ast.BinOp(ast.BinOp(args[0], ast.Sub(), args[1]), ast.FloorDiv(), args[2]))
    return ast.fix_missing_locations(ast.copy_location(
        ast.Call(ast.Name("max", ast.Load()), [n, ast.Constant(0)], []), call))
