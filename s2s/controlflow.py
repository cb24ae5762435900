"""Control-flow lowering on statement lists (part of the normalize stage).

- `tailify` moves code that follows a branch ending in ``break``/``continue``/
  an early return into the branches that fall through; `remove_jumps` then drops
  the ``continue`` and return markers, which end their blocks;
- `split_aux_returns` turns ``return out, aux`` into ``aux = ...; return out``;
- `rename_straight_line` gives each top-level reassignment a fresh name.
"""
from __future__ import annotations

import ast
import copy

from .astutil import at, copy_tree, name_nodes, stored_names as assigned_names


class Jump(ast.stmt):
    """An early ``return`` or a ``continue`` while blocks are being tail-normalized."""

    _fields = ()


def split_aux_returns(block, aux, norm):
    """``return out, extra`` -> ``aux = extra`` then ``return out``."""
    out = []
    for stmt in block:
        if isinstance(stmt, ast.Return):
            if not (isinstance(stmt.value, ast.Tuple) and len(stmt.value.elts) == 2):
                raise norm.error("with has_aux=True the function must return a pair (output, aux)",
                                 stmt, hint="return output, aux")
            out.append(at(ast.Assign([ast.Name(aux, ast.Store())], stmt.value.elts[1]), stmt))
            out.append(at(ast.Return(stmt.value.elts[0]), stmt))
            continue
        if isinstance(stmt, ast.If):
            stmt = copy.copy(stmt)
            stmt.body = split_aux_returns(stmt.body, aux, norm)
            stmt.orelse = split_aux_returns(stmt.orelse, aux, norm)
        elif isinstance(stmt, (ast.For, ast.While)):
            stmt = copy.copy(stmt)
            stmt.body = split_aux_returns(stmt.body, aux, norm)
        out.append(stmt)
    return out






def _jumps(stmt) -> bool:
    """Does ``stmt`` contain a jump that leaves the block it is in?"""
    if isinstance(stmt, (ast.Break, ast.Continue, Jump)):
        return True
    if isinstance(stmt, ast.If):
        return any(_jumps(s) for s in stmt.body + stmt.orelse)
    return False


def _always_jumps(block) -> bool:
    if not block:
        return False
    last = block[-1]
    if isinstance(last, (ast.Break, ast.Continue, Jump)):
        return True
    return isinstance(last, ast.If) and _always_jumps(last.body) and _always_jumps(last.orelse)


def tailify(block):
    """Move code that follows a jumping branch into the branches that fall through."""
    out = []
    for k, stmt in enumerate(block):
        if isinstance(stmt, (ast.Break, ast.Continue, Jump)):
            out.append(stmt)
            return out
        if isinstance(stmt, (ast.For, ast.While)):
            stmt = copy.copy(stmt)
            stmt.body = tailify(stmt.body)
            out.append(stmt)
            continue
        if isinstance(stmt, ast.If):
            stmt = copy.copy(stmt)
            body, orelse = tailify(stmt.body), tailify(stmt.orelse)
            rest = block[k + 1:]
            if (_jumps(ast.If(None, body, orelse))) and rest:
                if not _always_jumps(body):
                    body = tailify(body + copy_tree(rest))
                if not _always_jumps(orelse):
                    orelse = tailify(orelse + rest)
                stmt.body, stmt.orelse = body, orelse
                out.append(stmt)
                return out
            stmt.body, stmt.orelse = body, orelse
        out.append(stmt)
    return out


def remove_jumps(block):
    """Drop ``continue`` and early-return markers, which now end their blocks."""
    out = []
    for stmt in block:
        if isinstance(stmt, (ast.Continue, Jump)):
            continue
        if isinstance(stmt, ast.If):
            stmt.body = remove_jumps(stmt.body) or [at(ast.Pass(), stmt)]
            stmt.orelse = remove_jumps(stmt.orelse)
        elif isinstance(stmt, (ast.For, ast.While)):
            stmt.body = remove_jumps(stmt.body) or [at(ast.Pass(), stmt)]
        out.append(stmt)
    return out


def rename(node, renames):
    """Rename names in ``node`` in place, keeping the ``s2s_op`` tags.

    A Name object the tree holds in several places (an unpacked value's ``t1`` in
    ``t1[0]``, ``t1[1]``) is renamed once: renaming it again would chain renames
    (``t1`` -> ``t12`` -> ``t122``) when one name's new name is another's old one.
    """
    done = set()
    for child in name_nodes(node):
        if id(child) not in done:
            done.add(id(child))
            if child.id in renames:
                child.id = renames[child.id]
    return node


def rename_straight_line(stmts, params, namer):
    """Give each top-level reassignment of a name a fresh version (``h``, ``h2``).

    Returns the statements and, for each renamed name, its last version.
    """
    nested = set()
    for stmt in stmts:
        if isinstance(stmt, (ast.For, ast.While, ast.If)):
            nested |= assigned_names(stmt)
    counts: dict[str, int] = {p: 1 for p in params}
    for stmt in stmts:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            counts[name] = counts.get(name, 0) + 1
    renamed = {n for n, c in counts.items() if c > 1 and n not in nested}
    current: dict[str, str] = {}
    out = []
    for stmt in stmts:
        uses = {k: v for k, v in current.items()}
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            rename(stmt.value, uses)
            name = stmt.targets[0].id
            if name in renamed:
                if name in current or name in params:
                    current[name] = namer.fresh(name)
                else:
                    current[name] = name
                stmt.targets[0].id = current[name]
        else:
            rename(stmt, uses)
        out.append(stmt)
    return out, current
