"""Small functions that generated code may call.

The emitter copies the source of each helper a generated module uses into that
module, so generated files run without s2s installed. Helpers may use only
``np`` (the array module of the generated file) and each other.
"""
import numpy as np  # generated modules bind np (or cp) themselves; helpers are copied


def unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added to an operand of ``shape``."""
    if np.shape(g) == shape:
        return g
    extra = np.ndim(g) - len(shape)
    g = np.sum(g, axis=tuple(range(extra))) if extra > 0 else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and np.shape(g)[i] != 1)
    return np.sum(g, axis=axes, keepdims=True) if axes else np.reshape(g, shape)


def setitem_winners(shape, index):
    """Which elements of ``x[index] = v`` stay written (with repeated indices numpy keeps one)."""
    selected = np.empty(shape)[index].shape
    positions = np.arange(int(np.prod(selected))).reshape(selected)
    order = np.full(shape, -1)
    order[index] = positions
    return order[index] == positions


def expand_reduced(g, shape, axis, keepdims):
    """Broadcast the adjoint of a reduction over ``axis`` back to ``shape``."""
    if axis is not None and not keepdims:
        axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
        g = np.expand_dims(g, tuple(a % len(shape) for a in axes))
    return np.broadcast_to(g, shape)


def reduced_count(shape, axis):
    """How many elements a reduction over ``axis`` of an array of ``shape`` combines."""
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return int(np.prod([shape[a] for a in axes]))


def matmul_vjp_a(g, a, b):
    """Adjoint of ``a`` in ``a @ b`` for any ranks (1-d operands included)."""
    if np.ndim(b) == 1:
        return unbroadcast(g[..., None] * b if np.ndim(a) > 1 else g * b, np.shape(a))
    if np.ndim(a) == 1:
        return unbroadcast((b @ g[..., None])[..., 0], np.shape(a))
    return unbroadcast(g @ np.swapaxes(b, -1, -2), np.shape(a))


def matmul_vjp_b(g, a, b):
    """Adjoint of ``b`` in ``a @ b`` for any ranks (1-d operands included)."""
    if np.ndim(a) == 1:
        return unbroadcast(a[:, None] * g[..., None, :] if np.ndim(b) > 1 else g * a, np.shape(b))
    if np.ndim(b) == 1:
        return unbroadcast((np.swapaxes(a, -1, -2) @ g[..., None])[..., 0], np.shape(b))
    return unbroadcast(np.swapaxes(a, -1, -2) @ g, np.shape(b))


def index_add(d, index, g):
    """``d`` with ``g`` added at ``index``, repeated indices adding up: in place for numpy
    arrays, as a new (lazy) array when ``g`` or ``index`` is not one (a Dask array).

    The lazy path handles one index on the first axis (an int, a slice, a 1-d integer
    integer array): it adds a one-hot matrix product, which Dask computes chunk by chunk.
    """
    def eager(v):
        return isinstance(v, (np.ndarray, np.generic, int, float, slice)) or v is None
    parts = index if isinstance(index, tuple) else (index,)
    if isinstance(d, np.ndarray) and eager(g) and all(eager(p) for p in parts):
        np.add.at(d, index, g)
        return d
    if isinstance(index, tuple):
        raise NotImplementedError("a scatter-add into several axes of a Dask array; "
                                  "index one axis, or compute with numpy arrays")
    n = np.shape(d)[0]
    positions = np.arange(n)[index] if eager(index) else index % n
    if np.ndim(positions) == 0:
        hot = np.reshape(np.arange(n) == positions, (n,) + (1,) * (np.ndim(d) - 1))
        return d + hot * g
    rows = np.shape(d)[1:]
    g = np.reshape(np.broadcast_to(g, np.shape(positions) + rows), (-1,) + rows)
    hot = (np.reshape(positions, (-1, 1)) == np.arange(n)).astype(g.dtype)
    return d + np.tensordot(hot, g, axes=(0, 0))


# --- reductions ----------------------------------------------------------------

def reduced_axes(ndim, axis):
    """The axes a reduction over ``axis`` combines, as a tuple of nonnegative ints (all for None)."""
    if axis is None:
        return tuple(range(ndim))
    return tuple(ax % ndim for ax in ((axis,) if np.ndim(axis) == 0 else axis))


def reduction_layout(shape, axis):
    """How to put the axes a reduction over ``axis`` combines last: ``(order, grouped,
    permuted)`` for ``np.reshape(np.transpose(a, order), grouped)`` (those axes as one) and
    back (``permuted`` is the transposed shape)."""
    axes = reduced_axes(len(shape), axis)
    rest = tuple(ax for ax in range(len(shape)) if ax not in axes)
    order = rest + axes
    return order, tuple(shape[ax] for ax in rest) + (-1,), tuple(shape[ax] for ax in order)


def prod_of_others(a, axis):
    """For each element of ``a``, the product of the other elements it is reduced with.

    Exclusive cumulative products from both ends, so zeros in ``a`` are exact.
    """
    order, grouped, permuted = reduction_layout(np.shape(a), axis)
    moved = np.reshape(np.transpose(a, order), grouped)
    ones = np.ones_like(moved[..., :1])
    before = np.cumprod(np.concatenate([ones, moved[..., :-1]], axis=-1), axis=-1)
    after = np.flip(np.cumprod(np.concatenate([ones, np.flip(moved[..., 1:], -1)], axis=-1), axis=-1), -1)
    return np.transpose(np.reshape(before * after, permuted), np.argsort(order))


def cumprod_partials(a):
    """``m[..., i, j]`` = d cumprod(a)[j] / d a[i] along the last axis (exact with zeros)."""
    n = np.shape(a)[-1]
    later = np.triu(np.ones((n, n), dtype=bool), 1)  # later[i, j]: j > i
    factors = np.where(later, a[..., None, :], 1)  # a[j] for j > i, else 1
    exclusive = np.cumprod(np.concatenate([np.ones_like(a[..., :1]), a[..., :-1]], axis=-1), axis=-1)
    return np.where(later | np.eye(n, dtype=bool), exclusive[..., :, None] * np.cumprod(factors, axis=-1), 0)


def cumprod_vjp(g, a, ans, axis):
    """Adjoint of ``a`` in ``ans = np.cumprod(a, axis)``: a reversed cumsum over ``a``, or,
    where ``a`` has zeros, the exact (quadratic) partials."""
    shape = np.shape(a)
    if axis is None:  # ans and g are flat
        a = np.ravel(a)
        axis = -1
    if np.all(a != 0):
        out = np.flip(np.cumsum(np.flip(g * ans, axis), axis), axis) / a
    else:
        partials = cumprod_partials(np.moveaxis(a, axis, -1))
        out = np.moveaxis((partials @ np.moveaxis(g, axis, -1)[..., None])[..., 0], -1, axis)
    return np.reshape(out, shape)


def cumprod_jvp(da, a, ans, axis):
    """Tangent of ``ans = np.cumprod(a, axis)`` along ``da``."""
    if axis is None:  # ans is flat
        da = np.ravel(da)
        a = np.ravel(a)
        axis = -1
    if np.all(a != 0):
        return ans * np.cumsum(da / a, axis)
    partials = cumprod_partials(np.moveaxis(a, axis, -1))
    return np.moveaxis((np.moveaxis(da, axis, -1)[..., None, :] @ partials)[..., 0, :], -1, axis)


# --- casts ---------------------------------------------------------------------

def astype_adjoint(g, a, dtype):
    """Adjoint of ``a`` in ``a.astype(dtype)``: ``g`` in ``a``'s dtype; zero through a cast
    to integers or booleans (piecewise constant)."""
    if np.dtype(dtype).kind in "fc":
        return np.asarray(g, dtype=np.result_type(a))
    return np.zeros(np.shape(a), dtype=np.result_type(a))


def astype_tangent(da, dtype):
    """Tangent of ``a.astype(dtype)`` along ``da`` (zero through a cast to integers or booleans)."""
    if np.dtype(dtype).kind in "fc":
        return np.asarray(da, dtype=dtype)
    return np.zeros(np.shape(da))


# --- products ------------------------------------------------------------------

def dot_vjp_a(g, a, b):
    """Adjoint of ``a`` in ``np.dot(a, b)``, for operands of any rank."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * b, np.shape(a))
    nb = np.ndim(b)
    b_free = [i for i in range(nb) if i != max(nb - 2, 0)]
    return np.tensordot(g, b, axes=(list(range(np.ndim(g) - len(b_free), np.ndim(g))), b_free))


