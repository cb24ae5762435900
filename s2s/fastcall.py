"""The steady state of a derivative's calls, as one generated function (`FastCall`).

Once a derivative ran for arguments of some kinds and nothing it reads has changed, a
call only has to make sure of both, run the compiled code and hand back its result. For
the kinds of the last call this is written as straight-line Python, e.g. for ``w`` an
array and ``b`` a float, gradient with respect to ``w``::

    def call(*args, **kwargs):
        if not kwargs and len(args) == 2:
            a0, a1 = args
            if (type(a0) is _ndarray and a0.shape == _S0 and a0.dtype == _D0
                    and type(a1) is float and (<nothing the derivative reads changed>)):
                try:
                    out = _compiled(*args)
                except Exception as e:
                    _failed(e, _compiled, args)
                    raise
                if type(out) is _ndarray and out.shape == _S0 and out.dtype == _D0:
                    return out
                return _finish(out, args)
        return _general(*args, **kwargs)

Every other call goes to ``_general`` (the derivative's own call path), which decides as
before. The function object users hold never changes: another specialisation swaps in
its code (kept by text, so swapping back costs no compile) and the values it reads.
A check that fails (an equal dtype that is not the same object, a subclass of ndarray)
only sends the call the general way.
"""
from __future__ import annotations

import linecache
import types

import numpy as np

_GENERAL = "def call(*args, **kwargs):\n    return _general(*args, **kwargs)\n"
_CODES: dict[str, types.CodeType] = {}  # function text -> its code


class FastCall:
    """The function a derivative's users call, specialised to the kinds of the last call."""

    def __init__(self, general, name: str):
        self.namespace = {"_general": general, "_ndarray": np.ndarray}
        self.function = types.FunctionType(_code(_GENERAL), self.namespace, name)
        self.entry = None  # what it serves, as the caller keyed it

    def reset(self) -> None:
        """Every call the general way."""
        self.function.__code__ = _code(_GENERAL)
        self.entry = None

    def install(self, entry, kinds, args, compiled, watch, result, values) -> None:
        """Serve arguments of ``kinds`` (`api._kinds`; like ``args``'s dtypes) while ``watch``
        holds, with ``compiled``; ``result`` tests ``out`` (`result_test`); ``values`` are the
        names the texts read (``_finish``, ``_failed``)."""
        guard = []
        for i, (kind, a) in enumerate(zip(kinds, args)):
            if kind == "float" or kind == "int":
                guard.append(f"type(a{i}) is {kind}")
            elif plain_array(kind) and type(a) is np.ndarray:
                guard.append(f"type(a{i}) is _ndarray and a{i}.shape == _S{i} and a{i}.dtype == _D{i}")
                values[f"_S{i}"], values[f"_D{i}"] = a.shape, a.dtype
            else:  # containers, Dask arrays, other objects: the general way
                guard = []
                break
        self.entry = entry
        if not guard:
            self.function.__code__ = _code(_GENERAL)
            return
        names = ", ".join(f"a{i}" for i in range(len(kinds))) + ("," if len(kinds) == 1 else "")
        if result == "":  # nothing to test: numba's return type is fixed
            done = ["return out"]
        elif result is None:  # value_and_grad, has_aux: always shaped
            done = ["return _finish(out, args)"]
        else:
            done = [f"if {result}:", "    return out", "return _finish(out, args)"]
        text = "\n".join([
            "def call(*args, **kwargs):",
            f"    if not kwargs and len(args) == {len(kinds)}:",
            f"        {names} = args",
            f"        if {' and '.join(guard)} and ({watch.expression}):",
            "            try:",
            "                out = _compiled(*args)",
            "            except Exception as e:",
            "                _failed(e, _compiled, args)",
            "                raise",
            *("            " + line for line in done),
            "    return _general(*args, **kwargs)", ""])
        self.namespace.update(watch.values)
        self.namespace.update(values, _compiled=compiled)
        self.function.__code__ = _code(text)


def _code(text: str) -> types.CodeType:
    code = _CODES.get(text)
    if code is None:
        if len(_CODES) > 1000:  # texts differ by kinds and watched names: few in practice
            _CODES.clear()
        scope: dict = {}
        name = f"<s2s fast call {len(_CODES)}>"  # shown in tracebacks: its lines in linecache
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        exec(compile(text, name, "exec"), scope)  # noqa: S102 - our own text
        code = _CODES[text] = scope["call"].__code__
    return code


def plain_array(kind) -> bool:
    """`api._kinds`'s kind of a numpy array: (shape, dtype kind)."""
    return type(kind) is tuple and len(kind) == 2 and kind[0] != "tree"


def result_test(kinds, nums, single: bool, fixed_types: bool) -> str:
    """A test that ``out``, a gradient (``single``) or a tuple of them for arguments ``nums``,
    needs no shaping: a float for a float argument, an array of the argument's shape and dtype
    (`FastCall.install`'s ``_S``, ``_D``). ``fixed_types``: numba compiled it for exactly these
    argument types and returned a result of the right kinds once, so its return type is fixed
    (floats, arrays and their dtypes); "" when nothing is left to test."""
    def one(expr, n):
        if fixed_types:  # numba's return type fixes floats, arrays and their dtypes; not shapes
            return "" if kinds[n] == "float" else f"{expr}.shape == _S{n}"
        if kinds[n] == "float":
            return f"type({expr}) is float"
        return f"type({expr}) is _ndarray and {expr}.shape == _S{n} and {expr}.dtype == _D{n}"
    if single:
        return one("out", nums[0])
    tests = [] if fixed_types else [f"type(out) is tuple and len(out) == {len(nums)}"]
    tests += [one(f"out[{i}]", n) for i, n in enumerate(nums)]
    return " and ".join(t for t in tests if t)
