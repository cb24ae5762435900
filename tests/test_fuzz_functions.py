"""A fixed set of random programs with functions as values (`tests/fuzz_functions.py`: helpers
taking functions, closures over loop-invariant arrays, recursive helpers, an object's methods)
through s2s.grad, s2s.jvp and s2s.hvp against finite differences. A campaign is
`python -m tests.fuzz --n 1000 --features +funargs,+closures,+recursion,+objects`.
"""
import pytest

from tests import fuzz

SEED = 3
COUNT = 20  # valid programs whose f uses a function feature
FEATURES = fuzz.parse_features("+funargs,+closures,+recursion,+objects")


def _uses_functions(text):
    body = text.split("def f(")[1]
    return any(key in body for key in ("apply", "lambda", "rec1(", "def c", "prm"))


def _programs():
    found, index = [], 0
    while len(found) < COUNT:
        program, args = fuzz.make(SEED, index, FEATURES)
        if _uses_functions(program.text) and fuzz.valid(fuzz.load(program.text), args):
            found.append(index)
        index += 1
    return found


@pytest.mark.parametrize("index", _programs())
def test_random_programs_with_functions(index, monkeypatch):
    monkeypatch.setenv("S2S_CACHE", "0")
    program, args = fuzz.make(SEED, index, FEATURES)
    f = fuzz.load(program.text)
    outcomes = {mode: fuzz.check(mode, f, args, fuzz.argnums(mode, index), seed=index)
                for mode in fuzz.MODES}
    bad = {m: o for m, o in outcomes.items() if o[0] not in ("ok", "refused", "kink")}
    assert not bad, f"{bad}\n\n{program.text}"