def dot_vjp_b(g, a, b):
    """Adjoint of ``b`` in ``np.dot(a, b)``, for operands of any rank."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * a, np.shape(b))
    a_free = list(range(np.ndim(a) - 1))
    out = np.tensordot(a, g, axes=(a_free, a_free))
    return np.moveaxis(out, 0, -2) if np.ndim(b) >= 2 else out


def inner_vjp_a(g, a, b):
    """Adjoint of ``a`` in ``np.inner(a, b)`` (contracts the last axes)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * b, np.shape(a))
    na, nb = np.ndim(a), np.ndim(b)
    return np.tensordot(g, b, axes=(list(range(na - 1, na + nb - 2)), list(range(nb - 1))))


def inner_vjp_b(g, a, b):
    """Adjoint of ``b`` in ``np.inner(a, b)`` (contracts the last axes)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * a, np.shape(b))
    a_free = list(range(np.ndim(a) - 1))
    return np.tensordot(g, a, axes=(a_free, a_free))


def tensordot_axes(a, b, axes):
    """``np.tensordot``'s ``axes`` as two lists of nonnegative axes (of ``a``, of ``b``)."""
    na, nb = np.ndim(a), np.ndim(b)
    if np.ndim(axes) == 0:
        return list(range(na - axes, na)), list(range(axes))
    a_axes, b_axes = axes
    a_axes = [a_axes] if np.ndim(a_axes) == 0 else list(a_axes)
    b_axes = [b_axes] if np.ndim(b_axes) == 0 else list(b_axes)
    return [ax % na for ax in a_axes], [ax % nb for ax in b_axes]


def tensordot_vjp_a(g, a, b, axes):
    """Adjoint of ``a`` in ``np.tensordot(a, b, axes)``."""
    a_axes, b_axes = tensordot_axes(a, b, axes)
    a_free = [i for i in range(np.ndim(a)) if i not in a_axes]
    b_free = [i for i in range(np.ndim(b)) if i not in b_axes]
    out = np.tensordot(g, b, axes=(list(range(len(a_free), np.ndim(g))), b_free))
    # out's axes: a_free, then a's contracted axes in the order b holds their partners
    source = a_free + [a_axes[b_axes.index(i)] for i in sorted(b_axes)]
    return np.transpose(out, np.argsort(source))


def tensordot_vjp_b(g, a, b, axes):
    """Adjoint of ``b`` in ``np.tensordot(a, b, axes)``."""
    a_axes, b_axes = tensordot_axes(a, b, axes)
    a_free = [i for i in range(np.ndim(a)) if i not in a_axes]
    b_free = [i for i in range(np.ndim(b)) if i not in b_axes]
    out = np.tensordot(g, a, axes=(list(range(len(a_free))), a_free))
    source = b_free + [b_axes[a_axes.index(i)] for i in sorted(a_axes)]
    return np.transpose(out, np.argsort(source))


def kron_shapes(a, b):
    """The shapes of ``a`` and ``b`` padded with leading 1-axes to the rank of ``np.kron(a, b)``."""
    ndim = max(np.ndim(a), np.ndim(b))
    return ((1,) * (ndim - np.ndim(a)) + np.shape(a), (1,) * (ndim - np.ndim(b)) + np.shape(b))


def kron_vjp_a(g, a, b):
    """Adjoint of ``a`` in ``np.kron(a, b)``: contract each block of ``g`` with ``b``."""
    sa, sb = kron_shapes(a, b)
    blocks = np.reshape(g, [n for pair in zip(sa, sb) for n in pair])
    out = np.tensordot(blocks, np.reshape(b, sb), axes=(list(range(1, 2 * len(sa), 2)), list(range(len(sb)))))
    return np.reshape(out, np.shape(a))


def kron_vjp_b(g, a, b):
    """Adjoint of ``b`` in ``np.kron(a, b)``: the blocks of ``g`` weighted by ``a``."""
    sa, sb = kron_shapes(a, b)
    blocks = np.reshape(g, [n for pair in zip(sa, sb) for n in pair])
    out = np.tensordot(blocks, np.reshape(a, sa), axes=(list(range(0, 2 * len(sa), 2)), list(range(len(sa)))))
    return np.reshape(out, np.shape(b))


# --- diagonals -----------------------------------------------------------------

def diagonal_adjoint(g, shape, offset, axis1, axis2):
    """Adjoint of ``np.diagonal(a, offset, axis1, axis2)``: ``g`` laid on that diagonal."""
    n1, n2 = shape[axis1], shape[axis2]
    rows = np.clip(np.arange(n1) - max(-offset, 0), 0, max(np.shape(g)[-1] - 1, 0))
    spread = np.take(g, rows, axis=-1) if np.shape(g)[-1] else np.zeros(np.shape(g)[:-1] + (n1,))
    full = spread[..., :, None] * np.eye(n1, n2, k=offset)
    return np.moveaxis(full, (-2, -1), (axis1 % len(shape), axis2 % len(shape)))


def trace_adjoint(g, shape, offset, axis1, axis2):
    """Adjoint of ``np.trace(a, offset, axis1, axis2)``."""
    full = np.expand_dims(g, (-2, -1)) * np.eye(shape[axis1], shape[axis2], k=offset)
    return np.moveaxis(full, (-2, -1), (axis1 % len(shape), axis2 % len(shape)))


def diag_adjoint(g, v, k):
    """Adjoint of ``v`` in ``np.diag(v, k)``: extract a diagonal, or lay one down."""
    if np.ndim(v) == 1:
        return np.diagonal(g, k)
    return diagonal_adjoint(g, np.shape(v), k, 0, 1)


