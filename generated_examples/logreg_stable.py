"""Logistic regression written as log(1 + exp(-margin)), with a hand-edited derivative.

The generated derivative computes ``exp(-margin) / (1 + exp(-margin))``,
inf/inf = nan for margins below about -710. ``logreg_stable_grad.py`` is the
generated file with those lines edited by hand to ``(1 - tanh(margin / 2)) / 2``,
which cannot overflow; the regenerate script keeps it current with
``s2s-diff --update``, which re-applies the edit each time (the record of what
s2s wrote is ``logreg_stable_grad.py.s2s-base``).
"""
import numpy as np


def loss(w, X, y):
    """Mean logistic loss of labels y in {-1, 1}."""
    margin = y * (X @ w)
    return np.mean(np.log(1.0 + np.exp(-margin)))
