"""Derivatives inside differentiated functions: ``s2s.grad(g)(x)`` called in ``f``.

The inner derivative is generated first (it is Python) and becomes a derivative
unit of the outer module (`s2s.units`): ``grad_g`` runs as it is, forward mode
differentiates its source (``jvp_grad_g``), and reverse mode needs its VJP:

- of a gradient (``s2s.grad``, ``s2s.value_and_grad``): the Jacobian of a gradient
  is a Hessian, which is symmetric, so the VJP for the outer function's active
  arguments P is the JVP of g's gradient in P along the cotangent:
  ``vjp_grad_g(x, y, dout) = jvp_grad_g2(x, y, dout)[1]`` (forward over reverse,
  as every s2s Hessian is);
- of other derivatives (``s2s.hvp``, ``s2s.jvp``, ``s2s.jacobian``, ``s2s.hessian``, a
  gradient of a gradient): the Jacobian's columns by forward mode, one JVP per
  element of the active arguments.

``s2s.jacobian(g)`` and ``s2s.hessian(g)`` become a generated function that sums
``np.tensordot(column, e, axes=0)`` over the unit vectors ``e`` of the argument.

Forms read: ``dg(x)`` where ``dg = s2s.grad(g, argnums)`` (or ``value_and_grad``,
``hvp``, ``jacobian``, ``hessian``, ``grad`` of a derivative) is a module global,
``s2s.grad(g)(x)`` written in place, and ``s2s.jvp(g, (x, y), (dx, dy))``.
``has_aux``, several argnums where one is needed, and hand-edited derivatives
called inside are refused with their place.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

from .astutil import assign as _assign
from .errors import UnsupportedSyntax
from .pytree import Static

MAKERS = ("grad", "value_and_grad", "hvp", "jacobian", "hessian")  # s2s.<maker>(g)(x); s2s.jvp(g, xs, dxs) is a call


@dataclass(frozen=True)
class Inner:
    """One inner derivative: ``kind`` of the user's function ``g`` in ``argnums``.

    ``kind``: "grad", "value_and_grad", "hvp" (``argnums`` one position), or "grad2"
    (``s2s.grad`` of ``s2s.grad(g, argnums[0])`` in argument ``argnums[1]``)."""

    kind: str
    g: object  # the user's function (live) or a `Binding` read from a file
    argnums: tuple
    single: bool  # argnums was an int: one gradient, not a tuple of them


def derivative_call(norm, expr: ast.Call, out):
    """The normalizer's ``dg(x)``: a call of the inner derivative's unit (see the docstring)."""
    from . import units
    if _maker_here(norm, expr.func) == "jvp":  # s2s.jvp(g, (x, y), (dx, dy))
        inner, args = _jvp_call(norm, expr)
        expr = ast.copy_location(ast.Call(expr.func, args, []), expr)
    else:
        inner = _inner(norm, expr)
    label = expr.func.id if isinstance(expr.func, ast.Name) else None  # the user's name for it
    src, returns_tuple = generated(norm, inner, expr, label)
    call = ast.Call(ast.Name(src.name, ast.Load()), expr.args, expr.keywords)
    ast.copy_location(call, expr)
    node = units.unit_call(norm, src, call, out, inner=inner)
    if not returns_tuple:
        return node
    from .calls import tag
    pair = norm.namer.temp()
    out.append(_assign(pair, node, expr))
    items = []
    count = outputs(inner)
    for i in range(count):
        item = tag(ast.Subscript(ast.Name(pair, ast.Load()), ast.Constant(i), ast.Load()), "unpack", expr)
        item.s2s_unpack_len = count
        name = norm.namer.temp()
        out.append(_assign(name, item, expr))
        items.append(ast.Name(name, ast.Load()))
    return Static("tuple", items)


def outputs(inner: Inner) -> int:
    """How many values the inner derivative returns (1: one value, not a tuple)."""
    if inner.kind in ("value_and_grad", "jvp"):
        return 2
    return 1 if inner.single else len(inner.argnums)


def _maker_here(norm, func) -> str:
    """``"jvp"`` for ``s2s.jvp`` itself (the name of the s2s function ``func`` is), else ""."""
    if not isinstance(func, (ast.Name, ast.Attribute)):
        return ""
    binding = norm.src.resolve(func)
    if binding is None or binding.kind != "derivative" or isinstance(binding.value, ast.Call) or \
            getattr(binding.value, "__s2s_module__", None) is not None:
        return ""
    return func.attr if isinstance(func, ast.Attribute) else _maker_name(binding)


def _jvp_call(norm, expr: ast.Call):
    """``s2s.jvp(g, (x, y), (dx, dy))``: the inner derivative ``jvp_g`` and its arguments."""
    if len(expr.args) != 3 or expr.keywords or not all(
            isinstance(a, (ast.Tuple, ast.List)) for a in expr.args[1:]) or \
            len(expr.args[1].elts) != len(expr.args[2].elts):
        raise norm.error("s2s.jvp inside a differentiated function takes the function, a tuple of "
                         "primals and a tuple of tangents, written out", expr,
                         hint="s2s.jvp(g, (x, y), (dx, dy))")
    g = norm.function_value(expr.args[0])
    if g is None or g.kind != "user":
        raise norm.error("s2s.jvp is given something s2s cannot read as a function here",
                         expr.args[0], hint="pass a function defined at module level")
    count = len(expr.args[1].elts)
    return Inner("jvp", g, tuple(range(count)), False), expr.args[1].elts + expr.args[2].elts


def _inner(norm, expr: ast.Call) -> Inner:
    """What the call computes: a global made by s2s, or ``s2s.grad(g, ...)`` written in place."""
    func = expr.func
    if isinstance(func, ast.Call):  # s2s.grad(g, argnums=1)(x, y)
        return _made_here(norm, func)
    binding = norm.function_binding(func)
    if isinstance(binding.value, ast.Call):  # dg = s2s.grad(g) at module level, read from a file
        return _made_here(norm, binding.value)
    made = getattr(binding.value, "__s2s_module__", None)
    spec = getattr(binding.value, "s2s_spec", None)
    from . import api
    if isinstance(made, api._Derivative) and type(made) is api._Derivative and not made.has_aux \
            and made.returns in ("grad", "value_and_grad") and made.target == "numpy":
        inner = Inner(made.returns, made.fn, made.nums, isinstance(made.argnums, int))
    elif spec is not None and spec[0] in ("hvp", "jacobian", "hessian"):
        inner = Inner(spec[0], spec[1], _tuple(spec[2]), isinstance(spec[2], int))
    elif spec is not None and spec[0] == "grad":  # s2s.grad of a derivative made by s2s
        outer = getattr(spec[1], "__s2s_module__", None)
        if not (isinstance(outer, api._Derivative) and outer.returns == "grad" and not outer.has_aux
                and isinstance(outer.argnums, int) and isinstance(spec[2], int)):
            raise _refuse(norm, func, "a derivative of this derivative")
        inner = Inner("grad2", outer.fn, (outer.argnums, spec[2]), True)
    else:
        raise _refuse(norm, func, getattr(binding.value, "__name__", "this derivative"))
    return _checked(norm, inner, func)


def _made_here(norm, func: ast.Call) -> Inner:
    """``s2s.grad(g, argnums=1)``, read as written."""
    maker = norm.src.resolve(func.func)
    kind = _maker_name(maker)
    if maker is not None and maker.kind == "derivative" and isinstance(func.func, ast.Attribute):
        kind = func.func.attr  # s2s.grad (the binding is the module's)
    if kind not in MAKERS:
        raise _refuse(norm, func, kind)
    other = [k.arg for k in func.keywords if k.arg != "argnums"]
    if len(func.args) != 1 or other:
        raise norm.error(f"s2s.{kind}(...) inside a differentiated function takes the function "
                         f"and argnums only{f' (not {other[0]}=)' if other else ''}", func)
    g = norm.function_value(func.args[0])
    if g is None or g.kind != "user":
        raise norm.error(f"s2s.{kind} is given something s2s cannot read as a function here",
                         func.args[0], hint="pass a function defined at module level")
    argnums = norm.static_value(func.keywords[0].value) if func.keywords else 0
    return _checked(norm, Inner(kind, g, _tuple(argnums), isinstance(argnums, int)), func)


def _maker_name(binding) -> str:
    if binding is None or binding.kind != "derivative":
        return ""
    value = binding.value
    return getattr(value, "__name__", "") if value is not None else binding.qualname.rsplit(".", 1)[-1]


def _refuse(norm, node, what):
    return norm.error(f"{what} called inside a differentiated function is not supported (s2s "
                      "differentiates grad, value_and_grad, hvp, jvp, jacobian and hessian made "
                      "by s2s there)", node,
                      hint="compute it outside and pass the result as an argument")


def _tuple(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _checked(norm, inner: Inner, where) -> Inner:
    if inner.kind == "value_and_grad" and not inner.single:
        raise norm.error("s2s.value_and_grad with several argnums inside a differentiated "
                         "function is not supported", where, hint="call s2s.grad for each")
    if inner.kind in ("hvp", "jacobian", "hessian") and not inner.single:
        raise norm.error(f"s2s.{inner.kind} inside a differentiated function takes one argnums",
                         where)
    return inner


# --- the generated functions ------------------------------------------------------------

def generated(norm, inner: Inner, where, label=None):
    """(FunctionSource of the generated inner derivative, whether it returns a tuple)."""
    from .units import current
    g_src = _source_of(norm, inner.g)
    # Where it is called: a module global it reads, rebound later, is seen there (`source.rebound`).
    inside = norm.src.node.__dict__.setdefault("s2s_inner_sources", [])  # (copies share the node)
    if not any(s is g_src for s in inside):
        inside.append(g_src)
    params = g_src.node.args
    names = [a.arg for a in params.posonlyargs + params.args]
    if params.vararg or params.kwarg or params.kwonlyargs or params.defaults:
        raise norm.error(f"the function given to s2s.{inner.kind} here must take positional "
                         "parameters without defaults", where)
    for n in inner.argnums:
        if not -len(names) <= n < len(names):
            raise norm.error(f"argnums={n} is out of range for {g_src.name}", where)
    key = (g_src.filename, g_src.name, g_src.node.lineno, g_src.digest(), inner.kind, inner.argnums,
           inner.single, label)
    made = current()["made"]  # (per generated module: module globals are read afresh each time)
    if key not in made:
        made[key] = _make(g_src, names, inner, label)
    return made[key]


def _source_of(norm, g):
    """The source of the user's function, one per generated module."""
    from .source import from_function
    from .units import current
    if hasattr(g, "function"):  # a Binding
        return g.function.get()
    sources = current()["sources"]
    if id(g) not in sources:
        sources[id(g)] = (g, from_function(g))
    return sources[id(g)][1]


