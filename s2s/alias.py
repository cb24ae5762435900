"""Aliasing: which names may share memory, and what an in-place update through one of them does.

numpy arrays are mutable and share memory: after ``z = v`` (or ``v[0]``, ``v[:]``,
``v.T``, ``v.reshape(...)``, a row of ``v`` in a loop) a write through ``z``
changes ``v``. This module is the analysis the transforms ask about it:

- `sharing` groups the names that may ever share memory (flow-insensitive: what
  the optimizer needs to keep a restore of a written region alive, or to keep a
  read of an element before a write into it);
- `resolve` looks at every in-place update (``x[idx] = v``, ``z += e`` on an
  array) with what may alias what at that point: an update that no other live
  name can observe keeps its simple meaning (``z += e`` a rebinding), an update
  through an alias of a whole array is rewritten as an update of that array,
  writes into the caller's arrays are refused, and anything the analysis cannot
  tell is refused with the line it is on.
"""
from __future__ import annotations

import ast
import re

from .astutil import copy_tree, loaded_names, statements, stored_names, walk
from .errors import UnsupportedSyntax

# Functions that may return a view of their argument: writes through it reach the argument.
VIEWS = {"numpy.reshape", "ndarray.reshape", "numpy.ravel", "ndarray.ravel", "ndarray.T",
         "numpy.transpose", "ndarray.transpose", "numpy.swapaxes", "ndarray.swapaxes",
         "numpy.moveaxis", "numpy.squeeze", "ndarray.squeeze", "numpy.expand_dims",
         "numpy.atleast_1d", "numpy.atleast_2d", "numpy.atleast_3d", "numpy.diagonal",
         "ndarray.diagonal", "numpy.real", "ndarray.real", "numpy.broadcast_to", "numpy.asarray",
         "ndarray.astype", "ndarray.view", "numpy.asanyarray", "numpy.flip", "numpy.fliplr",
         "numpy.flipud", "numpy.rot90"}


# Those that always return a view of an array argument.
SURE_VIEWS = {"ndarray.T", "numpy.transpose", "ndarray.transpose", "numpy.swapaxes", "ndarray.swapaxes",
              "numpy.moveaxis", "numpy.squeeze", "ndarray.squeeze", "numpy.expand_dims", "numpy.flip",
              "numpy.fliplr", "numpy.flipud", "numpy.rot90", "numpy.real", "ndarray.real"}


def _statements(body):
    """Every statement in ``body``, at any depth (`astutil.statements`)."""
    return statements(ast.Module(body=body, type_ignores=[]))


def view_source(value) -> str | None:
    """The name whose memory ``value`` may share, when it is a copy, a view, or an element."""
    if isinstance(value, ast.Name):
        return value.id
    op = getattr(value, "s2s_op", None)
    if op in ("subscript", "unpack", "pop") or (op in VIEWS and isinstance(value, ast.Attribute)):
        base = value.value if op != "pop" else value.func.value
        return base.id if isinstance(base, ast.Name) else None
    if op in VIEWS and isinstance(value, ast.Call):
        if op.startswith("ndarray."):
            base = value.func.value
        else:
            base = value.args[0] if value.args else None
        return base.id if isinstance(base, ast.Name) else None
    return None


def _pairs(body):
    """(a, b) for each statement after which ``a`` and ``b`` may share memory."""
    for node in _statements(body):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
            source = view_source(value)
            if source is not None:
                yield target, source
            elif isinstance(value, (ast.Tuple, ast.List)):
                for elt in value.elts:
                    if isinstance(elt, ast.Name):
                        yield target, elt.id
            elif getattr(value, "s2s_op", None) in ("custom", "unit"):  # may hold the arguments
                for arg in value.args:
                    if isinstance(arg, ast.Name):
                        yield target, arg.id
        elif isinstance(node, ast.Expr) and getattr(node, "s2s_op", None) == "append":
            call = node.value
            if isinstance(call.func.value, ast.Name) and isinstance(call.args[0], ast.Name):
                yield call.func.value.id, call.args[0].id


