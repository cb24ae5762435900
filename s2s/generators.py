"""Generators consumed by a ``for`` loop (or by list(), zip(), enumerate() and comprehensions,
which need the items it yields), for the normalize stage: inlined statically.

``for W, b in unpack_layers(w): body`` becomes the generator's own statements
(its parameters bound to the arguments, its locals renamed) with each
``yield e`` replaced by ``W, b = e`` followed by a copy of ``body``. Names the
generator reads from its module or closure are taken over: literal values
(``shapes``, a list of pairs) are written in place, so the loops over them
unroll; functions and arrays are bound under fresh names.
"""
from __future__ import annotations

import ast

from .astutil import at, copy_tree, stored_names, walk
from .controlflow import rename
from .errors import UnsupportedSyntax
from .source import Binding, FunctionSource, param_names


def is_generator(src: FunctionSource) -> bool:
    """Does the function yield (in its own body, not in a nested def)?"""
    return any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own_nodes(src.node))


def own_nodes(fn):
    """The nodes of ``fn``'s body, not those of functions defined inside it."""
    todo = list(fn.body)
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.Lambda, ast.AsyncFunctionDef)):
            todo.extend(ast.iter_child_nodes(node))


def unrolled_generator(norm, loop: ast.For, binding: Binding) -> list[ast.stmt]:
    """The statements that replace ``loop``, a loop over a call of generator ``binding``."""
    gen = binding.function.get()
    call = loop.iter
    for node in walk(ast.Module(loop.body, [])):
        if isinstance(node, (ast.Break, ast.Continue, ast.Return)):
            raise norm.error(f"{type(node).__name__.lower()} in a loop over the generator "
                             f"{gen.name} is not supported", node,
                             hint="use a flag, or collect the items into a list first")
    for node in own_nodes(gen.node):
        if isinstance(node, ast.YieldFrom) or isinstance(node, ast.Yield) and not _yield_statement(gen, node):
            raise gen.error(UnsupportedSyntax, "only `yield value` as a statement is supported in a "
                            "generator", node, hint="yield each value on its own line", stage="normalize")
        if isinstance(node, ast.Return):
            raise gen.error(UnsupportedSyntax, "return in a generator is not supported", node,
                            hint="let the generator's loop end instead", stage="normalize")
    if gen.node.args.defaults or gen.node.args.kw_defaults or any(k.arg is None for k in call.keywords):
        raise norm.error("a generator with default values or **kwargs is not supported", call)
    params = param_names(gen.node)
    given = dict(zip(params, call.args)) | {k.arg: k.value for k in call.keywords}
    if len(call.args) > len(params) or set(given) != set(params):
        raise norm.error(f"{gen.name}() takes the arguments {', '.join(params)}", call)
    own = set(params) | stored_names(gen.node)
    renames = {name: norm.namer.fresh(name) for name in sorted(own)}
    out = [at(ast.Assign([ast.Name(renames[p], ast.Store())], given[p]), call) for p in params]
    renames.update(_free_names(norm, gen, own))
    body = [rename(copy_tree(s), renames) for s in gen.node.body]
    body = [_literals(s, gen, own) for s in body]
    norm.locals |= set(renames.values())
    norm.reassigned |= set(renames.values())  # each yield may see another value: items copy it
    return out + _replace_yields(body, loop)


def materialized(norm, call: ast.Call, binding: Binding, out):
    """``list(gen(w))``, ``zip(gen(w), ys)``, ``[f(v) for v in gen(w)]``: the items the
    generator yields, as a list s2s knows (its loops must unroll: their trip counts known
    when the derivative is generated)."""
    items = norm.namer.fresh("items")
    item = norm.namer.fresh("item")
    norm.locals |= {items, item}
    norm.reassigned.add(item)  # one name for every item: the list holds copies
    append = ast.Expr(ast.Call(ast.Attribute(ast.Name(items, ast.Load()), "append", ast.Load()),
                               [ast.Name(item, ast.Load())], []))
    for node in walk(append):
        ast.copy_location(node, call)
    loop = at(ast.For(ast.Name(item, ast.Store()), call, [append], []), call)
    start = len(out)
    norm.statement(at(ast.Assign([ast.Name(items, ast.Store())], ast.List([], ast.Load())), call), out)
    try:
        for stmt in unrolled_generator(norm, loop, binding):
            norm.statement(stmt, out)
    except UnsupportedSyntax as exc:
        if "changes inside a loop or branch" not in exc.message:
            raise
        raise norm.error(f"the generator {binding.function.get().name} yields in a loop or branch "
                         "whose trip count s2s cannot know when the derivative is generated", call,
                         hint="loop over it with `for` instead, or give its loops constant bounds"
                         ) from exc
    name_generator_lines(out[start:], binding.function.get(), norm.src)
    tree = norm.bindings.get(items)
    if tree is None:
        raise norm.error(f"s2s cannot tell how many items the generator {binding.function.get().name} "
                         "yields here", call, hint="loop over it with `for` instead")
    return tree


