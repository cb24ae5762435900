"""Self-checking derivatives: ``S2S_CHECK=1`` (or ``check=True``).

The first call of each new specialisation of a derivative (each new set of
argument kinds and shapes) is compared with a central difference of the primal
along one random direction: two extra primal evaluations, however many inputs.
A disagreement raises `GradientMismatch`, naming the function, the file the
derivative runs from (generated or hand-edited) and the two numbers.

It is the switch to flip when a model stops learning: it cannot prove a
derivative right, but a wrong one is caught with probability one for almost
every input (a random direction is orthogonal to an error with probability
zero). Inputs where the primal is not smooth (a kink of ``abs``, a branch
taken differently at ``x ± h``) are reported too: they are rare at random
points, and a derivative there is a choice, not a fact.
"""
from __future__ import annotations

import os

import numpy as np

from .errors import GradientMismatch

STEP = 1e-6  # relative to the size of the inputs
RTOL = {8: 1e-4, 4: 3e-2, 2: 3e-1}  # by the byte size of the derivative's float type


def wanted(check) -> bool:
    """``check`` when given, else the ``S2S_CHECK`` environment variable (1, true, yes, on)."""
    if check is not None:
        return bool(check)
    return os.environ.get("S2S_CHECK", "").strip().lower() in ("1", "true", "yes", "on")


def _float_kind(x) -> bool:
    return isinstance(x, float) or (isinstance(x, np.ndarray) and x.dtype.kind == "f")


def _direction(rng, args, positions):
    """A random unit direction (2-norm over all ``positions``) as one tangent per position."""
    raw = {i: rng.standard_normal(np.shape(args[i])) for i in positions}
    norm = np.sqrt(sum(float(np.sum(v * v)) for v in raw.values())) or 1.0
    return {i: (float(v) / norm if isinstance(args[i], float) else v / norm) for i, v in raw.items()}


def _moved(args, direction, t):
    """Copies of ``args`` (in float64), the floating ones at ``positions`` moved by ``t`` along ``direction``."""
    out = []
    for i, a in enumerate(args):
        if i in direction:
            a = (float(a) if isinstance(a, float) else np.asarray(a, dtype=np.float64)) + t * direction[i]
        elif isinstance(a, np.ndarray):
            a = a.copy()  # the primal may update an argument in place
        out.append(a)
    return out


def _central(primal, args, direction):
    """(central difference along ``direction``, size of the values) with the step it took."""
    size = max([1.0] + [float(np.max(np.abs(args[i]), initial=0.0)) for i in direction])
    h = STEP * size
    with np.errstate(all="ignore"):
        up = np.asarray(primal(*_moved(args, direction, h)), dtype=np.float64)
        down = np.asarray(primal(*_moved(args, direction, -h)), dtype=np.float64)
    noise = 64 * np.finfo(np.float64).eps * (1.0 + max(float(np.max(np.abs(up), initial=0.0)),
                                                       float(np.max(np.abs(down), initial=0.0)))) / h
    return (up - down) / (2 * h), noise


def _rtol(values) -> float:
    sizes = [np.asarray(v).dtype.itemsize for v in values if np.asarray(v).dtype.kind == "f"]
    return RTOL.get(min(sizes, default=8), RTOL[8])


def check_gradient(primal, args, positions, grads, *, name, location, generated_file):
    """Raise `GradientMismatch` unless ``sum <grads[k], v_k>`` matches the central difference of
    scalar ``primal`` along a random direction ``v`` in the arguments at ``positions``."""
    grads = {i: g for i, g in zip(positions, grads) if _float_kind(args[i])}
    positions = list(grads)
    if not positions:
        return
    direction = _direction(np.random.default_rng(len(args)), args, positions)
    numeric, noise = _central(primal, args, direction)
    if numeric.ndim != 0:
        return  # not a scalar function: grad refuses it on its own
    derivative = sum(float(np.sum(np.asarray(grads[i], dtype=np.float64) * direction[i])) for i in positions)
    scale = max(abs(float(numeric)), abs(derivative),
                np.sqrt(sum(float(np.sum(np.abs(np.asarray(g, dtype=np.float64)) ** 2)) for g in grads.values())))
    _judge(float(numeric), derivative, scale, noise, _rtol(grads.values()), "gradient",
           name=name, location=location, generated_file=generated_file)


def check_tangent(primal, args, tangents, tangent, *, name, location, generated_file):
    """Raise `GradientMismatch` unless ``tangent`` matches the central difference of ``primal``
    along ``tangents`` (a dict: argument position -> tangent)."""
    if not tangents or not all(_float_kind(args[i]) for i in tangents) or \
            isinstance(tangent, (tuple, list, dict)):
        return  # containers (pytrees) are not checked: only arrays and floats, in and out
    numeric, noise = _central(primal, args, tangents)
    got = np.asarray(tangent, dtype=np.float64)
    if got.shape != numeric.shape:
        raise _mismatch(f"its tangent has shape {got.shape}; the primal's output has shape "
                        f"{numeric.shape}", name, location, generated_file)
    error = float(np.linalg.norm(np.ravel(got - numeric)))
    scale = max(float(np.linalg.norm(np.ravel(numeric))), float(np.linalg.norm(np.ravel(got))))
    _judge(numeric, got, scale, noise * np.sqrt(max(numeric.size, 1)), _rtol([tangent]), "tangent",
           name=name, location=location, generated_file=generated_file, error=error)


def _judge(numeric, derivative, scale, noise, rtol, what, *, name, location, generated_file, error=None):
    if not (np.all(np.isfinite(numeric)) and np.isfinite(noise)):
        return  # the primal overflows near this point: nothing to compare with
    if error is None:
        error = abs(numeric - derivative) if np.isfinite(derivative) else np.inf
    if not np.isfinite(error) or error > rtol * scale + noise:
        relative = error / scale if scale else np.inf
        shown = (f"derivative {derivative:.6g}, central difference {numeric:.6g}"
                 if np.ndim(numeric) == 0 else f"|tangent - central difference| = {error:.3g}")
        raise _mismatch(f"the {what} along a random direction disagrees with a central difference of "
                        f"the primal: {shown} (relative error {relative:.2e} > {rtol:.0e})",
                        name, location, generated_file)


def _mismatch(detail, name, location, generated_file) -> GradientMismatch:
    filename, line, col = location
    return GradientMismatch(
        f"self-check of the derivative of `{name}` (run from {generated_file}) failed: {detail}",
        filename, line, col, hint="if that file was edited by hand, fix or regenerate it; otherwise "
        "this is a bug in s2s: please report it with the function and this message "
        "(check=False or S2S_CHECK=0 turns the check off)", stage="self-check")
