"""Forward mode and higher derivatives: jvp, vjp, elementwise_grad, jacobian, hessian, hvp.

Every derivative is generated source. Forward mode differentiates a function's
source into ``jvp_<f>(params..., d<params>...)``; second derivatives apply
forward mode to the source of a *generated* gradient (forward-over-reverse),
read back from ``linecache``. So ``s2s.hessian(f)`` runs ``jvp_grad_f``, one
Hessian column per call, and ``s2s.source`` shows that module.

Internally a derivative is a chain of *nodes*. A node calls one compiled
function with the user's arguments followed by extra arguments it makes
itself (a cotangent seed, tangents), and picks its output out of the result
(``pick``: indices into nested tuples). A node whose call is a single
generated function can be differentiated again by another node.
"""
from __future__ import annotations

import functools
import weakref

import numpy as np

from . import api, emit, forward, pytree, selfcheck
from .errors import S2SError
from .source import complete_args, from_function, param_names

_GENERATED_ATTR = api._GENERATED_ATTR


# --- compiled JVP modules, cached per function, wrt and argument kinds ---------------------

_JVP_MODULES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _jvp_module(fn, positions, kinds):
    """(Generated, compiled ``jvp_<fn>``) for the parameters of ``fn`` at ``positions``."""
    cache = _JVP_MODULES.setdefault(fn, {})
    key = (tuple(positions), tuple(kinds))
    if key in cache and not api.follow_globals(cache[key][2], [cache[key][3]], [cache[key][0]]):
        del cache[key]  # a module global changed kind or shape: generate again
    if key not in cache:
        src = from_function(fn)
        params = param_names(src.node)
        scalars = tuple(p for p, k in zip(params, kinds) if _scalar_kind(k))
        structures = {p: k[1] for p, k in zip(params, kinds) if isinstance(k, tuple) and k[0] == "tree"}
        shapes = {p: k[0] for p, k in zip(params, kinds) if isinstance(k, tuple) and p not in structures}
        gen = forward.forward_module(src, [params[i] for i in positions], known_scalars=scalars,
                                     known_shapes=shapes, structures=structures)
        injected = dict(gen.injected)
        for spec in structures.values():
            injected.update(pytree.spec_classes(spec))
        namespace = emit.compile_module(gen.text, f"jvp_{src.name}", injected)
        cache[key] = (gen, namespace[gen.entry], src, namespace)
    return cache[key][:2]


def _kinds(values) -> tuple:
    """What generated code may assume of each argument, as ``s2s.grad`` specializes."""
    return api._kinds(values)


def _scalar_kind(kind) -> bool:
    return kind in ("float", "int")


def _is_scalar(x) -> bool:
    return isinstance(x, (float, int)) and not isinstance(x, bool)


def _pick(value, pick):
    for i in pick:
        value = value[i]
    return value


def _is_float_kind(x) -> bool:
    if pytree.is_container(x):
        return any(_is_float_kind(leaf) for leaf in pytree.leaves(x))
    return not isinstance(x, (bool, np.bool_)) and np.asarray(x).dtype.kind in "fc"


# --- nodes -------------------------------------------------------------------------

class _Node:
    """One call of a compiled function: the user's arguments, then ``extras(args)``."""

    pick: tuple = ()
    count: int = 0  # how many arguments the compiled function takes
    last_generated = None

    def function(self, kinds):
        """(Generated or None, compiled function) for arguments of these kinds."""
        raise NotImplementedError

    def extras(self, args) -> list:
        return []

    def full_args(self, args) -> list:
        args = self.complete(args)
        return list(args) + self.extras(args)

    def complete(self, args) -> tuple:
        """``args`` with the user function's default values filled in."""
        inner = getattr(self, "inner", None)
        return inner.complete(args) if inner is not None else tuple(args)

    def __call__(self, *args):
        full = self.full_args(args)
        gen, fn = self.function(_kinds(full))
        if gen is not None:
            self.last_generated = gen
        return _pick(fn(*full), self.pick)

    def module(self, scalars=()):
        """The module for array arguments (what ``s2s.source`` shows before a first call)."""
        gen, fn = self.function((None,) * self.count)
        if gen is not None:
            self.last_generated = gen
        return gen, fn


class _Plain(_Node):
    """A user's function, called as it is."""

    def __init__(self, fn):
        self.fn = fn
        self.count = len(param_names(from_function(fn).node))

    def function(self, kinds):
        return None, self.fn


