"""Unsupported code is refused with file:line:col, the source line, and what to do."""
import re

import numpy as np
import pytest

import s2s
from s2s.errors import NameResolutionError, NoRule, S2SError, UnsupportedSyntax


def uses_try(x):
    try:
        y = x * 2
    except ValueError:
        y = x
    return np.sum(y)


def uses_with(x):
    with open("f") as fh:
        y = x * len(fh.read())
    return np.sum(y)


def uses_comprehension(x):
    return np.sum(np.array(list({v * 2 for v in x})))


def uses_global(x):
    global COUNTER
    return np.sum(x)


def shrinks_in_place(x):
    if np.sum(x) > 1:
        x[0] = x[0] * 0.5
        return shrinks_in_place(x)
    return np.sum(x)


def recursive(x):
    return shrinks_in_place(x * 2.0)


def mutates(x):
    y = x
    y[0] = 3.0
    return np.sum(y)


def calls_unknown(x):
    return np.sum(np.fft.fft(x).real)


def unknown_name(x):
    return np.sum(x * undefined_thing)  # noqa: F821


def nested_def(x):
    if np.sum(x) > 0:
        def inner(v):
            return v * 2
    return np.sum(inner(x))


CASES = [
    (uses_try, UnsupportedSyntax, "try statements", "try:"),
    (uses_with, UnsupportedSyntax, "with statements", "with open"),
    (uses_comprehension, UnsupportedSyntax, "set comprehensions", "{v * 2 for v in x}"),
    (uses_global, UnsupportedSyntax, "global statements", "global COUNTER"),
    (recursive, UnsupportedSyntax, "changes the argument 'x' in place",
     "x[0] = x[0] * 0.5"),
    (mutates, UnsupportedSyntax, "argument 'x' in place", "y[0] = 3.0"),
    (calls_unknown, NoRule, "no derivative rule", "np.fft.fft(x)"),
    (unknown_name, NameResolutionError, "undefined_thing", "undefined_thing"),
    (nested_def, UnsupportedSyntax, "function defined inside a loop or branch and used outside", "def inner"),
]


@pytest.mark.parametrize("fn, cls, message, snippet", CASES, ids=[c[0].__name__ for c in CASES])
def test_refusals_name_the_place(fn, cls, message, snippet):
    with pytest.raises(cls) as info:
        s2s.grad(fn)(np.ones(3))
    err = info.value
    assert isinstance(err, S2SError)
    text = str(err)
    assert message in text
    assert err.filename.endswith("test_errors.py")
    import linecache
    line = linecache.getline(err.filename, err.line)
    assert snippet in line, (snippet, line)
    assert 0 <= err.col < len(line)
    first = text.splitlines()[0]
    assert re.match(r".*test_errors\.py:\d+:\d+: error: ", first)
    assert snippet.split()[0] in text  # the source line is quoted
    assert "^" in text and "hint:" in text


def test_integer_argument_is_refused():
    with pytest.raises(TypeError, match="integer"):
        s2s.grad(uses_try_free)(np.arange(3))


def uses_try_free(x):
    return np.sum(x * 2.0)


def test_no_rule_on_an_inactive_value_is_fine():
    def_inactive = s2s.grad(fft_of_constant)
    np.testing.assert_allclose(def_inactive(np.ones(3)), [3.0, 0.0, 0.0])  # fft of ones


def fft_of_constant(x):
    c = np.fft.fft(np.ones(3)).real
    return np.sum(x * c)


def padded_by(x, c):
    return np.sum(np.pad(x, 1, constant_values=c) ** 2)


@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_a_value_in_a_parameter_no_rule_differentiates_is_refused(mode):
    """``constant_values`` of np.pad is not differentiated: a value that depends on the
    differentiated argument there is refused (it was silently taken as constant: 0.0)."""
    x, c = np.ones(3), 2.0
    with pytest.raises(s2s.S2SError, match="numpy.pad is not differentiated with respect to its "
                                           "argument 'constant_values', which depends on c"):
        if mode == "grad":
            s2s.grad(padded_by, argnums=1)(x, c)
        else:
            s2s.jvp(lambda c: padded_by(x, c), (c,), (1.0,))
    assert s2s.grad(padded_by)(x, c).shape == (3,)  # with respect to x alone: fine
