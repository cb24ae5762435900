"""Stage 1: a function's source, its line numbers, and what each global name means.

Two ways in: `from_function` reads a live function with ``inspect``;
`from_file` reads a module as text and never runs it. Either way the result is
a `FunctionSource` whose `resolve` maps a (dotted) name to a `Binding`.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
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

from . import wrappers
from .astutil import names_in, walk
from .errors import NameResolutionError, S2SError
from .rules import RULES
from .rules import generated_code, helpers as helper_module


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
    enclosing: frozenset = frozenset()  # a nested def's reads of its definer's variables
    definer: "FunctionSource | None" = None  # the function a nested def or lambda is in
    outer_functions: dict = field(default_factory=dict)  # the definer's own functions, by name
    read: dict = field(default_factory=dict)  # the live values of the global/closure names bound
    code: object = None  # the live function's code when it was read (autoreload replaces it)

    def __deepcopy__(self, memo):  # one per function: AST nodes copied in the pipeline point at it
        return self

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
        """Every identifier and string in the function's source and its file (helpers too)."""
        names = set(self.scope) | set(re.findall(r"[A-Za-z_]\w*", "".join(self.lines)))
        for n in walk(self.node):
            for value in (getattr(n, "id", None), getattr(n, "arg", None), getattr(n, "attr", None),
                          getattr(n, "name", None), getattr(n, "value", None)):
                if isinstance(value, str):
                    names.add(value)
        return names

    def resolve(self, node: ast.expr, roots=None) -> Binding | None:
        """The binding of a Name or dotted Attribute chain, or None for locals (``roots``: names
        standing for keys of the scope, ``{"_": "<object 1234>"}``, see `calls`)."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id in self.local_names() and not roots:
            return None
        path = (roots or {}).get(node.id, node.id)
        base = self.scope.get(path)
        if base is None:
            return None
        for attr in reversed(parts):
            path = f"{path}.{attr}"
            if base.kind == "object":
                base = self._object_attr(base, path, attr)
                if base is None:
                    return None
                continue
            if base.kind == "library" and (attr in UFUNC_METHODS or is_distribution(base.qualname)):
                base = Binding("library", f"{base.qualname}.{attr}")  # np.add.at, norm.logpdf
                continue
            if base.kind == "derivative":  # s2s.grad
                return base
            if base.kind != "module":
                return None
            found = self._user_module_attr(base, attr)
            if found is None and base.value is not None:
                return None
            base = found or _library_binding(f"{base.qualname}.{attr}")
        return base

    def local_names(self) -> frozenset:
        """The function's parameters and the names it assigns (not those of functions defined
        in it), and its definer's that it reads: never globals, even where a global of that
        name exists (``def loss(model, x)`` beside a module-level ``model``)."""
        found = self.__dict__.get("_local_names")
        if found is None:
            todo, stored = list(self.node.body), set()
            while todo:
                n = todo.pop()
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    stored.add(n.id)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    stored.add(n.name)
                elif not isinstance(n, ast.Lambda):
                    todo.extend(ast.iter_child_nodes(n))
            names = param_names(self.node) + star_params(self.node)
            found = self.__dict__["_local_names"] = frozenset(stored | set(names) | self.enclosing)
        return found

    def _object_attr(self, base: Binding, path: str, attr: str) -> Binding | None:
        """``self.W``, ``model.loss``, ``Model.helper``: an attribute of one of the user's objects,
        read when the derivative is generated and kept under its path (see `rebound`)."""
        found = self.scope.get(path)
        if found is None:
            value = getattr(base.value, attr, _MISSING)
            if value is _MISSING:
                return None
            found = _bind_value(value, path)
            if found.kind == "object":  # named by its path (network.first), read as a value too
                found = Binding("object", path, value=value)
            self.scope[path] = found
        return found

    def _user_module_attr(self, base: Binding, attr: str) -> Binding | None:
        """``mymodel.helper`` (or ``mymodel.N``) where module ``base`` is one of the user's: the
        attribute's binding, from the module object or, read statically, the file beside
        this one; None for a library module."""
        if isinstance(base.value, types.ModuleType):  # live (see `_is_users_module`)
            value = getattr(base.value, attr, _MISSING)
            return None if value is _MISSING else _bind_value(value, attr)
        if isinstance(base.value, str):  # ``import mymodel`` of a file beside this one
            return _module_scope(_parse_module(base.value), base.value, set()).get(attr)
        module_name = base.qualname
        if module_name.split(".")[0] in _LIBRARY_TOPS or \
                module_name.split(".")[0] in getattr(sys, "stdlib_module_names", ()):
            return None  # numpy, scipy, the standard library (logging.debug): not the user's
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


def param_names(node) -> list[str]:
    """A def's (or lambda's) parameters in the order generated code takes them: positional
    ones first, then keyword-only ones."""
    args = node.args
    return [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]


def star_params(node) -> list[str]:
    """The names of a def's ``*args`` and ``**kwargs`` parameters (a tuple and a dict)."""
    args = node.args
    return [a.arg for a in (args.vararg, args.kwarg) if a is not None]


