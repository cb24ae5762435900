"""Regenerate every checked-in derivative in this folder, exactly as s2s-diff writes it.

    python -m generated_examples.regenerate           # rewrite the files that changed
    python -m generated_examples.regenerate --check   # only report them; exit 1 if any

A hand-edited example (``edited=True``) is updated as ``s2s-diff --update``
does: regenerated, with the edits re-applied from the record beside it.

``tests/test_generated_examples.py`` fails when a checked-in file differs from
what the current code generates, and checks every gradient numerically with
the inputs declared here.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run as a script: python generated_examples/regenerate.py
    sys.path.insert(0, ROOT)

from cli.main import build_parser, generate, parse_shapes, read_primal
from s2s.cache import write_text_atomic
from s2s.errors import S2SError
from s2s.merge import merge
from s2s.source import param_names
from s2s.update import base_path, update

COMMAND = "python -m generated_examples.regenerate"


@dataclass(frozen=True)
class Example:
    """A primal in ``generated_examples/<module>.py``, its derivative in ``<module>_grad.py``
    (``<module>_jvp.py`` in forward mode)."""

    module: str
    fn: str
    options: tuple[str, ...]  # s2s-diff options, as on the command line
    inputs: Callable  # rng -> list of argument tuples the derivative is checked at
    edited: bool = False  # a hand-edited derivative, kept current by `s2s-diff --update`

    @property
    def primal_path(self) -> str:
        return f"generated_examples/{self.module}.py"

    @property
    def forward(self) -> bool:
        return "forward" in self.options

    @property
    def output_path(self) -> str:
        return f"generated_examples/{self.module}_{'jvp' if self.forward else 'grad'}.py"

    @property
    def command(self) -> str:
        if self.edited:
            return f"s2s-diff {self.primal_path} --fn {self.fn} --update {self.output_path}"
        return " ".join(["s2s-diff", self.primal_path, "--fn", self.fn, *self.options,
                         "-o", self.output_path])

    @property
    def wrt(self) -> list[str]:
        wrt = build_parser().parse_args(["x.py", *self.options]).wrt
        if wrt:
            return wrt.split(",")
        return [param_names(primal_source(self).node)[0]]


def determinant_inputs(rng):
    return [(rng.standard_normal((4, 4)), 2.0)]


def logistic_inputs(rng):
    X = rng.standard_normal((8, 3))
    y = (rng.random(8) < 0.5).astype(float)
    return [(rng.standard_normal(3), 0.1, X, y)]


def mlp_inputs(rng):
    n, d, k, c = 5, 3, 4, 3
    Y = np.eye(c)[rng.integers(0, c, n)]
    return [(rng.standard_normal((d, k)), rng.standard_normal(k), rng.standard_normal((k, c)),
             rng.standard_normal(c), rng.standard_normal((n, d)), Y)]


def rnn_inputs(rng):
    k, d, steps = 4, 3, 5
    return [(0.5 * rng.standard_normal((k, k)), 0.5 * rng.standard_normal((k, d)),
             rng.standard_normal(k), rng.standard_normal(k), rng.standard_normal((steps, d)))]


def rnn_fill_inputs(rng):
    k, d, steps = 4, 3, 5
    return [(0.5 * rng.standard_normal((k, k)), 0.5 * rng.standard_normal((k, d)),
             rng.standard_normal(k), rng.standard_normal((steps, d)), rng.standard_normal(k))]


def branch_inputs(rng):
    x = rng.random(4) * 0.2
    return [(x + 0.5, 1.5), (-x - 0.5, 1.5), (x - 0.1, 1.5)]  # if, elif, else


def helper_inputs(rng):
    return [(rng.standard_normal(3), rng.standard_normal((6, 3)), rng.standard_normal(6))]


def logreg_stable_inputs(rng):
    X = rng.standard_normal((8, 3))
    return [(rng.standard_normal(3), X, np.where(rng.random(8) < 0.5, -1.0, 1.0))]


def layers_inputs(rng):
    layers = [(0.5 * rng.standard_normal(s), rng.standard_normal(s[1])) for s in [(3, 4), (4, 4)]]
    layers.append((rng.standard_normal(4), 0.3))
    return [(layers, rng.standard_normal((6, 3)), rng.standard_normal(6))]


def nn_generator_inputs(rng):
    return [(0.3 * rng.standard_normal(67), rng.standard_normal((5, 4)), np.eye(3)[rng.integers(0, 3, 5)])]


def spring_inputs(rng):
    return [(2.0, rng.standard_normal(3), rng.standard_normal(3), 0.05)]


def gp_inputs(rng):
    X = rng.standard_normal((6, 2))
    return [(np.log(0.8), np.log(1.2), np.log(0.3), X, np.sin(X[:, 0]) + 0.1 * rng.standard_normal(6))]


def variational_inputs(rng):
    X = rng.standard_normal((10, 3))
    a = rng.standard_normal((3, 3))
    return [(rng.standard_normal(3), -1.0 + 0.1 * rng.standard_normal(3), X, X @ np.array([0.5, -1.0, 2.0]),
             rng.standard_normal((4, 3)), a @ a.T + 3 * np.eye(3))]


def ode_fit_inputs(rng):
    from scipy.integrate import odeint

    from generated_examples.ode_fit import lotka_volterra
    t = np.linspace(0.0, 6.0, 12)
    rates = (1.0, 0.5, 0.3, 0.8)
    observed = odeint(lotka_volterra, [2.0, 1.0], t, args=rates) * np.exp(0.05 * rng.standard_normal((12, 2)))
    return [(np.log(rates) + 0.1 * rng.standard_normal(4), np.array([1.8, 1.1]), t, observed)]


EXAMPLES = [  # shapes as s2s.grad sees them on a first call with the inputs below
    Example("logistic_loop", "loss", ("--wrt", "w,b", "--shapes", "w=3", "b=", "X=8x3", "y=8"),
            logistic_inputs),
    Example("mlp", "loss", ("--wrt", "W1,b1,W2,b2", "--shapes", "W1=3x4", "b1=4", "W2=4x3", "b2=3",
                            "X=5x3", "Y=5x3"), mlp_inputs),
    Example("rnn", "loss", ("--wrt", "W,U,v,h0", "--shapes", "W=4x4", "U=4x3", "v=4", "h0=4",
                            "x=5x3"), rnn_inputs),
    Example("rnn_fill", "loss", ("--wrt", "W,U,b", "--shapes", "W=4x4", "U=4x3", "b=4", "xs=5x3",
                                 "h0=4"), rnn_fill_inputs),
    Example("layers", "loss", ("--shapes", "layers=[(3x4,4),(4x4,4),(4,float)]", "X=6x3", "y=6"),
            layers_inputs),
    Example("branches", "loss", ("--wrt", "x,scale", "--shapes", "x=4", "scale="), branch_inputs),
    Example("helpers", "loss", ("--shapes", "w=3", "X=6x3", "y=6"), helper_inputs),
    Example("gp", "neg_log_marginal_likelihood", ("--wrt", "log_ell,log_sf,log_sn", "--shapes", "log_ell=",
                                                   "log_sf=", "log_sn=", "X=6x2", "y=6"), gp_inputs),
    Example("variational", "negative_elbo", ("--wrt", "mu,log_sigma", "--shapes", "mu=3", "log_sigma=3",
                                             "X=10x3", "y=10", "eps=4x3", "prior_cov=3x3"), variational_inputs),
    Example("ode_fit", "loss", ("--wrt", "log_rates,z0", "--shapes", "log_rates=4", "z0=2", "t=12",
                                "observed=12x2"), ode_fit_inputs),
    Example("nn_generator", "loss", ("--shapes", "W_vect=67", "X=5x4", "T=5x3"), nn_generator_inputs),
    Example("nn_factory", "loss", ("--import", "--shapes", "W_vect=67", "X=5x4", "T=5x3"),
            nn_generator_inputs),
    Example("determinant", "loss", ("--wrt", "A", "--shapes", "A=4x4", "target="), determinant_inputs),
    Example("spring", "simulate", ("--mode", "forward", "--wrt", "k"), spring_inputs),
    Example("logreg_stable", "loss", ("--shapes", "w=3", "X=8x3", "y=8"), logreg_stable_inputs,
            edited=True),
]


def generated_text(example: Example, primal: str | None = None) -> str:
    """What ``s2s-diff`` generates for ``example``, run from the repository root
    (``primal``: read the primal from this file instead)."""
    args = build_parser().parse_args([example.primal_path, "--fn", example.fn, *example.options])
    src = primal_source(example, primal)
    shapes = parse_shapes(args.shapes, param_names(src.node))
    return generate(args, src, [n for n, v in shapes.items() if v is None],
                    {n: v for n, v in shapes.items() if v is not None}).text


def primal_source(example: Example, primal: str | None = None):
    """The primal as s2s-diff reads it: statically, or imported (``--import``)."""
    return read_primal(primal or os.path.join(ROOT, example.primal_path), example.fn,
                       shown=example.primal_path, imported="--import" in example.options)


def expected_text(example: Example) -> str:
    """What ``example.command`` writes: the generated text, with the hand edits re-applied."""
    text = generated_text(example)
    if not example.edited:
        return text
    path = os.path.join(ROOT, example.output_path)
    merged = merge(_read(base_path(path)), _read(path), text, example.output_path)
    if merged.conflicts:
        raise S2SError(f"{example.output_path}: the hand edits no longer apply ("
                       + "; ".join(f"{c.what}: {c.reason}" for c in merged.conflicts) + ")",
                       hint=f"run `{example.command} --markers` and resolve the conflicts")
    return merged.text


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report out-of-date files; write nothing")
    args = parser.parse_args(argv)
    stale = 0
    for example in EXAMPLES:
        path = os.path.join(ROOT, example.output_path)
        generated = generated_text(example)
        text = expected_text(example)
        if _read(path) == text and (not example.edited or _read(base_path(path)) == generated):
            print(f"unchanged  {example.output_path}")
            continue
        stale += 1
        if args.check:
            print(f"outdated   {example.output_path}")
        elif example.edited:
            update(path, generated, example.output_path)
            print(f"updated    {example.output_path} (hand edits re-applied)")
        else:
            write_text_atomic(path, text)
            print(f"written    {example.output_path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