# --- linear systems and decompositions -----------------------------------------

def solve_vjp_b(g, a, b):
    """Adjoint of ``b`` in ``np.linalg.solve(a, b)``: solve with the transpose of ``a``."""
    at = np.swapaxes(a, -1, -2)
    if np.ndim(b) == 1:
        return unbroadcast(np.linalg.solve(at, g[..., None])[..., 0], np.shape(b))
    return unbroadcast(np.linalg.solve(at, g), np.shape(b))


def solve_vjp_a(g, a, b, ans):
    """Adjoint of ``a`` in ``ans = np.linalg.solve(a, b)``: ``-solve(a.T, g) @ ans.T``."""
    at = np.swapaxes(a, -1, -2)
    if np.ndim(b) == 1:
        gb = np.linalg.solve(at, g[..., None])
        return unbroadcast(-gb * ans[..., None, :], np.shape(a))
    return unbroadcast(-np.linalg.solve(at, g) @ np.swapaxes(ans, -1, -2), np.shape(a))


def solve_jvp_a(da, a, b, ans):
    """Tangent of ``np.linalg.solve(a, b)`` along ``da``: ``-solve(a, da @ ans)``."""
    if np.ndim(b) == 1:
        return -np.linalg.solve(a, da @ ans[..., None])[..., 0]
    return -np.linalg.solve(a, da @ ans)


def symmetric_input_adjoint(x, uplo):
    """Adjoint of ``a`` for a function of the symmetric matrix that one triangle of ``a`` holds.

    ``x`` is the adjoint of that symmetric matrix (numpy's cholesky and eigh
    read only ``a``'s lower triangle, or its upper one with ``UPLO='U'``).
    """
    both = x + np.swapaxes(x, -1, -2)
    half = np.tril(both) if uplo == "L" else np.triu(both)
    return half - x * np.eye(np.shape(x)[-1])


def symmetric_input_tangent(da, uplo):
    """The symmetric matrix that the triangle ``uplo`` of tangent ``da`` stands for."""
    if uplo == "L":
        return np.tril(da) + np.swapaxes(np.tril(da, -1), -1, -2)
    return np.triu(da) + np.swapaxes(np.triu(da, 1), -1, -2)


def cholesky_vjp(g, L):
    """Adjoint of ``a`` in ``L = np.linalg.cholesky(a)`` (Murray, arXiv:1602.07527)."""
    n = np.shape(L)[-1]
    phi = np.tril(np.swapaxes(L, -1, -2) @ g) / (1 + np.eye(n))
    L_inv = np.linalg.inv(L)
    s = np.swapaxes(L_inv, -1, -2) @ phi @ L_inv
    return symmetric_input_adjoint((s + np.swapaxes(s, -1, -2)) / 2, "L")


def cholesky_jvp(da, L):
    """Tangent of ``L = np.linalg.cholesky(a)`` along ``da``."""
    n = np.shape(L)[-1]
    L_inv = np.linalg.inv(L)
    inner = L_inv @ symmetric_input_tangent(da, "L") @ np.swapaxes(L_inv, -1, -2)
    return L @ (np.tril(inner) / (1 + np.eye(n)))


def lu_permutation(piv):
    """The row order that scipy's ``lu_factor`` pivots ``piv`` stand for: ``a[perm] = l @ u``."""
    perm = np.arange(len(piv))
    for i in range(len(piv)):
        j = piv[i]
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def lu_factors(lu):
    """The unit lower and the upper triangle of scipy's combined ``lu`` of a square matrix."""
    if np.ndim(lu) != 2 or np.shape(lu)[0] != np.shape(lu)[1]:
        raise ValueError("the derivative of scipy.linalg.lu_factor is for one square matrix")
    return np.tril(lu, -1) + np.eye(np.shape(lu)[0]), np.triu(lu)


def lu_factor_vjp(g, ans):
    """Adjoint of ``a`` in ``lu, piv = scipy.linalg.lu_factor(a)``: with ``a[perm] = l @ u``,
    ``d lu = l @ tril(x, -1) + triu(x) @ u`` for ``x = l^-1 @ da[perm] @ u^-1``."""
    lu, piv = ans
    l, u = lu_factors(lu)
    g_lu = g[0]
    g_x = np.tril(l.T @ g_lu, -1) + np.triu(g_lu @ u.T)
    g_permuted = np.linalg.solve(u, np.linalg.solve(l.T, g_x).T).T  # l^-T @ g_x @ u^-T
    return g_permuted[np.argsort(lu_permutation(piv))]


def lu_factor_jvp(da, ans):
    """Tangents ``(d lu, 0)`` of ``scipy.linalg.lu_factor(a)`` along ``da``."""
    lu, piv = ans
    l, u = lu_factors(lu)
    x = np.linalg.solve(u.T, np.linalg.solve(l, da[lu_permutation(piv)]).T).T  # l^-1 @ da[perm] @ u^-1
    return l @ np.tril(x, -1) + np.triu(x) @ u, np.zeros(np.shape(piv))


def eigh_gaps(w):
    """``f[..., i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it."""
    n = np.shape(w)[-1]
    diff = w[..., None, :] - w[..., :, None] + np.eye(n)
    return (1 - np.eye(n)) / diff


def eigh_vjp(g, ans, uplo):
    """Adjoint of ``a`` in ``w, v = np.linalg.eigh(a, uplo)``, for distinct eigenvalues."""
    w, v = ans
    gw, gv = g
    vt = np.swapaxes(v, -1, -2)
    inner = eigh_gaps(w) * (vt @ gv) + np.eye(np.shape(w)[-1]) * gw[..., None, :]
    return symmetric_input_adjoint(v @ inner @ vt, uplo)


def eigh_jvp(da, ans, uplo):
    """Tangents ``(dw, dv)`` of ``np.linalg.eigh(a, uplo)`` along ``da``."""
    w, v = ans
    p = np.swapaxes(v, -1, -2) @ symmetric_input_tangent(da, uplo) @ v
    return np.diagonal(p, axis1=-2, axis2=-1), v @ (eigh_gaps(w) * p)


def eigvalsh_vjp(g, a, uplo):
    """Adjoint of ``a`` in ``np.linalg.eigvalsh(a, uplo)``."""
    w, v = np.linalg.eigh(a, uplo)
    return symmetric_input_adjoint((v * g[..., None, :]) @ np.swapaxes(v, -1, -2), uplo)


def eigvalsh_jvp(da, a, uplo):
    """Tangent of ``np.linalg.eigvalsh(a, uplo)`` along ``da``."""
    w, v = np.linalg.eigh(a, uplo)
    p = np.swapaxes(v, -1, -2) @ symmetric_input_tangent(da, uplo) @ v
    return np.diagonal(p, axis1=-2, axis2=-1)


def singular_values_vjp(g, a):
    """Adjoint of ``a`` in ``np.linalg.svd(a, compute_uv=False)``."""
    u, _, vh = np.linalg.svd(a, full_matrices=False)
    return (u * g[..., None, :]) @ vh


