"""Stage 1: a function's source, its line numbers, and what each global name means.

Two ways in: `from_function` reads a live function with ``inspect``;
`from_file` reads a module as text and never runs it. Either way the result is
a `FunctionSource` whose `resolve` maps a (dotted) name to a `Binding`.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import linecache
import math
import os
import re
import sys
import textwrap
import tokenize
import types
from dataclasses import dataclass, field

import numpy as np

from .errors import NameResolutionError, S2SError
from .rules import RULES
from .rules import helpers as helper_module


@dataclass(frozen=True)
class Binding:
    """What a name means: a module, a library function, a user function, a constant."""

    kind: str  # "module" | "library" | "user" | "constant" | "builtin"
    qualname: str = ""
    function: "FunctionSource | None" = None
    value: object = None


UFUNC_METHODS = {"at", "outer", "reduce", "accumulate"}
GENERATED_PREFIX = "s2s_generated"
HELPER_NAMES = {n for n, v in vars(helper_module).items() if callable(v) and not n.startswith("_")}
BUILTINS = {"len", "range", "float", "int", "abs", "enumerate", "zip", "reversed", "bool",
            "min", "max", "isinstance", "tuple", "list", "round", "complex", "sum", "print", "slice"}
ALIASES = {"numpy.ndarray": "ndarray", "numpy.absolute": "numpy.abs", "numpy.true_divide": "numpy.divide",
           "numpy.amax": "numpy.max", "numpy.amin": "numpy.min", "numpy.core": "numpy"}


@dataclass
class FunctionSource:
    """A parsed function plus everything needed to resolve names and report errors."""

    node: ast.FunctionDef
    filename: str
    lines: list[str]  # the whole file, for quoting lines in errors
    col_shift: int  # columns removed by dedenting a nested/method source
    scope: dict[str, Binding] = field(default_factory=dict)
    live: object = None  # the live function, when there is one
    module_source: str = ""

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def text(self) -> str:
        return ast.unparse(self.node)

    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def error(self, cls, message, node=None, hint=None, stage=None) -> S2SError:
        """An error at ``node`` (at the ``def`` line when it has no position of its own);
        a quoted name the user never wrote (a temporary such as ``'t1'``) is not shown."""
        line = getattr(node, "lineno", None)
        col = getattr(node, "col_offset", None)
        if not line:
            line, col = self.node.lineno, self.node.col_offset
        col = None if col is None else col + self.col_shift
        text = self.lines[line - 1] if line and line <= len(self.lines) else None
        written = self.written_names()
        message = re.sub(r"'([A-Za-z_]\w*)'", lambda m: m.group(0) if m.group(1) in written
                         else "a value computed here", message)
        return cls(message, self.filename, line, col, text, hint, stage)

    def written_names(self) -> set[str]:
        """Every identifier and string in the function's source."""
        names = set(self.scope)
        for n in ast.walk(self.node):
            for value in (getattr(n, "id", None), getattr(n, "arg", None), getattr(n, "attr", None),
                          getattr(n, "name", None), getattr(n, "value", None)):
                if isinstance(value, str):
                    names.add(value)
        return names

    def resolve(self, node: ast.expr) -> Binding | None:
        """The binding of a Name or dotted Attribute chain, or None for locals."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = self.scope.get(node.id)
        if base is None:
            return None
        for attr in reversed(parts):
            if base.kind == "library" and (attr in UFUNC_METHODS or is_distribution(base.qualname)):
                base = Binding("library", f"{base.qualname}.{attr}")  # np.add.at, norm.logpdf
                continue
            if base.kind != "module":
                return None
            base = self._user_module_attr(base.qualname, attr) or _library_binding(f"{base.qualname}.{attr}")
        return base

    def _user_module_attr(self, module_name: str, attr: str) -> Binding | None:
        """``mymodel.helper`` where ``mymodel`` is one of the user's modules: the function's
        binding (the module imported, or the file beside this one when read statically)."""
        if module_name.split(".")[0] in _LIBRARY_TOPS:
            return None
        module = sys.modules.get(module_name)
        if module is not None:
            value = getattr(module, attr, _MISSING)
            binding = None if value is _MISSING else _bind_value(value, attr)
        elif self.filename:
            candidate = os.path.join(os.path.dirname(os.path.abspath(self.filename)),
                                     *module_name.split(".")) + ".py"
            binding = _sibling_binding(candidate, attr, set()) if os.path.exists(candidate) else None
        else:
            binding = None
        return binding if binding is not None and binding.kind in ("user", "custom") else None


def comments(src: FunctionSource) -> dict[int, list[str]]:
    """The user's comments in ``src``, by the line of the statement each annotates.

    A comment on a line of its own annotates the next statement; one at the end
    of a line annotates the statement on that line. Comments after a function's
    last statement annotate nothing and are left out. Read with `tokenize`
    (the standard library), so generated text never depends on what is installed.
    """
    node = src.node
    first = node.lineno
    text = textwrap.dedent("".join(src.lines[first - 1:node.end_lineno]))
    stmts = [s for s in ast.walk(node) if isinstance(s, ast.stmt) and s is not node
             and not (s is node.body[0] and is_docstring(s))]
    found: dict[int, list[str]] = {}
    try:
        tokens = list(tokenize.generate_tokens(iter(text.splitlines(True)).__next__))
    except (tokenize.TokenError, SyntaxError):  # a source we cannot re-read: no comments
        return found
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        line = tok.start[0] + first - 1
        if tok.line[:tok.start[1]].strip():  # at the end of a statement's line
            spanning = [s for s in stmts if s.lineno <= line <= s.end_lineno]
            target = max(spanning, key=lambda s: s.lineno, default=None)
        else:
            target = min((s for s in stmts if s.lineno > line), key=lambda s: s.lineno, default=None)
        if target is not None:
            found.setdefault(target.lineno, []).append(tok.string)
    return found


def is_docstring(stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(
        stmt.value.value, str)


def summary(src: FunctionSource) -> str | None:
    """The first line of the function's docstring, if it has one."""
    doc = ast.get_docstring(src.node)
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else None


