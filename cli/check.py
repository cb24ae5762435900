"""``s2s-diff --check``: compare a derivative with central finite differences.

The one part of s2s-diff that runs the user's code: the model is imported
(with its folder, or its package root, on ``sys.path``) to get the primal.
The inputs come from ``--args module:function`` (a function returning the
arguments) or are drawn from the shapes (``--shapes``, or those a
``--derivative`` file's header records) with ``--seed``. Every evaluation of
the primal and of the derivative runs under ``--timeout`` seconds.

The verdict is one of four (`Verdict`): passed; FAILED (an error above
`TOLERANCE`, or the derivative raised); TIMED OUT; INCONCLUSIVE when nothing
was really compared: a gradient that is zero on both sides, or a loop of the
primal that ran no iteration on these inputs. The report goes to stderr, so
stdout stays a clean module.
"""
from __future__ import annotations

import ast
import contextlib
import enum
import importlib
import importlib.util
import os
import signal
import sys
import threading

import numpy as np

from s2s import emit, provenance
from s2s.errors import S2SError
from s2s.handedit import display, entry_point
from s2s.testing import EPS, numerical_grad

TOLERANCE = 1e-4
DEFAULT_SHAPE = (3,)
DEFAULT_TIMEOUT = 10.0
ZERO = 1e-10  # a gradient this small on both sides compares nothing


class Verdict(enum.Enum):
    """The outcome of a check; true only when it passed. ``exit_status`` is s2s-diff's."""

    PASSED = "check passed"
    FAILED = "check FAILED"
    TIMED_OUT = "check TIMED OUT"
    INCONCLUSIVE = "check INCONCLUSIVE"

    def __bool__(self) -> bool:
        return self is Verdict.PASSED

    @property
    def exit_status(self) -> int:
        return {"PASSED": 0, "INCONCLUSIVE": 3}.get(self.name, 1)


class CheckTimeout(Exception):
    """An evaluation ran past ``--timeout``."""


def check_generated(args, src, shapes, gen) -> Verdict:
    """Check freshly generated module text."""
    namespace = emit.compile_module(gen.text, src.name, gen.injected)
    wrt = _wrt(args, src)
    if args.mode == "forward":
        return _check_forward(args, src, shapes, namespace[gen.entry], wrt,
                              label=f"generated {gen.entry}")
    return _check(args, src, shapes, namespace[gen.entry], wrt, args.returns, args.has_aux,
                  label=f"generated {gen.entry}")


def check_file(args, src, shapes) -> Verdict:
    """Check a (hand-edited) derivative file, with the options and shapes its header records."""
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
    shapes = dict(shapes)
    for param, shape in header.shapes.items():  # what the file was specialized to
        shapes.setdefault(param, tuple(shape))
    for param in header.scalars:
        shapes.setdefault(param, None)
    namespace = {"__name__": "s2s_checked_derivative", "__file__": os.path.abspath(path)}
    try:
        exec(compile(text, path, "exec"), namespace)  # noqa: S102 - the file under check
    except Exception as exc:  # noqa: BLE001 - any failure of the user's file is a failed check
        raise S2SError(f"loading {path} failed: {type(exc).__name__}: {exc}")
    entry = args.name or entry_point(text, header, namespace, path)
    if not callable(namespace.get(entry)):
        raise S2SError(f"{path} defines no function {entry!r}")
    wrt = header.wrt or _wrt(args, src)
    return _check(args, src, shapes, namespace[entry], wrt, header.returns, header.has_aux,
                  label=f"{path}: {entry}")


def _wrt(args, src):
    params = [a.arg for a in src.node.args.args]
    return [w.strip() for w in args.wrt.split(",") if w.strip()] if args.wrt else params[:1]


def _primal(model_path, name):
    primal = getattr(load_model(model_path), name, None)
    if not callable(primal):
        raise S2SError(f"{model_path} has no function {name!r} once imported")
    return primal


# --- inputs ---------------------------------------------------------------------------