def complete_args(fn, params, args, kwargs=None) -> tuple:
    """The value of every one of ``params`` for the call ``fn(*args, **kwargs)``, as Python
    binds it: defaults filled in, keyword arguments put in their place."""
    try:
        bound = inspect.signature(fn).bind(*args, **(kwargs or {}))
    except TypeError as exc:
        raise TypeError(f"{getattr(fn, '__name__', 'function')}(): {exc}") from None
    bound.apply_defaults()
    unknown = set(bound.arguments) - set(params)
    if kwargs and unknown & set(kwargs):
        raise TypeError(f"{sorted(unknown & set(kwargs))[0]!r} is bound by functools.partial; "
                        "make a new partial to change it")
    return tuple(bound.arguments[p] for p in params)


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
    found: dict[int, list[str]] = {}
    if "#" not in text:  # no comment (tokenizing is slow)
        return found
    stmts = [s for s in walk(node) if isinstance(s, ast.stmt) and s is not node
             and not (s is node.body[0] and is_docstring(s))]
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
    if qualname.split(".")[0] == "s2s":  # import s2s / from s2s import grad, read from a file
        return Binding("derivative", qualname)
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
    """Read a live function's source and bind its globals and closure variables.

    A lambda is read as ``def lambda_(params): return body``; a ``functools.partial``
    as a function of the parameters it leaves open that calls the wrapped one."""
    if isinstance(fn, functools.partial):
        return _from_partial(fn)
    if isinstance(fn, types.MethodType) and isinstance(fn.__func__, types.FunctionType):
        return _from_method(fn)
    if is_user_object(fn) and not isinstance(fn, type) and \
            isinstance(getattr(fn, "__call__", None), types.MethodType):
        return _from_method(fn.__call__)  # model(x): its __call__
    fn, wrapper = wrappers.unwrapped(fn)
    if isinstance(fn, types.FunctionType) and fn.__name__ == "<lambda>" and wrapper is None:
        return _from_lambda(fn)
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
    lines = linecache.getlines(filename) or raw.splitlines(True)
    src = FunctionSource(node, filename, lines, shift, live=fn)
    if wrapper is not None:
        raise wrappers.refuse_wrapper(src, wrapper)
    node.decorator_list = []
    return _bound(src, fn)


def _bound(src: FunctionSource, fn) -> FunctionSource:
    """``src`` with the globals and closure variables of live ``fn`` it reads bound."""
    node = src.node
    names = names_in(node)
    closure = inspect.getclosurevars(fn)
    values = {**fn.__globals__, **closure.nonlocals}
    src.code = fn.__code__
    for name in names:
        if name in values:
            src.scope[name] = _bind_value(values[name], name)
            src.read[name] = values[name]
        elif name in BUILTINS and name in closure.builtins:
            src.scope[name] = Binding("builtin", name)
    return src


