"""The benchmark harness's calibration (benchmarks/timing.py): numbers it reports depend on it."""
from benchmarks import timing


def test_a_compiling_first_call_is_not_taken_for_the_call_time():
    calls = []
    settings = timing.Settings(repeats=3, min_repeat_s=0.05, max_cell_s=3.0, skip_after_s=2.0)
    # a call that took 10 s: too slow to call again
    slow = timing.calibrate(lambda: calls.append(1), settings, first_s=10.0)
    assert (slow.number, slow.repeats, len(calls)) == (1, 1, 0)
    # the same 10 s spent compiling (numba): the next call, microseconds, sets the count
    warm = timing.calibrate(lambda: calls.append(1), settings, first_s=10.0, compiled_first=True)
    assert len(calls) == 1 and warm.number > 100 and warm.repeats == 3