def _inputs(args, src, shapes, rng) -> list:
    """The arguments to check at: from ``--args module:function``, else drawn from the shapes."""
    params = [a.arg for a in src.node.args.args]
    spec = getattr(args, "args", None)
    if not spec:
        return [_random_input(rng, shapes.get(p, DEFAULT_SHAPE)) for p in params]
    made = _call_args_function(spec, args.model)
    if isinstance(made, dict):
        missing = [p for p in params if p not in made]
        if missing:
            raise S2SError(f"--args {spec} returned no value for {', '.join(missing)}",
                           hint=f"return a tuple in the order {', '.join(params)}, or a dict by name")
        made = [made[p] for p in params]
    if not isinstance(made, (tuple, list)) or len(made) != len(params):
        raise S2SError(f"--args {spec} must return {len(params)} arguments ({', '.join(params)}), "
                       f"got {type(made).__name__}"
                       + (f" of length {len(made)}" if isinstance(made, (tuple, list)) else ""))
    return list(made)


def _call_args_function(spec: str, model_path: str):
    """``module:function`` (a module importable beside the model, or ``path.py:function``), called."""
    module_name, sep, fn_name = spec.rpartition(":")
    if not sep or not module_name or not fn_name:
        raise S2SError(f"--args takes module:function (a function returning the arguments), not {spec!r}")
    if module_name.endswith(".py"):
        module = load_model(module_name)
    else:
        _import_root(model_path)  # modules beside the model (or in its package) import
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - reported as the user's error
            raise S2SError(f"--args: importing {module_name} failed: {type(exc).__name__}: {exc}")
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise S2SError(f"--args: {module_name} has no function {fn_name!r}")
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        raise S2SError(f"--args: {spec}() raised {type(exc).__name__}: {exc}")


# --- running the user's code: a time limit, and which loops ran --------------------------

@contextlib.contextmanager
def time_limit(seconds):
    """Raise `CheckTimeout` in the block after ``seconds`` (POSIX main thread; elsewhere no limit)."""
    if not seconds or seconds <= 0 or not hasattr(signal, "setitimer") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise CheckTimeout()
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _timeout(args) -> float:
    value = getattr(args, "timeout", None)
    return DEFAULT_TIMEOUT if value is None else value


def _limited(fn, seconds):
    def call(*a):
        with time_limit(seconds):
            return fn(*a)
    return call


def idle_loops(primal, inputs, src, seconds):
    """Run ``primal(*inputs)``; return (its value, the lines of its loops that ran no iteration)."""
    code = getattr(primal, "__code__", None)
    executed = set()

    def local(frame, event, arg):
        if event == "line":
            executed.add(frame.f_lineno)
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code is code else None
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        with time_limit(seconds):
            value = primal(*inputs)
    finally:
        sys.settrace(previous)
    if code is None or os.path.abspath(code.co_filename) != os.path.abspath(src.filename):
        return value, []
    loops = [n for n in ast.walk(src.node) if isinstance(n, (ast.For, ast.While))]
    idle = [n.lineno for n in loops if not any(s.lineno in executed for s in n.body)]
    return value, idle


# --- the checks -----------------------------------------------------------------------------

def _start(args, src, shapes):
    """(primal, params, rng, inputs, timeout) for a check."""
    primal = _primal(args.model, getattr(args, "fn", None) or src.name)
    params = [a.arg for a in src.node.args.args]
    rng = np.random.default_rng(getattr(args, "seed", 0) or 0)
    return primal, params, rng, _inputs(args, src, shapes, rng), _timeout(args)


def _evaluate_primal(primal, src, params, inputs, seconds, unwrap=lambda out: out):
    """The primal's value at the inputs, and its idle loops; a timeout or error is the user's."""
    try:
        value, idle = idle_loops(primal, inputs, src, seconds)
    except CheckTimeout:
        raise _timed_out(src.name, params, inputs, seconds) from None
    except Exception as exc:  # noqa: BLE001 - the model fails on these inputs
        raise S2SError(f"{src.name} fails on the --check inputs ({_describe(params, inputs)}): "
                       f"{type(exc).__name__}: {exc}",
                       hint="give inputs with --args module:function, or shapes with --shapes")
    return unwrap(value), idle