def singular_values_jvp(da, a):
    """Tangent of ``np.linalg.svd(a, compute_uv=False)`` along ``da``."""
    u, _, vh = np.linalg.svd(a, full_matrices=False)
    return np.sum(u * (da @ np.swapaxes(vh, -1, -2)), axis=-2)


def svd_vjp(g, a, ans):
    """Adjoint of ``a`` in ``np.linalg.svd(a, full_matrices=False)`` (Townsend 2016), for
    distinct nonzero singular values."""
    u, s, vh = ans
    gu, gs, gvh = g
    ut, v, gv = np.swapaxes(u, -1, -2), np.swapaxes(vh, -1, -2), np.swapaxes(gvh, -1, -2)
    k = np.shape(s)[-1]
    f = eigh_gaps(s ** 2)  # 1 / (s_j^2 - s_i^2)
    uu, vv = ut @ gu, vh @ gv
    inner = (f * (uu - np.swapaxes(uu, -1, -2))) * s[..., None, :] + np.eye(k) * gs[..., None, :] + \
        s[..., :, None] * (f * (vv - np.swapaxes(vv, -1, -2)))
    out = u @ inner @ vh
    m, n = np.shape(a)[-2:]
    if m > k:
        out = out + (gu - u @ uu) / s[..., None, :] @ vh
    if n > k:
        out = out + u @ (np.swapaxes(gv - v @ vv, -1, -2) / s[..., :, None])
    return out


def svd_jvp(da, a, ans):
    """Tangent of ``np.linalg.svd(a, full_matrices=False)`` along ``da`` (as in JAX)."""
    u, s, vh = ans
    ut, v = np.swapaxes(u, -1, -2), np.swapaxes(vh, -1, -2)
    dp = ut @ da @ v
    ds = np.diagonal(dp, axis1=-2, axis2=-1)
    f = eigh_gaps(s ** 2)
    dss, sds = dp * s[..., None, :], s[..., :, None] * dp
    du = u @ (f * (dss + np.swapaxes(dss, -1, -2)))
    dv = v @ (f * (sds + np.swapaxes(sds, -1, -2)))
    m, n = np.shape(a)[-2:]
    if m > n:
        dav = da @ v
        du = du + (dav - u @ (ut @ dav)) / s[..., None, :]
    if n > m:
        dau = np.swapaxes(da, -1, -2) @ u
        dv = dv + (dau - v @ (vh @ dau)) / s[..., None, :]
    return du, ds, np.swapaxes(dv, -1, -2)


def qr_vjp(g, ans):
    """Adjoint of ``a`` in ``q, r = np.linalg.qr(a)`` (reduced, ``a`` square or tall, full rank)."""
    q, r = ans
    gq, gr = g
    m = r @ np.swapaxes(gr, -1, -2) - np.swapaxes(gq, -1, -2) @ q
    sym = np.tril(m, -1) + np.swapaxes(np.tril(m, -1), -1, -2) + np.tril(np.triu(m))  # from m's lower half
    return np.swapaxes(np.linalg.solve(r, np.swapaxes(gq + q @ sym, -1, -2)), -1, -2)


def qr_jvp(da, ans):
    """Tangent of ``q, r = np.linalg.qr(a)`` along ``da`` (as in JAX)."""
    q, r = ans
    da_rinv = np.swapaxes(np.linalg.solve(np.swapaxes(r, -1, -2), np.swapaxes(da, -1, -2)), -1, -2)
    qt_da_rinv = np.swapaxes(q, -1, -2) @ da_rinv
    lower = np.tril(qt_da_rinv, -1)
    skew = lower - np.swapaxes(lower, -1, -2)
    return q @ (skew - qt_da_rinv) + da_rinv, (qt_da_rinv - skew) @ r


def eig_vjp(g, ans):
    """Adjoint of ``a`` in ``w, v = np.linalg.eig(a)`` for real, distinct eigenvalues (unit-norm
    eigenvectors, as numpy returns them)."""
    w, v = ans
    gw, gv = g
    vt = np.swapaxes(v, -1, -2)
    gv = gv - v * np.sum(gv * v, axis=-2, keepdims=True)  # the normalization's share
    inner = np.eye(np.shape(w)[-1]) * gw[..., None, :] + eigh_gaps(w) * (vt @ gv)
    return np.swapaxes(np.linalg.inv(v), -1, -2) @ inner @ vt


def eig_jvp(da, ans):
    """Tangent of ``w, v = np.linalg.eig(a)`` along ``da`` (real, distinct eigenvalues)."""
    w, v = ans
    x = np.linalg.solve(v, da @ v)
    dv = v @ (eigh_gaps(w) * x)
    dv = dv - v * np.sum(v * dv, axis=-2, keepdims=True)
    return np.diagonal(x, axis1=-2, axis2=-1), dv


def expm_frechet(a, e):
    """The derivative of ``scipy.linalg.expm`` at ``a`` along ``e`` (2-D)."""
    from scipy.linalg import expm_frechet as frechet
    return frechet(a, e, compute_expm=False)


def expm_frechet2(a, e, d):
    """The derivative of ``expm_frechet(a, e)`` in ``a`` along ``d``: the top right block of
    the exponential of [[a, e, d, 0], [0, a, 0, d], [0, 0, a, e], [0, 0, 0, a]] (2-D)."""
    from scipy.linalg import expm
    n, z = np.shape(a)[-1], np.zeros_like(a)
    return expm(np.block([[a, e, d, z], [z, a, z, d], [z, z, a, e], [z, z, z, a]]))[:n, 3 * n:]


def sylvester(a, q):
    """``x`` with ``a @ x + x @ a = q``: the derivative of ``scipy.linalg.sqrtm`` (``a`` its value)."""
    from scipy.linalg import solve_sylvester
    return solve_sylvester(a, a, q)


def norm_partial(x, ord, axis, keepdims, ans):
    """d np.linalg.norm(x, ord, axis, keepdims) / d x, elementwise (shape of ``x``).

    Vector norms (any ``ord``) and the matrix norms 'fro', 'nuc', 1, -1, 2, -2,
    inf and -inf; ties in max/min-type norms share the derivative equally.
    """
    full = expand_reduced(ans, np.shape(x), axis, keepdims)
    if len(reduced_axes(np.ndim(x), axis)) == 1:
        return vector_norm_partial(x, ord, axis, full)
    if ord == "nuc" or ord == 2 or ord == -2:
        return spectral_norm_partial(x, ord, axis)
    return matrix_norm_partial(x, ord, axis, full)


def vector_norm_partial(x, ord, axis, full):
    """d norm / d x for a vector norm; ``full`` is the norm broadcast to the shape of ``x``."""
    if ord is None or ord == 2:
        return x / full
    if ord == 0:
        return np.zeros_like(x)
    if ord == np.inf or ord == -np.inf:
        mask = np.abs(x) == full
        return np.sign(x) * mask / np.sum(mask, axis=reduced_axes(np.ndim(x), axis), keepdims=True)
    return np.sign(x) * (np.abs(x) / full) ** (ord - 1)


