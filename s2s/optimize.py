"""Stage 6: make the sweeps as lean as a careful hand-written gradient.

After `optimize` runs:

- a saved value survives only if the backward sweep reads it after restoring
  it (liveness over the backward sweep); unused stacks are gone;
- a value saved on a stack is defined before its first save (``= None``
  where the forward sweep may not have written it yet);
- assignments whose value is never read are gone (the primal's output, when
  only its gradient is wanted, included);
- single-use temporaries of the normalizer are folded back into the one
  expression that reads them, so the forward sweep reads like the source.
"""
from __future__ import annotations

import ast

from .astutil import all_names as _all_names, loaded_names, replace_once as _replace_once
from .astutil import find_nodes, name_nodes, statements, stored_names as _writes, walk
from .alias import written_arrays
from .blocks import write_blocks
from .clears import drop_row_clears
from .fold import add_numbers_at_first_write, fold_constants
from .naming import TEMP
from .preallocate import sizes_in
from .reverse import Comment, ReverseResult, scalar_expr
from .template import simplify


# --- liveness over structured code ------------------------------------------------

_memo: dict[int, tuple] | None = None  # id(node) -> (node, names), while nodes do not change


def reads(node) -> frozenset[str]:
    """Names ``node`` reads."""
    if _memo is not None:
        hit = _memo.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[1]
    names = frozenset(loaded_names(node))
    if _memo is not None:
        _memo[id(node)] = (node, names)
    return names


def live_before(stmts, live_after: set[str], on_dead=None) -> set[str]:
    """Names live before ``stmts`` given those live after; ``on_dead`` sees dead writes.

    When ``on_dead`` returns True for an assignment, the caller drops it: what it reads is
    not read, so a chain of dead assignments goes in one pass (dropping dead writes one at
    a time, in any order, ends with the same statements)."""
    live = set(live_after)  # this pass's own: `_live_stmt` updates it in place
    for stmt in reversed(stmts):
        live = _live_stmt(stmt, live, on_dead)
    return live


_loop_exits: list[set[str]] = []  # names live after each enclosing loop: where a break goes


def _live_stmt(stmt, live, on_dead):
    """The names live before ``stmt``: ``live`` (those after it, which the caller owns)
    updated in place, or a new set."""
    if isinstance(stmt, ast.Break) and _loop_exits:
        return set(_loop_exits[-1])  # control leaves the loop: what follows in the body is skipped
    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
        name = stmt.targets[0].id
        if name not in live and on_dead is not None and on_dead(stmt):
            return live
        live.discard(name)
        live |= reads(stmt.value)
        return live
    if getattr(stmt, "s2s_clears", None) and stmt.s2s_clears not in live and on_dead is not None:
        on_dead(stmt)  # zeros written into an adjoint nothing reads any more
        return live
    if hasattr(stmt, "s2s_restore") and not stmt.s2s_restore & live:
        if on_dead is not None:  # a restored region that nothing reads afterwards
            on_dead(stmt)
        return live
    if isinstance(stmt, ast.AugAssign):
        live |= reads(stmt.target)
        live |= reads(stmt.value)
        if isinstance(stmt.target, ast.Name):
            live.add(stmt.target.id)
        return live
    if isinstance(stmt, ast.If):
        before = live_before(stmt.body, live, on_dead)
        before |= live_before(stmt.orelse, live, on_dead)
        before |= reads(stmt.test)
        return before
    if isinstance(stmt, (ast.For, ast.While)):
        header = reads(stmt.iter) if isinstance(stmt, ast.For) else reads(stmt.test)
        target = {stmt.target.id} if isinstance(stmt, ast.For) else set()
        # A while test is re-read after every iteration; a for header only once.
        again = header if isinstance(stmt, ast.While) else set()
        loop_live = set(live) | again
        _loop_exits.append(set(live))
        try:
            while True:  # the body's live-in feeds the next iteration
                inner = live_before(stmt.body, loop_live, None)
                grown = loop_live | (inner - target)
                if grown == loop_live:
                    break
                loop_live = grown
            if on_dead is not None:  # the dead writes, seen from the settled live set
                live_before(stmt.body, loop_live, on_dead)
        finally:
            _loop_exits.pop()
        return loop_live | header
    if isinstance(stmt, Comment):
        return live
    live |= reads(stmt)
    return live


