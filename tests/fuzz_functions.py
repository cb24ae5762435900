"""Functions as values in the random programs of `tests.fuzz` (issue 12): helpers that take a
function and call it, nested defs and lambdas closing over loop-invariant arrays of ``f``,
and recursive helpers of small depth. Mixed into `tests.fuzz.Program`; each feature draws
from the program's random stream only when it is switched on, so the programs of the other
features stay the same.
"""
from __future__ import annotations

import numpy as np

FUNCTION_FEATURES = {
    "funargs": "helpers taking a function (twice, in a loop, mixed with a second value), given "
               "numpy functions, module helpers, lambdas and nested defs",
    "closures": "nested defs and lambdas in f reading loop-invariant arrays of f, called directly, "
                "in loops, and passed to helpers",
    "recursion": "recursive helpers of small constant depth",
    "objects": "a module-level object holding an array and a number: its methods (one static) "
               "called in f, the object passed to a helper that reads its attributes and calls its "
               "method",
}
NUMPY_FUNCTIONS = ["np.tanh", "np.sin", "np.cos"]


class FunctionStatements:
    """Program methods for `FUNCTION_FEATURES` (``self`` is a `tests.fuzz.Program`)."""

    unaries = takers = recursive = ()  # (the helpers h1, h2 are written before these)
    object_shape = None

    def function_helpers(self) -> list[str]:
        """Module-level lines: unary helpers, helpers taking a function, recursive helpers."""
        rng, lines = self.rng, []
        self.unaries, self.takers, self.recursive = [], [], []
        if "funargs" in self.on:
            for _ in range(rng.randint(1, 2)):
                lines += self.unary_helper()
            for _ in range(rng.randint(1, 2)):
                lines += self.taker_helper()
        if "recursion" in self.on:
            lines += self.recursive_helper()
        if "objects" in self.on:
            lines += self.object_class()
        return lines

    def function_kinds(self, env, top) -> list[str]:
        """Statement kinds (names of ``s_`` methods) the function features add here."""
        kinds = []
        if self.takers:
            kinds += ["pass_function"] * 3
        if "closures" in self.on and top:
            kinds += ["closure"] * 2
        if any(n.startswith("#fn:") for n in env):
            kinds += ["call_closure"] * 2
        if self.recursive:
            kinds += ["recurse"] * 2
        if self.object_shape is not None:
            kinds += ["method"] * 2
        return kinds

    # -- module-level helpers ---------------------------------------------------------

    def unary_helper(self):
        shape = self.rng.choice(self.target_shapes())
        name = f"g{len(self.unaries) + 1}"
        self.unaries.append((name, shape))
        return [f"def {name}(z):", f"    return {self.expr({'z': shape}, shape)}", "", ""]

    def taker_helper(self):
        """``def apply1(g, z, ...)``: calls ``g`` on values of ``z``'s shape."""
        rng = self.rng
        shape = rng.choice(self.target_shapes())
        name = f"apply{len(self.takers) + 1}"
        kind = rng.choice(["twice", "loop", "mix"])
        if kind == "twice":
            body = ["return g(g(z)) * 0.5 + z"]
            params = "g, z"
        elif kind == "loop":
            n = rng.randint(1, 3)
            body = ["t = z", f"for i in range({n}):",
                    f"    t = g(t) * 0.8 + 0.1 * {self.expr({'z': shape, 't': shape}, shape, 1)}",
                    "return t"]
            params = "g, z"
        else:
            body = [f"a = g(z) * {self.expr({'z': shape, 'w': shape}, shape, 1)}",
                    "return a + g(w * 0.5)"]
            params = "g, z, w"
        self.takers.append((name, shape, params.count(",") + 1))
        return [f"def {name}({params}):"] + ["    " + b for b in body] + ["", ""]

    def recursive_helper(self):
        shape = self.rng.choice(self.target_shapes())
        name = "rec1"
        env = {"z": shape}
        self.recursive.append((name, shape))
        return [f"def {name}(z, n):", "    if n == 0:", f"        return {self.expr(env, shape, 1)}",
                f"    return np.sin({name}(z * 0.9, n - 1)) + {self.expr(env, shape, 1)}", "", ""]

    def object_class(self):
        """``class Params`` with ``self.W`` (x's shape), ``self.scale``, a method, a static
        method; ``prm = Params()``; ``use_params(p, z)`` reading the object it is given."""
        rng, x = self.rng, self.xshape
        shape = rng.choice(self.target_shapes())
        self.object_shape = shape
        size = int(np.prod(x)) if x else 1
        W = f"np.linspace(-0.5, 0.6, {size}).reshape({x})" if x else "0.35"
        env = {"z": shape, "self.W": x, "self.scale": ()}
        return ["class Params:", "    def __init__(self):", f"        self.W = {W}",
                f"        self.scale = {rng.choice(['0.7', '1.2', '-0.4'])}", "",
                "    def apply(self, z):", f"        return {self.expr(env, shape)}", "",
                "    @staticmethod", "    def squash(z):", "        return np.tanh(z) * 0.5", "", "",
                "prm = Params()", "", "",
                "def use_params(p, z):",
                f"    return p.apply(z) * p.scale + Params.squash(z) + {self.expr({'z': shape, 'p.W': x}, shape, 1)}",
                "", ""]

    def s_method(self, env, depth, loop_depth, returns, top):
        shape = self.object_shape
        call = self.rng.choice(["prm.apply({})", "use_params(prm, {})", "prm.squash({})"])
        return self.assign_to(env, top, shape, call.format(self.expr(env, shape, 1)))

    # -- statements in f ------------------------------------------------------------------

    def function_value(self, env, shape):
        """An expression naming a function from ``shape`` to ``shape``: a numpy function, a
        module helper, a closure of f, or a lambda (maybe reading an array of f)."""
        rng = self.rng
        options = list(NUMPY_FUNCTIONS)
        options += [n for n, s in self.unaries if s == shape]
        options += [n[4:] for n, s in env.items() if n.startswith("#fn:") and s == shape]
        if rng.random() < 0.3 or not options:
            inner = {k: v for k, v in env.items() if not k.startswith("#") and k != "t"}
            inner["t"] = shape
            return f"lambda t: {self.expr(inner, shape, 1)}"
        return rng.choice(options)

    def assign_to(self, env, top, shape, value):
        same = [n for n, s in env.items() if s == shape and not n.startswith("#")
                and n not in env.get("#fixed", ())]
        target = self.fresh_local(env, top) if top and self.rng.random() < 0.5 else None
        target = target or (self.rng.choice(same) if same else self.fresh_local(env, top))
        if target is None:
            return [f"acc_{next(self.counter)} = np.sum({value})"]
        env[target] = shape
        return [f"{target} = {value}"]

    def s_pass_function(self, env, depth, loop_depth, returns, top):
        name, shape, count = self.rng.choice(self.takers)
        args = [self.function_value(env, shape)] + [self.expr(env, shape, 1) for _ in range(count - 1)]
        return self.assign_to(env, top, shape, f"{name}({', '.join(args)})")

    def s_closure(self, env, depth, loop_depth, returns, top):
        """A loop-invariant array (a fresh name nothing reassigns) and a nested def or lambda
        reading it; later statements call it or pass it to a helper."""
        rng, k = self.rng, next(self.counter)
        shape, kept = rng.choice(self.target_shapes()), rng.choice(self.target_shapes())
        invariant, fn = f"inv{k}", f"c{k}"
        lines = [f"{invariant} = {self.expr(env, kept)}"]
        env[invariant] = kept
        env["#fixed"] = env.get("#fixed", ()) + (invariant,)
        inner = {n: s for n, s in env.items() if not n.startswith("#") and n != "t"}
        inner["t"] = shape
        read = f"t * {invariant}" if kept in self.loose_shapes(shape) else \
            f"t + np.sum({invariant}) * 0.1"
        body = f"np.tanh({read}) + {self.expr(inner, shape, 1)}"
        if rng.random() < 0.4:
            lines.append(f"{fn} = lambda t: {body}")
        else:
            lines += [f"def {fn}(t):", f"    r = {body}", "    return r * 0.5"]
        env[f"#fn:{fn}"] = shape
        return lines

    def s_call_closure(self, env, depth, loop_depth, returns, top):
        fns = [(n[4:], s) for n, s in env.items() if n.startswith("#fn:")]
        fn, shape = self.rng.choice(fns)
        return self.assign_to(env, top, shape, f"{fn}({self.expr(env, shape, 1)})")

    def s_recurse(self, env, depth, loop_depth, returns, top):
        name, shape = self.rng.choice(self.recursive)
        return self.assign_to(env, top, shape, f"{name}({self.expr(env, shape, 1)}, {self.rng.randint(0, 3)})")
