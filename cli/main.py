"""``s2s-diff``: write the derivative of a function in a Python file as a standalone module.

The file is read as text and never run, except with ``--check`` and ``--import``.
"""
from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import sys

from s2s import provenance
from s2s.errors import S2SError
from s2s.handedit import display
from s2s.forward import forward_module
from s2s.source import from_file, from_function, param_names
from s2s.update import write_generated

DESCRIPTION = """\
Write the derivative of function FN in MODEL.py as a standalone Python module
(importing only numpy, or cupy), on stdout or into -o FILE. MODEL.py is read
as text and never run: a module whose top level raises, prints or sleeps
works the same. Only --check and --import run it."""

EPILOG = """\
options in detail:
  --wrt w,b            the arguments to differentiate (default: the first one);
                       with several, the entry point returns a tuple of gradients
  --name NAME          the entry point's name; default grad_<fn> (vjp_<fn> with
                       --returns vjp; forward mode picks its own, jvp_<fn>)
  --returns KIND       grad (default): the gradient(s); value_and_grad: (value,
                       gradients); vjp: the gradients for a cotangent passed as
                       one more, last argument
  --has-aux            FN returns (output, aux); with --returns value_and_grad
                       the value is (output, aux)
  -o FILE              write atomically (a temporary file, then a rename): FILE
                       is never half-written, and left untouched on any error;
                       FILE.s2s-base beside it records what s2s wrote, for
                       --update (keep it with FILE if you edit FILE)
  --check              import MODEL.py (this runs it), call the derivative and
                       compare it with central finite differences; report the
                       relative error of each gradient (absolute where its norm
                       is below 1) on stderr. Passed: all within 1e-4. FAILED
                       (exit 1, and nothing written or printed): one above, or
                       the derivative raised. TIMED OUT (exit 1): an evaluation
                       ran past --timeout. INCONCLUSIVE (exit 3): a gradient is
                       zero on both sides, or a loop of FN ran no iteration, so
                       nothing was really compared. Forward mode: the tangent
                       along random tangents
  --args MOD:FUNC      with --check: the inputs, returned by FUNC() in module
                       MOD (importable beside MODEL.py, or a path.py) as a tuple
                       in argument order or a dict by name. Without it they are
                       drawn at random (standard normal) from --shapes
  --seed N             with --check: the seed of the random inputs (default 0)
  --timeout SECONDS    with --check: the limit on each evaluation of FN or of
                       the derivative (default 10; 0: none)
  --derivative FILE    with --check: check FILE (say, a hand-edited generated
                       file) instead of generating; its header gives the options
                       and the shapes it was specialized to
  --shapes w=3,4 X=100x3
                       argument shapes (',' or 'x' between sizes); `t=` or
                       `t=()` makes t a Python float. The derivative is
                       specialized to them, as s2s.grad does on a first call
                       (header options: shapes=..., scalars=t; reverse mode;
                       forward mode takes the floats only), and --check draws
                       its inputs with them (default: shape (3,) each)
  --update FILE        FILE is a generated derivative you edited: generate it
                       again (with the options its header records) and re-apply
                       your edits, by a three-way merge with FILE.s2s-base (what
                       s2s wrote, recorded by -o). Clean: FILE is rewritten and
                       re-stamped, exit 0. Conflicts: each is listed, FILE is left
                       as it was, exit 1. With --check, the merged file is
                       checked before it is written
  --markers            with --update: write conflicts into FILE as <<<<<<< /
                       ||||||| / ======= / >>>>>>> blocks (exit 1) instead
  --import             import MODEL.py (this runs it) and differentiate its
                       attribute FN as s2s.grad would: a function, or one made
                       when the module runs (a closure from a factory, a lambda,
                       a functools.partial, a bound method). Closure variables
                       become constants of the generated module. With --shapes
                       (or t= for a float) the derivative is the one s2s.grad
                       generates on a first call with arguments of those shapes
  --dump-after STAGE   print the core-language program after a pipeline stage
                       (normalize, reverse or optimize) instead of the module

exit status: 0 success; 1 an error in the model (printed as file:line:col:
error: ..., with the line and a caret) or a failed or timed-out --check; 2 a
usage error; 3 an inconclusive --check.

examples:
  s2s-diff model.py --fn loss
  s2s-diff model.py --fn loss --wrt W1,b1 -o grads/dloss.py
  s2s-diff model.py --fn loss --check --shapes w=3 X=100x3 y=100
  s2s-diff model.py --fn loss --check --derivative grads/dloss.py
  s2s-diff model.py --fn simulate --check --args inputs:simulate_args
  s2s-diff model.py --fn loss --update grads/dloss.py
  s2s-diff nn.py --fn loss --import --shapes W_vect=67 X=5x4 T=5x3
  s2s-diff --list-rules"""

