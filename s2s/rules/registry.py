"""The rule registry: one `Rule` per differentiable (or deliberately constant) function.

A rule states a derivative as *templates*: short Python expressions that read like
the code they produce. Inside a template:

- the primal's parameter names stand for the call's arguments (``x``, ``axis``),
- ``ans`` is the primal's result and ``g`` the adjoint flowing into it (VJP),
- ``d<param>`` is the tangent of that parameter (JVP), e.g. ``da @ b``,
- ``np`` is the array module (numpy or cupy) and helper names from
  ``s2s.rules.helpers`` may be called; the emitter copies them into the module.

A VJP maps each differentiable parameter to the expression of its adjoint
contribution (which must have that parameter's shape); a JVP maps each parameter
to its term of the output tangent, so inactive inputs simply drop out.

Rules whose templates depend on constant arguments (``axis=0``,
``keepdims=True``) are Python functions: they receive the static value of each
parameter they name, or ``DYNAMIC`` when the call site passes a variable.
"""
from __future__ import annotations

import ast
import functools
import inspect
from dataclasses import dataclass, field
from typing import Callable

RULES: dict[str, "Rule"] = {}
METHODS: dict[str, str] = {}
LOWERINGS: dict[str, Callable] = {}  # qualname -> a numpy function inlined in its place


class _Dynamic:
    """The value of a rule parameter that is not a constant at the call site."""

    def __repr__(self):
        return "DYNAMIC"


DYNAMIC = _Dynamic()


@dataclass
class Rule:
    """The derivative of one function, by qualified name (``numpy.tanh``)."""

    qualname: str
    signature: inspect.Signature
    vjp: Callable[..., dict[str, str]] | None = None
    jvp: Callable[..., dict[str, str]] | None = None
    elementwise: bool = False  # broadcasting elementwise: the engine unbroadcasts
    nondifferentiable: bool = False  # result is never active (argmax, floor, ==)
    differentiable_params: tuple[str, ...] = ()
    domain: dict = field(default_factory=dict)  # hints for rule tests, see testing.py
    # A function that returns a tuple or list: its length, or a function of the static values
    # of the params it names giving it (None where not known), so ``r = f(...); r[0]`` reads.
    outputs: int | Callable | None = None

    def output_count(self, static):
        if self.outputs is None or isinstance(self.outputs, int):
            return self.outputs
        return self.static_call(self.outputs, static)

    def static_call(self, fn, static, ndim=None, shapes=None):
        """Call a template function with the static values of the params it names.

        A template function that names ``ndim`` gets a dict param -> ``ndim`` of
        the arguments whose rank is known (``{"x1": 2, "x2": 1}``); one that names
        ``shapes``, param -> shape of the arguments whose shape is known.
        """
        known = {"ndim": ndim, "shapes": shapes}
        return fn(**{n: (dict(known[n] or {}) if n in known else static.get(n, DYNAMIC))
                     for n in _parameters(fn)})

    def vjp_templates(self, static, ndim=None, shapes=None):
        return self.static_call(self.vjp, static, ndim, shapes) if self.vjp else {}

    def jvp_templates(self, static, ndim=None):
        return self.static_call(self.jvp, static, ndim) if self.jvp else {}


@functools.lru_cache(maxsize=None)
def _parameters(fn) -> tuple[str, ...]:
    """The parameter names of a template function (asked for every operation differentiated)."""
    return tuple(inspect.signature(fn).parameters)


def parse_signature(params: str) -> inspect.Signature:
    """``'a, axis=None, keepdims=False'`` -> an ``inspect.Signature``."""
    namespace: dict = {}
    exec(f"def f({params}): pass", namespace)  # noqa: S102 - our own literal text
    return inspect.signature(namespace["f"])


def _register(rule: Rule) -> Rule:
    if rule.qualname in RULES:
        raise ValueError(f"duplicate rule for {rule.qualname}")
    RULES[rule.qualname] = rule
    return rule


