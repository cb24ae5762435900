"""Errors. Every refusal names ``file:line:col``, quotes the line, and says what to do."""
from __future__ import annotations


class S2SError(Exception):
    """Base of every error s2s raises."""

    def __init__(self, message: str, filename: str | None = None, line: int | None = None,
                 col: int | None = None, source_line: str | None = None, hint: str | None = None,
                 stage: str | None = None):
        self.message = message
        self.filename = filename
        self.line = line
        self.col = col
        self.source_line = source_line
        self.hint = hint
        self.stage = stage
        super().__init__(self.render())

    @property
    def location(self) -> str:
        if self.filename is None:
            return ""
        return f"{self.filename}:{self.line or 0}:{(self.col or 0) + 1}"

    def render(self) -> str:
        head = f"{self.location}: error: {self.message}" if self.location else f"error: {self.message}"
        lines = [head]
        if self.source_line is not None:
            lines.append("    " + self.source_line.rstrip())
            lines.append("    " + " " * (self.col or 0) + "^")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        if self.stage:
            lines.append(f"  (stage: {self.stage})")
        return "\n".join(lines)


class UnsupportedSyntax(S2SError):
    """A construct outside the differentiable subset (class, try, with, ...)."""


class NoRule(S2SError):
    """A call to a function with no derivative rule."""


class NameResolutionError(S2SError):
    """A name that cannot be resolved statically."""


class NonScalarOutput(S2SError):
    """``grad`` of a function whose output is not a scalar."""


class StaleDerivative(S2SError):
    """A hand-edited derivative whose primal has changed since it was generated."""


class MergeConflict(S2SError):
    """Updating a hand-edited derivative could not re-apply every edit; the file was left as it was."""


class GradientMismatch(S2SError):
    """A derivative that disagrees with finite differences of its primal (``S2S_CHECK=1``)."""
