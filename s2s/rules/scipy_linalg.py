"""scipy.linalg, and numpy.linalg functions made of others, lowered to the numpy.linalg
primitives that have rules (a lowering is explained in rules/stats.py).

Parameters named in ``static=`` must be constants at the call: the branches on them
are folded before the function is inlined. scipy reads one triangle of a symmetric or
triangular input; so do these, so the derivative in the other triangle is zero, as
finite differences of scipy's function say. Triangular solves are general solves of
the triangle (scipy's values, but O(n^3) where scipy's are O(n^2)).
"""
import numpy as np
import scipy.linalg

from .decompositions import eigh_options
from .helpers import lu_factors, lu_permutation
from .registry import DYNAMIC, lowers

SYMMETRIC = ("sym", "her", "pos", "symmetric", "hermitian", "positive definite")
GENERAL = (None, "gen", "general")


def _solve_check(lower, assume_a, transposed):
    if assume_a not in SYMMETRIC + GENERAL:
        return f"assume_a={assume_a!r} has no rule (the general and symmetric ones have)"
    return None


def from_lower(a):
    """The symmetric matrix that ``a``'s lower triangle holds."""
    return np.tril(a) + np.swapaxes(np.tril(a, -1), -1, -2)


def from_upper(a):
    """The symmetric matrix that ``a``'s upper triangle holds."""
    return np.triu(a) + np.swapaxes(np.triu(a, 1), -1, -2)


@lowers("scipy.linalg.solve", static="lower, assume_a, transposed", check=_solve_check)
def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None,
          transposed=False):
    if assume_a in ("sym", "her", "pos", "symmetric", "hermitian", "positive definite"):  # one triangle
        a = from_lower(a) if lower else from_upper(a)
    if transposed:
        a = np.swapaxes(a, -1, -2)
    return np.linalg.solve(a, b)


INV_STRUCTURES = ("sym", "her", "pos", "diagonal", "upper triangular", "lower triangular")


@lowers("scipy.linalg.inv", static="assume_a, lower",
        check=lambda assume_a, lower: None if assume_a in GENERAL + INV_STRUCTURES
        else f"assume_a={assume_a!r} has no rule")
def inv(a, overwrite_a=False, check_finite=True, *, assume_a=None, lower=False):
    # assume_a=None: scipy picks a solver by the structure it finds; the inverse is the same.
    if assume_a in ("sym", "her", "pos"):  # one triangle
        a = from_lower(a) if lower else from_upper(a)
    if assume_a == "diagonal":
        a = a * np.eye(np.shape(a)[-1])
    if assume_a == "upper triangular":
        a = np.triu(a)
    if assume_a == "lower triangular":
        a = np.tril(a)
    return np.linalg.inv(a)


@lowers("scipy.linalg.det")
def det(a, overwrite_a=False, check_finite=True):
    return np.linalg.det(a)


@lowers("scipy.linalg.norm")
def norm(a, ord=None, axis=None, keepdims=False, check_finite=True):
    return np.linalg.norm(a, ord, axis, keepdims)


@lowers("scipy.linalg.pinv", static="atol, return_rank",
        check=lambda atol, return_rank: None if atol is None else "atol= has no rule (rtol= has)")
def pinv(a, *, atol=None, rtol=None, return_rank=False, check_finite=True):
    # Constant rank; singular values below rtol * the largest are dropped, as numpy does.
    if return_rank:
        return np.linalg.pinv(a, rtol=rtol), np.linalg.matrix_rank(a, rtol=rtol)
    return np.linalg.pinv(a, rtol=rtol)


def _not_square(a):
    """Whether the last two axes of ``a`` differ (then a full factor is not unique)."""
    return np.shape(a)[-1] != np.shape(a)[-2]


@lowers("scipy.linalg.svd", static="full_matrices, compute_uv, lapack_driver",
        check=lambda full_matrices, compute_uv, lapack_driver: None if lapack_driver == "gesdd" else
        f"lapack_driver={lapack_driver!r} has no rule (its singular vectors' signs are not numpy's)")
def svd(a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True, lapack_driver="gesdd"):
    if not compute_uv:
        return np.linalg.svd(a, compute_uv=False)
    if full_matrices and _not_square(a):
        raise ValueError("scipy.linalg.svd(full_matrices=True), scipy's default, has a derivative for "
                         "square matrices only: pass full_matrices=False")
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return u, s, vh


@lowers("scipy.linalg.svdvals")
def svdvals(a, overwrite_a=False, check_finite=True):
    return np.linalg.svd(a, compute_uv=False)


@lowers("scipy.linalg.qr", static="mode, pivoting",
        check=lambda mode, pivoting: "pivoting=True has no rule" if pivoting else
        None if mode in ("full", "economic", "r") else f"mode={mode!r} has no rule")
