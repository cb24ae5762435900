"""scipy.linalg, and numpy.linalg functions made of others, lowered to the numpy.linalg
primitives that have rules (a lowering is explained in rules/stats.py).

Parameters named in ``static=`` must be constants at the call: the branches on them
are folded before the function is inlined. scipy reads one triangle of a symmetric or
triangular input; so do these, so the derivative in the other triangle is zero, as
finite differences of scipy's function say. Triangular solves are general solves of
the triangle (scipy's values, but O(n^3) where scipy's are O(n^2)).
"""
import numpy as np

from .registry import DYNAMIC, lowers

SYMMETRIC = ("sym", "her", "pos", "symmetric", "hermitian", "positive definite")
GENERAL = (None, "gen", "general")


def _solve_check(lower, assume_a, transposed):
    if assume_a not in SYMMETRIC + GENERAL:
        return f"assume_a={assume_a!r} has no rule (the general and symmetric ones have)"
    return None


@lowers("scipy.linalg.solve", static="lower, assume_a, transposed", check=_solve_check)
def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None,
          transposed=False):
    if assume_a in ("sym", "her", "pos", "symmetric", "hermitian", "positive definite"):  # one triangle
        a = np.tril(a) + np.swapaxes(np.tril(a, -1), -1, -2) if lower else \
            np.triu(a) + np.swapaxes(np.triu(a, 1), -1, -2)
    if transposed:
        a = np.swapaxes(a, -1, -2)
    return np.linalg.solve(a, b)


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


def _eigh_check(b, lower, eigvals_only, subset_by_index, subset_by_value):
    if b is not None:
        return "the generalized problem (b=) has no rule"
    if subset_by_index is not None or subset_by_value is not None:
        return "subset_by_index= and subset_by_value= have no rule; slice the result"
    return None


@lowers("scipy.linalg.eigh", static="b, lower, eigvals_only, subset_by_index, subset_by_value", check=_eigh_check)
def eigh(a, b=None, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False, type=1,
         check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    if eigvals_only:
        return np.linalg.eigvalsh(a, "L" if lower else "U")
    w, v = np.linalg.eigh(a, "L" if lower else "U")
    return w, v


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