def _bind_value(value, name) -> Binding | None:
    if isinstance(value, types.ModuleType) and _is_s2s(value):
        return Binding("derivative", name, value=value)  # s2s.grad: refused where it is called
    if isinstance(value, types.ModuleType):
        own = value if _is_users_module(value) else None
        return Binding("module", ALIASES.get(value.__name__, value.__name__), value=own)
    if type(value).__name__ == "CustomVJP" and hasattr(value, "defvjp"):
        if value.fwd is None:
            return Binding("user", value.__qualname__, function=_LazyUser(value.fn))
        return Binding("custom", name, value=(value.fwd, value.bwd))
    if hasattr(value, "__s2s_module__") or _is_s2s(value):
        return Binding("derivative", name, value=value)  # refused where it is called
    if isinstance(value, types.FunctionType) and value.__name__ in HELPER_NAMES and (
            (value.__module__ or "").startswith(GENERATED_PREFIX) or value.__module__ == helper_module.__name__):
        if value.__name__ in generated_code.FROM_SOURCE:  # differentiated by reading it
            return Binding("user", value.__qualname__, function=_LazyUser(value))
        return Binding("library", f"s2s.helpers.{value.__name__}")
    if isinstance(value, types.FunctionType) and RULES.get(f"{value.__module__}.{value.__name__}"):
        return Binding("library", f"{value.__module__}.{value.__name__}")  # a user-registered rule
    if isinstance(value, functools.partial) and isinstance(value.func, types.FunctionType) and \
            not _is_library(value.func):
        return Binding("user", f"partial_{value.func.__name__}", function=_LazyUser(value))
    if isinstance(value, types.FunctionType) and not _is_library(value):
        return Binding("user", value.__qualname__, function=_LazyUser(value))
    if not isinstance(value, types.FunctionType) and hasattr(value, "__wrapped__") and \
            isinstance(inspect.unwrap(value), types.FunctionType) and not _is_library(inspect.unwrap(value)):
        return Binding("user", inspect.unwrap(value).__qualname__, function=_LazyUser(value))  # numba.njit
    if _distribution_name(value):
        return Binding("library", _distribution_name(value))
    if callable(value) and not isinstance(value, type):
        qual = _qualname_of(value)
        if qual:
            return _library_binding(qual)
    if isinstance(value, type) and value is np.ndarray:
        return Binding("library", "ndarray")
    if isinstance(value, types.MethodType) and isinstance(value.__func__, types.FunctionType) and \
            is_user_object(value.__self__):
        return Binding("user", value.__func__.__qualname__, function=_LazyUser(value))  # self.layer
    if is_user_object(value):
        return Binding("object", getattr(value, "__qualname__", type(value).__qualname__), value=value)
    return Binding("constant", name, value=value)


def _is_users_module(module) -> bool:
    """The user's own code (``import mymodel``), not numpy, the standard library or an
    installed package: its functions are inlined like those of the same module."""
    path = getattr(module, "__file__", None) or ""
    top = module.__name__.split(".")[0]
    return bool(path) and not _is_library(module) and top not in sys.stdlib_module_names and \
        not any(part in path for part in ("site-packages", "dist-packages"))


def _is_s2s(value) -> bool:
    """s2s's API (the ``s2s`` module, ``s2s.grad``, ``s2s.jvp``...), which makes derivatives."""
    package = sys.modules.get("s2s")
    return package is not None and (value is package or any(
        value is v for k, v in vars(package).items() if not k.startswith("_") and callable(v)
        and not isinstance(v, type)))


def _is_library(fn) -> bool:
    module = fn.__name__ if isinstance(fn, types.ModuleType) else getattr(fn, "__module__", "") or ""
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
    if top == "scipy":  # the shortest public module that has it: scipy.integrate.solve_ivp
        parts = [p for p in module.split(".") if not p.startswith("_")]
        for k in range(2, len(parts)):
            try:
                if getattr(_import_attr(".".join(parts[:k])), name, None) is obj:
                    return ".".join(parts[:k]) + f".{name}"
            except Exception:  # noqa: BLE001 - not importable: try the next
                continue
        return ".".join(parts) + f".{name}"
    return None


