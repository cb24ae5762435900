"""Linear algebra: products and decompositions."""
from .registry import jvp, vjp


@vjp("numpy.matmul", "x1, x2")
def matmul_vjp():
    return {"x1": "matmul_vjp_a(g, x1, x2)", "x2": "matmul_vjp_b(g, x1, x2)"}


@jvp("numpy.matmul")
def matmul_jvp():
    return {"x1": "dx1 @ x2", "x2": "x1 @ dx2"}


@vjp("numpy.dot", "a, b")
def dot_vjp():
    # np.dot equals matmul for the 1-d and 2-d operands it is used with.
    return {"a": "matmul_vjp_a(g, a, b)", "b": "matmul_vjp_b(g, a, b)"}


@jvp("numpy.dot")
def dot_jvp():
    return {"a": "np.dot(da, b)", "b": "np.dot(a, db)"}
