"""Rules for the helpers that generated code calls, so that generated code can be
differentiated again (forward mode over a generated gradient: hessians).

These are not numpy functions, so they live in their own table, `RULES`, keyed
``s2s.helpers.<name>`` (the name `s2s.source` binds a helper copied into a
generated module to), which forward mode consults after the numpy registry.

Most helpers are linear in the adjoint they take (``g``), and many in a second
argument too (``matmul_vjp_a(g, a, b)`` in ``g`` and in ``b``): the tangent of
such a call is the same call with that argument replaced by its tangent. Other
arguments only give a shape, a dtype or an order (``fixed``: no derivative).
An argument that is neither has no forward rule: a tangent through it is
refused, never dropped.

The helpers in `FROM_SOURCE` (decompositions, products of the others, norms) are
not linear in what a second derivative moves: forward mode differentiates their
source instead, as it does a user's function (inlined), so they are written in
the subset s2s reads.
"""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap

from . import helpers
from .registry import Rule, _times, parse_signature

RULES: dict[str, Rule] = {}
FROM_SOURCE: set[str] = set()


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _add(rule: Rule) -> Rule:
    if rule.qualname in RULES:
        raise ValueError(f"duplicate rule for {rule.qualname}")
    RULES[rule.qualname] = rule
    return rule


def _no_adjoint():
    raise NotImplementedError("reverse mode over generated code is not supported; "
                              "forward mode is (s2s.hessian, s2s.hvp, s2s.jvp)")


def _signature(name: str) -> inspect.Signature | None:
    """The helper's signature; None if ``helpers`` has no such helper (any more)."""
    fn = getattr(helpers, name, None)
    return inspect.signature(fn) if callable(fn) else None


def linear(name: str, args: str, fixed: str = "") -> Rule | None:
    """Helper ``name`` is linear in each of ``args``; ``fixed`` arguments carry no derivative."""
    sig = _signature(name)
    if sig is None:
        return None
    params = list(sig.parameters)
    linear_params = [p for p in _names(args) if p in params]

    def tangents():
        return {p: f"{name}({', '.join('d' + q if q == p else q for q in params)})" for p in linear_params}

    differentiable = tuple(p for p in params if p not in _names(fixed))
    return _add(Rule(f"s2s.helpers.{name}", sig, _no_adjoint, tangents,
                     differentiable_params=differentiable))


def elementwise(name: str, partial: str) -> Rule | None:
    """A one-argument elementwise helper, given its derivative (as in ``registry.elementwise``)."""
    sig = _signature(name)
    if sig is None:
        return None
    (x,) = sig.parameters

    def adjoints():
        return {x: _times("g", partial)}

    def tangents():
        return {x: _times(partial, "d" + x)}

    return _add(Rule(f"s2s.helpers.{name}", sig, adjoints, tangents, elementwise=True,
                     differentiable_params=(x,)))


def constant(*names: str) -> None:
    """Helpers that compute shapes, axes or counts: never differentiated."""
    for name in names:
        if _signature(name) is not None:
            _add(Rule(f"s2s.helpers.{name}", _signature(name), nondifferentiable=True))


def from_source(*names: str) -> None:
    """Helpers that forward mode differentiates by reading their source."""
    FROM_SOURCE.update(name for name in names if _signature(name) is not None)


def lookup(qualname: str) -> Rule | None:
    return RULES.get(qualname)


@functools.cache
def returns_tuple(qualname: str) -> bool:
    """Does the helper ``qualname`` (``s2s.helpers.unstack``) return a tuple on every path?"""
    fn = getattr(helpers, qualname.removeprefix("s2s.helpers."), None)
    if not qualname.startswith("s2s.helpers.") or not callable(fn):
        return False
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    returns = [n.value for n in ast.walk(tree.body[0]) if isinstance(n, ast.Return)]
    return bool(returns) and all(_builds_tuple(r) for r in returns)


