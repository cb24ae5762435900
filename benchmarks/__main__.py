"""``python -m benchmarks``: see benchmarks/README.md."""
import sys

from . import threads

threads.configure(threads.from_argv(sys.argv[1:]))  # before numpy, torch or jax load

from .runner import main

sys.exit(main())
