"""The autograd/JAX-style API: grad, value_and_grad, vjp, source.

Each wrapper generates its derivative module once per function, argnums,
options and argument kinds (Python float vs array), then calls the compiled
function directly.
"""
from __future__ import annotations

import functools

import numpy as np

from . import derive, emit, source
from .errors import S2SError

_GENERATED_ATTR = "__s2s_module__"


def _argnums_tuple(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


class _Derivative:
    """A generated derivative of ``fn``: compiled lazily, per argument kinds."""

    def __init__(self, fn, argnums, returns, has_aux=False):
        self.fn = fn
        self.argnums = argnums
        self.nums = _argnums_tuple(argnums)
        self.returns = returns
        self.has_aux = has_aux
        self.src = source.from_function(fn)
        self.params = [a.arg for a in self.src.node.args.args]
        for n in self.nums:
            if not -len(self.params) <= n < len(self.params):
                raise S2SError(f"argnums={argnums} is out of range for {fn.__name__}, which "
                               f"takes {len(self.params)} arguments")
        self.wrt = [self.params[n] for n in self.nums]
        self.compiled: dict[tuple, tuple] = {}
        self.last_generated = None

    def module(self, scalars=()):
        key = tuple(sorted(scalars))
        if key not in self.compiled:
            gen = derive.reverse_module(self.src, self.wrt, returns=self.returns,
                                        known_scalars=key, has_aux=self.has_aux,
                                        as_tuple=not isinstance(self.argnums, int))
            namespace = emit.compile_module(gen.text, self.src.name, gen.injected)
            self.compiled[key] = (gen, namespace[gen.entry])
        self.last_generated = self.compiled[key][0]
        return self.compiled[key]

    def __call__(self, *args):
        if len(args) != len(self.params):
            raise TypeError(f"{self.fn.__name__}() takes {len(self.params)} arguments, got {len(args)}")
        scalars = tuple(p for p, a in zip(self.params, args) if isinstance(a, (float, int))
                        and not isinstance(a, bool))
        for n in self.nums:
            if isinstance(args[n], (int, np.integer)) or np.asarray(args[n]).dtype.kind in "biu":
                raise TypeError(f"cannot differentiate with respect to integer argument "
                                f"{self.params[n]!r}; pass a float")
        _, compiled = self.module(scalars)
        out = compiled(*args)
        return self.finish(out, args)

    def finish(self, out, args):
        if self.returns == "value_and_grad":
            value, grads = out
            return value, self.shape_grads(grads, args)
        return self.shape_grads(out, args)

    def shape_grads(self, grads, args):
        single = isinstance(self.argnums, int)
        grads = (grads,) if single else grads
        fixed = []
        for n, g in zip(self.nums, grads):
            x = args[n]
            if isinstance(x, float):
                g = float(g)
            elif isinstance(x, np.ndarray) and (not isinstance(g, np.ndarray) or g.dtype != x.dtype
                                                or g.shape != x.shape):
                g = np.asarray(g, dtype=x.dtype).reshape(x.shape)
            fixed.append(g)
        return fixed[0] if single else tuple(fixed)


def _wrap(derivative: _Derivative, name: str):
    @functools.wraps(derivative.fn)
    def wrapper(*args):
        return derivative(*args)

    wrapper.__name__ = f"{name}_{derivative.fn.__name__}"
    wrapper.__qualname__ = wrapper.__name__
    setattr(wrapper, _GENERATED_ATTR, derivative)
    return wrapper


def grad(fn, argnums=0, has_aux=False):
    """The gradient of scalar-valued ``fn`` with respect to argument(s) ``argnums``.

    With ``has_aux=True``, ``fn`` returns ``(output, aux)`` and the gradient
    function returns ``(gradient, aux)``.
    """
    if has_aux:
        inner = _Derivative(fn, argnums, "value_and_grad", has_aux=True)

        @functools.wraps(fn)
        def with_aux(*args):
            (_, aux), grads = inner(*args)
            return grads, aux

        setattr(with_aux, _GENERATED_ATTR, inner)
        return with_aux
    return _wrap(_Derivative(fn, argnums, "grad"), "grad")


def value_and_grad(fn, argnums=0, has_aux=False):
    """``(fn(*args), grad(fn)(*args))`` in one generated function."""
    return _wrap(_Derivative(fn, argnums, "value_and_grad", has_aux=has_aux), "value_and_grad")


def source_of(fn) -> str:
    """The full generated module behind a function made by s2s."""
    derivative = getattr(fn, _GENERATED_ATTR, None)
    if derivative is None:
        raise S2SError(f"{getattr(fn, '__name__', fn)!r} was not made by s2s")
    if derivative.last_generated is None:
        derivative.module()
    return derivative.last_generated.text
