"""Elementwise functions: arithmetic operators and ufuncs, as partial derivatives.

Each line states d ans / d param in terms of the params and ``ans``; the VJP
(``g * partial``) and the JVP (``partial * dparam``) both come from it, and the
engine sums adjoints back over broadcast axes. Keyword hints after the partials
(``positive=True``) give the input domain the rule is tested on.
"""
from .registry import RULES, _times, elementwise, jvp, nondifferentiable, vjp

# Arithmetic (operators map here: + - * / ** and unary -).
elementwise("numpy.add", "x1, x2", "1", "1")
elementwise("numpy.subtract", "x1, x2", "1", "-1")
elementwise("numpy.multiply", "x1, x2", "x2", "x1")
elementwise("numpy.divide", "x1, x2", "1 / x2", "-ans / x2", nonzero=True)
elementwise("numpy.true_divide", "x1, x2", "1 / x2", "-ans / x2", nonzero=True)
elementwise("numpy.negative", "x", "-1")
elementwise("numpy.positive", "x", "1")
# d/dx2 is 0 where x1 == 0 (and x2 > 0), not 0 * log(0).
elementwise("numpy.power", "x1, x2", "x2 * x1 ** (x2 - 1)", "ans * np.log(np.where(x1 == 0, 1, x1))",
            positive=True)
elementwise("numpy.float_power", "x1, x2", "x2 * x1 ** (x2 - 1)", "ans * np.log(np.where(x1 == 0, 1, x1))",
            positive=True)
elementwise("numpy.square", "x", "2 * x")
elementwise("numpy.reciprocal", "x", "-ans ** 2", nonzero=True)
elementwise("numpy.mod", "x1, x2", "1", "-np.floor(x1 / x2)", positive=True)
elementwise("numpy.remainder", "x1, x2", "1", "-np.floor(x1 / x2)", positive=True)
elementwise("numpy.fmod", "x1, x2", "1", "-np.trunc(x1 / x2)", positive=True)
# IEEE remainder: x1 - n * x2 with n the nearest integer (ties to even), unlike numpy.remainder.
elementwise("math.remainder", "x, y", "1", "-np.round(x / y)", positive=True)

# Exponentials and logarithms.
elementwise("numpy.exp", "x", "ans")
elementwise("numpy.exp2", "x", "np.log(2) * ans")
elementwise("numpy.expm1", "x", "ans + 1")
elementwise("numpy.log", "x", "1 / x", positive=True)
elementwise("numpy.log2", "x", "1 / (np.log(2) * x)", positive=True)
elementwise("numpy.log10", "x", "1 / (np.log(10) * x)", positive=True)
elementwise("numpy.log1p", "x", "1 / (1 + x)", positive=True)
elementwise("numpy.sqrt", "x", "0.5 / ans", positive=True)
elementwise("numpy.cbrt", "x", "1 / (3 * ans ** 2)", nonzero=True)
# exp(x - ans) <= 1: finite however large the inputs.
# Partials as sigmoids of the difference: no overflow, and no need for the result itself
# (so a gradient that does not return the value need not compute it).
elementwise("numpy.logaddexp", "x1, x2", "0.5 * (1 + np.tanh((x1 - x2) * 0.5))",
            "0.5 * (1 + np.tanh((x2 - x1) * 0.5))")  # * 0.5: a product costs less than a division
elementwise("numpy.logaddexp2", "x1, x2", "0.5 * (1 + np.tanh((x1 - x2) * (np.log(2) / 2)))",
            "0.5 * (1 + np.tanh((x2 - x1) * (np.log(2) / 2)))")

# Trigonometric and hyperbolic.
elementwise("numpy.sin", "x", "np.cos(x)")
elementwise("numpy.cos", "x", "-np.sin(x)")
elementwise("numpy.tan", "x", "1 + ans ** 2")
elementwise("numpy.arcsin", "x", "1 / np.sqrt(1 - x ** 2)", unit=True)
elementwise("numpy.arccos", "x", "-1 / np.sqrt(1 - x ** 2)", unit=True)
elementwise("numpy.arctan", "x", "1 / (1 + x ** 2)")
elementwise("numpy.arctan2", "x1, x2", "x2 / (x1 ** 2 + x2 ** 2)", "-x1 / (x1 ** 2 + x2 ** 2)", nonzero=True)
elementwise("numpy.hypot", "x1, x2", "x1 / ans", "x2 / ans", nonzero=True)
elementwise("numpy.sinh", "x", "np.cosh(x)")
elementwise("numpy.cosh", "x", "np.sinh(x)")
elementwise("numpy.tanh", "x", "1 - ans ** 2")
elementwise("numpy.arcsinh", "x", "1 / np.sqrt(x ** 2 + 1)")
elementwise("numpy.arccosh", "x", "1 / np.sqrt(x ** 2 - 1)", above_one=True)
elementwise("numpy.arctanh", "x", "1 / (1 - x ** 2)", unit=True)
elementwise("numpy.sinc", "x", "sinc_derivative(x)")
# numpy 2's array-API spellings (math.asin and math.pow resolve to these too).
elementwise("numpy.pow", "x1, x2", "x2 * x1 ** (x2 - 1)", "ans * np.log(np.where(x1 == 0, 1, x1))", positive=True)
elementwise("numpy.asin", "x", "1 / np.sqrt(1 - x ** 2)", unit=True)
elementwise("numpy.acos", "x", "-1 / np.sqrt(1 - x ** 2)", unit=True)
elementwise("numpy.atan", "x", "1 / (1 + x ** 2)")
elementwise("numpy.atan2", "x1, x2", "x2 / (x1 ** 2 + x2 ** 2)", "-x1 / (x1 ** 2 + x2 ** 2)", nonzero=True)
elementwise("numpy.asinh", "x", "1 / np.sqrt(x ** 2 + 1)")
elementwise("numpy.acosh", "x", "1 / np.sqrt(x ** 2 - 1)", above_one=True)
elementwise("numpy.atanh", "x", "1 / (1 - x ** 2)", unit=True)
elementwise("numpy.deg2rad", "x", "np.pi / 180")
elementwise("numpy.radians", "x", "np.pi / 180")
elementwise("numpy.rad2deg", "x", "180 / np.pi")
elementwise("numpy.degrees", "x", "180 / np.pi")

