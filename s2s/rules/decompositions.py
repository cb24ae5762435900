"""numpy.linalg: inverses, solves, determinants, factorizations and norms.

Every rule works on stacks of matrices (the last two axes). cholesky, eigh and
eigvalsh read one triangle of their input only, so their adjoints live in that
triangle (see ``symmetric_input_adjoint``).
"""
from .reductions import kept
from .registry import DYNAMIC, jvp, nondifferentiable, vjp

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


@vjp("numpy.linalg.slogdet", "a", outputs=2)
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


@vjp("numpy.linalg.eigh", "a, UPLO='L'", differentiable="a", outputs=2)
def eigh_vjp():
    # ans = (w, v), g = (dw, dv); eigenvalues must be distinct where v is used.
    return {"a": "eigh_vjp(g, ans, UPLO)"}


@jvp("numpy.linalg.eigh")
def eigh_jvp():
    return {"a": "eigh_jvp(da, ans, UPLO)"}


def eigh_options(b, subset_by_index, subset_by_value):
    """Why a scipy.linalg.eigh/eigvalsh call has no rule, or None."""
    if b is not None:
        return "the generalized problem (b=) has no rule"
    if subset_by_index is not None or subset_by_value is not None:
        return "subset_by_index= and subset_by_value= have no rule; slice the result"
    return None


def _scipy_eigh(b, lower, eigvals_only, subset_by_index, subset_by_value, kind, seed):
    """Template of scipy.linalg.eigh: numpy's helpers, on scipy's own eigenvectors (whose
    signs its drivers choose otherwise than numpy's)."""
    reason = eigh_options(b, subset_by_index, subset_by_value)
    if reason or eigvals_only is DYNAMIC:
        raise NotImplementedError(f"scipy.linalg.eigh: {reason or 'eigvals_only= must be a constant'}")
    uplo = "'L' if lower else 'U'" if lower is DYNAMIC else repr("L" if lower else "U")
    if eigvals_only:
        return {"a": f"eigvalsh_{kind}({seed}, a, {uplo})"}
    return {"a": f"eigh_{kind}({seed}, ans, {uplo})"}


@vjp("scipy.linalg.eigh", "a, b=None, *, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False, "
     "type=1, check_finite=True, subset_by_index=None, subset_by_value=None, driver=None", differentiable="a",
     outputs=lambda eigvals_only: 2 if eigvals_only is False else None)
def scipy_eigh_vjp(b, lower, eigvals_only, subset_by_index, subset_by_value):
    return _scipy_eigh(b, lower, eigvals_only, subset_by_index, subset_by_value, "vjp", "g")


@jvp("scipy.linalg.eigh")
def scipy_eigh_jvp(b, lower, eigvals_only, subset_by_index, subset_by_value):
    return _scipy_eigh(b, lower, eigvals_only, subset_by_index, subset_by_value, "jvp", "da")


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


@vjp("numpy.linalg.pinv", "a, rcond=None, hermitian=False, *, rtol=None", differentiable="a")
def pinv_vjp():
    # Constant rank (full rank in practice): Golub and Pereyra's derivative.
    p = "(np.eye(np.shape(a)[-2]) - a @ ans)"
    q = "(np.eye(np.shape(a)[-1]) - ans @ a)"
    at = T.format("ans")
    return {"a": f"-{at} @ g @ {at} + {p} @ {T.format('g')} @ ans @ {at} + {at} @ ans @ {T.format('g')} @ {q}"}


@jvp("numpy.linalg.pinv")
def pinv_jvp():
    p = "(np.eye(np.shape(a)[-2]) - a @ ans)"
    q = "(np.eye(np.shape(a)[-1]) - ans @ a)"
    at = T.format("ans")
    return {"a": f"-ans @ da @ ans + ans @ {at} @ {T.format('da')} @ {p} + {q} @ {T.format('da')} @ {at} @ ans"}


def _reduced(full_matrices, compute_uv):
    if compute_uv is not True:
        raise NotImplementedError("np.linalg.svd has a rule with a constant compute_uv only")
    if full_matrices is not False:
        raise NotImplementedError("np.linalg.svd has a rule with full_matrices=False only (or compute_uv=False)")


@vjp("numpy.linalg.svd", "a, full_matrices=True, compute_uv=True, hermitian=False", differentiable="a",
     outputs=lambda compute_uv: None if compute_uv is DYNAMIC else 3 if compute_uv else None)
def svd_vjp(full_matrices, compute_uv):
    # Distinct, nonzero singular values where u or vh is used.
    if compute_uv is False:
        return {"a": "singular_values_vjp(g, a)"}
    _reduced(full_matrices, compute_uv)
    return {"a": "svd_vjp(g, a, ans)"}


@jvp("numpy.linalg.svd")
def svd_jvp(full_matrices, compute_uv):
    if compute_uv is False:
        return {"a": "singular_values_jvp(da, a)"}
    _reduced(full_matrices, compute_uv)
    return {"a": "svd_jvp(da, a, ans)"}


def _qr_mode(mode):
    if mode != "reduced":
        raise NotImplementedError(f"np.linalg.qr(mode={mode!r}) has no rule; the reduced mode has one")


@vjp("numpy.linalg.qr", "a, mode='reduced'", differentiable="a",
     outputs=lambda mode: 2 if mode in ("reduced", "complete") else None)
def qr_vjp(mode):
    # a square or tall, of full rank.
    _qr_mode(mode)
    return {"a": "qr_vjp(g, ans)"}


@jvp("numpy.linalg.qr")
def qr_jvp(mode):
    _qr_mode(mode)
    return {"a": "qr_jvp(da, ans)"}


@vjp("numpy.linalg.eig", "a", outputs=2)
def eig_vjp():
    # Real, distinct eigenvalues (then numpy returns real arrays).
    return {"a": "eig_vjp(g, ans)"}


@jvp("numpy.linalg.eig")
def eig_jvp():
    return {"a": "eig_jvp(da, ans)"}


@vjp("scipy.linalg.lu_factor", "a, overwrite_a=False, check_finite=True", differentiable="a", outputs=2)
def lu_factor_vjp():
    # ans = (lu, piv): one square matrix; the pivots are piecewise constant.
    return {"a": "lu_factor_vjp(g, ans)"}


@jvp("scipy.linalg.lu_factor")
def lu_factor_jvp():
    return {"a": "lu_factor_jvp(da, ans)"}


@vjp("scipy.linalg.expm", "A")
def expm_vjp():
    return {"A": "expm_frechet(A.T, g)"}


@jvp("scipy.linalg.expm")
def expm_jvp():
    return {"A": "expm_frechet(A, dA)"}


@vjp("scipy.linalg.sqrtm", "A, disp=True, blocksize=64", differentiable="A")
def sqrtm_vjp():
    # ans @ ans = A: d ans solves a Sylvester equation.
    return {"A": "sylvester(ans.T, g)"}


@jvp("scipy.linalg.sqrtm")
def sqrtm_jvp():
    return {"A": "sylvester(ans, dA)"}


nondifferentiable("numpy.linalg.matrix_rank")
