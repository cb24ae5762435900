"""Special functions: scipy.special and numpy's own where they exist."""
from .registry import jvp, vjp
from .reductions import spread


@vjp("scipy.special.logsumexp", "a, axis=None, b=None, keepdims=False, return_sign=False",
     differentiable="a")
def logsumexp_vjp(axis, keepdims, b):
    if b is not None:
        raise NotImplementedError("logsumexp with weights b= has no rule yet")
    ans = spread("ans", axis, keepdims)
    return {"a": f"{spread('g', axis, keepdims)} * np.exp(a - {ans})"}


@jvp("scipy.special.logsumexp")
def logsumexp_jvp():
    return {"a": "np.sum(da * np.exp(a - expand_reduced(ans, np.shape(a), axis, keepdims)),"
                 " axis=axis, keepdims=keepdims)"}
