"""User-defined derivatives: the ``fwd``/``bwd`` protocol of ``jax.custom_vjp``.

    @s2s.custom_vjp
    def clipped_log(x):                  # say, a call into a C extension
        return np.log(np.maximum(x, 1e-12))

    def clipped_log_fwd(x):
        return clipped_log(x), x         # (output, residuals)

    def clipped_log_bwd(x, g):
        return (g / np.maximum(x, 1e-12),)   # one adjoint per argument

    clipped_log.defvjp(clipped_log_fwd, clipped_log_bwd)

A function that calls ``clipped_log`` is differentiated through these two
functions: the forward sweep calls ``clipped_log_fwd`` and keeps its
residuals like any other value, the backward sweep calls ``clipped_log_bwd``.
A hand-written pair and one that s2s generated are interchangeable.
"""
from __future__ import annotations

import functools


class CustomVJP:
    """A function with a user-supplied VJP (see the module docstring)."""

    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.fwd = None
        self.bwd = None

    def defvjp(self, fwd, bwd):
        """``fwd(*args) -> (output, residuals)``; ``bwd(residuals, g) -> tuple of adjoints``."""
        self.fwd, self.bwd = fwd, bwd
        return self

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def custom_vjp(fn) -> CustomVJP:
    """Decorator: give ``fn`` a hand-written VJP with ``fn.defvjp(fwd, bwd)``."""
    return CustomVJP(fn)