# --- passes -------------------------------------------------------------------------

def optimize(result: ReverseResult, returns: list[str], after_forward=()) -> ReverseResult:
    """Apply every pass.

    ``returns``: names read after the backward sweep (the gradients);
    ``after_forward``: names read between the sweeps (the value, its check).
    """
    global _memo
    fold_constants(result, returns)
    result.backward = _propagate_copies(result.backward)
    _memo = {}  # these passes only remove statements: what a node reads stays true
    try:
        while True:  # dropping dead recomputations can make more restores dead
            live, kept = _remove_dead(result, returns, set(after_forward))
            if any(getattr(s, "s2s_clears", None) for s in kept):
                live = kept = None  # (a clear writes a constant: it is never kept)
            _remove_faint(result, returns, set(after_forward), live)
            if not _prune_saves(result, returns, kept):
                break
    finally:
        _memo = None
    _init_saved(result)
    drop_row_clears(result.backward, lambda i: live_before(result.backward[i + 1:], set(returns)))
    _drop_needless_copies(result)
    _share_repeated_values(result)
    _inline_temporaries(result)
    _fold_scalar_factors(result, returns)
    result.backward = add_numbers_at_first_write(result.backward)
    def sizes():  # names set to a size once
        bound = _all_writes(result.forward + result.backward)
        return {n for n in sizes_in(result.forward) if bound.get(n) == 1}

    write_blocks(result.backward, sizes)
    return result


def _all_writes(stmts) -> dict[str, int]:
    """How many statements (at any depth) bind each name."""
    counts: dict[str, int] = {}
    for stmt in statements(ast.Module(body=list(stmts), type_ignores=[])):
        if not isinstance(stmt, (ast.If, ast.While, ast.Module)):
            for name in _writes(stmt.target if isinstance(stmt, (ast.For, ast.AugAssign)) else stmt):
                counts[name] = counts.get(name, 0) + 1
    return counts


def remove_dead(result: ReverseResult, returns, after_forward=()):
    """Drop what a later pass left unread (`batching` moves reads out of loops)."""
    global _memo
    _memo = {}
    try:
        _remove_dead(result, returns, set(after_forward))
    finally:
        _memo = None


def _prune_saves(result: ReverseResult, returns, dead_writes=None) -> bool:
    """Drop each restore whose value the backward sweep never reads, and its save.

    ``dead_writes``: the backward sweep's dead writes, when `_remove_dead`'s last pass has
    just listed them (it saw this sweep, and every dead write it saw it kept)."""
    dead_pushes = set()

    def on_dead(stmt):
        if hasattr(stmt, "s2s_pop"):
            dead_pushes.add(id(stmt.s2s_push_node))

    if dead_writes is None:
        live_before(result.backward, set(returns), on_dead)
    else:
        for stmt in dead_writes:
            on_dead(stmt)
    result.backward = _filter(result.backward, lambda s: not (
        hasattr(s, "s2s_pop") and id(s.s2s_push_node) in dead_pushes))
    result.forward = _filter(result.forward, lambda s: id(s) not in dead_pushes)
    used = {n for n in _all_names(result.forward)}
    result.stacks = [s for s in result.stacks if s in used]
    return bool(dead_pushes)


def _remove_dead(result: ReverseResult, returns, after_forward):
    """Remove assignments nobody reads (iterated: removal exposes more).

    Returns what the last pass, which found nothing to remove, saw of the backward sweep:
    the names live before it, and the dead writes it keeps (their values have effects:
    restores from stacks)."""
    while True:
        dead, kept = set(), []

        def on_dead(stmt):
            if _pure(stmt.value):
                dead.add(id(stmt))
                return True
            kept.append(stmt)
            return False

        live = live_before(result.backward, set(returns), on_dead)
        kept_backward = list(kept)
        live_before(result.forward, live | after_forward, on_dead)
        if not dead:
            return live, kept_backward
        result.backward = _filter(result.backward, lambda s: id(s) not in dead)
        result.forward = _filter(result.forward, lambda s: id(s) not in dead)


