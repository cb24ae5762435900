"""``s2s-diff MODEL.py --fn FN --update FILE``: regenerate a hand-edited derivative, keeping the edits.

The options come from FILE's header; the merge is `s2s.update`. Reports go to
stderr; the exit status is 0 when every edit was re-applied (and the merged
file passed ``--check``, when asked), 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys

from s2s import derive, emit, provenance
from s2s.errors import S2SError
from s2s.handedit import display
from s2s.merge import refuse_markers
from s2s.update import base_path, conflict_error, read, regenerate, update

# the options an update takes from the file's header, and may not be given again
FROM_HEADER = ("wrt", "mode", "target", "name", "returns", "has_aux", "shapes")


def run_update(args, src) -> int:
    path = args.update
    shown = display(path)
    text = read(path, "the derivative")
    refuse_markers(text, shown)
    header = provenance.read_header(text, shown)
    if header.function != src.name:
        raise S2SError(f"{shown} differentiates `{header.function}`, not `{src.name}`",
                       hint=f"update it with --fn {header.function}")
    gen = regenerate(src, header)
    accept = None
    if args.check:
        def accept(text):
            return _check(args, src, header, gen, text)
    outcome = update(path, gen.text, shown, markers=args.markers, accept=accept)
    command = f"s2s-diff {args.model} --fn {src.name} --update {shown}"
    if outcome.current:
        print(f"{shown} is up to date: s2s generates what it wrote before", file=sys.stderr)
        return 0
    if outcome.conflicts and not outcome.written:
        print(conflict_error(outcome, shown, command).render(), file=sys.stderr)
        return 1
    if outcome.rejected:
        print(f"error: the merged {shown} failed --check; {shown} is unchanged", file=sys.stderr)
        return 1
    if outcome.conflicts:
        for c in outcome.conflicts:
            print(f"{shown}:{c.marked[0]}: conflict (lines {c.marked[0]}-{c.marked[1]}): your edit of "
                  f"{c.what}: {c.reason}", file=sys.stderr)
        print(f"{shown}: {len(outcome.conflicts)} conflict(s) marked in the file "
              f"({outcome.kept} edit(s) re-applied); resolve them, then check with "
              f"`s2s-diff {args.model} --fn {src.name} --check --derivative {shown}`", file=sys.stderr)
        return 1
    if outcome.edited:
        print(f"updated {shown}: {outcome.kept} edit(s) re-applied, header re-stamped "
              f"(primal-sha256 {provenance.read_header(outcome.text, shown).digest}); "
              f"{display(base_path(path))} records the new generation", file=sys.stderr)
    else:
        print(f"regenerated {shown} (it had no edits)", file=sys.stderr)
    return 0


def _check(args, src, header, gen, text) -> bool:
    """--check on the merged text, with the options its header records."""
    from cli.check import check_generated
    from cli.main import parse_shapes
    options = argparse.Namespace(**vars(args))
    options.wrt = ",".join(header.wrt)
    options.mode, options.returns, options.has_aux = header.mode, header.returns, header.has_aux
    params = [a.arg for a in src.node.args.args]
    shapes = parse_shapes([f"{p}={'x'.join(map(str, s))}" for p, s in header.shapes.items()]
                          + [f"{p}=" for p in header.scalars], params)
    try:
        namespace = emit.compile_module(text, src.name, gen.injected)
    except Exception as exc:  # noqa: BLE001 - a merged file that fails to load fails the check
        print(f"check FAILED: loading the merged file raised {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return False
    entry = gen.entry if callable(namespace.get(gen.entry)) else None
    if entry is None:
        raise S2SError(f"the merged {display(args.update)} no longer defines {gen.entry}")
    return check_generated(options, src, shapes, derive.Generated(text, entry, gen.injected))


def validate(args, parser_defaults) -> str | None:
    """Why these options cannot go with --update (None: they can)."""
    if args.output or args.derivative or args.dump_after:
        return "--update FILE writes FILE; it cannot be combined with -o, --derivative or --dump-after"
    given = [name for name in FROM_HEADER if getattr(args, name) != parser_defaults[name]]
    if given:
        return (f"--update takes the options from the file's header; drop "
                f"{', '.join('--' + g.replace('_', '-') for g in given)}")
    if not os.path.exists(args.update):
        return f"--update {args.update}: no such file (generate it first with -o)"
    return None
