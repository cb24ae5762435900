"""``python -m benchmarks [--quick] [--json FILE] [--problems a,b] [--sizes s,m] [--impls x,y]``.

For each problem and size, in this one process: build every implementation,
check its gradient against the hand-written one (relative error below
``TOL`` in float64, argument by argument), then time the ones that pass.
A failing implementation is reported, never timed; a missing peer is a
skipped column. The exit status is 0 whatever s2s or a peer does: failures
are results. It is 1 only when the harness itself is broken (a hand-written
gradient raising, say).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np

from . import impls, numba_compile, report, threads, timing, tripcount
from .problems import NAMES, load

TOL = 1e-6
SIZES = ("small", "medium", "large")


def rel_error(got: tuple, ref: tuple) -> float:
    """max over arguments of |got - ref| / |ref| (2-norms); inf for a shape mismatch."""
    if len(got) != len(ref):
        return float("inf")
    worst = 0.0
    for g, r in zip(got, ref):
        g = np.asarray(g, dtype=np.float64)
        r = np.asarray(r, dtype=np.float64)
        if g.shape != r.shape:
            return float("inf")
        scale = np.linalg.norm(r)
        err = np.linalg.norm(g - r) / (scale if scale > 0 else 1.0)
        worst = max(worst, float(err) if np.isfinite(err) else float("inf"))
    return worst


def error_text(e: BaseException) -> str:
    """The exception's own text; for a SyntaxError in generated code, the offending line too."""
    text = f"{type(e).__name__}: {e}".strip()
    if isinstance(e, SyntaxError) and e.text:
        text += f"\n    {e.text.strip()}"
    return text


def prepare_cell(name, problem, args, ref, settings):
    """Build one implementation, call it once, check its gradient, calibrate its timing.

    Returns ``(cell, timer)``: timer is None when the implementation is not to be
    timed (skipped, error, FAILED), and then the cell says why.
    """
    cell = {"impl": name}
    try:
        impl = impls.BUILDERS[name](problem, args)
    except impls.Unavailable as e:
        return {**cell, "status": "skipped", "error": f"not installed: {e}"}, None
    except Exception as e:  # noqa: BLE001 - any failure of a tool is a result
        return {**cell, "status": "error", "error": error_text(e), "where": "build",
                "traceback": traceback.format_exc(limit=-4)}, None
    notes = dict(impl.notes)
    notes.pop("fn", None)
    cell.update(notes)
    try:
        t0 = time.perf_counter()
        out = impl.call()
        first = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001
        return {**cell, "status": "error", "error": error_text(e), "where": "call",
                "traceback": traceback.format_exc(limit=-4)}, None
    cell["first_call_s"] = first
    if ref is not None:
        try:
            err = rel_error(impl.grads(out), ref)
        except Exception as e:  # noqa: BLE001
            return {**cell, "status": "error", "error": f"result not comparable: {error_text(e)}",
                    "where": "check", "traceback": traceback.format_exc(limit=-4)}, None
        cell["rel_error"] = err
        if not err < TOL:
            return {**cell, "status": "FAILED",
                    "error": f"wrong gradient: relative error {err:.3g} (tolerance {TOL:g})"}, None
    del out
    try:
        timer = timing.calibrate(impl.call, settings, first, impl.compiled_first)
    except Exception as e:  # noqa: BLE001 - e.g. fails on a second call only
        return {**cell, "status": "error", "error": error_text(e), "where": "timing",
                "traceback": traceback.format_exc(limit=-4)}, None
    return cell, timer


def finish_cell(cell, timed) -> dict:
    if isinstance(timed, BaseException):
        return {**cell, "status": "error", "error": error_text(timed), "where": "timing"}
    cell = {**cell, **timed, "status": "ok"}
    if cell["impl"] == "s2s":
        # Rough, from this one first call (page faults and cold caches at large sizes
        # blur it): see measure_generation for the number the table shows.
        cell["first_use_overhead_s"] = (cell.get("grad_call_s", 0.0)
                                        + max(0.0, cell["first_call_s"] - cell["median_s"]))
    return cell


def measure_generation(problem, args, repeats) -> dict:
    """What the first use of ``s2s.grad(f)`` costs beyond a normal call, from scratch each time.

    ``s2s.grad(f)`` may generate code right away, and the first call may
    generate again for the kinds and shapes of its arguments; both count.
    Measured on the problem's smallest size run, where the call itself is cheap.
    """
    made, extra, total = [], [], []
    try:
        import s2s

        for _ in range(repeats):
            t0 = time.perf_counter()
            g = s2s.grad(problem.loss, argnums=problem.ARGNUMS)
            t1 = time.perf_counter()
            g(*args)
            t2 = time.perf_counter()
            g(*args)
            t3 = time.perf_counter()
            made.append(t1 - t0)
            extra.append(max(0.0, (t2 - t1) - (t3 - t2)))
            total.append(made[-1] + extra[-1])
        text = s2s.source(g)
    except Exception as e:  # noqa: BLE001
        return {"error": error_text(e)}
    med = statistics.median
    return {"generation_s": med(total), "grad_s": med(made), "first_call_extra_s": med(extra),
            "times_s": total, "source_lines": text.count("\n") + 1, "source_chars": len(text)}