def matrix_norm_partial(x, ord, axis, full):
    """d norm / d x for the Frobenius norm and the matrix norms 1, -1, inf and -inf."""
    if ord is None or ord == "fro":
        return x / full
    axes = reduced_axes(np.ndim(x), axis)
    if len(axes) != 2:
        raise ValueError("np.linalg.norm with ord=%r needs a vector or a matrix" % (ord,))
    if ord not in (1, -1, np.inf, -np.inf):
        raise NotImplementedError("np.linalg.norm with matrix ord=%r has no rule" % (ord,))
    m = np.moveaxis(x, axes, (-2, -1))
    along, across = (-2, -1) if ord in (1, -1) else (-1, -2)  # column sums for 1, row sums for inf
    sums = np.sum(np.abs(m), axis=along, keepdims=True)
    pick = np.max(sums, axis=across, keepdims=True) if ord > 0 else np.min(sums, axis=across, keepdims=True)
    mask = sums == pick
    partial = np.sign(m) * mask / np.sum(mask, axis=across, keepdims=True)
    return np.moveaxis(partial, (-2, -1), axes)


def spectral_norm_partial(x, ord, axis):
    """d norm / d x for the matrix norms of singular values: 'nuc', 2 and -2."""
    axes = reduced_axes(np.ndim(x), axis)
    u, s, vh = np.linalg.svd(np.moveaxis(x, axes, (-2, -1)), full_matrices=False)
    if ord == 2:  # the largest singular value's pair
        u, vh = u[..., :, :1], vh[..., :1, :]
    elif ord == -2:  # the smallest one's
        u, vh = u[..., :, -1:], vh[..., -1:, :]
    return np.moveaxis(u @ vh, (-2, -1), axes)


# --- shape ---------------------------------------------------------------------

def split_like(g, arrays, axis):
    """The adjoints of the arrays that ``np.concatenate(arrays, axis)`` joined, as a tuple.

    Arrays of lower rank than ``g`` count as having leading 1-axes (``hstack`` of
    scalars, ``vstack`` of vectors); ``axis=None`` splits the flattened ``g``.
    """
    if axis is None:
        sizes = [np.size(x) for x in arrays]
    else:
        sizes = [((1,) * (np.ndim(g) - np.ndim(x)) + np.shape(x))[axis] for x in arrays]
    bounds, total = [], 0
    for size in sizes[:-1]:
        total += size
        bounds.append(total)
    pieces = np.split(g, bounds, axis=0 if axis is None else axis)
    return tuple(np.reshape(p, np.shape(x)) for p, x in zip(pieces, arrays))


def unstack(g, axis):
    """The adjoints of the arrays that ``np.stack(arrays, axis)`` joined, as a tuple."""
    return tuple(np.moveaxis(g, axis, 0))


def untile(g, shape, reps):
    """Adjoint of ``np.tile(a, reps)`` for ``a`` of ``shape``: the sum over the tiles."""
    reps = (reps,) if np.ndim(reps) == 0 else tuple(reps)
    ndim = max(len(reps), len(shape))
    reps = (1,) * (ndim - len(reps)) + reps
    full = (1,) * (ndim - len(shape)) + tuple(shape)
    split = [n for pair in zip(reps, full) for n in pair]
    summed = np.sum(np.reshape(g, split), axis=tuple(range(0, 2 * ndim, 2)))
    return np.reshape(summed, shape)


def unrepeat(g, shape, repeats, axis):
    """Adjoint of ``np.repeat(a, repeats, axis)`` for ``a`` of ``shape``: sum each run."""
    if axis is None:
        g, axis, n = np.ravel(g), 0, 1
        for size in shape:
            n *= size
    else:
        n = shape[axis]
    if np.ndim(repeats) == 0 or np.size(repeats) == 1:
        r = int(np.reshape(repeats, ()))
        moved = np.moveaxis(g, axis, -1)
        summed = np.sum(np.reshape(moved, np.shape(moved)[:-1] + (n, r)), axis=-1)
        return np.reshape(np.moveaxis(summed, -1, axis), shape)
    ends = np.cumsum(repeats)
    totals = np.cumsum(g, axis=axis)
    zero = np.zeros_like(np.take(totals, [0], axis=axis))
    totals = np.concatenate([zero, totals], axis=axis)
    summed = np.take(totals, ends, axis=axis) - np.take(totals, ends - repeats, axis=axis)
    return np.reshape(summed, shape)


def unpad(g, pad_width):
    """Adjoint of ``np.pad(a, pad_width)`` (constant mode): the unpadded middle of ``g``."""
    ndim = np.ndim(g)
    widths = [[int(w) for w in pair] for pair in np.broadcast_to(np.asarray(pad_width), (ndim, 2)).tolist()]
    return g[tuple(slice(lo, np.shape(g)[i] - hi) for i, (lo, hi) in enumerate(widths))]


def undiff(g, n, axis):
    """Adjoint of ``np.diff(a, n, axis)``: each difference's adjoint is a negated diff."""
    pad = [(0, 0)] * np.ndim(g)
    pad[axis] = (1, 1)
    for _ in range(n):
        g = -np.diff(np.pad(g, pad), axis=axis)
    return g


def sort_adjoint(g, a, axis):
    """Adjoint of ``np.sort(a, axis)``: ``g`` put back where each sorted value came from."""
    if axis is None:
        return np.reshape(sort_adjoint(g, np.ravel(a), -1), np.shape(a))
    order = np.argsort(a, axis=axis, kind="stable")
    return np.take_along_axis(g, np.argsort(order, axis=axis, kind="stable"), axis=axis)


def sort_tangent(da, a, axis):
    """Tangent of ``np.sort(a, axis)`` along ``da``."""
    if axis is None:
        return sort_tangent(np.ravel(da), np.ravel(a), -1)
    return np.take_along_axis(da, np.argsort(a, axis=axis, kind="stable"), axis=axis)



def take_adjoint(g, a, indices, axis):
    """Adjoint of ``np.take(a, indices, axis)``: ``g`` added back at ``indices`` (repeats add up)."""
    out = np.zeros(np.shape(a), dtype=np.result_type(g, a))
    if axis is None:
        np.add.at(np.reshape(out, (-1,)), indices, g)
    else:
        np.add.at(out, (slice(None),) * (axis % np.ndim(a)) + (indices,), g)
    return out


def take_along_axis_adjoint(g, arr, indices, axis):
    """Adjoint of ``np.take_along_axis(arr, indices, axis)`` (repeats add up)."""
    out = np.zeros(np.shape(arr), dtype=np.result_type(g, arr))
    if axis is None:
        np.add.at(np.reshape(out, (-1,)), indices, g)
        return out
    axis = axis % np.ndim(arr)
    ndim = np.ndim(arr)
    grids = [np.reshape(np.arange(n), (1,) * i + (n,) + (1,) * (ndim - i - 1)) for i, n in enumerate(np.shape(arr))]
    grids[axis] = indices
    np.add.at(out, tuple(grids), g)
    return out

