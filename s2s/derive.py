"""The pipeline end to end: source -> normalize -> reverse -> optimize -> module text."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from . import emit, ode, source, targets, units
from .analyze import assignments
from .astutil import at, names_in, walk
from .errors import NonScalarOutput, S2SError, UnsupportedSyntax
from .naming import Namer
from .normalize import Normalized, normalize
from .batching import batch
from .lean import lean
from .fresh import own_gradients
from .optimize import optimize, remove_dead
from .preallocate import drop_unread, preallocate, zeros_by_shape
from .pytree import differentiable, display, spelling, unpacking
from .reverse import reverse
from .source import FunctionSource, param_names

LITERALS = (int, float, bool, str, tuple, type(None))
STAGES = ("normalize", "reverse", "optimize", "emit")


@dataclass
class Generated:
    """A generated module: its text, its entry point, and values it needs at load time."""

    text: str
    entry: str
    injected: dict = field(default_factory=dict)  # non-literal module constants (live mode)


def reverse_module(src: FunctionSource, wrt: list[str], **options) -> Generated:
    """`_reverse_module` (see there), with the derivative units of its module (`units`)."""
    if options.get("part"):
        return _reverse_module(src, wrt, **options)
    with units.generation():
        return _reverse_module(src, wrt, **options)


def _reverse_module(src: FunctionSource, wrt: list[str], *, returns: str = "grad",
                   name: str | None = None, target: str = "numpy", known_scalars=(),
                   known_shapes: dict | None = None, int_arrays=(),
                   has_aux: bool = False, dump_after: str | None = None,
                   as_tuple: bool | None = None, structures=None, part: bool = False) -> Generated:
    """Generate the reverse-mode derivative of ``src`` w.r.t. the parameters ``wrt``.

    ``returns``: ``"grad"`` (the gradients), ``"value_and_grad"`` (value, gradients)
    or ``"vjp"`` (the gradients, for a cotangent passed as the last argument).
    Several gradients, or ``as_tuple=True``, come back as a tuple. ``structures``
    gives the `pytree.spec` of container arguments: their gradients have the same
    structure (None for leaves that are not floats). With ``part``, the function alone:
    (its text, the `Normalized` function, the helpers it uses), for `units`.
    """
    params = check_wrt(src, wrt)
    namer = Namer(params)
    fn = normalize(src, namer, has_aux=has_aux, structures=structures, lengths=lengths(known_shapes))
    if dump_after == "normalize":
        return Generated(_dump(fn.prologue + fn.body), "")
    if fn.result_tree is not None and returns == "pair":
        raise src.error(UnsupportedSyntax, f"{src.name} is recursive and returns a container: its "
                        "derivative units return one array or number", src.node,
                        hint="return one value (np.stack the items)")
    if fn.result_tree is not None and returns != "vjp":
        raise src.error(S2SError, f"{src.name} returns a container; its gradient needs a scalar",
                        src.node, hint="use s2s.vjp or s2s.jacobian for other outputs")
    known_scalars, known_shapes = leaf_knowledge(fn, known_scalars, known_shapes)
    int_arrays = tuple(int_arrays) + tuple(leaf for leaf, k in fn.leaves.kinds.items()
                                           if isinstance(k, tuple) and k[1] in "biu")
    structured_wrt, wrt = wrt, flat_wrt(fn, wrt)
    seed_value = 1.0 if returns in ("grad", "value_and_grad") else None
    pair = returns == "pair"  # (fwd, bwd): the custom_vjp protocol, for `units`
    result = reverse(fn, wrt, known_scalars, seed_value, known_shapes, tuple(int_arrays),
                     recompute_steps=target != "numba")
    if dump_after == "reverse":
        return Generated(_dump(result.forward + result.backward), "")
    grads = [g if g else None for g in result.gradients]
    if returns != "vjp":
        refuse_known_nonscalar(src, fn.result, result.shapes.get(fn.result))
    check_value = returns not in ("vjp", "pair") and fn.result not in result.scalars
    reads_value = returns in ("value_and_grad", "pair") or check_value
    aux_tree = fn.aux_tree
    aux_leaves = [a.id for a in (aux_tree.flat() if hasattr(aux_tree, "flat") else [aux_tree])
                  if isinstance(a, ast.Name)] if aux_tree is not None else []
    values = [fn.result] + aux_leaves
    optimize(result, [g for g in grads if g], values if reads_value else [])
    lean(result, [g for g in grads if g] + (values if reads_value else []))
    stored = preallocate(result, target)
    if zeros_by_shape(result, stored):
        remove_dead(result, [g for g in grads if g], values if reads_value else [])
        drop_unread(result, stored)
    if batch(result, stored):
        remove_dead(result, [g for g in grads if g], values if reads_value else [])
        drop_unread(result, stored)
    # Order-free backward loops run forwards: rows are read in memory order (numba: 8x on a
    # 10 000-row pass; numpy: 5% on logreg_loop, whose per-row work is small).
    targets.ascending(result.backward, [g for g in grads if g] + values)
    if target != "dask":  # Dask arrays are immutable
        own_gradients(result.backward, result.forward, grads, result.scalars)
    if target == "dask":
        result.forward = targets.for_dask(result.forward, result.helpers)
        result.backward = targets.for_dask(result.backward, result.helpers)
    elif target == "numba":
        for used in {n.id for s in result.forward + result.backward for n in walk(s)
                     if isinstance(n, ast.Name)}:
            fn.namer.reserve(used)
        shape_of = lambda n: result.adjoint_shapes.get(n, result.shapes.get(n))  # noqa: E731
        sources = targets.assigned_from(result.forward + result.backward)
        targets.outer_in_place(result.backward, shape_of, fn.namer, sources)
        targets.elementwise_in_place(result.backward, shape_of, result.scalars, fn.namer,
                                     targets.memory_shared(result.forward + result.backward))
        result.forward = targets.for_numba(result.forward)
        result.backward = targets.for_numba(result.backward)
    if dump_after == "optimize":
        return Generated(_dump(result.forward + result.backward), "")
    captured = []
    if returns in ("value_and_grad", "pair"):  # keep the value safe from restores in the backward sweep
        restored, rewritten = set(), set()
        for s in walk(ast.Module(body=result.backward, type_ignores=[])):
            if isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name) and hasattr(s, "s2s_pop"):
                restored.add(s.targets[0].id)
            rewritten |= set(getattr(s, "s2s_restore", ()))  # memory the backward sweep writes
        for i, v in enumerate(values):
            if v in (rewritten if pair else restored | rewritten):
                copy_name = namer.fresh(v + "_value")
                value = f"np.copy({v})" if v in rewritten else v
                captured.append(ast.parse(f"{copy_name} = {value}").body[0])
                values[i] = copy_name

    entry = name or f"{'vjp' if returns == 'vjp' else 'grad'}_{src.name}"
    grad_exprs = [g if g else _zeros(w, known_scalars) for w, g in zip(wrt, grads)]
    zeros_first = [ast.parse(f"{result.fn.namer.fresh('d' + w)} = {e}").body[0]
                   for w, g, e in zip(wrt, grads, grad_exprs)
                   if not g and w in {a.targets[0].id for a in assignments(fn.body)}]
    for stmt in zeros_first:  # the argument is overwritten later: take its zeros first
        grad_exprs[grad_exprs.index(ast.unparse(stmt.value))] = stmt.targets[0].id
    by_leaf = dict(zip(wrt, grad_exprs))
    grad_exprs = [_structured(fn, w, by_leaf) for w in structured_wrt]
    wrt = structured_wrt
    if as_tuple is None:
        as_tuple = len(wrt) > 1 or pair
    grad_ret = "(" + ", ".join(grad_exprs) + ("," if len(wrt) == 1 else "") + ")" if as_tuple \
        else grad_exprs[0]
    value = values[0]
    if aux_tree is not None:
        kept = dict(zip(aux_leaves, values[1:]))
        aux = display(aux_tree, lambda a: ast.Name(kept.get(a.id, a.id), ast.Load())
                      if isinstance(a, ast.Name) else a)
        value = f"({value}, {ast.unparse(aux)})"
    ret = {"grad": grad_ret, "vjp": grad_ret, "pair": grad_ret, "value_and_grad": f"{value}, {grad_ret}"}[returns]
    seed_params, seed_prologue = [result.seed], []
    if returns == "vjp" and fn.result_tree is not None:
        seed_params, seed_prologue = structured_params(
            fn, ["out"], {}, prefix="d", trees={"out": fn.result_tree.map(
                lambda a: ast.Name(result.seeds[fn.results.index(a.id)], ast.Load()))})
    fparams = params + (seed_params if returns == "vjp" else [])
    check = []
    if check_value:
        check = [ast.parse(f"if np.ndim({fn.result}) != 0:\n    raise ValueError("
                           f"'{src.name} must return a scalar (s2s.vjp takes other outputs)')"
                           ).body[0]]
    stacks = [ast.parse(f"{s} = []").body[0] for s in result.stacks]
    if pair:
        return pair_functions(src, fn, result, name, stacks + zeros_first, captured, values[0],
                              grad_ret)
    wrt_text = ", ".join(wrt)
    doc = (f"Gradient of {src.name} with respect to {wrt_text}." if returns == "grad" else
           f"Value of {src.name} and its gradient with respect to {wrt_text}." if returns ==
           "value_and_grad" else f"Vector-Jacobian product of {src.name} with respect to {wrt_text}.")
    emit.mark_lines(result.forward, fn.src)
    function = emit.render_function(
        entry, fparams, emit.docstring(doc, source.summary(src), src.name),
        [("", fn.prologue + seed_prologue + stacks + zeros_first), ("forward", result.forward),
         ("", check + captured),
         ("backward", result.backward)],
        ret, notes=source.comments(src))
    used = result.helpers | {i[7:] for i in fn.imports if i.startswith("helper:")}
    if part:
        return function, fn, used
    functions, unit_helpers = units.complete([function], fn, target)
    used |= unit_helpers
    constants, injected = _constants(fn)
    imports = _imports(fn.imports, target)
    functions = ode.module_parts(fn.imports, used, imports, constants, injected, result.scalars,
                                 result.shapes, target) + functions
    helpers = emit.helper_sources(sorted(used)) if used else ""
    options = {"mode": "reverse", "wrt": ",".join(wrt), "returns": returns, "target": target}
    options.update(specialized(fn, known_scalars, known_shapes, int_arrays))
    if has_aux:
        options["has_aux"] = True
    head = emit.header("Reverse-mode derivative", src.name, src.filename, src.digest(), options, entry)
    if "np." not in "".join(functions) + helpers and target != "numba":
        imports = [line for line in imports if line != "import numpy as np"]  # Python floats only
    text = emit.module_text(head, imports, constants, helpers, functions)
    if target == "cupy":
        text = targets.to_cupy(text)
    elif target == "numba":
        text = targets.njit_functions(text, cache=not injected)
    return Generated(text, entry, injected)


def pair_functions(src, fn, result, names, first, captured, value, grads):
    """``names[0](params) -> (value, residuals)`` and ``names[1](residuals, g) -> adjoints`` (one
    per parameter): the forward and the backward sweep of ``result`` as two functions, the
    residuals being what the backward sweep reads of the forward one (see `units`)."""
    from .optimize import live_before
    returned = ast.parse(grads, mode="eval").body
    needed = live_before(result.backward, names_in(returned))
    made = set(fn.params) | set(result.stacks) | {
        n.id for s in fn.prologue + first + result.forward for n in walk(s)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    order = list(fn.params) + list(result.stacks) + sorted(made - set(fn.params) - set(result.stacks))
    residuals = [n for n in order if n in needed]
    always = set(fn.params) | set(result.stacks) | {  # set on every path
        n.id for s in fn.prologue + first + result.forward if isinstance(s, ast.Assign)
        for n in s.targets if isinstance(n, ast.Name)}
    first = first + [at(ast.parse(f"{n} = None").body[0], fn.src.node) for n in residuals
                     if n not in always]  # (a branch that does not run leaves it unset)
    packed = "(" + ", ".join(residuals) + ("," if len(residuals) == 1 else "") + ")"
    summary = source.summary(src)
    emit.mark_lines(result.forward, fn.src)
    fwd = emit.render_function(
        names[0], fn.signature, emit.docstring(
            f"{src.name}'s value, and what {names[1]} needs of its forward sweep.", summary, src.name),
        [("", fn.prologue + first), ("forward", result.forward), ("", captured)],
        f"{value}, {packed}", notes=source.comments(src))
    param = fn.namer.fresh("residuals")
    unpack = ast.parse(f"{', '.join(residuals)}{',' if len(residuals) == 1 else ''} = {param}").body
    bwd = emit.render_function(
        names[1], [param, result.seed], emit.docstring(
            f"The adjoints of {src.name}'s arguments, for the adjoint {result.seed} of its value.",
            summary, src.name), [("", unpack if residuals else []), ("backward", result.backward)],
        grads)
    used = result.helpers | {i[7:] for i in fn.imports if i.startswith("helper:")}
    return fwd, bwd, fn, used


def pair_function(src: FunctionSource, names, target: str = "numpy"):
    """(fwd text, bwd text, `Normalized`, helpers used): the custom_vjp pair of ``src`` for
    every parameter (see `pair_functions`)."""
    return reverse_module(src, param_names(src.node), returns="pair", name=names, target=target,
                          part=True)


def specialized(fn: Normalized, known_scalars, known_shapes, int_arrays=()) -> dict:
    """Header options: what the arguments were specialized to (containers by their structure,
    written as ``--shapes`` takes it)."""
    options = {}
    leaves = fn.leaves.kinds
    scalars = sorted(s for s in known_scalars if s not in leaves)
    shapes = sorted((k, v) for k, v in (known_shapes or {}).items() if k not in leaves)
    ints = sorted(a for a in int_arrays if a not in leaves)
    if scalars:
        options["scalars"] = ",".join(scalars)
    if ints:
        options["int_arrays"] = ",".join(ints)
    if shapes:
        options["shapes"] = " ".join(f"{k}={v}" for k, v in shapes)
    if fn.leaves.trees:
        options["structures"] = " ".join(f"{p}={spelling(t, fn.leaves.kinds)}"
                                         for p, t in fn.leaves.trees.items())
    return options


def lengths(known_shapes) -> dict:
    """``len()`` of each argument whose shape is known."""
    return {p: s[0] for p, s in (known_shapes or {}).items() if isinstance(s, tuple) and s}


def leaf_knowledge(fn: Normalized, known_scalars, known_shapes):
    """``known_scalars`` and ``known_shapes`` with what the leaves of container arguments are."""
    scalars = tuple(known_scalars) + tuple(n for n, k in fn.leaves.kinds.items() if k == "float")
    shapes = dict(known_shapes or {})
    shapes.update({n: () for n, k in fn.leaves.kinds.items() if k == "int"})
    shapes.update({n: k[0] for n, k in fn.leaves.kinds.items() if isinstance(k, tuple)})
    return scalars, shapes


def flat_wrt(fn: Normalized, wrt) -> list[str]:
    """The parameters the engine differentiates: the float leaves of container arguments."""
    return [leaf for w in wrt for leaf in fn.leaves.flat(w)
            if w not in fn.leaves.trees or differentiable(fn.leaves.kinds.get(leaf))]


def _structured(fn: Normalized, w, by_leaf) -> str:
    """The gradient of argument ``w``, in its structure (None for leaves that are not floats)."""
    tree = fn.leaves.trees.get(w)
    if tree is None:
        return by_leaf[w]
    return ast.unparse(display(tree, lambda a: ast.parse(by_leaf[a.id]).body[0].value
                               if a.id in by_leaf else ast.Constant(None)))


def output(fn: Normalized, leaf) -> str:
    """The function's output as text: a name, or a container display of ``leaf(name)``."""
    if fn.result_tree is None:
        return ast.unparse(leaf(ast.Name(fn.result, ast.Load())))
    return ast.unparse(display(fn.result_tree, leaf))


