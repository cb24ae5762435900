"""Hand-edited derivatives: use a generated file that a person changed, as long as its primal did not.

``s2s.grad(loss, source="grads/dloss.py")`` loads the file instead of
generating. Its header records ``primal-sha256`` (`provenance.primal_digest`:
the primal, its helpers and their literal constants); when the primal's current
digest differs, the edit was made against code that no longer exists, and
`StaleDerivative` refuses it, naming both files and the command that
regenerates the file. ``accept_stale=True`` uses it anyway, with a warning;
``update=True`` regenerates it and re-applies the edits (`s2s.update`).

A relative ``source`` path is looked up beside the primal's module first (as
the primal's own imports are), then in the current directory.
"""
from __future__ import annotations

import ast
import copy
import os
import shlex
import warnings

from . import derive, provenance
from .api import _Derivative
from .cache import caller_level
from .errors import S2SError, StaleDerivative
from .merge import refuse_markers
from .source import param_names
from .update import conflict_error, regenerate, update as update_file


class StaleDerivativeWarning(UserWarning):
    """A stale hand-edited derivative was used because ``accept_stale=True``."""


class HandEdited(_Derivative):
    """A derivative read from a (hand-edited) generated file rather than generated."""

    def __init__(self, fn, argnums, returns, has_aux, path, accept_stale=False, update=False):
        super().__init__(fn, argnums, returns, has_aux=has_aux)
        self.requested_path = os.fspath(path)
        self.path = locate(self.requested_path, self.src.filename)
        self.accept_stale = accept_stale
        self.update = update
        self.loaded = None
        self.specialized_shapes: dict[str, tuple] = {}
        self.specialized_scalars: list[str] = []

    def module(self, kinds=()):
        """The file's entry point (one for all argument kinds), loaded and checked on first use."""
        if self.loaded is None:
            self.loaded = self._load()
        if kinds:
            self._check_kinds(kinds)
        self.last_generated = self.loaded[0]
        return self.loaded

    def _check_kinds(self, kinds):
        """A file specialized to shapes or Python floats (``--shapes``) only serves those."""
        for param, kind in zip(self.params, kinds):
            if param in self.specialized_shapes:
                want = self.specialized_shapes[param]
                if not (isinstance(kind, tuple) and tuple(kind[0]) == want):
                    got = kind[0] if isinstance(kind, tuple) else kind
                    raise S2SError(f"{display(self.path)} was generated for {param} of shape {want}, "
                                   f"not {got}", hint="regenerate it without --shapes (or with these)")
            if param in self.specialized_scalars and kind != "float":
                raise S2SError(f"{display(self.path)} was generated for a Python float {param}",
                               hint="pass a float, or regenerate it without `--shapes {param}=`")

    def _load(self):
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise S2SError(f"cannot read the derivative {self.path}: {exc.strerror}")
        refuse_markers(text, self.path)
        header = provenance.read_header(text, self.path)
        self._check_options(header)
        deps = provenance.bind_late(self.src)
        current = provenance.primal_digest(self.src, deps)
        if header.digest != current and self.update:
            text = self._update(header)
            header = provenance.read_header(text, self.path)
        if header.digest != current:
            error = self._stale_error(header, text, current)
            if not self.accept_stale:
                raise error
            warnings.warn(f"using stale derivative {display(self.path)} (accept_stale=True): "
                          f"{error.message}", StaleDerivativeWarning, stacklevel=caller_level())
        namespace = {"__name__": f"s2s_handedited_{self.src.name}", "__file__": self.path}
        namespace.update(provenance.constants(deps))  # what a generated module takes from the primal's
        exec(compile(text, self.path, "exec"), namespace)  # noqa: S102 - the user's own derivative file
        entry = entry_point(text, header, namespace, self.path)
        self.specialized_shapes = header.shapes
        self.specialized_scalars = header.scalars
        return derive.Generated(text, entry, {}), self._adapt(namespace[entry], header)

    def _update(self, header) -> str:
        """Regenerate the file and re-apply its edits; `MergeConflict` leaves it untouched."""
        src = copy.copy(self.src)
        src.filename = header.source_file or display(self.src.filename)  # as s2s-diff wrote it
        outcome = update_file(self.path, regenerate(src, header).text, display(self.path))
        if outcome.conflicts:
            raise conflict_error(outcome, display(self.path), self.update_command())
        return outcome.text

    def update_command(self) -> str:
        words = ["s2s-diff", display(self.src.filename), "--fn", self.src.name, "--update",
                 display(self.path)]
        return " ".join(shlex.quote(w) for w in words)

    def _check_options(self, header):
        wanted = self.regenerate_options()
        problem = None
        if header.function != self.src.name:
            problem = f"it differentiates `{header.function}`, not `{self.src.name}`"
        elif header.mode != "reverse":
            problem = f"it is a {header.mode}-mode derivative; grad needs reverse mode"
        elif header.wrt != self.wrt:
            problem = (f"it differentiates with respect to {','.join(header.wrt)}, "
                       f"not {','.join(self.wrt)}")
        elif self.has_aux and not (header.has_aux and header.returns == "value_and_grad"):
            problem = "has_aux needs a file generated with --returns value_and_grad --has-aux"
        elif header.has_aux and self.returns == "value_and_grad" and not self.has_aux:
            problem = "it was generated with --has-aux; pass has_aux=True"
        elif header.returns not in ("grad", "value_and_grad"):
            problem = f"it returns a {header.returns}, not a gradient"
        if problem:
            raise S2SError(f"{display(self.path)} does not match this derivative: {problem}",
                           hint=f"generate a matching file with `{self.regenerate_command(wanted)}`")

    def _adapt(self, entry, header):
        """The file's function, returning what this derivative returns (grad or value_and_grad)."""
        single = isinstance(self.argnums, int)

        def shaped(grads):  # one gradient for an int argnums, a tuple for a tuple argnums
            if single:
                return grads[0] if isinstance(grads, tuple) and len(grads) == 1 else grads
            return grads if isinstance(grads, tuple) else (grads,)

        if self.returns == "grad":
            with_value = header.returns == "value_and_grad"

            def gradient(*args):
                out = entry(*args)
                return shaped(out[1] if with_value else out)
            return gradient
        if header.returns == "value_and_grad":
            def value_and_gradient(*args):
                value, grads = entry(*args)
                return value, shaped(grads)
            return value_and_gradient
        primal = self.fn  # value_and_grad from a gradient-only file: evaluate the primal too

        def primal_and_gradient(*args):
            return primal(*args), shaped(entry(*args))
        return primal_and_gradient

    def regenerate_options(self) -> list[str]:
        params = param_names(self.src.node)
        options = []
        if self.wrt != params[:1]:
            options += ["--wrt", ",".join(self.wrt)]
        if self.has_aux:
            options += ["--returns", "value_and_grad", "--has-aux"]
        return options

    def regenerate_command(self, options=None) -> str:
        options = self.regenerate_options() if options is None else options
        words = ["s2s-diff", display(self.src.filename), "--fn", self.src.name, *options,
                 "-o", display(self.path)]
        return " ".join(shlex.quote(w) for w in words)

    def _stale_error(self, header, text, current) -> StaleDerivative:
        options = self.regenerate_options()
        if header.options.get("target", "numpy") != "numpy":
            options += ["--target", header.options["target"]]
        specialized = [f"{p}={'x'.join(map(str, shape)) or '()'}" for p, shape in header.shapes.items()]
        specialized += [f"{p}=" for p in header.scalars]
        if specialized:
            options += ["--shapes", *specialized]
        lines = text.splitlines()
        return StaleDerivative(
            f"{display(self.path)} was generated from an older `{self.src.name}` "
            f"({display(self.src.filename)} or a helper it calls has changed since: "
            f"recorded primal-sha256 {header.digest}, now {current})",
            display(self.path), header.digest_line, lines[header.digest_line - 1].index("primal-sha256"),
            lines[header.digest_line - 1],
            hint=f"update it, keeping your edits, with `{self.update_command()}` (or pass "
                 f"update=True); regenerate it with `{self.regenerate_command(options)}`; "
                 "or pass accept_stale=True to use it anyway")


def locate(path: str, primal_file: str) -> str:
    """An absolute path: beside the primal's module first, then from the current directory."""
    if os.path.isabs(path):
        return path
    beside = os.path.join(os.path.dirname(os.path.abspath(primal_file)), path)
    if os.path.exists(beside) or not os.path.exists(path):
        return os.path.normpath(beside)
    return os.path.abspath(path)


def display(path: str) -> str:
    """``path`` relative to the current directory when it lies below it."""
    path = os.path.abspath(path)
    relative = os.path.relpath(path, os.getcwd())
    return path if relative.startswith(os.pardir) else relative


def entry_point(text: str, header, namespace: dict, filename: str) -> str:
    """The default entry name for the header's options if the file defines it, else its last function."""
    default = f"{'vjp' if header.returns == 'vjp' else 'grad'}_{header.function}"
    if callable(namespace.get(default)):
        return default
    functions = [s.name for s in ast.parse(text).body if isinstance(s, ast.FunctionDef)]
    if not functions:
        raise S2SError(f"{filename} defines no function", filename, 1, 0)
    return functions[-1]