class _Api(_Node):
    """A gradient made by ``s2s.grad`` or ``s2s.value_and_grad``."""

    def __init__(self, derivative: api._Derivative):
        if derivative.has_aux:
            raise S2SError("differentiating a gradient taken with has_aux=True is not supported",
                           hint="take the gradient of a function without the auxiliary output")
        if type(derivative) is not api._Derivative:
            raise S2SError("a hand-edited derivative cannot be differentiated again",
                           hint="differentiate the primal: s2s.hessian(f), s2s.hvp(f)")
        if derivative.returns == "vjp":
            raise S2SError("differentiating a VJP function is not supported",
                           hint="use s2s.hessian, s2s.hvp or s2s.jacobian")
        self.derivative = derivative
        self.count = len(derivative.params)

    def complete(self, args) -> tuple:
        if len(args) >= self.count:
            return tuple(args)
        return complete_args(self.derivative.fn, self.derivative.params, args)

    def function(self, kinds):
        self.derivative.refresh()
        return self.derivative.module(_api_kinds(kinds[: self.count]))


def _api_kinds(kinds) -> tuple:
    return () if all(k is None for k in kinds) else tuple(kinds)


class _Elementwise(_Node):
    """``elementwise_grad(f)``: the VJP of ``f`` with a cotangent of ones."""

    def __init__(self, fn, argnums):
        self.fn = fn
        self.derivative = api._Derivative(fn, argnums, "vjp")
        self.count = len(self.derivative.params) + 1

    def extras(self, args):
        return [np.ones_like(self.fn(*args), dtype=float)]

    def function(self, kinds):
        return self.derivative.module(_api_kinds(kinds[: self.count - 1]))


class _Jvp(_Node):
    """The tangent of another node's output along tangents of some of its arguments.

    ``tangents(args)`` makes the tangents (ones for ``elementwise_grad``, 1.0 for
    the gradient of a function of a scalar); without it, `run` takes them.
    """

    def __init__(self, inner: _Node, positions, tangents=None):
        self.inner = inner
        self.positions = list(positions)
        self.tangents = tangents
        self.count = inner.count + len(self.positions)
        self.pick = (1,) + inner.pick

    def function(self, kinds):
        _, fn = self.inner.function(kinds[: self.inner.count])
        return _jvp_module(fn, self.positions, kinds[: self.inner.count])

    def extras(self, args):
        if self.tangents is None:
            raise S2SError("a Jacobian, Hessian or Hessian-vector product made by s2s cannot be "
                           "differentiated again", hint="differentiate the primal's gradient instead: "
                           "s2s.jacobian(s2s.grad(f)), s2s.hessian(f)")
        return self.inner.extras(args) + list(self.tangents(args))

    def run(self, args, tangents):
        """(value, tangent) of the inner node's output at ``args`` along ``tangents``."""
        full = self.inner.full_args(args) + list(tangents)
        gen, fn = self.function(_kinds(full))
        self.last_generated = gen
        value, tangent = fn(*full)
        return _pick(value, self.inner.pick), _pick(tangent, self.inner.pick)


class _Grad(_Node):
    """The gradient of a generated scalar function: one JVP per input element.

    Where the input is a scalar that is a single JVP with tangent 1.0, which can
    itself be differentiated again (``grad(grad(grad(f)))``).
    """

    def __init__(self, inner: _Node, argnums):
        self.inner = inner
        self.argnums = argnums
        self.nums = api._argnums_tuple(argnums)
        self.scalar = _Jvp(inner, self.nums[:1], lambda args: [1.0])
        self.count = self.scalar.count
        self.pick = self.scalar.pick

    def function(self, kinds):
        return self.scalar.function(kinds)

    def extras(self, args):
        if not isinstance(self.argnums, int) or not _is_scalar(args[self.argnums]):
            raise S2SError("only derivatives of scalar inputs can be differentiated again here",
                           hint="use s2s.hessian for second derivatives with respect to arrays")
        return self.scalar.extras(args)

    def __call__(self, *args):
        grads = []
        for n in self.nums:
            column = _Jvp(self.inner, [n])
            grads.append(_gradient(column, args, n))
            self.last_generated = column.last_generated
        return grads[0] if isinstance(self.argnums, int) else tuple(grads)

    def module(self, scalars=()):
        gen, fn = self.scalar.module(scalars)
        self.last_generated = gen
        return gen, fn


