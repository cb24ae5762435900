"""Special functions: scipy.special (and numpy's own where they exist, see elementwise.py).

Templates use numpy only: derivatives that numpy lacks (digamma, trigamma) are
helpers written with numpy.
"""
from .reductions import kept
from .registry import elementwise, jvp, vjp

# Logistic and error functions.
elementwise("scipy.special.expit", "x", "ans * (1 - ans)")
elementwise("scipy.special.logit", "x", "1 / (x * (1 - x))", open_unit=True)
elementwise("scipy.special.log_expit", "x", "-np.expm1(ans)")  # = expit(-x), accurate for large x
elementwise("scipy.special.erf", "x", "2 / np.sqrt(np.pi) * np.exp(-x ** 2)")
elementwise("scipy.special.erfc", "x", "-2 / np.sqrt(np.pi) * np.exp(-x ** 2)")
elementwise("scipy.special.erfinv", "x", "np.sqrt(np.pi) / 2 * np.exp(ans ** 2)", unit=True)
elementwise("scipy.special.erfcinv", "x", "-np.sqrt(np.pi) / 2 * np.exp(ans ** 2)", open_unit=True)
elementwise("scipy.special.ndtr", "x", "np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi)")
elementwise("scipy.special.log_ndtr", "x", "np.exp(-x ** 2 / 2 - ans) / np.sqrt(2 * np.pi)")
elementwise("scipy.special.ndtri", "x", "np.sqrt(2 * np.pi) * np.exp(ans ** 2 / 2)", open_unit=True)

# Gamma family (positive arguments in tests; the helpers also reflect below 1/2).
elementwise("scipy.special.gamma", "x", "ans * digamma(x)", positive=True)
elementwise("scipy.special.gammaln", "x", "digamma(x)", positive=True)
elementwise("scipy.special.digamma", "x", "trigamma(x)", positive=True)
elementwise("scipy.special.psi", "x", "trigamma(x)", positive=True)
elementwise("scipy.special.betaln", "a, b", "digamma(a) - digamma(a + b)", "digamma(b) - digamma(a + b)",
            positive=True)

# Incomplete gamma and beta functions and Student's t, in x only (their derivatives in
# the shape parameters are series scipy does not expose: refused, never dropped).
_GAMMA_DENSITY = "np.exp((a - 1) * np.log(x) - x - log_gamma(a))"
elementwise("scipy.special.gammainc", "a, x", ..., _GAMMA_DENSITY, a="positive", x="positive")
elementwise("scipy.special.gammaincc", "a, x", ..., f"-{_GAMMA_DENSITY}", a="positive", x="positive")
_BETA_DENSITY = "np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - log_gamma(a) - log_gamma(b) + log_gamma(a + b))"
elementwise("scipy.special.betainc", "a, b, x", ..., ..., _BETA_DENSITY, a="positive", b="positive",
            x="open_unit")
elementwise("scipy.special.betaincc", "a, b, x", ..., ..., f"-{_BETA_DENSITY}", a="positive", b="positive",
            x="open_unit")
elementwise("scipy.special.stdtr", "df, t", ...,
            "np.exp(log_gamma((df + 1) / 2) - log_gamma(df / 2) - (df + 1) / 2 * np.log1p(t ** 2 / df))"
            " / np.sqrt(df * np.pi)", df="above_one")

# Bessel functions: derivatives from the recurrences (scipy.special in the templates: the
# primal already imports it). The order v is not differentiated: refused.
elementwise("scipy.special.j0", "x", "-scipy.special.j1(x)")
elementwise("scipy.special.j1", "x", "(scipy.special.j0(x) - scipy.special.jv(2, x)) / 2")
elementwise("scipy.special.y0", "x", "-scipy.special.y1(x)", positive=True)
elementwise("scipy.special.y1", "x", "(scipy.special.y0(x) - scipy.special.yv(2, x)) / 2", positive=True)
elementwise("scipy.special.i0", "x", "scipy.special.i1(x)")
elementwise("scipy.special.i1", "x", "(scipy.special.i0(x) + scipy.special.iv(2, x)) / 2")
elementwise("scipy.special.i0e", "x", "scipy.special.i1e(x) - np.sign(x) * ans")
elementwise("scipy.special.i1e", "x", "(scipy.special.i0e(x) + scipy.special.ive(2, x)) / 2 - np.sign(x) * ans")
elementwise("scipy.special.jv", "v, x", ..., "(scipy.special.jv(v - 1, x) - scipy.special.jv(v + 1, x)) / 2",
            x="positive")
