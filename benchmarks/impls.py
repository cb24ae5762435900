"""The implementations compared, one builder each.

A builder takes a problem module and its arguments (numpy arrays and Python
numbers) and returns an `Impl`: ``call()`` is what gets timed (for a gradient:
everything a user waits for, from numpy-or-framework inputs prepared once to
the gradient materialized), ``grads(result)`` turns its result into a tuple of
numpy arrays / floats for the check against the hand-written gradient.

A peer that is not installed raises `Unavailable` (a skipped column); any
other exception while building or checking is that implementation's error.
"""
from __future__ import annotations

import contextlib
import io
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

PEERS = ("tangent", "autograd", "jax", "jax_jit", "torch")
NUMBA = ("s2s_numba", "hand_numba")  # the numba target, and the hand-written gradient under njit
ALL = ("primal", "hand", "s2s") + PEERS + NUMBA
LABELS = {"primal": "primal", "hand": "hand", "s2s": "s2s", "tangent": "tangent",
          "autograd": "autograd", "jax": "jax.grad", "jax_jit": "jit(grad)", "torch": "torch",
          "s2s_numba": "s2s numba", "hand_numba": "hand numba"}


class Unavailable(Exception):
    """The peer library is not installed: its column is skipped."""


@dataclass
class Impl:
    call: Callable[[], object]
    grads: Callable[[object], tuple] = lambda out: out
    notes: dict = field(default_factory=dict)  # e.g. generation / compile time, variant used
    compiled_first: bool = False  # the first call compiles (numba): timing calibrates on a second


def argnums(problem) -> tuple:
    return (problem.ARGNUMS,) if isinstance(problem.ARGNUMS, int) else tuple(problem.ARGNUMS)


def as_tuple(problem, out) -> tuple:
    return (out,) if isinstance(problem.ARGNUMS, int) else tuple(out)


def rebind(fn, **names):
    """``fn`` with some of its global names bound to other objects (``np`` -> autograd.numpy).

    The code object is the very one the user wrote: autograd and jax run the same
    function s2s and tangent read, only against their own numpy.
    """
    namespace = dict(fn.__globals__)
    namespace.update(names)
    return types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)


# ---------------------------------------------------------------- numpy ----

def build_primal(problem, args):
    return Impl(lambda: problem.loss(*args))


def build_hand(problem, args):
    return Impl(lambda: problem.grad_loss(*args), lambda out: as_tuple(problem, out))


def build_s2s(problem, args):
    import s2s

    # Generation happens in s2s.grad (or on the first call, per argument kinds):
    # the runner times the first call separately and reports the difference.
    start = time.perf_counter()
    g = s2s.grad(problem.loss, argnums=problem.ARGNUMS)
    made = time.perf_counter() - start
    impl = Impl(lambda: g(*args), lambda out: as_tuple(problem, out), {"grad_call_s": made})
    impl.notes["fn"] = g
    return impl


def build_tangent(problem, args):
    try:
        import tangent
    except ImportError as e:
        raise Unavailable(str(e)) from None
    buf = io.StringIO()
    # tangent prints long diagnostics boxes before raising; keep them for the error text.
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            g = tangent.grad(problem.loss, wrt=argnums(problem))
    except Exception as e:  # noqa: BLE001 - re-raised with tangent's output attached
        raise type(e)(f"{e}" + (f"\n[tangent output] {buf.getvalue().strip()[:2000]}"
                                if buf.getvalue().strip() else "")) from None
    nums = argnums(problem)
    return Impl(lambda: g(*args), lambda out: (out,) if len(nums) == 1 else tuple(out))


# ---------------------------------------------------------------- autograd -

def build_autograd(problem, args):
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError as e:
        raise Unavailable(str(e)) from None
    f = rebind(problem.loss, np=anp)
    g = autograd.grad(f, argnum=problem.ARGNUMS)
    return Impl(lambda: g(*args), lambda out: as_tuple(problem, out))


# ---------------------------------------------------------------- jax ------

def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        raise Unavailable(str(e)) from None
    jax.config.update("jax_enable_x64", True)
    return jax, jnp


def _jax_args(jax, args):
    # Arrays are put on the device once, outside the timed call; Python numbers stay.
    return tuple(jax.device_put(a) if isinstance(a, np.ndarray) else a for a in args)