def run_problem(name, sizes, impl_names, settings, log, forced=()) -> list[dict]:
    problem = load(name)
    rows = []
    too_slow = {}  # impl -> why its larger sizes are not run
    for size in sizes:
        params = problem.SIZES[size]
        rng = np.random.default_rng(0)
        args = problem.make_args(rng, **params)
        row = {"problem": name, "size": size, "params": params, "kind": problem.KIND, "cells": {}}
        log(f"{name}/{size} {params}")
        # The reference first: the hand-written gradient.
        try:
            ref = impls.as_tuple(problem, problem.grad_loss(*args))
        except Exception as e:
            raise RuntimeError(f"hand-written gradient of {name} raised: {error_text(e)}") from e
        timers = {}
        for impl_name in impl_names:
            t0 = time.perf_counter()
            if impl_name in too_slow:
                cell, timer = {"impl": impl_name, "status": "too slow", "error": too_slow[impl_name]}, None
            elif impl_name in impls.NUMBA and problem.KIND == "vectorized" and impl_name not in forced:
                # numba compiles loops: on whole-array code it only adds compile time to the run
                cell, timer = {"impl": impl_name, "status": "skipped",
                               "error": "numba columns run on the loop problems (--impls to force)"}, None
            else:
                cell, timer = prepare_cell(impl_name, problem, args,
                                           None if impl_name == "primal" else ref, settings)
            row["cells"][impl_name] = cell
            if timer is not None:
                timers[impl_name] = timer
            shown = "ok" if timer else f"{cell['status']}: {cell.get('error', '')[:100]}"
            log(f"    {impl_name:9s} {shown}   ({time.perf_counter() - t0:.1f}s)")
        t0 = time.perf_counter()
        timed = timing.run_rounds(timers)
        for impl_name, result in timed.items():
            cell = row["cells"][impl_name] = finish_cell(row["cells"][impl_name], result)
            if cell["status"] == "ok" and cell["median_s"] > settings.skip_after_s:
                too_slow[impl_name] = (f"not run: {report.fmt_time(cell['median_s'])} per call at "
                                       f"size {size}, over {settings.skip_after_s:g} s")
        log("    timed: " + ", ".join(
            f"{n} {report.fmt_time(c['median_s'])}" for n, c in row["cells"].items() if c["status"] == "ok")
            + f"   ({time.perf_counter() - t0:.1f}s)")
        if "s2s" in impl_names and not rows:
            row["generation"] = measure_generation(problem, args, settings.repeats)
        rows.append(row)
        del args
    return rows


def meta(args) -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "threads": threads.THREADS or "library defaults",
        "versions": impls.versions(),
        "tolerance": TOL,
        "s2s_cache": os.environ.get("S2S_CACHE"),
        "settings": vars(timing.QUICK if args.quick else timing.FULL),
    }


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes only, few repeats (< 1 minute)")
    p.add_argument("--json", metavar="FILE", help="write every measurement and error to FILE")
    p.add_argument("--problems", help=f"comma-separated subset of: {','.join(NAMES)}")
    p.add_argument("--sizes", help="comma-separated subset of: small,medium,large")
    p.add_argument("--impls", help=f"comma-separated subset of: {','.join(impls.ALL)}")
    p.add_argument("--no-tripcount", action="store_true", help="skip the generation-time experiment")
    p.add_argument("--no-numba-compile", action="store_true",
                   help="skip numba's first-call experiment (fresh processes; off in --quick)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for BLAS, torch and XLA (default 1; 0 = library defaults)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def _subset(text, allowed, what):
    if not text:
        return list(allowed)
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in chosen if t not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return chosen


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if threads.THREADS is None:  # not configured by __main__ (called as a library)
        threads.configure(args.threads)
    # Generation time means generating: no on-disk cache of derivatives (and no
    # files written beside the problems), unless the caller asked for one.
    os.environ.setdefault("S2S_CACHE", "0")
    if "S2S_CACHE_DIR" not in os.environ:  # numba caches compiled code beside the generated file:
        os.environ["S2S_CACHE_DIR"] = tempfile.mkdtemp(prefix="s2s-bench-")  # a first call compiles
    problems = _subset(args.problems, NAMES, "problems")
    sizes = ["small"] if args.quick and not args.sizes else _subset(args.sizes, SIZES, "sizes")
    names = _subset(args.impls, impls.ALL, "implementations")
    names = ["primal", "hand"] + [n for n in names if n not in ("primal", "hand")]
    settings = timing.QUICK if args.quick else timing.FULL

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    results = []
    for name in problems:
        results.extend(run_problem(name, sizes, names, settings, log,
                                   forced=set(names) if args.impls else ()))
    trip = None
    if not args.no_tripcount and "s2s" in names:
        log("generation time vs loop trip count")
        trip = tripcount.run(repeats=3 if args.quick else 7)
    compiles = None
    if not (args.quick or args.no_numba_compile) and "s2s_numba" in names:
        log("numba first call at 50 vs 10 000 steps (fresh processes)")
        compiles = numba_compile.run()
    out = {"meta": meta(args), "results": results, "tripcount": trip, "numba_compile": compiles}
    out["targets"] = report.targets(results, compiles)
    out["meta"]["elapsed_s"] = time.perf_counter() - start
    print(report.render(out))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(_finite(out), fh, indent=1, default=_json_default)
        print(f"\nwrote {args.json}")
    return 0


def _finite(obj):
    """inf / nan as strings: JSON has no such numbers."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return repr(obj)
