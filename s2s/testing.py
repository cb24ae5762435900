"""Numerical checks shared by every derivative test: central finite differences.

`check_rule` checks one registry rule's templates directly (no code generation);
`numerical_grad` and `assert_grad_close` check whole generated gradients.
"""
from __future__ import annotations

import ast
import os
import re

import numpy as np

from .rules import RULES, helpers
from .rules.registry import DYNAMIC

EPS = 1e-6
TEMPORARY = re.compile(r"\b(?:d*t\d+|saved_\w+|n_iter\d*|dparts\d*)\b")  # names s2s makes up


def numerical_grad(f, args, argnum, eps=EPS):
    """Central-difference gradient of scalar ``f(*args)`` w.r.t. ``args[argnum]`` (for a
    container, the same structure: a gradient per float leaf, None for the others)."""
    args = list(args)
    x = args[argnum]
    if isinstance(x, (tuple, list, dict)):
        return _tree_grad(f, args, argnum, eps)
    if isinstance(x, float):
        hi = f(*args[:argnum], x + eps, *args[argnum + 1:])
        lo = f(*args[:argnum], x - eps, *args[argnum + 1:])
        return (hi - lo) / (2 * eps)
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        orig = x[i]
        x[i] = orig + eps
        hi = f(*args[:argnum], x.copy(), *args[argnum + 1:])
        x[i] = orig - eps
        lo = f(*args[:argnum], x.copy(), *args[argnum + 1:])
        x[i] = orig
        grad[i] = (hi - lo) / (2 * eps)
    return grad


def _tree_grad(f, args, argnum, eps):
    from .pytree import leaves
    x = args[argnum]
    flat = leaves(x)
    grads = []
    for k, leaf in enumerate(flat):
        if not (type(leaf) is float or (isinstance(leaf, np.ndarray) and leaf.dtype.kind == "f")):
            grads.append(None)
            continue

        def at_leaf(value, k=k):
            return f(*args[:argnum], _replace_leaf(x, k, value), *args[argnum + 1:])
        grads.append(numerical_grad(at_leaf, (leaf,), 0, eps))
    it = iter(grads)
    return _rebuild(x, lambda _: next(it))


def _replace_leaf(tree, k, value):
    count = iter(range(10 ** 9))
    return _rebuild(tree, lambda leaf: value if next(count) == k else leaf)


