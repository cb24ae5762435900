"""Adjoints of a product of stacks of matrices with one known batch shape are written out
(``g @ np.swapaxes(b, -1, -2)``); stacks that broadcast keep the helpers that sum back."""
import numpy as np
import pytest

from s2s.testing import check_mode

from tests.test_generated_code import body_of, generated


def stacked(a, b):
    return np.sum(np.tanh(a @ b) ** 2)


@pytest.mark.parametrize("shapes, plain", [(((3, 5, 2), (3, 2, 4)), True),
                                           (((2, 3, 5, 2), (2, 3, 2, 4)), True),
                                           (((1, 5, 2), (3, 2, 4)), False),
                                           (((5, 2), (3, 2, 4)), False)])
def test_stacked_matmul(shapes, plain, rng):
    args = tuple(rng.standard_normal(s) for s in shapes)
    body = body_of(generated(stacked, *args, argnums=(0, 1)), "grad_stacked")
    assert any("np.swapaxes(b, -1, -2)" in line for line in body) == plain, body
    assert any("matmul_vjp_a" in line for line in body) != plain, body
    for mode in ("grad", "hvp"):
        check_mode(mode, stacked, args, argnums=(0, 1))
