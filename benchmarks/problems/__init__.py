"""The benchmark problems, one module each, in the order the table shows them.

Each module defines, in plain numpy:

- ``loss(...)``: the function a user would write (s2s, tangent, autograd and
  jax read or re-run exactly this function);
- ``grad_loss(...)``: a careful hand-written gradient, the reference every
  other gradient is checked against;
- ``ARGNUMS``: the arguments differentiated (an int or a tuple, as for
  ``s2s.grad``); ``SIZES``: small / medium / large keyword arguments for
  ``make_args(rng, **size)``; ``KIND``: "vectorized", "loop" or "scalar";
- ``torch_loss(...)``: the same function written with torch ops (it receives
  tensors), and optionally ``jax_jit_loss()`` returning the loop written with
  ``lax.fori_loop``, used for the jax.jit column where unrolling a long Python
  loop would make compilation take minutes.
"""
import importlib

NAMES = ("logreg", "mlp", "gmm", "rnn", "lstm", "ode", "logreg_loop", "stencil", "rnn_fill")


def load(name):
    if name not in NAMES:
        raise KeyError(f"unknown problem {name!r}; choose from {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")