def qr(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    q, r = np.linalg.qr(a)  # a square or tall
    if mode == "r":  # scipy's R has a's shape: zero rows below the triangle
        return (np.concatenate([r, np.zeros((np.shape(a)[-2] - np.shape(a)[-1], np.shape(a)[-1]))], axis=-2),)
    if mode == "full" and _not_square(a):
        raise ValueError("scipy.linalg.qr(mode='full'), scipy's default, has a derivative for square "
                         "matrices only: pass mode='economic'")
    return q, r


@lowers("scipy.linalg.cholesky", static="lower")
def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    if lower:
        return np.linalg.cholesky(a)
    return np.swapaxes(np.linalg.cholesky(np.swapaxes(a, -1, -2)), -1, -2)  # from a's upper triangle


@lowers("scipy.linalg.cho_factor", static="lower")
def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    # scipy leaves arbitrary values in the other triangle; here they are zeros.
    if lower:
        return np.linalg.cholesky(a), True
    return np.swapaxes(np.linalg.cholesky(np.swapaxes(a, -1, -2)), -1, -2), False


@lowers("scipy.linalg.cho_solve")
def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    c, lower = c_and_lower
    factor = np.tril(c) if lower else np.swapaxes(np.triu(c), -1, -2)  # a = factor @ factor.T
    return np.linalg.solve(np.swapaxes(factor, -1, -2), np.linalg.solve(factor, b))


@lowers("scipy.linalg.lu_solve", static="trans",
        check=lambda trans: None if trans in (0, 1, 2) else f"trans={trans!r} has no rule")
def lu_solve(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    lu, piv = lu_and_piv
    l, u = lu_factors(lu)
    perm = lu_permutation(piv)  # a[perm] = l @ u
    if trans in (1, 2):  # a.T @ x = b
        return np.linalg.solve(l.T, np.linalg.solve(u.T, b))[np.argsort(perm)]
    return np.linalg.solve(u, np.linalg.solve(l, b[perm]))


@lowers("scipy.linalg.lu", static="permute_l, p_indices")
def lu(a, permute_l=False, overwrite_a=False, check_finite=True, p_indices=False):
    factors, piv = scipy.linalg.lu_factor(a)
    l, u = lu_factors(factors)
    rows = np.argsort(lu_permutation(piv))  # a = l[rows] @ u
    if permute_l:
        return l[rows], u
    if p_indices:
        return rows, l, u
    return np.eye(np.shape(a)[0])[rows], l, u


@lowers("scipy.linalg.solve_triangular", static="trans, lower, unit_diagonal",
        check=lambda trans, lower, unit_diagonal: None if trans in (0, 1, 2, "N", "T", "C", DYNAMIC)
        else f"trans={trans!r} has no rule")
def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False, check_finite=True):
    triangle = np.tril(a, -1 if unit_diagonal else 0) if lower else np.triu(a, 1 if unit_diagonal else 0)
    if unit_diagonal:
        triangle = triangle + np.eye(np.shape(a)[-1])
    if trans in (1, 2, "T", "C"):
        triangle = np.swapaxes(triangle, -1, -2)
    return np.linalg.solve(triangle, b)


@lowers("scipy.linalg.eigvalsh", static="b, lower, subset_by_index, subset_by_value",
        check=lambda b, lower, subset_by_index, subset_by_value: eigh_options(b, subset_by_index, subset_by_value))
def eigvalsh(a, b=None, *, lower=True, overwrite_a=False, overwrite_b=False, type=1, check_finite=True,
             subset_by_index=None, subset_by_value=None, driver=None):
    return np.linalg.eigvalsh(a, "L" if lower else "U")


@lowers("numpy.linalg.matrix_power", static="n",
        check=lambda n: None if isinstance(n, int) else "n= must be an int constant")
def matrix_power(a, n):
    base = np.linalg.inv(a) if n < 0 else a
    power = np.broadcast_to(np.eye(np.shape(a)[-1]), np.shape(a))
    for _ in range(n if n > 0 else -n):
        power = power @ base
    return power


@lowers("numpy.linalg.lstsq")
def lstsq(a, b, rcond=None):
    # Full column rank: the solution is pinv(a) @ b (rcond only truncates below the rank).
    x = np.linalg.pinv(a) @ b
    rank = np.linalg.matrix_rank(a)
    m, n = np.shape(a)
    if rank == n and m > n:
        residuals = np.atleast_1d(np.sum((b - a @ x) ** 2, axis=0))
    else:
        residuals = np.zeros((0,))
    return x, residuals, rank, np.linalg.svd(a, compute_uv=False)


@lowers("scipy.linalg.lstsq")
def scipy_lstsq(a, b, cond=None, overwrite_a=False, overwrite_b=False, check_finite=True, lapack_driver=None):
    # As numpy.linalg.lstsq, but the residues of a vector b are a scalar, as scipy's are.
    x = np.linalg.pinv(a) @ b
    rank = np.linalg.matrix_rank(a)
    m, n = np.shape(a)
    if rank == n and m > n:
        residues = np.sum((b - a @ x) ** 2, axis=0)
    else:
        residues = np.zeros((0,))
    return x, residues, rank, np.linalg.svd(a, compute_uv=False)