def _builds_tuple(node) -> bool:
    """``(a, b)``, ``tuple(...)``, or a sum of those."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _builds_tuple(node.left) or _builds_tuple(node.right)
    return isinstance(node, ast.Tuple) or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                                           and node.func.id == "tuple")


# Broadcasting and reductions.
linear("unbroadcast", "g")
linear("einsum_vjp", "g", fixed="subscripts")
constant("einsum_spelled")
linear("expand_reduced", "g")
constant("reduced_count", "reduced_axes", "reduction_layout", "setitem_winners")

# Products: linear in the adjoint and in the other factor; the own factor gives a shape.
linear("matmul_vjp_a", "g, b", fixed="a")
linear("matmul_vjp_b", "g, a", fixed="b")
linear("dot_vjp_a", "g, b", fixed="a")
linear("dot_vjp_b", "g, a", fixed="b")
linear("inner_vjp_a", "g, b", fixed="a")
linear("inner_vjp_b", "g, a", fixed="b")
linear("tensordot_vjp_a", "g, b", fixed="a")
linear("tensordot_vjp_b", "g, a", fixed="b")
linear("kron_vjp_a", "g, b", fixed="a")
linear("kron_vjp_b", "g, a", fixed="b")
constant("tensordot_axes", "kron_shapes")

# A scatter-add (numpy or Dask): the sum of d and g placed at index.
if _signature("index_add") is not None:
    _add(Rule("s2s.helpers.index_add", _signature("index_add"), _no_adjoint,
              lambda: {"d": "dd", "g": "index_add(np.zeros_like(d), index, dg)"},
              differentiable_params=("d", "g")))

# Casts: linear in the adjoint or tangent; the dtypes give no derivative.
linear("astype_adjoint", "g", fixed="a, dtype")
linear("astype_tangent", "da", fixed="dtype")

# Products of the other elements, cumulative products.
from_source("prod_of_others", "cumprod_partials", "cumprod_vjp", "cumprod_jvp")

# Diagonals.
linear("diagonal_adjoint", "g")
linear("trace_adjoint", "g")
linear("diag_adjoint", "g", fixed="v")

# Linear systems and decompositions: the triangle of a symmetric input is linear; the
# rest depends on the matrix too.
linear("symmetric_input_adjoint", "x")
linear("symmetric_input_tangent", "da")
from_source("solve_vjp_b", "solve_vjp_a", "solve_jvp_a", "cholesky_vjp", "cholesky_jvp", "eigh_vjp",
            "eigh_jvp", "eigvalsh_vjp", "eigvalsh_jvp")
from_source("lu_factors", "lu_factor_vjp", "lu_factor_jvp")
constant("lu_permutation")
from_source("norm_partial", "vector_norm_partial", "matrix_norm_partial", "spectral_norm_partial")
from_source("svd_vjp", "svd_jvp", "singular_values_vjp", "singular_values_jvp", "qr_vjp", "qr_jvp", "eig_vjp",
            "eig_jvp")
# expm's derivative in its point a: the second Frechet derivative (whose own derivative in
# a, a third derivative of expm, has no rule: refused). sqrtm's Sylvester solve: with x the
# solution of a x + x a = q, d x solves a dx + dx a = dq - da x - x da.
_add(Rule("s2s.helpers.expm_frechet", parse_signature("a, e"), _no_adjoint,
          lambda: {"a": "expm_frechet2(a, e, da)", "e": "expm_frechet(a, de)"}, differentiable_params=("a", "e")))
_add(Rule("s2s.helpers.expm_frechet2", parse_signature("a, e, d"), _no_adjoint,
          lambda: {"e": "expm_frechet2(a, de, d)", "d": "expm_frechet2(a, e, dd)"},
          differentiable_params=("a", "e", "d")))
_add(Rule("s2s.helpers.sylvester", parse_signature("a, q"), _no_adjoint,
          lambda: {"a": "sylvester(a, -(da @ ans + ans @ da))", "q": "sylvester(a, dq)"},
          differentiable_params=("a", "q")))


def _eigh_gaps_adjoint():
    # d gaps[i, j] = -gaps[i, j] ** 2 * (dw[j] - dw[i])
    return {"w": "np.sum(g * ans ** 2, axis=-1) - np.sum(g * ans ** 2, axis=-2)"}


def _eigh_gaps_tangent():
    return {"w": "-ans ** 2 * (dw[..., None, :] - dw[..., :, None])"}


_add(Rule("s2s.helpers.eigh_gaps", parse_signature("w"), _eigh_gaps_adjoint, _eigh_gaps_tangent,
          differentiable_params=("w",)))

# Shape: each undoes a rearrangement of g; the other array gives a shape or an order.
linear("split_like", "g", fixed="arrays")
linear("unstack", "g")
linear("untile", "g")
linear("unrepeat", "g")
linear("unpad", "g")
linear("pad_adjoint", "g", fixed="shape, pad_width, mode")
linear("convolve_adjoint", "g, other", fixed="x, mode")
linear("signal_convolve_adjoint", "g, other", fixed="x, mode")
linear("interp_slope", "fp", fixed="x, xp")  # piecewise constant in x
constant("interp_cells")
_add(Rule("s2s.helpers.interp_fp_adjoint", parse_signature("g, x, xp, n, left, right"), _no_adjoint,
          lambda: {"g": "interp_fp_adjoint(dg, x, xp, n, left, right)",
                   "x": "interp_fp_adjoint_tangent(g, x, xp, n, dx)"},
          differentiable_params=("g", "x")))  # xp: np.interp refuses it first
linear("interp_fp_adjoint_tangent", "g, dx", fixed="x, xp, n")  # piecewise constant in x
linear("undiff", "g")
linear("sort_adjoint", "g", fixed="a")
linear("sort_tangent", "da", fixed="a")
linear("take_adjoint", "g", fixed="a")
linear("take_along_axis_adjoint", "g", fixed="arr")

# ODE solutions (s2s/ode.py): the solve has its rule in the registry. A second derivative
# reads a gradient's adjoint solve as odeint_vjp (ode.lower), whose tangent solves the
# adjoint equations' sensitivities with the right-hand side's second derivatives; the
# tangent solve is linear in dinputs. A third derivative (of odeint_vjp_tangent) is refused.
if _signature("odeint_solve") is not None:
    from .registry import RULES as _REGISTRY
    _add(_REGISTRY["s2s.helpers.odeint_solve"])
    _add(Rule("s2s.helpers.odeint_vjp", _signature("odeint_vjp"), _no_adjoint, lambda: {
        "point": "odeint_vjp_tangent(func, func_vjp, func_jvp, func_vjp_jvp, point, dpoint, options)"},
        differentiable_params=("point",)))
linear("odeint_adjoint", "g", fixed="func, func_vjp, options")  # read as odeint_vjp (above)
linear("odeint_tangent", "dinputs", fixed="func, func_jvp, options")
linear("odeint_vjp_tangent", "dpoint", fixed="func, func_vjp, func_jvp, func_vjp_jvp, options")
constant("ode_integrate", "ode_trajectory")  # called by the helpers above only

# Special functions.
elementwise("digamma", "trigamma(x)")
elementwise("log_gamma", "digamma(x)")
from_source("trigamma", "sinc_derivative")


def _multidigamma_adjoint():
    return {"a": "g * multitrigamma(a, d)"}


def _multidigamma_tangent():
    return {"a": "multitrigamma(a, d) * da"}


_add(Rule("s2s.helpers.multidigamma", parse_signature("a, d"), _multidigamma_adjoint, _multidigamma_tangent,
          elementwise=True, differentiable_params=("a",)))
from_source("multitrigamma")
