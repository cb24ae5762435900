"""The benchmark harness's calibration (benchmarks/timing.py): numbers it reports depend on it."""
import time

from benchmarks import timing


def test_a_compiling_first_call_is_not_taken_for_the_call_time():
    calls = []

    def call():  # ~1 ms per call, after a first call that "compiled" for 10 s
        calls.append(1)
        time.sleep(0.001)
    settings = timing.Settings(repeats=3, min_repeat_s=0.01, max_cell_s=3.0, skip_after_s=2.0)
    slow = timing.calibrate(call, settings, first_s=10.0)  # a slow call: not called again
    assert (slow.number, slow.repeats, len(calls)) == (1, 1, 0)
    warm = timing.calibrate(call, settings, first_s=10.0, compiled_first=True)
    assert len(calls) == 1 and 2 <= warm.number <= 10 and warm.repeats == 3
