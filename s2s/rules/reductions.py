"""Reductions: sum, mean, max and friends, with ``axis`` and ``keepdims``.

Templates restore the reduced axes with ``np.expand_dims`` when ``axis`` and
``keepdims`` are constants at the call site, and with the ``expand_reduced``
helper when they are only known at run time (``DYNAMIC``).
"""
from .registry import DYNAMIC, jvp, nondifferentiable, vjp

REDUCE = "a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True"
EXTREMUM = "a, axis=None, out=None, keepdims=False, initial=None, where=True"
MOMENT = "a, axis=None, dtype=None, out=None, ddof=0, keepdims=False"
CUMULATE = "a, axis=None, dtype=None, out=None"


def expand(g, axis, keepdims):
    """Template text that restores the reduced axes of ``g`` (a template), or None
    when that is decided at run time."""
    if axis is None or keepdims is True:
        return g
    if axis is DYNAMIC or keepdims is DYNAMIC:
        return None
    return f"np.expand_dims({g}, axis)"


def kept(g, axis, keepdims, like="a"):
    """Template text: ``g`` with the reduced axes of ``like`` back as 1-axes (broadcastable)."""
    expanded = expand(g, axis, keepdims)
    if expanded is None:
        return f"expand_reduced({g}, np.shape({like}), axis, keepdims)"
    return expanded


def spread(g, axis, keepdims, like="a"):
    """Template text: ``g`` broadcast back to the shape of ``like``."""
    expanded = expand(g, axis, keepdims)
    if expanded is None:
        return f"expand_reduced({g}, np.shape({like}), axis, keepdims)"
    return f"np.broadcast_to({expanded}, np.shape({like}))"


def count(axis, like="a"):
    """Template text: how many elements the reduction combines."""
    if axis is None:
        return f"np.size({like})"
    if isinstance(axis, int):
        return f"np.shape({like})[axis]"
    return f"reduced_count(np.shape({like}), axis)"


def _plain(where, initial=None, name=""):
    if where is not True or initial is not None:
        raise NotImplementedError(f"{name} with where= or initial= has no rule; "
                                  "mask the input with np.where before reducing")


@vjp("numpy.sum", REDUCE, differentiable="a")
def sum_vjp(axis, keepdims, where):
    _plain(where, name="np.sum")  # initial= adds a constant: no effect on the derivative
    return {"a": spread("g", axis, keepdims)}


@jvp("numpy.sum")
def sum_jvp():
    return {"a": "np.sum(da, axis=axis, keepdims=keepdims)"}


@vjp("numpy.mean", "a, axis=None, dtype=None, out=None, keepdims=False, *, where=True",
     differentiable="a")
def mean_vjp(axis, keepdims, where):
    _plain(where, name="np.mean")
    return {"a": spread(f"g / {count(axis)}", axis, keepdims)}  # divide the small side


@jvp("numpy.mean")
def mean_jvp():
    return {"a": "np.mean(da, axis=axis, keepdims=keepdims)"}


@vjp("numpy.prod", REDUCE, differentiable="a")
def prod_vjp(axis, keepdims, initial, where):
    # prod_of_others, not ans / a: exact where a has zeros.
    _plain(where, initial, "np.prod")
    return {"a": f"{kept('g', axis, keepdims)} * prod_of_others(a, axis)"}


@jvp("numpy.prod")
def prod_jvp(initial, where):
    _plain(where, initial, "np.prod")
    return {"a": "np.sum(da * prod_of_others(a, axis), axis=axis, keepdims=keepdims)"}


def _extremum_mask(axis, keepdims):
    # Ties share the adjoint equally, as in autograd and JAX.
    return f"a == {kept('ans', axis, keepdims)}"


def extremum_vjp(axis, keepdims, initial, where):
    _plain(where, initial, "np.max/np.min")
    mask = _extremum_mask(axis, keepdims)
    ties = f"np.sum({mask})" if axis is None else f"np.sum({mask}, axis=axis, keepdims=True)"
    return {"a": f"{kept('g', axis, keepdims)} * ({mask}) / {ties}"}


def extremum_jvp(axis, keepdims, initial, where):
    _plain(where, initial, "np.max/np.min")
    mask = _extremum_mask(axis, keepdims)
    return {"a": f"np.sum(da * ({mask}), axis=axis, keepdims=keepdims)"
                 f" / np.sum({mask}, axis=axis, keepdims=keepdims)"}


for _name in ("numpy.max", "numpy.min", "numpy.amax", "numpy.amin"):
    vjp(_name, EXTREMUM, differentiable="a")(extremum_vjp)
    jvp(_name)(extremum_jvp)


def _centered(axis):
    mean = "np.mean(a)" if axis is None else "np.mean(a, axis=axis, keepdims=True)"
    return f"(a - {mean})"


def _dof(axis, ddof):
    return count(axis) if ddof == 0 else f"({count(axis)} - ddof)"


@vjp("numpy.var", MOMENT, differentiable="a")
def var_vjp(axis, keepdims, ddof):
    return {"a": f"2 * {kept('g', axis, keepdims)} * {_centered(axis)} / {_dof(axis, ddof)}"}


@jvp("numpy.var")
def var_jvp(axis, ddof):
    return {"a": f"2 * np.sum({_centered(axis)} * da, axis=axis, keepdims=keepdims) / {_dof(axis, ddof)}"}


@vjp("numpy.std", MOMENT, differentiable="a")
def std_vjp(axis, keepdims, ddof):
    return {"a": f"{kept('g', axis, keepdims)} * {_centered(axis)}"
                 f" / ({_dof(axis, ddof)} * {kept('ans', axis, keepdims)})"}


@jvp("numpy.std")
def std_jvp(axis, ddof):
    return {"a": f"np.sum({_centered(axis)} * da, axis=axis, keepdims=keepdims) / ({_dof(axis, ddof)} * ans)"}


@vjp("numpy.cumsum", CUMULATE, differentiable="a")
def cumsum_vjp(axis):
    if axis is None:  # cumsum ran over the flattened array
        return {"a": "np.reshape(np.flip(np.cumsum(np.flip(g))), np.shape(a))"}
    reverse_cumsum = "np.flip(np.cumsum(np.flip(g, axis), axis), axis)"
    return {"a": reverse_cumsum if axis is not DYNAMIC else f"np.reshape({reverse_cumsum}, np.shape(a))"}


@jvp("numpy.cumsum")
def cumsum_jvp():
    return {"a": "np.cumsum(da, axis=axis)"}


@vjp("numpy.cumprod", CUMULATE, differentiable="a")
def cumprod_vjp():
    return {"a": "cumprod_vjp(g, a, ans, axis)"}


@jvp("numpy.cumprod")
def cumprod_jvp():
    return {"a": "cumprod_jvp(da, a, ans, axis)"}


nondifferentiable(
    "numpy.argmax", "numpy.argmin", "numpy.argsort", "numpy.argwhere", "numpy.nonzero",
    "numpy.flatnonzero", "numpy.count_nonzero", "numpy.searchsorted", "numpy.all", "numpy.any",
)
