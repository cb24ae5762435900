"""Stage 7: render a derivative as one standalone module, and compile it.

The module imports only the array module (numpy or cupy; plus ``math`` and
``scipy.special`` when the primal uses them), carries a provenance header and
copies in every helper it calls. `compile_module` runs it from a real file in
the user cache folder, so tracebacks and pdb show the generated lines.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import linecache
import os
import re
import sys
import textwrap
import types

from . import __version__
from .astutil import at_line, copy_tree, find_nodes
from .reverse import Comment
from .rules import helpers as helper_module

INDENT = "    "


class _SpellNegatives(ast.NodeTransformer):
    """``Constant(-0.7)`` -> ``-0.7`` as a unary minus, so ``unparse`` parenthesizes it:
    ``(-0.7) ** 2``, not ``-0.7 ** 2`` (which Python reads as ``-(0.7 ** 2)``)."""

    def visit_Constant(self, node):
        if type(node.value) in (int, float) and node.value < 0:
            return ast.copy_location(ast.UnaryOp(ast.USub(), ast.Constant(-node.value)), node)
        return node


def unparse(node) -> str:
    if any(type(n.value) in (int, float) and n.value < 0 for n in find_nodes(node, ast.Constant)):
        node = _SpellNegatives().visit(copy_tree(node))
    return ast.unparse(node)


def mark_lines(stmts, primal, previous=None):
    """Give the first statement of each run from one primal line a trailing ``# line N``.

    Walks blocks in the order they are printed; returns the last label.
    """
    for stmt in stmts:
        if isinstance(stmt, Comment):
            continue
        if getattr(stmt, "lineno", 0):
            label = at_line(stmt, primal)
            if label != previous:
                stmt.s2s_note = label
            previous = label
        for block in ("body", "orelse"):
            if isinstance(stmt, (ast.If, ast.For, ast.While)):
                previous = mark_lines(getattr(stmt, block), primal, previous)
    return previous


def _noted(stmt, text: str) -> str:
    note = getattr(stmt, "s2s_note", None)
    return f"{text}  # {note}" if note else text


def render_statements(stmts, depth=1, notes=None) -> list[str]:
    """Source lines for statements; a run of comments for one source line prints once.

    ``notes`` (the user's comments by primal line, `source.comments`) are written
    once, above the first statement of the primal's own that comes from that line;
    they are taken out of ``notes`` as they are written.
    """
    lines = []
    pad = INDENT * depth
    previous = None
    for stmt in stmts:
        if notes and not hasattr(stmt, "s2s_src") and getattr(stmt, "lineno", None) in notes:
            lines += [pad + text for text in notes.pop(stmt.lineno)]
        if isinstance(stmt, Comment):
            if stmt.text != previous:  # one comment per reversed source line
                lines.append(f"{pad}# {stmt.text}")
            previous = stmt.text
            continue
        if not isinstance(stmt, (ast.Assign, ast.AugAssign, ast.Expr)):
            previous = None
        if isinstance(stmt, ast.If) and _only_pass(stmt.body) and stmt.orelse:
            test = ast.UnaryOp(ast.Not(), stmt.test)  # `if c: pass else: B` reads as `if not c: B`
            lines.append(_noted(stmt, f"{pad}if {unparse(test)}:"))
            lines += _block(stmt.orelse, depth + 1, notes)
        elif isinstance(stmt, ast.If):
            lines.append(_noted(stmt, f"{pad}if {unparse(stmt.test)}:"))
            lines += _block(stmt.body, depth + 1, notes)
            orelse = stmt.orelse
            while len(orelse) == 1 and isinstance(orelse[0], ast.If):
                lines.append(f"{pad}elif {unparse(orelse[0].test)}:")
                lines += _block(orelse[0].body, depth + 1, notes)
                orelse = orelse[0].orelse
            if orelse:
                lines.append(f"{pad}else:")
                lines += _block(orelse, depth + 1, notes)
        elif isinstance(stmt, ast.For):
            lines.append(_noted(stmt, f"{pad}for {unparse(stmt.target)} in {unparse(stmt.iter)}:"))
            lines += _block(stmt.body, depth + 1, notes)
        elif isinstance(stmt, ast.While):
            lines.append(_noted(stmt, f"{pad}while {unparse(stmt.test)}:"))
            lines += _block(stmt.body, depth + 1, notes)
        else:
            lines.append(_noted(stmt, pad + unparse(stmt)))
    return lines


def _block(stmts, depth, notes=None) -> list[str]:
    """An indented block: ``pass`` where it would hold nothing but comments."""
    lines = render_statements(stmts, depth, notes)
    if all(line.strip().startswith("#") for line in lines):
        lines.append(INDENT * depth + "pass")
    return lines


def _only_pass(stmts) -> bool:
    return all(isinstance(s, ast.Pass) for s in stmts)


def render_function(name, params, docstring, sections, returns, depth=0, notes=None,
                    noted="forward") -> str:
    """``def name(params):`` with a docstring, titled sections and a return.

    ``sections`` are ``(title, statements)``; the user's comments (``notes``,
    see `render_statements`) go into the section titled ``noted``.
    """
    pad = INDENT * depth
    doc = docstring.replace("\n", "\n" + pad + INDENT).replace(pad + INDENT + "\n", "\n")
    closing = f"\n{pad}{INDENT}" if "\n" in docstring else ""
    lines = [f"{pad}def {name}({', '.join(params)}):", f'{pad}{INDENT}"""{doc}{closing}"""']
    for title, stmts in sections:
        body = render_statements(stmts, depth + 1, notes if title == noted else None)
        if body:
            if title:
                lines.append(f"{pad}{INDENT}# {title}")
            lines += body
    lines.append(f"{pad}{INDENT}return {returns}")
    return "\n".join(lines) + "\n"


def docstring(first: str, summary: str | None, fn_name: str) -> str:
    """The derivative's docstring: what it computes, then the primal's own first line."""
    if not summary:
        return first
    summary = summary.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f"{first}\n\n{fn_name}: {summary}" + (" " if summary.endswith('"') else "")


def helper_sources(names) -> str:
    """Source of the named helpers and of the helpers they call, in file order."""
    wanted = set(names)
    changed = True
    while changed:
        changed = False
        for name in list(wanted):
            text = _source(getattr(helper_module, name))
            for other in vars(helper_module):
                if other not in wanted and callable(getattr(helper_module, other)) and \
                        not other.startswith("_") and f"{other}(" in text:
                    wanted.add(other)
                    changed = True
    order = [n for n in vars(helper_module) if n in wanted]
    return "\n\n".join(_source(getattr(helper_module, n)) for n in order)


@functools.lru_cache(maxsize=None)
def _source(helper) -> str:
    """``inspect.getsource`` of one of s2s's own helper functions (read once)."""
    return inspect.getsource(helper)


