"""numba's first call at a short and a long trip count, each in a fresh process and cache.

The numba target compiles the generated loop, it does not unroll it: the first call
(generation plus ``numba.njit`` compiling the module) should cost the same at 50 and at
10 000 steps. Each measurement runs in a child process with empty s2s and numba cache
folders, so nothing is served from disk; the hand-written gradient under ``numba.njit``
is measured the same way. ``jax.jit``'s compile times at the same sizes are in the main
results (the ``jit(grad)`` cells).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CASES = (("ode", {"steps": 50}), ("ode", {"steps": 10_000}),
         ("logreg_loop", {"n": 100, "d": 100}), ("logreg_loop", {"n": 10_000, "d": 100}))

CHILD = r"""
import json, sys, time
import numpy as np
import numba
import s2s
from benchmarks.problems import load
problem = load(sys.argv[1])
args = problem.make_args(np.random.default_rng(0), **json.loads(sys.argv[2]))
t0 = time.perf_counter()
if sys.argv[3] == "s2s":
    g = s2s.grad(problem.loss, argnums=problem.ARGNUMS, target="numba")
else:
    g = numba.njit(problem.grad_loss)
g(*args)
t1 = time.perf_counter()
g(*args)
t2 = time.perf_counter()
print(json.dumps({"first_s": t1 - t0, "call_s": t2 - t1}))
"""


def measure(problem: str, params: dict, which: str) -> dict:
    """One fresh first call of s2s's numba target (``which="s2s"``) or of the hand-written
    gradient under ``numba.njit`` (``"hand"``)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, S2S_CACHE="0", S2S_CACHE_DIR=tmp, NUMBA_CACHE_DIR=tmp,
                   PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        done = subprocess.run([sys.executable, "-c", CHILD, problem, json.dumps(params), which],
                              capture_output=True, text=True, env=env, cwd=root, timeout=600)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(cases=CASES) -> list[dict]:
    """Every case, for s2s's numba target and the hand-written gradient under numba."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return [{"error": "numba is not installed"}]
    out = []
    for problem, params in cases:
        row = {"problem": problem, "params": params}
        for which in ("s2s", "hand"):
            row[which] = measure(problem, params, which)
        out.append(row)
    return out