def sharing(body) -> dict[str, frozenset[str]]:
    """Name -> every name that may share memory with it at some point (itself included)."""
    return linked(_pairs(body))


def linked(pairs) -> dict[str, frozenset[str]]:
    """Name -> every name that ``pairs`` link it to, transitively (itself included)."""
    parent: dict[str, str] = {}

    def find(a):
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for name in list(parent):
        groups.setdefault(find(name), set()).add(name)
    return {name: frozenset(groups[find(name)]) for name in parent}


def sweep_sharing(stmts) -> dict[str, frozenset[str]]:
    """Name -> the names whose memory it may share, in generated sweeps: any value but
    arithmetic (which makes a new array) may be a view of what it reads. Flow-insensitive,
    and transitive."""
    return linked((target, source) for node in statements(ast.Module(body=list(stmts), type_ignores=[]))
                  if isinstance(node, ast.Assign) and not isinstance(node.value, (
                      ast.BinOp, ast.UnaryOp, ast.Compare))
                  for target in stored_names(node) for source in loaded_names(node.value))


def written_arrays(stmt) -> set[str]:
    """Names whose memory ``stmt`` (at any depth) writes in place, with their possible aliases."""
    names = set()
    for node in statements(stmt):
        if getattr(node, "s2s_op", None) in ("setitem", "additem") or hasattr(node, "s2s_restore"):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            names |= set(getattr(node, "s2s_shares", ())) | {target.value.id}
    return names


def annotate(body) -> dict[str, frozenset[str]]:
    """Tag each write ``x[idx] = v`` with the names that may share ``x``'s memory (``s2s_shares``)."""
    groups = sharing(body)
    for node in _statements(body):
        if getattr(node, "s2s_op", None) in ("setitem", "additem"):
            base = written_name(node)
            node.s2s_shares = groups.get(base, frozenset({base}))
    return groups


def unsupported(src, message, node, hint=None):
    return src.error(UnsupportedSyntax, message, node, hint=hint, stage="alias")


# --- what may alias what at each in-place update -------------------------------------

IN_PLACE = ("setitem", "additem", "add_at")


def written_name(stmt) -> str | None:
    """The name whose memory ``stmt`` updates in place (None: not an in-place update)."""
    kind = getattr(stmt, "s2s_op", None)
    if kind == "setitem":
        return stmt.targets[0].value.id
    if kind == "additem":
        return stmt.target.value.id
    if kind == "add_at":
        return _name(stmt.value.args[0])
    if getattr(stmt, "s2s_inplace", False):
        return _name(stmt.value.left)
    return None


def _name(node):
    return node.id if isinstance(node, ast.Name) else None