class _TimedOut(Exception):
    def __init__(self, what):
        self.what = what


def _timed_out(name, params, inputs, seconds) -> _TimedOut:
    return _TimedOut(f"{name} did not return within {seconds:g} s at inputs "
                     f"{_describe(params, inputs)}; a loop may never end for them: give inputs "
                     f"with --args module:function (or a longer --timeout)")


def _check(args, src, shapes, derivative, wrt, returns, has_aux, label) -> Verdict:
    primal, params, rng, inputs, seconds = _start(args, src, shapes)

    def value(*a):
        out = primal(*a)
        return out[0] if has_aux else out
    try:
        primal_value, idle = _evaluate_primal(primal, src, params, inputs, seconds,
                                              (lambda out: out[0]) if has_aux else (lambda out: out))
    except _TimedOut as exc:
        return _say(Verdict.TIMED_OUT, exc.what)
    extra = []
    cotangent = None
    if returns == "vjp":  # the gradient of <cotangent, f(x)>
        cotangent = _random_input(rng, np.shape(primal_value) or None)
        extra = [cotangent]

    def objective(*a):
        return value(*a) if cotangent is None else float(np.sum(cotangent * value(*a)))
    try:
        with time_limit(seconds):
            out = derivative(*inputs, *extra)
    except CheckTimeout:
        return _say(Verdict.TIMED_OUT, f"{label} did not return within {seconds:g} s at inputs "
                    f"{_describe(params, inputs)}")
    except Exception as exc:  # noqa: BLE001 - a failing derivative is a failed check
        return _say(Verdict.FAILED, f"{label} raised {type(exc).__name__}: {exc}")
    errors = []
    if returns == "value_and_grad":
        got_value, out = out
        if has_aux:
            got_value = got_value[0]
        errors.append(("value", _relative_error(got_value, primal_value), False))
    grads = out if isinstance(out, tuple) else (out,)
    if len(grads) != len(wrt):
        return _say(Verdict.FAILED, f"{label} returned {len(grads)} gradients for {len(wrt)} "
                    f"arguments ({', '.join(wrt)})")
    for name, grad in zip(wrt, grads):
        try:
            expected = numerical_grad(_limited(objective, seconds), inputs, params.index(name))
        except CheckTimeout:
            return _say(Verdict.TIMED_OUT, _timed_out(src.name, params, inputs, seconds).what)
        if np.shape(grad) != np.shape(expected):
            errors.append((f"d{name}: shape {np.shape(grad)}, expected {np.shape(expected)}", np.inf, False))
            continue
        errors.append((f"d/d{name} {np.shape(expected)}", _relative_error(grad, expected),
                       _both_zero(grad, expected)))
    return _report(errors, label, params, inputs, idle, src)


def _both_zero(got, expected) -> bool:
    return float(np.linalg.norm(np.ravel(np.asarray(got, dtype=np.float64)))) <= ZERO and \
        float(np.linalg.norm(np.ravel(np.asarray(expected, dtype=np.float64)))) <= ZERO


def _say(verdict: Verdict, text: str) -> Verdict:
    print(f"{verdict.value}: {text}", file=sys.stderr)
    return verdict


def _report(errors, label, params, inputs, idle, src) -> Verdict:
    """Per-argument errors, then the verdict (see `Verdict`)."""
    for what, error, zero in errors:
        note = " (zero on both sides: nothing compared)" if zero else ""
        print(f"  {what}: relative error {error:.2e}{note}", file=sys.stderr)
    for line in idle:
        print(f"  {display(src.filename)}:{line}: this loop ran no iteration at these inputs",
              file=sys.stderr)
    worst = max(error for _, error, _ in errors)
    where = f"at inputs {_describe(params, inputs)}"
    if worst > TOLERANCE:
        return _say(Verdict.FAILED, f"{label}: worst relative error {worst:.2e} (> {TOLERANCE:.0e}) {where}")
    zero = [what for what, _, z in errors if z]
    if zero or idle:
        why = [f"{len(zero)} of {len(errors)} compared values are zero on both sides"] if zero else []
        why += [f"{len(idle)} loop(s) ran no iteration"] if idle else []
        return _say(Verdict.INCONCLUSIVE, f"{label}: {'; '.join(why)} {where}; give inputs that "
                    f"exercise them with --args module:function (or another --seed)")
    return _say(Verdict.PASSED, f"{label}: worst relative error {worst:.2e} (<= {TOLERANCE:.0e}) {where}")


