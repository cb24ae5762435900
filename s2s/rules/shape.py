"""Shape and indexing: views and rearrangements whose adjoint undoes them."""
from .registry import jvp, method, vjp


@vjp("ndarray.T", "a")
def transpose_attr_vjp():
    return {"a": "np.transpose(g)"}


@jvp("ndarray.T")
def transpose_attr_jvp():
    return {"a": "np.transpose(da)"}


@vjp("numpy.transpose", "a, axes=None", differentiable="a")
def transpose_vjp(axes):
    if axes is None:
        return {"a": "np.transpose(g)"}
    return {"a": "np.transpose(g, np.argsort(axes))"}


@jvp("numpy.transpose")
def transpose_jvp():
    return {"a": "np.transpose(da, axes)"}


@vjp("numpy.reshape", "a, shape", differentiable="a")
def reshape_vjp():
    return {"a": "np.reshape(g, np.shape(a))"}


@jvp("numpy.reshape")
def reshape_jvp():
    return {"a": "np.reshape(da, shape)"}


@vjp("ndarray.reshape", "a, *shape", differentiable="a")
def reshape_method_vjp():
    return {"a": "np.reshape(g, np.shape(a))"}


@jvp("ndarray.reshape")
def reshape_method_jvp():
    return {"a": "da.reshape(*shape)"}


for _name in ("sum", "mean", "max", "min", "dot", "transpose", "argmax", "argmin"):
    method(_name, "numpy." + _name)
