"""Derivative rules for numpy primitives, one module per numpy topic.

Importing this package registers every rule; ``RULES`` maps qualified names
(``numpy.tanh``, ``ndarray.T``) to `Rule` objects.
"""
from . import (decompositions, elementwise, linalg, nanreductions, ode, reductions, scipy_linalg, shape,
               signal, special, stats)  # noqa: F401  (registers)
from .registry import DYNAMIC, LOWERINGS, METHODS, RULES, Rule, lookup

__all__ = ["DYNAMIC", "LOWERINGS", "METHODS", "RULES", "Rule", "lookup"]