def _propagate_copies(stmts, writes=None):
    """After ``a = b`` (names), read ``b`` for ``a`` until either is written again.
    (``writes``: see `_written_by`; no statement's writes change in this pass.)"""
    writes = {} if writes is None else writes
    aliases: dict[str, str] = {}
    out = []
    for stmt in stmts:
        written = _written_by(stmt, writes) | _aug_targets(stmt)
        if isinstance(stmt, (ast.If, ast.For, ast.While)):
            inner = {a: b for a, b in aliases.items() if a not in written and b not in written}
            _substitute_reads(stmt, inner)
            if isinstance(stmt, ast.If):
                stmt.body = _propagate_copies(stmt.body, writes)
                stmt.orelse = _propagate_copies(stmt.orelse, writes)
            else:
                stmt.body = _propagate_copies(stmt.body, writes)
        else:
            _substitute_reads(stmt, aliases)
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name) and \
                    stmt.value.id == getattr(stmt.targets[0], "id", None):
                continue  # a = a
        if aliases and written:
            aliases = {a: b for a, b in aliases.items() if a not in written and b not in written}
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name) and \
                isinstance(stmt.targets[0], ast.Name) and not hasattr(stmt, "s2s_pop"):
            aliases[stmt.targets[0].id] = stmt.value.id  # (a gradient too: its own copy stays)
        out.append(stmt)
    return out


def _written_by(stmt, memo) -> set[str]:
    """`stored_names` of ``stmt``, a compound statement's made of its blocks' statements'
    (all kept in ``memo``, id(statement) -> (statement, names)): for a pass in which no
    statement's writes change."""
    hit = memo.get(id(stmt))
    if hit is not None and hit[0] is stmt:
        return hit[1]
    if isinstance(stmt, (ast.If, ast.For, ast.While)):
        names = set()
        for field in stmt._fields:
            value = getattr(stmt, field, None)
            if field in ("body", "orelse"):
                for inner in value:
                    names |= _written_by(inner, memo)
            elif isinstance(value, ast.AST):
                names |= _writes(value)
    else:
        names = _writes(stmt)
    memo[id(stmt)] = (stmt, names)
    return names


def _substitute_reads(stmt, aliases):
    if not aliases:
        return
    nodes = [stmt.test] if isinstance(stmt, (ast.If, ast.While)) else \
        [stmt.iter] if isinstance(stmt, ast.For) else [stmt]
    for root in nodes:
        for node in name_nodes(root):
            if isinstance(node.ctx, ast.Load) and node.id in aliases:
                node.id = aliases[node.id]
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Subscript):
        for node in name_nodes(stmt.target):
            if node.id in aliases and node is not stmt.target.value:
                node.id = aliases[node.id]


def _aug_targets(stmt) -> set[str]:
    if isinstance(stmt, ast.AugAssign):
        base = stmt.target
        while isinstance(base, ast.Subscript):
            base = base.value
        return {base.id} if isinstance(base, ast.Name) else set()
    return set()