def structured_params(fn: Normalized, wrt, names, prefix, trees=None):
    """Parameters that carry one value per leaf (tangents, cotangents) and their unpacking.

    ``names`` maps each leaf to its own name; a container argument gets one
    parameter ``d<arg>`` of its structure, read into those names.
    """
    trees = trees if trees is not None else {w: fn.leaves.trees[w].map(
        lambda a: ast.Name(names.get(a.id, "_"), ast.Load())) for w in wrt if w in fn.leaves.trees}
    params, prologue = [], []
    for w in wrt:
        if w not in trees:
            params.append(names[w])
            continue
        param = fn.namer.fresh(prefix + w)
        params.append(param)
        prologue += [at(s, fn.src.node) for s in unpacking(param, trees[w])]
    return params, prologue


def refuse_known_nonscalar(src: FunctionSource, result: str, shape) -> None:
    """A gradient needs a scalar output: refuse now when the shapes show it is not one."""
    rank = len(shape) if isinstance(shape, tuple) else shape if isinstance(shape, int) else None
    if not rank:
        return
    returns = [n for n in walk(src.node) if isinstance(n, ast.Return) and n.value is not None]
    shown = "x".join("?" if d is None else str(d) for d in shape) if isinstance(shape, tuple) \
        else f"rank {rank}"
    raise src.error(NonScalarOutput, f"{src.name} returns an array of shape {shown}, not a scalar; "
                    "a gradient needs a scalar output", returns[-1].value if returns else src.node,
                    hint="reduce it (np.sum, np.mean) or use s2s.vjp / s2s.jacobian "
                         "(s2s-diff --returns vjp) for other outputs")


