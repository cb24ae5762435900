"""``s2s-diff --check``: compare a derivative with central finite differences on random inputs.

The one part of s2s-diff that runs the user's code: the model is imported
(with its folder, or its package root, on ``sys.path``) to get the primal.
The report goes to stderr, so stdout stays a clean module.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import numpy as np

from s2s import emit, provenance
from s2s.errors import S2SError
from s2s.handedit import display, entry_point
from s2s.testing import EPS, numerical_grad

TOLERANCE = 1e-4
DEFAULT_SHAPE = (3,)


def check_generated(args, src, shapes, gen) -> bool:
    """Check freshly generated module text; True when every error is within `TOLERANCE`."""
    namespace = emit.compile_module(gen.text, src.name, gen.injected)
    wrt = _wrt(args, src)
    if args.mode == "forward":
        return _check_forward(args.model, src, shapes, namespace[gen.entry], wrt,
                              label=f"generated {gen.entry}")
    return _check(args.model, src, shapes, namespace[gen.entry], wrt, args.returns, args.has_aux,
                  label=f"generated {gen.entry}")


def check_file(args, src, shapes) -> bool:
    """Check a (hand-edited) derivative file, with the options its header records."""
    path = args.derivative
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise S2SError(f"cannot read {path}: {exc.strerror}")
    header = provenance.read_header(text, path)
    if header.mode != "reverse":
        raise S2SError(f"--check --derivative supports reverse-mode files; {path} is {header.mode} mode")
    current = provenance.primal_digest(src)
    if header.digest != current:
        print(f"note: {path} was generated from an older {src.name} (primal-sha256 "
              f"{header.digest}, now {current}); checking it anyway", file=sys.stderr)
    namespace = {"__name__": "s2s_checked_derivative", "__file__": os.path.abspath(path)}
    try:
        exec(compile(text, path, "exec"), namespace)  # noqa: S102 - the file under check
    except Exception as exc:  # noqa: BLE001 - any failure of the user's file is a failed check
        raise S2SError(f"loading {path} failed: {type(exc).__name__}: {exc}")
    entry = args.name or entry_point(text, header, namespace, path)
    if not callable(namespace.get(entry)):
        raise S2SError(f"{path} defines no function {entry!r}")
    wrt = header.wrt or _wrt(args, src)
    return _check(args.model, src, shapes, namespace[entry], wrt, header.returns, header.has_aux,
                  label=f"{path}: {entry}")


def _wrt(args, src):
    params = [a.arg for a in src.node.args.args]
    return [w.strip() for w in args.wrt.split(",") if w.strip()] if args.wrt else params[:1]


def _primal(model_path, src):
    primal = getattr(load_model(model_path), src.name, None)
    if not callable(primal):
        raise S2SError(f"{model_path} has no function {src.name!r} once imported")
    return primal


def _call_primal(value, src, params, inputs):
    try:
        return value(*inputs)
    except Exception as exc:  # noqa: BLE001 - the model fails on these inputs
        raise S2SError(f"{src.name} fails on the --check inputs ({_describe(params, inputs)}): "
                       f"{type(exc).__name__}: {exc}", hint="give input shapes with --shapes")


def _check(model_path, src, shapes, derivative, wrt, returns, has_aux, label) -> bool:
    primal = _primal(model_path, src)
    params = [a.arg for a in src.node.args.args]
    rng = np.random.default_rng(0)
    inputs = [_random_input(rng, shapes.get(p, DEFAULT_SHAPE)) for p in params]

    def value(*args):
        out = primal(*args)
        return out[0] if has_aux else out

    primal_value = _call_primal(value, src, params, inputs)
    extra = []
    cotangent = None
    if returns == "vjp":  # the gradient of <cotangent, f(x)>
        cotangent = _random_input(rng, np.shape(primal_value) or None)
        extra = [cotangent]

    def objective(*args):
        return value(*args) if cotangent is None else float(np.sum(cotangent * value(*args)))
    try:
        out = derivative(*inputs, *extra)
    except Exception as exc:  # noqa: BLE001 - a failing derivative is a failed check
        print(f"check FAILED: {label} raised {type(exc).__name__}: {exc}", file=sys.stderr)
        return False
    errors = []
    if returns == "value_and_grad":
        got_value, out = out
        if has_aux:
            got_value = got_value[0]
        errors.append(("value", _relative_error(got_value, primal_value)))
    grads = out if isinstance(out, tuple) else (out,)
    if len(grads) != len(wrt):
        print(f"check FAILED: {label} returned {len(grads)} gradients for {len(wrt)} "
              f"arguments ({', '.join(wrt)})", file=sys.stderr)
        return False
    for name, grad in zip(wrt, grads):
        expected = numerical_grad(objective, inputs, params.index(name))
        if np.shape(grad) != np.shape(expected):
            errors.append((f"d{name}: shape {np.shape(grad)}, expected {np.shape(expected)}", np.inf))
            continue
        errors.append((f"d/d{name} {np.shape(expected)}", _relative_error(grad, expected)))
    return _report(errors, label, params, inputs)


def _report(errors, label, params, inputs) -> bool:
    for what, error in errors:
        print(f"  {what}: relative error {error:.2e}", file=sys.stderr)
    worst = max(error for _, error in errors)
    ok = worst <= TOLERANCE
    verdict = "check passed" if ok else "check FAILED"
    print(f"{verdict}: {label}: worst relative error {worst:.2e} "
          f"({'<=' if ok else '>'} {TOLERANCE:.0e}) at inputs {_describe(params, inputs)}",
          file=sys.stderr)
    return ok


def _check_forward(model_path, src, shapes, jvp, wrt, label) -> bool:
    """``jvp(*primals, *tangents) -> (value, tangent)`` against a central difference along the tangents."""
    primal = _primal(model_path, src)
    params = [a.arg for a in src.node.args.args]
    rng = np.random.default_rng(0)
    inputs = [_random_input(rng, shapes.get(p, DEFAULT_SHAPE)) for p in params]
    tangents = [_random_input(rng, np.shape(inputs[params.index(w)]) or None) for w in wrt]
    primal_value = _call_primal(primal, src, params, inputs)

    def along(t):
        moved = list(inputs)
        for w, tangent in zip(wrt, tangents):
            moved[params.index(w)] = inputs[params.index(w)] + t * tangent
        return np.asarray(primal(*moved), dtype=np.float64)

    try:
        value, tangent = jvp(*inputs, *tangents)
    except Exception as exc:  # noqa: BLE001 - a failing derivative is a failed check
        print(f"check FAILED: {label} raised {type(exc).__name__}: {exc}", file=sys.stderr)
        return False
    expected = (along(EPS) - along(-EPS)) / (2 * EPS)
    errors = [("value", _relative_error(value, primal_value))]
    if np.shape(tangent) != np.shape(expected):
        errors.append((f"tangent: shape {np.shape(tangent)}, expected {np.shape(expected)}", np.inf))
    else:
        errors.append((f"tangent along d{', d'.join(wrt)} {np.shape(expected)}",
                       _relative_error(tangent, expected)))
    return _report(errors, label, params, inputs)


def _random_input(rng, shape):
    return float(rng.standard_normal()) if shape is None else rng.standard_normal(shape)


def _describe(params, inputs) -> str:
    return ", ".join(f"{p}={'float' if isinstance(x, float) else 'x'.join(map(str, np.shape(x)))}"
                     for p, x in zip(params, inputs))


def _relative_error(got, expected) -> float:
    """``|got - expected| / max(1, |expected|)`` in the 2-norm: relative, absolute near zero."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.linalg.norm(got - expected) / max(1.0, float(np.linalg.norm(expected))))


def load_model(path: str):
    """Import the model (this runs it), as part of its package when its folder has ``__init__.py``."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    parts = [os.path.splitext(os.path.basename(path))[0]]
    while os.path.exists(os.path.join(folder, "__init__.py")):
        parts.insert(0, os.path.basename(folder))
        folder = os.path.dirname(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = ".".join(parts)
    try:
        if len(parts) > 1:
            return importlib.import_module(name)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    except Exception as exc:  # noqa: BLE001 - --check reports what the model did
        raise S2SError(f"importing {display(path)} for --check failed: {type(exc).__name__}: {exc}",
                       hint="--check runs the model; without --check s2s-diff only reads it")