def _library_binding(qualname: str) -> Binding:
    qualname = ALIASES.get(qualname, qualname)
    for prefix, canonical in (("numpy.core.", "numpy."),):
        if qualname.startswith(prefix):
            qualname = canonical + qualname[len(prefix):]
    return Binding("module" if _names_module(qualname) else "library", qualname)


@functools.lru_cache(maxsize=None)
def _names_module(qualname: str) -> bool:
    """Is ``qualname`` a module (numpy.linalg), not a function or constant? (A failed import
    searches the file system: resolving every call's name once is what keeps this fast.)"""
    try:
        return isinstance(_import_attr(qualname), types.ModuleType)
    except (ImportError, AttributeError):
        return False


@functools.lru_cache(maxsize=None)
def is_distribution(qualname: str) -> bool:
    """Is ``qualname`` a scipy.stats distribution object (``scipy.stats.norm``)?"""
    if not qualname.startswith("scipy.stats."):
        return False
    try:
        obj = _import_attr(qualname)
    except (ImportError, AttributeError):
        return False
    return _distribution_name(obj) == qualname


def _distribution_name(obj) -> str | None:
    """``scipy.stats.norm`` for the object ``scipy.stats.norm``, None for anything else."""
    if isinstance(obj, (type, types.ModuleType, types.FunctionType)) or \
            not type(obj).__module__.startswith("scipy.stats"):
        return None
    import scipy.stats
    name = getattr(obj, "name", None) or type(obj).__name__.removesuffix("_gen")
    return f"scipy.stats.{name}" if getattr(scipy.stats, name, None) is obj else None


def _import_attr(qualname: str):
    parts = qualname.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = __import__(".".join(parts[:i]), fromlist=["_"])
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(qualname)


# --- live functions ---------------------------------------------------------

def from_function(fn) -> FunctionSource:
    """Read a live function's source and bind its globals and closure variables."""
    fn = inspect.unwrap(fn)
    if not isinstance(fn, types.FunctionType):
        raise S2SError(f"s2s differentiates Python functions, not {type(fn).__name__}",
                       hint="pass a plain `def` function")
    try:
        raw = inspect.getsource(fn)
    except (OSError, TypeError) as exc:
        raise S2SError(f"cannot read the source of {fn.__qualname__}: {exc}",
                       hint="define the function in a file (not in an interactive prompt or exec)"
                       ) from None
    filename = inspect.getsourcefile(fn) or "<unknown>"
    first = fn.__code__.co_firstlineno
    dedented = textwrap.dedent(raw)
    shift = len(raw.splitlines()[0]) - len(dedented.splitlines()[0])
    tree = ast.parse(dedented)
    ast.increment_lineno(tree, first - 1)
    node = tree.body[0]
    if isinstance(node, ast.AsyncFunctionDef) or not isinstance(node, ast.FunctionDef):
        raise S2SError(f"{fn.__qualname__} is not a plain function definition",
                       filename, first, shift)
    node.decorator_list = []
    lines = linecache.getlines(filename) or raw.splitlines(True)
    src = FunctionSource(node, filename, lines, shift, live=fn)
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    closure = inspect.getclosurevars(fn)
    values = {**fn.__globals__, **closure.nonlocals}
    for name in names:
        if name in values:
            src.scope[name] = _bind_value(values[name], name)
        elif name in BUILTINS and name in closure.builtins:
            src.scope[name] = Binding("builtin", name)
    return src


