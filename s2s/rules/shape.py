"""Shape: views and rearrangements whose adjoint undoes them.

Subscripting (``x[idx]``) is the engine's, not a rule. Functions that join
several arrays take them as one tuple (``arrays``), and their VJP returns a
tuple of adjoints; functions that return several arrays (``split``) get ``g``
as a tuple.
"""
from .registry import DYNAMIC, jvp, method, nondifferentiable, vjp


def _back(g="g"):
    return f"np.reshape({g}, np.shape(a))"


# Transposes.

@vjp("ndarray.T", "a")
def transpose_attr_vjp():
    return {"a": "np.transpose(g)"}


@jvp("ndarray.T")
def transpose_attr_jvp():
    return {"a": "np.transpose(da)"}


def _inverse_axes(axes):
    """Template text: g transposed by the inverse of the permutation ``axes``."""
    if axes is None or axes == ():
        return "np.transpose(g)"
    if axes is not DYNAMIC and all(ax >= 0 for ax in axes):
        return f"np.transpose(g, {tuple(sorted(range(len(axes)), key=axes.__getitem__))})"
    return "np.transpose(g, np.argsort(np.mod(axes, np.ndim(a))))"


@vjp("numpy.transpose", "a, axes=None", differentiable="a")
def transpose_vjp(axes):
    return {"a": _inverse_axes(axes)}


@jvp("numpy.transpose")
def transpose_jvp():
    return {"a": "np.transpose(da, axes)"}


@vjp("ndarray.transpose", "a, *axes", differentiable="a")
def transpose_method_vjp(axes):
    # x.transpose(1, 0) and x.transpose((1, 0)) mean the same.
    if axes is DYNAMIC:
        return {"a": "np.transpose(g, np.argsort(np.mod(np.ravel(axes), np.ndim(a))))"}
    return {"a": _inverse_axes(axes[0] if len(axes) == 1 else axes)}


@jvp("ndarray.transpose")
def transpose_method_jvp():
    return {"a": "da.transpose(*axes)"}


@vjp("numpy.permute_dims", "a, axes=None", differentiable="a")
def permute_dims_vjp(axes):
    return {"a": _inverse_axes(axes)}


@jvp("numpy.permute_dims")
def permute_dims_jvp():
    return {"a": "np.transpose(da, axes)"}


@vjp("numpy.matrix_transpose", "x", differentiable="x")
def matrix_transpose_vjp():
    return {"x": "np.swapaxes(g, -1, -2)"}


@jvp("numpy.matrix_transpose")
def matrix_transpose_jvp():
    return {"x": "np.swapaxes(dx, -1, -2)"}


@vjp("numpy.swapaxes", "a, axis1, axis2", differentiable="a")
def swapaxes_vjp():
    return {"a": "np.swapaxes(g, axis1, axis2)"}


@jvp("numpy.swapaxes")
def swapaxes_jvp():
    return {"a": "np.swapaxes(da, axis1, axis2)"}


@vjp("numpy.moveaxis", "a, source, destination", differentiable="a")
def moveaxis_vjp():
    return {"a": "np.moveaxis(g, destination, source)"}


@jvp("numpy.moveaxis")
def moveaxis_jvp():
    return {"a": "np.moveaxis(da, source, destination)"}


# Reshapes: the adjoint takes the input's shape back.

@vjp("numpy.reshape", "a, shape=None, order='C', *, copy=None", differentiable="a")
def reshape_vjp(order):
    return {"a": _back() if order == "C" else "np.reshape(g, np.shape(a), order=order)"}


@jvp("numpy.reshape")
def reshape_jvp(order):
    return {"a": "np.reshape(da, shape)" if order == "C" else "np.reshape(da, shape, order=order)"}


@vjp("ndarray.reshape", "a, *shape", differentiable="a")
def reshape_method_vjp():
    return {"a": _back()}


