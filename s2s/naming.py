"""Every generated-name convention in one place.

- the adjoint of ``z`` is ``dz`` (``d_z`` when ``z`` starts with ``_``;
  a trailing ``_`` is added until the name is free),
- temporaries of the normalizer are ``t1``, ``t2``, ...,
- per-variable stacks of values saved for the backward sweep are ``saved_z``,
- loop trip counters are ``n_iter``, ``n_iter2``, ...; branch conditions ``cond``,
- entry points are ``grad_<f>``, ``vjp_<f>``, ``jvp_<f>``.
"""
from __future__ import annotations

import re

TEMP = re.compile(r"^t\d+$")  # the normalizer's temporaries: written once, read after the write


class Namer:
    """Hands out fresh, deterministic names that do not clash with ``taken``."""

    def __init__(self, taken=()):
        self.taken = set(taken)
        self.counters: dict[str, int] = {}

    def reserve(self, name: str) -> None:
        self.taken.add(name)

    def fresh(self, base: str) -> str:
        """``base`` itself if free, else ``base2``, ``base3``..."""
        if base not in self.taken:
            self.taken.add(base)
            return base
        n = self.counters.get(base, 1)
        while True:
            n += 1
            name = f"{base}{n}"
            if name not in self.taken:
                self.counters[base] = n
                self.taken.add(name)
                return name

    def temp(self) -> str:
        """The next normalizer temporary: ``t1``, ``t2``, ..."""
        n = self.counters.get("#t", 0)
        while True:
            n += 1
            name = f"t{n}"
            if name not in self.taken:
                self.counters["#t"] = n
                self.taken.add(name)
                return name


def adjoint_base(name: str) -> str:
    return f"d{name}" if not name.startswith("_") else f"d{name}"


def stack_base(name: str) -> str:
    return f"saved_{name.lstrip('_')}"
