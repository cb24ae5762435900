"""Thread counts for every library, set before any of them is imported.

By default the benchmarks run every library single-threaded: numpy's BLAS,
PyTorch's intra-op pool and XLA's CPU backend. On a small, shared machine
multi-threaded BLAS turns small matmuls into a lottery (spin-waiting threads
competing with other processes), and a one-thread comparison measures what
the tools themselves cost. ``--threads 0`` leaves every library at its
default.
"""
import os
import sys

ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
       "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
THREADS = None  # what configure() chose: None = library defaults


def from_argv(argv) -> int:
    """The value of ``--threads N`` / ``--threads=N`` in argv (default 1)."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return 1


def configure(n: int) -> None:
    """Limit every library to ``n`` threads (0: leave them alone). Call before importing numpy."""
    global THREADS
    if n <= 0:
        return
    THREADS = n
    if "numpy" in sys.modules:  # too late for the environment; try threadpoolctl
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(n)
        except ImportError:
            pass
    for var in ENV:
        os.environ[var] = str(n)
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()


def apply_torch(torch) -> None:
    if THREADS:
        torch.set_num_threads(THREADS)
        try:
            torch.set_num_interop_threads(THREADS)
        except RuntimeError:  # only settable once, before any parallel work
            pass