def gradient_source(g_src, wrt, returns="grad", as_tuple=False, name=None):
    """The FunctionSource of ``grad_g`` (compiled: forward mode and the normalizer read it)."""
    from . import derive, emit
    from .source import from_function
    gen = derive.reverse_module(g_src, wrt, returns=returns, as_tuple=as_tuple, name=name)
    namespace = emit.compile_module(gen.text, gen.entry, gen.injected)
    return from_function(namespace[gen.entry])


def _make(g_src, names, inner: Inner, label=None):
    from . import emit, forward
    from .source import from_function
    wrt = [names[n] for n in inner.argnums]
    if inner.kind in ("grad", "value_and_grad"):
        return gradient_source(g_src, wrt, inner.kind, not inner.single, label), outputs(inner) > 1
    if inner.kind == "jvp":
        if len(wrt) != len(names):
            raise g_src.error(UnsupportedSyntax, f"s2s.jvp of {g_src.name} inside a differentiated "
                              "function takes a primal and a tangent for each of its parameters",
                              g_src.node, stage="normalize")
        gen = forward.forward_module(g_src, wrt, name=label)
        return from_function(emit.compile_module(gen.text, gen.entry, gen.injected)[gen.entry]), True
    if inner.kind in ("jacobian", "hessian"):
        return _jacobian_source(g_src, names, wrt[0], inner.kind, label), False
    grad = gradient_source(g_src, wrt[:1])
    along = wrt[1] if inner.kind == "grad2" else wrt[0]
    jvp = forward.forward_module(grad, [along])
    namespace = emit.compile_module(jvp.text, jvp.entry, jvp.injected)
    if inner.kind == "hvp":
        v = _free("v", names)
        entry = label or f"hvp_{g_src.name}"
        text = (f"def {entry}({', '.join(names + [v])}):\n"
                f'    """Hessian of {g_src.name} in {wrt[0]} times {v}."""\n'
                f"    return {jvp.entry}({', '.join(names + [v])})[1]\n")
    else:
        entry = label or f"grad_grad_{g_src.name}"
        text = (f"def {entry}({', '.join(names)}):\n"
                f'    """d/d{along} of the gradient of {g_src.name} in {wrt[0]}."""\n'
                f"    return {jvp.entry}({', '.join(names)}, 1.0)[1]\n")
    made = emit.compile_module(text, entry, {jvp.entry: namespace[jvp.entry]})
    return from_function(made[entry]), False