def name_generator_lines(stmts, gen: FunctionSource, consumer: FunctionSource):
    """Comments in the derivative name the generator's own lines (``unpack_layers, line 10``)."""
    if gen is consumer:
        return
    for stmt in stmts:
        for node in walk(stmt):
            if isinstance(node, ast.stmt) and not hasattr(node, "s2s_src") and \
                    gen.node.lineno <= getattr(node, "lineno", 0) <= gen.node.end_lineno:
                node.s2s_src = gen


def _yield_statement(gen, node) -> bool:
    return any(isinstance(s, ast.Expr) and s.value is node for s in own_nodes(gen.node))


def _free_names(norm, gen, own) -> dict[str, str]:
    """Fresh names for what the generator reads from its module or closure (functions and
    arrays), bound in the consumer; names that mean the same there keep their name."""
    renames = {}
    reads = {n.id for n in own_nodes(gen.node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    for name in sorted(reads - own - set(gen.enclosing)):
        binding = gen.scope.get(name)
        if binding is None or _literal(binding) is not None:
            continue  # an error where it is read; literals are written in place
        mine = None if name in norm.locals else norm.src.scope.get(name)
        if mine is None and name not in norm.locals and binding.kind in ("builtin", "module", "library"):
            norm.src.scope[name] = binding  # range, np: read where the generator is inlined
            continue
        if mine is not None and mine.kind == binding.kind and mine.qualname == binding.qualname \
                and mine.value is binding.value:
            continue
        fresh = norm.namer.fresh(name)
        renames[name] = fresh
        if binding.kind in ("user", "custom"):
            norm.functions[fresh] = binding
        elif binding.kind == "constant":
            norm.constants[fresh] = Binding("constant", fresh, value=binding.value)
        else:
            raise gen.error(UnsupportedSyntax, f"the generator {gen.name} reads {name!r}, which means "
                            "something else where it is used", gen.node,
                            hint="import it under the same name in both modules", stage="normalize")
    return renames


def _literal(binding):
    """The value of a constant that can be written in the code (numbers, tuples, lists)."""
    if binding.kind != "constant":
        return None

    def ok(v):
        return type(v) in (int, float, bool, str) or isinstance(v, (list, tuple)) and all(ok(i) for i in v)
    return binding.value if ok(binding.value) and binding.value is not None else None


def _literals(stmt, gen, own):
    """``shapes`` -> ``[(4, 8), (8, 3)]`` for the generator's literal module/closure values."""
    class Literals(ast.NodeTransformer):
        def visit_Name(self, node):
            binding = None if node.id in own or node.id in gen.enclosing else gen.scope.get(node.id)
            value = None if binding is None else _literal(binding)
            if value is None or not isinstance(node.ctx, ast.Load):
                return node
            return ast.copy_location(ast.parse(repr(value), mode="eval").body, node)
    out = Literals().visit(stmt)
    ast.fix_missing_locations(out)
    return out


def _replace_yields(stmts, loop):
    out = []
    for stmt in stmts:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Yield):
            value = stmt.value.value or ast.Constant(None)
            out.append(at(ast.Assign([copy_tree(loop.target)], value), stmt))
            out.extend(copy_tree(loop.body))
            continue
        for field in ("body", "orelse"):
            if isinstance(getattr(stmt, field, None), list) and not isinstance(stmt, ast.FunctionDef):
                setattr(stmt, field, _replace_yields(getattr(stmt, field), loop))
        out.append(stmt)
    return out