def elementwise(qualname: str, params: str, *partials: str, **domain) -> Rule:
    """A broadcasting elementwise function, given its partial derivatives.

    ``elementwise('numpy.tanh', 'x', '1 - ans ** 2')`` states d ans / d x once;
    the VJP (``g * partial``) and JVP (``partial * dx``) both come from it. A
    partial of ``None`` marks a parameter as not differentiable (an integer); one
    of ``...`` as differentiable but without a rule: a derivative through it is refused.
    """
    sig = parse_signature(params)
    names = list(sig.parameters)[: len(partials)]
    active = {n: p for n, p in zip(names, partials) if p is not None and p is not ...}
    refused = tuple(n for n, p in zip(names, partials) if p is ...)

    def vjp():
        return {n: _times("g", p) for n, p in active.items()}

    def jvp():
        return {n: _times(p, "d" + n) for n, p in active.items()}

    return _register(Rule(qualname, sig, vjp, jvp, elementwise=True,
                          differentiable_params=tuple(active) + refused, domain=domain))


def _times(a: str, b: str) -> str:
    """Template text for the product ``a * b``, parenthesized only where needed."""
    if a == "1":
        return b
    if b == "1":
        return a
    if a == "-1":
        return f"-{_factor(b)}"
    return f"{_factor(a)} * {_factor(b)}"


@functools.lru_cache(maxsize=None)
def _factor(expr: str) -> str:
    node = ast.parse(expr, mode="eval").body
    loose = isinstance(node, (ast.Compare, ast.BoolOp, ast.IfExp, ast.UnaryOp)) or (
        isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.BitOr, ast.BitAnd,
                                                             ast.BitXor, ast.LShift, ast.RShift)))
    return f"({expr})" if loose else expr


def vjp(qualname: str, params: str, differentiable: str | None = None, outputs=None, **domain):
    """Decorator: register the VJP template function of ``qualname``.

    ``differentiable`` lists the parameters that may be active (default: all
    the parameters the VJP can return); ``outputs`` is `Rule.outputs`.
    """
    sig = parse_signature(params)

    def register(fn):
        diff = tuple(differentiable.replace(" ", "").split(",")) if differentiable else tuple(sig.parameters)
        _register(Rule(qualname, sig, vjp=fn, differentiable_params=diff, domain=domain, outputs=outputs))
        return fn

    return register


def jvp(qualname: str):
    """Decorator: attach the JVP template function to an existing rule."""

    def register(fn):
        RULES[qualname].jvp = fn
        return fn

    return register


def nondifferentiable(*qualnames: str, params: str = "*args, **kwargs") -> None:
    """Functions whose results are constants for differentiation (argmax, floor)."""
    for name in qualnames:
        _register(Rule(name, parse_signature(params), nondifferentiable=True))


def method(name: str, qualname: str) -> None:
    """``x.name(...)`` means ``qualname(x, ...)`` (``ndarray.sum`` -> ``numpy.sum``)."""
    METHODS[name] = qualname


def lowers(*qualnames: str, static: str = "", check: Callable | None = None):
    """Decorator: calls to ``qualnames`` are replaced by the decorated numpy function,
    inlined like a helper of the user's, so every mode and order differentiates it.

    With ``static`` (parameters that must be constants at the call, ``"lower, trans"``),
    the decorated function takes their values and returns the numpy function to inline,
    ``check``, given their values (``DYNAMIC`` for a variable), returns why such a
    call has no rule, or None.
    """

    def register(fn):
        fn.s2s_static = tuple(n.strip() for n in static.split(",") if n.strip())
        fn.s2s_check = check
        for name in qualnames:
            if name in RULES or name in LOWERINGS:
                raise ValueError(f"duplicate rule for {name}")
            LOWERINGS[name] = fn
        return fn

    return register


def lookup(qualname: str) -> Rule | None:
    return RULES.get(qualname)