def _to_numpy(out):
    return tuple(float(o) if np.ndim(o) == 0 else np.asarray(o) for o in out)


def build_jax(problem, args):
    jax, jnp = _jax()
    f = rebind(problem.loss, np=jnp)
    g = jax.grad(f, argnums=problem.ARGNUMS)
    jargs = _jax_args(jax, args)
    return Impl(lambda: jax.block_until_ready(g(*jargs)),
                lambda out: _to_numpy(as_tuple(problem, out)))


def build_jax_jit(problem, args):
    jax, jnp = _jax()
    notes = {}
    if hasattr(problem, "jax_jit_loss"):
        f = problem.jax_jit_loss()
        notes["variant"] = "lax.fori_loop"
    else:
        f = rebind(problem.loss, np=jnp)
    nums = argnums(problem)
    # Python ints (loop counts, sizes) must be static under jit.
    static = tuple(i for i, a in enumerate(args)
                   if isinstance(a, int) and not isinstance(a, bool) and i not in nums)
    g = jax.jit(jax.grad(f, argnums=problem.ARGNUMS), static_argnums=static)
    jargs = _jax_args(jax, args)
    start = time.perf_counter()
    jax.block_until_ready(g(*jargs))  # compile now: excluded from the timings
    notes["compile_s"] = time.perf_counter() - start
    return Impl(lambda: jax.block_until_ready(g(*jargs)),
                lambda out: _to_numpy(as_tuple(problem, out)), notes)


# ---------------------------------------------------------------- torch ----

def build_torch(problem, args):
    try:
        import torch
    except ImportError as e:
        raise Unavailable(str(e)) from None
    from .threads import apply_torch
    apply_torch(torch)
    nums = argnums(problem)
    targs = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            t = torch.from_numpy(a.copy() if i in nums else a)
            targs.append(t.requires_grad_() if i in nums else t)
        elif i in nums:
            targs.append(torch.tensor(float(a), dtype=torch.float64, requires_grad=True))
        else:
            targs.append(a)
    inputs = [targs[i] for i in nums]

    def call():
        return torch.autograd.grad(problem.torch_loss(*targs), inputs)

    def grads(out):
        return tuple(o.item() if isinstance(args[i], float) else o.numpy() for i, o in zip(nums, out))

    return Impl(call, grads, {"threads": torch.get_num_threads()})


# ---------------------------------------------------------------- numba ----

def _numba():
    try:
        import numba
    except ImportError as e:
        raise Unavailable("numba") from e
    return numba


def build_s2s_numba(problem, args):
    """s2s's numba target; the first call (timed by the runner) compiles."""
    _numba()
    import s2s
    g = s2s.grad(problem.loss, argnums=problem.ARGNUMS, target="numba")
    return Impl(lambda: g(*args), lambda out: as_tuple(problem, out), compiled_first=True)


def build_hand_numba(problem, args):
    """The problem's hand-written gradient, compiled as it is with ``numba.njit``."""
    grad = _numba().njit(problem.grad_loss)
    return Impl(lambda: grad(*args), lambda out: as_tuple(problem, out), compiled_first=True)


BUILDERS = {
    "primal": build_primal, "hand": build_hand, "s2s": build_s2s, "tangent": build_tangent,
    "autograd": build_autograd, "jax": build_jax, "jax_jit": build_jax_jit, "torch": build_torch,
    "s2s_numba": build_s2s_numba, "hand_numba": build_hand_numba,
}


def versions() -> dict:
    """Installed versions of numpy, s2s and the peers (None where missing)."""
    out = {"numpy": np.__version__}
    for name, module in (("s2s", "s2s"), ("tangent", "tangent"), ("autograd", "autograd"),
                         ("jax", "jax"), ("jaxlib", "jaxlib"), ("torch", "torch"),
                         ("numba", "numba")):
        try:
            mod = __import__(module)
            out[name] = getattr(mod, "__version__", "installed")
        except Exception:  # noqa: BLE001 - a broken install is as good as missing here
            out[name] = None
    if out.get("tangent") == "installed":
        try:
            from importlib.metadata import version
            out["tangent"] = version("tangent-ad")
        except Exception:  # noqa: BLE001, S110 - the plain "installed" will do
            pass
    return out
