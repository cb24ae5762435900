"""numba failing to compile a derivative, as an `S2SError` at the user's line.

The numba target compiles the generated module with ``numba.njit`` in nopython mode
only, never in object mode. When numba cannot compile it, what numba raises -- its own
``TypingError`` and friends, or a plain ``AttributeError`` / ``IndexError`` from inside
its type inference or code generation -- becomes a refusal naming what numba said, the
generated statement, and the line of the user's code it comes from (the generated text's
``# line N`` notes), wherever numba tells which statement it was compiling.
"""
from __future__ import annotations

import os
import re

from .errors import S2SError

_HINT = ("differentiate with the numpy target (the default), or keep to what numba compiles: "
         "floats, arrays, loops over range")


def is_dispatcher(compiled) -> bool:
    """``compiled`` is a function compiled by ``numba.njit``."""
    return hasattr(compiled, "overloads") and hasattr(compiled, "typeof_pyval")


def compile_for(compiled, args) -> None:
    """Have numba compile ``compiled`` (a dispatcher) for the types of ``args`` now (or load
    it from numba's cache), so that its failure is not taken for an error of the code running."""
    compiled.compile(tuple(map(compiled.typeof_pyval, args)))


def raised_by_numba(error) -> bool:
    """``error`` is numba's own, or was raised inside numba's code (its compiler's plain
    AttributeError, IndexError...); not, say, a timeout's signal handler that interrupted it."""
    if type(error).__module__.startswith("numba"):
        return True
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    import numba
    return tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(
        os.path.dirname(os.path.abspath(numba.__file__)) + os.sep)


def failed_compiling(error, compiled, args) -> bool:
    """Did ``error``, raised by calling ``compiled`` with ``args``, come from numba compiling
    a version for new argument types (a layout or dtype not seen yet), not from the code?"""
    if not raised_by_numba(error):
        return False
    try:
        return tuple(map(compiled.typeof_pyval, args)) not in compiled.overloads
    except Exception:  # noqa: BLE001 - an argument numba has no type for
        return True


def refusal(error, src, text: str, filename: str) -> S2SError:
    """The S2SError for ``error``, raised by numba compiling the derivative of ``src``
    (generated ``text``, written to ``filename``)."""
    said = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # numba colours its messages
    lines = [s.strip() for s in said.splitlines() if s.strip() and not s.startswith("Failed in ")]
    reason = " ".join(lines[:2] if len(lines) > 1 and lines[0].endswith(":") else lines[:1]) \
        or type(error).__name__  # "No implementation of function ... for signature:" and which
    if not type(error).__module__.startswith("numba"):  # raised inside numba's compiler
        reason = f"numba's compiler failed with {type(error).__name__}: {reason}"
    message = f"numba cannot compile the derivative of {src.name}: {reason}"
    line = generated_line(error, filename)
    where = (src.filename, src.node.lineno, src.node.col_offset, None)
    if line is not None:
        generated = text.splitlines()
        message += f" (compiling line {line} of the generated derivative, {filename})"
        at = user_line(generated, line)
        if at is not None and 0 < at <= len(src.lines):
            code = src.lines[at - 1]
            where = (src.filename, at, len(code) - len(code.lstrip()), code)
    filename_, lineno, col, source_line = where
    return S2SError(message, filename_, lineno, col, source_line, hint=_HINT)


def generated_line(error, filename: str) -> int | None:
    """The line of the generated module numba was compiling when it raised ``error``: its
    own errors carry it (``loc``); from inside numba, the innermost frame that holds one."""
    want = os.path.abspath(filename)
    loc = getattr(error, "loc", None)
    if _in(loc, want):
        return loc.line
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for name in ("loc", "inst", "stmt", "self"):
            value = frame.f_locals.get(name)
            loc = value if name == "loc" else getattr(value, "loc", None)
            if _in(loc, want):
                return loc.line
    return None


def _in(loc, filename: str) -> bool:
    """``loc`` is a numba source location (``ir.Loc``) in ``filename``."""
    where = getattr(loc, "filename", None)
    return isinstance(where, str) and isinstance(getattr(loc, "line", None), int) \
        and os.path.abspath(where) == filename


def user_line(generated: list[str], line: int) -> int | None:
    """The line of the user's file the generated ``line`` comes from: the nearest ``# line N``
    note at or above it (``# helper, line N`` too: helpers of the same file), or None."""
    for text in reversed(generated[:line]):
        found = re.search(r"# (?:\w+, )?(\S+\.py )?line (\d+)\b", text)
        if found:  # a helper from another file: not a line of this one
            return None if found[1] else int(found[2])
        if text.startswith("def ") or text.startswith("@"):
            return None
    return None
