"""Elementwise functions: arithmetic operators and ufuncs, as partial derivatives.

Each line states d ans / d param in terms of the params and ``ans``; the VJP
(``g * partial``) and the JVP (``partial * dparam``) both come from it, and the
engine sums adjoints back over broadcast axes.
"""
from .registry import elementwise, nondifferentiable

# Arithmetic (operators map here: + - * / ** and unary -).
elementwise("numpy.add", "x1, x2", "1", "1")
elementwise("numpy.subtract", "x1, x2", "1", "-1")
elementwise("numpy.multiply", "x1, x2", "x2", "x1")
elementwise("numpy.divide", "x1, x2", "1 / x2", "-ans / x2")
elementwise("numpy.negative", "x", "-1")
elementwise("numpy.positive", "x", "1")
elementwise("numpy.power", "x1, x2", "x2 * x1 ** (x2 - 1)", "ans * np.log(x1)", positive=True)
elementwise("numpy.square", "x", "2 * x")

# Exponentials and logarithms.
elementwise("numpy.exp", "x", "ans")
elementwise("numpy.log", "x", "1 / x", positive=True)
elementwise("numpy.sqrt", "x", "0.5 / ans", positive=True)

# Hyperbolic and trigonometric.
elementwise("numpy.tanh", "x", "1 - ans ** 2")
elementwise("numpy.sin", "x", "np.cos(x)")
elementwise("numpy.cos", "x", "-np.sin(x)")

# Piecewise.
elementwise("numpy.abs", "x", "np.sign(x)", nonzero=True)
elementwise("numpy.maximum", "x1, x2", "x1 >= x2", "x1 < x2", distinct=True)
elementwise("numpy.minimum", "x1, x2", "x1 <= x2", "x1 > x2", distinct=True)

nondifferentiable(
    "numpy.sign", "numpy.floor", "numpy.ceil", "numpy.round", "numpy.equal",
    "numpy.not_equal", "numpy.less", "numpy.less_equal", "numpy.greater",
    "numpy.greater_equal", "numpy.isnan", "numpy.isfinite",
)
