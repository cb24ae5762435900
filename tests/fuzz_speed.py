"""Loops shaped like the ones the backward sweep's speed passes rewrite (issue 14), in the
random programs of `tests.fuzz`: scalar RK-style steps with loop-invariant subexpressions
(hoisting), loops whose saved values could be recomputed from the carried state while an
array they read is written in place (rematerialisation, fewer saves), and products
accumulated across a range loop, ``G += np.outer(a, X[t])`` / ``q = q + W.T @ g``, with a
factor that is a row of an array the loop writes (batched accumulation). Mixed into
`tests.fuzz.Program`; drawn only when switched on (not in ``--features all``, so the
programs of the other features stay the same: ``--features all,+stepping,...``).
"""
from __future__ import annotations

SPEED_FEATURES = {
    "stepping": "RK-style steps of a scalar or array state in range loops, with loop-invariant "
                "subexpressions (of parameters, module constants) inside the loop",
    "remat": "loops whose intermediate values depend only on the carried state and invariants, "
             "with an array they read written in place later in the same trip",
    "accumulate": "G += np.outer(a, X[t]), q = q + W.T @ g, W @ X[t] in range loops, X a "
                  "local array whose rows the loop writes (before or after reading them)",
}


class SpeedStatements:
    """Program methods for `SPEED_FEATURES` (``self`` is a `tests.fuzz.Program`)."""

    def speed_kinds(self, env, top) -> list[str]:
        kinds = []
        if "stepping" in self.on and top:
            kinds += ["stepping"] * 2
        if "remat" in self.on and top and self.xshape:
            kinds += ["remat"] * 2
        if "accumulate" in self.on and top and self.xshape:
            kinds += ["accumulate"] * 2
        return kinds

    def invariant(self, env, shape):
        """An expression nothing in the loop changes (names bound before it)."""
        return self.expr({n: s for n, s in env.items() if not n.startswith("#")}, shape, 1)

    def s_stepping(self, env, depth, loop_depth, returns, top):
        """``z = z + h * (k1 + 2 k2 + ...)`` with stages reading invariants like ``a * 0.5``."""
        rng, k = self.rng, next(self.counter)
        shape = rng.choice([()] * 2 + ([self.xshape] if self.xshape else []))
        z, a, h = f"z{k}", f"a{k}", f"dt{k}"
        lines = [f"{z} = {self.invariant(env, shape)}", f"{a} = {self.invariant(env, ())}",
                 f"{h} = {rng.choice(['0.1', '0.05', f'np.tanh({self.invariant(env, ())}) * 0.05 + 0.1'])}"]
        inv = rng.choice([f"{a} * {a}", f"np.sin({a})", f"0.5 * {h}", f"{a} * {h} * 0.5",
                          f"np.tanh({a}) * {h}"])
        if shape and rng.random() < 0.5:
            inv = f"{inv} * {self.invariant(env, rng.choice(self.loose_shapes(shape)))}"
        stages, previous = [], z
        for j in range(rng.randint(1, 4)):
            zj, kj = f"{z}s{j}", f"k{k}s{j}"
            body = rng.choice([f"{a} * {zj} - {inv} * {zj} * {zj}", f"np.sin({zj}) * ({inv}) - {a} * {zj}",
                               f"({inv}) * np.tanh({zj}) + {zj} * 0.1"])
            stages += [f"{zj} = {z} + {rng.choice(['0.5', '1.0'])} * {h} * {previous}" if j else f"{zj} = {z}",
                       f"{kj} = {body}"]
            previous = kj
        ks = [f"k{k}s{j}" for j in range(len(stages) // 2)]
        combine = " + ".join(f"{w} * {kj}" for w, kj in zip(["1.0", "2.0", "2.0", "1.0"], ks))
        stages.append(f"{z} = {z} + {h} / {float(2 * len(ks))} * ({combine})")
        if rng.random() < 0.3:
            stages.append(f"{z} = np.tanh({z})")  # bounded over the trips
        lines += [f"for i{k} in range({rng.randint(1, 4)}):"] + ["    " + s for s in stages]
        return self.finish(env, top, z, lines)

    def s_remat(self, env, depth, loop_depth, returns, top):
        """``t = f(state, invariants)`` then ``state`` from ``t``, with a buffer ``t`` read,
        written in place later in the trip (recomputing ``t`` after that reads the new value)."""
        rng, k = self.rng, next(self.counter)
        shape = self.xshape
        state, buf, t = f"st{k}", f"rb{k}", f"t{k}"
        lines = [f"{state} = {self.invariant(env, shape)}", f"{buf} = {self.invariant(env, shape)} * 1.0"]
        w = self.invariant(env, rng.choice(self.loose_shapes(shape)))
        index = rng.choice(["[0]", "[-1]", "[1:]", "[i%d %% %d]" % (k, shape[0])])
        reads = rng.choice([f"np.sum({buf}{index})", buf] + ([f"{buf}{index}"] if len(shape) == 2 else []))
        body = [f"{t} = np.tanh({state} * {w} + {reads} * 0.3)",
                f"u{k} = {t} * {t} + np.sin({state}) * 0.2"]
        write = rng.choice([f"{buf}{index} += np.sum({t}) * 0.1", f"{buf}{index} *= np.tanh({t}{index})",
                            f"{buf}{index} = {t}{index} * 0.5"])
        body.append(write)
        body.append(f"{state} = {state} * 0.5 + u{k} + {buf} * 0.1")
        if rng.random() < 0.3:
            body.insert(2, f"{t} = {t} + {buf} * 0.2")  # t rebound in the trip
        lines += [f"for i{k} in range({rng.randint(1, 3)}):"] + ["    " + b for b in body]
        return self.finish(env, top, state, lines)

    def s_accumulate(self, env, depth, loop_depth, returns, top):
        """A recurrence ``h = tanh(W @ X[t] + ...)`` over the rows of a local array ``X``
        that the loop writes, with products accumulated across the trips."""
        rng, k, x = self.rng, next(self.counter), self.xshape
        n = rng.randint(1, 3)
        rows, cols = (x[0], x[1]) if len(x) == 2 else (x[0], x[0])
        W, X, h, G, q = f"W{k}", f"X{k}", f"h{k}", f"G{k}", f"q{k}"
        if len(x) == 2:
            lines = [f"{W} = {self.invariant(env, x)}"]
        else:
            lines = [f"{W} = np.outer({self.invariant(env, x)}, {self.invariant(env, x)}) * 0.3"]
        row = self.invariant(env, (cols,)) if (cols,) in self.target_shapes() else f"np.ones({cols}) * 0.5"
        lines += [f"{X} = np.zeros(({n + 1}, {cols}))", f"{X}[0] = {row}",
                  f"{h} = np.zeros({rows})", f"{G} = np.zeros(({rows}, {cols}))", f"{q} = np.zeros({cols})"]
        t = f"i{k}"
        body = [f"{h} = np.tanh({W} @ {X}[{t}] + {h} * 0.5)"]
        written = rng.choice([f"{X}[{t} + 1] = np.tanh({W}.T @ {h})",
                              f"{X}[{t} + 1] = {X}[{t}] * 0.5 + {W}.T @ {h} * 0.3",
                              f"{X}[{t}] += {W}.T @ {h} * 0.2"])  # (the row just read)
        accumulate = rng.choice([f"{G} += np.outer({h}, {X}[{t}])", f"{G} = {G} + np.outer({h}, {X}[{t}])",
                                 f"{G} += {h}[:, None] * {X}[{t}]"])
        body += rng.sample([written, accumulate], 2)
        body.append(rng.choice([f"{q} = {q} + {W}.T @ {h}", f"{q} += {W}.T @ np.sin({h})"]))
        lines += [f"for {t} in range({n}):"] + ["    " + b for b in body]
        lines.append(f"acc{k} = np.sum({G} * {G}) * 0.1 + np.sum({q} * {X}[{n}]) * 0.2")
        return self.finish(env, top, f"acc{k}", lines)
