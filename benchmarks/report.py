"""Tables, failure list and target check, from the results the runner collects."""
from __future__ import annotations

import re

from .impls import LABELS, PEERS

SLOWER_PEERS = ("tangent", "autograd", "jax", "torch")  # s2s should beat these everywhere


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x"


def median(row, impl) -> float | None:
    cell = row["cells"].get(impl)
    return cell["median_s"] if cell and cell["status"] == "ok" else None


def ratio(a, b):
    return a / b if a is not None and b is not None and b > 0 else None


def cell_text(cell) -> str:
    if cell is None:
        return ""
    return {"ok": lambda: fmt_time(cell["median_s"]), "FAILED": lambda: "FAILED",
            "error": lambda: "error",
            "skipped": lambda: "n/a" if cell.get("error", "").startswith("not installed") else "-",
            "too slow": lambda: "too slow"}[cell["status"]]()


def table(header, rows, align=None) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    align = align or ["<"] * 2 + [">"] * (len(header) - 2)

    def line(cells):
        return "  ".join(f"{c!s:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def ratios(row) -> dict:
    s2s = median(row, "s2s")
    out = {"s2s/hand": ratio(s2s, median(row, "hand")), "s2s/primal": ratio(s2s, median(row, "primal"))}
    for peer in PEERS:
        out[f"{peer}/s2s"] = ratio(median(row, peer), s2s)
    return out


def render(out: dict) -> str:
    results = out["results"]
    impl_names = list(results[0]["cells"]) if results else []
    parts = []
    m = out["meta"]
    v = m["versions"]
    parts.append(f"s2s benchmarks ({m['mode']}) - python {m['python']}, {m['cpus']} cpus, "
                 f"threads: {m['threads']}, "
                 + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ", "
                 + "missing: " + (", ".join(k for k, val in v.items() if not val) or "none"))
    parts.append("")
    parts.append("Median time per gradient call (primal: one call of the loss). FAILED = wrong "
                 "gradient, error = could not run, n/a = not installed,\n- = not run on this problem "
                 "(numba: loop problems only), too slow = over "
                 f"{m['settings']['skip_after_s']:g} s per call at a smaller size of the same problem, "
                 "not run again.")
    header = ["problem", "size"] + [LABELS[i] for i in impl_names]
    rows = [[r["problem"], r["size"]] + [cell_text(r["cells"][i]) for i in impl_names] for r in results]
    parts.append(table(header, rows))

    parts.append("")
    parts.append("Ratios of medians. s2s/hand and s2s/primal: lower is better; "
                 "peer/s2s: how many times slower the peer is than s2s (higher is better for s2s).")
    keys = ["s2s/hand", "s2s/primal"] + [f"{p}/s2s" for p in PEERS if p in impl_names]
    header = ["problem", "size"] + [k.replace("jax_jit", "jit").replace("jax/", "jax.grad/") for k in keys]
    rows = []
    for r in results:
        rs = ratios(r)
        r["ratios"] = rs
        rows.append([r["problem"], r["size"]] + [fmt_ratio(rs[k]) for k in keys])
    parts.append(table(header, rows))

    numba_rows = [r for r in results if "s2s_numba" in r["cells"]
                  and r["cells"]["s2s_numba"]["status"] != "skipped"]
    if numba_rows:
        parts.append("")
        parts.append("numba target: s2s numba/hand numba: the generated gradient against the "
                     "hand-written one, both under numba.njit (lower is better);\njit/s2s numba: how "
                     "many times slower jax.jit(jax.grad) is (compile excluded); s2s/s2s numba: the "
                     "speed-up over the numpy target;\nfirst call: generation plus numba's compile "
                     "(numba's on-disk cache serves later runs).")
        rows = []
        for r in numba_rows:
            nb = median(r, "s2s_numba")
            cell = r["cells"]["s2s_numba"]
            rows.append([r["problem"], r["size"], fmt_ratio(ratio(nb, median(r, "hand_numba"))),
                         fmt_ratio(ratio(median(r, "jax_jit"), nb)),
                         fmt_ratio(ratio(median(r, "s2s"), nb)),
                         fmt_time(cell["first_call_s"]) if "first_call_s" in cell else "-"])
        parts.append(table(["problem", "size", "s2s numba/hand numba", "jit/s2s numba",
                            "s2s/s2s numba", "first call"], rows))

    gens = [r for r in results if "generation" in r]
    if gens:
        parts.append("")
        parts.append("s2s generation: what the first use costs, from scratch, S2S_CACHE=0 (median of "
                     f"{m['settings']['repeats']}):\ns2s.grad(f) itself, plus the first call beyond a "
                     "warm call (it specializes on argument kinds and shapes);\njax.jit compile time of "
                     "the same size for comparison.")
        rows = []
        for r in gens:
            g = r["generation"]
            jit = r["cells"].get("jax_jit", {})
            jit_text = fmt_time(jit["compile_s"]) if "compile_s" in jit else "-"
            if "error" in g:
                rows.append([r["problem"], r["size"], "error", "", "", "-", jit_text])
                continue
            rows.append([r["problem"], r["size"], fmt_time(g["generation_s"]), fmt_time(g["grad_s"]),
                         fmt_time(g["first_call_extra_s"]), g["source_lines"],
                         jit_text + (f" ({jit['variant']})" if jit.get("variant") else "")])
        parts.append(table(["problem", "size", "generation", "s2s.grad()", "1st call extra",
                            "generated lines", "jax.jit compile"], rows))

    trip = out.get("tripcount")
    if trip:
        parts.append("")
        parts.append("Generation time vs loop trip count (same body, range(10) vs range(1000)):")
        if "error" in trip:
            parts.append(f"  s2s failed: {trip['error']}")
        else:
            for name in ("loop_10", "loop_1000"):
                t = trip[name]
                parts.append(f"  {name:10s} generation {fmt_time(t['generation_s']):>10s} (median of "
                             f"{trip['repeats']}), generated source {t['source_lines']} lines / "
                             f"{t['source_chars']} chars, gradient call {fmt_time(t['call_s'])}")
            parts.append(f"  same generated text up to the literal: {trip['same_text_up_to_literal']}; "
                         f"generation time ratio 1000/10: {trip['time_ratio_1000_over_10']:.2f}")

    compiles = out.get("numba_compile")
    if compiles:
        parts.append("")
        parts.append("numba first call (generation + compile, then the call), each in a fresh process "
                     "with empty caches; jax.jit's compile at the same size from the table above:")
        rows = []
        for c in compiles:
            if "error" in c and "problem" not in c:
                parts.append(f"  {c['error']}")
                break
            jit = next((r["cells"].get("jax_jit", {}) for r in results if r["problem"] == c["problem"]
                        and r["params"] == c["params"]), {})
            rows.append([c["problem"], ", ".join(f"{k}={v}" for k, v in c["params"].items())]
                        + [c[w].get("error", "")[:40] or fmt_time(c[w]["first_s"]) for w in ("s2s", "hand")]
                        + [fmt_time(jit["compile_s"]) if "compile_s" in jit else "-"])
        if rows:
            parts.append(table(["problem", "size", "s2s numba first call", "hand numba first call",
                                "jax.jit compile"], rows))

    failures = [(r, name, c) for r in results for name, c in r["cells"].items()
                if c["status"] in ("error", "FAILED")]
    parts.append("")
    parts.append(f"Failures and errors ({len(failures)} cells):" if failures else "Failures and errors: none")
    seen = {}
    for r, name, c in failures:
        text = c["error"] if name == "s2s" else _first_lines(c["error"], 6, 700)
        where = {"build": " (while making the gradient function)", "call": " (calling it)",
                 "check": " (comparing its result)", "timing": " (on a later call)"}.get(c.get("where"), "")
        key = (r["problem"], name, where, re.sub(r"\S*?(\w+)\.[0-9a-f]{12}\.py\b", r"<\1>", text))
        if key in seen:  # the same error at another size: say so once
            seen[key].append(r["size"])
            continue
        seen[key] = [r["size"]]
    texts = {}
    for r, name, c in failures:
        texts.setdefault((r["problem"], name), c["error"] if name == "s2s" else _first_lines(c["error"], 6, 700))
    for (problem, name, where, _), sizes in seen.items():
        text = texts[(problem, name)]
        kind = "FAILED" if text.startswith("wrong") else "error"
        parts.append(f"- {problem} [{', '.join(sizes)}] {LABELS[name]} {kind}{where}:")
        parts.extend("    " + line for line in text.splitlines())

    misses = out.get("targets", [])
    parts.append("")
    parts.append(f"Targets missed ({len(misses)}):" if misses else "Targets missed: none")
    for miss in misses:
        parts.append(f"- {miss['problem']}/{miss['size']}: {miss['target']}: {miss['actual']}")
    parts.append("")
    parts.append(f"total time {out['meta'].get('elapsed_s', 0):.0f} s")
    return "\n".join(parts)


def _first_lines(text: str, n: int, chars: int) -> str:
    lines = text.splitlines()
    short = "\n".join(lines[:n])[:chars]
    return short + (" [...]" if len(short) < len(text) else "")


def targets(results, compiles=None) -> list[dict]:
    """The performance targets s2s is held to, and where it misses them.

    - s2s <= 1.1x hand-written at medium/large size, <= 1.5x at small size;
    - s2s <= 3x the primal on vectorized problems;
    - faster than tangent, autograd, jax.grad (no jit) and PyTorch eager everywhere;
    - within 1.5x of jax.jit(jax.grad) on vectorized problems;
    - on the scalar loop: >= 100x faster than autograd, >= 50x faster than PyTorch;
    - numba target, on the loop problems: within 1.5x of the hand-written gradient under
      numba and faster than jax.jit(jax.grad); its first call under 3 s and not growing
      with the trip count (``compiles``, from `numba_compile`);
    - generating a derivative takes under 50 ms.
    A target that cannot be measured because s2s failed is a miss too.
    """
    misses = []

    def miss(row, target, actual):
        misses.append({"problem": row["problem"], "size": row["size"], "target": target, "actual": actual})

    for c in compiles or ():
        first = c.get("s2s", {}).get("first_s")
        if first is not None and first > 3.0:
            miss({"problem": c["problem"], "size": str(c["params"])}, "numba first call < 3 s",
                 fmt_time(first))
    by_problem = {}
    for c in compiles or ():
        if c.get("s2s", {}).get("first_s") is not None:
            by_problem.setdefault(c["problem"], []).append(c["s2s"]["first_s"])
    for problem, times in by_problem.items():
        if len(times) > 1 and times[-1] > 1.5 * times[0]:
            miss({"problem": problem, "size": "long vs short"},
                 "numba first call independent of the trip count", f"{times[-1] / times[0]:.2f}x")

    for row in results:
        cells = row["cells"]
        if "s2s" not in cells:
            continue
        s2s = median(row, "s2s")
        if s2s is None:
            c = cells["s2s"]
            miss(row, "s2s runs and is correct", f"{c['status']}: {c['error'].splitlines()[0][:160]}")
            continue
        gen = row.get("generation", {}).get("generation_s")
        if gen is not None and gen > 0.05:
            miss(row, "generation < 50 ms", fmt_time(gen))
        nb = median(row, "s2s_numba")
        if nb is not None and row["kind"] != "vectorized":
            r = ratio(nb, median(row, "hand_numba"))
            if r is not None and r > 1.5:
                miss(row, "s2s numba <= 1.5x hand-written under numba", f"{r:.2f}x")
            r = ratio(median(row, "jax_jit"), nb)
            if r is not None and r <= 1.0:
                miss(row, "s2s numba faster than jax.jit(jax.grad)", f"jit/s2s numba = {r:.2f}x")
        limit = 1.5 if row["size"] == "small" else 1.1
        r = ratio(s2s, median(row, "hand"))
        if r is not None and r > limit:
            miss(row, f"s2s <= {limit}x hand-written", f"{r:.2f}x")
        if row["kind"] == "vectorized":
            r = ratio(s2s, median(row, "primal"))
            if r is not None and r > 3.0:
                miss(row, "s2s <= 3x primal", f"{r:.2f}x")
            r = ratio(s2s, median(row, "jax_jit"))
            if r is not None and r > 1.5:
                miss(row, "s2s within 1.5x of jax.jit(jax.grad)", f"s2s is {r:.2f}x jit")
        for peer in SLOWER_PEERS:
            r = ratio(median(row, peer), s2s)
            if r is not None and r <= 1.0:
                miss(row, f"s2s faster than {LABELS[peer]}", f"{LABELS[peer]}/s2s = {r:.2f}x")
        if row["kind"] == "scalar":
            for peer, want in (("autograd", 100.0), ("torch", 50.0)):
                r = ratio(median(row, peer), s2s)
                if r is not None and r < want:
                    miss(row, f"s2s >= {want:.0f}x faster than {LABELS[peer]}", f"{r:.1f}x")
    return misses
