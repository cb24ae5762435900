"""Where a derivative comes from: the primal, the helpers it calls, and the header that records them.

A generated module's header (see `emit.header`) records ``primal-sha256``. Here
that digest covers everything the generated text depends on in the user's
code: the primal's source, the source of every user helper it calls
(transitively; s2s inlines them), and the values of the literal module
constants they read (literals are copied into the generated module). It is
computed from the parsed functions, so reading the file statically
(``s2s-diff``) and reading the live function (``s2s.grad``) give the same
digest; comments, formatting and decorators do not count.
"""
from __future__ import annotations

import ast
import builtins
import copy
import hashlib
import re
from dataclasses import dataclass

from . import derive
from .astutil import name_nodes, names_in, stored_names, walk
from .errors import S2SError
from .source import FunctionSource, from_function, param_names


def dependencies(src: FunctionSource) -> list[FunctionSource]:
    """``src`` followed by every user function it calls, transitively, in first-call order."""
    order: list[FunctionSource] = []
    seen: set = set()

    def visit(fs: FunctionSource):
        key = (fs.filename, fs.name, fs.node.lineno)
        if key in seen:
            return
        seen.add(key)
        order.append(fs)
        for callee in callees(fs):
            visit(callee)

    visit(src)
    return order


def callees(fs: FunctionSource):
    """The user functions that ``fs`` calls (by name) or passes to a call (an ODE's
    right-hand side), in order."""
    local = set(param_names(fs.node)) | stored_names(fs.node)  # these names are values here
    for node in walk(fs.node):
        if not isinstance(node, ast.Call):
            continue
        passed = [a for a in node.args + [k.value for k in node.keywords]
                  if isinstance(a, ast.Name) and a.id not in local]
        for func in [node.func] + passed:
            binding = fs.resolve(func)
            if binding is None or binding.kind != "user" or binding.function is None:
                continue
            try:
                yield binding.function.get()
            except S2SError:  # generation reports it, with its location
                continue


def constants(deps: list[FunctionSource]) -> dict[str, object]:
    """Module constants the functions read, by name (the values a generated module needs)."""
    found: dict[str, object] = {}
    for fs in deps:
        for name in names_used(fs):
            binding = fs.scope.get(name)
            if binding is not None and binding.kind == "constant":
                found.setdefault(name, binding.value)
    return found


def primal_digest(src: FunctionSource, deps: list[FunctionSource] | None = None) -> str:
    """The digest recorded as ``primal-sha256``: primal, helpers and literal constants."""
    deps = dependencies(src) if deps is None else deps
    h = hashlib.sha256()
    for fs in deps:
        h.update(b"function\0" + function_text(fs).encode() + b"\0")
    for fs in deps:
        for name in names_used(fs):
            binding = fs.scope.get(name)
            if binding is not None and binding.kind == "constant":
                h.update(f"constant\0{name}\0{value_text(binding.value)}\0".encode())
    return h.hexdigest()[:16]


def function_text(fs: FunctionSource) -> str:
    """The function's source as parsed, without decorators (the live reader drops them)."""
    node = copy.copy(fs.node)
    node.decorator_list = []
    return ast.unparse(node)


def value_text(value) -> str:
    """A literal's repr; other values (arrays) only by type, as they are not copied into the text."""
    if isinstance(value, derive.LITERALS):
        try:
            if ast.literal_eval(repr(value)) == value:
                return repr(value)
        except (ValueError, SyntaxError):
            pass
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def names_used(fs: FunctionSource) -> list[str]:
    """Every name the function mentions (locals included), sorted."""
    return sorted(names_in(fs.node))


def unresolved_names(src: FunctionSource, deps=None) -> list[str]:
    """Global names the functions read that are not bound (yet): not local, not builtin, not in
    scope (``deps``: `dependencies` of ``src``, when the caller has them)."""
    missing = set()
    for fs in dependencies(src) if deps is None else deps:
        args = fs.node.args
        local = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        local |= stored_names(fs.node)
        for node in name_nodes(fs.node):
            if isinstance(node.ctx, ast.Load):
                name = node.id
                if name not in local and name not in fs.scope and not hasattr(builtins, name):
                    missing.add(name)
    return sorted(missing)