def _gradient(column: _Jvp, args, n):
    """d out / d args[n] for a scalar output, one tangent per element of args[n]."""
    x = args[n]
    basis = _basis(x)
    values = []
    for tangent in basis:
        value, dout = column.run(args, [tangent])
        if np.ndim(value) != 0:
            raise S2SError("the function must return a scalar to take its gradient",
                           hint="use s2s.jacobian or s2s.elementwise_grad for other outputs")
        values.append(dout)
    return _like(np.reshape(np.array(values, dtype=float), np.shape(x)), x)


def _basis(x):
    """The unit tangents of ``x``, in C order: 1.0 for a scalar."""
    if _is_scalar(x):
        return [1.0]
    x = np.asarray(x)
    out = []
    for i in range(x.size):
        e = np.zeros(x.size, dtype=x.dtype)
        e[i] = 1
        out.append(e.reshape(x.shape))
    return out


def _like(g, x):
    """``g`` as the same kind as ``x``: a float for a float, an array of its shape otherwise."""
    if pytree.is_container(x):
        return pytree.shaped_like(g, x)
    if isinstance(x, float) and np.ndim(g) == 0:
        return float(g)
    if isinstance(x, np.ndarray) and not isinstance(g, np.ndarray):
        return np.asarray(g, dtype=x.dtype).reshape(x.shape)
    return g


_NODES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _node_of(fn) -> _Node:
    """The node that computes ``fn``: fn itself, or the generated derivative behind it."""
    derivative = getattr(fn, _GENERATED_ATTR, None)
    if derivative is None:
        if fn not in _NODES:
            _NODES[fn] = _Plain(fn)
        return _NODES[fn]
    if isinstance(derivative, _Node):
        return derivative
    if isinstance(derivative, api._Derivative):
        if derivative not in _NODES:
            _NODES[derivative] = _Api(derivative)
        return _NODES[derivative]
    raise S2SError(f"{getattr(fn, '__name__', fn)!r} cannot be differentiated again")


def _wrap(node: _Node, name: str, fn, call):
    @functools.wraps(fn)
    def wrapper(*args):
        return call(*args)

    wrapper.__name__ = f"{name}_{getattr(fn, '__name__', 'f')}"
    wrapper.__qualname__ = wrapper.__name__
    del wrapper.__wrapped__  # s2s reads the source of fn, never of this wrapper
    setattr(wrapper, _GENERATED_ATTR, node)
    return wrapper


# --- the public API -------------------------------------------------------------------