class _PointsTo:
    """Flow-sensitive may-point-to: name -> the arrays (allocation sites) it may hold.

    An array is a parameter (``param:x``), a module constant, or the most recent
    value made at a statement (``new:<id>``; older values made there are
    ``old:<id>``, so that ``prev = h; h = np.tanh(h)`` in a loop does not alias).
    """

    def __init__(self, fn, scalars, ranks):
        self.fn, self.scalars, self.ranks = fn, scalars, ranks
        self.at: dict[int, dict] = {}  # id(in-place statement) -> what holds before it
        self.exits: list[list] = []

    def run(self):
        env = {p: frozenset({f"param:{p}"}) for p in self.fn.params if p not in self.scalars}
        for name in self.fn.constants:
            env[name] = frozenset({f"const:{name}"})
        self.block(self.fn.body, env)
        return self.at

    def block(self, stmts, env):
        for stmt in stmts:
            if env is None:
                return None
            env = self.statement(stmt, env)
        return env

    def statement(self, stmt, env):
        if written_name(stmt) is not None:
            seen = self.at.setdefault(id(stmt), {})
            for name, objs in env.items():
                seen[name] = seen.get(name, frozenset()) | objs
        kind = getattr(stmt, "s2s_op", None)
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            env = dict(env)
            env[stmt.targets[0].id] = self.value(stmt, env)
            return env
        if kind == "append":
            call = stmt.value
            stack, item = _name(call.func.value), _name(call.args[0])
            if stack and item:
                env = dict(env)
                env[stack] = env.get(stack, frozenset()) | env.get(item, frozenset())
            return env
        if isinstance(stmt, ast.If):
            return _join(self.block(stmt.body, dict(env)), self.block(stmt.orelse, dict(env)))
        if isinstance(stmt, (ast.For, ast.While)):
            return self.loop(stmt, env)
        if isinstance(stmt, ast.Break):
            if self.exits:
                self.exits[-1].append(env)
            return None
        return env

    def value(self, stmt, env):
        target, value = stmt.targets[0].id, stmt.value
        if target in self.scalars:
            return frozenset()  # immutable
        if getattr(stmt, "s2s_inplace", False):
            return env.get(value.left.id, frozenset())  # the same array, updated
        source = view_source(value)
        if getattr(value, "s2s_op", None) == "subscript" and \
                index_kind(value.slice, self.scalars, self.ranks) == "advanced":
            source = None  # indexing with an array copies
        if source is not None:
            return env.get(source, frozenset())
        if isinstance(value, (ast.Tuple, ast.List)):
            return frozenset().union(*(env.get(_name(e), frozenset()) for e in value.elts))
        new, old = f"new:{id(stmt)}", f"old:{id(stmt)}"
        for name, objs in env.items():
            if new in objs:
                env[name] = (objs - {new}) | {old}
        objs = frozenset({new})
        if getattr(value, "s2s_op", None) in ("custom", "unit"):
            objs |= frozenset().union(*(env.get(_name(a), frozenset()) for a in value.args))
        return objs

    def loop(self, stmt, env):
        entry = dict(env)
        if isinstance(stmt, ast.For):
            entry[stmt.target.id] = frozenset()
        for _ in range(20):
            self.exits.append([])
            end = self.block(stmt.body, dict(entry))
            breaks = self.exits.pop()
            new = _join(entry, end)
            if new == entry:
                break
            entry = new
        out = entry
        for exit_env in breaks:
            out = _join(out, exit_env)
        return out


def _join(a, b):
    if a is None or b is None:
        return b if a is None else a
    return {k: a.get(k, frozenset()) | b.get(k, frozenset()) for k in set(a) | set(b)}


def _live_after(fn) -> dict[int, set[str]]:
    """id(in-place statement) -> the names read after it before being assigned again."""
    record: dict[int, set[str]] = {}
    exits: list[set[str]] = []

    def block(stmts, live):
        for stmt in reversed(stmts):
            live = statement(stmt, live)
        return live

    def statement(stmt, live):
        if written_name(stmt) is not None:
            record[id(stmt)] = record.get(id(stmt), set()) | live
        if isinstance(stmt, ast.Break):
            return set(exits[-1]) if exits else set(live)
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            return (live - {stmt.targets[0].id}) | loaded_names(stmt.value)
        if isinstance(stmt, ast.If):
            return loaded_names(stmt.test) | block(stmt.body, live) | block(stmt.orelse, live)
        if isinstance(stmt, (ast.For, ast.While)):
            header = loaded_names(stmt.iter) if isinstance(stmt, ast.For) else loaded_names(stmt.test)
            loop_live = set(live) | header
            exits.append(set(live))
            for _ in range(50):
                grown = loop_live | block(stmt.body, loop_live)
                if grown == loop_live:
                    break
                loop_live = grown
            exits.pop()
            return loop_live
        return live | loaded_names(stmt)

    block(fn.body, {fn.result, *fn.results} | ({fn.aux} if fn.aux else set()))
    return record


# --- in-place updates that other live names can observe --------------------------------

