"""timeit-style measurement: calibrated loops, several repeats, the median per call."""
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
QUICK = Settings(repeats=3, min_repeat_s=0.005, max_cell_s=0.3, skip_after_s=2.0)


def measure(call, settings: Settings, first_s: float) -> dict:
    """Median seconds per call of ``call()`` (already called once; that took ``first_s``).

    Like ``timeit``: the garbage collector is off while timing, each repeat
    runs ``number`` calls (so a repeat lasts at least ``min_repeat_s``), and the
    median over repeats is the result. Slow calls get fewer repeats (never fewer
    than one) so one implementation cannot eat the whole run.
    """
    estimate = first_s
    if first_s < settings.max_cell_s:  # calibrate on a warm call: the first one paid for caches
        t0 = time.perf_counter()
        call()
        estimate = time.perf_counter() - t0
    estimate = max(estimate, 1e-7)
    number = max(1, int(settings.min_repeat_s / estimate))
    repeats = max(1, min(settings.repeats, int(settings.max_cell_s / (estimate * number))))
    times = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(number):
                call()
            times.append((time.perf_counter() - t0) / number)
    finally:
        if enabled:
            gc.enable()
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats,
            "number": number, "times_s": times}
