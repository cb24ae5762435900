"""Generation time does not depend on a loop's trip count.

``loop_10`` and ``loop_1000`` differ only in the literal of ``range``. s2s
transforms the loop, it does not unroll it, so both derivatives should be the
same text (up to the literal and the name) and take the same time to make.
"""
from __future__ import annotations

import re
import statistics
import time

import numpy as np


def loop_10(x, w, b):
    for i in range(10):
        x = np.tanh(x * w + b)
    return np.sum(x * x)


def loop_1000(x, w, b):
    for i in range(1000):
        x = np.tanh(x * w + b)
    return np.sum(x * x)


def _generate(fn, args):
    """One generation from scratch: (seconds, generated text, call seconds).

    As for the problems: ``s2s.grad(f)`` plus how much longer the first call
    takes than the second (the first call specializes on argument kinds).
    """
    import s2s

    t0 = time.perf_counter()
    g = s2s.grad(fn, argnums=(1, 2))
    t1 = time.perf_counter()
    g(*args)
    t2 = time.perf_counter()
    g(*args)
    t3 = time.perf_counter()
    return (t1 - t0) + max(0.0, (t2 - t1) - (t3 - t2)), s2s.source(g), t3 - t2


def run(repeats: int = 5) -> dict:
    """Generate each derivative ``repeats`` times from scratch; report the median time."""
    import os

    os.environ.setdefault("S2S_CACHE", "0")
    args = (np.linspace(-1.0, 1.0, 4), np.full(4, 0.9), np.full(4, 0.1))
    out = {"repeats": repeats}
    texts = {}
    try:
        for fn in (loop_10, loop_1000):
            runs = [_generate(fn, args) for _ in range(repeats)]
            text = runs[-1][1]
            texts[fn.__name__] = text
            out[fn.__name__] = {"generation_s": statistics.median(r[0] for r in runs),
                                "times_s": [r[0] for r in runs],
                                "call_s": statistics.median(r[2] for r in runs),
                                "source_chars": len(text), "source_lines": text.count("\n") + 1}
    except Exception as e:  # noqa: BLE001 - reported, like any s2s failure
        out["error"] = f"{type(e).__name__}: {e}"
        return out

    def canonical(text):
        # Drop the provenance header (hash, function name) and the literal trip count.
        body = text.split('"""', 2)[-1]
        body = re.sub(r"loop_(10|1000)\b", "loop_N", body)
        body = re.sub(r"# line \d+", "# line L", body)
        return re.sub(r"\b(10|1000)\b", "N", body)

    out["same_text_up_to_literal"] = canonical(texts["loop_10"]) == canonical(texts["loop_1000"])
    out["time_ratio_1000_over_10"] = (out["loop_1000"]["generation_s"]
                                      / max(out["loop_10"]["generation_s"], 1e-12))
    return out
