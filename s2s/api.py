"""The autograd/JAX-style API: grad, value_and_grad, vjp, source.

Each wrapper generates its derivative module once per function, argnums,
options and argument kinds (Python float vs array), then calls the compiled
function directly.
"""
from __future__ import annotations

import functools
import operator
import os
import textwrap

import numpy as np

from . import cache, display, emit, fastcall, fence, numba_errors, pytree, selfcheck, source
from .errors import S2SError

_GENERATED_ATTR = "__s2s_module__"


def _kinds(args) -> tuple:
    """What the generated code may assume of each argument: a Python float, an int,
    an array of this shape and dtype kind (a Dask array: with "dask" after them, or
    "dask" alone when its chunk sizes are unknown), or nothing (None)."""
    kinds = []
    for a in args:  # the common cases first: this runs on every call
        t = type(a)
        if t is float:
            kinds.append("float")
        elif t is np.ndarray:
            kinds.append((a.shape, a.dtype.kind))
        elif t is int:
            kinds.append("int")
        else:
            kinds.append(_kind(a))
    return tuple(kinds)


def _kind(a):
    """`_kinds` of one argument that is not a float, an int or a plain array."""
    if pytree.is_container(a):
        return ("tree", pytree.spec(a))
    if isinstance(a, np.ndarray):
        return (a.shape, a.dtype.kind)
    if is_lazy(a) and not any(n != n for n in a.shape):  # known chunk sizes
        return (a.shape, a.dtype.kind, "dask")
    if is_lazy(a):
        return "dask"
    return None


def _as_is(g, x) -> bool:
    """The common case, decided fast: a gradient already of its argument's kind (a float for a
    float, an array of the argument's shape and dtype)."""
    if type(x) is float:
        return type(g) is float
    return type(g) is np.ndarray and type(x) is np.ndarray and g.shape == x.shape and g.dtype == x.dtype


_SHAPE, _DTYPE = operator.attrgetter("shape"), operator.attrgetter("dtype")


def is_lazy(x) -> bool:
    """A Dask collection (an array that is a task graph until computed)."""
    return hasattr(x, "__dask_graph__")