elementwise("scipy.special.yv", "v, x", ..., "(scipy.special.yv(v - 1, x) - scipy.special.yv(v + 1, x)) / 2",
            x="positive")
elementwise("scipy.special.iv", "v, x", ..., "(scipy.special.iv(v - 1, x) + scipy.special.iv(v + 1, x)) / 2",
            x="positive")
elementwise("scipy.special.ive", "v, x", ...,
            "(scipy.special.ive(v - 1, x) + scipy.special.ive(v + 1, x)) / 2 - np.sign(x) * ans", x="positive")

# More of the gamma family.
elementwise("scipy.special.rgamma", "x", "-ans * digamma(x)", positive=True)
elementwise("scipy.special.beta", "a, b", "ans * (digamma(a) - digamma(a + b))", "ans * (digamma(b) - digamma(a + b))",
            positive=True)
elementwise("scipy.special.polygamma", "n, x", None, "scipy.special.polygamma(n + 1, x)", n="order", x="positive")
elementwise("scipy.special.multigammaln", "a, d", "multidigamma(a, d)", None)  # d an int

# math's scalar functions that numpy lacks (math.exp and the rest use the numpy rules).
elementwise("math.erf", "x", "2 / np.sqrt(np.pi) * np.exp(-x ** 2)")
elementwise("math.erfc", "x", "-2 / np.sqrt(np.pi) * np.exp(-x ** 2)")
elementwise("math.lgamma", "x", "digamma(x)", positive=True)
elementwise("math.gamma", "x", "ans * digamma(x)", positive=True)

# Entropy-like.
elementwise("scipy.special.xlogy", "x, y", "np.log(y)", "x / y", positive=True)
elementwise("scipy.special.xlog1py", "x, y", "np.log1p(y)", "x / (1 + y)", positive=True)
elementwise("scipy.special.entr", "x", "-(np.log(x) + 1)", positive=True)


# Normalizers over an axis.

@vjp("scipy.special.logsumexp", "a, axis=None, b=None, keepdims=False, return_sign=False",
     differentiable="a, b")
def logsumexp_vjp(axis, keepdims, b, return_sign):
    # exp(a - ans) stays finite for large a: ans >= max(a) where the weights are 1.
    if return_sign is not False:
        raise NotImplementedError("logsumexp(return_sign=True) has no rule")
    g, ans = kept("g", axis, keepdims), kept("ans", axis, keepdims)
    if b is None:
        return {"a": f"{g} * np.exp(a - {ans})"}
    return {"a": f"unbroadcast({g} * b * np.exp(a - {ans}), np.shape(a))",
            "b": f"unbroadcast({g} * np.exp(a - {ans}), np.shape(b))"}


@jvp("scipy.special.logsumexp")
def logsumexp_jvp(axis, keepdims, b, return_sign):
    if return_sign is not False:
        raise NotImplementedError("logsumexp(return_sign=True) has no rule")
    weights = f"np.exp(a - {kept('ans', axis, keepdims)})"
    if b is None:
        return {"a": f"np.sum(da * {weights}, axis=axis, keepdims=keepdims)"}
    return {"a": f"np.sum(b * da * {weights}, axis=axis, keepdims=keepdims)",
            "b": f"np.sum(db * {weights}, axis=axis, keepdims=keepdims)"}


@vjp("scipy.special.softmax", "x, axis=None", differentiable="x")
def softmax_vjp():
    return {"x": "ans * (g - np.sum(g * ans, axis=axis, keepdims=True))"}


@jvp("scipy.special.softmax")
def softmax_jvp():
    return {"x": "ans * (dx - np.sum(dx * ans, axis=axis, keepdims=True))"}


@vjp("scipy.special.log_softmax", "x, axis=None", differentiable="x")
def log_softmax_vjp():
    return {"x": "g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True)"}


@jvp("scipy.special.log_softmax")
def log_softmax_jvp():
    return {"x": "dx - np.sum(np.exp(ans) * dx, axis=axis, keepdims=True)"}