def _bind_value(value, name) -> Binding | None:
    if isinstance(value, types.ModuleType):
        return Binding("module", ALIASES.get(value.__name__, value.__name__))
    if type(value).__name__ == "CustomVJP" and hasattr(value, "defvjp"):
        if value.fwd is None:
            return Binding("user", value.__qualname__, function=_LazyUser(value.fn))
        return Binding("custom", name, value=(value.fwd, value.bwd))
    if isinstance(value, types.FunctionType) and value.__name__ in HELPER_NAMES and (
            value.__module__ or "").startswith(GENERATED_PREFIX):
        return Binding("library", f"s2s.helpers.{value.__name__}")
    if isinstance(value, types.FunctionType) and RULES.get(f"{value.__module__}.{value.__name__}"):
        return Binding("library", f"{value.__module__}.{value.__name__}")  # a user-registered rule
    if isinstance(value, types.FunctionType) and not _is_library(value):
        return Binding("user", value.__qualname__, function=_LazyUser(value))
    if _distribution_name(value):
        return Binding("library", _distribution_name(value))
    if callable(value) and not isinstance(value, type):
        qual = _qualname_of(value)
        if qual:
            return _library_binding(qual)
    if isinstance(value, type) and value is np.ndarray:
        return Binding("library", "ndarray")
    return Binding("constant", name, value=value)


def _is_library(fn) -> bool:
    module = getattr(fn, "__module__", "") or ""
    return module.split(".")[0] in {"numpy", "scipy", "math", "cupy", "cupyx"}


def _qualname_of(obj) -> str | None:
    if isinstance(obj, np.ufunc):
        if getattr(np, obj.__name__, None) is obj:
            return f"numpy.{obj.__name__}"
        try:
            import scipy.special
        except ImportError:
            return None
        if getattr(scipy.special, obj.__name__, None) is obj:
            return f"scipy.special.{obj.__name__}"
        return None
    if isinstance(obj, types.BuiltinFunctionType) and getattr(math, obj.__name__, None) is obj:
        return f"math.{obj.__name__}"
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__name__", None)
    if not module or not name:
        return None
    top = module.split(".")[0]
    if top == "numpy":
        # Prefer the public spelling: numpy.linalg.solve, not numpy.linalg._linalg.solve.
        for public in ("numpy", "numpy.linalg", "numpy.fft", "numpy.random"):
            if getattr(_import_attr(public), name, None) is obj:
                return f"{public}.{name}"
        return f"numpy.{name}"
    if top == "scipy":
        parts = module.split(".")
        return ".".join(p for p in parts if not p.startswith("_")) + f".{name}"
    return None


_MISSING = object()
_LIBRARY_TOPS = {"numpy", "scipy", "math", "cupy", "cupyx", "builtins"}


def rebound(src: FunctionSource, seen=None) -> list[tuple]:
    """``(scope, name, old binding, new value)`` for each module global (or closure variable)
    that ``src`` or a helper it has read since reads, and that was rebound since."""
    seen = set() if seen is None else seen
    if id(src) in seen or src.live is None:
        return []
    seen.add(id(src))
    out = []
    for name, binding in list(src.scope.items()):
        if binding.kind == "constant":
            now = _current(src.live, name)
            if now is not _MISSING and now is not binding.value:
                out.append((src.scope, name, binding, now))
        elif binding.kind == "user" and isinstance(binding.function, _LazyUser) and \
                binding.function._source is not None:
            out += rebound(binding.function._source, seen)
    return out


def _current(fn, name):
    """The value ``name`` has now for live function ``fn`` (a closure cell, else a global)."""
    code = fn.__code__
    if name in code.co_freevars and fn.__closure__:
        try:
            return fn.__closure__[code.co_freevars.index(name)].cell_contents
        except ValueError:  # an empty cell
            return _MISSING
    return fn.__globals__.get(name, _MISSING)


def rebind(changes) -> None:
    """Record the new values that `rebound` found in the scopes that read them."""
    for scope, name, _, now in changes:
        scope[name] = _bind_value(now, name)


class _LazyUser:
    """A user function's source, read only when a call to it is differentiated."""

    def __init__(self, fn):
        self.fn = fn
        self._source = None

    def get(self) -> FunctionSource:
        if self._source is None:
            self._source = from_function(self.fn)
        return self._source


# --- files, read statically ---------------------------------------------------

