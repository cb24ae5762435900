"""Stage 6 for forward mode: tangent code as lean as a careful hand-written one.

After `optimize` runs:

- assignments nobody reads are gone (tangents of values that are overwritten
  before use, zero-fills that nothing reads), in place of their iterations;
- a tangent that is only a copy of another (``dt3 = dt2``, where an operand's
  tangent passes through unchanged) is replaced by the original;
- single-use temporaries of the normalizer, and their tangents, are folded
  back into the one expression that reads them, so the primal reads like the
  source.
"""
from __future__ import annotations

import ast

from .astutil import all_names as _all_names, filter_statements as _filter
from .alias import sharing
from .astutil import replace_once as _replace_once, walk
from .naming import TEMP
from .optimize import live_before, reads


def optimize(stmts, returned, tangents) -> list[ast.stmt]:
    """Clean ``stmts``; ``returned`` names are read after them, ``tangents`` maps variable -> tangent."""
    stmts = _remove_dead(stmts, returned)
    stmts = _propagate_copies(stmts, returned, set(tangents.values()))
    temps = {n for n in _all_names(stmts) if TEMP.match(n)}
    foldable = temps | {t for v, t in tangents.items() if v in temps}
    return _inline_temporaries(stmts, returned, foldable)


def _remove_dead(stmts, returned):
    """Drop assignments whose value nothing reads, until none is left."""
    while True:
        dead = set()

        def on_dead(stmt):
            if _pure(stmt.value):
                dead.add(id(stmt))
                return True
            return False

        live_before(stmts, set(returned), on_dead)
        if not dead:
            return stmts
        stmts = _filter(stmts, lambda s: id(s) not in dead)


def _propagate_copies(stmts, returned, tangents):
    """``dt3 = dt2`` at top level, both written once and never updated in place: read dt2."""
    stores: dict[str, int] = {}
    for stmt in stmts:
        for node in walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                stores[node.id] = stores.get(node.id, 0) + 1
    mutated = _in_place(stmts)
    keep = set(returned)
    aliases: dict[str, str] = {}
    read_so_far: set[str] = set()
    stored_after = [set() for _ in stmts]  # names written by the statements after each one
    for i in range(len(stmts) - 2, -1, -1):
        stored_after[i] = stored_after[i + 1] | _writes(stmts[i + 1])
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and \
                isinstance(stmt.value, ast.Name):
            a, b = stmt.targets[0].id, aliases.get(stmt.value.id, stmt.value.id)
            # a must not be read before this write (an input tangent holds another value
            # there), and b must keep its value for as long as a is read.
            if a in tangents and a not in keep and stores.get(a) == 1 and b not in stored_after[i] \
                    and not {a, b} & mutated and a not in read_so_far:
                aliases[a] = b
        read_so_far |= reads(stmt)
    if not aliases:
        return stmts
    stmts = [s for s in stmts if not (
        isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name) and s.targets[0].id in aliases)]
    for stmt in stmts:
        for node in walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in aliases:
                node.id = aliases[node.id]
    return stmts


def _in_place(stmts) -> set[str]:
    """Names updated in place (``x[i] = v``, ``x.append(v)``, ``np.add.at(x, ...)``)."""
    names = set()
    for stmt in stmts:
        for node in walk(stmt):
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    if isinstance(target, ast.Subscript):
                        names |= _names(target.value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("append", "pop"):
                    names |= _names(node.func.value)
                elif node.func.attr == "at" and node.args:
                    names |= _names(node.args[0])
    return names


def _inline_temporaries(stmts, returned, foldable):
    counts: dict[str, int] = {}
    for name in _all_names(stmts):
        counts[name] = counts.get(name, 0) + 1
    for name in returned:
        counts[name] = counts.get(name, 0) + 1
    return _inline_block(stmts, counts, foldable, sharing(stmts))


def _inline_block(stmts, counts, foldable, groups):
    """Fold a temporary written and read once, in the same block, into its reader: not past a
    write into the memory of what it reads (``t7 = buf[::2]`` sees ``buf[0] = v``)."""
    out: list[ast.stmt] = []
    pending: dict[str, ast.Assign] = {}
    for stmt in stmts:
        compound = isinstance(stmt, (ast.If, ast.For, ast.While))
        if compound:
            stmt.body = _inline_block(stmt.body, counts, foldable, groups)
            if isinstance(stmt, ast.If):
                stmt.orelse = _inline_block(stmt.orelse, counts, foldable, groups)
            used = reads(stmt.iter) if isinstance(stmt, ast.For) else reads(stmt.test)
        else:
            used = reads(stmt)
        for name in sorted(used & set(pending)):
            definition = pending.pop(name)
            if _replace_once(stmt, name, definition.value):
                out.remove(definition)
        written = set(_writes(stmt))
        for name in _in_place([stmt]):
            written |= groups.get(name, frozenset())
        for name, definition in list(pending.items()):
            if reads(definition.value) & written or (compound and name in reads(stmt)):
                del pending[name]
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and \
                stmt.targets[0].id in foldable and counts.get(stmt.targets[0].id) == 2 and \
                _pure(stmt.value):
            pending[stmt.targets[0].id] = stmt
        out.append(stmt)
    return out




def _writes(stmt) -> set[str]:
    """Names a statement writes, counting in-place updates (``x[i] = v``, ``x.append(v)``)."""
    stored = {n.id for n in walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return stored | _in_place([stmt])




def _pure(value) -> bool:
    """Evaluating ``value`` has no effect besides its result (no pop, no append)."""
    return not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and
                   n.func.attr in ("pop", "append") for n in walk(value))


def _names(node) -> set[str]:
    return {n.id for n in walk(node) if isinstance(n, ast.Name)}

