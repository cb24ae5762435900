"""Calls as people write them (issue 12): decorators, ``*args``/``**kw``, ``f(*xs)``, methods
of small user classes, generators consumed by list()/zip()/enumerate()/comprehensions;
each checked against central finite differences in reverse and forward mode (and hvp)."""
import functools

import numba
import numpy as np
import pytest

import s2s
from s2s import derive
from s2s.source import from_file
from s2s.testing import assert_close, check_mode, numerical_grad

MODES = ("grad", "jvp", "hvp")
x0 = np.array([0.3, -0.7, 1.1])


# --- decorators: only those known to keep the function's values are seen through ----------

def double(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return 2.0 * fn(*args)
    return wrapper


@double
def doubled(x):
    return np.sum(x ** 2)


def cube(x):
    return np.sum(x ** 3)


cube_twice = double(cube)  # wrapped without the decorator syntax


def calls_a_wrapped_helper(x):
    return cube_twice(x) + 1.0


REGISTRY = {}


def register(fn):  # returns the function itself: what is called is what s2s reads
    REGISTRY[fn.__name__] = fn
    return fn


@register
def registered(x):
    return np.sum(np.sin(x) * x)


@numba.njit
def compiled_helper(x):
    return np.tanh(x) * 2.0


@functools.lru_cache(maxsize=None)
def cached_scale(n):
    return 0.5 * n


def calls_transparent_wrappers(x):
    return np.sum(compiled_helper(x)) * cached_scale(3) + registered(x)


@pytest.mark.parametrize("fn, line", [(doubled, "@double"), (calls_a_wrapped_helper, "def cube(x):")])
def test_value_changing_decorators_are_refused(fn, line):
    with pytest.raises(s2s.S2SError) as info:
        s2s.grad(fn)(x0)
    text = str(info.value)
    assert "a wrapper made by a decorator" in text and "double.<locals>.wrapper" in text
    assert f"{__file__}:" in text and line in text


@pytest.mark.parametrize("mode", MODES)
def test_transparent_decorators(mode):
    check_mode(mode, calls_transparent_wrappers, (x0,))
    check_mode(mode, registered, (x0,))


def test_decorators_read_from_a_file(tmp_path):
    (tmp_path / "model.py").write_text(
        "import numba\nimport numpy as np\nfrom mydecorators import double\n\n"
        "@numba.njit(cache=True)\ndef fast(x):\n    return np.sin(x)\n\n"
        "@double\ndef slow(x):\n    return np.cos(x)\n\n"
        "def ok(x):\n    return np.sum(fast(x))\n\n"
        "def refused(x):\n    return np.sum(slow(x))\n")
    path = str(tmp_path / "model.py")
    gen = derive.reverse_module(from_file(path, "ok"), ["x"])
    assert "np.cos(x)" in gen.text
    with pytest.raises(s2s.S2SError) as info:
        derive.reverse_module(from_file(path, "refused"), ["x"])
    assert f"{path}:9:2" in str(info.value) and "the decorator double" in str(info.value)