# --- special functions -----------------------------------------------------------

def sinc_derivative(x):
    """d np.sinc(x) / dx = (cos(pi x) - sinc(x)) / x, with its series near 0."""
    small = np.abs(x) < 1e-3
    safe = np.where(small, 1.0, x)
    series = -(np.pi ** 2) * x / 3 + np.pi ** 4 * x ** 3 / 30
    return np.where(small, series, (np.cos(np.pi * safe) - np.sinc(safe)) / safe)


def digamma(x):
    """psi(x) = d log|Gamma(x)| / dx: reflection below 1/2, recurrence to x >= 6, then the
    asymptotic series (accurate to about 1e-12)."""
    reflect = x < 0.5
    z = np.where(reflect, 1.0 - x, x)
    acc = np.zeros_like(z)
    for _ in range(6):
        small = z < 6
        acc = acc - np.where(small, 1.0 / z, 0.0)
        z = np.where(small, z + 1.0, z)
    r = 1.0 / (z * z)
    series = np.log(z) - 0.5 / z - r * (1 / 12 - r * (1 / 120 - r * (1 / 252 - r * (1 / 240 - r / 132))))
    return np.where(reflect, acc + series - np.pi / np.tan(np.pi * np.where(reflect, x, 0.5)), acc + series)


def trigamma(x):
    """psi'(x), the derivative of ``digamma``: same reflection, recurrence and series."""
    reflect = x < 0.5
    z = np.where(reflect, 1.0 - x, x)
    acc = np.zeros_like(z)
    for _ in range(6):
        small = z < 6
        acc = acc + np.where(small, 1.0 / (z * z), 0.0)
        z = np.where(small, z + 1.0, z)
    r = 1.0 / (z * z)
    series = 1 / z + r / 2 + r / z * (1 / 6 - r * (1 / 30 - r * (1 / 42 - r * (1 / 30 - r * 5 / 66))))
    psi1 = acc + series
    return np.where(reflect, (np.pi / np.sin(np.pi * np.where(reflect, x, 0.5))) ** 2 - psi1, psi1)



def log_gamma(x):
    """log|Gamma(x)| (scipy.special.gammaln) in numpy: reflection below 1/2, recurrence to
    x >= 6, then Stirling's series (accurate to about 1e-12)."""
    reflect = x < 0.5
    z = np.where(reflect, 1.0 - x, x)
    acc = np.zeros_like(z)
    for _ in range(6):
        small = z < 6
        acc = acc - np.where(small, np.log(z), 0.0)
        z = np.where(small, z + 1.0, z)
    r = 1.0 / (z * z)
    series = (z - 0.5) * np.log(z) - z + 0.5 * np.log(2 * np.pi) + \
        (1 / 12 - r * (1 / 360 - r * (1 / 1260 - r * (1 / 1680 - r / 1188)))) / z
    reflected = np.log(np.pi / np.abs(np.sin(np.pi * np.where(reflect, x, 0.5))))
    return np.where(reflect, reflected - acc - series, acc + series)


def multidigamma(a, d):
    """d multigammaln(a, d) / da: the sum of digamma(a + (1 - j) / 2) over j = 1..d."""
    return np.sum(digamma(np.expand_dims(a, -1) + (1 - np.arange(1, d + 1)) / 2), axis=-1)


def multitrigamma(a, d):
    """d multidigamma(a, d) / da."""
    return np.sum(trigamma(np.expand_dims(a, -1) + (1 - np.arange(1, d + 1)) / 2), axis=-1)


def pad_adjoint(g, shape, pad_width, mode):
    """Adjoint of ``np.pad(a, pad_width, mode)`` for the modes that copy elements (edge,
    reflect, symmetric, wrap): each element of ``g`` goes back to the one it copies."""
    size = int(np.prod(shape))
    source = np.pad(np.reshape(np.arange(size), shape), pad_width, mode)
    return np.reshape(np.bincount(np.ravel(source), weights=np.ravel(g), minlength=size), shape)


def convolve_adjoint(g, x, other, mode):
    """Adjoint of ``x`` in ``np.convolve(x, other, mode)``: ``g`` put back in the full
    output, correlated with ``other``."""
    n, m = np.size(x), np.size(other)
    start = {"full": 0, "same": (min(n, m) - 1) // 2, "valid": min(n, m) - 1}[mode]
    full = np.zeros(n + m - 1, dtype=np.result_type(g, other))
    full[start:start + np.size(g)] = g
    return np.correlate(full, other, "valid")


def signal_convolve_adjoint(g, x, other, mode):
    """Adjoint of ``x`` in ``scipy.signal.convolve(x, other, mode)`` (any rank), likewise."""
    from scipy.signal import correlate
    full_shape = tuple(a + b - 1 for a, b in zip(np.shape(x), np.shape(other)))
    full = np.zeros(full_shape, dtype=np.result_type(g, other))
    start = [(f - s) // 2 for f, s in zip(full_shape, np.shape(g))]  # scipy centres same and valid
    full[tuple(slice(b, b + s) for b, s in zip(start, np.shape(g)))] = g
    return correlate(full, other, mode="valid")


def interp_cells(x, xp):
    """The interval of ``xp`` each ``x`` falls in (the first or last one outside)."""
    return np.clip(np.searchsorted(xp, x, side="right") - 1, 0, np.size(xp) - 2)


def interp_slope(x, xp, fp):
    """d np.interp(x, xp, fp) / dx: the slope of the piece ``x`` is on, 0 outside ``xp``."""
    i = interp_cells(x, xp)
    slope = (fp[i + 1] - fp[i]) / (xp[i + 1] - xp[i])
    return np.where((x >= xp[0]) & (x <= xp[-1]), slope, 0.0)


def interp_fp_adjoint(g, x, xp, n, left, right):
    """Adjoint of ``fp`` in ``np.interp(x, xp, fp, left, right)``: each ``g`` split between
    the two ends of its piece (to ``fp[0]``/``fp[-1]`` outside, unless left/right are given)."""
    g = np.ravel(np.broadcast_to(g, np.shape(x)))
    x = np.ravel(x)
    i = interp_cells(x, xp)
    t = np.clip((x - xp[i]) / (xp[i + 1] - xp[i]), 0.0, 1.0)
    below, above = x < xp[0], x > xp[-1]
    to_low = np.where(below, 1.0 if left is None else 0.0, np.where(above, 0.0, 1 - t))
    to_high = np.where(above, 1.0 if right is None else 0.0, np.where(below, 0.0, t))
    out = np.zeros(n, dtype=np.result_type(g, float))
    np.add.at(out, i, g * to_low)
    np.add.at(out, i + 1, g * to_high)
    return out


def einsum_spelled(subscripts, ndims):
    """``np.einsum`` subscripts with '...' replaced by letters, given each operand's rank:
    (the input subscripts, the output subscript)."""
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    inputs = inputs.split(",")
    free = [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in spec]
    counts = [nd - len(sub.replace("...", "")) if "..." in sub else 0 for sub, nd in zip(inputs, ndims)]
    width = max(counts + [0])
    letters = "".join(free[:width])
    inputs = [sub.replace("...", letters[width - n:]) for sub, n in zip(inputs, counts)]
    if arrow:
        return inputs, output.replace("...", letters)
    joined = "".join(inputs)
    return inputs, letters + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and c not in letters))