def resolve(fn, known_scalars=(), known_shapes=None):
    """Give every in-place update numpy's meaning for the names that share the array.

    An update that no other live name can observe stays as it is (``z += e`` is
    then a rebinding, exactly). Otherwise the update is spelled out as a write into
    the array (``z[...] = t``), written back into the array ``z`` is a view of
    (``v[0] = z``), and the live views of the written array are taken again after
    it (``r = v[0]``), so that each name's value, and so its adjoint and tangent,
    follows the memory. What cannot be spelled out this way is refused.

    Returns the shapes (`analyze.array_shapes`) and scalars (`analyze.scalar_names`) of the
    resolved ``fn`` for these arguments, or None where it did not work them out.
    """
    from . import analyze
    from .controlflow import rename_straight_line
    # A derivative s2s generated has its primal's writes spelled out already, and updates in
    # place only the adjoints it owns (copies of regions it clears, `dx = dx.copy()` first).
    analysis = None
    for _ in range(0 if generated(fn) else 50):
        known = {**{k: () for k in known_scalars}, **(known_shapes or {})}
        shapes = analyze.array_shapes(fn, known)
        scalars = analyze.scalar_names(fn, known_scalars, shapes=shapes)
        ranks = {k: len(v) if isinstance(v, tuple) else v for k, v in shapes.items()}
        conflict = _first_conflict(fn, scalars, ranks)
        if conflict is None:
            analysis = shapes, scalars
            break
        _Rewrite(fn, scalars, ranks).run(*conflict)
        fn.body, renamed = rename_straight_line(fn.body, fn.params, fn.namer)
        _rename_outputs(fn, renamed)
    annotate(fn.body)  # (tags writes: the shapes and scalars do not read the tags)
    return analysis


ARRAY_MAKERS = {"np.array", "np.asarray", "np.arange", "np.where", "np.nonzero", "np.argsort",
               "np.flatnonzero", "np.isfinite", "np.isnan", "np.logical_and", "np.logical_or",
               "np.logical_not", "np.tril_indices", "np.triu_indices", "np.ix_"}
INT_MAKERS = {"len", "int", "min", "max", "abs"}


def index_kind(index, scalars, ranks) -> str:
    """"basic" (``x[index]`` is a view), "advanced" (a copy) or "unknown"."""
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    kinds = set()
    for part in parts:
        if isinstance(part, ast.Slice) or (isinstance(part, ast.Constant) and (
                part.value is None or part.value is Ellipsis or type(part.value) is int)):
            kinds.add("basic")
        elif isinstance(part, ast.Name):
            rank = ranks.get(part.id)
            kinds.add("basic" if part.id in scalars else "advanced" if isinstance(rank, int) and rank
                      else "unknown")
        elif isinstance(part, (ast.List, ast.Compare, ast.ListComp)):
            kinds.add("advanced")
        elif isinstance(part, ast.Call):
            func = ast.unparse(part.func)
            kinds.add("advanced" if func in ARRAY_MAKERS else "basic" if func in INT_MAKERS
                      else "unknown")
        elif isinstance(part, (ast.BinOp, ast.UnaryOp)):
            kinds.add(index_kind(ast.Tuple([c for c in ast.iter_child_nodes(part)
                                            if isinstance(c, ast.expr)], ast.Load()), scalars, ranks))
        else:
            kinds.add("unknown")
    return "advanced" if "advanced" in kinds else "unknown" if "unknown" in kinds else "basic"


def generated(fn) -> bool:
    """Is ``fn`` a derivative s2s generated (which updates in place only what it owns)?"""
    import os
    from .emit import generated_folder
    filename = fn.src.filename or ""
    return filename.startswith("<s2s-generated") or os.path.dirname(filename) == generated_folder()


def _rename_outputs(fn, renamed):
    """The outputs of ``fn`` read the last version of each renamed name."""
    from .normalize import _renamed
    fn.result = renamed.get(fn.result, fn.result)
    fn.results = [renamed.get(r, r) for r in fn.results]
    fn.aux = renamed.get(fn.aux, fn.aux) if fn.aux else fn.aux
    fn.result_tree = _renamed(fn.result_tree, renamed)
    fn.aux_tree = _renamed(fn.aux_tree, renamed)


def _positions(stmts):
    """(statement, its block, its index) for every statement, in program order."""
    for i, stmt in enumerate(stmts):
        yield stmt, stmts, i
        if isinstance(stmt, ast.If):
            yield from _positions(stmt.body)
            yield from _positions(stmt.orelse)
        elif isinstance(stmt, (ast.For, ast.While)):
            yield from _positions(stmt.body)


