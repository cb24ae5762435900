"""Decorators and wrappers around the user's functions, for the source stage.

s2s reads a function's own source. A decorator that wraps it (``@functools.wraps``
style, or ``h2 = double(h)``) runs other code around it, which that source does
not show: following ``__wrapped__`` to the inner function would differentiate
something else than what the user calls (a silent wrong gradient). Only wrappers
known to return the inner function's values are seen through: s2s's own
(``custom_vjp``, ``differentiable``), ``numba.njit``/``numba.jit`` (the same
Python function compiled) and ``functools.cache``/``lru_cache``. Any other is
refused at the decorator's line.
"""
from __future__ import annotations

import ast
import functools
import inspect

from .astutil import dotted
from .errors import UnsupportedSyntax

TRANSPARENT = {"s2s.differentiable", "s2s.custom_vjp", "numba.njit", "numba.jit",
               "functools.cache", "functools.lru_cache", "staticmethod", "classmethod"}
HINT = ("differentiate the function without the decorator (its `__wrapped__`), and write what "
        "the decorator does to values inside the function")


def unwrapped(fn):
    """``fn`` with its transparent wrappers removed; ``(fn, wrapper)`` where ``wrapper`` is
    the first other wrapper found (None when there is none)."""
    layer = fn
    while hasattr(layer, "__wrapped__") and layer.__wrapped__ is not layer:
        if not _transparent(layer):
            return inspect.unwrap(layer), layer
        layer = layer.__wrapped__
    return layer, None


def _transparent(layer) -> bool:
    kind = type(layer)
    if kind.__name__ == "CustomVJP" and kind.__module__ == "s2s.custom":
        return True
    if kind.__module__.startswith("numba.") and getattr(layer, "py_func", None) is layer.__wrapped__:
        return True  # a numba dispatcher: the same function, compiled
    return isinstance(layer, functools._lru_cache_wrapper)


def refuse_wrapper(src, wrapper):
    """The error for ``src`` (the inner function) called through ``wrapper``: at the first of
    its decorators that is not transparent, else at its ``def``."""
    node = next((d for d in src.node.decorator_list if _live_name(d, src.live) not in TRANSPARENT),
                None)
    code = getattr(wrapper, "__code__", None)
    name = type(wrapper).__name__ if code is None else \
        f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"
    return src.error(UnsupportedSyntax, f"{src.name} is called through {name}, a wrapper made "
                     f"by a decorator: s2s reads {src.name}'s own source and cannot see what "
                     "the wrapper does to its values",
                     node, hint=HINT, stage="source")


def check_static(src, scope) -> None:
    """Refuse a decorator of a function read from a file that is not known to be transparent."""
    for node in src.node.decorator_list:
        if _static_name(node, scope) not in TRANSPARENT:
            raise src.error(UnsupportedSyntax, f"{src.name} has the decorator "
                            f"{ast.unparse(_func(node))}: s2s reads {src.name}'s own source and "
                            "cannot see what the decorator does to its values", node,
                            hint=HINT, stage="source")


def _func(node):
    """``@numba.njit(cache=True)`` -> ``numba.njit``."""
    return node.func if isinstance(node, ast.Call) else node


def _dotted(node) -> list[str] | None:
    name = dotted(node)
    return name.split(".") if name is not None else None


def _static_name(node, scope) -> str | None:
    """The qualified name a decorator resolves to in a module read as text."""
    parts = _dotted(_func(node))
    if parts is None:
        return None
    if parts[0] in ("staticmethod", "classmethod") and len(parts) == 1:
        return parts[0]
    binding = scope.get(parts[0])
    if binding is None or binding.kind not in ("module", "library", "derivative"):
        return None
    return ".".join([binding.qualname] + parts[1:])


def _live_name(node, fn) -> str | None:
    """The qualified name of a decorator of live function ``fn`` (for error placement)."""
    parts = _dotted(_func(node))
    if parts is None or fn is None:
        return None
    if parts == ["staticmethod"] or parts == ["classmethod"]:
        return parts[0]
    value = getattr(fn, "__globals__", {}).get(parts[0])
    for attr in parts[1:]:
        value = getattr(value, attr, None)
    module = getattr(value, "__module__", None) or ""
    name = getattr(value, "__name__", None)
    if module.startswith("s2s") and name in ("differentiable", "custom_vjp"):
        return f"s2s.{name}"
    if module.startswith("numba") and name in ("njit", "jit"):
        return f"numba.{name}"
    if module == "functools" and name in ("cache", "lru_cache"):
        return f"functools.{name}"
    return None
