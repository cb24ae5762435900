"""Small functions that generated code may call.

The emitter copies the source of each helper a generated module uses into that
module, so generated files run without s2s installed. Helpers may use only
``np`` (the array module of the generated file) and each other.
"""


def unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added to an operand of ``shape``."""
    if np.shape(g) == shape:
        return g
    extra = np.ndim(g) - len(shape)
    g = np.sum(g, axis=tuple(range(extra))) if extra > 0 else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and np.shape(g)[i] != 1)
    return np.sum(g, axis=axes, keepdims=True) if axes else np.reshape(g, shape)


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