_MISSING = object()
_LIBRARY_TOPS = {"numpy", "scipy", "math", "cupy", "cupyx", "builtins"}


def rebound(src: FunctionSource) -> list[tuple]:
    """``(source, name, old binding, new value)`` for each module global (or closure variable)
    that ``src`` or a helper it has read since reads, and that was rebound since; ``name`` is
    None when a function's code itself was replaced (IPython's autoreload)."""
    out = []
    for fs in read_sources(src):
        if fs.code is not None and fs.live.__code__ is not fs.code:
            out.append((fs, None, None, fs.live.__code__))
        for name, binding in list(fs.scope.items()):
            if "." in name and binding.kind in ("constant", "object"):  # self.W
                now = _attribute_now(fs.scope, name)
                if now is not binding.value:
                    out.append((fs, name, binding, now))
            elif _follows(fs, name, binding):
                now = _current(fs.live, name)
                if now is not _MISSING and now is not fs.read.get(name, binding.value):
                    out.append((fs, name, binding, now))
    return out


def _follows(fs: FunctionSource, name: str, binding: Binding) -> bool:
    """Is ``name`` a global or closure variable of live ``fs`` whose value `rebound` follows?
    Every one read from the live function (a helper function redefined in a notebook cell
    too), and constants bound later (`provenance.bind_late`)."""
    return fs.live is not None and "." not in name and (name in fs.read or binding.kind == "constant")


def read_sources(src: FunctionSource) -> list[FunctionSource]:
    """``src`` and every helper source read since (transitively), each once."""
    out, todo, seen = [], [src], set()
    while todo:
        fs = todo.pop()
        if id(fs) in seen:
            continue
        seen.add(id(fs))
        out.append(fs)
        for binding in fs.scope.values():
            if binding.kind == "user" and isinstance(binding.function, (_LazyUser, _Known)) and \
                    binding.function._source is not None:
                todo.append(binding.function._source)
        todo.extend(getattr(fs.node, "s2s_inner_sources", ()))  # functions of s2s.grad(g) called here
    return out


class Watch:
    """Everything `rebound` reads, captured after a check, as one expression that tells in
    a few steps that none of it changed since (then `rebound` would find nothing):
    ``f0.__code__ is c0 and g0.get('X') is v0 and ...``, compiled once (`unchanged`)."""

    def __init__(self, src: FunctionSource):
        values: dict[str, object] = {"_attribute_now": _attribute_now, "_cell_contents": _cell_contents}
        terms: list[str] = []

        def term(template, *objects):
            names = [f"o{len(values) + i}" for i in range(len(objects))]
            values.update(zip(names, objects))
            terms.append(template.format(*names))

        for fs in read_sources(src):
            if fs.code is not None:
                term("{}.__code__ is {}", fs.live, fs.live.__code__)
            for name, binding in fs.scope.items():
                if "." in name and binding.kind in ("constant", "object"):
                    term(f"_attribute_now({{}}, {name!r}) is {{}}", fs.scope, _attribute_now(fs.scope, name))
                elif _follows(fs, name, binding):
                    code = fs.live.__code__
                    if name in code.co_freevars and fs.live.__closure__:
                        cell = fs.live.__closure__[code.co_freevars.index(name)]
                        term("_cell_contents({}) is {}", cell, _cell_contents(cell))
                    else:
                        table = fs.live.__globals__
                        term(f"{{}}.get({name!r}) is {{}}", table, table.get(name))
        self.expression, self.values = " and ".join(terms) or "True", values  # `fastcall` reads them too
        self.unchanged = eval(f"lambda: {self.expression}", values)  # noqa: S307 - our own text


