"""``@s2s.differentiable``: derivatives generated when the module is imported, cached on disk.

    @s2s.differentiable                      # or @s2s.differentiable(argnums=(0, 1), has_aux=True)
    def loss(w, X, y):
        ...

    loss(w, X, y)                  # the function itself, unchanged
    loss.grad(w, X, y)             # s2s.grad(loss, argnums, has_aux)
    loss.value_and_grad(w, X, y)   # s2s.value_and_grad(loss, argnums, has_aux)

Both derivatives are generated while the decorator runs, that is at import
time, in their shape-polymorphic form, and written to ``__pycache__/``
beside the module (see `s2s.cache`), so the next import only reads them and an
unsupported construct is reported at import, with its file and line. If the
function uses a name that does not exist yet (a helper defined further down
the module), that waits for the first call. Calls specialize on the kinds and
shapes of their arguments (see `s2s.api`); each specialization is generated on
its first call and cached the same way.

``source="grads/dloss.py"`` uses a hand-edited generated file instead (see
`s2s.handedit`), loaded and checked against the primal at import;
``accept_stale=True`` accepts it after its primal changed; ``update=True``
regenerates it and re-applies the edits instead.

``s2s.grad(loss)`` at module level, by contrast, generates nothing when it is
created: at that point the argument shapes are unknown, so its first call
generates (or reads from the cache) the version specialized for them. Its
errors surface at that call, as in JAX.
"""
from __future__ import annotations

import functools

from . import api, provenance


def differentiable(fn=None, *, argnums=0, has_aux=False, source=None, accept_stale=False,
                   update=False, check=None, target="numpy"):
    """Attach ``.grad`` and ``.value_and_grad`` to ``fn``, generated now; return ``fn`` itself.

    ``check=True`` (default: ``S2S_CHECK``) makes both check themselves (see `s2s.selfcheck`);
    ``target="numba"`` compiles them with numba."""
    if fn is None:
        return functools.partial(differentiable, argnums=argnums, has_aux=has_aux, source=source,
                                 accept_stale=accept_stale, update=update, check=check, target=target)
    options = {"source": source, "accept_stale": accept_stale, "update": update, "check": check,
               "target": target}
    fn.grad = api.grad(fn, argnums, has_aux, **options)
    fn.value_and_grad = api.value_and_grad(fn, argnums, has_aux, **options)
    for made in (fn.grad, fn.value_and_grad):
        generate_now(getattr(made, api._GENERATED_ATTR))
    return fn


def generate_now(derivative) -> None:
    """Generate (or load) the shape-polymorphic version now; raise its errors now,
    unless the function uses a name that is not defined yet."""
    if not provenance.unresolved_names(derivative.src):
        derivative.module(())
