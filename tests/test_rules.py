"""Every rule in the registry, checked against central finite differences in float64.

`CASES` maps each differentiable rule to its test inputs; elementwise rules made
with ``elementwise(...)`` also get generated cases over broadcasting shapes, in
the input domain their ``domain=`` hints name. Rules that join several arrays or
return several (``concatenate``, ``split``, ``eigh``) are checked by
`check_structured`, which flattens tuples; all the others by `s2s.testing.check_rule`.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import itertools
import linecache
import re
from dataclasses import dataclass, field

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import scipy.special
from scipy.special import log_softmax, logsumexp, softmax

import s2s
from s2s.errors import NoRule
from s2s.rules import METHODS, RULES, helpers
from s2s.rules.registry import DYNAMIC, elementwise
from s2s.testing import EPS, _bind, _call_primal, assert_close, check_rule, evaluate, numerical_grad

RNG = np.random.default_rng(20240601)


# --- inputs ------------------------------------------------------------------------

def randn(*shape):
    return RNG.standard_normal(shape)


def positive(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def unit(*shape):  # |x| < 1
    return RNG.uniform(-0.9, 0.9, shape)


def open_unit(*shape):  # 0 < x < 1
    return RNG.uniform(0.1, 0.9, shape)


def nonzero(*shape):
    return RNG.choice([-1.0, 1.0], shape) * RNG.uniform(0.5, 2.0, shape)


def above_one(*shape):
    return RNG.uniform(1.5, 3.0, shape)


def distinct(*shape):
    """Values at least 0.2 apart, for max/min/sort-type rules."""
    n = int(np.prod(shape))
    return np.reshape(RNG.permutation(n) * 0.3 + RNG.uniform(0, 0.1, n) - 0.15 * n, shape)


def with_zeros(*shape):
    a = randn(*shape)
    a.flat[[1, 5]] = 0.0
    return a


def well_conditioned(n, *batch):
    return randn(*batch, n, n) + n * np.eye(n)


def spd(n, *batch):
    a = randn(*batch, n, n)
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def symmetric(n):
    """A symmetric matrix with well separated eigenvalues."""
    q, _ = np.linalg.qr(randn(n, n))
    return q @ np.diag(np.arange(1.0, n + 1) * 1.5) @ q.T


def order(*shape):  # polygamma's n
    return RNG.integers(0, 4, shape).astype(float) if shape else float(RNG.integers(0, 4))


DOMAINS = {"order": order, "positive": positive, "unit": unit, "open_unit": open_unit, "nonzero": nonzero,
           "above_one": above_one, "distinct": distinct}


# --- cases -------------------------------------------------------------------------

@dataclass
class Case:
    fn: object
    args: tuple
    kwargs: dict = field(default_factory=dict)
    wrt: list | None = None
    rtol: float = 1e-5
    atol: float = 1e-6


def C(fn, *args, wrt=None, rtol=1e-5, atol=1e-6, **kwargs):
    return Case(fn, args, kwargs, wrt, rtol, atol)


def primal(qualname):
    from s2s.source import _import_attr  # scipy.stats.norm.logpdf: a method of an object
    if qualname.startswith("s2s.helpers."):  # what a call becomes (odeint_solve: s2s/ode.py)
        return getattr(helpers, qualname[12:])
    return _import_attr(qualname)


# An ODE's right-hand side and the VJP and JVP s2s/ode.py would generate for it, written out.
def _decay(y, t, k):
    return -k * y * (1 + 0.1 * np.sin(t)) + np.roll(y, 1)


def _decay_vjp(y, t, k, g):
    scale = 1 + 0.1 * np.sin(t)
    return -k * scale * g + np.roll(g, -1), np.sum(g * -k * y * 0.1 * np.cos(t)), np.sum(g * -y * scale)


def _decay_jvp(y, t, k, dy, dt, dk):
    scale = 1 + 0.1 * np.sin(t)
    return _decay(y, t, k), -dk * y * scale - k * dy * scale - k * y * 0.1 * np.cos(t) * dt + np.roll(dy, 1)


def _decay_first(t, y, k):
    return _decay(y, t, k)


def _decay_first_vjp(t, y, k, g):
    dy, dt, dk = _decay_vjp(y, t, k, g)
    return dt, dy, dk


def _decay_first_jvp(t, y, k, dt, dy, dk):
    return _decay_jvp(y, t, k, dy, dt, dk)


def _sample(draw, shape):
    return float(draw(1)[0]) if shape == () else draw(*shape)


UNARY_SHAPES = [(3, 4), (5,), ()]
BINARY_SHAPES = [((3, 4), (3, 4)), ((), (3, 4)), ((3, 4), ()), ((1, 4), (3, 4)), ((3, 1), (3, 4)),
                 ((4,), (2, 3, 4))]


TERNARY_SHAPES = [((3, 4), (3, 4), (3, 4)), ((), (3, 4), (1, 4)), ((3, 1), (), (4,)), ((), (), (3, 4))]


def elementwise_cases(qualname):
    """Cases on broadcasting shapes for a rule made with ``elementwise(...)``: each input
    drawn from the domain named for it (``x="open_unit"``) or for all (``positive=True``)."""
    rule = RULES[qualname]
    default = next((DOMAINS[k] for k, v in rule.domain.items() if v is True and k in DOMAINS), randn)
    required = [p.name for p in rule.signature.parameters.values() if p.default is p.empty]
    draws = [DOMAINS[rule.domain[p]] if isinstance(rule.domain.get(p), str) else default for p in required]
    wrt = [p for p in rule.differentiable_params if p in rule.vjp_templates({})]  # `...`: refused
    fn = primal(qualname)
    if qualname.startswith(("math.", "builtins.")):  # Python floats only
        return [C(fn, *(_sample(d, ()) for d in draws), wrt=wrt) for _ in range(3)]
    shapes = {1: [(s,) for s in UNARY_SHAPES], 2: BINARY_SHAPES, 3: TERNARY_SHAPES}[len(required)]
    return [C(fn, *(_sample(d, s) for d, s in zip(draws, shape)), wrt=wrt) for shape in shapes]


def T(a):
    return a.T


def reshape_method(a, *shape):
    return a.reshape(*shape)


def transpose_method(a, *axes):
    return a.transpose(*axes)


def where(condition, x=None, y=None):
    """np.where, whose x and y are positional-only."""
    return np.where(condition, x, y)


def astype_method(a, dtype):
    return a.astype(dtype)


def clip(a, a_min=None, a_max=None):
    """np.clip with its bounds always given (None included), as a call site gives them."""
    return np.clip(a, a_min, a_max)


A3 = (2, 3, 4)
AXES = [{}, {"axis": 0}, {"axis": -1}, {"axis": (0, 2)}, {"axis": 1, "keepdims": True},
        {"keepdims": True}, {"axis": (0, -1), "keepdims": True}]


def reductions(fn, draw=randn, **extra):
    return [C(fn, draw(*A3), **kw, **extra) for kw in AXES] + [C(fn, draw(5)), C(fn, draw(3, 4), axis=1)]


CASES: dict[str, list[Case]] = {
    # Elementwise beyond the generated cases.
    "numpy.power": [C(np.power, randn(3, 4), 3.0, wrt=["x1"]), C(np.power, positive(3, 4), randn(3, 4)),
                    C(np.power, 2.0, randn(3, 4))],
    "numpy.clip": [C(np.clip, randn(3, 4), -0.5, 0.5), C(np.clip, randn(3, 4), unit(1, 4) - 1, unit(3, 1) + 1),
                   C(clip, randn(3, 4), None, 0.3), C(clip, randn(3, 4), -0.3, None),
                   C(np.clip, randn(3, 4), min=-0.5, max=0.5)],
    "numpy.where": [C(where, randn(3, 4) > 0, randn(3, 4), randn(3, 4)),
                    C(where, randn(3, 1) > 0, 1.5, randn(1, 4)),
                    C(where, RNG.integers(0, 3, (3, 4)), randn(3, 4), randn(4))],
    "numpy.maximum": [C(np.maximum, randn(3, 4), 0.0)],
    # Reductions.
    "numpy.sum": reductions(np.sum) + [C(np.sum, 2.5)],
    "numpy.mean": reductions(np.mean),
    "numpy.prod": reductions(np.prod, positive) + [C(np.prod, with_zeros(3, 4)), C(np.prod, with_zeros(3, 4), axis=0),
                                                   C(np.prod, with_zeros(3, 4), axis=1, keepdims=True)],
    "numpy.max": reductions(np.max, distinct),
    "numpy.min": reductions(np.min, distinct),
    "numpy.amax": reductions(np.amax, distinct)[:3],
    "numpy.amin": reductions(np.amin, distinct)[:3],
    "numpy.var": reductions(np.var) + [C(np.var, randn(*A3), axis=1, ddof=1), C(np.var, randn(5), ddof=1)],
    "numpy.std": reductions(np.std) + [C(np.std, randn(*A3), axis=(0, 1), ddof=1), C(np.std, randn(5), ddof=2)],
    "numpy.cumsum": [C(np.cumsum, randn(*A3)), C(np.cumsum, randn(*A3), axis=1), C(np.cumsum, randn(3, 4), axis=-1)],
    "numpy.cumprod": [C(np.cumprod, randn(3, 4)), C(np.cumprod, randn(*A3), axis=1),
                      C(np.cumprod, with_zeros(3, 4), axis=-1), C(np.cumprod, with_zeros(3, 4)),
                      C(np.cumprod, np.array([2.0, 0.0, 3.0, 0.0, 1.5]))],
    # Products.
    "numpy.matmul": [C(np.matmul, randn(3, 4), randn(4, 2)), C(np.matmul, randn(4), randn(4, 2)),
                     C(np.matmul, randn(3, 4), randn(4)), C(np.matmul, randn(4), randn(4)),
                     C(np.matmul, randn(2, 3, 4), randn(4, 5)), C(np.matmul, randn(1, 3, 4), randn(2, 4, 5)),
                     C(np.matmul, randn(4), randn(2, 4, 3))],
    "numpy.dot": [C(np.dot, randn(3, 4), randn(4, 2)), C(np.dot, randn(4), randn(4, 2)),
                  C(np.dot, randn(3, 4), randn(4)), C(np.dot, randn(4), randn(4)),
                  C(np.dot, randn(2, 3, 4), randn(4)), C(np.dot, randn(3), randn(2, 3, 4)),
                  C(np.dot, randn(2, 3, 4), randn(5, 4, 2)), C(np.dot, 2.5, randn(3, 4)), C(np.dot, randn(3), 1.5),
                  C(np.dot, 2.5, 1.5)],
    "numpy.vdot": [C(np.vdot, randn(3, 4), randn(12)), C(np.vdot, randn(5), randn(5))],
    "numpy.inner": [C(np.inner, randn(3, 4), randn(5, 4)), C(np.inner, randn(4), randn(4)),
                    C(np.inner, randn(2, 3, 4), randn(4)), C(np.inner, randn(4), randn(2, 3, 4)),
                    C(np.inner, 2.0, randn(3))],
    "numpy.outer": [C(np.outer, randn(3), randn(4)), C(np.outer, randn(2, 2), randn(3))],
    "numpy.tensordot": [C(np.tensordot, randn(2, 3, 4), randn(3, 4, 5)),
                        C(np.tensordot, randn(3, 4), randn(4, 5), axes=1),
                        C(np.tensordot, randn(3, 4), randn(4, 3), axes=([1, 0], [0, 1])),
                        C(np.tensordot, randn(2, 3, 4), randn(4, 5, 2), axes=([0, 2], [2, 0])),
                        C(np.tensordot, randn(2, 3), randn(4), axes=0),
                        C(np.tensordot, randn(2, 3), randn(3, 5), axes=([-1], [0]))],
    "numpy.cross": [C(np.cross, randn(3), randn(3)), C(np.cross, randn(4, 3), randn(3))],
    "numpy.kron": [C(np.kron, randn(2, 3), randn(3, 2)), C(np.kron, randn(2), randn(3)),
                   C(np.kron, randn(2, 2), randn(3))],
    "numpy.einsum": [C(np.einsum, "ij,jk->ik", randn(3, 4), randn(4, 2)),
                     C(np.einsum, "ij,jk,kl->il", randn(2, 3), randn(3, 4), randn(4, 2)),
                     C(np.einsum, "ij->i", randn(3, 4)), C(np.einsum, "ij,ij->", randn(3, 4), randn(3, 4)),
                     C(np.einsum, "i,j->ij", randn(3), randn(4)), C(np.einsum, "ij,jk", randn(3, 4), randn(4, 2)),
                     C(np.einsum, "bij,bjk->bik", randn(2, 3, 4), randn(2, 4, 2)),
                     C(np.einsum, "ij,k->i", randn(3, 4), randn(2)),
                     # '...': first derivatives only (see test_einsum_ellipsis_second_derivative_is_refused)
                     C(np.einsum, "...ij,...jk->...ik", randn(2, 3, 4), randn(4, 2)),
                     C(np.einsum, "...i,...i->...", randn(2, 3), randn(3)),
                     C(np.einsum, "i...,i...", randn(3, 2), randn(3, 1)),
                     C(np.einsum, "...ij,jk", randn(1, 3, 4), randn(4, 2)),
                     C(np.einsum, "bi...,b...->...i", randn(2, 3, 4, 5), randn(2, 4, 1)),
                     C(np.einsum, "ij,ij->ij", randn(1, 3), randn(2, 3))],
    # Traces and diagonals.
    "numpy.trace": [C(np.trace, randn(3, 3)), C(np.trace, randn(3, 4), offset=1),
                    C(np.trace, randn(2, 3, 4), axis1=1, axis2=2),
                    C(np.trace, randn(2, 3, 4), offset=-1, axis1=2, axis2=0)],
    "numpy.diagonal": [C(np.diagonal, randn(3, 3)), C(np.diagonal, randn(3, 5), offset=2),
                       C(np.diagonal, randn(4, 3), offset=-1), C(np.diagonal, randn(2, 3, 4), axis1=-1, axis2=1)],
    "numpy.diag": [C(np.diag, randn(3)), C(np.diag, randn(3), k=1), C(np.diag, randn(3), k=-2),
                   C(np.diag, randn(3, 4)), C(np.diag, randn(3, 5), k=2), C(np.diag, randn(4, 3), k=-1)],
    # numpy.linalg.
    "numpy.linalg.inv": [C(np.linalg.inv, well_conditioned(3)), C(np.linalg.inv, well_conditioned(3, 2))],
    "numpy.linalg.solve": [C(np.linalg.solve, well_conditioned(3), randn(3)),
                           C(np.linalg.solve, well_conditioned(3), randn(3, 2)),
                           C(np.linalg.solve, well_conditioned(3, 2), randn(2, 3, 2)),
                           C(np.linalg.solve, well_conditioned(3, 2), randn(3)),
                           C(np.linalg.solve, well_conditioned(3), randn(2, 3, 2))],
    "numpy.linalg.det": [C(np.linalg.det, well_conditioned(3)), C(np.linalg.det, well_conditioned(3, 2))],
    "numpy.linalg.slogdet": [C(np.linalg.slogdet, well_conditioned(3)), C(np.linalg.slogdet, -well_conditioned(3, 2))],
    "numpy.linalg.cholesky": [C(np.linalg.cholesky, spd(3)), C(np.linalg.cholesky, spd(3, 2))],
    "numpy.linalg.eigh": [C(np.linalg.eigh, symmetric(3)), C(np.linalg.eigh, symmetric(4), UPLO="U")],
    "numpy.linalg.eigvalsh": [C(np.linalg.eigvalsh, symmetric(3)), C(np.linalg.eigvalsh, symmetric(3), UPLO="U")],
    "numpy.linalg.norm": [C(np.linalg.norm, randn(5)), C(np.linalg.norm, randn(3, 4)), C(np.linalg.norm, randn(*A3)),
                          C(np.linalg.norm, randn(3, 4), axis=0),
                          C(np.linalg.norm, randn(3, 4), axis=-1, keepdims=True),
                          C(np.linalg.norm, randn(3, 4), "fro"), C(np.linalg.norm, randn(*A3), axis=(1, 2)),
                          C(np.linalg.norm, randn(3, 4), keepdims=True)]
                         + [C(np.linalg.norm, distinct(5), o) for o in (1, 2, 3, 0.5, np.inf, -np.inf)]
                         + [C(np.linalg.norm, distinct(3, 4), o, axis=1) for o in (1, 3, np.inf)]
                         + [C(np.linalg.norm, distinct(3, 4), o) for o in ("nuc", 2, -2, 1, -1, np.inf, -np.inf)]
                         + [C(np.linalg.norm, distinct(2, 3, 4), "nuc", axis=(2, 0))],
    "numpy.linalg.pinv": [C(np.linalg.pinv, randn(3, 3)), C(np.linalg.pinv, randn(4, 2)),
                          C(np.linalg.pinv, randn(2, 4)), C(np.linalg.pinv, randn(2, 4, 3))],
    "numpy.linalg.svd": [C(np.linalg.svd, distinct(3, 3) / 3, full_matrices=False),
                         C(np.linalg.svd, distinct(4, 3) / 4, full_matrices=False),
                         C(np.linalg.svd, distinct(2, 4) / 3, full_matrices=False),
                         C(np.linalg.svd, distinct(4, 3) / 4, compute_uv=False),
                         C(np.linalg.svd, distinct(2, 3, 4) / 5, compute_uv=False)],
    "numpy.linalg.qr": [C(np.linalg.qr, well_conditioned(3)), C(np.linalg.qr, randn(4, 3) + np.eye(4, 3) * 3),
                        C(np.linalg.qr, randn(2, 4, 3) + np.eye(4, 3) * 3)],
    "numpy.linalg.eig": [C(np.linalg.eig, symmetric(3) + 0.3 * np.triu(randn(3, 3))),
                         C(np.linalg.eig, symmetric(4) + 0.3 * np.tril(randn(4, 4)))],
    "scipy.linalg.eigh": [C(scipy.linalg.eigh, symmetric(3), driver="evd"), C(scipy.linalg.eigh, symmetric(3), eigvals_only=True),
                          C(scipy.linalg.eigh, symmetric(4), lower=False, driver="evd")],
    "scipy.linalg.lu_factor": [C(scipy.linalg.lu_factor, well_conditioned(3)), C(scipy.linalg.lu_factor, randn(4, 4)),
                               C(scipy.linalg.lu_factor, randn(5, 5), check_finite=False)],
    "s2s.helpers.odeint_solve": [
        C(helpers.odeint_solve, _decay, _decay_vjp, _decay_jvp, (randn(3), np.linspace(0.0, 1.5, 4), 0.7),
          {"rtol": 1e-10, "atol": 1e-10}),
        C(helpers.odeint_solve, _decay_first, _decay_first_vjp, _decay_first_jvp,
          (randn(3), np.array([0.1, 0.2, 0.9, 1.4]), 1.3), {"method": "DOP853", "rtol": 1e-11, "atol": 1e-11})],
    "scipy.linalg.expm": [C(scipy.linalg.expm, randn(3, 3) / 2), C(scipy.linalg.expm, randn(4, 4) / 3)],
    "scipy.linalg.sqrtm": [C(scipy.linalg.sqrtm, spd(3)), C(scipy.linalg.sqrtm, well_conditioned(3) + 2 * np.eye(3))],
    "numpy.convolve": [C(np.convolve, randn(5), randn(3)), C(np.convolve, randn(3), randn(5), mode="same"),
                       C(np.convolve, randn(6), randn(3), mode="valid"), C(np.convolve, randn(4), randn(4), "same"),
                       C(np.convolve, randn(2), randn(5), mode="valid")],
    "scipy.signal.convolve": [C(scipy.signal.convolve, randn(5), randn(3)),
                              C(scipy.signal.convolve, randn(4, 5), randn(2, 3), mode="same"),
                              C(scipy.signal.convolve, randn(5, 4), randn(3, 2), mode="valid"),
                              C(scipy.signal.convolve, randn(2, 3), randn(4, 4), mode="same")],
    "numpy.interp": [C(np.interp, RNG.uniform(-0.5, 3.5, 7), np.arange(4.0), randn(4), wrt=["x", "fp"]),
                     C(np.interp, RNG.uniform(-0.5, 3.5, (2, 3)), np.array([0.0, 0.5, 2.0, 3.0]), randn(4),
                       left=-1.0, right=2.0, wrt=["x", "fp"]),
                     C(np.interp, 1.3, np.arange(4.0), randn(4), wrt=["x", "fp"])],
    # Shape.
    "ndarray.T": [C(T, randn(3, 4)), C(T, randn(*A3))],
    "numpy.transpose": [C(np.transpose, randn(*A3)), C(np.transpose, randn(*A3), (1, 2, 0)),
                        C(np.transpose, randn(*A3), (-1, 0, 1))],
    "ndarray.transpose": [C(transpose_method, randn(*A3)), C(transpose_method, randn(*A3), 1, 2, 0),
                          C(transpose_method, randn(*A3), (2, 0, 1)), C(transpose_method, randn(*A3), -1, 0, 1)],
    "numpy.permute_dims": [C(np.permute_dims, randn(*A3), (2, 0, 1))],
    "numpy.matrix_transpose": [C(np.matrix_transpose, randn(*A3))],
    "ndarray.astype": [C(astype_method, randn(3, 4), np.float64)],
    "numpy.take": [C(np.take, randn(3, 4), np.array([0, 2, 2, 1])),
                   C(np.take, randn(3, 4), np.array([[0, 3], [3, 3]]), axis=1),
                   C(np.take, randn(*A3), np.array([2, 0, 2]), axis=-1), C(np.take, randn(3, 4), 1, axis=0)],
    "numpy.take_along_axis": [C(np.take_along_axis, randn(3, 4), np.array([[0], [3], [3]]), axis=1),
                              C(np.take_along_axis, randn(3, 4), np.array([[0, 1, 2, 2], [2, 2, 0, 1]]), axis=0),
                              C(np.take_along_axis, randn(*A3), np.array([[[1, 1]], [[0, 3]]]), axis=-1),
                              C(np.take_along_axis, randn(5), np.array([4, 4, 0]), axis=None)],
    "numpy.swapaxes": [C(np.swapaxes, randn(*A3), 0, 2), C(np.swapaxes, randn(*A3), -1, 1)],
    "numpy.moveaxis": [C(np.moveaxis, randn(*A3), 0, -1), C(np.moveaxis, randn(*A3), (0, 1), (2, 0))],
    "numpy.reshape": [C(np.reshape, randn(*A3), (4, 6)), C(np.reshape, randn(*A3), (-1,)),
                      C(np.reshape, randn(*A3), (6, 4), order="F")],
    "ndarray.reshape": [C(reshape_method, randn(*A3), 4, 6), C(reshape_method, randn(*A3), (3, -1))],
    "numpy.ravel": [C(np.ravel, randn(*A3)), C(np.ravel, randn(3, 4), order="F")],
    "numpy.squeeze": [C(np.squeeze, randn(1, 3, 1, 4)), C(np.squeeze, randn(1, 3, 1, 4), 0),
                      C(np.squeeze, randn(1, 3, 1, 4), axis=(0, 2)), C(np.squeeze, randn(1, 3, 1, 4), axis=-2)],
    "numpy.expand_dims": [C(np.expand_dims, randn(3, 4), 0), C(np.expand_dims, randn(3, 4), -1),
                          C(np.expand_dims, randn(3, 4), (0, 2))],
    "numpy.atleast_1d": [C(np.atleast_1d, 2.0), C(np.atleast_1d, randn(3))],
    "numpy.atleast_2d": [C(np.atleast_2d, randn(3)), C(np.atleast_2d, randn(2, 3))],
    "numpy.atleast_3d": [C(np.atleast_3d, randn(3)), C(np.atleast_3d, randn(2, 3))],
    "numpy.copy": [C(np.copy, randn(3, 4))],
    "numpy.array": [C(np.array, randn(3, 4)), C(np.array, randn(3), dtype=float)],
    "numpy.asarray": [C(np.asarray, randn(3, 4)), C(np.asarray, randn(2), dtype=np.float64)],
    "numpy.broadcast_to": [C(np.broadcast_to, randn(3), (2, 3)), C(np.broadcast_to, randn(3, 1), (2, 3, 4)),
                           C(np.broadcast_to, 2.0, (2, 2))],
    "numpy.concatenate": [C(np.concatenate, (randn(2, 3), randn(1, 3))),
                          C(np.concatenate, [randn(2, 3), randn(2, 2)], axis=1),
                          C(np.concatenate, (randn(2, 3), randn(2, 1), randn(2, 2)), axis=-1),
                          C(np.concatenate, (randn(2, 3), randn(4)), axis=None)],
    "numpy.concat": [C(np.concat, (randn(2, 3), randn(1, 3))), C(np.concat, [randn(2, 3), randn(2, 2)], axis=1)],
    "numpy.stack": [C(np.stack, (randn(2, 3), randn(2, 3))), C(np.stack, [randn(2, 3), randn(2, 3)], axis=1),
                    C(np.stack, (randn(3), randn(3), randn(3)), axis=-1)],
    "numpy.hstack": [C(np.hstack, (randn(3), randn(2))), C(np.hstack, (randn(2, 3), randn(2, 1))),
                     C(np.hstack, (1.5, randn(2)))],
    "numpy.vstack": [C(np.vstack, (randn(3), randn(3))), C(np.vstack, (randn(2, 3), randn(1, 3))),
                     C(np.vstack, (randn(2, 3), randn(3)))],
    "numpy.split": [C(np.split, randn(6, 2), 3), C(np.split, randn(2, 5), [1, 3], axis=1)],
    "numpy.array_split": [C(np.array_split, randn(7), 3), C(np.array_split, randn(2, 5), 2, axis=-1)],
    "numpy.hsplit": [C(np.hsplit, randn(2, 4), 2), C(np.hsplit, randn(6), [2])],
    "numpy.vsplit": [C(np.vsplit, randn(4, 2), 2)],
    "numpy.tile": [C(np.tile, randn(3), 2), C(np.tile, randn(2, 3), (2, 1)), C(np.tile, randn(2, 3), (2, 1, 3)),
                   C(np.tile, randn(2, 3), (2,)), C(np.tile, randn(2, 1, 3), (2, 2))],
    "numpy.repeat": [C(np.repeat, randn(2, 3), 2), C(np.repeat, randn(2, 3), 3, axis=0),
                     C(np.repeat, randn(2, 3), np.array([1, 2, 0]), axis=1), C(np.repeat, randn(2, 3), 2, axis=-1),
                     C(np.repeat, randn(3), np.array([2, 1, 3]))],
    "numpy.pad": [C(np.pad, randn(2, 3), ((1, 2), (0, 1))), C(np.pad, randn(2, 3), 1),
                  C(np.pad, randn(3), (2, 1), constant_values=1.5)]
                 + [C(np.pad, randn(3, 4), ((2, 1), (3, 2)), m) for m in ("edge", "reflect", "symmetric", "wrap")]
                 + [C(np.pad, randn(5), 7, "wrap"), C(np.pad, randn(4), (5, 2), "symmetric")],
    "numpy.diff": [C(np.diff, randn(3, 5)), C(np.diff, randn(4, 3), n=2, axis=0), C(np.diff, randn(5), 3)],
    "numpy.flip": [C(np.flip, randn(*A3)), C(np.flip, randn(*A3), 0), C(np.flip, randn(*A3), axis=(0, -1))],
    "numpy.fliplr": [C(np.fliplr, randn(3, 4))],
    "numpy.flipud": [C(np.flipud, randn(3, 4))],
    "numpy.rot90": [C(np.rot90, randn(3, 4)), C(np.rot90, randn(3, 4), 2), C(np.rot90, randn(*A3), -1, (1, 2))],
    "numpy.roll": [C(np.roll, randn(3, 4), 1), C(np.roll, randn(3, 4), -2, axis=0),
                   C(np.roll, randn(3, 4), (1, 2), axis=(0, 1))],
    "numpy.sort": [C(np.sort, distinct(3, 4)), C(np.sort, distinct(3, 4), axis=0),
                   C(np.sort, distinct(3, 4), axis=None)],
    "numpy.triu": [C(np.triu, randn(3, 4)), C(np.triu, randn(3, 4), 1), C(np.triu, randn(2, 3, 3), -1)],
    "numpy.tril": [C(np.tril, randn(3, 4)), C(np.tril, randn(3, 4), 1), C(np.tril, randn(2, 3, 3), -1)],
    # Special functions.
    "scipy.special.logsumexp": reductions(logsumexp) + [
        C(logsumexp, randn(3, 4), b=positive(3, 4)), C(logsumexp, randn(3, 4), axis=1, b=positive(4)),
        C(logsumexp, randn(3, 4), axis=0, keepdims=True, b=positive(3, 1))],
    "scipy.special.multigammaln": [C(scipy.special.multigammaln, RNG.uniform(2.5, 4.0, (3, 4)), 3),
                                   C(scipy.special.multigammaln, 3.3, 2), C(scipy.special.multigammaln, 2.7, 1)],
    "scipy.special.softmax": [C(softmax, randn(3, 4)), C(softmax, randn(3, 4), axis=0),
                              C(softmax, randn(*A3), axis=-1), C(softmax, randn(*A3), axis=(0, 2))],
    "scipy.special.log_softmax": [C(log_softmax, randn(3, 4)), C(log_softmax, randn(3, 4), axis=0),
                                  C(log_softmax, randn(*A3), axis=(1, 2))],
}

STRUCTURED = {"numpy.concatenate", "numpy.concat", "numpy.stack", "numpy.hstack", "numpy.vstack", "numpy.einsum",
              "numpy.split", "numpy.array_split", "numpy.hsplit", "numpy.vsplit", "numpy.linalg.slogdet",
              "numpy.linalg.eigh", "scipy.linalg.eigh", "scipy.linalg.lu_factor", "s2s.helpers.odeint_solve",
              "numpy.linalg.svd", "numpy.linalg.qr", "numpy.linalg.eig"}
MADE_BY_ELEMENTWISE = {q for q, r in RULES.items() if r.elementwise and q not in (
    "numpy.clip", "numpy.where", "scipy.special.multigammaln")}


def cases_of(qualname):
    generated = elementwise_cases(qualname) if qualname in MADE_BY_ELEMENTWISE else []
    return CASES.get(qualname, []) + generated


ALL = [(q, i, case) for q in sorted(RULES) for i, case in enumerate(cases_of(q))]


# --- the structured checker: tuples in, tuples out ------------------------------------

def _leaves(x):
    return list(x) if isinstance(x, (tuple, list)) else [x]


def _flatten(x):
    return np.concatenate([np.ravel(leaf) for leaf in _leaves(x)]).astype(np.float64)


def _unflatten(flat, like):
    out, start = [], 0
    for leaf in _leaves(like):
        n = int(np.size(leaf))
        piece = np.reshape(flat[start:start + n], np.shape(leaf))
        out.append(float(piece) if isinstance(leaf, float) else piece)
        start += n
    return type(like)(out) if isinstance(like, (tuple, list)) else out[0]


def _random_like(x, rng):
    return _unflatten(rng.standard_normal(_flatten(x).size), x)


def _holds_arrays(x):
    return isinstance(x, (tuple, list)) and any(isinstance(e, np.ndarray) for e in x)


def check_structured(fn, qualname, args, kwargs=None, wrt=None, rtol=1e-5, atol=1e-6):
    """`check_rule` for tuple-valued parameters (``arrays``) and tuple results (``split``)."""
    kwargs = kwargs or {}
    rule = RULES[qualname]
    values, static = _bind(rule, args, kwargs)
    static = {k: DYNAMIC if _holds_arrays(values[k]) else s for k, s in static.items()}
    if wrt is None:
        wrt = [p for p in rule.differentiable_params if p in values and values[p] is not None
               and not isinstance(values[p], str)]
    rng = np.random.default_rng(0)
    ans = fn(*args, **kwargs)
    ans = tuple(ans) if isinstance(ans, (tuple, list)) else ans
    g = _random_like(ans, rng)

    def along(p, direction, t):
        b = dict(values)
        b[p] = _unflatten(_flatten(values[p]) + t * direction, values[p])
        out = _call_primal(fn, rule, b)
        return tuple(out) if isinstance(out, (tuple, list)) else out

    for p in wrt:
        got = evaluate(rule.vjp_templates(static)[p], {**values, "ans": ans, "g": g})
        assert len(_leaves(got)) == len(_leaves(values[p])), f"{qualname}: adjoint of {p} has the wrong length"
        for leaf, want in zip(_leaves(got), _leaves(values[p])):
            assert np.shape(leaf) == np.shape(want), f"{qualname}: adjoint shape {np.shape(leaf)} != {np.shape(want)}"

        def scalar(flat, p=p):
            b = dict(values)
            b[p] = _unflatten(flat, values[p])
            out = _call_primal(fn, rule, b)
            return sum(float(np.sum(gi * oi)) for gi, oi in zip(_leaves(g), _leaves(out)))

        want = numerical_grad(scalar, [_flatten(values[p])], 0)
        assert_close(_flatten(got), want, rtol, atol, what=f"{qualname} VJP wrt {p}")
        tangent = _random_like(values[p], rng)
        direction = _flatten(tangent)
        got_t = evaluate(rule.jvp_templates(static)[p], {**values, "ans": ans, "d" + p: tangent})
        hi, lo = along(p, direction, EPS), along(p, direction, -EPS)
        want_t = [(np.asarray(h) - np.asarray(low)) / (2 * EPS) for h, low in zip(_leaves(hi), _leaves(lo))]
        assert len(_leaves(got_t)) == len(want_t), f"{qualname}: tangent has the wrong length"
        for t, w in zip(_leaves(got_t), want_t):
            assert_close(np.broadcast_to(t, np.shape(w)), w, rtol, atol, what=f"{qualname} JVP wrt {p}")
    return wrt


def run_case(qualname, case):
    rule = RULES[qualname]
    assert rule.vjp is not None and rule.jvp is not None, f"{qualname}: a rule needs a VJP and a JVP"
    check = check_structured if qualname in STRUCTURED else check_rule
    checked = check(case.fn, qualname, case.args, case.kwargs, wrt=case.wrt, rtol=case.rtol, atol=case.atol)
    assert checked, f"{qualname}: the case has no float input to check"


# --- the registry, rule by rule ----------------------------------------------------------

@pytest.mark.parametrize("qualname, index, case", ALL, ids=[f"{q}-{i}" for q, i, _ in ALL])
def test_rule(qualname, index, case):
    run_case(qualname, case)


def test_every_differentiable_rule_has_a_case():
    missing = [q for q, rule in RULES.items() if not rule.nondifferentiable and not cases_of(q)]
    assert not missing, f"rules without a test case in tests/test_rules.py: {missing}"


def test_every_rule_names_a_real_function():
    for qualname in RULES:
        if qualname.startswith("ndarray."):
            assert hasattr(np.ndarray, qualname[8:]), qualname
        else:
            assert callable(primal(qualname)), qualname
    for name, qualname in METHODS.items():
        assert hasattr(np.ndarray, name) and qualname in RULES, (name, qualname)


HELPERS = {n for n in dir(helpers) if not n.startswith("_") and callable(getattr(helpers, n))}
TEMPLATE_BUILTINS = {"tuple", "None", "True", "False"}


def _check_template_names(rule, template, extra):
    """A template reads only its params, ans, g, d<param>, np and helpers; np.<name> exists."""
    allowed = set(rule.signature.parameters) | {"ans", "g", "np"} | HELPERS | TEMPLATE_BUILTINS | extra
    if rule.qualname.startswith("scipy."):
        allowed.add("scipy")  # the primal imports it
    tree = ast.parse(template, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id in allowed, f"{rule.qualname}: template {template!r} reads {node.id!r}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "np":
            assert hasattr(np, node.attr), f"{rule.qualname}: np.{node.attr} does not exist"
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) in ("scipy.special", "scipy.signal"):
            assert f"{ast.unparse(node)}" in RULES, \
                f"{rule.qualname}: {ast.unparse(node)} has no rule (a second derivative needs one)"


@pytest.mark.parametrize("qualname, index, case", ALL, ids=[f"{q}-{i}" for q, i, _ in ALL])
def test_template_variants_agree(qualname, index, case):
    """Templates use known names only, and the run-time (DYNAMIC) and rank-specialized
    versions of the templates compute what the checked ones do."""
    rule = RULES[qualname]
    values, static = _bind(rule, case.args, case.kwargs)
    # Any argument may be a variable, except no varargs (always ()) and None (always literal).
    dynamic = {k: s if s == () or s is None else DYNAMIC for k, s in static.items()}
    ans = case.fn(*case.args, **case.kwargs)
    ans = tuple(ans) if isinstance(ans, (tuple, list)) else ans
    rng = np.random.default_rng(1)
    g = _random_like(ans, rng)
    tangents = {"d" + p: _random_like(values[p], rng) for p in case.wrt or rule.differentiable_params
                if values.get(p) is not None and not isinstance(values[p], str)}
    ranks = {p: np.ndim(v) for p, v in values.items() if isinstance(v, (np.ndarray, float))}
    for kind in ("vjp", "jvp"):
        templates = getattr(rule, f"{kind}_templates")(static)
        variants = {"ranks known": getattr(rule, f"{kind}_templates")(static, ranks)}
        try:
            variants["DYNAMIC"] = getattr(rule, f"{kind}_templates")(dynamic)
        except NotImplementedError:
            pass
        for p, t in [*templates.items(), *variants["ranks known"].items()]:
            _check_template_names(rule, t, {"d" + q for q in rule.signature.parameters})
        names = {**values, "ans": ans, "g": g, **tangents}
        for p in [t[1:] for t in tangents if t[1:] in templates]:
            want = evaluate(templates[p], names)
            for variant, other in variants.items():
                got = evaluate(other[p], names)
                assert_close(_flatten(got), _flatten(want), 1e-10, 1e-12, what=f"{qualname} {variant} {kind} {p}")


# --- second derivatives: forward mode over the generated gradient --------------------------
#
# For each rule, f(params..., w...) = sum_i np.sum(w_i * out_i) calls it as a user would
# write it; s2s.grad(f) (checked against differences of f) is differentiated again by
# forward mode along random tangents of every float input at once, which is the Hessian-
# vector product s2s.hvp computes, mixed blocks included, and compared with central
# differences of that gradient. One broadcasting case per elementwise rule; the first and
# the last case of the others (their configurations differ most).

PIECEWISE_LINEAR = {  # not twice differentiable at kinks: away from them H = 0, checked as such
    q: "piecewise linear" for q in (
        "numpy.abs", "numpy.absolute", "numpy.fabs", "builtins.abs", "numpy.maximum", "numpy.minimum",
        "numpy.fmax", "numpy.fmin", "builtins.max", "builtins.min", "numpy.clip", "numpy.max", "numpy.min",
        "numpy.amax", "numpy.amin", "numpy.sort", "numpy.mod", "numpy.remainder", "numpy.fmod",
        "math.remainder", "numpy.nan_to_num")}


def second_order_cases(qualname):
    if qualname in MADE_BY_ELEMENTWISE:
        generated = elementwise_cases(qualname)
        refused = [p for p in RULES[qualname].differentiable_params if p not in generated[0].wrt]
        if refused:  # jvp moves every float array: a refused parameter (an order) must be a literal
            names = list(RULES[qualname].signature.parameters)
            return [next((i, c) for i, c in enumerate(generated)
                         if all(isinstance(c.args[names.index(p)], float) for p in refused))]
        return [(0, generated[min(4, len(generated) - 1)])]  # ((3, 1), (3, 4)) for binary rules
    cases = list(enumerate(cases_of(qualname)))
    return [cases[0]] + cases[-1:] if len(cases) > 1 else cases


SECOND_ELSEWHERE = {  # rule -> the test that checks its second derivative on whole programs
    "s2s.helpers.odeint_solve": "tests/test_ode.py::test_second_derivatives"}
SECOND = [(q, i, c) for q in sorted(RULES) if not RULES[q].nondifferentiable and q not in SECOND_ELSEWHERE
          for i, c in second_order_cases(q)]
_programs = itertools.count()


def _literal(value) -> str:
    if isinstance(value, float) and not np.isfinite(value):
        return "np.inf" if value > 0 else "-np.inf"
    if isinstance(value, tuple):
        return "(" + "".join(_literal(v) + ", " for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, type) and issubclass(value, np.generic):
        return f"np.{value.__name__}"
    if value in (float, int, bool, complex):
        return value.__name__
    return repr(value)


def second_order_program(qualname, case):
    """(source of f, its arguments, how many lead arguments are differentiated)."""
    rule = RULES[qualname]
    wrt_params = case.wrt or rule.differentiable_params
    params, args, wrt = [], [], []

    def render(value, param, suffix=""):
        if _holds_arrays(value):
            parts = [render(v, param, f"{suffix}{i}") for i, v in enumerate(value)]
            return ("(" + "".join(p + ", " for p in parts) + ")") if isinstance(value, tuple) else f"[{', '.join(parts)}]"
        active = param in wrt_params and np.asarray(value).dtype.kind == "f" and isinstance(value, (float, np.ndarray))
        if not (active or isinstance(value, np.ndarray)):
            return _literal(value)
        name = f"{param}{suffix}"
        params.append(name)
        args.append(value)
        if active:
            wrt.append(name)
        return name

    signature = list(rule.signature.parameters.values())
    positional = []
    for i, value in enumerate(case.args):
        param = signature[min(i, len(signature) - 1)]
        positional.append(render(value, param.name, str(i) if param.kind == param.VAR_POSITIONAL else ""))
    keywords = [f"{k}={render(v, k)}" for k, v in case.kwargs.items()]
    if qualname.startswith("ndarray."):
        method = qualname[8:]
        call = f"{positional[0]}.T" if method == "T" else \
            f"{positional[0]}.{method}({', '.join(positional[1:] + keywords)})"
    else:
        module, _, name = qualname.partition(".")
        callee = name if module == "builtins" else f"{'np' if module == 'numpy' else module}.{name}"
        call = f"{callee}({', '.join(positional + keywords)})"
    ans = case.fn(*case.args, **case.kwargs)
    outs = list(ans) if isinstance(ans, (tuple, list)) else [ans]
    rng = np.random.default_rng(7)
    weights = [float(rng.standard_normal()) if np.ndim(o) == 0 else rng.standard_normal(np.shape(o)) for o in outs]
    names = [f"out{i}" for i in range(len(outs))]
    total = " + ".join(f"np.sum(w{i} * {n})" for i, n in enumerate(names))
    body = f"    return {total.replace('out0', call)}\n" if len(outs) == 1 and not isinstance(ans, (tuple, list)) \
        else f"    {', '.join(names)} = {call}\n    return {total}\n"
    order = wrt + [p for p in params if p not in wrt]
    text = (f"import math\n\nimport numpy as np\nimport scipy.special\n\n\n"
            f"def f({', '.join(order + [f'w{i}' for i in range(len(outs))])}):\n{body}")
    return text, [args[params.index(p)] for p in order] + weights, len(wrt)


def _load(text):
    filename = f"<rule second order {next(_programs)}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = {}
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - our own program
    return namespace["f"]


def check_second_order(qualname, case):
    text, args, count = second_order_program(qualname, case)
    f = _load(text)
    assert count, f"{qualname}: the case has no float input to differentiate"
    nums = tuple(range(count))
    grad = s2s.grad(f, argnums=nums)
    rtol, atol = case.rtol, case.atol
    for n, got in zip(nums, grad(*args)):
        assert_close(got, numerical_grad(f, args, n), rtol, atol, what=f"{qualname} gradient of\n{text}")
    rng = np.random.default_rng(11)
    tangents = [_like(rng.standard_normal(np.shape(a)), a) if i < count else _like(np.zeros(np.shape(a)), a)
                for i, a in enumerate(args)]
    _, hvp = s2s.jvp(grad, args, tangents)  # what s2s.hvp runs, along every input at once
    moved = [[a + sign * EPS * t if i < count else a for i, (a, t) in enumerate(zip(args, tangents))]
             for sign in (1, -1)]
    hi, lo = grad(*moved[0]), grad(*moved[1])
    for n in nums:
        want = (np.asarray(hi[n]) - np.asarray(lo[n])) / (2 * EPS)
        assert_close(np.asarray(hvp[n], dtype=float), want, rtol, atol, what=f"{qualname} H v of\n{text}")
        if qualname in PIECEWISE_LINEAR:
            assert_close(np.asarray(hvp[n], dtype=float), np.zeros(np.shape(want)), 0, 1e-12,
                         what=f"{qualname}: piecewise linear, H = 0 away from kinks")


def _like(value, arg):
    return float(value) if isinstance(arg, float) else value


@pytest.mark.parametrize("qualname, index, case", SECOND, ids=[f"{q}-{i}" for q, i, _ in SECOND])
def test_second_derivative(qualname, index, case):
    check_second_order(qualname, case)


def test_every_differentiable_rule_has_a_second_order_case():
    checked = {q for q, _, _ in SECOND} | set(SECOND_ELSEWHERE)
    missing = [q for q, rule in RULES.items() if not rule.nondifferentiable and q not in checked]
    assert not missing, f"rules without a second-derivative check: {missing}"


# --- the checker itself --------------------------------------------------------------

def test_check_rule_catches_a_wrong_rule():
    name = "test.wrong_tanh"
    elementwise(name, "x", "1 - ans")  # should be 1 - ans ** 2
    try:
        with pytest.raises(AssertionError):
            check_rule(np.tanh, name, (randn(3),))
    finally:
        del RULES[name]


def test_check_structured_catches_a_wrong_rule():
    from s2s.rules.registry import jvp, vjp

    name = "test.wrong_concatenate"
    def swapped_adjoints():  # the adjoints in the wrong order
        return {"arrays": "tuple(reversed(split_like(g, arrays, axis)))"}

    def tangent():
        return {"arrays": "np.concatenate(darrays, axis)"}

    vjp(name, "arrays, axis=0", differentiable="arrays")(swapped_adjoints)
    jvp(name)(tangent)
    try:
        with pytest.raises(AssertionError):
            check_structured(np.concatenate, name, ((randn(2), randn(2)),))
    finally:
        del RULES[name]


# --- numerically touchy inputs ------------------------------------------------------

def _vjp(qualname, args, kwargs=None, param=None, g=1.0):
    rule = RULES[qualname]
    values, static = _bind(rule, args, kwargs or {})
    ans = primal(qualname)(*args, **(kwargs or {}))
    param = param or rule.differentiable_params[0]
    return evaluate(rule.vjp_templates(static)[param], {**values, "ans": ans, "g": g})


def test_logsumexp_near_1000():
    a = 1000 + randn(5)
    got = _vjp("scipy.special.logsumexp", (a,))
    assert np.all(np.isfinite(got))
    assert_close(got, scipy.special.softmax(a))
    check_rule(scipy.special.logsumexp, "scipy.special.logsumexp", (a,), {"axis": 0}, rtol=1e-4, atol=1e-5)


def test_logsumexp_with_minus_infinity():
    a = np.array([-np.inf, 0.0, 1.0])
    got = _vjp("scipy.special.logsumexp", (a,))
    assert_close(got, scipy.special.softmax(a))


def test_logaddexp_with_large_inputs():
    got1 = _vjp("numpy.logaddexp", (1000.0, 1001.0), param="x1")
    got2 = _vjp("numpy.logaddexp", (1000.0, 1001.0), param="x2")
    assert_close(np.array([got1, got2]), scipy.special.softmax([1000.0, 1001.0]))
    assert_close(_vjp("numpy.logaddexp2", (-2000.0, 2000.0), param="x2"), 1.0)


def test_sqrt_and_abs_near_zero():
    assert_close(_vjp("numpy.sqrt", (1e-10,)), 0.5 / np.sqrt(1e-10), rtol=1e-12)
    assert _vjp("numpy.abs", (-1e-300,)) == -1.0
    assert _vjp("numpy.cbrt", (1e-9,)) == pytest.approx(1 / (3 * 1e-6))


def test_norm_of_tiny_and_huge_vectors():
    for scale in (1e-100, 1e100):
        x = np.array([3.0, 4.0]) * scale
        got = _vjp("numpy.linalg.norm", (x,))
        assert_close(got, np.array([0.6, 0.8]), rtol=1e-12)


def test_sigmoid_family_in_the_tails():
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    assert_close(_vjp("scipy.special.expit", (x,)), scipy.special.expit(x) * scipy.special.expit(-x), atol=1e-16)
    assert_close(_vjp("scipy.special.log_expit", (x,)), scipy.special.expit(-x), rtol=1e-12, atol=0)
    assert np.all(np.isfinite(_vjp("scipy.special.log_ndtr", (np.array([-30.0, 0.0, 30.0]),))))


def test_softmax_of_large_inputs():
    x = 1000 + randn(4)
    assert np.all(np.isfinite(_vjp("scipy.special.softmax", (x,), g=randn(4))))
    assert np.all(np.isfinite(_vjp("scipy.special.log_softmax", (x,), g=randn(4))))


def test_power_at_zero_base_and_sinc_at_zero():
    assert _vjp("numpy.power", (np.zeros(3), np.full(3, 2.0)), param="x2").tolist() == [0.0, 0.0, 0.0]
    assert _vjp("numpy.sinc", (0.0,)) == 0.0
    x = np.array([-1e-4, 1e-5, 2e-3, 0.3])
    want = (np.cos(np.pi * x) * np.pi * x - np.sin(np.pi * x)) / (np.pi * x ** 2)
    assert_close(_vjp("numpy.sinc", (x,)), want, rtol=1e-7)


def test_ties_share_the_adjoint():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    assert_close(_vjp("numpy.max", (a,), {"axis": 1}, g=np.array([1.0, 3.0])),
                 np.array([[0.0, 0.5, 0.5], [1.0, 1.0, 1.0]]))
    assert_close(_vjp("numpy.max", (a,)), np.array([[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]))
    rule = RULES["numpy.min"]
    values, static = _bind(rule, (a,), {"axis": 1})
    tangent = evaluate(rule.jvp_templates(static)["a"], {**values, "ans": np.min(a, axis=1), "da": a * 10})
    assert_close(tangent, np.array([10.0, 20.0]))


def test_prod_and_cumprod_with_zeros_are_exact():
    a = np.array([2.0, 0.0, 3.0, 0.0])
    assert_close(_vjp("numpy.prod", (a,)), np.zeros(4))
    a = np.array([2.0, 0.0, 3.0])
    assert_close(_vjp("numpy.prod", (a,)), np.array([0.0, 6.0, 0.0]))
    assert_close(_vjp("numpy.cumprod", (a,), g=np.ones(3)), np.array([1.0, 2.0 + 6.0, 0.0]))


def test_digamma_and_trigamma_helpers_match_scipy():
    x = np.concatenate([np.linspace(0.05, 30, 200), [-0.3, -2.7, -7.5, 1e3]])
    assert_close(helpers.digamma(x), scipy.special.digamma(x), rtol=1e-10, atol=1e-10)
    assert_close(helpers.trigamma(x), scipy.special.polygamma(1, x), rtol=1e-10, atol=1e-10)


def test_unsupported_configurations_are_refused():
    with pytest.raises(NotImplementedError):
        RULES["numpy.pad"].vjp_templates({"mode": "linear_ramp"})
    with pytest.raises(NotImplementedError):
        RULES["numpy.pad"].vjp_templates({"mode": "reflect", "kwargs": {"reflect_type": "odd"}})
    with pytest.raises(NotImplementedError):
        RULES["numpy.einsum"].vjp_templates({"subscripts": "ii->i"})
    with pytest.raises(NotImplementedError):
        RULES["numpy.einsum"].vjp_templates({"subscripts": DYNAMIC})
    with pytest.raises(NotImplementedError):
        RULES["numpy.sum"].vjp_templates({"where": DYNAMIC})
    with pytest.raises(NotImplementedError):
        RULES["scipy.special.logsumexp"].vjp_templates({"return_sign": True})
    with pytest.raises(NotImplementedError):
        RULES["numpy.linalg.cholesky"].vjp_templates({"upper": True})


# --- lowerings: scipy.stats through the call a user writes ------------------------------
#
# A lowered function (``scipy.stats.norm.logpdf``) has no templates: its numpy body is
# inlined. Each case checks that body's value against scipy's, then the gradient, the
# directional derivative and a Hessian-vector product of ``sum(g * f(*args))`` (a module
# written to a temporary file, calling scipy the way a user does) against finite differences.

def _simplex(k, *n):
    w = RNG.uniform(0.5, 2.0, (k,) + n)
    return w / np.sum(w, axis=0)


def _counts(*shape):
    return RNG.integers(0, 6, shape).astype(float)


LOCATION_SCALE = [(randn(3, 4), randn(4), positive(3, 1)), (randn(5), 0.3, 1.7), (randn(2, 3), 0.2)]
STATS_INPUTS = {
    "norm": LOCATION_SCALE, "laplace": LOCATION_SCALE, "cauchy": LOCATION_SCALE, "logistic": LOCATION_SCALE,
    "t": [(randn(3, 4), above_one(4), randn(3, 1), positive(1, 4)), (randn(5), 3.5, 0.2, 1.3)],
    "expon": [(positive(3, 4), 0.3 * open_unit(4), positive(3, 1)), (positive(5), 0.1, 2.0)],
    "gamma": [(positive(3, 4), positive(4) + 1, 0.3 * open_unit(3, 1), positive(1, 4)), (positive(5), 2.5)],
    "chi2": [(positive(3, 4), above_one(4), 0.3 * open_unit(3, 1), positive(1, 4)), (positive(5), 3.0)],
    "beta": [(0.1 + 0.8 * open_unit(3, 4), positive(4) + 0.5, positive(3, 1) + 0.5), (open_unit(5), 2.0, 3.0),
             (0.5 + open_unit(3), 1.5, 2.5, 0.4, 1.5)],
    "poisson": [(_counts(3, 4), positive(4)), (_counts(5), 2.5), (_counts(5) + 1, positive(5), 1)],
    "binom": [(_counts(3, 4), 8, open_unit(4)), (_counts(5), 6, 0.3)],
    "bernoulli": [(np.zeros((3, 4)), open_unit(4)), (np.array([0.0, 1.0, 1.0]), 0.3)],
    "multivariate_normal": [(randn(4, 3), randn(3), spd(3)), (randn(2, 4, 3), randn(3), positive(3)),
                            (randn(5, 2), randn(2), 1.5)],
    "dirichlet": [(_simplex(3, 5), positive(3) + 0.5), (_simplex(4), positive(4) + 0.5)],
}
STATS_METHODS = {"multivariate_normal": ("logpdf", "pdf"), "dirichlet": ("logpdf", "pdf"),
                 "poisson": ("logpmf", "pmf", "cdf", "logcdf", "sf", "logsf")}
STATS_METHODS["binom"] = STATS_METHODS["bernoulli"] = STATS_METHODS["poisson"]
CDFS = ("cdf", "logcdf", "sf", "logsf")
# Positions in the call of the shape parameters that the incomplete gamma and beta
# functions (the cdfs) are not differentiated in: refused, and checked as constants.
CDF_SHAPES = {"t": (1,), "gamma": (1,), "chi2": (1,), "beta": (1, 2)}
# The first argument differentiated: k is data, and so are binom's n and dirichlet's x
# (which must stay on the simplex).
FIRST = {"poisson": 1, "bernoulli": 1, "binom": 2, "dirichlet": 1}


def _groups():
    """(distribution, methods, input sets): densities with every parameter, then cdfs with
    their shape parameters constant; the first input set goes through every method, the
    others through the log density only."""
    out = []
    for dist, inputs in STATS_INPUTS.items():
        methods = STATS_METHODS.get(dist, ("logpdf", "pdf") + CDFS)
        densities = tuple(m for m in methods if m not in CDFS)
        cdfs = tuple(m for m in methods if m in CDFS)
        calls = [(m, 0) for m in densities] + [(densities[0], i) for i in range(1, len(inputs))]
        if dist in CDF_SHAPES:
            out += [(dist, tuple(calls), inputs), (dist, tuple((m, 0) for m in cdfs), inputs[:1])]
        else:
            out.append((dist, tuple(calls + [(m, 0) for m in cdfs]), inputs))
    return out


STATS_GROUPS = _groups()
STATS_IDS = [f"{d}-{calls[0][0]}" for d, calls, _ in STATS_GROUPS]


def _objective(dist, calls, inputs, tmp_path, fixed=()):
    """A module whose ``objective(g0, a0_0, a0_1, ..., g1, a1_0, ...)`` is
    ``sum_j np.sum(g_j * scipy.stats.<dist>.<method_j>(<input set of j>))`` (weighted),
    written to a file; the args of input set 0 at ``fixed`` positions are module constants."""
    params, terms = [], []
    for j, (method, i) in enumerate(calls):
        names = [f"A{k}" if i == 0 and k in fixed else f"a{j}_{k}" for k in range(len(inputs[i]))]
        params += [f"g{j}"] + [n for n in names if not n.startswith("A")]
        terms.append(f"np.sum(g{j} * scipy.stats.{dist}.{method}({', '.join(names)})) / {j + 1}")
    body = " +\n        ".join(terms)
    path = tmp_path / f"stats_{dist}_{calls[0][0]}_{len(fixed)}.py"
    path.write_text(f"import numpy as np\nimport scipy.stats\n\n\ndef objective({', '.join(params)}):\n"
                    f"    return ({body})\n")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for k in fixed:
        setattr(module, f"A{k}", inputs[0][k])
    return module.objective


def _bump(args, i, step):
    return args[:i] + (args[i] + step,) + args[i + 1:]


@pytest.mark.parametrize("dist, calls, inputs", STATS_GROUPS, ids=STATS_IDS)
def test_lowering(dist, calls, inputs, tmp_path):
    """Values against scipy's; gradient, tangent and Hessian-vector product of a weighted sum
    of every call against finite differences (one generated module for all the calls)."""
    import s2s
    from s2s.rules.registry import LOWERINGS
    rng = np.random.default_rng(len(calls))
    fixed = CDF_SHAPES.get(dist, ()) if calls[0][0] in CDFS else ()
    primals, wrt, every = [], [], []  # every: with the fixed args too
    for method, i in calls:
        qualname = f"scipy.stats.{dist}.{method}"
        args = inputs[i]
        want = primal(qualname)(*args)
        assert_close(LOWERINGS[qualname](*args), want, rtol=1e-9, atol=1e-12, what=f"{qualname} value")
        primals.append(float(rng.standard_normal()) if np.ndim(want) == 0 else rng.standard_normal(np.shape(want)))
        every.append(primals[-1])
        for k, a in enumerate(args):
            every.append(a)
            if i == 0 and k in fixed:
                continue
            if k >= FIRST.get(dist, 0) and isinstance(a, (float, np.ndarray)):
                wrt.append(len(primals))
            primals.append(a)
    if fixed:  # the incomplete gamma/beta functions have no rule in their shape parameters
        f = _objective(dist, calls, inputs, tmp_path)
        with pytest.raises(NoRule, match=f"scipy.stats.{dist}.[a-z]+ has no derivative"):
            s2s.grad(f, argnums=1 + fixed[0])(*every)
    f = _objective(dist, calls, inputs, tmp_path, fixed)
    primals, wrt = tuple(primals), tuple(wrt)
    what = f"scipy.stats.{dist}: {', '.join(m for m, _ in calls)}"
    grad = s2s.grad(f, argnums=wrt)
    for i, got in zip(wrt, grad(*primals)):
        assert_close(got, numerical_grad(f, primals, i), rtol=1e-5, atol=1e-6, what=f"{what} grad {i}")
    tangents = [_random_like(p, rng) if i in wrt else 0.0 * np.asarray(p) for i, p in enumerate(primals)]
    _, got = s2s.jvp(f, primals, tangents)
    step = [np.asarray(t) * EPS if i in wrt else 0.0 for i, t in enumerate(tangents)]
    ahead = f(*(p + s for p, s in zip(primals, step)))
    behind = f(*(p - s for p, s in zip(primals, step)))
    assert_close(got, (ahead - behind) / (2 * EPS), rtol=1e-5, atol=1e-6, what=f"{what} jvp")
    last = max(i for i in wrt if i < 1 + len(inputs[0]))  # input set 0's scale or shape parameter
    v = tangents[last]
    got = s2s.hvp(f, argnums=last)(*primals, v)
    at = wrt.index(last)
    want = (grad(*_bump(primals, last, EPS * v))[at] - grad(*_bump(primals, last, -EPS * v))[at]) / (2 * EPS)
    assert_close(got, want, rtol=1e-4, atol=1e-6, what=f"{what} hvp {last}")


def test_every_lowering_has_a_case():
    from s2s.rules.registry import LOWERINGS
    checked = {f"scipy.stats.{d}.{m}" for d, calls, _ in STATS_GROUPS for m, _ in calls}
    checked |= {q for calls, *_ in LINALG_CALLS for q in calls}
    assert not set(LOWERINGS) - checked, f"lowerings without a case: {sorted(set(LOWERINGS) - checked)}"


# --- lowerings of scipy.linalg and numpy.linalg: through the calls a user writes ----------

def _module(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text("import numpy as np\nimport scipy.linalg\nimport scipy.signal\n"
                    "from scipy.linalg import cho_factor, cho_solve\n\n\n"
                    + text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WITH_NANS = randn(3, 4)
WITH_NANS[[0, 2], [1, 3]] = np.nan

# (the lowered functions it calls, the body of f(a, b), a, b): f is checked, and g * f is.
LINALG_CALLS = [
    (["scipy.linalg.solve"], "return scipy.linalg.solve(a, b)", well_conditioned(3), randn(3, 2)),
    (["scipy.linalg.solve"], "return scipy.linalg.solve(a, b, assume_a='pos', lower=True)", spd(3), randn(3)),
    (["scipy.linalg.solve"], "return scipy.linalg.solve(a, b, assume_a='sym', transposed=True)",
     well_conditioned(3), randn(3, 2)),
    (["scipy.linalg.cholesky"], "return scipy.linalg.cholesky(a) @ b", spd(3), randn(3, 2)),
    (["scipy.linalg.cholesky"], "return scipy.linalg.cholesky(a, lower=True) * b", spd(3), randn(3, 3)),
    (["scipy.linalg.cho_factor", "scipy.linalg.cho_solve"], "return cho_solve(cho_factor(a), b)", spd(3),
     randn(3, 2)),
    (["scipy.linalg.cho_factor", "scipy.linalg.cho_solve"],
     "c, low = cho_factor(a, lower=True)\n    return cho_solve((c, low), b) * np.sum(np.log(np.diag(c)))",
     spd(3), randn(3)),
    (["scipy.linalg.solve_triangular"], "return scipy.linalg.solve_triangular(a, b)", well_conditioned(3),
     randn(3, 2)),
    (["scipy.linalg.solve_triangular"],
     "return scipy.linalg.solve_triangular(a, b, trans='T', lower=True, unit_diagonal=True)",
     well_conditioned(3), randn(3)),
    (["scipy.linalg.eigh"], "w, v = scipy.linalg.eigh(a)\n    return w * b + v[0] ** 2", symmetric(3), randn(3)),
    (["scipy.linalg.eigh"], "w, v = scipy.linalg.eigh(a, driver='evd')\n    return v @ b", symmetric(3), randn(3)),
    (["scipy.linalg.eigh"], "return scipy.linalg.eigh(a, lower=False, eigvals_only=True) * b", symmetric(3),
     randn(3)),
    (["numpy.linalg.matrix_power"], "return np.linalg.matrix_power(a, 3) @ b", randn(3, 3) / 2, randn(3)),
    (["numpy.linalg.matrix_power"], "return np.linalg.matrix_power(a, -2) @ b + np.linalg.matrix_power(a, 0)",
     well_conditioned(3), randn(3, 3)),
    (["numpy.linalg.lstsq"], "x, residuals, rank, s = np.linalg.lstsq(a, b)\n"
                             "    return x * np.sum(residuals) + np.sum(s) * rank", randn(5, 3), randn(5, 2)),
    (["numpy.linalg.lstsq"], "return np.linalg.lstsq(a, b)[0]", randn(3, 3) + 3 * np.eye(3), randn(3)),
    (["numpy.nansum", "numpy.nanmean"], "return np.nansum(a, axis=0) * b + np.nanmean(a, axis=1, keepdims=True)",
     WITH_NANS, randn(4)),
    (["numpy.nanmax", "numpy.nanmin", "numpy.nanprod"],
     "return np.nanmax(a, axis=1, keepdims=True) * b + np.nanmin(a) + np.nanprod(a, axis=0)", WITH_NANS,
     randn(4)),
    (["numpy.nanvar", "numpy.nanstd"], "return np.nanvar(a, axis=0, ddof=1) * b + np.nanstd(a)", WITH_NANS, randn(4)),
    (["numpy.nancumsum", "numpy.nancumprod"], "return np.nancumsum(a, axis=1) * b + np.nancumprod(a)[4]",
     WITH_NANS, randn(4)),
    (["scipy.linalg.inv"], "return scipy.linalg.inv(a) @ b", well_conditioned(3), randn(3)),
    (["scipy.linalg.inv"], "return scipy.linalg.inv(a, assume_a='pos', lower=True) @ b + "
                           "scipy.linalg.inv(a, assume_a='upper triangular')", spd(3), randn(3, 3)),
    (["scipy.linalg.det", "scipy.linalg.norm"],
     "return scipy.linalg.det(a) * b + scipy.linalg.norm(a, axis=0) + scipy.linalg.norm(a, 'fro')",
     well_conditioned(3), randn(3)),
    (["scipy.linalg.pinv"], "p, rank = scipy.linalg.pinv(a, rtol=1e-8, return_rank=True)\n"
                            "    return scipy.linalg.pinv(a) @ b * rank + p[:, 0]", randn(4, 3), randn(4)),
    (["scipy.linalg.svd", "scipy.linalg.svdvals"], "u, s, vh = scipy.linalg.svd(a)\n"
                                                   "    return u * s + vh @ b + scipy.linalg.svdvals(a)",
     distinct(3, 3) / 3, randn(3, 3)),
    (["scipy.linalg.svd"], "u, s, vh = scipy.linalg.svd(a, full_matrices=False, check_finite=False)\n"
                           "    return u @ b + scipy.linalg.svd(a, compute_uv=False)[0]", distinct(4, 3) / 4, randn(3)),
    (["scipy.linalg.qr"], "q, r = scipy.linalg.qr(a, check_finite=False)\n    return q @ b + r",
     well_conditioned(3), randn(3)),
    (["scipy.linalg.qr"], "q, r = scipy.linalg.qr(a, mode='economic')\n"
                          "    return q @ b + scipy.linalg.qr(a, mode='r')[0][:, 0]", randn(4, 3) + np.eye(4, 3) * 3,
     randn(3)),
    (["scipy.linalg.lu_solve"], "lu, piv = scipy.linalg.lu_factor(a)\n    return scipy.linalg.lu_solve((lu, piv), b) "
                                "+ scipy.linalg.lu_solve((lu, piv), b, trans=1) * np.prod(np.diag(lu))",
     randn(4, 4), randn(4, 2)),
    (["scipy.linalg.lu"], "p, l, u = scipy.linalg.lu(a)\n    rows, l2, u2 = scipy.linalg.lu(a, p_indices=True)\n"
                          "    pl, u3 = scipy.linalg.lu(a, permute_l=True)\n"
                          "    return p @ l @ b + l2[rows] @ u2 @ b + pl[1] ** 2 + u3[0]", randn(3, 3), randn(3)),
    (["scipy.linalg.eigvalsh"], "return scipy.linalg.eigvalsh(a, lower=False) * b", symmetric(3), randn(3)),
    (["scipy.linalg.lstsq"], "x, residues, rank, s = scipy.linalg.lstsq(a, b)\n"
                             "    return x * residues + np.sum(s) * rank", randn(5, 3), randn(5)),
    (["numpy.correlate"], "return np.correlate(a, b, 'same') + np.correlate(b, a)[0]", randn(6), randn(3)),
    (["scipy.signal.correlate"], "return scipy.signal.correlate(a, b, 'valid')", randn(5, 4), randn(2, 3)),
]
HVP_PENDING: dict = {}  # lowering -> helper whose second derivative is refused (none today)
LINALG_IDS = [f"{calls[0]}-{i}" for i, (calls, *_) in enumerate(LINALG_CALLS)]


@pytest.mark.parametrize("calls, body, a, b", LINALG_CALLS, ids=LINALG_IDS)
def test_linalg_lowering(calls, body, a, b, tmp_path):
    """Value against scipy's, then gradient, tangent and a Hessian-vector product of
    ``sum(g * f(a, b))`` against finite differences."""
    import s2s
    module = _module(tmp_path, "lowered", f"def f(a, b):\n    {body}\n\n\ndef objective(g, a, b):\n"
                                          "    return np.sum(g * f(a, b))\n")
    f = module.objective
    value = module.f(a, b)
    rng = np.random.default_rng(3)
    g = rng.standard_normal(np.shape(value))
    primals = (g, a, b)
    value, grads = s2s.value_and_grad(f, argnums=(1, 2))(*primals)
    assert_close(value, f(*primals), rtol=1e-10, atol=1e-12, what=f"{calls} value")
    for i, got in zip((1, 2), grads):
        assert_close(got, numerical_grad(f, primals, i), rtol=1e-5, atol=1e-6, what=f"{calls} grad {i}")
    tangents = (0.0 * g, rng.standard_normal(np.shape(a)), rng.standard_normal(np.shape(b)))
    _, got = s2s.jvp(f, primals, tangents)
    ahead = f(*(p + EPS * t for p, t in zip(primals, tangents)))
    behind = f(*(p - EPS * t for p, t in zip(primals, tangents)))
    assert_close(got, (ahead - behind) / (2 * EPS), rtol=1e-5, atol=1e-6, what=f"{calls} jvp")
    v = tangents[1]
    pending = HVP_PENDING.get(LINALG_IDS[[c[1] for c in LINALG_CALLS].index(body)])
    if pending:  # refused, not wrong; when this fails, the second derivative works: check it
        with pytest.raises(NoRule, match=f"s2s.helpers.{pending}"):
            s2s.hvp(f, argnums=1)(*primals, v)
        return
    got = s2s.hvp(f, argnums=1)(*primals, v)
    grad_a = s2s.grad(f, argnums=1)
    want = (grad_a(g, a + EPS * v, b) - grad_a(g, a - EPS * v, b)) / (2 * EPS)
    assert_close(got, want, rtol=1e-4, atol=1e-6, what=f"{calls} hvp")


@pytest.mark.parametrize("body, message", [
    ("scipy.linalg.svd(a, lapack_driver='gesvd')[1]", "scipy.linalg.svd: lapack_driver='gesvd' has no rule"),
    ("scipy.linalg.qr(a, pivoting=True)[1]", "scipy.linalg.qr: pivoting=True has no rule"),
    ("scipy.linalg.qr(a, mode='raw')[1]", "scipy.linalg.qr: mode='raw' has no rule"),
    ("scipy.linalg.pinv(a, atol=1e-3)", "scipy.linalg.pinv: atol= has no rule"),
    ("scipy.linalg.inv(a, assume_a='banded')", "scipy.linalg.inv: assume_a='banded' has no rule"),
    ("scipy.linalg.eigvalsh(a, subset_by_index=[0, 1])", "subset_by_index= and subset_by_value= have no rule"),
])
def test_scipy_linalg_options_without_a_rule_are_refused(body, message, tmp_path):
    import s2s
    module = _module(tmp_path, "refused", f"def f(a):\n    return np.sum({body})\n")
    with pytest.raises(NoRule, match=re.escape(message)):
        s2s.grad(module.f)(well_conditioned(3))


def test_full_factors_of_a_rectangular_matrix_are_refused_when_run(tmp_path):
    """scipy's default full_matrices=True / mode='full' give factors whose extra columns are
    not unique: square matrices are differentiated, others refused with a ValueError."""
    import s2s
    module = _module(tmp_path, "full", "def f(a):\n    return np.sum(scipy.linalg.svd(a)[0])\n\n\n"
                                       "def h(a):\n    return np.sum(scipy.linalg.qr(a)[0])\n\n\n"
                                       "def k(a):\n    return np.sum(scipy.linalg.lu_factor(a)[0])\n")
    for fn, message in ((module.f, "full_matrices=False"), (module.h, "mode='economic'"),
                        (module.k, "for one square matrix")):
        with pytest.raises(ValueError, match=message):
            s2s.grad(fn)(randn(4, 3))


def test_einsum_ellipsis_second_derivative_is_refused(tmp_path):
    """np.einsum with '...' has a VJP (a helper that spells the ellipsis out at run time) that
    forward mode does not differentiate again: a Hessian through it is refused, not wrong."""
    import s2s
    module = _module(tmp_path, "ellipsis", "def f(a, b):\n    return np.sum(np.einsum('...ij,...jk->...ik', a, b) ** 2)\n")
    a, b = randn(2, 3, 4), randn(4, 2)
    assert_close(s2s.grad(module.f)(a, b), numerical_grad(module.f, (a, b), 0))
    with pytest.raises(NoRule, match="einsum_vjp"):
        s2s.hvp(module.f)(a, b, randn(2, 3, 4))
