"""Local arrays carried across the trips of nested loops, in the random programs of
`tests.fuzz`: a buffer made before a ``for`` or ``while`` loop (maybe with a loop of the other
kind inside) whose rows and slices each trip overwrites or updates in place, reading what an
earlier trip (or the same statement: ``buf[1:] += buf[:-1]``, overlapping) wrote, with
breaks, continues and, in helpers, early returns between the writes. Mixed into
`tests.fuzz.Program`; drawn only when switched on (``--features all,+carried``).
"""
from __future__ import annotations

STATE_FEATURES = {
    "carried": "a local array made before nested for/while loops whose trips write its rows and "
               "slices (=, +=, *=, overlapping buf[1:] += buf[:-1]) reading earlier trips' "
               "writes, with breaks and early returns between the writes; helpers returning a "
               "view of their parameter (or a copy, on another path) updated in place by the caller",
}

VIEWS = {"p": lambda s: s, "p[1:]": lambda s: (s[0] - 1,) + s[1:], "p[::-1]": lambda s: s,
         "p[0]": lambda s: s[1:], "p.T": lambda s: s[::-1]}  # returned view -> its shape


class StateStatements:
    """Program methods for `STATE_FEATURES` (``self`` is a `tests.fuzz.Program`)."""

    viewers = ()  # names of helpers returning a view of their parameter, and the view

    def state_helpers(self) -> list[str]:
        """Module-level helpers ``view<k>(q, p)`` returning a view of ``p`` (or a copy)."""
        self.viewers = []
        if "carried" not in self.on or not self.xshape:
            return []
        lines = []
        for k in range(self.rng.randint(1, 2)):
            name, view = f"view{k + 1}", self.rng.choice(sorted(VIEWS))
            body = [f"return {view}"]
            if self.rng.random() < 0.5:
                body = [f"if q > {self.rng.choice(['0.0', '0.5'])}:", f"    return {view} * 1.0"] + body
            lines += [f"def {name}(q, p):"] + ["    " + b for b in body] + ["", ""]
            self.viewers.append((name, view))
        return lines

    def state_kinds(self, env, top) -> list[str]:
        if "carried" not in self.on or not self.xshape or not top:
            return []
        return ["carried"] * 2 + (["through"] if self.viewers else [])

    def s_through(self, env, depth, loop_depth, returns, top):
        """``r = view1(q, buf)`` then ``r op= e`` (or ``r[0] op= e``), then ``buf`` read."""
        rng = self.rng
        shape = rng.choice([s for s in self.target_shapes() if s])
        arrays = [n for n, s in env.items() if s == shape and not n.startswith("#")]
        buf, r = f"tbuf{next(self.counter)}", f"r{next(self.counter)}"
        make = rng.choice([f"np.ones({shape}) * ({self.expr(env, (), 1)})"] + [f"{a} * 1.0" for a in arrays])
        name, view = rng.choice(self.viewers)
        rshape = VIEWS[view](shape)
        lines = [f"{buf} = {make}", f"{r} = {name}({self.expr(env, (), 1)}, {buf})"]
        op = rng.choice(["+=", "-=", "*="])
        if rshape and rng.random() < 0.4:
            target, part = f"{r}[0]", rshape[1:]
        else:
            target, part = r, rshape
        value = self.expr(env, rng.choice(self.loose_shapes(part)), 1) if part in self.target_shapes() \
            else self.expr(env, (), 1)
        lines.append(f"{target} {op} {'np.tanh(' + value + ')' if op == '*=' else value}")
        result, tshape = self.target(env, top)
        read = f"np.sum({buf}) * 0.5 + np.sum({r}) * 0.1"
        lines.append(f"{result} = {result} + {read}" if result in env else f"{result} = {read}")
        env[result] = tshape if result in env else ()
        return lines

    def carried_write(self, env, buf, shape, index):
        """One write into ``buf`` that reads it (a row at ``index``, or a slice)."""
        rng, n = self.rng, shape[0]
        row, rest = shape[1:], (n - 1,) + shape[1:]
        row_value = self.expr(env, row, 1) if row in self.target_shapes() else self.expr(env, (), 1)
        rest_value = self.expr(env, rest, 1) if rest in self.target_shapes() else self.expr(env, (), 1)
        return rng.choice([
            f"{buf}[{index} % {n}] = np.tanh({row_value} + {buf}[({index} + 1) % {n}])",
            f"{buf}[{index} % {n}] += {row_value} * 0.5",
            f"{buf}[{index} % {n}] *= np.tanh({buf}[({index} + {n} - 1) % {n}])",
            f"{buf}[1:] = {buf}[:-1] * 0.5 + {rest_value}",
            f"{buf}[1:] += {buf}[:-1] * 0.5",
            f"{buf}[:-1] -= np.tanh({buf}[1:]) * 0.3",
            f"{buf} *= np.tanh({self.expr(env, (), 1)})",
            f"{buf}[::-1] += {buf} * 0.1",
        ])

    def loop_head(self, env, inner):
        """``for i in range(n):`` or ``k = 0`` / ``while k < n:`` (and its increment, the
        body's first line, before any continue), and the index."""
        rng = self.rng
        if rng.random() < 0.5:
            i = f"i{next(self.counter)}"
            inner["#ints"] = inner.get("#ints", []) + [i]
            return [], f"for {i} in range({rng.randint(0, 3)}):", i, []
        k = f"k{next(self.counter)}"
        inner["#ints"] = inner.get("#ints", []) + [k]
        inner["#fixed"] = inner.get("#fixed", ()) + (k,)
        return [f"{k} = 0"], f"while {k} < {rng.randint(0, 3)}:", k, [f"{k} = {k} + 1"]

    def s_carried(self, env, depth, loop_depth, returns, top):
        """``buf = ...`` then nested loops writing and reading it; a name of ``env`` reads it."""
        rng = self.rng
        shape = rng.choice([s for s in self.target_shapes() if s])
        arrays = [n for n, s in env.items() if s == shape and not n.startswith("#")]
        buf = f"cbuf{next(self.counter)}"
        make = rng.choice([f"np.zeros({shape})", f"np.ones({shape}) * 0.5"]
                          + [f"{a}.copy()" for a in arrays] + [f"np.tanh({a})" for a in arrays])
        inner = dict(env)
        inner[buf] = shape
        setup, head, index, step = self.loop_head(env, inner)
        body = []
        if rng.random() < 0.5:  # a loop of either kind inside
            setup2, head2, index2, step2 = self.loop_head(env, inner)
            body2 = [self.carried_write(inner, buf, shape, f"({index} + {index2})")]
            if rng.random() < 0.4:
                body2 += self.block(dict(inner), depth + 2, loop_depth + 2, returns, count=1)
            body += setup2 + [head2] + ["    " + b for b in step2 + body2]
        else:
            body.append(self.carried_write(inner, buf, shape, index))
        if rng.random() < 0.5:
            acc = [n for n, s in env.items() if s == () and not n.startswith("#")
                   and n not in env.get("#fixed", ())]
            if acc:
                body.append(f"{rng.choice(acc)} += np.sum({buf} * {self.expr(inner, shape, 1)}) * 0.1")
        if rng.random() < 0.4:
            body += self.block(dict(inner), depth + 1, loop_depth + 1, returns, count=1)
        if rng.random() < 0.3:
            body.append(self.carried_write(inner, buf, shape, index))
        lines = [f"{buf} = {make}"] + setup + [head] + ["    " + b for b in step + body]
        target, tshape = self.target(env, top)
        read = f"np.sum({buf} * {buf}) * 0.2" if rng.random() < 0.5 else f"np.sum(np.tanh({buf}))"
        lines.append(f"{target} = {target} + {read}" if target in env else f"{target} = {read}")
        env[target] = tshape if target in env else ()
        return lines