@jvp("ndarray.reshape")
def reshape_method_jvp():
    return {"a": "da.reshape(*shape)"}


@vjp("numpy.ravel", "a, order='C'", differentiable="a")
def ravel_vjp(order):
    return {"a": _back() if order == "C" else "np.reshape(g, np.shape(a), order=order)"}


@jvp("numpy.ravel")
def ravel_jvp(order):
    return {"a": "np.ravel(da)" if order == "C" else "np.ravel(da, order)"}


def _reshaping(qualname, params, forward):
    """Register a rule whose VJP reshapes g back to a's shape and whose JVP repeats the call."""

    def reshape_back():
        return {"a": _back()}

    def same_call():
        return {"a": forward}

    vjp(qualname, params, differentiable="a")(reshape_back)
    jvp(qualname)(same_call)


_reshaping("numpy.squeeze", "a, axis=None", "np.squeeze(da, axis)")
_reshaping("numpy.expand_dims", "a, axis", "np.expand_dims(da, axis)")
_reshaping("numpy.atleast_1d", "a", "np.atleast_1d(da)")
_reshaping("numpy.atleast_2d", "a", "np.atleast_2d(da)")
_reshaping("numpy.atleast_3d", "a", "np.atleast_3d(da)")
_reshaping("numpy.copy", "a, order='K'", "np.copy(da)")


@vjp("ndarray.astype", "a, dtype, order='K', casting='unsafe', subok=True, copy=True", differentiable="a")
def astype_vjp():
    # A cast to a dtype known not to be floating point is never active (see analyze); one
    # that is only known at run time has a zero adjoint there.
    return {"a": "astype_adjoint(g, a, dtype)"}


@jvp("ndarray.astype")
def astype_jvp():
    return {"a": "astype_tangent(da, dtype)"}


# Gathers: the adjoint adds g back where each element was read from (repeats add up).

@vjp("numpy.take", "a, indices, axis=None, out=None, mode=None", differentiable="a")
def take_vjp(mode):
    if mode not in (None, "raise"):
        raise NotImplementedError(f"np.take with mode={mode!r} has no rule; index in range instead")
    return {"a": "take_adjoint(g, a, indices, axis)"}


@jvp("numpy.take")
def take_jvp():
    return {"a": "np.take(da, indices, axis)"}


@vjp("numpy.take_along_axis", "arr, indices, axis=-1", differentiable="arr")
def take_along_axis_vjp():
    return {"arr": "take_along_axis_adjoint(g, arr, indices, axis)"}


@jvp("numpy.take_along_axis")
def take_along_axis_jvp():
    return {"arr": "np.take_along_axis(darr, indices, axis)"}


@vjp("numpy.broadcast_to", "array, shape", differentiable="array")
def broadcast_to_vjp():
    return {"array": "unbroadcast(g, np.shape(array))"}


@jvp("numpy.broadcast_to")
def broadcast_to_jvp():
    return {"array": "np.broadcast_to(darray, shape)"}


# Joining and splitting.

@vjp("numpy.concatenate", "arrays, axis=0", differentiable="arrays")
def concatenate_vjp():
    return {"arrays": "split_like(g, arrays, axis)"}


@jvp("numpy.concatenate")
def concatenate_jvp():
    return {"arrays": "np.concatenate(darrays, axis)"}


@vjp("numpy.concat", "arrays, /, *, axis=0", differentiable="arrays")
def concat_vjp():
    return {"arrays": "split_like(g, arrays, axis)"}


@jvp("numpy.concat")
def concat_jvp():
    return {"arrays": "np.concatenate(darrays, axis)"}


@vjp("numpy.stack", "arrays, axis=0", differentiable="arrays")
def stack_vjp():
    return {"arrays": "unstack(g, axis)"}


@jvp("numpy.stack")
def stack_jvp():
    return {"arrays": "np.stack(darrays, axis)"}


