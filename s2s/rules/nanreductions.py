"""numpy's nan-ignoring reductions, lowered to the plain ones over the values present
(a lowering is explained in rules/stats.py). The derivative at a nan is zero. A slice
of nans only gives -inf/inf for nanmax/nanmin where numpy gives nan (and a warning).
"""
import numpy as np

from .registry import lowers


@lowers("numpy.nansum")
def nansum(a, axis=None, dtype=None, out=None, keepdims=False):
    return np.sum(np.where(np.isnan(a), 0.0, a), axis=axis, keepdims=keepdims)


@lowers("numpy.nanprod")
def nanprod(a, axis=None, dtype=None, out=None, keepdims=False):
    return np.prod(np.where(np.isnan(a), 1.0, a), axis=axis, keepdims=keepdims)


@lowers("numpy.nanmean")
def nanmean(a, axis=None, dtype=None, out=None, keepdims=False):
    present = np.logical_not(np.isnan(a))
    total = np.sum(np.where(present, a, 0.0), axis=axis, keepdims=keepdims)
    return total / np.sum(present, axis=axis, keepdims=keepdims)


@lowers("numpy.nanmax")
def nanmax(a, axis=None, out=None, keepdims=False):
    return np.max(np.where(np.isnan(a), -np.inf, a), axis=axis, keepdims=keepdims)


@lowers("numpy.nanmin")
def nanmin(a, axis=None, out=None, keepdims=False):
    return np.min(np.where(np.isnan(a), np.inf, a), axis=axis, keepdims=keepdims)


@lowers("numpy.nanvar")
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    present = np.logical_not(np.isnan(a))
    values = np.where(present, a, 0.0)  # finite, so no nan reaches the derivative
    mean = np.sum(values, axis=axis, keepdims=True) / np.sum(present, axis=axis, keepdims=True)
    squares = np.where(present, (values - mean) ** 2, 0.0)
    return np.sum(squares, axis=axis, keepdims=keepdims) / (np.sum(present, axis=axis, keepdims=keepdims) - ddof)


@lowers("numpy.nanstd")
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    return np.sqrt(nanvar(a, axis, None, None, ddof, keepdims))


@lowers("numpy.nancumsum")
def nancumsum(a, axis=None, dtype=None, out=None):
    return np.cumsum(np.where(np.isnan(a), 0.0, a), axis=axis)


@lowers("numpy.nancumprod")
def nancumprod(a, axis=None, dtype=None, out=None):
    return np.cumprod(np.where(np.isnan(a), 1.0, a), axis=axis)