def _remove_faint(result: ReverseResult, returns, after_forward, backward_live=None):
    """Remove forward assignments that only feed themselves (``total = total + ...`` when
    nothing reads ``total``): liveness keeps them, a mark from the real uses does not.
    (``backward_live``: the names live before the backward sweep, when known.)"""
    if backward_live is None:
        backward_live = live_before(result.backward, set(returns))
    needed = backward_live | set(after_forward)
    assigns = []
    for node in statements(ast.Module(body=result.forward, type_ignores=[])):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            assigns.append(node)
        elif isinstance(node, (ast.If, ast.While)):
            needed |= reads(node.test)
        elif isinstance(node, ast.For):
            needed |= reads(node.iter)
        elif isinstance(node, (ast.Expr, ast.AugAssign)) or (
                isinstance(node, ast.Assign) and not isinstance(node.targets[0], ast.Name)):
            needed |= reads(node)
    changed = True
    while changed:
        changed = False
        for node in assigns:
            if node.targets[0].id in needed and not reads(node.value) <= needed:
                needed |= reads(node.value)
                changed = True
    faint = {id(a) for a in assigns if a.targets[0].id not in needed and _pure(a.value)}
    if faint:
        result.forward = _filter(result.forward, lambda s: id(s) not in faint)


def _pure(value) -> bool:
    """Evaluating ``value`` has no effect besides its result (no pops, no appends)."""
    for node in find_nodes(value, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("pop", "append"):
            return False
    return True


def _share_repeated_values(result: ReverseResult):
    """A temporary that recomputes what an earlier one holds (``X.shape[0]`` twice) reads it.

    Only top-level forward values made of names nothing writes, attributes, indexing and
    arithmetic: no calls, so nothing random or stateful is merged.
    """
    counts: dict[str, int] = {}
    for s in result.forward + result.backward:
        for name in _writes(s):
            counts[name] = counts.get(name, 0) + 1
    rebound = set(counts)
    once = {s.targets[0].id for s in result.forward if isinstance(s, ast.Assign) and
            isinstance(s.targets[0], ast.Name) and counts.get(s.targets[0].id) == 1}
    # bound once but written in place (buf[1] -= s): its elements change all the same
    written = (rebound - once) | {n for s in result.forward + result.backward for n in written_arrays(s)}
    seen: dict[str, str] = {}
    renames: dict[str, str] = {}
    kept = []
    for stmt in result.forward:
        for node in name_nodes(stmt):  # earlier merges first: t2 = t1[0] and t16 = t15[0] match
            if isinstance(node.ctx, ast.Load) and node.id in renames:
                node.id = renames[node.id]
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and \
                TEMP.match(stmt.targets[0].id) and counts.get(stmt.targets[0].id) == 1 and \
                not find_nodes(stmt.value, ast.Call) and \
                not (reads(stmt.value) & written):
            key = ast.unparse(stmt.value)
            if key in seen:
                renames[stmt.targets[0].id] = seen[key]
                continue
            seen[key] = stmt.targets[0].id
        kept.append(stmt)
    if renames:
        result.forward = kept
        for stmt in result.forward + result.backward:
            for node in name_nodes(stmt):
                if isinstance(node.ctx, ast.Load) and node.id in renames:
                    node.id = renames[node.id]


def _drop_needless_copies(result: ReverseResult):
    """``g = dx[idx].copy()`` read once, by the very next statement, into a new value: no write
    can come between, so ``g = dx[idx]`` reads the same elements without the copy."""
    counts: dict[str, int] = {}
    for name in _all_names(result.forward) + _all_names(result.backward):
        counts[name] = counts.get(name, 0) + 1

    def block(stmts):
        code = [s for s in stmts if not isinstance(s, Comment)]
        for stmt, after in zip(code, code[1:]):
            value = getattr(stmt, "value", None)
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and \
                    isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and \
                    value.func.attr == "copy" and not value.args and \
                    isinstance(value.func.value, ast.Subscript) and \
                    counts.get(stmt.targets[0].id) == 2 and isinstance(after, ast.Assign) and \
                    isinstance(after.targets[0], ast.Name) and \
                    isinstance(after.value, (ast.BinOp, ast.UnaryOp)) and \
                    stmt.targets[0].id in reads(after.value):
                stmt.value = value.func.value
        for stmt in stmts:
            for field in ("body", "orelse"):
                if isinstance(stmt, (ast.If, ast.For, ast.While)):
                    block(getattr(stmt, field))

    block(result.backward)


def _init_saved(result: ReverseResult):
    """Give a variable a value before its first save when the first may come before any write."""
    defined = set(result.fn.params)
    needs = []
    for stmt in result.forward:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            defined.add(stmt.targets[0].id)
            continue
        for node in walk(stmt):
            name = getattr(node, "s2s_push", None)
            if getattr(node, "s2s_push_kind", None) == "after":
                continue  # saved right after its own write
            if name is not None and name not in defined and name not in needs:
                needs.append(name)
    result.forward = [ast.Assign([ast.Name(n, ast.Store())], ast.Constant(None), lineno=0)
                      for n in needs] + result.forward


def _inline_temporaries(result: ReverseResult):
    """Fold a normalizer temporary used once, in the same block, back into its reader."""
    counts: dict[str, int] = {}
    for name in _all_names(result.forward) + _all_names(result.backward):
        counts[name] = counts.get(name, 0) + 1
    once = {n for n, c in counts.items() if c == 2} | _paired(result.forward + result.backward)
    result.forward = _inline_block(result.forward, once)
    # and scalar adjoints: dt28 = 1.0 / B; dr = dt28 * 0.5 * r -> dr = 1.0 / B * 0.5 * r
    scalars = set(result.scalars) | {a for a, s in result.adjoint_shapes.items() if s == ()}
    adjoints = {s.targets[0].id for s in result.backward if isinstance(s, ast.Assign) and
                isinstance(s.targets[0], ast.Name) and s.targets[0].id in scalars and
                counts.get(s.targets[0].id) == 2 and not hasattr(s, "s2s_pop") and
                scalar_expr(s.value, scalars)}
    result.backward = _inline_block(result.backward, once, adjoints)  # recomputed values, too


def _paired(stmts) -> set[str]:
    """Temporaries written several times where every write is read once, by a later statement
    of its own block, before the next write: a value the backward sweep recomputes, whose
    forward and backward copies are each used once."""
    events: dict[str, list] = {}

    def note(names, kind, block):
        for name in names:
            if TEMP.match(name):
                events.setdefault(name, []).append((kind, block))

    def visit(stmts):
        for stmt in stmts:
            plain = not (hasattr(stmt, "s2s_pop") or hasattr(stmt, "s2s_push"))
            if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and plain:
                note(_names_in_order(stmt.value), "r", id(stmts))
                note([stmt.targets[0].id], "w", id(stmts))
            elif isinstance(stmt, (ast.If, ast.For, ast.While)):
                header = stmt.iter if isinstance(stmt, ast.For) else stmt.test
                note(_names_in_order(header), "r", None)
                if isinstance(stmt, ast.For):
                    note(_names_in_order(stmt.target), "w", None)
                visit(stmt.body)
                visit(stmt.orelse)
            elif not isinstance(stmt, Comment):
                note(_names_in_order(stmt), "?", None)  # anything else: not folded

    visit(stmts)
    return {name for name, seen in events.items() if len(seen) > 2 and len(seen) % 2 == 0 and all(
        write == ("w", read[1]) and read[0] == "r" and read[1] is not None
        for write, read in zip(seen[::2], seen[1::2]))}


def _names_in_order(node) -> list[str]:
    return [n.id for n in name_nodes(node)]  # (the order of names is not used)


def _fold_scalar_factors(result: ReverseResult, returns):
    """Scale an array once: a single-use adjoint temporary scaled by scalars folds into its
    reader, ``t = g * 0.5; u = t * vel`` -> ``u = g * (0.5 * vel)`` and ``t = -g; d += t`` ->
    ``d -= g`` (backward sweep only; each fold saves a pass over the array)."""
    counts: dict[str, int] = {}
    for name in _all_names(result.forward) + _all_names(result.backward) + list(returns):
        counts[name] = counts.get(name, 0) + 1
    scalars = set(result.scalars) | {a for a, s in result.adjoint_shapes.items() if s == ()}
    result.backward = _fold_block(result.backward, counts, scalars)


def _fold_block(stmts, counts, scalars):
    out: list[ast.stmt] = []
    pending: dict[str, tuple] = {}  # single-use name -> (its definition, what it scales, factor)
    for stmt in stmts:
        if isinstance(stmt, (ast.If, ast.For, ast.While)):
            stmt.body = _fold_block(stmt.body, counts, scalars)
            if isinstance(stmt, ast.If):
                stmt.orelse = _fold_block(stmt.orelse, counts, scalars)
            pending.clear()
            out.append(stmt)
            continue
        if isinstance(stmt, Comment):
            out.append(stmt)
            continue
        folded = _fold_into(stmt, pending, scalars)
        if folded is not None:
            definition, stmt = folded
            out.remove(definition)
        if isinstance(stmt, ast.AugAssign) or not (isinstance(stmt, ast.Assign) and all(
                isinstance(t, ast.Name) for t in stmt.targets)):
            pending.clear()  # an update in place (or anything else) may change what was read
        else:
            written = _writes(stmt)
            for name in [n for n, (d, _, _) in pending.items() if reads(d.value) & written]:
                del pending[name]
        scaled = _scaling(stmt, scalars) if isinstance(stmt, ast.Assign) and \
            isinstance(stmt.targets[0], ast.Name) and counts.get(stmt.targets[0].id) == 2 else None
        if scaled is not None:
            pending[stmt.targets[0].id] = (stmt, *scaled)
        out.append(stmt)
    return out


def _scaling(stmt, scalars):
    """``(a, [factors])`` for ``x = a * s``, ``s * a``, ``a / s`` or ``-a`` with ``s`` a scalar
    and ``a`` not one (scaling a scalar twice costs no more than once)."""
    v = stmt.value
    if isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.USub):
        a, factors = v.operand, [(ast.Mult(), ast.Constant(-1))]
    elif isinstance(v, ast.BinOp) and isinstance(v.op, (ast.Mult, ast.Div)) and scalar_expr(v.right, scalars):
        a, factors = v.left, [(v.op, v.right)]
    elif isinstance(v, ast.BinOp) and isinstance(v.op, ast.Mult) and scalar_expr(v.left, scalars):
        a, factors = v.right, [(v.op, v.left)]
    else:
        return None
    if not isinstance(a, ast.Name) or scalar_expr(a, scalars):
        return None
    return a, factors