def _check_forward(args, src, shapes, jvp, wrt, label) -> Verdict:
    """``jvp(*primals, *tangents) -> (value, tangent)`` against a central difference along the tangents."""
    primal, params, rng, inputs, seconds = _start(args, src, shapes)
    tangents = [_random_input(rng, np.shape(inputs[params.index(w)]) or None) for w in wrt]
    try:
        primal_value, idle = _evaluate_primal(primal, src, params, inputs, seconds)
    except _TimedOut as exc:
        return _say(Verdict.TIMED_OUT, exc.what)

    def along(t):
        moved = list(inputs)
        for w, tangent in zip(wrt, tangents):
            moved[params.index(w)] = inputs[params.index(w)] + t * tangent
        with time_limit(seconds):
            return np.asarray(primal(*moved), dtype=np.float64)

    try:
        with time_limit(seconds):
            value, tangent = jvp(*inputs, *tangents)
    except CheckTimeout:
        return _say(Verdict.TIMED_OUT, f"{label} did not return within {seconds:g} s")
    except Exception as exc:  # noqa: BLE001 - a failing derivative is a failed check
        return _say(Verdict.FAILED, f"{label} raised {type(exc).__name__}: {exc}")
    try:
        expected = (along(EPS) - along(-EPS)) / (2 * EPS)
    except CheckTimeout:
        return _say(Verdict.TIMED_OUT, _timed_out(src.name, params, inputs, seconds).what)
    errors = [("value", _relative_error(value, primal_value), False)]
    if np.shape(tangent) != np.shape(expected):
        errors.append((f"tangent: shape {np.shape(tangent)}, expected {np.shape(expected)}", np.inf, False))
    else:
        errors.append((f"tangent along d{', d'.join(wrt)} {np.shape(expected)}",
                       _relative_error(tangent, expected), _both_zero(tangent, expected)))
    return _report(errors, label, params, inputs, idle, src)


def _random_input(rng, shape):
    return float(rng.standard_normal()) if shape is None else rng.standard_normal(shape)


def _describe(params, inputs) -> str:
    """``w=3x4, dt=-0.374``: shapes of arrays, values of scalars."""
    return ", ".join(f"{p}={x:.3g}" if isinstance(x, (float, int)) else
                     f"{p}={'x'.join(map(str, np.shape(x))) or '()'}" for p, x in zip(params, inputs))


def _relative_error(got, expected) -> float:
    """``|got - expected| / max(1, |expected|)`` in the 2-norm: relative, absolute near zero."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.linalg.norm(got - expected) / max(1.0, float(np.linalg.norm(expected))))


def _import_root(path: str) -> str:
    """Put the model's folder (its package root, with ``__init__.py`` files) on ``sys.path``;
    return the model's dotted module name."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    parts = [os.path.splitext(os.path.basename(path))[0]]
    while os.path.exists(os.path.join(folder, "__init__.py")):
        parts.insert(0, os.path.basename(folder))
        folder = os.path.dirname(folder)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return ".".join(parts)


def load_model(path: str, option: str = "--check"):
    """Import the model (this runs it), as part of its package when its folder has ``__init__.py``."""
    path = os.path.abspath(path)
    name = _import_root(path)
    try:
        if "." in name:
            return importlib.import_module(name)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    except Exception as exc:  # noqa: BLE001 - --check reports what the model did
        raise S2SError(f"importing {display(path)} for {option} failed: {type(exc).__name__}: {exc}",
                       hint=f"{option} runs the model; without --check and --import "
                            "s2s-diff only reads it")
