"""Everyday numpy that used to be refused (issue 11): chained assignment, print and logging,
slice objects and ``np.s_``, helpers called in indices and conditions, ``np.array`` of values.

Each function is checked in reverse mode, forward mode and forward over reverse against
central finite differences (`tests.test_alias.check`).
"""
import logging

import numpy as np
import pytest

import s2s
from tests.test_alias import check

RNG = np.random.default_rng(5)
log = logging.getLogger("s2s.tests")


def chained(x):
    a = b = x * 2.0
    b += 1.0  # the same array: a sees it
    c = d = np.sin(x)
    d = d * 3.0  # a rebinding: c keeps its value
    return np.sum(a * x) + np.sum(c * d)


def reports(x):
    y = np.sin(x)
    print("y is", y)
    logging.debug("sum %s", np.sum(y))
    log.debug("y %s", y)
    assert np.all(np.isfinite(y)), "finite"
    return np.sum(y ** 2)


def slices(x):
    s = slice(1, 3)
    head = np.s_[:2]
    y = x[s] * 2.0
    z = x[head][:, np.newaxis] * x[np.newaxis, :2]
    return np.sum(y ** 2) + np.sum(z ** 2)


def last(n):
    return n - 1


def positive(x):
    return np.sum(x) > 0.0


def lifted(x):
    y = x[last(x.shape[0])] * 3.0
    if positive(x):
        y = y * np.sin(x[0])
    return y ** 2


def arrays(x):
    a = np.array([x[0], 2.0 * x[1], 0.5])
    b = np.array([[x[0], x[1]], [1.0, x[2]]], dtype=float)
    c = np.asarray(x) * np.array(x[0])
    d = np.array([0.0, 8.0])  # constant at first, active after the loop
    for i in range(2):
        d = d * a[i]
    return np.sum(a ** 2) + np.sum(b @ b) + np.sum(c) + np.sum(d)


@pytest.mark.parametrize("f", [chained, reports, slices, lifted, arrays])
def test_everyday_numpy(f, capsys):
    check(f, (RNG.uniform(0.3, 1.7, 4),))
    if f is reports:
        assert "y is" in capsys.readouterr().out  # printed by the forward sweep too


def test_a_helper_in_a_while_test_is_refused_with_a_hint():
    def counts(x):
        i = 0
        while i < last(x.shape[0]):
            x = x * 2.0
            i += 1
        return np.sum(x)

    with pytest.raises(s2s.S2SError, match="while loop's test"):
        s2s.grad(counts)(np.ones(3))