def _rebuild(tree, fn):
    if isinstance(tree, dict):
        return {key: _rebuild(v, fn) for key, v in tree.items()}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_rebuild(v, fn) for v in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_rebuild(v, fn) for v in tree)
    return fn(tree)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, what="gradient"):
    """Shapes equal and values within tolerance, with a readable failure (containers: leaf
    by leaf, of the same structure)."""
    if isinstance(expected, (tuple, list, dict)):
        from .pytree import leaves, spec
        assert type(actual) is type(expected) and spec(_rebuild(actual, lambda v: 0.0)) == \
            spec(_rebuild(expected, lambda v: 0.0)), f"{what}: structure differs"
        for i, (a, e) in enumerate(zip(leaves(actual), leaves(expected))):
            if e is None:
                assert a is None, f"{what}: leaf {i} of an argument that is not a float"
            else:
                assert_close(a, e, rtol, atol, what=f"{what}, leaf {i}")
        return
    assert np.shape(actual) == np.shape(expected), (
        f"{what}: shape {np.shape(actual)} != expected {np.shape(expected)}")
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def assert_grad_close(f, grad_f, args, argnums=0, rtol=1e-5, atol=1e-6):
    """``grad_f(*args)`` matches central differences of ``f`` for each argnum."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    grads = grad_f(*args)
    grads = (grads,) if isinstance(argnums, int) else grads
    for n, g in zip(nums, grads):
        assert_close(g, numerical_grad(f, args, n), rtol, atol, what=f"d/d arg {n}")


def numerical_jvp(f, args, tangents, eps=EPS):
    """Central difference of scalar-or-array ``f(*args)`` along ``tangents``."""
    def moved(a, step):  # integer arguments (counts, indices) stay put
        return a + step if np.asarray(a).dtype.kind in "fc" else a

    up = [moved(a, eps * t) for a, t in zip(args, tangents)]
    down = [moved(a, -eps * t) for a, t in zip(args, tangents)]
    return (np.asarray(f(*up)) - np.asarray(f(*down))) / (2 * eps)


def gradient_hvp(f, args, argnum, v, rtol=1e-4, atol=1e-5, eps=1e-5, what="hvp"):
    """The Hessian block of ``f`` in ``args[argnum]`` times ``v``: central differences, along
    ``v``, of s2s's own gradient, once that gradient is checked against central differences
    of ``f`` at ``args`` (an AssertionError naming ``what`` when it is off). Good to ~1e-9,
    so a derivative checked against it is right or wrong, never "imprecise"."""
    import s2s
    grad = s2s.grad(f, argnums=argnum)

    def at(step):
        shifted = _fresh(args)
        shifted[argnum] = args[argnum] + step * v
        return grad(*shifted)
    assert_close(at(0.0), numerical_grad(lambda *a: f(*_fresh(a)), args, argnum), rtol, atol,
                 what=f"{what}: the gradient d/d arg {argnum} it is checked against")
    return (at(eps) - at(-eps)) / (2 * eps)


def _direction(x, rng):
    t = rng.uniform(-1.0, 1.0, np.shape(x))
    return float(t) if isinstance(x, float) else t


MODES = ("grad", "jvp", "hvp")


def _fresh(args):
    """Copies of the array arguments, so a primal that updates one in place can run again."""
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def check_mode(mode, f, args, argnums=0, rtol=1e-4, atol=1e-5, seed=0):
    """``s2s.<mode>`` of ``f`` at ``args`` against central differences of ``f`` alone.

    ``grad``: every argument in ``argnums``; ``jvp``: one random direction in them (the
    others still); ``hvp``: the Hessian block of each one times a random direction, against
    `gradient_hvp` (differences of s2s's gradient, itself checked against differences of
    ``f``); ``hessian``: the whole Hessian block of each (keep the arguments small);
    ``numba``: ``grad`` with ``target="numba"``. Each derivative must be the caller's own
    (`assert_owned`). An AssertionError names the mode.
    """
    import s2s
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    rng = np.random.default_rng(seed)
    primal = f

    def f(*a):  # every call, the differentiated ones too, gets its own arrays
        return primal(*_fresh(a))
    module = [v for v in getattr(primal, "__globals__", {}).values() if isinstance(v, np.ndarray)]
    if mode in ("grad", "numba"):  # numba: the gradient compiled for the numba target
        given = _fresh(args)
        grads = s2s.grad(primal, argnums=nums, target="numba" if mode == "numba" else "numpy")(*given)
        for n, g in zip(nums, grads):
            assert_close(g, numerical_grad(f, args, n), rtol, atol, what=f"grad: d/d arg {n}")
        assert_owned(grads, given + module, "grad")
    elif mode == "jvp":
        tangents = [_direction(x, rng) if i in nums else 0.0 * x for i, x in enumerate(args)]
        given = _fresh(args)
        value, tangent = s2s.jvp(primal, given, tangents)
        assert_close(value, f(*args), 1e-10, 1e-12, what="jvp: primal value")
        assert_close(tangent, numerical_jvp(f, args, tangents), rtol, atol, what="jvp: tangent")
        assert_owned(tangent, given + tangents + module, "jvp: tangent")
    elif mode == "hvp":
        for n in nums:
            v = _direction(args[n], rng)
            given = _fresh(args) + [v]
            got = s2s.hvp(primal, argnums=n)(*given)
            assert_close(got, gradient_hvp(primal, args, n, v, rtol, atol), rtol, atol,
                         what=f"hvp: d2/d arg {n}2 . v")
            assert_owned(got, given + module, "hvp")
    elif mode == "hessian":
        for n in nums:
            x = np.asarray(args[n], dtype=float)
            basis = [float(e[0]) if isinstance(args[n], float) else e.reshape(x.shape)
                     for e in np.eye(x.size)]
            want = np.stack([np.ravel(gradient_hvp(primal, args, n, e, rtol, atol, what="hessian"))
                             for e in basis], axis=-1)
            got = s2s.hessian(primal, argnums=n)(*_fresh(args))
            assert_close(got, want.reshape(x.shape + x.shape), rtol, atol,
                         what=f"hessian: d2/d arg {n}2")
    else:
        raise ValueError(f"unknown mode {mode!r}; one of {MODES + ('hessian', 'numba')}")


def assert_owned(result, given, what):
    """Every array in ``result`` is writeable and shares no memory with an array in ``given``
    (the arguments, tangents and module arrays a derivative was called with): the caller
    may update it in place."""
    from .pytree import leaves
    arrays = [a for a in leaves(list(given)) if isinstance(a, np.ndarray)]
    for leaf in leaves(result):
        if isinstance(leaf, np.ndarray):
            assert leaf.flags.writeable, f"{what}: a read-only array"
            assert not any(np.may_share_memory(leaf, a) for a in arrays), (
                f"{what}: shares memory with an argument, a tangent or a module array")


def check_modes(f, args, argnums=0, modes=MODES, **tolerances):
    """`check_mode` for each of ``modes``."""
    for mode in modes:
        check_mode(mode, f, args, argnums, **tolerances)


# --- rules checked without code generation --------------------------------

def _namespace(values):
    import scipy.signal  # scipy's own templates name scipy.special and scipy.signal
    import scipy.special
    ns = {"np": np, "scipy": scipy}
    ns.update({k: getattr(helpers, k) for k in dir(helpers) if not k.startswith("_")})
    helpers.np = np
    ns.update(values)
    return ns


def evaluate(template: str, values: dict):
    """Evaluate one rule template with concrete values for its names."""
    return eval(compile(ast.parse(template, mode="eval"), "<template>", "eval"), _namespace(values))


def _bind(rule, args, kwargs):
    bound = rule.signature.bind(*args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    static = {k: (DYNAMIC if isinstance(v, np.ndarray) else v) for k, v in values.items()}
    return values, static


def check_rule(fn, qualname, args, kwargs=None, wrt=None, rtol=1e-5, atol=1e-6, seed=0):
    """Check the VJP and JVP templates of ``qualname`` at one point.

    ``fn`` is the primal (``np.tanh``); ``args``/``kwargs`` are its inputs;
    ``wrt`` names the parameters to check (default: the rule's differentiable
    parameters that were given float arrays or floats).
    """
    kwargs = kwargs or {}
    rule = RULES[qualname]
    values, static = _bind(rule, args, kwargs)
    if wrt is None:
        wrt = [p for p in rule.differentiable_params
               if isinstance(values.get(p), (np.ndarray, float))
               and np.asarray(values[p]).dtype.kind == "f"]
    ans = fn(*args, **kwargs)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(np.shape(ans))
    if np.ndim(ans) == 0:
        g = float(g)
    vjps = rule.vjp_templates(static)
    jvps = rule.jvp_templates(static) if rule.jvp else None
    checked = []
    for p in wrt:
        assert p in vjps, f"{qualname}: no VJP for parameter {p!r}"
        got = evaluate(vjps[p], {**values, "ans": ans, "g": g})
        if rule.elementwise:  # the engine sums broadcast axes back
            got = helpers.unbroadcast(np.broadcast_to(got, np.shape(ans)), np.shape(values[p]))

        def scalar(x, p=p):
            b = dict(values)
            b[p] = x
            return float(np.sum(g * _call_primal(fn, rule, b)))

        want = numerical_grad(scalar, [values[p]], 0)
        assert_close(got, want, rtol, atol, what=f"{qualname} VJP wrt {p}")
        if jvps is not None:
            assert p in jvps, f"{qualname}: no JVP for parameter {p!r}"
            tangent = rng.standard_normal(np.shape(values[p]))
            if isinstance(values[p], float):
                tangent = float(tangent)
            got_t = evaluate(jvps[p], {**values, "ans": ans, "d" + p: tangent})
            got_t = np.broadcast_to(got_t, np.shape(ans))

            def along(t, p=p, tangent=tangent):
                b = dict(values)
                b[p] = values[p] + t * tangent
                return _call_primal(fn, rule, b)

            want_t = (along(EPS) - along(-EPS)) / (2 * EPS)
            assert_close(got_t, want_t, rtol, atol, what=f"{qualname} JVP wrt {p}")
        checked.append(p)
    return checked


def _call_primal(fn, rule, values):
    """Call the primal: required params positionally, the rest by keyword."""
    args, kwargs = [], {}
    for name, param in rule.signature.parameters.items():
        if name not in values:
            continue
        if param.kind == param.VAR_POSITIONAL:
            args.extend(values[name])
        elif param.kind == param.VAR_KEYWORD:
            kwargs.update(values[name])
        elif param.default is param.empty and param.kind != param.KEYWORD_ONLY:
            args.append(values[name])
        elif values[name] is not param.default:
            kwargs[name] = values[name]
    return fn(*args, **kwargs)


def error_problems(error, cwd=None) -> list[str]:
    """What keeps an `S2SError` from naming the user's code (empty: nothing).

    It must point at a line of a file (never line 0) when it names a file, name a
    file when a pipeline stage raised it, and show no temporary s2s made up (t3,
    dt3, saved_x, n_iter2, dparts) unless that name is the user's own (it is in
    the file named; a relative file name is read from ``cwd``). ``tests/conftest.py``
    applies it to every error of the suite.
    """
    problems = []
    if error.filename and not error.line:
        problems.append("names a file but no line (line 0)")
    if error.stage and not error.filename:
        problems.append(f"raised by stage {error.stage} without naming the user's file and line")
    text = f"{error.message}\n{error.hint or ''}"
    user_text = ""
    if error.filename:
        try:
            with open(os.path.join(cwd or os.getcwd(), error.filename), encoding="utf-8") as fh:
                user_text = fh.read()
        except OSError:
            user_text = error.source_line or ""
    made_up = sorted({n for n in TEMPORARY.findall(text) if not re.search(rf"\b{n}\b", user_text)})
    if made_up:
        problems.append(f"shows names s2s made up: {', '.join(made_up)}")
    return problems
