"""Random programs through ``s2s.grad``, ``s2s.jvp`` and ``s2s.hvp`` against finite differences.

    python -m tests.fuzz --n 10000 [--seed S] [--out DIR] [--modes grad,jvp,hvp]
                         [--features +writes,-zip] [--quiet]

Each program is a module (constants, helpers, ``f(x, y, s)``) written to a temporary
file, built from the feature groups in `FEATURES`: nested ``for``/``while`` loops,
``break``/``continue``, helpers with early and several returns called from loops,
aliases and copies followed by in-place updates, ``zip``/``enumerate`` of unequal
sequences, names shadowed between caller and helper, module constants (read by
helpers, shadowed by parameters, as defaults), floats and arrays of several shapes with
broadcasting; element writes into local buffers and containers are switched on with
``--features +writes,+containers``. Program ``i`` of seed ``S`` is the same on every
run. Each mode's outcome is ok, refused (an S2SError: its reason is tallied), wrong (a
derivative off from central differences at a point where the function is smooth),
crash (any other exception), kink (off, but the function is not smooth there: not
counted against s2s); hvp is checked against central differences of s2s's own gradient
(itself checked against differences of the function), so an hvp is right or wrong, never
"imprecise". Every wrong or crash is written to ``--out`` as a pytest file that replays it
alone.
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import itertools
import os
import random
import re
import signal
import sys
import tempfile
import textwrap
import time
import traceback
import warnings

import numpy as np

import s2s
from s2s.testing import MODES, check_mode, numerical_grad
from tests.fuzz_functions import FUNCTION_FEATURES, FunctionStatements
from tests.fuzz_speed import SPEED_FEATURES, SpeedStatements
from tests.fuzz_state import STATE_FEATURES, StateStatements
from tests.fuzz_views import VIEW_FEATURES, ViewStatements

FEATURES = {
    "loops": "for range and while loops, nested in each other up to three deep",
    "jumps": "break and continue in (inner) loops",
    "helpers": "helpers called from the function and from loops, calling earlier helpers",
    "returns": "early returns (also inside loops) in helpers and the function",
    "aliases": "z = v, v[:], v.T, v[0], v.copy() followed by in-place += -= *=",
    "zip": "for over rows, enumerate, zip of unequal lengths",
    "shadow": "helper locals and parameters named like the caller's names and module constants",
    "constants": "module constants read by helpers and the function, helper defaults naming them",
    "rebind": "a float local rebound to an array",
    "writes": "element and slice writes (plain and augmented) into local buffers",
    "containers": "tuples returned by helpers and unpacked, lists built in loops and stacked",
    **FUNCTION_FEATURES,
    **VIEW_FEATURES,
    **SPEED_FEATURES,
    **STATE_FEATURES,
}
DEFAULT_FEATURES = frozenset(FEATURES) - {"writes", "containers", *FUNCTION_FEATURES, *VIEW_FEATURES,
                                          *SPEED_FEATURES, *STATE_FEATURES}
NAMED_ONLY = {*FUNCTION_FEATURES, *SPEED_FEATURES, *STATE_FEATURES}  # not in `all`: they change every program's draws
FAMILIES = {  # shapes of x, and the shapes y may take (broadcasting against x)
    "vector": ((4,), [(4,), ()]),
    "matrix": ((2, 3), [(1, 3), (3,), (2, 3)]),
    "float": ((), [()]),  # Python floats: the scalar-specialised code
}
CONSTANTS = {"C": "0.4", "SCALE": "1.3", "s": "0.25"}  # module constants (``s`` is also f's parameter)
POOL = ["u", "v", "w", "z", "acc", "h", "t", "p"]  # locals, shared by the function and helpers

UNARY = ["np.sin({})", "np.tanh({})", "np.cos({})", "({}) * 0.5", "-({})", "({}) ** 2 * 0.1",
         "np.exp(np.sin({}))", "np.sqrt(({}) ** 2 + 1.0)", "np.log(1.0 + ({}) ** 2)",
         "1.0 / (1.0 + np.exp(-({})))"]
BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / (({}) ** 2 + 1.0)",
          "np.maximum({}, ({}) * 0.3)"]
THRESHOLDS = ["0.0", "0.5", "-0.5", "1.0", "0.2"]


class Program(FunctionStatements, ViewStatements, SpeedStatements, StateStatements):
    """Writes one random module; ``text`` is its source, ``shapes`` those of x and y."""

    def __init__(self, rng: random.Random, features):
        self.rng = rng
        self.on = set(features)
        self.family = rng.choice(list(FAMILIES))
        xshape, yshapes = FAMILIES[self.family]
        self.shapes = (xshape, rng.choice(yshapes))
        self.helpers: list[tuple[str, list, tuple]] = []  # (name, [(param, shape, default)], result shape)
        self.counter = itertools.count(1)
        lines = ["import numpy as np", ""]
        if "constants" in self.on:
            lines += [f"{k} = {v}" for k, v in CONSTANTS.items()]
            if xshape:
                lines.append(f"OFFSET = np.linspace(-0.3, 0.4, {int(np.prod(xshape))}).reshape({xshape})")
            lines.append("")
        lines += self.state_helpers()  # (before the helpers that may call them)
        if "helpers" in self.on:
            for _ in range(rng.randint(0, 2)):
                lines += self.helper()
        lines += self.function_helpers()
        lines += self.view_helpers()
        lines += self.function()
        self.text = "\n".join(lines) + "\n"

    # -- shapes ---------------------------------------------------------------

    @property
    def xshape(self):
        return self.shapes[0]

    def target_shapes(self):
        """Shapes a value may have: x's, a scalar, and a matrix's rows and columns."""
        x = self.xshape
        return [x, (), (x[1],), (x[0],)] if len(x) == 2 else [x, ()]

    def loose_shapes(self, shape):
        """Shapes that broadcast to ``shape`` without changing it."""
        return [s for s in set(self.target_shapes()) | {self.shapes[1]}
                if len(s) <= len(shape) and all(a in (1, b) for a, b in zip(s[::-1], shape[::-1]))]

    # -- expressions -----------------------------------------------------------

    def expr(self, env, shape, depth=2):
        """An expression of exactly ``shape`` from the names in ``env`` (name -> shape)."""
        rng = self.rng
        r = rng.random()
        if depth <= 0 or r < 0.3:
            return self.leaf(env, shape)
        if r < 0.55:
            template = rng.choice(UNARY + (["({})[::-1]"] if shape else []))
            return template.format(self.expr(env, shape, depth - 1))
        if r < 0.8:
            left = self.expr(env, shape, depth - 1)
            right = self.expr(env, rng.choice(self.loose_shapes(shape)), depth - 1)
            template = rng.choice(BINARY)
            if rng.random() < 0.5 and not template.startswith("np."):
                left, right = right, left  # the broadcast operand on either side
            return template.format(left, right)
        return self.reshaped(env, shape, depth - 1)

    def reshaped(self, env, shape, depth):
        """An expression of ``shape`` made from one of another shape (reductions, indexing)."""
        rng, x = self.rng, self.xshape
        if shape == ():
            source = rng.choice(self.target_shapes())
            inner = self.expr(env, source, depth)
            options = [f"np.sum({inner})", f"np.mean({inner})", f"np.sum(({inner}) ** 2) * 0.1"]
            if len(source) == 1:
                k = rng.randrange(source[0])
                options += [f"({inner})[{k}]", f"np.dot({inner}, {self.expr(env, source, depth)})",
                            f"({inner})[-1]"]
                options += [f"({inner})[{i} % {source[0]}]" for i in env.get("#ints", [])]
            return rng.choice(options)
        if len(x) == 2 and shape == (x[1],):
            inner = self.expr(env, x, depth)
            options = [f"np.sum({inner}, axis=0)", f"({inner})[{rng.randrange(x[0])}]",
                       f"np.mean({inner}, axis=0)",
                       f"({inner}).T @ ({self.expr(env, (x[0],), depth)})"]
            options += [f"({inner})[{i} % {x[0]}]" for i in env.get("#ints", [])]
            return rng.choice(options)
        if len(x) == 2 and shape == (x[0],):
            inner = self.expr(env, x, depth)
            return rng.choice([f"np.sum({inner}, axis=1)", f"({inner})[:, {rng.randrange(x[1])}]",
                               f"({inner}) @ ({self.expr(env, (x[1],), depth)})"])
        if len(shape) == 2:
            return rng.choice([f"np.outer({self.expr(env, (x[0],), depth)}, {self.expr(env, (x[1],), depth)})",
                               f"({self.expr(env, (x[0],), depth)})[:, None] * ({self.expr(env, (x[1],), depth)})"])
        return self.leaf(env, shape)

    def leaf(self, env, shape):
        rng = self.rng
        names = [n for n, s in env.items() if s == shape and not n.startswith("#")]
        extra = []
        if shape == ():
            extra = ["0.7", "1.3", "-0.4"]
            if "constants" in self.on:
                extra += [c for c in CONSTANTS if c not in env]
        elif shape == self.xshape and "constants" in self.on:
            extra = ["OFFSET"]
        if names and rng.random() < 0.8:
            return rng.choice(names)
        if extra:
            return rng.choice(extra)
        if names:
            return rng.choice(names)
        if shape == ():
            source = rng.choice([n for n, s in env.items() if not n.startswith("#")])
            return f"np.sum({source})"
        x = self.xshape
        full = [n for n, s in env.items() if s == x and not n.startswith("#")]
        if full and len(x) == 2 and shape == (x[1],):
            return f"{rng.choice(full)}[{rng.randrange(x[0])}]"
        if full and len(x) == 2 and shape == (x[0],):
            return f"np.sum({rng.choice(full)}, axis=1)"
        return f"np.ones({shape}) * 0.5"

    def cond(self, env):
        name = self.rng.choice([n for n in env if not n.startswith("#")])
        value = name if env[name] == () else f"np.sum({name})"
        return f"{value} > {self.rng.choice(THRESHOLDS)}"

    # -- statements ----------------------------------------------------------------

    def block(self, env, depth, loop_depth, returns, count=None, top=False):
        """Lines of a block (indented by the caller); ``env`` is updated with what is bound
        on every path through it (new names only at the top of a function)."""
        lines = []
        for _ in range(count if count is not None else self.rng.randint(1, 2)):
            lines += self.statement(env, depth, loop_depth, returns, top)
        return lines

    def statement(self, env, depth, loop_depth, returns, top):
        rng, on = self.rng, self.on
        kinds = ["assign"] * 4 + ["augment"] * 2 + (["if"] if depth < 3 else [])
        if "loops" in on and depth < 3:
            kinds += ["for", "while"]
        if "zip" in on and depth < 3 and self.xshape:
            kinds += ["rows"]
        if "jumps" in on and loop_depth:
            kinds += ["break", "continue"]
        if "helpers" in on and self.helpers:
            kinds += ["call"] * 2
        if "aliases" in on and self.xshape:
            kinds += ["alias"]
        if "returns" in on and returns is not None:
            kinds += ["return"]
        if "rebind" in on and top and self.xshape:
            kinds += ["rebind"]
        if "writes" in on and self.xshape:
            kinds += ["write"]
        if "containers" in on and top and self.xshape:
            kinds += ["list"]
        kinds += self.function_kinds(env, top)
        kinds += self.view_kinds(env, top)
        kinds += self.speed_kinds(env, top)
        kinds += self.state_kinds(env, top)
        kind = rng.choice(kinds)
        return getattr(self, "s_" + kind)(env, depth, loop_depth, returns, top)

    def nested(self, env, depth, loop_depth, returns, indent="    "):
        inner = dict(env)
        lines = self.block(inner, depth + 1, loop_depth, returns)
        return [indent + line for line in lines]

    def target(self, env, top):
        """A name to assign, with its shape: an existing one, or (at the top) a new one."""
        rng = self.rng
        existing = [n for n in env if not n.startswith("#") and n not in env.get("#fixed", ())]
        if existing and (not top or rng.random() < 0.5):
            name = rng.choice(existing)
            return name, env[name]
        name = rng.choice(POOL)
        if name in env:
            return name, env[name]
        return name, rng.choice(self.target_shapes())

    def s_assign(self, env, depth, loop_depth, returns, top):
        name, shape = self.target(env, top)
        value = self.expr(env, shape)
        if loop_depth and self.rng.random() < 0.5:
            value = f"np.tanh({value})"  # bounded across iterations
        env[name] = shape
        return [f"{name} = {value}"]

    def s_augment(self, env, depth, loop_depth, returns, top):
        names = [n for n in env if not n.startswith("#") and n not in env.get("#fixed", ())]
        if not names:
            return self.s_assign(env, depth, loop_depth, returns, top)
        name = self.rng.choice(names)
        op = self.rng.choice(["+=", "-=", "*="])
        value = self.expr(env, self.rng.choice(self.loose_shapes(env[name])), 1)
        if op == "*=":
            value = f"np.tanh({value})"
        if "aliases" not in self.on:  # `v = x` then `v += e` writes into x's buffer: an alias
            return [f"{name} = {name} {op[0]} {value}"]
        return [f"{name} {op} {value}"]

    def s_if(self, env, depth, loop_depth, returns, top):
        lines = [f"if {self.cond(env)}:"] + self.nested(env, depth, loop_depth, returns)
        if self.rng.random() < 0.6:
            lines += ["else:"] + self.nested(env, depth, loop_depth, returns)
        return lines

    def s_for(self, env, depth, loop_depth, returns, top):
        index = f"i{next(self.counter)}" if self.rng.random() < 0.7 else "i"
        inner = dict(env)
        inner["#ints"] = env.get("#ints", []) + [index]
        body = self.block(inner, depth + 1, loop_depth + 1, returns)
        return [f"for {index} in range({self.rng.randint(0, 3)}):"] + ["    " + b for b in body]

    def s_while(self, env, depth, loop_depth, returns, top):
        k = f"k{next(self.counter)}"
        inner = dict(env)
        inner["#ints"] = env.get("#ints", []) + [k]
        inner["#fixed"] = env.get("#fixed", ()) + (k,)
        test = f"{k} < {self.rng.randint(0, 3)}"
        if self.rng.random() < 0.3:
            test += f" and {self.cond(env).replace('>', '<')}"
        body = self.block(inner, depth + 1, loop_depth + 1, returns)
        increment = [f"{k} = {k} + 1"]
        where = self.rng.randint(0, len(body)) if not any(
            b.lstrip().startswith(("break", "continue", "if", "for", "while", "return")) for b in body) else 0
        body = body[:where] + increment + body[where:]
        return [f"{k} = 0", f"while {test}:"] + ["    " + b for b in body]

    def s_rows(self, env, depth, loop_depth, returns, top):
        rng = self.rng
        arrays = [n for n, s in env.items() if not n.startswith("#") and len(s) >= 1]
        if not arrays:
            return self.s_assign(env, depth, loop_depth, returns, top)
        seq = rng.choice(arrays)
        shape = env[seq]
        item = f"r{next(self.counter)}"
        inner = dict(env)
        inner[item] = shape[1:]
        kind = rng.choice(["plain", "enumerate", "zip"])
        if kind == "plain":
            head = f"for {item} in {seq}:"
        elif kind == "enumerate":
            index = f"j{next(self.counter)}"
            inner["#ints"] = env.get("#ints", []) + [index]
            head = f"for {index}, {item} in enumerate({seq}):"
        else:
            partners = [n for n, s in env.items() if not n.startswith("#") and len(s) >= 1
                        and s[1:] in self.target_shapes()]
            other = rng.choice(partners)
            cut = rng.choice(["", "[1:]", "[:1]", "[::-1]", "[:-1]"])
            second = f"q{next(self.counter)}"
            inner[second] = env[other][1:]
            first, pair = (item, second) if rng.random() < 0.5 else (second, item)
            seqs = (seq, f"{other}{cut}") if first == item else (f"{other}{cut}", seq)
            head = f"for {first}, {pair} in zip({seqs[0]}, {seqs[1]}):"
        body = self.block(inner, depth + 1, loop_depth + 1, returns)
        return [head] + ["    " + b for b in body]

    def s_break(self, env, depth, loop_depth, returns, top):
        return [f"if {self.cond(env)}:", "    break"]

    def s_continue(self, env, depth, loop_depth, returns, top):
        return [f"if {self.cond(env)}:", "    continue"]

    def s_return(self, env, depth, loop_depth, returns, top):
        return [f"if {self.cond(env)}:", f"    return {self.returned(env, returns)}"]

    def returned(self, env, result):
        """A value of a helper's result: one shape, or a pair ``(shape, shape, "pair")``."""
        if len(result) == 3 and result[2] == "pair":
            return f"{self.expr(env, result[0])}, {self.expr(env, result[1])}"
        return self.expr(env, result)

    def s_call(self, env, depth, loop_depth, returns, top):
        name, params, result = self.rng.choice(self.helpers)
        args = []
        for p, shape, default in params:
            if default is not None and self.rng.random() < 0.5:
                break  # leave the rest to their defaults
            arg = self.expr(env, shape, 1)
            args.append(f"{p}={arg}" if default is not None and self.rng.random() < 0.5 else arg)
        call = f"{name}({', '.join(args)})"
        if len(result) == 3 and result[2] == "pair":
            return self.unpacked(env, call, result, top)
        same = [n for n, s in env.items() if s == result and not n.startswith("#")
                and n not in env.get("#fixed", ())]
        target = self.fresh_local(env, top) if top and self.rng.random() < 0.5 else None
        target = target or (self.rng.choice(same) if same else self.fresh_local(env, top))
        if target is None:
            return self.s_assign(env, depth, loop_depth, returns, top)
        env[target] = result
        return [f"{target} = {call}"]

    def unpacked(self, env, call, result, top):
        """``a, b = pair(...)``, or the tuple kept in a name and indexed."""
        targets = []
        for shape in result[:2]:
            same = [n for n, s in env.items() if s == shape and not n.startswith("#")
                    and n not in env.get("#fixed", ()) and n not in targets]
            free = [n for n in POOL if n not in env and n not in targets] if top else []
            if not same and not free:
                return [f"acc_{next(self.counter)} = np.sum({call}[0])"]
            targets.append(self.rng.choice(free if free and (not same or self.rng.random() < 0.5) else same))
        for t, shape in zip(targets, result[:2]):
            env[t] = shape
        if self.rng.random() < 0.3:
            pair = f"pair{next(self.counter)}"
            return [f"{pair} = {call}", f"{targets[0]} = {pair}[0]", f"{targets[1]} = {pair}[1]"]
        return [f"{targets[0]}, {targets[1]} = {call}"]

    def fresh_local(self, env, top):
        if not top:
            return None
        free = [n for n in POOL if n not in env]
        return self.rng.choice(free) if free else None

    def s_alias(self, env, depth, loop_depth, returns, top):
        rng = self.rng
        arrays = [n for n, s in env.items() if not n.startswith("#") and len(s) >= 1]
        if not arrays:
            return self.s_assign(env, depth, loop_depth, returns, top)
        source = rng.choice(arrays)
        shape = env[source]
        kind = rng.choice(["", "[:]", ".copy()", ".T", "[0]", "[0]"] if len(shape) == 2
                          else ["", "[:]", ".copy()", "[1:]"])
        alias = f"a{next(self.counter)}"
        new_shape = {"": shape, "[:]": shape, ".copy()": shape, ".T": shape[::-1],
                     "[0]": shape[1:], "[1:]": (shape[0] - 1,)}[kind]
        op = rng.choice(["+=", "-=", "*="])
        inner = dict(env)
        value = self.expr(inner, rng.choice([s for s in self.loose_shapes(new_shape)] or [()]), 1) \
            if new_shape in self.target_shapes() else self.expr(inner, (), 1)
        if op == "*=":
            value = f"np.tanh({value})"
        lines = [f"{alias} = {source}{kind}", f"{alias} {op} {value}"]
        if new_shape in self.target_shapes() and top:
            env[alias] = new_shape
        else:
            lines.append(f"{source} = {source} + np.sum({alias}) * 0.1")
        return lines

    def s_rebind(self, env, depth, loop_depth, returns, top):
        name = f"b{next(self.counter)}"
        first = f"{name} = {self.expr(env, ())}"
        second = f"{name} = {self.expr(env, self.xshape)} * {name}"
        env[name] = self.xshape
        return [first, second]

    def s_write(self, env, depth, loop_depth, returns, top):
        rng = self.rng
        arrays = [n for n, s in env.items() if not n.startswith("#") and len(s) >= 1]
        shape = rng.choice([env[n] for n in arrays] or [self.xshape])
        buf = f"buf{next(self.counter)}"
        make = rng.choice([f"np.zeros({shape})", f"np.ones({shape}) * 0.5"]
                          + [f"{n}.copy()" for n in arrays if env[n] == shape])
        lines = [f"{buf} = {make}"]
        for _ in range(rng.randint(1, 3)):
            ints = env.get("#ints", [])
            index = rng.choice([str(rng.randrange(shape[0])), "1:", ":-1", "::2"]
                               + [f"{i} % {shape[0]}" for i in ints])
            part = shape[1:] if ":" not in index else None
            if part is None:
                length = len(range(shape[0])[slice(*[int(p) if p else None for p in index.split(":")])])
                part = (length,) + shape[1:]
            value = self.expr(env, part, 1) if part in self.target_shapes() else \
                self.expr(env, (), 1)
            lines.append(f"{buf}[{index}] {rng.choice(['=', '+=', '-=', '*='])} {value}")
        target, tshape = self.target(env, top)
        if tshape == ():
            lines.append(f"{target} = {target} + np.sum({buf})")
        else:
            lines.append(f"{target} = {target} + np.sum({buf}) * 0.5")
        env[target] = tshape
        return lines

    def s_list(self, env, depth, loop_depth, returns, top):
        rng = self.rng
        shape = rng.choice([s for s in self.target_shapes() if s])
        items, n = f"items{next(self.counter)}", rng.randint(1, 3)
        i = f"i{next(self.counter)}"
        inner = dict(env)
        inner["#ints"] = env.get("#ints", []) + [i]
        value = self.expr(inner, shape)
        target = self.fresh_local(env, top) or f"acc{next(self.counter)}"
        env[target] = ()
        kind = rng.choice(["append", "plus", "display", "loop"])
        if kind == "append":
            build = [f"{items} = []", f"for {i} in range({n}):", f"    {items}.append({value})"]
        elif kind == "plus":
            build = [f"{items} = []", f"for {i} in range({n}):", f"    {items} = {items} + [{value}]"]
        elif kind == "display":
            build = [f"{items} = [{self.expr(env, shape)}, {self.expr(env, shape)}]"]
        else:
            item = f"r{next(self.counter)}"
            first = self.expr(env, shape)
            return [f"{target} = 0.0", f"for {item} in [{first}, {self.expr(env, shape)} * 2.0]:",
                    f"    {target} = {target} + np.sum(np.sin({item}))"]
        return build + [f"{target} = np.sum(np.stack({items}) ** 2)"]

    # -- functions -------------------------------------------------------------------

    def helper(self):
        rng = self.rng
        name = f"h{len(self.helpers) + 1}"
        names = ["x", "p", "w", "q", "u"]
        if "shadow" in self.on and "constants" in self.on:
            names += ["C", "s"]
        params, env = [], {"#arrays": bool(self.xshape)}
        for p in rng.sample(names, rng.randint(1, 3)):
            shape = rng.choice(self.target_shapes())
            params.append((p, shape, None))
            env[p] = shape
        if "constants" in self.on and rng.random() < 0.4:
            params.append(("scale", (), rng.choice(["SCALE", "C", "0.5", "s"])))
            env["scale"] = ()
        result = rng.choice(self.target_shapes())
        if "containers" in self.on and rng.random() < 0.4:
            result = (result, rng.choice(self.target_shapes()), "pair")  # returns a tuple
        returns = result if "returns" in self.on else None
        body = self.block(env, 1, 0, returns, count=rng.randint(1, 3), top=True)
        body.append(f"return {self.returned(env, result)}")
        signature = ", ".join(p if d is None else f"{p}={d}" for p, _, d in params)
        self.helpers.append((name, params, result))
        return [f"def {name}({signature}):"] + ["    " + b for b in body] + ["", ""]

    def function(self):
        env = {"x": self.shapes[0], "y": self.shapes[1], "s": (), "#arrays": bool(self.xshape)}
        returns = () if "returns" in self.on else None
        body = self.block(env, 1, 0, returns, count=self.rng.randint(2, 4), top=True)
        names = [n for n in env if not n.startswith("#")]
        terms = [self.expr(env, ())] + [f"np.sum(np.tanh({n})) * 0.3"
                                         for n in self.rng.sample(names, min(2, len(names)))]
        body.append(f"return {' + '.join(terms)}")
        return ["def f(x, y, s):"] + ["    " + b for b in body]