def bind_late(src: FunctionSource) -> list[FunctionSource]:
    """Bind global names that did not exist yet when a live function was read.

    ``s2s.grad(loss)`` or ``@differentiable`` may run before the helpers that
    ``loss`` calls are defined further down the module; like Python itself,
    look such names up again when the derivative is generated. Returns
    `dependencies` of ``src`` as its last pass saw them (nothing was bound since).
    """
    changed = True
    while changed:
        changed = False
        deps = dependencies(src)
        for fs in deps:
            if fs.live is None:
                continue
            # src comes first: nothing was bound in this pass yet, its dependencies are deps
            missing = [n for n in unresolved_names(fs, deps if fs is src else None)
                       if n in fs.live.__globals__]
            if not missing:
                continue
            fresh = from_function(fs.live)
            for name in missing:
                if name in fresh.scope and name not in fs.scope:
                    fs.scope[name] = fresh.scope[name]
                    if name in fresh.read:  # followed from now on (see `source.rebound`)
                        fs.read[name] = fresh.read[name]
                    changed = True
    return deps


def stamped(src: FunctionSource, digest: str | None = None) -> FunctionSource:
    """A shallow copy of ``src`` whose ``digest()`` (written to the header) covers its helpers."""
    digest = primal_digest(src) if digest is None else digest
    copied = copy.copy(src)
    copied.digest = _Digest(digest)  # the instance attribute shadows the method
    return copied


class _Digest:
    """A constant ``digest()`` callable (named, so it reads well in tracebacks)."""

    def __init__(self, value: str):
        self.value = value

    def __call__(self) -> str:
        return self.value


def reverse_module(src: FunctionSource, wrt, **options) -> derive.Generated:
    """`derive.reverse_module` with the header's ``primal-sha256`` covering helpers and constants."""
    return derive.reverse_module(stamped(src), wrt, **options)


# --- the header of a generated (and maybe hand-edited) file --------------------

_FIELD = re.compile(r"^([a-z][a-z0-9-]*): ?(.*)$")


@dataclass
class Header:
    """The provenance fields of a generated module (see `emit.header`)."""

    version: str
    source_file: str
    function: str
    options: dict[str, str]
    digest: str
    digest_line: int  # 1-based line of ``primal-sha256`` in the file, for error locations
    entry: str = ""  # the entry point's name, when the header records it

    @property
    def wrt(self) -> list[str]:
        return [w for w in self.options.get("wrt", "").split(",") if w]

    @property
    def returns(self) -> str:
        return self.options.get("returns", "grad")

    @property
    def has_aux(self) -> bool:
        return self.options.get("has_aux", "False") == "True"

    @property
    def mode(self) -> str:
        return self.options.get("mode", "reverse")

    @property
    def scalars(self) -> list[str]:
        """Parameters the file was specialized to as Python floats."""
        return [s for s in self.options.get("scalars", "").split(",") if s]

    @property
    def shapes(self) -> dict[str, tuple]:
        """Parameters the file was specialized to by shape (``shapes=X=(5, 3) w=(3,)``)."""
        found = re.findall(r"(\w+)=(\([0-9, ]*\))", self.options.get("shapes", ""))
        return {name: tuple(ast.literal_eval(shape)) for name, shape in found}


def parse_options(text: str) -> dict[str, str]:
    """``mode=reverse, wrt=w,b, returns=grad`` -> a dict (values may contain commas)."""
    return dict(item.split("=", 1) for item in re.split(r",\s+(?=[a-z_]+=)", text.strip()) if "=" in item)


def read_header(text: str, filename: str) -> Header:
    """The header of generated module text; an S2SError naming ``filename`` if there is none."""
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError as exc:
        raise S2SError(f"syntax error: {exc.msg}", filename, exc.lineno, (exc.offset or 1) - 1,
                       exc.text, hint="fix the syntax error in the derivative file")
    doc = ast.get_docstring(tree, clean=False) or ""
    fields = {}
    for line in doc.splitlines():
        match = _FIELD.match(line.strip())
        if match:
            fields[match.group(1)] = match.group(2).strip()
    needed = ("s2s-version", "function", "options", "primal-sha256")
    if not all(k in fields for k in needed):
        raise S2SError(f"{filename} has no s2s header (s2s-version, function, options, primal-sha256)",
                       filename, 1, 0, text.splitlines()[0] if text else "",
                       hint="start from a file written by s2s-diff, and keep its docstring")
    digest_line = next(i for i, line in enumerate(text.splitlines(), 1)
                       if line.strip().startswith("primal-sha256:"))
    return Header(fields["s2s-version"], fields.get("source-file", ""), fields["function"],
                  parse_options(fields["options"]), fields["primal-sha256"], digest_line,
                  fields.get("entry", ""))