def _jacobian_source(g_src, names, x, kind, label):
    """``jacobian_g(...)``: a column per element of ``x`` by forward mode (of ``g``, or of its
    gradient for a Hessian), shaped ``value.shape + x.shape`` as `s2s.jacobian` returns it."""
    from . import emit, forward
    from .source import from_function
    of = gradient_source(g_src, [x]) if kind == "hessian" else g_src
    jvp = forward.forward_module(of, [x])
    namespace = emit.compile_module(jvp.text, jvp.entry, jvp.injected)
    entry = label or f"{kind}_{g_src.name}"
    args = ", ".join(names)
    call = lambda tangent: f"{jvp.entry}({args}, {tangent})"  # noqa: E731
    text = (f"def {entry}({args}):\n"
            f'    """The {"Hessian" if kind == "hessian" else "Jacobian"} of {g_src.name} in {x}, a '
            f'column per element of {x} (forward mode)."""\n'
            f"    J = 0.0\n"
            f"    for i in range(np.size({x})):\n"
            f"        e = np.zeros(np.size({x}))\n"
            f"        e[i] = 1.0\n"
            f"        e = np.reshape(e, np.shape({x}))\n"
            f"        J = J + np.tensordot({call('e')}[1], e, axes=0)\n"
            f"    return J\n")
    import numpy as np
    made = emit.compile_module(text, entry, {jvp.entry: namespace[jvp.entry], "np": np})
    return from_function(made[entry])


