"""The fence: refuse unsupported syntax in one early pass, with file:line:col."""
from __future__ import annotations

import ast

from .astutil import child_nodes
from .errors import UnsupportedSyntax
from .source import FunctionSource

REFUSED = {
    ast.ClassDef: ("classes", "move the class out; differentiate a function of arrays"),
    ast.AsyncFunctionDef: ("async functions", "use a plain def"),
    ast.Try: ("try statements", "remove the try; handle errors outside the differentiated function"),
    ast.With: ("with statements", "move the with block outside the differentiated function"),
    ast.Global: ("global statements", "pass the value as an argument"),
    ast.Nonlocal: ("nonlocal statements", "pass the value as an argument"),
    ast.Delete: ("del statements", "remove the del"),
    ast.Import: ("imports inside the function", "import at module level"),
    ast.ImportFrom: ("imports inside the function", "import at module level"),
    ast.Yield: ("generators", "return a value instead of yielding"),
    ast.YieldFrom: ("generators", "return a value instead of yielding"),
    ast.Await: ("await", "use a plain def"),
    ast.SetComp: ("set comprehensions", "write a for loop"),
    ast.DictComp: ("dict comprehensions", "write a for loop"),
    ast.Starred: ("starred arguments", "pass the arguments one by one"),
    ast.NamedExpr: ("assignment expressions (:=)", "assign on its own line"),
    ast.JoinedStr: ("f-strings", "keep strings out of the differentiated function"),
    ast.Set: ("set displays", "use arrays or tuples"),
}
if hasattr(ast, "Match"):
    REFUSED[ast.Match] = ("match statements", "use if/elif/else")


_REFUSED_KINDS = tuple(REFUSED)


def _own_nodes(fn):
    """The nodes of ``fn``, not those inside a nested def or lambda (fenced where inlined)."""
    todo = child_nodes(fn)
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.Lambda)):
            todo += child_nodes(node)


def fence(src: FunctionSource, inlined: bool = False) -> None:
    """Refuse unsupported syntax in one early pass, with file:line:col (``*args`` and
    ``**kw`` parameters are read where a helper is ``inlined``, its call known)."""
    spread = {id(a) for n in _own_nodes(src.node) if isinstance(n, ast.Call) for a in n.args
              if isinstance(a, ast.Starred)}  # f(*xs): see `calls.CallLowering.spread`
    for node in _own_nodes(src.node):
        if id(node) in spread:
            continue
        for kind, (what, hint) in REFUSED.items() if isinstance(node, _REFUSED_KINDS) else ():
            if isinstance(node, kind):
                raise src.error(UnsupportedSyntax, f"{what} are not supported", node, hint=hint,
                                stage="normalize")
        if isinstance(node, (ast.For, ast.While)) and node.orelse:
            raise src.error(UnsupportedSyntax, "loop `else` clauses are not supported", node,
                            hint="use a flag variable set before `break`", stage="normalize")
    if not inlined:
        refuse_star_params(src)


def refuse_star_params(src: FunctionSource) -> None:
    """``def f(*args, **kw)`` differentiated itself (its helpers may take them)."""
    args = src.node.args
    if args.vararg or args.kwarg:
        raise src.error(UnsupportedSyntax, "*args and **kwargs parameters of the differentiated "
                        "function are not supported", src.node,
                        hint="spell out each parameter (a helper may take *args and **kwargs)",
                        stage="normalize")