@vjp("numpy.hstack", "tup", differentiable="tup")
def hstack_vjp():
    return {"tup": "split_like(g, tup, 1 if np.ndim(g) > 1 else 0)"}


@jvp("numpy.hstack")
def hstack_jvp():
    return {"tup": "np.hstack(dtup)"}


@vjp("numpy.vstack", "tup", differentiable="tup")
def vstack_vjp():
    return {"tup": "split_like(g, tup, 0)"}


@jvp("numpy.vstack")
def vstack_jvp():
    return {"tup": "np.vstack(dtup)"}


def _pieces(indices_or_sections):
    """How many arrays a split returns, where its sections are constants."""
    if isinstance(indices_or_sections, int):
        return indices_or_sections
    if isinstance(indices_or_sections, (tuple, list)):
        return len(indices_or_sections) + 1
    return None


def _splitting(qualname, params, join, forward):
    """Register a multi-output split: g is a tuple, joined back by ``join``."""

    def join_back():
        return {"ary": join}

    def split_tangent():
        return {"ary": f"tuple({forward})"}

    vjp(qualname, params, differentiable="ary", outputs=_pieces)(join_back)
    jvp(qualname)(split_tangent)


_splitting("numpy.split", "ary, indices_or_sections, axis=0", "np.concatenate(g, axis)",
           "np.split(dary, indices_or_sections, axis)")
_splitting("numpy.array_split", "ary, indices_or_sections, axis=0", "np.concatenate(g, axis)",
           "np.array_split(dary, indices_or_sections, axis)")
_splitting("numpy.hsplit", "ary, indices_or_sections", "np.hstack(g)", "np.hsplit(dary, indices_or_sections)")
_splitting("numpy.vsplit", "ary, indices_or_sections", "np.vstack(g)", "np.vsplit(dary, indices_or_sections)")


# Repetition, padding and reordering.

@vjp("numpy.tile", "A, reps", differentiable="A")
def tile_vjp():
    return {"A": "untile(g, np.shape(A), reps)"}


@jvp("numpy.tile")
def tile_jvp():
    return {"A": "np.tile(dA, reps)"}


@vjp("numpy.repeat", "a, repeats, axis=None", differentiable="a")
def repeat_vjp():
    return {"a": "unrepeat(g, np.shape(a), repeats, axis)"}


@jvp("numpy.repeat")
def repeat_jvp():
    return {"a": "np.repeat(da, repeats, axis)"}


COPYING_PADS = ("edge", "reflect", "symmetric", "wrap")  # every padded element copies one of the array's


def _pad_mode(mode, kwargs):
    if mode not in ("constant",) + COPYING_PADS:
        raise NotImplementedError(f"np.pad with mode={mode!r} has no rule; the constant, edge, reflect, "
                                  "symmetric and wrap modes have one")
    if mode != "constant" and kwargs:
        raise NotImplementedError(f"np.pad(mode={mode!r}) with {', '.join(kwargs)}= has no rule")


@vjp("numpy.pad", "array, pad_width, mode='constant', **kwargs", differentiable="array")
def pad_vjp(mode, kwargs):
    _pad_mode(mode, kwargs)
    if mode == "constant":
        return {"array": "unpad(g, pad_width)"}
    return {"array": "pad_adjoint(g, np.shape(array), pad_width, mode)"}


@jvp("numpy.pad")
def pad_jvp(mode, kwargs):
    _pad_mode(mode, kwargs)
    if mode == "constant":
        return {"array": "np.pad(darray, pad_width)"}
    return {"array": "np.pad(darray, pad_width, mode)"}


@vjp("numpy.diff", "a, n=1, axis=-1, prepend=None, append=None", differentiable="a")
def diff_vjp(prepend, append):
    if prepend is not None or append is not None:
        raise NotImplementedError("np.diff with prepend= or append= has no rule; concatenate first")
    return {"a": "undiff(g, n, axis)"}


@jvp("numpy.diff")
def diff_jvp():
    return {"a": "np.diff(da, n, axis)"}