def jvp(fn, primals, tangents, *, check=None):
    """``(fn(*primals), J @ tangents)``: the directional derivative, by forward mode.

    Tangents go with floating-point primals; those of other primals are ignored.
    ``check=True`` (default: ``S2S_CHECK``) compares the first call of each
    specialisation with a central difference along the tangents (see `selfcheck`).
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise TypeError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    given = len(primals)  # the rest are defaults, with zero tangents
    primals, tangents = _with_defaults(fn, primals, tangents)
    positions = [i for i, x in enumerate(primals) if _is_float_kind(x)]
    for i in positions:
        if pytree.is_container(primals[i]):
            continue
        if np.shape(tangents[i]) != np.shape(primals[i]):
            raise ValueError(f"jvp: tangent {i} has shape {np.shape(tangents[i])}, "
                             f"its primal {np.shape(primals[i])}")
    node = _Jvp(_node_of(fn), positions)
    value, tangent = node.run(primals, [tangents[i] for i in positions])
    if selfcheck.wanted(check):
        _self_check_jvp(fn, node, primals[:given], {i: tangents[i] for i in positions if i < given},
                        tangent, (primals, [tangents[i] for i in positions]))
    return value, _like(tangent, value)


def _with_defaults(fn, primals, tangents):
    """Primals and tangents for every parameter of a user's ``fn`` whose trailing
    parameters have default values (a zero tangent for each default)."""
    if hasattr(fn, _GENERATED_ATTR):
        return primals, tangents
    params = param_names(from_function(fn).node)
    if len(primals) >= len(params):
        return primals, tangents
    full = complete_args(fn, params, primals)
    zeros = tuple(np.zeros_like(x, dtype=float) if isinstance(x, np.ndarray) else 0.0
                  for x in full[len(primals):])
    return full, tangents + zeros


_JVP_CHECKED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _self_check_jvp(fn, node, primals, tangents, tangent, compiled_for):
    """The first call of each specialisation of ``jvp(fn, ...)``, against a central difference."""
    key = (tuple(tangents), _kinds(primals))
    try:
        seen = _JVP_CHECKED.setdefault(fn, set())
    except TypeError:  # not weakly referenceable: check every call
        seen = set()
    if key in seen:
        return
    primal_code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
    location = (primal_code.co_filename, primal_code.co_firstlineno, 0) if primal_code else (None, None, None)
    all_primals, all_tangents = compiled_for  # what the JVP ran with (defaults filled in)
    code = getattr(node.function(_kinds(node.inner.full_args(all_primals) + all_tangents))[1],
                   "__code__", None)
    selfcheck.check_tangent(fn, list(primals), tangents, tangent, name=getattr(fn, "__name__", "f"),
                            location=location, generated_file=code.co_filename if code else "<unknown>")
    seen.add(key)


def vjp(fn, *primals):
    """``(fn(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` returns one adjoint per primal.

    Adjoints of primals that are not floating point are None.
    """
    if getattr(fn, _GENERATED_ATTR, None) is not None:
        raise S2SError("vjp of a derivative made by s2s is not supported",
                       hint="use s2s.jvp, s2s.hvp or s2s.hessian (forward mode over it)")
    positions = tuple(i for i, x in enumerate(primals) if _is_float_kind(x))
    derivative = api._Derivative(fn, positions, "vjp")
    _, compiled = derivative.module(_api_kinds(_kinds(primals)))
    value = fn(*primals)

    def vjp_fn(cotangent):
        grads = compiled(*primals, cotangent)
        grads = grads if isinstance(grads, tuple) else (grads,)
        out = [None] * len(primals)
        for i, g in zip(positions, grads):
            out[i] = _like(g, primals[i])
        return tuple(out)

    vjp_fn.__name__ = f"vjp_{getattr(fn, '__name__', 'f')}"
    setattr(vjp_fn, _GENERATED_ATTR, derivative)
    return value, vjp_fn


def elementwise_grad(fn, argnums=0):
    """The derivative of an elementwise ``fn``, element by element (a VJP with ones).

    Of a derivative made by s2s, it is forward mode with a tangent of ones.
    """
    if not isinstance(argnums, int):
        raise S2SError("elementwise_grad takes a single argnums")
    if getattr(fn, _GENERATED_ATTR, None) is not None:
        node = _Jvp(_node_of(fn), [argnums], lambda args: [_ones(args[argnums])])
    else:
        node = _Elementwise(fn, argnums)

    def call(*args):
        return _like(node(*args), args[argnums])

    return _wrap(node, "elementwise_grad", fn, call)


def _ones(x):
    return 1.0 if _is_scalar(x) else np.ones_like(x, dtype=float)


def grad_of_generated(fn, argnums=0, has_aux=False):
    """``s2s.grad`` of a derivative made by s2s: forward mode over its generated source."""
    if has_aux:
        raise S2SError("has_aux=True is not supported for derivatives of derivatives")
    node = _Grad(_node_of(fn), argnums)
    wrapper = _wrap(node, "grad", fn, node)
    wrapper.s2s_spec = ("grad", fn, argnums)  # what it is, where a differentiated function calls it
    return wrapper


def jacobian(fn, argnums=0, mode=None):
    """The Jacobian of ``fn`` with respect to ``args[argnums]``, shaped ``out.shape + x.shape``.

    Forward mode builds it a column per input element, reverse mode a row per
    output element; ``mode=None`` picks whichever needs fewer passes (always
    forward for a derivative made by s2s).
    """
    if not isinstance(argnums, int):
        raise S2SError("jacobian takes a single argnums")
    if mode not in (None, "forward", "reverse"):
        raise ValueError("mode must be None, 'forward' or 'reverse'")
    generated = getattr(fn, _GENERATED_ATTR, None) is not None
    if generated and mode == "reverse":
        raise S2SError("the Jacobian of a derivative made by s2s is built in forward mode",
                       hint="leave mode=None")
    column = _Jvp(_node_of(fn), [argnums])
    rows = {}  # the VJP module, made on first use

    def jac(*args):
        x = args[argnums]
        if pytree.is_container(x):
            if mode == "reverse":
                raise S2SError("the Jacobian with respect to a container is built in forward mode",
                               hint="leave mode=None")
            return _tree_jacobian(column, args, x)
        chosen = mode
        if chosen is None:
            chosen = "forward" if generated or np.size(x) <= np.size(column.inner(*args)) else "reverse"
        if chosen == "forward":
            columns = [column.run(args, [e]) for e in _basis(x)]
            value = columns[0][0]
            flat = np.stack([np.ravel(np.asarray(c[1], dtype=float)) for c in columns], axis=-1)
        else:
            if "vjp" not in rows:
                rows["vjp"] = api._Derivative(fn, argnums, "vjp")
            gen, compiled = rows["vjp"].module(_api_kinds(_kinds(args)))
            column.last_generated = gen  # what s2s.source shows
            value = fn(*args)
            flat = np.stack([np.ravel(np.asarray(compiled(*args, e), dtype=float)) for e in _basis(value)])
        return np.reshape(flat, np.shape(value) + np.shape(x))

    wrapper = _wrap(column, "jacobian", fn, jac)
    wrapper.s2s_spec = ("jacobian", fn, argnums)  # (see `nested`)
    return wrapper


def _tree_jacobian(column: _Jvp, args, x):
    """As JAX's ``jacobian`` for a container ``x``: the output's structure, each leaf holding
    ``x``'s structure of arrays shaped ``out_leaf.shape + x_leaf.shape`` (None for leaves
    of ``x`` that are not floats)."""
    flat = pytree.leaves(x)
    floats = [k for k, leaf in enumerate(flat) if _is_float_kind(leaf)]
    zeros = [np.zeros_like(leaf, dtype=float) if k in floats else leaf for k, leaf in enumerate(flat)]
    zeros = [float(z) if isinstance(flat[k], float) else z for k, z in enumerate(zeros)]
    value, blocks = None, {}
    for k in floats:
        outs = []
        for e in _basis(flat[k]):
            tangent = _unflatten(x, zeros[:k] + [e] + zeros[k + 1:])
            value, dout = column.run(args, [tangent])
            outs.append(dout)
        blocks[k] = outs
    out_leaves = pytree.leaves(value) if pytree.is_container(value) else [value]

    def block(j):
        if out_leaves[j] is None:  # the gradient of an int leaf
            return None
        per_input = []
        for k in range(len(flat)):
            if k not in blocks:
                per_input.append(None)
                continue
            cols = [pytree.leaves(d)[j] if pytree.is_container(value) else d for d in blocks[k]]
            stacked = np.stack([np.ravel(np.asarray(c, dtype=float)) for c in cols], axis=-1)
            per_input.append(np.reshape(stacked, np.shape(out_leaves[j]) + np.shape(flat[k])))
        return _unflatten(x, per_input)
    if not pytree.is_container(value):
        return block(0)
    return _unflatten(value, [block(j) for j in range(len(out_leaves))])


def _unflatten(tree, flat):
    """``flat``'s items in ``tree``'s structure."""
    items = iter(flat)

    def build(t):
        if isinstance(t, dict):
            return {k: build(v) for k, v in t.items()}
        if isinstance(t, tuple) and hasattr(t, "_fields"):
            return type(t)(*(build(v) for v in t))
        if isinstance(t, (tuple, list)):
            return type(t)(build(v) for v in t)
        return next(items)
    return build(tree)


def hessian(fn, argnums=0):
    """The Hessian of scalar ``fn``: forward mode over its generated gradient."""
    wrapper = jacobian(api.grad(fn, argnums), argnums, mode="forward")
    wrapper.s2s_spec = ("hessian", fn, argnums)  # (see `nested`)
    return wrapper


def hvp(fn, argnums=0):
    """``hvp(f)(*args, v)``: the Hessian of ``f`` times ``v``, one forward pass over its gradient."""
    if not isinstance(argnums, int):
        raise S2SError("hvp takes a single argnums")
    column = _Jvp(_node_of(api.grad(fn, argnums)), [argnums])

    def product(*args):
        args, v = args[:-1], args[-1]
        return _like(column.run(args, [v])[1], args[argnums])

    wrapper = _wrap(column, "hvp", fn, product)
    wrapper.s2s_spec = ("hvp", fn, argnums)  # (see `nested`)
    return wrapper