# --- running one program --------------------------------------------------------

_loaded = itertools.count()


def load(text, name="f"):
    """Write ``text`` to a fresh module file, import it, return its ``name`` (s2s reads the
    source from that file)."""
    warnings.simplefilter("ignore", SyntaxWarning)
    folder = tempfile.mkdtemp(prefix="s2s_fuzz_")
    path = os.path.join(folder, f"prog{next(_loaded)}.py")
    with open(path, "w") as fh:
        fh.write(text)
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def arguments(shapes, rng: np.random.Generator):
    """x, y and s for these shapes, off round values (a branch threshold at 0.0)."""
    def draw(shape):
        value = rng.uniform(-1.2, 1.2, shape) + 0.01234
        return float(value) if shape == () else value
    return draw(shapes[0]), draw(shapes[1]), float(rng.uniform(-1.0, 1.0)) + 0.00713


def smooth_here(f, args, argnums, eps=1e-5):
    """One-sided differences agree in every coordinate: no kink (a branch threshold, a tie
    in a max) sits at this point, where central differences would average two slopes."""
    base = f(*args)
    for n in argnums:
        value = np.asarray(args[n], dtype=float)
        for i in np.ndindex(value.shape):
            step = np.zeros(value.shape)
            step[i] = eps
            up, down = list(args), list(args)
            up[n] = value + step if value.shape else float(value) + eps
            down[n] = value - step if value.shape else float(value) - eps
            ahead, behind = (f(*up) - base) / eps, (base - f(*down)) / eps
            if not np.isclose(ahead, behind, rtol=1e-3, atol=1e-3):
                return False
    return True