def _first_conflict(fn, scalars, ranks):
    if not any(written_name(stmt) is not None or getattr(stmt, "s2s_inplace", False)
               for stmt, _, _ in _positions(fn.body)):
        return None  # no update in place: nothing to analyse
    before = _PointsTo(fn, scalars, ranks).run()
    live = _live_after(fn)
    for stmt, block, i in _positions(fn.body):
        name = written_name(stmt)
        if name is None or getattr(stmt, "s2s_alias_done", False) or name in scalars:
            continue
        env = before.get(id(stmt), {})
        objs = env.get(name, frozenset())
        callers = sorted(o.split(":", 1)[1] for o in objs if o.startswith(("param:", "const:")))
        element = not getattr(stmt, "s2s_inplace", False)
        rebound = {stmt.targets[0].id} if isinstance(stmt, ast.Assign) and \
            isinstance(stmt.targets[0], ast.Name) else set()
        others = sorted(n for n in live.get(id(stmt), set()) - rebound
                        if n != name and env.get(n, frozenset()) & objs)
        if not element and name in live.get(id(stmt), ()) and not _rebinds(block, i, name):
            others.append(name)  # z += e, then z read under its old name (a helper's argument)
        if callers and (element or others):
            src = getattr(stmt, "s2s_src", None) or fn.src
            owner = callers[0]
            what = f"the argument {owner!r}" if owner in fn.params else f"the module-level array {owner!r}"
            raise unsupported(src, f"this changes {what} in place (numpy writes into the caller's array)",
                              stmt, hint=f"copy it first: `{name} = {name}.copy()`, then write into the copy")
        if others:
            return stmt, block, i, name, others
    return None


def _rebinds(block, i, name) -> bool:
    """Is ``t = z op e`` at ``block[i]`` followed by ``z = t`` (the name itself rebound)?"""
    follower = block[i + 1] if i + 1 < len(block) else None
    return isinstance(follower, ast.Assign) and isinstance(follower.targets[0], ast.Name) and \
        follower.targets[0].id == name and isinstance(follower.value, ast.Name) and \
        follower.value.id == block[i].targets[0].id


