"""A fixed set of random programs (`tests/fuzz.py`, seed 0) through s2s.grad, s2s.jvp and
s2s.hvp against finite differences. A long campaign is `python -m tests.fuzz --n 10000`.

A program that hits a known open bug is a strict xfail naming it (see
/work/notes/fuzz-findings.md): it fails as soon as the bug is fixed, to be taken off the list.
"""
import re

import pytest

from tests import fuzz

SEED = 0
COUNT = 30  # valid programs; about a third of a second each (CPU) for the three modes
# The loops the backward sweep's speed passes rewrite (tests/fuzz_speed.py): all supported.
SPEED = ("stepping,remat,accumulate,loops,helpers", 8)
KNOWN: dict = {}  # (program, mode): the open bug it hits (F1, writes through a view: fixed)


def _valid_programs(features, count):
    found, index = [], 0
    while len(found) < count:
        program, args = fuzz.make(SEED, index, features)
        if fuzz.valid(fuzz.load(program.text), args):
            found.append(index)
        index += 1
    return found


CASES = [pytest.param(i, mode, marks=pytest.mark.xfail(reason=KNOWN[i, mode], strict=True))
         if (i, mode) in KNOWN else (i, mode)
         for i in _valid_programs(fuzz.DEFAULT_FEATURES, COUNT) for mode in fuzz.MODES]
SPEED_CASES = [(i, mode) for i in _valid_programs(fuzz.parse_features(SPEED[0]), SPEED[1])
               for mode in fuzz.MODES]


def _outcome(index, mode, features):
    program, args = fuzz.make(SEED, index, features)
    f = fuzz.load(program.text)
    outcome, detail = fuzz.check(mode, f, args, fuzz.argnums(mode, index), seed=index)
    return outcome, f"{outcome}: {detail}\n\n{program.text}"


@pytest.mark.parametrize("index, mode", CASES)
def test_fixed_random_programs(index, mode, monkeypatch):
    monkeypatch.setenv("S2S_CACHE", "0")
    outcome, report = _outcome(index, mode, fuzz.DEFAULT_FEATURES)
    assert outcome in ("ok", "refused", "kink"), report


@pytest.mark.parametrize("index, mode", SPEED_CASES)
def test_fixed_random_loops_of_the_speed_passes(index, mode, monkeypatch):
    monkeypatch.setenv("S2S_CACHE", "0")
    outcome, report = _outcome(index, mode, fuzz.parse_features(SPEED[0]))
    assert outcome in ("ok", "kink"), report


# Arrays carried across nested loop trips, helpers returning views (tests/fuzz_state.py):
# the first programs that have one.
CARRIED = fuzz.parse_features("carried,loops,jumps,helpers,returns,writes")
CARRIED_CASES = [(i, mode) for i in [i for i in _valid_programs(CARRIED, 40)
                                     if re.search(r"\b[ct]buf", fuzz.make(SEED, i, CARRIED)[0].text)][:6]
                 for mode in fuzz.MODES]


@pytest.mark.parametrize("index, mode", CARRIED_CASES)
def test_fixed_random_carried_arrays(index, mode, monkeypatch):
    monkeypatch.setenv("S2S_CACHE", "0")
    outcome, report = _outcome(index, mode, CARRIED)
    assert outcome in ("ok", "refused", "kink"), report