def _fold_into(stmt, pending, scalars):
    """(the definition folded away, ``stmt`` rewritten to read what it scales) or None."""
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, (ast.Add, ast.Sub)) and \
            isinstance(stmt.value, ast.Name) and stmt.value.id in pending:
        definition, a, factors = pending[stmt.value.id]
        if len(factors) == 1 and isinstance(factors[0][1], ast.Constant) and factors[0][1].value == -1:
            op = ast.Sub() if isinstance(stmt.op, ast.Add) else ast.Add()  # d += -g -> d -= g
            return definition, ast.copy_location(ast.AugAssign(stmt.target, op, a), stmt)
        return None
    if not (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)):
        return None
    use = _scaling(stmt, scalars)
    if use is None or use[0].id not in pending:
        return None
    definition, a, factors = pending[use[0].id]
    new = ast.copy_location(ast.Assign(stmt.targets, _scaled(a, factors + use[1])), stmt)
    for key, value in vars(stmt).items():
        if key.startswith("s2s_"):
            setattr(new, key, value)
    return definition, new


def _scaled(a, factors) -> ast.expr:
    """``a`` times the product of ``factors`` (op, scalar), numbers multiplied out, one pass
    over ``a``: ``a * (0.5 * vel)``, ``a / -scale``, ``a * (vel / scale)``."""
    number, above, below = 1.0, [], []
    for op, f in factors:
        if isinstance(f, ast.Constant):
            number = number * f.value if isinstance(op, ast.Mult) else number / f.value
        else:
            (above if isinstance(op, ast.Mult) else below).append(f)

    def product(terms):
        out = terms[0]
        for t in terms[1:]:
            out = ast.BinOp(out, ast.Mult(), t)
        return out

    if not above and not below:
        return ast.UnaryOp(ast.USub(), a) if number == -1 else ast.BinOp(a, ast.Mult(), ast.Constant(number))
    if not above and number in (1, -1):  # a / d, a / -d
        d = product(below)
        return ast.BinOp(a, ast.Div(), d if number == 1 else ast.UnaryOp(ast.USub(), d))
    factor = product(above) if above else ast.Constant(number)
    if above and number == -1:
        factor = ast.UnaryOp(ast.USub(), factor)
    elif above and number != 1:
        factor = ast.BinOp(ast.Constant(number), ast.Mult(), factor)
    if below:
        factor = ast.BinOp(factor, ast.Div(), product(below))
    return ast.BinOp(a, ast.Mult(), factor)