STAGES = ("normalize", "reverse", "optimize")


class UsageError(Exception):
    """A command line that cannot work: reported like argparse's own errors, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2s-diff", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", metavar="MODEL.py", help="the Python file that defines FN")
    parser.add_argument("--fn", metavar="FN", help="the function to differentiate")
    parser.add_argument("--wrt", metavar="ARGS", help="comma-separated arguments (default: the first)")
    parser.add_argument("--mode", choices=("reverse", "forward"), default="reverse",
                        help="reverse (gradients, the default) or forward (tangents)")
    parser.add_argument("--target", choices=("numpy", "cupy", "dask", "numba"), default="numpy",
                        help="the array module of the generated code (default numpy; dask: no "
                             "in-place updates, so it runs on numpy and Dask arrays alike; numba: "
                             "compiled with numba.njit)")
    parser.add_argument("--name", help="the entry point's name (default grad_<fn>)")
    parser.add_argument("--returns", choices=("grad", "value_and_grad", "vjp"), default="grad",
                        help="what the entry point returns (default grad)")
    parser.add_argument("--has-aux", action="store_true", help="FN returns (output, aux)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the module to FILE (atomically)")
    parser.add_argument("--check", action="store_true",
                        help="check the derivative against finite differences (runs MODEL.py)")
    parser.add_argument("--import", dest="import_model", action="store_true",
                        help="import MODEL.py (runs it) and differentiate its attribute FN "
                             "(a closure, lambda, partial or bound method too)")
    parser.add_argument("--args", metavar="MOD:FUNC",
                        help="with --check: a function returning the arguments to check at")
    parser.add_argument("--seed", type=int, default=0, help="with --check: the random inputs' seed")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="with --check: the limit on each evaluation (default 10 s)")
    parser.add_argument("--derivative", metavar="FILE", help="with --check: the derivative file to check")
    parser.add_argument("--shapes", nargs="+", action="extend", default=[], metavar="NAME=SHAPE",
                        help="argument shapes, to specialize and --check: w=3,4 X=100x3 t=")
    parser.add_argument("--update", metavar="FILE",
                        help="regenerate FILE, a derivative you edited, re-applying your edits")
    parser.add_argument("--markers", action="store_true",
                        help="with --update: write conflicts into FILE as conflict blocks")
    parser.add_argument("--list-rules", action="store_true",
                        help="print every function with a derivative rule, one per line, and exit")
    parser.add_argument("--dump-after", choices=STAGES, metavar="STAGE",
                        help=f"print the program after a stage ({', '.join(STAGES)})")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list_rules:
            names = rule_names()
            print("\n".join(names))
            print(rule_counts(names), file=sys.stderr)
            return 0
        return run(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"s2s-diff: error: {exc}", file=sys.stderr)
        return 2
    except S2SError as exc:
        print(render(exc), file=sys.stderr)
        return 1


def rule_names() -> list[str]:
    """Every qualified name with a rule: the registry's keys, ``ndarray.<method>``, the
    functions lowered to others (``scipy.stats.norm.logpdf``) and the ODE solvers (whose
    calls become the ``s2s.helpers.odeint_solve`` the registry has)."""
    from s2s.ode import SOLVERS
    from s2s.rules import LOWERINGS, METHODS, RULES
    return sorted({n for n in RULES if not n.startswith("s2s.")} | {f"ndarray.{m}" for m in METHODS}
                  | set(LOWERINGS) | set(SOLVERS))


def rule_counts(names) -> str:
    """``223 functions: numpy 150, numpy.linalg 12, ...`` (scipy.stats by distribution method)."""
    modules: dict[str, int] = {}
    for name in names:
        module = name.rsplit(".", 2)[0] if name.startswith("scipy.stats.") else name.rsplit(".", 1)[0]
        modules[module] = modules.get(module, 0) + 1
    return f"{len(names)} functions: " + ", ".join(f"{m} {n}" for m, n in sorted(modules.items()))


def render(exc: S2SError) -> str:
    """The error as ``file:line:col: error: ...``, with paths relative to the current directory."""
    if exc.filename and os.path.isabs(exc.filename):
        exc.filename = display(exc.filename)
    return exc.render()


def run(args) -> int:
    validate(args)
    src = read_primal(args.model, args.fn, imported=args.import_model)
    params = param_names(src.node)
    shapes = parse_shapes(args.shapes, params)
    if args.update:
        from cli.update import run_update
        return run_update(args, src)
    if args.derivative:
        from cli.check import check_file
        return check_file(args, src, shapes).exit_status
    gen = generate(args, src, [n for n, s in shapes.items() if s is None],
                   {n: s for n, s in shapes.items() if s is not None})
    if args.dump_after:
        sys.stdout.write(gen.text)
        return 0
    if args.check:
        from cli.check import check_generated
        verdict = check_generated(args, src, shapes, gen)
        if not verdict:
            return verdict.exit_status
    if args.output:
        write_output(args.output, gen.text, args.model)
    else:
        sys.stdout.write(gen.text)
    return 0


def validate(args) -> None:
    if args.model is None:
        raise UsageError("the model file is required (s2s-diff MODEL.py --fn FN)")
    if not args.fn:
        raise UsageError("--fn is required: the name of the function to differentiate")
    if args.update:
        from cli.update import validate as update_problem
        problem = update_problem(args, vars(build_parser().parse_args([])))
        if problem:
            raise UsageError(problem)
    elif args.markers:
        raise UsageError("--markers is only used with --update")
    if args.import_model and (args.update or args.derivative):
        raise UsageError("--import generates from the running module; --update and "
                         "--derivative read MODEL.py statically (drop --import)")
    if args.dump_after and (args.output or args.check):
        raise UsageError("--dump-after prints to stdout; it cannot be combined with -o or --check")
    if args.derivative and not args.check:
        raise UsageError("--derivative FILE is only used with --check")
    if args.args and not args.check:
        raise UsageError("--args MOD:FUNC gives the inputs of --check; add --check")
    if args.check and args.target == "cupy":
        raise UsageError("--check runs on numpy; check without --target cupy (the cupy "
                         "module differs only in its array module)")
    if args.mode == "forward" and args.target == "dask":
        raise UsageError("--target dask is for reverse mode; forward-mode code runs on "
                         "Dask arrays with the default target")
    if args.mode == "forward" and args.target == "numba":
        raise UsageError("--target numba is for reverse mode")
    if args.mode == "forward" and (args.returns != "grad" or args.has_aux or args.dump_after):
        raise UsageError("--returns, --has-aux and --dump-after apply to reverse mode only")


def read_primal(path: str, fn_name: str, shown: str | None = None, imported: bool = False):
    """The function to differentiate: read statically, or imported (``--import``)."""
    return (import_function if imported else read_function)(path, fn_name, shown)


def read_function(path: str, fn_name: str, shown: str | None = None):
    """The function, read statically, with its file shown as given (or as ``shown``).

    The header's ``source-file`` is this name: no absolute path of this machine
    ends up in generated files.
    """
    try:
        src = copy.copy(from_file(path, fn_name))
    except S2SError as exc:
        if exc.message.startswith("no function named"):
            exc.hint = (f"{exc.hint}; if {fn_name} is made when the module runs (a closure "
                        "from a factory, a lambda, a partial), add --import to run "
                        f"{os.path.basename(path)} and take {fn_name} from it")
        raise
    return shown_as(src, path, shown)


def import_function(path: str, name: str, shown: str | None = None):
    """Attribute ``name`` of the module at ``path``, imported (this runs it), read as
    s2s.grad reads a live function: closure variables bound to their values."""
    from cli.check import load_model
    fn = getattr(load_model(path, "--import"), name, None)
    if fn is None or not callable(fn):
        raise S2SError(f"{path} has no function {name!r} once imported" if fn is None else
                       f"{name} in {path} is a {type(fn).__name__}, not a function",
                       hint="FN names a module-level attribute: a function, closure, lambda, "
                            "functools.partial or bound method")
    src = copy.copy(from_function(fn))
    return shown_as(src, src.filename, shown or path)


def shown_as(src, real: str, shown: str | None):
    """``src`` and the helpers it calls from the same file, named by ``shown`` (the path as
    given): headers and comments name no absolute path, and same-file helpers no file."""
    name = os.path.normpath(shown or real)
    for fs in provenance.dependencies(src):
        if fs is src or fs.filename == real:
            fs.filename = name
    return src


def parse_shapes(items, params) -> dict[str, tuple | None]:
    """``["w=3,4", "X=100x3", "t="]`` -> ``{"w": (3, 4), "X": (100, 3), "t": None}`` (None: a float)."""
    shapes: dict[str, tuple | None] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--shapes takes NAME=SHAPE (like w=3,4 or X=100x3), not {item!r}")
        if name not in params:
            raise UsageError(f"--shapes: {name!r} is not an argument; the arguments are "
                             f"{', '.join(params)}")
        if text.strip()[:1] in ("[", "{") or text.strip().endswith(",)"):
            shapes[name] = parse_structure(text, item)
            continue
        text = text.strip().strip("()").replace("x", ",").replace(" ", "")
        try:
            dims = tuple(int(d) for d in text.split(",") if d)
        except ValueError:
            raise UsageError(f"--shapes: bad shape in {item!r}; use sizes separated by ',' or 'x'")
        shapes[name] = dims if dims else None
    return shapes


def parse_structure(text: str, item: str):
    """``[(3x4,4),(4x2,2)]`` or ``{W:3x4,b:4,scale:float}``: a container argument, as the
    `pytree.spec` s2s.grad takes from a first call (``float``: a Python float leaf)."""
    quoted = re.sub(r"(?<![\w'])([A-Za-z_]\w*)\s*:", r"'\1':", text)  # bare dict keys
    quoted = re.sub(r"(?<![\w'])(float|\d+(?:x\d+)*)(?![\w'])", r"'#\1'", quoted)
    quoted = re.sub(r"(?<=[\[(,])\s*(?=[,)\]])", "'#float'", quoted)  # an empty leaf
    try:
        value = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        raise UsageError(f"--shapes: bad structure in {item!r}; write it like "
                         "layers=[(3x4,4),(4x2,2)] or params={W:3x4,b:4,scale:float}")

    def spec(v):
        if isinstance(v, dict):
            return ("dict", tuple(v), tuple(spec(c) for c in v.values()))
        if isinstance(v, (tuple, list)):
            return (type(v).__name__, None, tuple(spec(c) for c in v))
        if isinstance(v, str) and v.startswith("#"):
            leaf = v[1:]
            return ("leaf", "float") if leaf == "float" else \
                ("leaf", (tuple(int(d) for d in leaf.split("x")), "f"))
        raise UsageError(f"--shapes: bad leaf {v!r} in {item!r}")
    return spec(value)


def generate(args, src, scalars, shapes=None):
    """The module for the parsed command line; ``scalars``/``shapes`` specialize it (--shapes;
    a container's shape is its `pytree.spec`)."""
    shapes = dict(shapes or {})
    structures = {n: shapes.pop(n) for n, v in list(shapes.items()) if v and isinstance(v[0], str)}
    wrt = [w.strip() for w in args.wrt.split(",") if w.strip()] if args.wrt else \
        [a.arg for a in src.node.args.args][:1]
    if not wrt:
        raise S2SError(f"{src.name} takes no arguments to differentiate", src.filename,
                       src.node.lineno, src.node.col_offset)
    if args.mode == "forward":
        return forward_module(provenance.stamped(src), wrt, name=args.name, target=args.target,
                              known_scalars=tuple(sorted(scalars)), known_shapes=shapes or None,
                              structures=structures or None)
    options = {"known_shapes": dict(shapes)} if shapes else {}
    if structures:
        options["structures"] = structures
    return provenance.reverse_module(src, wrt, returns=args.returns, name=args.name,
                                     target=args.target, known_scalars=tuple(sorted(scalars)),
                                     has_aux=args.has_aux, dump_after=args.dump_after, **options)


def write_output(path: str, text: str, model: str) -> None:
    if os.path.exists(path) and os.path.samefile(path, model):
        raise UsageError(f"-o {path} would overwrite the model itself")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise S2SError(f"cannot write {path}: folder {display(folder)} does not exist")
    try:
        write_generated(path, text)
    except OSError as exc:
        raise S2SError(f"cannot write {path}: {exc.strerror or exc}")


if __name__ == "__main__":
    sys.exit(main())
