"""Writes through views in the random programs of `tests.fuzz` (issues 9 and 11): a row, a
slice, a column or the transpose of a local buffer (or a copy of that view's name) updated in
place, rows updated in a loop, and helpers that update their parameter in place called on rows
and slices of the caller's buffer (numpy changes the caller's array). Mixed into
`tests.fuzz.Program`; it draws from the program's random stream only when switched on.
"""
from __future__ import annotations

VIEW_FEATURES = {
    "views": "writes through rows, slices, columns and transposes of local buffers (also through "
             "a copy of the view's name, in loops over rows, and by helpers updating their "
             "parameter in place, called on a row or slice of the caller's buffer)",
}


class ViewStatements:
    """Program methods for `VIEW_FEATURES` (``self`` is a `tests.fuzz.Program`)."""

    updaters = ()  # (name, needs an array argument)

    def view_helpers(self) -> list[str]:
        """Module-level helpers that update their parameter ``u`` in place."""
        self.updaters = []
        if "views" not in self.on:
            return []
        lines = []
        for k in range(self.rng.randint(1, 2)):
            name = f"upd{k + 1}"
            rng = self.rng
            kind = rng.choice(["-=", "+=", "*=", "[0] +=", "[-1] ="])
            q = rng.choice(["q", "q * 0.5", "np.tanh(q)", "np.sin(q) * 0.3"])
            if kind == "*=":
                q = f"np.tanh({q})"
            if kind == "[-1] =":
                q = f"{q} * u[0]"
            body = [f"u{kind if kind.startswith('[') else ' ' + kind} {q}"]
            if rng.random() < 0.3:
                body = ["if q > 1.0:", "    return 0.5"] + body  # an early return before the write
            result = rng.choice(["1.0", "np.sum(u) * 0.1", "q * 0.2"])
            lines += [f"def {name}(q, u):"] + ["    " + b for b in body + [f"return {result}"]] + ["", ""]
            self.updaters.append((name, kind.startswith("[")))
        return lines

    def view_kinds(self, env, top) -> list[str]:
        if "views" not in self.on or not self.xshape:
            return []
        return ["view_write", "view_rows"]

    def fresh_buffer(self, env):
        """``buf = <an array of env> * 1.0`` (a local array of the same shape), its name and shape."""
        rng = self.rng
        arrays = [n for n, s in env.items() if not n.startswith("#") and len(s) >= 1]
        buf = f"vbuf{next(self.counter)}"
        if arrays:
            source = rng.choice(arrays)
            shape = env[source]
            make = rng.choice([f"{source} * 1.0", f"{source}.copy()", f"np.tanh({source})"])
        else:
            shape = self.xshape
            make = f"np.ones({shape}) * ({self.expr(env, (), 1)})"
        return buf, shape, [f"{buf} = {make}"]

    def finish(self, env, top, buf, lines, view=None):
        """The buffer (and sometimes the view) read after the writes, into a name of ``env``."""
        target, tshape = self.target(env, top)
        read = f"np.sum({buf}) * 0.5" + (f" + np.sum({view}) * 0.1" if view and self.rng.random() < 0.4 else "")
        lines.append(f"{target} = {target} + {read}" if target in env else f"{target} = {read}")
        tshape = tshape if target in env else ()
        env[target] = tshape
        return lines

    def s_view_write(self, env, depth, loop_depth, returns, top):
        """``v = buf[...]`` (or ``.T``), maybe ``w = v``, then ``w op= e`` or ``w[0] op= e``."""
        rng = self.rng
        buf, shape, lines = self.fresh_buffer(env)
        if len(shape) == 2:
            kinds = {"[0]": shape[1:], "[1]": shape[1:], "[1:]": (shape[0] - 1,) + shape[1:],
                     "[:, 1]": shape[:1], ".T": shape[::-1], "[::2]": ((shape[0] + 1) // 2,) + shape[1:]}
        else:
            kinds = {"": shape, "[:]": shape, "[1:]": (shape[0] - 1,), "[::2]": ((shape[0] + 1) // 2,),
                     "[1:3]": (2,)}
        kind = rng.choice(sorted(kinds))
        vshape = kinds[kind]
        view = f"v{next(self.counter)}"
        lines.append(f"{view} = {buf}{kind}")
        through = view
        if rng.random() < 0.4:
            through = f"w{next(self.counter)}"
            lines.append(f"{through} = {view}")
        if rng.random() < 0.5 and len(vshape) >= 1:
            index, part = rng.choice([("[0]", vshape[1:]), ("[-1]", vshape[1:]), ("[1:]", None)])
            part = part if part is not None else (vshape[0] - 1,) + vshape[1:]
            target = f"{through}{index}"
        else:
            target, part = through, vshape
        value = self.expr(env, part, 1) if part in self.target_shapes() else self.expr(env, (), 1)
        op = rng.choice(["=", "+=", "-=", "*="])
        if op == "*=":
            value = f"np.tanh({value})"
        lines.append(f"{target} {op} {value}" if target != through or op != "=" else
                     f"{target}[...] = {value}")
        return self.finish(env, top, buf, lines, view)

    def s_view_rows(self, env, depth, loop_depth, returns, top):
        """Rows of a buffer updated in place in a loop: directly, or by a helper."""
        rng = self.rng
        buf, shape, lines = self.fresh_buffer(env)
        helpers = [(n, needs) for n, needs in self.updaters if len(shape) == 2 or not needs]
        scalar = self.expr(env, (), 1)
        if rng.random() < 0.5:
            row = f"r{next(self.counter)}"
            head = f"for {row} in {buf}:"
        else:
            i = f"i{next(self.counter)}"
            row = f"{buf}[{i}]"
            head = f"for {i} in range({rng.randint(1, shape[0])}):"
        if helpers and rng.random() < 0.7:
            name, _ = rng.choice(helpers)
            body = f"c{next(self.counter)} = {name}({scalar}, {row})"
        elif len(shape) == 2 or not head.startswith("for r"):
            op = rng.choice(["+=", "-=", "*="])
            body = f"{row} {op} {'np.tanh(' + scalar + ')' if op == '*=' else scalar}"
        else:
            body = f"{buf}[0] += {scalar} * 0.1"
        lines += [head, "    " + body]
        if rng.random() < 0.3:  # a helper on a slice of the buffer too
            if helpers:
                name, _ = rng.choice(helpers)
                lines.append(f"c{next(self.counter)} = {name}({self.expr(env, (), 1)}, {buf}[1:])")
        return self.finish(env, top, buf, lines)