def _inline_block(stmts, once, scalar_adjoints=frozenset()):
    """``once``: the temporaries whose every write is read once (see `_inline_temporaries`)."""
    out: list[ast.stmt] = []
    pending: dict[str, ast.Assign] = {}  # temp -> its definition, still foldable
    pending_reads: dict[str, frozenset] = {}  # temp -> what its value reads (unchanged while pending)
    for stmt in stmts:
        if isinstance(stmt, (ast.If, ast.For, ast.While)):
            stmt.body = _inline_block(stmt.body, once, scalar_adjoints)
            if isinstance(stmt, ast.If):
                stmt.orelse = _inline_block(stmt.orelse, once, scalar_adjoints)
        if pending:  # (nothing to fold or to forget otherwise)
            used = reads(stmt) if not isinstance(stmt, (ast.If, ast.For, ast.While)) else (
                reads(stmt.test) if isinstance(stmt, (ast.If, ast.While)) else reads(stmt.iter))
            for name in sorted(used & set(pending)):
                definition = pending.pop(name)
                if _replace_once(stmt, name, definition.value):
                    out.remove(definition)
                    if name in scalar_adjoints and isinstance(stmt, ast.Assign):
                        stmt.value = simplify(stmt.value)  # dt27 * 2 * r, dt27 = dt28 * 0.5: dt28 * r
        if pending:
            written = _writes(stmt) | written_arrays(stmt)
            for name in list(pending):
                if pending_reads[name] & written or (
                        isinstance(stmt, (ast.If, ast.For, ast.While)) and name in reads(stmt)):
                    del pending[name]
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and \
                (TEMP.match(stmt.targets[0].id) and stmt.targets[0].id in once or
                 stmt.targets[0].id in scalar_adjoints):
            pending[stmt.targets[0].id] = stmt
            pending_reads[stmt.targets[0].id] = reads(stmt.value)
        out.append(stmt)
    return out