def einsum_vjp(g, subscripts, operands):
    """Adjoints of the operands of ``np.einsum(subscripts, *operands)``, '...' included: each
    is another einsum of ``g`` and the other operands (ones for an axis summed in it alone)."""
    inputs, output = einsum_spelled(subscripts, [np.ndim(x) for x in operands])
    adjoints = []
    for k, x in enumerate(operands):
        others = [j for j in range(len(inputs)) if j != k]
        known = set(output).union(*[set(inputs[j]) for j in others])
        alone = [i for i, c in enumerate(inputs[k]) if c not in known]
        spec = ",".join([output] + [inputs[j] for j in others] + [inputs[k][i] for i in alone]) + "->" + inputs[k]
        args = [g] + [operands[j] for j in others] + [np.ones(np.shape(x)[i]) for i in alone]
        adjoints.append(unbroadcast(np.einsum(spec, *args), np.shape(x)))
    return tuple(adjoints)


def interp_fp_adjoint_tangent(g, x, xp, n, dx):
    """Tangent of ``interp_fp_adjoint(g, x, ...)`` along ``dx``: inside ``xp`` each ``g``'s
    split moves from the low end of its piece to the high end at the piece's rate."""
    g = np.ravel(np.broadcast_to(g, np.shape(x)))
    dx = np.ravel(np.broadcast_to(dx, np.shape(x)))
    x = np.ravel(x)
    i = interp_cells(x, xp)
    rate = np.where((x >= xp[0]) & (x <= xp[-1]), g * dx / (xp[i + 1] - xp[i]), 0.0)
    out = np.zeros(n, dtype=np.result_type(rate, float))
    np.add.at(out, i, -rate)
    np.add.at(out, i + 1, rate)
    return out


def odeint_solve(func, func_vjp, func_jvp, inputs, options):
    """The states, one row per time of ``t``, of ``dy/dt = func(y, t, *args)`` from
    ``y(t[0]) = y0``, for ``inputs = (y0, t, *args)``: scipy's odeint, or its solve_ivp
    where ``options`` names a method (see s2s/ode.py)."""
    return ode_integrate(func, inputs[0], inputs[1], tuple(inputs[2:]), options)


def ode_integrate(func, y0, t, args, options):
    """``scipy.integrate.odeint(func, y0, t, args, **options)``, or ``solve_ivp`` with
    ``options["method"]``, its states at ``t`` one per row."""
    if "method" not in options:
        from scipy.integrate import odeint
        return odeint(func, y0, t, args, **options)
    from scipy.integrate import solve_ivp
    settings = dict(options)
    method = settings.pop("method")
    t = np.asarray(t, dtype=float)
    if t[0] == t[-1]:  # nothing to integrate (solve_ivp refuses an empty span)
        return np.tile(np.asarray(y0, dtype=float), (len(t), 1))
    new = np.concatenate([[True], np.diff(t) != 0])  # solve_ivp refuses a time twice in t_eval
    solution = solve_ivp(func, (t[0], t[-1]), y0, method, t_eval=t[new], args=args, **settings)
    if not solution.success:
        raise RuntimeError(f"solve_ivp failed: {solution.message}")
    return solution.y.T[np.cumsum(new) - 1]


def odeint_adjoint(g, ans, func, func_vjp, inputs, options):
    """Adjoints of ``inputs = (y0, t, *args)`` for ``ans = odeint_solve(func, ..., inputs,
    options)`` and its adjoint ``g``: the adjoint equations solved backwards from each time to
    the one before (the method of autograd and JAX), reading the state on the way from a dense
    forward solve of that interval (integrating the state backwards is unstable where the ODE
    damps). ``func_vjp(y, t, *args, a)`` is the right-hand side's vector-Jacobian product."""
    y0, t, args = inputs[0], inputs[1], tuple(inputs[2:])
    tfirst = bool(options.get("tfirst", False)) or "method" in options
    n = np.size(y0)
    sizes = [int(np.size(a)) for a in args]

    def f(y, s):
        return np.ravel(func(s, y, *args) if tfirst else func(y, s, *args))

    def adjoint_equations(state):  # d/ds of (a, the adjoints of t[0] and args) along the state y(s)
        def derivative(*point):
            adjoints, s = (point[1], point[0]) if tfirst else point
            y, a = state(s), adjoints[:n]
            vjp = func_vjp(s, y, *args, -a) if tfirst else func_vjp(y, s, *args, -a)
            a_y, a_s = (vjp[1], vjp[0]) if tfirst else (vjp[0], vjp[1])
            return np.concatenate([np.ravel(a_y), [np.sum(a_s)]] + [np.ravel(x) for x in vjp[2:]])
        return derivative

    g = np.reshape(g, np.shape(ans))
    a, a_t0, a_args = np.array(g[-1], dtype=float), 0.0, np.zeros(sum(sizes))
    dt = np.zeros(len(t))
    for i in range(len(t) - 1, 0, -1):
        dt[i] = np.dot(f(ans[i], t[i]), g[i])  # moving t[i] moves the state read there
        a_t0 = a_t0 - dt[i]
        if t[i] != t[i - 1]:
            state = ode_trajectory(func, ans[i - 1], t[i - 1], t[i], args, options)
            start = np.concatenate([a, [a_t0], a_args])
            back = ode_integrate(adjoint_equations(state), start, np.array([t[i], t[i - 1]]), (), options)[-1]
            a, a_t0, a_args = back[:n], back[n], back[n + 1:]
        a = a + g[i - 1]
    dt[0] = a_t0
    adjoints, offset = [], 0
    for arg, size in zip(args, sizes):
        piece = a_args[offset:offset + size]
        offset += size
        adjoints.append(float(piece[0]) if isinstance(arg, (float, int)) else np.reshape(piece, np.shape(arg)))
    return (np.reshape(a, np.shape(y0)), np.reshape(dt, np.shape(t))) + tuple(adjoints)


def ode_trajectory(func, y0, start, end, args, options):
    """The solution from ``y(start) = y0`` to ``end``, a function of time: solve_ivp's dense
    output, with the call's method (LSODA, odeint's, for odeint) and tolerances."""
    from scipy.integrate import solve_ivp
    settings = dict(options)
    fun, method = func, settings.pop("method", None)
    if method is None:  # odeint's: LSODA, and its options in solve_ivp's words
        if not settings.get("tfirst", False):
            def fun(s, y, *a):
                return func(y, s, *a)
        method = "LSODA"
        settings = {"rtol": settings.get("rtol") or 1.49012e-8, "atol": settings.get("atol") or 1.49012e-8,
                    "max_step": settings.get("hmax") or np.inf, "min_step": settings.get("hmin") or 0.0,
                    **({"first_step": settings["h0"]} if settings.get("h0") else {})}
    solution = solve_ivp(fun, (start, end), y0, method, args=args, dense_output=True, **settings)
    if not solution.success:
        raise RuntimeError(f"solve_ivp failed: {solution.message}")
    return solution.sol


