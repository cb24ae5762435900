"""numpy.linalg: inverses, solves, determinants, factorizations and norms.

Every rule works on stacks of matrices (the last two axes). cholesky, eigh and
eigvalsh read one triangle of their input only, so their adjoints live in that
triangle (see ``symmetric_input_adjoint``).
"""
from .reductions import kept
from .registry import DYNAMIC, jvp, vjp

T = "np.swapaxes({}, -1, -2)"  # matrix transpose of a stack


@vjp("numpy.linalg.inv", "a")
def inv_vjp(ndim):
    if ndim.get("a") == 2:
        return {"a": "-ans.T @ g @ ans.T"}
    return {"a": f"-{T.format('ans')} @ g @ {T.format('ans')}"}


@jvp("numpy.linalg.inv")
def inv_jvp():
    return {"a": "-ans @ da @ ans"}


@vjp("numpy.linalg.solve", "a, b")
def solve_vjp(ndim):
    ranks = (ndim.get("a"), ndim.get("b"))
    if ranks == (2, 1):
        return {"a": "-np.outer(np.linalg.solve(a.T, g), ans)", "b": "np.linalg.solve(a.T, g)"}
    if ranks == (2, 2):
        return {"a": "-np.linalg.solve(a.T, g) @ ans.T", "b": "np.linalg.solve(a.T, g)"}
    return {"a": "solve_vjp_a(g, a, b, ans)", "b": "solve_vjp_b(g, a, b)"}


@jvp("numpy.linalg.solve")
def solve_jvp():
    return {"a": "solve_jvp_a(da, a, b, ans)", "b": "np.linalg.solve(a, db)"}


@vjp("numpy.linalg.det", "a")
def det_vjp(ndim):
    if ndim.get("a") == 2:
        return {"a": "g * ans * np.linalg.inv(a).T"}
    return {"a": f"np.expand_dims(g * ans, (-2, -1)) * {T.format('np.linalg.inv(a)')}"}


@jvp("numpy.linalg.det")
def det_jvp():
    return {"a": "ans * np.trace(np.linalg.solve(a, da), axis1=-2, axis2=-1)"}


@vjp("numpy.linalg.slogdet", "a")
def slogdet_vjp(ndim):
    # ans = (sign, logabsdet); the sign is piecewise constant.
    if ndim.get("a") == 2:
        return {"a": "g[1] * np.linalg.inv(a).T"}
    return {"a": f"np.expand_dims(g[1], (-2, -1)) * {T.format('np.linalg.inv(a)')}"}


@jvp("numpy.linalg.slogdet")
def slogdet_jvp():
    return {"a": "(np.zeros_like(ans[0]), np.trace(np.linalg.solve(a, da), axis1=-2, axis2=-1))"}


@vjp("numpy.linalg.cholesky", "a, *, upper=False", differentiable="a")
def cholesky_vjp(upper):
    if upper is not False:
        raise NotImplementedError("np.linalg.cholesky(upper=True) has no rule; transpose the lower factor")
    return {"a": "cholesky_vjp(g, ans)"}


@jvp("numpy.linalg.cholesky")
def cholesky_jvp(upper):
    if upper is not False:
        raise NotImplementedError("np.linalg.cholesky(upper=True) has no rule; transpose the lower factor")
    return {"a": "cholesky_jvp(da, ans)"}


@vjp("numpy.linalg.eigh", "a, UPLO='L'", differentiable="a")
def eigh_vjp():
    # ans = (w, v), g = (dw, dv); eigenvalues must be distinct where v is used.
    return {"a": "eigh_vjp(g, ans, UPLO)"}


@jvp("numpy.linalg.eigh")
def eigh_jvp():
    return {"a": "eigh_jvp(da, ans, UPLO)"}


@vjp("numpy.linalg.eigvalsh", "a, UPLO='L'", differentiable="a")
def eigvalsh_vjp():
    return {"a": "eigvalsh_vjp(g, a, UPLO)"}


@jvp("numpy.linalg.eigvalsh")
def eigvalsh_jvp():
    return {"a": "eigvalsh_jvp(da, a, UPLO)"}


def _norm_partial(ord, axis, keepdims, ndim):
    """Template text of d norm / d x (the shape of x); plain for the 2- and Frobenius norms,
    the vector, matrix or singular-value helper where the number of reduced axes is known."""
    full = kept("ans", axis, keepdims, like="x")
    if ord is None or ord == "fro":
        return f"x / {full}"
    if axis is None:
        count = ndim.get("x")
    else:
        count = None if axis is DYNAMIC else len(axis) if isinstance(axis, tuple) else 1
    if ord is DYNAMIC or count is None:
        return "norm_partial(x, ord, axis, keepdims, ans)"
    if count == 1:
        return f"vector_norm_partial(x, ord, axis, {full})"
    if ord in ("nuc", 2, -2):
        return "spectral_norm_partial(x, ord, axis)"
    return f"matrix_norm_partial(x, ord, axis, {full})"


@vjp("numpy.linalg.norm", "x, ord=None, axis=None, keepdims=False", differentiable="x")
def norm_vjp(ord, axis, keepdims, ndim):
    return {"x": f"{kept('g', axis, keepdims, like='x')} * {_norm_partial(ord, axis, keepdims, ndim)}"}


@jvp("numpy.linalg.norm")
def norm_jvp(ord, axis, keepdims, ndim):
    return {"x": f"np.sum(dx * {_norm_partial(ord, axis, keepdims, ndim)}, axis=axis, keepdims=keepdims)"}