@vjp("numpy.flip", "m, axis=None", differentiable="m")
def flip_vjp():
    return {"m": "np.flip(g, axis)"}


@jvp("numpy.flip")
def flip_jvp():
    return {"m": "np.flip(dm, axis)"}


@vjp("numpy.fliplr", "m")
def fliplr_vjp():
    return {"m": "np.fliplr(g)"}


@jvp("numpy.fliplr")
def fliplr_jvp():
    return {"m": "np.fliplr(dm)"}


@vjp("numpy.flipud", "m")
def flipud_vjp():
    return {"m": "np.flipud(g)"}


@jvp("numpy.flipud")
def flipud_jvp():
    return {"m": "np.flipud(dm)"}


@vjp("numpy.rot90", "m, k=1, axes=(0, 1)", differentiable="m")
def rot90_vjp():
    return {"m": "np.rot90(g, -k, axes)"}


@jvp("numpy.rot90")
def rot90_jvp():
    return {"m": "np.rot90(dm, k, axes)"}


@vjp("numpy.roll", "a, shift, axis=None", differentiable="a")
def roll_vjp(shift):
    if isinstance(shift, int):
        return {"a": "np.roll(g, -shift, axis)"}
    if isinstance(shift, tuple):
        return {"a": f"np.roll(g, {tuple(-s for s in shift)}, axis)"}
    return {"a": "np.roll(g, np.negative(shift), axis)"}


@jvp("numpy.roll")
def roll_jvp():
    return {"a": "np.roll(da, shift, axis)"}


@vjp("numpy.sort", "a, axis=-1, kind=None, order=None", differentiable="a")
def sort_vjp():
    return {"a": "sort_adjoint(g, a, axis)"}


@jvp("numpy.sort")
def sort_jvp():
    return {"a": "sort_tangent(da, a, axis)"}


@vjp("numpy.triu", "m, k=0", differentiable="m")
def triu_vjp():
    return {"m": "np.triu(g, k)"}


@jvp("numpy.triu")
def triu_jvp():
    return {"m": "np.triu(dm, k)"}


@vjp("numpy.tril", "m, k=0", differentiable="m")
def tril_vjp():
    return {"m": "np.tril(g, k)"}


@jvp("numpy.tril")
def tril_jvp():
    return {"m": "np.tril(dm, k)"}


# Constants: shapes and new arrays that depend on no input value.
nondifferentiable(
    "numpy.shape", "numpy.ndim", "numpy.size", "numpy.zeros_like", "numpy.ones_like",
    "numpy.empty_like", "numpy.zeros", "numpy.ones", "numpy.empty", "numpy.eye", "numpy.identity",
    "numpy.arange", "numpy.tri", "numpy.indices", "numpy.unravel_index", "numpy.ravel_multi_index",
)

# x.name(...) means numpy.name(x, ...); x.reshape and x.transpose have their own rules.
for _name in ("sum", "mean", "prod", "max", "min", "var", "std", "cumsum", "cumprod", "dot",
              "ravel", "squeeze", "swapaxes", "clip", "trace", "diagonal", "repeat", "copy",
              "conj", "conjugate", "round", "argmax", "argmin", "argsort", "nonzero", "all", "any"):
    method(_name, "numpy." + _name)
method("flatten", "numpy.ravel")


# Arrays made from arrays: the value itself (a list of values is stacked by the normalizer).

def _array_of(qualname, param):
    def array_vjp(dtype):
        return {param: "g" if dtype is None else f"astype_adjoint(g, {param}, dtype)"}

    def array_jvp(dtype):
        return {param: f"np.array(d{param})" if dtype is None else f"astype_tangent(d{param}, dtype)"}

    vjp(qualname, f"{param}, dtype=None", differentiable=param)(array_vjp)
    jvp(qualname)(array_jvp)


_array_of("numpy.array", "object")
_array_of("numpy.asarray", "a")
