"""Linear algebra: products, contractions and diagonals (decompositions live in
``decompositions.py``)."""
from .registry import DYNAMIC, jvp, vjp


# Products: plain expressions where the engine knows the operands' ranks, helpers
# (any rank, batches, broadcasting) where it does not.

def _product_by_rank(a, b, ranks):
    """Adjoints of the vector/matrix product of ``a`` and ``b`` (np.dot or matmul), by rank."""
    return {(2, 2): {a: f"g @ {b}.T", b: f"{a}.T @ g"},
            (2, 1): {a: f"np.outer(g, {b})", b: f"{a}.T @ g"},
            (1, 2): {a: f"{b} @ g", b: f"np.outer({a}, g)"},
            (1, 1): {a: f"g * {b}", b: f"g * {a}"}}.get(ranks)


def _stacked_product(a, b, shape_a, shape_b):
    """Adjoints of ``a @ b`` for stacks of matrices of one batch shape (nothing broadcast)."""
    if shape_a is not None and shape_b is not None and len(shape_a) == len(shape_b) >= 3 and \
            shape_a[:-2] == shape_b[:-2]:
        return {a: f"g @ np.swapaxes({b}, -1, -2)", b: f"np.swapaxes({a}, -1, -2) @ g"}
    return None


@vjp("numpy.matmul", "x1, x2")
def matmul_vjp(ndim, shapes):
    plain = _product_by_rank("x1", "x2", (ndim.get("x1"), ndim.get("x2"))) or \
        _stacked_product("x1", "x2", shapes.get("x1"), shapes.get("x2"))
    return plain or {"x1": "matmul_vjp_a(g, x1, x2)", "x2": "matmul_vjp_b(g, x1, x2)"}


@jvp("numpy.matmul")
def matmul_jvp():
    return {"x1": "dx1 @ x2", "x2": "x1 @ dx2"}


@vjp("numpy.dot", "a, b")
def dot_vjp(ndim):
    ranks = (ndim.get("a"), ndim.get("b"))
    if ranks == (0, 0):
        return {"a": "g * b", "b": "g * a"}
    plain = _product_by_rank("a", "b", ranks)
    return plain or {"a": "dot_vjp_a(g, a, b)", "b": "dot_vjp_b(g, a, b)"}


@jvp("numpy.dot")
def dot_jvp():
    return {"a": "np.dot(da, b)", "b": "np.dot(a, db)"}


@vjp("numpy.vdot", "a, b")
def vdot_vjp():
    return {"a": "np.reshape(g * b, np.shape(a))", "b": "np.reshape(g * a, np.shape(b))"}


@jvp("numpy.vdot")
def vdot_jvp():
    return {"a": "np.vdot(da, b)", "b": "np.vdot(a, db)"}


@vjp("numpy.inner", "a, b")
def inner_vjp():
    return {"a": "inner_vjp_a(g, a, b)", "b": "inner_vjp_b(g, a, b)"}


@jvp("numpy.inner")
def inner_jvp():
    return {"a": "np.inner(da, b)", "b": "np.inner(a, db)"}


@vjp("numpy.outer", "a, b, out=None", differentiable="a, b")
def outer_vjp():
    return {"a": "np.reshape(g @ np.ravel(b), np.shape(a))", "b": "np.reshape(np.ravel(a) @ g, np.shape(b))"}


@jvp("numpy.outer")
def outer_jvp():
    return {"a": "np.outer(da, b)", "b": "np.outer(a, db)"}


@vjp("numpy.tensordot", "a, b, axes=2", differentiable="a, b")
def tensordot_vjp():
    return {"a": "tensordot_vjp_a(g, a, b, axes)", "b": "tensordot_vjp_b(g, a, b, axes)"}


@jvp("numpy.tensordot")
def tensordot_jvp():
    return {"a": "np.tensordot(da, b, axes)", "b": "np.tensordot(a, db, axes)"}


@vjp("numpy.cross", "a, b")
def cross_vjp():
    # 3-vectors along the last axis; unbroadcast for a batch of them against one.
    return {"a": "unbroadcast(np.cross(b, g), np.shape(a))", "b": "unbroadcast(np.cross(g, a), np.shape(b))"}