class _Rewrite:
    """Spell out one in-place update that other live names can observe (see `resolve`)."""

    def __init__(self, fn, scalars, ranks):
        self.fn, self.scalars, self.ranks = fn, scalars, ranks
        self.defs: dict[str, list] = {}
        for node in _statements(fn.body):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                self.defs.setdefault(node.targets[0].id, []).append(node)

    def refuse(self, stmt, name, other):
        src = getattr(stmt, "s2s_src", None) or self.fn.src
        other = "a value" if re.fullmatch(r"t\d+", other) else repr(other)
        return unsupported(src, f"{name!r} may share memory with {other}, which is read later; s2s "
                                f"cannot tell how this in-place update changes it", stmt,
                           hint=f"make a copy where the two are made (`{name} = ....copy()`), or "
                                "write into the original array by name")

    def run(self, stmt, block, i, name, others):
        stmt.s2s_alias_done = True
        if getattr(stmt, "s2s_inplace", False):
            return self.augmented(stmt, block, i, name, others)
        again, unrelated = [], []
        for other in others:  # views of the written array: taken again after the write
            definition = self.relation(other, name, block, i)
            if definition is None:
                unrelated.append(other)
            else:
                again.append(_copy_node(definition))
        back = []
        if unrelated:  # write back into the array `name` is a view of (its other views follow)
            view = self.view_of(name, block, i)
            if view is None:
                raise self.refuse(stmt, name, unrelated[0])
            back = self.write_back(stmt, name, view, block, i, unrelated)
        block[i + 1:i + 1] = back + again

    def augmented(self, stmt, block, i, name, others):
        """``t = z op e`` (from ``z op= e``) on an array that others share."""
        if self.maybe_element(name, block, i):  # a number is rebound, an array written
            src = getattr(stmt, "s2s_src", None) or self.fn.src
            raise unsupported(src, f"{name!r} may be a number here (then this makes a new one) or an "
                                   f"array that {others[0]!r} shares (then this updates both); s2s "
                                   "cannot tell which", stmt,
                              hint=f"write `{name} = {name} ...` if a new value is meant, or "
                                   f"`{name}[:] ...` if the array is meant to change")
        del stmt.s2s_inplace
        new = stmt.targets[0].id
        follower = block[i + 1] if i + 1 < len(block) else None
        if not (isinstance(follower, ast.Assign) and isinstance(follower.value, ast.Name)
                and follower.value.id == new):
            raise self.refuse(stmt, name, others[0])
        copies = [o for o in others if self.relation(o, name, block, i, copies_only=True) or
                  self.relation(name, o, block, i, copies_only=True)]
        if copies == others:  # plain copies of one array: they all take the new value
            block[i + 2:i + 2] = [_at(ast.Assign([ast.Name(o, ast.Store())], ast.Name(new, ast.Load())),
                                      stmt) for o in others]
            return
        write = _at(ast.Assign([ast.Subscript(ast.Name(name, ast.Load()), ast.Constant(Ellipsis),
                                              ast.Store())], ast.Name(new, ast.Load())), stmt)
        write.s2s_op = "setitem"
        follower.value = ast.Name(name, ast.Load())  # z2 = z: the same array, now updated
        block.insert(i + 1, write)
        if follower.targets[0].id == name:  # z = z (a loop's name, not renamed): nothing to do
            block.remove(follower)

    def relation(self, name, source, block, i, copies_only=False):
        """The one assignment ``name = <view of source>``, before ``block[i]`` in its block or an
        enclosing one, whose inputs nothing reassigns on the way (None if there is none)."""
        defs = self.defs.get(name, [])
        between = []
        for level, (stmts, k) in enumerate(reversed(self.path(block[i]))):
            if level:
                between.append(stmts[k])  # the loop or branch around: all of it may run first
            for j in range(k - 1, -1, -1):
                if any(stmts[j] is d for d in defs):
                    # the nearest assignment before it, which nothing on the way reassigns
                    return self.viewing(stmts[j], source, between, copies_only)
                between.append(stmts[j])
        return None

    def viewing(self, definition, source, between, copies_only):
        """``definition`` if it makes a view of ``source`` that holds after ``between``."""
        value = definition.value
        name = definition.targets[0].id
        if view_source(value) != source or (copies_only and not isinstance(value, ast.Name)):
            return None
        op = getattr(value, "s2s_op", None)
        if op == "subscript" and not self.basic(value.slice):
            return None  # a view or a copy, depending on what the index holds
        if op in VIEWS and op not in SURE_VIEWS:
            return None  # reshape, ravel...: a view or a copy, depending on the memory layout
        stored = {n.id for s in between for n in walk(s)
                  if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        again = all(ast.unparse(d.value) == ast.unparse(value) for d in self.defs.get(name, [])
                    if any(d is n for s in between for n in walk(s)))
        return None if stored & loaded_names(value) or (name in stored and not again) else definition

    def path(self, stmt):
        """(block, index) of each statement from the top level down to ``stmt``."""
        def search(stmts, trail):
            for k, s in enumerate(stmts):
                here = trail + [(stmts, k)]
                if s is stmt:
                    return here
                for child in ("body", "orelse"):
                    found = search(getattr(s, child, None) or [], here) if isinstance(
                        s, (ast.If, ast.For, ast.While)) else None
                    if found:
                        return found
            return None
        return search(self.fn.body, [])

    def basic(self, index) -> bool:
        return index_kind(index, self.scalars, self.ranks) == "basic"

    def view_of(self, name, block, i):
        """The array that the assignment of ``name`` reaching ``block[i]`` views (None: unknown)."""
        defs = self.defs.get(name, [])
        for level, (stmts, k) in enumerate(reversed(self.path(block[i]))):
            if level and any(d in defs for d in _statements([stmts[k]])):
                return None  # reassigned in the loop or branch around
            for j in range(k - 1, -1, -1):
                if any(stmts[j] is d for d in defs):
                    value = stmts[j].value
                    return None if getattr(value, "s2s_op", None) == "pop" else view_source(value)
                if any(d in defs for d in _statements([stmts[j]])):
                    return None  # reassigned on some paths only
        return None

    def maybe_element(self, name, block, i, depth=0) -> bool:
        """May ``name`` (where ``block[i]`` reads it) hold one element of an array, a numpy
        scalar rather than a view (an index of as many integers as the array has axes)?"""
        source = self.view_of(name, block, i)
        if source is None:  # made here (or unknown): an array if its rank says so
            rank = self.ranks.get(name)
            return not (isinstance(rank, int) and rank > 0)
        definition = self.relation(name, source, block, i)
        if definition is None or depth > 10:
            return True
        value = definition.value
        if isinstance(value, ast.Name):
            return self.maybe_element(source, block, i, depth + 1)
        if getattr(value, "s2s_op", None) == "unpack":  # an item of a tuple: any value
            rank = self.ranks.get(name)
            return not (isinstance(rank, int) and rank > 0)
        if getattr(value, "s2s_op", None) != "subscript":
            return False
        parts = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
        integers = sum(not isinstance(p, ast.Slice) and not (isinstance(p, ast.Constant) and (
            p.value is None or p.value is Ellipsis)) for p in parts)
        if not integers and any(isinstance(p, ast.Slice) for p in parts):
            return False  # (a number cannot be sliced)
        rank = self.ranks.get(source)
        return not (isinstance(rank, int) and rank > integers)

    def write_back(self, stmt, name, base, block, i, others):
        """After a write through ``name = view(base)``: the same values written into ``base``.

        Through a copy ``name = base`` that no one else sees, ``base`` takes the new value.
        When others see ``base``'s memory too (``base`` is a row of ``u``, or ``u`` has other
        views), the copy is written into ``base`` in place, a write that the next round
        spells out in turn (into ``u``, its views taken again).
        """
        other = others[0]
        definition = self.relation(name, base, block, i)
        if definition is None:
            raise self.refuse(stmt, name, other)
        value = definition.value
        op = getattr(value, "s2s_op", None)
        if isinstance(value, ast.Name) and set(others) <= {base}:  # only base sees the array
            return [_at(ast.Assign([ast.Name(base, ast.Store())], ast.Name(name, ast.Load())), stmt)]
        if isinstance(value, ast.Name):
            if self.maybe_element(base, block, i):
                raise self.refuse(stmt, name, other)  # a numpy scalar is not written in place
            target = ast.Subscript(ast.Name(base, ast.Load()), ast.Constant(Ellipsis), ast.Store())
            source = ast.Name(name, ast.Load())
            code = []
        elif op == "subscript":
            target = ast.Subscript(ast.Name(base, ast.Load()), _copy_node(value.slice), ast.Store())
            source = ast.Name(name, ast.Load())
            code = []
        elif op in ("ndarray.T", "numpy.transpose", "ndarray.transpose") and (
                isinstance(value, ast.Attribute) or (len(value.args) + (op == "ndarray.transpose") == 1
                                                     and not value.keywords)):
            back = self.fn.namer.temp()
            transposed = ast.Attribute(ast.Name(name, ast.Load()), "T", ast.Load())
            transposed.s2s_op = "ndarray.T"
            code = [_at(ast.Assign([ast.Name(back, ast.Store())], transposed), stmt)]
            target = ast.Subscript(ast.Name(base, ast.Load()), ast.Constant(Ellipsis), ast.Store())
            source = ast.Name(back, ast.Load())
        else:  # reshape, ravel...: a view or a copy, depending on the memory layout
            raise self.refuse(stmt, name, other)
        write = _at(ast.Assign([target], source), stmt)
        write.s2s_op = "setitem"
        return code + [write]


def _copy_node(node):
        return copy_tree(node)


def _at(node, origin):
    from .astutil import at
    return at(node, origin)