def from_file(path: str, name: str) -> FunctionSource:
    """Find function ``name`` in the module at ``path`` without running it."""
    module = _parse_module(path)
    scope = _module_scope(module, path, set())
    fn = scope.get(name)
    if fn is None or fn.kind != "user":
        defined = sorted(k for k, b in scope.items() if b.kind == "user"
                         and b.function.get().filename == path)
        raise S2SError(f"no function named {name!r} in {path}",
                       hint=f"functions defined there: {', '.join(defined) or 'none'}")
    return fn.function.get()


def _parse_module(path: str) -> ast.Module:
    """Parse the file at ``path``; errors and positions name it as given (often relative)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise S2SError(f"cannot read {path}: {exc.strerror}")
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise S2SError(f"syntax error: {exc.msg}", path, exc.lineno, (exc.offset or 1) - 1,
                       exc.text, hint="fix the syntax error; s2s reads the file as Python source")
    tree.s2s_text = text
    return tree


def _module_scope(module: ast.Module, path: str, visiting: set) -> dict[str, Binding]:
    """Bindings of a module's top level: imports, functions and literal constants."""
    lines = module.s2s_text.splitlines(True)
    scope: dict[str, Binding] = {}
    visiting = visiting | {os.path.abspath(path)}
    docstring = ast.get_docstring(module) or ""
    generated = "s2s-version:" in docstring  # a module s2s wrote: its helpers have rules
    for stmt in module.body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    scope[alias.asname] = _library_binding(alias.name)
                else:
                    top = alias.name.split(".")[0]
                    scope[top] = Binding("module", top)
        elif isinstance(stmt, ast.ImportFrom):
            sibling = _sibling_path(path, stmt)
            for alias in stmt.names:
                local = alias.asname or alias.name
                if sibling:
                    scope[local] = _sibling_binding(sibling, alias.name, visiting)
                elif stmt.module and stmt.level == 0:
                    scope[local] = _library_binding(f"{stmt.module}.{alias.name}")
        elif isinstance(stmt, ast.Expr) and _defvjp_call(stmt.value):
            call = stmt.value
            name = call.func.value.id
            fwd, bwd = (a.id for a in call.args)
            module_name = os.path.splitext(os.path.basename(path))[0]
            scope[name] = Binding("custom", name, value=(f"{module_name}.{fwd}", f"{module_name}.{bwd}"))
        elif isinstance(stmt, ast.FunctionDef) and generated and stmt.name in HELPER_NAMES:
            scope[stmt.name] = Binding("library", f"s2s.helpers.{stmt.name}")
        elif isinstance(stmt, ast.FunctionDef):
            scope[stmt.name] = Binding("user", stmt.name, function=_StaticUser(stmt, path, lines, scope))
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                value = ast.literal_eval(stmt.value)
            except ValueError:
                scope.pop(stmt.targets[0].id, None)
                continue
            scope[stmt.targets[0].id] = Binding("constant", stmt.targets[0].id, value=value)
    for name in BUILTINS:
        scope.setdefault(name, Binding("builtin", name))
    return scope


def _defvjp_call(node) -> bool:
    """``f.defvjp(f_fwd, f_bwd)`` at module level (see `s2s.custom`)."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "defvjp" and isinstance(node.func.value, ast.Name)
            and len(node.args) == 2 and all(isinstance(a, ast.Name) for a in node.args))


def _sibling_path(path: str, stmt: ast.ImportFrom) -> str | None:
    """The file of a same-package import (``from .helpers import f`` or ``from helpers import f``)."""
    if not stmt.module:
        return None
    folder = os.path.dirname(path)
    for _ in range(max(stmt.level - 1, 0)):
        folder = os.path.dirname(folder)
    candidate = os.path.join(folder, *stmt.module.split(".")) + ".py"
    return candidate if os.path.exists(candidate) else None


def _sibling_binding(path: str, name: str, visiting: set) -> Binding:
    if os.path.abspath(path) in visiting:
        return Binding("constant", name)
    module = _parse_module(path)
    scope = _module_scope(module, path, visiting)
    return scope.get(name) or Binding("constant", name)


class _StaticUser:
    """A function found in a file; its FunctionSource is built on first use."""

    def __init__(self, node, path, lines, scope):
        self.node, self.path, self.lines, self.scope = node, path, lines, scope
        self._source = None

    def get(self) -> FunctionSource:
        if self._source is None:
            self._source = FunctionSource(self.node, self.path, self.lines, 0, self.scope)
        return self._source

    @property
    def fn(self):
        return None


def user_source(binding: Binding) -> FunctionSource:
    return binding.function.get()


def unresolved(src: FunctionSource, node, name: str) -> S2SError:
    return src.error(NameResolutionError, f"cannot resolve name {name!r}", node,
                     hint="s2s resolves numpy, math, scipy.special, module constants and "
                          "functions of the same module or package")