def gradient_smooth_here(f, args, argnums, eps=1e-4):
    """`smooth_here` for the (central-difference) gradient, along every coordinate."""
    for n in argnums:
        def grad_n(*a, n=n):
            return np.sum(numerical_grad(f, a, n, eps=1e-6) * np.linspace(0.7, 1.3, np.size(a[n])
                                                                         ).reshape(np.shape(a[n])))
        if not smooth_here(grad_n, args, [n], eps):
            return False
    return True


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout("no answer in 120 s")


def reason(exc: BaseException) -> str:
    """A refusal or crash message with names and numbers masked, to tally by kind."""
    text = getattr(exc, "message", None) or str(exc)
    text = text.splitlines()[0] if text else type(exc).__name__
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)
    return text[:120]


def where(exc: BaseException) -> str:
    """The innermost frame of the traceback: s2s's file and function, or generated code."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if "/s2s/" in frame.filename or frame.filename.startswith("<"):
            filename = re.sub(r" [0-9a-f]{8,}>$", ">", os.path.basename(frame.filename))
            return f"{filename}:{frame.name}"
    return frames[-1].name if frames else "?"


def check(mode, f, args, argnums, seed=0):
    """(outcome, detail) of one mode on one program (see the module docstring)."""
    try:
        check_mode(mode, f, args, argnums, seed=seed)
        return "ok", ""
    except s2s.S2SError as exc:
        return "refused", reason(exc)
    except AssertionError as exc:
        def on_copies(*a):
            return f(*[x.copy() if isinstance(x, np.ndarray) else x for x in a])
        smooth = smooth_here(on_copies, args, argnums) and (
            mode != "hvp" or gradient_smooth_here(on_copies, args, argnums))
        if not smooth:
            return "kink", ""
        return "wrong", " ".join(str(exc).split())[:300]
    except Timeout as exc:
        return "crash", f"Timeout: {exc}"
    except Exception as exc:
        return "crash", f"{type(exc).__name__} in {where(exc)}: {reason(exc)}"


def make(seed, index, features):
    """Program ``index`` of ``seed`` and its arguments."""
    rng = random.Random(f"{seed}/{index}")
    program = Program(rng, features)
    args = arguments(program.shapes, np.random.default_rng([seed, index]))
    return program, args


def valid(f, args) -> bool:
    """The program runs on (copies of) these arguments and its value is a sensible scalar."""
    def copies():
        return [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        with np.errstate(all="ignore"):
            value, again = f(*copies()), f(*copies())
    except Exception:
        return False
    return isinstance(value, (float, np.floating)) and np.isfinite(value) and abs(value) <= 1e4 \
        and value == again


def argnums(mode, index):
    """All of x, y, s; for hvp (a gradient generated per argument) one of them in turn."""
    return (index % 3,) if mode == "hvp" else (0, 1, 2)


def run_one(seed, index, features, modes, timeout=120):
    """(program, args, {mode: (outcome, detail)}), or (program, args, None) when invalid."""
    program, args = make(seed, index, features)
    f = load(program.text)
    if not valid(f, args):
        return program, args, None
    results = {}
    signal.signal(signal.SIGALRM, _alarm)
    for mode in modes:
        signal.alarm(timeout)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[mode] = check(mode, f, args, argnums(mode, index), seed=index)
        finally:
            signal.alarm(0)
    return program, args, results


# --- shrinking a failing program ---------------------------------------------------------

def _indent(line):
    return len(line) - len(line.lstrip())


def _block_end(lines, i):
    """The index after line ``i`` and the lines indented under it (an else goes with its if)."""
    j = i + 1
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > _indent(lines[i])
                              or (lines[j].strip() == "else:" and _indent(lines[j]) == _indent(lines[i])
                                  and lines[i].lstrip().startswith("if "))):
        j += 1
    return j


def _candidates(lines):
    """Smaller programs: a statement (with its block) removed, or a block's header dropped
    and its body dedented."""
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if not line.strip() or line.startswith(("import", "def f(")):
            continue
        end = _block_end(lines, i)
        yield lines[:i] + lines[end:]
        if line.rstrip().endswith(":") and not line.startswith("def "):
            body = [b[4:] if _indent(b) > _indent(line) else None for b in lines[i + 1:end]]
            if None not in body:
                yield lines[:i] + body + lines[end:]
            else:  # if/else: keep the else branch alone
                k = body.index(None)
                yield lines[:i] + [b[4:] for b in lines[i + k + 2:end]] + lines[end:]


def shrink(text, args, mode, nums, outcome, seed=0, budget=400):
    """The smallest program (by statements removed) that still gives ``outcome`` in ``mode``."""
    lines = text.splitlines()
    tries, changed = 0, True
    while changed and tries < budget:
        changed = False
        for candidate in _candidates(lines):
            tries += 1
            try:
                f = load("\n".join(candidate) + "\n")
            except Exception:
                continue
            if not valid(f, args):
                continue
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got, _ = check(mode, f, args, nums, seed)
            if got == outcome:
                lines, changed = candidate, True
                break
    return "\n".join(lines) + "\n"


# --- regression tests for what fails ----------------------------------------------------

def literal(value) -> str:
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r})"
    return repr(value)


def regression_test(seed, index, mode, program, args, outcome, detail) -> str:
    """A self-contained pytest file replaying one failing mode of one program."""
    name = f"test_fuzz_{seed}_{index}_{mode}"
    body = program.text.replace("import numpy as np\n", "", 1).strip("\n")
    return (f'"""Found by `python -m tests.fuzz --seed {seed}` (program {index}): {mode} {outcome}.\n\n'
            + textwrap.fill(detail, 88) + '\n"""\nimport numpy as np\n\nfrom s2s.testing import check_mode\n\n'
            + body + "\n\n\nARGS = (" + ", ".join(literal(a) for a in args) + ",)\n\n\n"
            f"def {name}():\n"
            f"    check_mode({mode!r}, f, ARGS, {argnums(mode, index)}, seed={index})\n")


