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


CUSTOM_VJP_HINT = ("give it a derivative: decorate a function that calls it with @s2s.custom_vjp and call "
                   "f.defvjp(f_fwd, f_bwd), or register a template with s2s.rules.registry.vjp "
                   "(`s2s-diff --list-rules` lists the functions that have one)")


def called(rule, node) -> str:
    """The function the user called at ``node``: a lowered ``scipy.stats.norm.logpdf`` is
    named, not the primitive inside it that has no rule."""
    return getattr(node, "s2s_lowered", None) or rule.qualname


def no_derivative_in(stage, rule, param: str, node) -> S2SError:
    """A call whose argument ``param`` needs a derivative its rule does not have."""
    name = called(rule, node)
    where = f"with respect to {param!r}" if name == rule.qualname else \
        f"with respect to the argument {param!r} of {rule.qualname}"
    return stage.error(f"{name} has no derivative {where}", node, NoRule,
                       hint="pass a value there that does not depend on the differentiated inputs, or "
                            + CUSTOM_VJP_HINT)


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
