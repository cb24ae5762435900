"""Reductions: sum, mean, max and friends, with ``axis`` and ``keepdims``."""
from .registry import DYNAMIC, jvp, nondifferentiable, vjp

REDUCE = "a, axis=None, dtype=None, out=None, keepdims=False"


def expand(g, axis, keepdims):
    """Template text that restores the reduced axes of ``g`` (a template)."""
    if axis is None or keepdims is True:
        return g
    if axis is DYNAMIC or keepdims is DYNAMIC:
        return None
    return f"np.expand_dims({g}, axis)"


def spread(g, axis, keepdims):
    """Template text: ``g`` broadcast back to the shape of ``a``."""
    expanded = expand(g, axis, keepdims)
    if expanded is None:
        return f"expand_reduced({g}, np.shape(a), axis, keepdims)"
    return f"np.broadcast_to({expanded}, np.shape(a))"


@vjp("numpy.sum", REDUCE, differentiable="a")
def sum_vjp(axis, keepdims):
    return {"a": spread("g", axis, keepdims)}


@jvp("numpy.sum")
def sum_jvp():
    return {"a": "np.sum(da, axis=axis, keepdims=keepdims)"}


@vjp("numpy.mean", REDUCE, differentiable="a")
def mean_vjp(axis, keepdims):
    return {"a": spread("g", axis, keepdims) + " / reduced_count(np.shape(a), axis)"}


@jvp("numpy.mean")
def mean_jvp():
    return {"a": "np.mean(da, axis=axis, keepdims=keepdims)"}


def _extremum_vjp(axis, keepdims):
    # The adjoint is shared equally between tied extrema, as in autograd and JAX.
    ans = expand("ans", axis, keepdims)
    if ans is None:
        mask = "a == expand_reduced(ans, np.shape(a), axis, keepdims)"
    else:
        mask = f"a == {ans}"
    count = "np.sum(mask, axis=axis, keepdims=True)"
    return {"a": f"{spread('g', axis, keepdims)} * ({mask}) / " + count.replace("mask", mask)}


vjp("numpy.max", "a, axis=None, out=None, keepdims=False", differentiable="a")(_extremum_vjp)
vjp("numpy.min", "a, axis=None, out=None, keepdims=False", differentiable="a")(_extremum_vjp)

nondifferentiable("numpy.argmax", "numpy.argmin", "numpy.argsort")