def check_wrt(src: FunctionSource, wrt) -> list[str]:
    """The parameters of ``src``, after checking that each name in ``wrt`` is one."""
    params = param_names(src.node)
    for w in wrt:
        if w not in params:
            raise S2SError(f"{src.name} has no parameter {w!r} to differentiate",
                           src.filename, src.node.lineno, src.node.col_offset,
                           hint=f"its parameters are: {', '.join(params)}")
    return params


def _zeros(w, known_scalars):
    return "0.0" if w in known_scalars else f"np.zeros_like({w})"


def _constants(fn):
    lines, injected = [], {}
    for name in sorted(fn.constants):
        value = fn.constants[name].value
        if isinstance(value, LITERALS) and _literal_ok(value):
            lines.append(f"{name} = {value!r}")
        else:
            injected[name] = value
            qualname = fn.constants[name].qualname
            where = qualname if "." in qualname else "the primal module's global"  # self.W
            lines.append(f"# {name}: {where}, as it is when the derivative runs")
    return lines, injected


def _literal_ok(value) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError):
        return False


def _imports(used: set[str], target: str) -> list[str]:
    lines = ["import cupy as cp" if target == "cupy" else "import numpy as np"]
    if target == "numba":
        lines.insert(0, "import numba")
    if "math" in used:
        lines.insert(0, "import math")
    if "scipy" in used:
        lines.append("import cupyx.scipy.special" if target == "cupy" else "import scipy.special")
    custom: dict[str, list[str]] = {}  # custom_vjp fwd/bwd functions read from the primal's file
    for item in sorted(used):
        if item.startswith("from:"):
            _, module, name = item.split(":")
            custom.setdefault(module, []).append(name)
    lines += [f"from {module} import {', '.join(names)}" for module, names in custom.items()]
    plain = {"numpy", "math", "scipy", "builtins", "ndarray"}
    lines += [f"import {m}" for m in sorted(used) if ":" not in m and m not in plain]  # user rules
    return lines


def _dump(stmts) -> str:
    return "\n".join(emit.render_statements(stmts, 0)) + "\n"
