"""timeit-style measurement: calibrated loops, repeats interleaved across implementations, medians.

On a small shared machine the speed of the CPU drifts over seconds. Timing
one implementation after another lets a slow spell land on one of them only
and skew the ratios; so every implementation of a problem size is timed in
rounds: round r runs repeat r of each implementation in turn. Each repeat
runs a calibrated number of calls (lasting at least ``min_repeat_s``), with
the garbage collector off, as ``timeit`` does; the result is the median over
repeats of the time per call.
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    repeats: int  # repeats wanted (each of `number` calls)
    min_repeat_s: float  # a repeat lasts at least this long (calls per repeat calibrated)
    max_cell_s: float  # stop adding repeats past this much time per implementation
    skip_after_s: float  # a call slower than this: the larger sizes of that problem are not run


FULL = Settings(repeats=7, min_repeat_s=0.05, max_cell_s=3.0, skip_after_s=2.0)
QUICK = Settings(repeats=5, min_repeat_s=0.005, max_cell_s=0.3, skip_after_s=2.0)


@dataclass
class Timer:
    """The repeats of one implementation: ``number`` calls each, ``repeats`` of them."""

    call: object
    number: int
    repeats: int
    times: list


def calibrate(call, settings: Settings, first_s: float, compiled_first: bool = False) -> Timer:
    """How many calls per repeat, and how many repeats, for ``call`` (already called once, in
    ``first_s``; ``compiled_first``: that call compiled, so its time says nothing of the next)."""
    estimate = first_s
    if compiled_first or first_s < settings.max_cell_s:  # on a warm call: the first one paid for caches
        t0 = time.perf_counter()
        call()
        estimate = time.perf_counter() - t0
    estimate = max(estimate, 1e-7)
    number = max(1, int(settings.min_repeat_s / estimate))
    # Slow calls get fewer repeats (one at least) so one implementation cannot eat the run.
    repeats = max(1, min(settings.repeats, int(settings.max_cell_s / (estimate * number))))
    return Timer(call, number, repeats, [])


def run_rounds(timers: dict) -> dict:
    """Time every ``Timer`` in interleaved rounds; per name, the summary or the exception raised."""
    results = {}
    rounds = max((t.repeats for t in timers.values()), default=0)
    enabled = gc.isenabled()
    try:
        for r in range(rounds):
            for name, t in timers.items():
                if r >= t.repeats or name in results:  # done, or failed on an earlier round
                    continue
                gc.disable()
                try:
                    t0 = time.perf_counter()
                    for _ in range(t.number):
                        t.call()
                    t.times.append((time.perf_counter() - t0) / t.number)
                except Exception as e:  # noqa: BLE001 - reported by the caller
                    results[name] = e
                finally:
                    if enabled:
                        gc.enable()
    finally:
        if enabled:
            gc.enable()
    for name, t in timers.items():
        if name not in results:
            results[name] = {"median_s": statistics.median(t.times), "min_s": min(t.times),
                             "repeats": len(t.times), "number": t.number, "times_s": t.times}
    return results