def odeint_vjp(func, func_vjp, func_jvp, func_vjp_jvp, point, options):
    """``odeint_adjoint(g, ans, func, func_vjp, inputs, options)`` for ``point = (g, ans,
    inputs)``: a generated gradient's adjoint solve as a second derivative reads it (see
    s2s/ode.py), with the functions its tangent (``odeint_vjp_tangent``) calls."""
    g, ans, inputs = point
    return odeint_adjoint(g, ans, func, func_vjp, inputs, options)


def odeint_vjp_tangent(func, func_vjp, func_jvp, func_vjp_jvp, point, dpoint, options):
    """Tangent of ``odeint_vjp(..., point, options)`` along ``dpoint``: odeint_adjoint's steps
    differentiated. Each interval's adjoints ``z`` are solved backwards beside their tangent
    ``dz``, reading the state and its tangent ``(y, dy)`` from a dense forward solve of the
    sensitivity equations; ``func_vjp_jvp`` (the JVP of the right-hand side's VJP) gives the
    second derivatives. Moving an interval's ends moves where its solves start and stop."""
    (g, ans, inputs), (dg, dans, dinputs) = point, dpoint
    y0, t, args, dargs = inputs[0], inputs[1], tuple(inputs[2:]), tuple(dinputs[2:])
    tfirst = bool(options.get("tfirst", False)) or "method" in options
    n, m = np.size(y0), np.size(y0) + 1 + sum(int(np.size(a)) for a in args)

    def order(y, s):  # the right-hand side's (state, time) arguments in its own order
        return (s, y) if tfirst else (y, s)

    def flat(adjoints, like=None):  # a VJP's (y, time, *args) adjoints as one vector
        like = adjoints if like is None else like
        pieces = [np.broadcast_to(x, np.shape(v)) for x, v in zip(adjoints, like)]
        a_y, a_s = (pieces[1], pieces[0]) if tfirst else (pieces[0], pieces[1])
        return np.concatenate([np.ravel(a_y), [np.sum(a_s)]] + [np.ravel(x) for x in pieces[2:]])

    def rates(y, s, a):  # the adjoints' rates of change
        return flat(func_vjp(*order(y, s), *args, -a))

    def sensitivities(*point):  # the state and its tangent
        w, s = (point[1], point[0]) if tfirst else point
        value, tangent = func_jvp(*order(w[:n], s), *args, *order(w[n:], 0.0), *dargs)
        return np.concatenate([np.ravel(value), np.ravel(tangent)])

    def adjoint_tangents(state):  # the adjoints and their tangents, along the state and its tangent
        def derivative(*point):
            w, s = (point[1], point[0]) if tfirst else point
            y = state(s)
            value, tangent = func_vjp_jvp(*order(y[:n], s), *args, -w[:n], *order(y[n:], 0.0), *dargs, -w[m:m + n])
            return np.concatenate([flat(value), flat(tangent, value)])
        return derivative

    g, dg = np.reshape(g, np.shape(ans)), np.reshape(np.broadcast_to(dg, np.shape(ans)), np.shape(ans))
    dans, dt = np.broadcast_to(dans, np.shape(ans)), np.broadcast_to(dinputs[1], np.shape(t))
    z = np.concatenate([np.array(g[-1], dtype=float), np.zeros(m - n)])
    dz = np.concatenate([np.array(dg[-1], dtype=float), np.zeros(m - n)])
    ddt = np.zeros(len(t))  # the tangents of t's adjoints
    for i in range(len(t) - 1, 0, -1):
        value, tangent = func_jvp(*order(ans[i], t[i]), *args, *order(dans[i], dt[i]), *dargs)
        z[n] -= np.dot(np.ravel(value), g[i])  # moving t[i] moves the state read there
        ddt[i] = np.dot(np.ravel(tangent), g[i]) + np.dot(np.ravel(value), dg[i])
        dz[n] -= ddt[i]
        start = np.ravel(ans[i - 1])
        dstart = np.ravel(dans[i - 1]) - np.ravel(func(*order(start, t[i - 1]), *args)) * dt[i - 1]
        if t[i] != t[i - 1]:
            state = ode_trajectory(sensitivities, np.concatenate([start, dstart]), t[i - 1], t[i], (), options)
            dz = dz - rates(state(t[i])[:n], t[i], z[:n]) * dt[i]  # the backward solve starts at t[i]
            both = np.concatenate([z, dz])
            both = ode_integrate(adjoint_tangents(state), both, np.array([t[i], t[i - 1]]), (), options)[-1]
            z, dz = both[:m], both[m:]
        else:
            dz = dz - rates(start, t[i], z[:n]) * dt[i]
        dz = dz + rates(start, t[i - 1], z[:n]) * dt[i - 1]  # and stops at t[i - 1]
        z[:n] += g[i - 1]
        dz[:n] += dg[i - 1]
    ddt[0] = dz[n]
    tangents, offset = [], n + 1
    for arg in args:
        piece = dz[offset:offset + np.size(arg)]
        offset += np.size(arg)
        tangents.append(float(piece[0]) if isinstance(arg, (float, int)) else np.reshape(piece, np.shape(arg)))
    return (np.reshape(dz[:n], np.shape(y0)), np.reshape(ddt, np.shape(t))) + tuple(tangents)


def odeint_tangent(ans, func, func_jvp, inputs, dinputs, options):
    """Tangent of ``ans = odeint_solve(func, ..., inputs, options)`` along ``dinputs``: the
    forward sensitivity equations ``ds/dt = J_y s + J_args dargs`` solved beside the state,
    ``func_jvp`` being the right-hand side's Jacobian-vector product; moving a time moves
    the state read there along ``func``."""
    y0, t, args = inputs[0], inputs[1], tuple(inputs[2:])
    dy0, dt, dargs = dinputs[0], dinputs[1], tuple(dinputs[2:])
    tfirst = bool(options.get("tfirst", False)) or "method" in options
    n = np.size(y0)

    def f(y, s):
        return np.ravel(func(s, y, *args) if tfirst else func(y, s, *args))

    def sensitivities(*point):  # the state and its tangent s
        state, time = (point[1], point[0]) if tfirst else point
        y, s = state[:n], state[n:]
        value, tangent = func_jvp(time, y, *args, 0.0, s, *dargs) if tfirst else \
            func_jvp(y, time, *args, s, 0.0, *dargs)
        return np.concatenate([np.ravel(value), np.ravel(tangent)])

    dt = np.broadcast_to(dt, np.shape(t))
    start = np.concatenate([np.ravel(y0), np.ravel(dy0) - f(np.ravel(y0), t[0]) * dt[0]])
    states = ode_integrate(sensitivities, start, t, (), options)
    moved = np.stack([f(ans[i], t[i]) * dt[i] for i in range(len(t))])
    return states[:, n:] + moved