def _filter(stmts, keep):
    """`filter_statements`, then tidy each level: no empty compounds, no orphan comments."""
    out = []
    for stmt in stmts:
        if not keep(stmt):
            continue
        for field in ("body", "orelse"):
            if isinstance(stmt, (ast.If, ast.For, ast.While)) and getattr(stmt, field, None):
                setattr(stmt, field, _filter(getattr(stmt, field), keep) or
                        ([ast.Pass()] if field == "body" else []))
        out.append(stmt)
    return _drop_empty(out)


def _drop_empty(stmts):
    """Remove compound statements left with nothing but ``pass``, and orphan comments."""
    out = []
    for stmt in stmts:
        if isinstance(stmt, ast.If) and _empty(stmt.body) and _empty(stmt.orelse):
            continue
        if isinstance(stmt, ast.For) and _empty(stmt.body) and _pure(stmt.iter) and \
                getattr(stmt, "s2s_backward", True):
            continue
        out.append(stmt)
    cleaned = []
    for i, stmt in enumerate(out):
        if isinstance(stmt, Comment) and (i + 1 == len(out) or isinstance(out[i + 1], Comment)):
            continue
        cleaned.append(stmt)
    return cleaned


def _empty(stmts) -> bool:
    return all(isinstance(s, (ast.Pass, Comment)) for s in stmts)