@jvp("numpy.cross")
def cross_jvp():
    return {"a": "np.cross(da, b)", "b": "np.cross(a, db)"}


@vjp("numpy.kron", "a, b")
def kron_vjp():
    return {"a": "kron_vjp_a(g, a, b)", "b": "kron_vjp_b(g, a, b)"}


@jvp("numpy.kron")
def kron_jvp():
    return {"a": "np.kron(da, b)", "b": "np.kron(a, db)"}


# einsum: the adjoint of each operand is another einsum, built from the static subscripts.

def _einsum_parts(subscripts):
    if subscripts is DYNAMIC or not isinstance(subscripts, str):
        raise NotImplementedError("np.einsum needs its subscripts as a string literal")
    spec = subscripts.replace(" ", "")
    inputs, _, output = spec.partition("->")
    inputs = inputs.split(",")
    if "->" not in spec:  # implicit form: the letters that appear once, sorted
        letters = "".join(inputs).replace(".", "")
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    for sub in inputs:
        sub = sub.replace("...", "")
        if len(set(sub)) != len(sub):
            raise NotImplementedError(f"np.einsum with a repeated index in {sub!r} has no rule; "
                                      "use np.diagonal or np.trace for diagonals")
    return inputs, output


def _einsum_adjoint(k, inputs, output):
    others = [j for j in range(len(inputs)) if j != k]
    known = set(output).union(*(inputs[j] for j in others))
    # An index summed in this operand alone: the adjoint is constant along it (a ones factor).
    missing = [i for i, c in enumerate(inputs[k]) if c not in known]
    spec = ",".join([output] + [inputs[j] for j in others] + [inputs[k][i] for i in missing]) + "->" + inputs[k]
    args = ["g"] + [f"operands[{j}]" for j in others] + [f"np.ones(np.shape(operands[{k}])[{i}])" for i in missing]
    # unbroadcast: einsum broadcasts operand axes of length 1
    return f"unbroadcast(np.einsum('{spec}', {', '.join(args)}), np.shape(operands[{k}]))"


@vjp("numpy.einsum", "subscripts, *operands", differentiable="operands")
def einsum_vjp(subscripts):
    inputs, output = _einsum_parts(subscripts)
    if "..." in subscripts:  # the letters '...' stands for depend on the operands' ranks
        return {"operands": "einsum_vjp(g, subscripts, operands)"}
    return {"operands": "(" + ", ".join(_einsum_adjoint(k, inputs, output) for k in range(len(inputs))) + ",)"}


@jvp("numpy.einsum")
def einsum_jvp(subscripts):
    inputs, _ = _einsum_parts(subscripts)
    terms = []
    for k in range(len(inputs)):
        args = ", ".join(f"doperands[{j}]" if j == k else f"operands[{j}]" for j in range(len(inputs)))
        terms.append(f"np.einsum(subscripts, {args})")
    return {"operands": " + ".join(terms)}


# Traces and diagonals.

@vjp("numpy.trace", "a, offset=0, axis1=0, axis2=1, dtype=None, out=None", differentiable="a")
def trace_vjp():
    return {"a": "trace_adjoint(g, np.shape(a), offset, axis1, axis2)"}


@jvp("numpy.trace")
def trace_jvp():
    return {"a": "np.trace(da, offset, axis1, axis2)"}


@vjp("numpy.diagonal", "a, offset=0, axis1=0, axis2=1", differentiable="a")
def diagonal_vjp():
    return {"a": "diagonal_adjoint(g, np.shape(a), offset, axis1, axis2)"}


@jvp("numpy.diagonal")
def diagonal_jvp():
    return {"a": "np.diagonal(da, offset, axis1, axis2)"}


@vjp("numpy.diag", "v, k=0", differentiable="v")
def diag_vjp():
    return {"v": "diag_adjoint(g, v, k)"}


@jvp("numpy.diag")
def diag_jvp():
    return {"v": "np.diag(dv, k)"}