def _free(name, taken):
    while name in taken:
        name += "_"
    return name


# --- the VJP unit -------------------------------------------------------------------------

def vjp_function(unit, name: str, placeholder):
    """The text of ``name(params..., dout)``: the VJP of an inner derivative's unit for the
    arguments at ``unit.positions`` (see the module docstring); ``placeholder(src, positions)``
    names the JVP unit it calls."""
    inner: Inner = unit.inner
    params = [a.arg for a in unit.src.node.args.posonlyargs + unit.src.node.args.args]
    taken = set(params)
    dout = _free("dout", taken)
    active = [params[i] for i in unit.positions]
    grads = [_free("d" + p, taken | {dout}) for p in active]
    head = f"def {name}({', '.join(params + [dout])}):\n"
    if inner.kind in ("grad", "value_and_grad"):
        g_src = _source_of(None, inner.g)
        grad_p = gradient_source(g_src, active, "grad", True)
        along = [n % len(params) for n in inner.argnums]
        jvp = placeholder(grad_p, tuple(along))
        cotangents = [f"{dout}[1]"] if inner.kind == "value_and_grad" else \
            ([dout] if inner.single else [f"{dout}[{i}]" for i in range(len(along))])
        doc = (f'    """VJP of {unit.src.name} in {", ".join(active)}: the Hessian of {g_src.name} '
               f'(symmetric) times the cotangent, by forward mode over its gradient."""\n')
        lines = [f"    gradient, hessian_times = {jvp}({', '.join(params + cotangents)})"]
        results = [f"hessian_times[{i}]" for i in range(len(active))]
        if inner.kind == "value_and_grad":
            results = [f"{dout}[0] * gradient[{i}] + {r}" for i, r in enumerate(results)]
        return head + doc + "\n".join(lines) + f"\n    return {', '.join(results)}\n"
    jvp = placeholder(unit.src, tuple(unit.positions))
    doc = (f'    """VJP of {unit.src.name} in {", ".join(active)}, a column of its Jacobian per '
           f'element (forward mode)."""\n')
    lines = []
    for k, (p, d) in enumerate(zip(active, grads)):
        tangents = ["e" if j == k else f"0.0 * {q}" for j, q in enumerate(active)]
        lines += [f"    {d} = np.zeros(np.shape({p}))",
                  f"    for i in range(np.size({p})):",
                  f"        e = np.zeros(np.size({p}))",
                  "        e[i] = 1.0",
                  f"        e = np.reshape(e, np.shape({p}))",
                  f"        column = {jvp}({', '.join(params + tangents)})[1]",
                  f"        {d} = {d} + e * ({_dot(dout, 'column', outputs(inner))})"]
    returns = ", ".join(grads)
    return head + doc + "\n".join(lines) + f"\n    return {returns}\n"


def _dot(a: str, b: str, count: int) -> str:
    """The sum of the elementwise products of ``a`` and ``b`` (tuples of ``count`` values)."""
    if count == 1:
        return f"np.sum({a} * {b})"
    return " + ".join(f"np.sum({a}[{i}] * {b}[{i}])" for i in range(count))