def header(kind, fn_name, filename, digest, options, entry=None) -> str:
    """The provenance docstring: tool version, source, function, entry point, options, hash."""
    opts = ", ".join(f"{k}={v}" for k, v in options.items())
    entry_line = f"\n        entry: {entry}" if entry else ""
    return textwrap.dedent(f'''\
        """{kind} of `{fn_name}`, generated by s2s {__version__}.

        s2s-version: {__version__}
        source-file: {filename}
        function: {fn_name}{entry_line}
        options: {opts}
        primal-sha256: {digest}
        """
        ''')


_STDLIB = {"math"}
_ARRAYS = {"numpy", "scipy", "cupy", "cupyx", "numba"}


def sorted_imports(imports) -> str:
    """The import lines as isort (and ``ruff check``) order them: the standard library, then
    numpy/scipy/cupy/numba, then the user's modules, a blank line between groups; plain
    ``import`` before ``from`` in each group, by module name."""
    groups: list[list[str]] = [[], [], []]
    for line in imports:
        top = line.split()[1].split(".")[0]
        groups[0 if top in _STDLIB else 1 if top in _ARRAYS else 2].append(line)
    def order(line):
        return (line.startswith("from "), line.split()[1].lower())
    return "\n\n".join("\n".join(sorted(g, key=order)) for g in groups if g)


def module_text(head, imports, constants, helpers, functions) -> str:
    top = sorted_imports(imports)
    if constants:  # one blank line between imports and what follows them, unless it is a def
        top = "\n\n".join(p for p in (top, "\n".join(constants)) if p)
    parts = [head.rstrip("\n"), top]
    if helpers:
        parts.append(helpers)
    parts += functions
    return "\n\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


def compile_module(text: str, label: str, namespace: dict | None = None,
                   importable: bool = False) -> dict:
    """Execute generated source under a real file name; return its namespace.

    The text is written (once: the name holds its digest) to `generated_folder`,
    so every traceback printer shows its lines, Python 3.10-3.12's built-in one
    included (it reads files from disk and ignores ``linecache``), and pdb can
    list it and set breakpoints in it. It is registered with ``linecache`` too
    (an entry without mtime, which ``linecache.checkcache`` keeps), so the lines
    stay available when the file cannot be written or is deleted.
    """
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    filename = _materialize(text, f"{re.sub(r'[^A-Za-z0-9_]', '_', label)}.{digest}.py")
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = dict(namespace or {})
    namespace.setdefault("__name__", f"s2s_generated_{label}")
    if importable:  # in sys.modules under a name of its own (numba's cache imports it)
        module = types.ModuleType(f"s2s_generated_{re.sub(r'[^A-Za-z0-9_]', '_', label)}_{digest}")
        module.__dict__.update({k: v for k, v in namespace.items() if k != "__name__"})
        module.__file__ = filename
        sys.modules[module.__name__] = module
        namespace = module.__dict__
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - our own generated code
    namespace["__s2s_filename__"] = filename
    return namespace


def generated_folder() -> str:
    """Where compiled generated modules are written: ``$S2S_CACHE_DIR/generated``, else the
    user cache folder (``$XDG_CACHE_HOME/s2s/generated``, ``~/.cache/s2s/generated``;
    ``%LOCALAPPDATA%\\s2s\\generated`` on Windows). Never among the user's sources."""
    base = os.environ.get("S2S_CACHE_DIR")
    if base:
        return os.path.join(os.path.abspath(os.path.expanduser(base)), "generated")
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return os.path.join(os.environ["LOCALAPPDATA"], "s2s", "generated")
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "s2s", "generated")


def _materialize(text: str, name: str) -> str:
    """The path of a file holding ``text`` (written now if needed), or ``<s2s-generated name>``
    when it cannot be written. Not a cache (it never serves a derivative; ``S2S_CACHE=0``
    leaves it on): the source file of compiled code, as a module's own file is."""
    from .cache import write_text_atomic
    fallback = f"<s2s-generated {name}>"
    path = os.path.join(generated_folder(), name)
    try:
        if not os.path.isfile(path) or os.path.getsize(path) != len(text.encode()):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_text_atomic(path, text, durable=False)  # (its size is checked)
    except OSError:
        return fallback
    return path