def _cell_contents(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return _MISSING


def _attribute_now(scope, path):
    """The value attribute ``path`` (``self.W``) of an object in ``scope`` has now."""
    root, *attrs = path.split(".")
    value = scope[root].value
    for attr in attrs:
        value = getattr(value, attr, _MISSING)
    return value


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
    """Record the new values that `rebound` found in the sources that read them."""
    for fs, name, _, now in changes:
        fs.scope[name] = _bind_value(now, name)
        if name in fs.read:
            fs.read[name] = now


class _LazyUser:
    """A user function's source, read only when a call to it is differentiated."""

    def __init__(self, fn):
        self.fn = fn
        self._source = None

    def get(self) -> FunctionSource:
        if self._source is None:
            self._source = from_function(self.fn)
        return self._source


LAMBDA_NAME = "lambda_"  # a lambda's name in generated code (grad_lambda_)


def _from_lambda(fn) -> FunctionSource:
    """The lambda whose code is ``fn``, found in its file (its source is part of a line)."""
    code = fn.__code__
    filename = inspect.getsourcefile(fn) or "<unknown>"
    lines = linecache.getlines(filename)
    where = (filename, code.co_firstlineno, None)
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        raise S2SError("cannot read the source of this lambda", *where,
                       hint="define the function with `def` in a file") from None
    params = list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
    spots = {(line, col) for line, end, col, end_col in code.co_positions()
             if line and col is not None and (end, end_col) > (line, col)}  # not RESUME
    found = [n for n in walk(tree) if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno
             and param_names(n) == params and all(
                 (n.lineno, n.col_offset) <= spot <= (n.end_lineno, n.end_col_offset) for spot in spots)]
    if not found:
        raise S2SError("cannot find the source of this lambda", *where,
                       hint="define the function with `def` in a file")
    lam = min(found, key=lambda n: (n.end_lineno - n.lineno, n.end_col_offset - n.col_offset))
    body = ast.copy_location(ast.Return(lam.body), lam.body)
    node = ast.copy_location(ast.FunctionDef(LAMBDA_NAME, lam.args, [body], [], None, None), lam)
    ast.fix_missing_locations(node)
    node.end_lineno, node.end_col_offset = lam.end_lineno, lam.end_col_offset
    return _bound(FunctionSource(node, filename, lines, 0, live=fn), fn)


def _from_partial(p: functools.partial) -> FunctionSource:
    """``functools.partial(loss, X=X)`` as ``def partial_loss(W): return loss(W, X=X)``:
    the bound values are constants of the generated module, named by their parameter."""
    inner = from_function(p.func)
    open_params, kwonly = [], set()
    for name, param in inspect.signature(p).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise S2SError("a partial of a function with *args or **kwargs is not supported",
                           inner.filename, inner.node.lineno, inner.node.col_offset)
        if name not in p.keywords:
            open_params.append(name)
            if param.kind == param.KEYWORD_ONLY:
                kwonly.add(name)
    scope = {inner.name: Binding("user", inner.name, function=_Known(inner))}
    names = {inner.name} | set(open_params)
    bound = []
    for i, value in enumerate(p.args):
        name = _fresh_name(param_names(inner.node)[i], names)
        scope[name] = _bind_value(value, name)
        bound.append(ast.Name(name, ast.Load()))
    keywords = []
    for key, value in p.keywords.items():
        name = _fresh_name(key, names)
        scope[name] = _bind_value(value, name)
        keywords.append(ast.keyword(key, ast.Name(name, ast.Load())))
    positional = [ast.Name(n, ast.Load()) for n in open_params if n not in kwonly]
    keywords += [ast.keyword(n, ast.Name(n, ast.Load())) for n in open_params if n in kwonly]
    call = ast.Call(ast.Name(inner.name, ast.Load()), bound + positional, keywords)
    args = ast.arguments([], [ast.arg(n) for n in open_params], None, [], [], None, [])
    node = ast.FunctionDef(f"partial_{inner.name}", args, [ast.Return(call)], [], None, None)
    for n in walk(node):  # errors point at the wrapped function
        if isinstance(n, (ast.stmt, ast.expr, ast.arg)):
            ast.copy_location(n, inner.node)
    node.end_lineno, node.end_col_offset = inner.node.lineno, inner.node.col_offset
    return FunctionSource(node, inner.filename, inner.lines, inner.col_shift, scope)


def _from_method(method: types.MethodType) -> FunctionSource:
    """``model.loss`` (or ``Model.make``, a classmethod): the function's source without its
    first parameter, whose name reads the object (``self.W``, ``cls.SCALE``)."""
    owner = method.__self__
    src = from_function(method.__func__)
    args = src.node.args
    first = (args.posonlyargs + args.args)[:1]
    if not first or not is_user_object(owner):
        raise src.error(S2SError, f"s2s reads methods of your own classes, not of "
                        f"{type(owner).__name__}", src.node)
    node = copy.copy(src.node)
    node.args = copy.copy(args)
    if args.posonlyargs:
        node.args.posonlyargs = args.posonlyargs[1:]
    else:
        node.args.args = args.args[1:]
    src = dataclasses.replace(src, node=node, live=method, scope=dict(src.scope), read=dict(src.read))
    src.scope[first[0].arg] = _bind_value(owner, first[0].arg)
    return src


def is_user_object(value) -> bool:
    """An instance or class of the user's own code (not a function, container, module or
    s2s's own): its attributes are read like a module's."""
    cls = value if isinstance(value, type) else type(value)
    name = getattr(cls, "__module__", None) or ""
    module = sys.modules.get(name)  # (None: a module the user loaded with importlib or exec)
    users = _is_users_module(module) if module is not None else \
        name.split(".")[0] not in _LIBRARY_TOPS | set(sys.stdlib_module_names) and name != ""
    return users and not isinstance(
        value, (types.FunctionType, types.ModuleType, tuple, list, dict, functools.partial)) and \
        not cls.__module__.startswith("s2s.")


def _fresh_name(name: str, taken: set) -> str:
    fresh, i = name, 2
    while fresh in taken:
        fresh, i = f"{name}{i}", i + 1
    taken.add(fresh)
    return fresh


class _Known:
    """A FunctionSource already read, as a user binding's ``function``."""

    def __init__(self, source: FunctionSource):
        self._source = source
        self.fn = source.live

    def get(self) -> FunctionSource:
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
                own = os.path.join(os.path.dirname(path), alias.name + ".py")
                if "." not in alias.name and os.path.exists(own):  # the user's own module
                    scope[alias.asname or alias.name] = Binding("module", alias.name, value=own)
                elif alias.asname:
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
        elif isinstance(stmt, ast.FunctionDef) and generated and stmt.name in HELPER_NAMES and \
                stmt.name not in generated_code.FROM_SOURCE:
            scope[stmt.name] = Binding("library", f"s2s.helpers.{stmt.name}")
        elif isinstance(stmt, ast.FunctionDef):
            scope[stmt.name] = Binding("user", stmt.name, function=_StaticUser(stmt, path, lines, scope))
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            if _makes_derivative(stmt.value, scope):  # dg = s2s.grad(g): read where it is called
                scope[stmt.targets[0].id] = Binding("derivative", stmt.targets[0].id, value=stmt.value)
                continue
            try:
                value = ast.literal_eval(stmt.value)
            except ValueError:
                scope.pop(stmt.targets[0].id, None)
                continue
            scope[stmt.targets[0].id] = Binding("constant", stmt.targets[0].id, value=value)
    for name in BUILTINS:
        scope.setdefault(name, Binding("builtin", name))
    return scope


def _makes_derivative(node, scope) -> bool:
    """``s2s.grad(...)`` (or ``grad(...)`` imported from s2s): a derivative made at import."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        base = scope.get(func.value.id)
        return base is not None and base.qualname == "s2s"
    return isinstance(func, ast.Name) and getattr(scope.get(func.id), "kind", None) == "derivative"


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
            src = FunctionSource(self.node, self.path, self.lines, 0, self.scope)
            wrappers.check_static(src, self.scope)
            self._source = src
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