# --- campaigns --------------------------------------------------------------------------

def campaign(n, seed=0, features=DEFAULT_FEATURES, modes=MODES, out=None, quiet=False,
             per_cause=3, start=0, minutes=None):
    """Check ``n`` valid programs (or as many as ``minutes`` allow, or until SIGTERM);
    returns the tallies (and writes failures to ``out``)."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    os.environ["S2S_CACHE"] = "0"
    tally = collections.Counter()  # (mode, outcome)
    programs = collections.Counter()  # worst outcome of each program
    reasons = collections.Counter()  # refusal reasons, over modes
    causes = collections.Counter()  # wrong/crash details, masked
    saved = collections.Counter()
    examples: dict[str, tuple] = {}
    rank = ["ok", "kink", "refused", "crash", "wrong"]
    index, checked, invalid = start, 0, 0
    began = time.time()
    while checked < n and not stop and (minutes is None or time.time() - began < 60 * minutes):
        number, index = index, index + 1
        program, args, results = run_one(seed, number, features, modes)
        if results is None:
            invalid += 1
            continue
        checked += 1
        worst = "ok"
        # forward mode computing another primal value: the program writes through an alias
        # (F1 in the findings), whatever else fails in it
        aliased = any("jvp: primal value" in detail for _, detail in results.values())
        for mode, (outcome, detail) in results.items():
            tally[mode, outcome] += 1
            worst = max(worst, outcome, key=rank.index)
            if outcome == "refused":
                reasons[detail] += 1
            if outcome in ("wrong", "crash"):
                cause = ("(jvp primal differs) " if aliased else "") + f"{mode} {outcome}: " + (
                    reason_of_wrong(detail) if outcome == "wrong" else detail)
                causes[cause] += 1
                examples.setdefault(cause, (number, mode))
                if out and saved[cause] < per_cause:
                    saved[cause] += 1
                    os.makedirs(out, exist_ok=True)
                    with open(os.path.join(out, f"test_fuzz_{seed}_{number}_{mode}.py"), "w") as fh:
                        fh.write(regression_test(seed, number, mode, program, args, outcome, detail))
            if outcome in ("wrong", "crash") and not quiet:
                print(f"[{number}] {mode} {outcome}: {detail[:200]}", flush=True)
        programs[worst] += 1
        if not quiet and checked % 100 == 0:
            print(f"... {checked} programs, {time.time() - began:.0f} s, {dict(programs)}", flush=True)
    return dict(tally=tally, programs=programs, reasons=reasons, causes=causes, examples=examples,
                features=features,
                invalid=invalid, checked=checked, next_index=index, seconds=time.time() - began)


def reason_of_wrong(detail: str) -> str:
    """``grad: d/d arg 1`` of a wrong result, without the numbers."""
    found = re.search(r"((grad|jvp|hvp): .*?) (Mismatch|\(shapes)", detail)
    return found.group(1) if found else detail[:80]


def summary(result, seed, modes) -> str:
    first = result["next_index"] - result["checked"] - result["invalid"]
    lines = [f"{result['checked']} programs (seed {seed}, programs {first}..{result['next_index'] - 1}, "
             f"features {','.join(sorted(result['features']))}; {result['invalid']} invalid draws skipped) in "
             f"{result['seconds']:.0f} s",
             "programs (worst mode): " + ", ".join(f"{k} {v}" for k, v in result["programs"].most_common())]
    for mode in modes:
        counts = {o: c for (m, o), c in result["tally"].items() if m == mode}
        lines.append(f"  {mode}: " + ", ".join(f"{o} {c}" for o, c in sorted(counts.items(), key=lambda kv: -kv[1])))
    if result["reasons"]:
        lines.append("refusal reasons (over modes), by count:")
        lines += [f"  {c:6d}  {r}" for r, c in result["reasons"].most_common()]
    if result["causes"]:
        lines.append("wrong and crash, by cause (first program, mode):")
        lines += [f"  {c:6d}  {k}   [{result['examples'][k][0]} {result['examples'][k][1]}]"
                  for k, c in result["causes"].most_common()]
    return "\n".join(lines)


def parse_features(spec: str | None) -> frozenset:
    """``+writes,-zip`` relative to the defaults, ``all`` (``all,+stepping`` relative to it),
    or a plain list ``loops,helpers``."""
    if not spec:
        return DEFAULT_FEATURES
    items = [s.strip() for s in spec.split(",") if s.strip()]
    everything = items[0] == "all"  # (the function and speed features change every program's
    items = items[1:] if everything else items  # draws: named only)
    relative = everything or all(s[0] in "+-" for s in items)
    chosen = set(FEATURES) - NAMED_ONLY if everything else set(DEFAULT_FEATURES) if relative else set()
    for item in items:
        name = item.lstrip("+-")
        if name not in FEATURES:
            raise SystemExit(f"unknown feature {name!r}; one of {', '.join(FEATURES)}")
        (chosen.discard if item.startswith("-") else chosen.add)(name)
    return frozenset(chosen)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="valid programs to check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first program index")
    parser.add_argument("--out", help="folder for regression tests of wrong and crashing programs")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--features", help="+name,-name relative to the defaults, or 'all'; "
                        + "; ".join(f"{k}: {v}" for k, v in FEATURES.items()))
    parser.add_argument("--show", type=int, help="print program --show of --seed and exit")
    parser.add_argument("--minutes", type=float, help="stop after this long (SIGTERM stops too)")
    parser.add_argument("--shrink", type=int, metavar="I",
                        help="shrink program I of --seed that fails in --modes (one mode) and print it")
    parser.add_argument("--quiet", action="store_true")
    opts = parser.parse_args(argv)
    features = parse_features(opts.features)
    if opts.show is not None:
        program, args = make(opts.seed, opts.show, features)
        print(program.text)
        print("# args:", ", ".join(literal(a) for a in args))
        return 0
    modes = [m.strip() for m in opts.modes.split(",")]
    if opts.shrink is not None:
        program, args, results = run_one(opts.seed, opts.shrink, features, modes)
        mode, (outcome, detail) = next(((m, r) for m, r in results.items() if r[0] != "ok"),
                                       (modes[0], results[modes[0]]))
        print(f"# {mode} {outcome}: {detail}")
        if outcome == "ok":
            return 0
        print(shrink(program.text, args, mode, argnums(mode, opts.shrink), outcome, opts.shrink))
        print("# args:", ", ".join(literal(a) for a in args))
        return 0
    result = campaign(opts.n, opts.seed, features, modes, opts.out, opts.quiet, start=opts.start,
                      minutes=opts.minutes)
    print(summary(result, opts.seed, modes))
    return 1 if any(o in ("wrong", "crash") for (_, o) in result["tally"]) else 0


if __name__ == "__main__":
    sys.exit(main())