# Real parts of real arrays (complex inputs are not supported).
elementwise("numpy.real", "val", "1")
elementwise("numpy.conj", "x", "1")
elementwise("numpy.conjugate", "x", "1")
elementwise("numpy.nan_to_num", "x, copy=True, nan=0.0, posinf=None, neginf=None", "np.isfinite(x)")

# Piecewise: ties go to the first argument (a valid subgradient). Partials with
# & or | carry their own parentheses (the registry's _factor does not add them).
elementwise("numpy.abs", "x", "np.sign(x)", nonzero=True)
elementwise("numpy.absolute", "x", "np.sign(x)", nonzero=True)
elementwise("numpy.fabs", "x", "np.sign(x)", nonzero=True)
elementwise("numpy.maximum", "x1, x2", "x1 >= x2", "x1 < x2", distinct=True)
elementwise("numpy.minimum", "x1, x2", "x1 <= x2", "x1 > x2", distinct=True)
elementwise("numpy.fmax", "x1, x2", "((x1 >= x2) | np.isnan(x2))", "((x1 < x2) | np.isnan(x1))", distinct=True)
elementwise("numpy.fmin", "x1, x2", "((x1 <= x2) | np.isnan(x2))", "((x1 > x2) | np.isnan(x1))", distinct=True)


def _clip_partials(a_min, a_max, min, max):
    """The masks of d clip / d (a, lower, upper); a bound given as None drops out."""
    lo = "a_min" if a_min is not None else ("min" if min is not None else None)
    hi = "a_max" if a_max is not None else ("max" if max is not None else None)
    if lo and hi:
        inside = f"((a >= {lo}) & (a <= {hi}))"
    else:
        inside = f"a >= {lo}" if lo else (f"a <= {hi}" if hi else "1")
    partials = {"a": inside}
    if lo:
        partials[lo] = f"a < {lo}"
    if hi:
        partials[hi] = f"a > {hi}"
    return partials


@vjp("numpy.clip", "a, a_min=None, a_max=None, out=None, *, min=None, max=None",
     differentiable="a, a_min, a_max, min, max")
def clip_vjp(a_min, a_max, min, max):
    return {p: _times("g", m) for p, m in _clip_partials(a_min, a_max, min, max).items()}


@jvp("numpy.clip")
def clip_jvp(a_min, a_max, min, max):
    return {p: _times(m, "d" + p) for p, m in _clip_partials(a_min, a_max, min, max).items()}


@vjp("numpy.where", "condition, x=None, y=None", differentiable="x, y")
def where_vjp():
    # np.where, not g * condition: an inf or nan in the unselected branch must not leak.
    return {"x": "np.where(condition, g, 0)", "y": "np.where(condition, 0, g)"}


@jvp("numpy.where")
def where_jvp():
    return {"x": "np.where(condition, dx, 0)", "y": "np.where(condition, 0, dy)"}


RULES["numpy.clip"].elementwise = True
RULES["numpy.where"].elementwise = True

# Python's builtins on scalars: max(a, b) returns a unless b is larger.
elementwise("builtins.abs", "x", "np.sign(x)", nonzero=True)
elementwise("builtins.max", "a, b", "a >= b", "a < b", distinct=True)
elementwise("builtins.min", "a, b", "a <= b", "a > b", distinct=True)

# Casts: to floating point, the identity; to integers or booleans, never active.
elementwise("numpy.float64", "x", "1")  # also np.double; float32 rounds (x.astype(np.float32))
nondifferentiable(*(f"numpy.{name}" for name in ("int64", "int32", "int16", "int8", "intp", "uint8",
                                                  "uint16", "uint32", "uint64", "bool_")))
nondifferentiable("builtins.round")
nondifferentiable(
    "numpy.sign", "numpy.floor", "numpy.ceil", "numpy.round", "numpy.around", "numpy.rint",
    "numpy.trunc", "numpy.fix", "numpy.floor_divide", "numpy.heaviside", "numpy.signbit",
    "numpy.imag",  # zero for real arrays
    "numpy.equal", "numpy.not_equal", "numpy.less", "numpy.less_equal", "numpy.greater",
    "numpy.greater_equal", "numpy.isclose", "numpy.allclose", "numpy.array_equal",
    "numpy.isnan", "numpy.isinf", "numpy.isfinite", "numpy.isreal", "numpy.iscomplex",
    "numpy.logical_and", "numpy.logical_or", "numpy.logical_not", "numpy.logical_xor",
)