def _argnums_tuple(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


class _Derivative:
    """A generated derivative of ``fn``: compiled lazily, per argument kinds."""

    def __init__(self, fn, argnums, returns, has_aux=False, check=None, target="numpy"):
        if target not in ("numpy", "numba"):
            raise S2SError(f"target={target!r}: s2s.grad takes target='numpy' (the default; "
                           "Dask arrays choose the Dask form themselves) or 'numba'")
        self.target = target
        self.fn = fn
        self.check = check  # None: the S2S_CHECK environment variable decides
        self.checked: set[tuple] = set()
        self.argnums = argnums
        self.nums = _argnums_tuple(argnums)
        self.returns = returns
        self.has_aux = has_aux
        self.src = source.from_function(fn)
        self.params = source.param_names(self.src.node)
        fence.refuse_star_params(self.src)
        for n in self.nums:
            if not -len(self.params) <= n < len(self.params):
                raise S2SError(f"argnums={argnums} is out of range for {self.src.name}, which "
                               f"takes {len(self.params)} arguments")
        self.wrt = [self.params[n] for n in self.nums]
        self.compiled: dict[tuple, tuple] = {}
        self.namespaces: list[dict] = []  # of the compiled modules: they read globals from here
        self.last_generated = None
        self.ready: dict[tuple, tuple] = {}  # kinds -> (compiled, `float_grads`, `settled`, generated, kinds)
        self.watch = _STALE  # what the derivatives depend on, as it was at the last check
        self.fast = fastcall.FastCall(self.steady_state(), self.src.name)
        self.call = self.fast.function  # what users call: see `fastcall`

    def refresh(self):
        """Follow module globals the primal reads that were rebound since generation (a
        minibatch loop rebinding ``module.X``): an array of the same shape and dtype is
        swapped into the generated modules, which read it when they run; any other change
        (a number, a shape, a helper function defined again, a function's code replaced),
        or any change under numba, generates the derivative again."""
        if not source.rebound(self.src):
            return  # nothing rebound: the common case
        self.watch = _STALE
        frozen = self.target == "numba"  # njit froze the old values
        if frozen or not follow_globals(self.src, self.namespaces,
                                        [g for g, _ in self.compiled.values()]):
            self.src = source.from_function(self.fn)
            self.compiled.clear()
            self.namespaces.clear()
            self.ready.clear()

    def module(self, kinds=()):
        """The compiled derivative for arguments of these kinds (see `_kinds`)."""
        if kinds not in self.compiled:
            scalars = tuple(p for p, k in zip(self.params, kinds) if k == "float")
            shapes = {p: k[0] for p, k in zip(self.params, kinds) if isinstance(k, tuple)}
            shapes.update({p: () for p, k in zip(self.params, kinds) if k == "int"})  # scalars too
            int_arrays = tuple(p for p, k in zip(self.params, kinds) if isinstance(k, tuple)
                               and k[0] != "tree" and k[1] in "iu")
            structures = {p: k[1] for p, k in zip(self.params, kinds) if isinstance(k, tuple)
                          and k[0] == "tree"}
            shapes = {p: s for p, s in shapes.items() if p not in structures}
            for n in self.nums:
                kind = kinds[n] if kinds else None
                if kind == "int" or (isinstance(kind, tuple) and kind[0] != "tree" and kind[1] in "biu"):
                    raise TypeError(f"cannot differentiate with respect to integer argument "
                                    f"{self.params[n]!r}; pass floats")
            lazy = any(k == "dask" or (isinstance(k, tuple) and "dask" in k) for k in kinds)
            target = "dask" if lazy else self.target  # Dask arrays choose, as in the primal
            gen = cache.reverse_module(self.src, self.wrt, returns=self.returns, target=target,
                                       known_scalars=scalars, known_shapes=shapes,
                                       int_arrays=int_arrays,
                                       has_aux=self.has_aux,
                                       as_tuple=not isinstance(self.argnums, int),
                                       structures=structures)
            injected = dict(gen.injected)
            for spec in structures.values():
                injected.update(pytree.spec_classes(spec))
            namespace = emit.compile_module(gen.text, self.src.name, injected,
                                            importable=target == "numba")
            self.namespaces.append(namespace)
            self.watch = _STALE  # generating may have read more helpers
            self.compiled[kinds] = (gen, namespace[gen.entry])
        self.last_generated = self.compiled[kinds][0]
        return self.compiled[kinds]

    def __call__(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def steady_state(self):
        """The function a call runs when `fastcall`'s does not serve it: once arguments of
        these kinds were seen and nothing the derivative reads changed, only the compiled
        code runs (and the fast call is set to serve these kinds from the next call on)."""
        ready, count, first_call, finish = self.ready, len(self.params), self.first_call, self.finish
        failed = self.failed

        def call(*args, **kwargs):
            if kwargs or len(args) != count:  # defaults, keyword arguments
                args = source.complete_args(self.fn, self.params, args, kwargs)
            entry = ready.get(tuple(map(type, args)))  # Python floats and ints: their types say all
            if entry is None:
                kinds = _kinds(args)
                entry = ready.get(kinds)
                if entry is None or not self.watch.unchanged():
                    return first_call(args, kinds)
            elif not self.watch.unchanged():
                return first_call(args, _kinds(args))
            compiled, floats, settled, self.last_generated, _ = entry
            if self.fast.entry is not entry:
                self.serve_fast(entry, args)
            try:
                out = compiled(*args)
            except Exception as e:
                failed(e, compiled, args)
                raise
            if floats is not None:  # gradients with respect to Python floats: as they should be?
                if type(out) is floats or type(out) is tuple and tuple(map(type, out)) == floats:
                    return out
            elif settled is not None and settled(out, args):
                return out
            return finish(out, args)
        return call

    def first_call(self, args, kinds):
        """A call with arguments of new kinds, or after something the derivative reads
        changed: generate (or follow the change), run, check, and keep it ready."""
        self.fast.reset()
        self.refresh()
        gen, compiled = self.module(kinds)
        self.watch = source.Watch(self.src)  # as `rebound` found it: nothing changed
        numba = numba_errors.is_dispatcher(compiled)
        if numba:
            try:  # compile first: what numba raises then is a refusal, not the code's error
                numba_errors.compile_for(compiled, args)
            except Exception as e:  # noqa: BLE001 - numba's compiler raises plain errors too
                if numba_errors.raised_by_numba(e):
                    raise self.numba_refusal(e, compiled) from None
                raise
        try:
            out = compiled(*args)
            result = self.finish(out, args)
        except Exception as e:
            self.failed(e, compiled, args)
            raise
        if kinds not in self.checked:  # the first call of each specialisation decides
            if self.returns in ("grad", "value_and_grad") and selfcheck.wanted(self.check):
                self.self_check(args, result, compiled)
            self.checked.add(kinds)
        floats = self.float_grads(kinds)
        self.ready[kinds] = entry = (compiled, floats, None if floats else self.settled(kinds), gen, kinds)
        if all(k in ("float", "int") for k in kinds):  # found by the arguments' types alone
            self.ready[tuple(float if k == "float" else int for k in kinds)] = entry
        self.serve_fast(entry, args, fixed_types=numba and result is out)
        return result

    def serve_fast(self, entry, args, fixed_types=False):
        """Have `fastcall`'s function serve calls like this one (``entry`` of `ready`) while
        nothing the derivative reads changes. ``fixed_types``: numba returned the result as
        it is: its types are fixed by the argument types the fast call checks."""
        compiled, _, _, gen, kinds = entry
        nums = [n % len(self.params) for n in self.nums]
        result = fastcall.result_test(kinds, nums, isinstance(self.argnums, int), fixed_types) \
            if self.returns == "grad" and all(kinds[n] == "float" or fastcall.plain_array(kinds[n])
                                              for n in nums) else None
        self.fast.install(entry, kinds, args, compiled, self.watch, result,
                          {"_finish": self.finish, "_failed": self.failed})
        self.last_generated = gen

    def float_grads(self, kinds):
        """The type of what a call returns when every gradient is a Python float for a Python
        float argument (then nothing is left to shape): ``float``, a tuple of them; or None."""
        if self.returns != "grad" or any(kinds[n] != "float" for n in self.nums):
            return None
        return float if isinstance(self.argnums, int) else (float,) * len(self.nums)

    def settled(self, kinds):
        """A quick test that the gradients of plain array arguments need no shaping (as
        `finish` would find them: arrays of their arguments' shapes and dtypes), or None."""
        plain = all(type(kinds[n]) is tuple and len(kinds[n]) == 2 and kinds[n][0] != "tree"
                    for n in self.nums)  # (shape, dtype kind)
        if self.returns != "grad" or not plain:
            return None
        nums = self.nums
        if isinstance(self.argnums, int):
            n, shape = nums[0], kinds[nums[0]][0]
            return lambda out, args: type(out) is np.ndarray and out.shape == shape and \
                type(args[n]) is np.ndarray and out.dtype == args[n].dtype
        arrays, shapes, pick = (np.ndarray,) * len(nums), tuple(kinds[n][0] for n in nums), \
            operator.itemgetter(*nums)
        return lambda out, args: type(out) is tuple and tuple(map(type, out)) == arrays and \
            tuple(map(_SHAPE, out)) == shapes and tuple(map(type, pick(args))) == arrays and \
            tuple(map(_DTYPE, out)) == tuple(map(_DTYPE, pick(args)))

    def failed(self, error, compiled, args) -> None:
        """A call of ``compiled`` raised ``error``: raise the refusal instead when numba failed
        to compile it (for arguments of a new layout or dtype); else return, to re-raise."""
        if numba_errors.is_dispatcher(compiled) and numba_errors.failed_compiling(error, compiled, args):
            raise self.numba_refusal(error, compiled) from None

    def numba_refusal(self, error, compiled) -> S2SError:
        """numba could not compile the derivative (in nopython mode: never object mode)."""
        gen = next((g for g, c in self.compiled.values() if c is compiled), self.last_generated)
        return numba_errors.refusal(error, self.src, gen.text if gen else "", self.file_of(compiled))

    def self_check(self, args, result, compiled):
        """Compare this call's gradients with a central difference of the primal (see `selfcheck`)."""
        grads = result[1] if self.returns == "value_and_grad" else result
        grads = (grads,) if isinstance(self.argnums, int) else grads

        first = len(getattr(self.src.node.args, "posonlyargs", []))  # the rest go by name

        def primal(*a):
            out = self.fn(*a[:first], **dict(zip(self.params[first:], a[first:])))
            return out[0] if self.has_aux else out
        positions = [n % len(self.params) for n in self.nums]
        selfcheck.check_gradient(primal, args, positions, grads, name=self.src.name,
                                 location=(self.src.filename, self.src.node.lineno, self.src.node.col_offset),
                                 generated_file=self.file_of(compiled))

    def file_of(self, compiled) -> str:
        """The file the derivative runs from (a hand-edited one's own path)."""
        code = getattr(getattr(compiled, "py_func", compiled), "__code__", None)  # numba's: py_func
        return getattr(self, "path", None) or (code.co_filename if code is not None else "<unknown>")

    def finish(self, out, args):
        if self.returns == "value_and_grad":
            value, grads = out
            return value, self.shape_grads(grads, args)
        return self.shape_grads(out, args)

    def shape_grads(self, grads, args):
        if isinstance(self.argnums, int):
            x = args[self.nums[0]]
            return grads if _as_is(grads, x) or is_lazy(grads) else pytree.shaped_like(grads, x)
        if type(grads) is tuple and all(map(_as_is, grads, map(args.__getitem__, self.nums))):
            return grads  # the common case
        return tuple(g if _as_is(g, args[n]) or is_lazy(g) else pytree.shaped_like(g, args[n])  # Dask: lazy
                     for n, g in zip(self.nums, grads))


class _Stale:
    """The watch of a derivative that has not been checked yet: every call checks."""

    @staticmethod
    def unchanged() -> bool:
        return False


_STALE = _Stale()


def follow_globals(src, namespaces, generated) -> bool:
    """Swap rebound module arrays into compiled modules (see `_Derivative.refresh`); False
    when a change needs the derivative generated again."""
    changes = source.rebound(src)
    if not changes:
        return True
    if not all(old is not None and old.kind == "constant" and isinstance(old.value, np.ndarray) and
               isinstance(now, np.ndarray) and
               old.value.shape == now.shape and old.value.dtype == now.dtype
               for _, _, old, now in changes):
        return False
    swap = {id(old.value): now for _, _, old, now in changes}
    for table in list(namespaces) + [gen.injected for gen in generated]:
        for key, value in list(table.items()):
            if id(value) in swap:
                table[key] = swap[id(value)]
    source.rebind(changes)
    return True


def _wrap(derivative: _Derivative, name: str):
    wrapper = functools.wraps(derivative.fn)(derivative.call)  # its own function, no layer more
    wrapper.__name__ = f"{name}_{derivative.src.name}"
    wrapper.__qualname__ = wrapper.__name__
    setattr(wrapper, _GENERATED_ATTR, derivative)
    return wrapper


def _made(fn, argnums, returns, has_aux, source_file, accept_stale, update=False, check=None,
          target="numpy"):
    """A derivative generated at its first call, or read from a hand-edited file
    (``source=``, see `handedit`)."""
    if source_file is not None:
        from .handedit import HandEdited
        made = HandEdited(fn, argnums, returns, has_aux, source_file, accept_stale, update)
        made.check = check
        return made
    if update:
        raise S2SError("update=True keeps a hand-edited file up to date; it needs source=FILE")
    return _Derivative(fn, argnums, returns, has_aux=has_aux, check=check, target=target)


def grad(fn, argnums=0, has_aux=False, *, source=None, accept_stale=False, update=False, check=None,
         target="numpy"):
    """The gradient of scalar-valued ``fn`` with respect to argument(s) ``argnums``.

    With ``has_aux=True``, ``fn`` returns ``(output, aux)`` and the gradient
    function returns ``(gradient, aux)``. With ``source="grads/dloss.py"`` the
    derivative is read from that (hand-edited) generated file, refused with
    `StaleDerivative` if ``fn`` changed since, unless ``accept_stale=True``;
    ``update=True`` instead regenerates it and re-applies the edits (`s2s.update`),
    raising `MergeConflict` (the file untouched) when some cannot be.
    ``check=True`` (default: the ``S2S_CHECK`` environment variable) compares the
    first call of each specialisation with finite differences (see `selfcheck`).
    ``target="numba"`` compiles the generated module with ``numba.njit``.
    """
    if hasattr(fn, _GENERATED_ATTR):  # a derivative made by s2s: forward mode over its source
        from .higher import grad_of_generated
        return grad_of_generated(fn, argnums, has_aux)
    if has_aux:
        inner = _made(fn, argnums, "value_and_grad", True, source, accept_stale, update, check, target)

        @functools.wraps(fn)
        def with_aux(*args, **kwargs):
            (_, aux), grads = inner(*args, **kwargs)
            return grads, aux

        setattr(with_aux, _GENERATED_ATTR, inner)
        return with_aux
    return _wrap(_made(fn, argnums, "grad", False, source, accept_stale, update, check, target), "grad")


def value_and_grad(fn, argnums=0, has_aux=False, *, source=None, accept_stale=False, update=False,
                   check=None, target="numpy"):
    """``(fn(*args), grad(fn)(*args))`` in one generated function (``source=``, ``check=``: as in `grad`)."""
    return _wrap(_made(fn, argnums, "value_and_grad", has_aux, source, accept_stale, update, check, target),
                 "value_and_grad")


def source_of(fn) -> display.Source:
    """The full generated module behind a function made by s2s (the one its last call ran):
    a ``str`` that notebooks show as highlighted Python."""
    derivative = getattr(fn, _GENERATED_ATTR, None)
    if derivative is None:
        raise S2SError(f"{getattr(fn, '__name__', fn)!r} was not made by s2s")
    if derivative.last_generated is None:
        derivative.module()
    return display.Source(derivative.last_generated.text)


def show(fn, *args) -> display.SideBySide:
    """``fn`` beside its derivative: two columns of highlighted Python in a notebook.

    ``fn`` is your function (then its gradient is shown, specialised to ``args``
    when given, as a call with them would make it) or a derivative made by s2s.
    """
    made = fn if hasattr(fn, _GENERATED_ATTR) else grad(fn)
    derivative = getattr(made, _GENERATED_ATTR)
    if args:
        made(*args)
    text = source_of(made)
    primal = getattr(derivative, "src", None)
    if primal is not None:
        node = primal.node
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        primal_text = textwrap.dedent("".join(primal.lines[first - 1:node.end_lineno]))
        title = f"{primal.name} ({os.path.basename(primal.filename or '')}:{node.lineno})"
    else:
        primal_text, title = "", getattr(fn, "__name__", "primal")
    return display.SideBySide(primal_text, text, titles=(title, "derivative"))
