"""Lotka-Volterra predator-prey model integrated with explicit RK4.

Everything is a Python float: four parameters, the initial state and the
step. The gradient is taken with respect to the four parameters; the loss is
the squared norm of the final state. A scalar-heavy loop: about 60 float
operations per step, no arrays at all.
"""
KIND = "scalar"
ARGNUMS = (0, 1, 2, 3)
SIZES = {
    "small": {"steps": 50},
    "medium": {"steps": 1_000},
    "large": {"steps": 10_000},
}


def loss(alpha, beta, gamma, delta, x0, y0, dt, steps):
    x = x0
    y = y0
    for i in range(steps):
        k1x = alpha * x - beta * x * y
        k1y = delta * x * y - gamma * y
        x2 = x + 0.5 * dt * k1x
        y2 = y + 0.5 * dt * k1y
        k2x = alpha * x2 - beta * x2 * y2
        k2y = delta * x2 * y2 - gamma * y2
        x3 = x + 0.5 * dt * k2x
        y3 = y + 0.5 * dt * k2y
        k3x = alpha * x3 - beta * x3 * y3
        k3y = delta * x3 * y3 - gamma * y3
        x4 = x + dt * k3x
        y4 = y + dt * k3y
        k4x = alpha * x4 - beta * x4 * y4
        k4y = delta * x4 * y4 - gamma * y4
        x = x + dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y = y + dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
    return x * x + y * y


def grad_loss(alpha, beta, gamma, delta, x0, y0, dt, steps):
    """Hand-written discrete adjoint: the forward sweep keeps the state at the start
    of every step; the backward sweep recomputes that step's stages and reverses them."""
    h = 0.5 * dt
    c = dt / 6.0
    xs = [0.0] * steps
    ys = [0.0] * steps
    x = x0
    y = y0
    for i in range(steps):
        xs[i] = x
        ys[i] = y
        k1x = alpha * x - beta * x * y
        k1y = delta * x * y - gamma * y
        x2 = x + h * k1x
        y2 = y + h * k1y
        k2x = alpha * x2 - beta * x2 * y2
        k2y = delta * x2 * y2 - gamma * y2
        x3 = x + h * k2x
        y3 = y + h * k2y
        k3x = alpha * x3 - beta * x3 * y3
        k3y = delta * x3 * y3 - gamma * y3
        x4 = x + dt * k3x
        y4 = y + dt * k3y
        x = x + c * (k1x + 2.0 * k2x + 2.0 * k3x + alpha * x4 - beta * x4 * y4)
        y = y + c * (k1y + 2.0 * k2y + 2.0 * k3y + delta * x4 * y4 - gamma * y4)
    bx = 2.0 * x
    by = 2.0 * y
    da = db = dg = dd = 0.0
    for i in range(steps - 1, -1, -1):
        x = xs[i]
        y = ys[i]
        k1x = alpha * x - beta * x * y
        k1y = delta * x * y - gamma * y
        x2 = x + h * k1x
        y2 = y + h * k1y
        k2x = alpha * x2 - beta * x2 * y2
        k2y = delta * x2 * y2 - gamma * y2
        x3 = x + h * k2x
        y3 = y + h * k2y
        k3x = alpha * x3 - beta * x3 * y3
        k3y = delta * x3 * y3 - gamma * y3
        x4 = x + dt * k3x
        y4 = y + dt * k3y
        # stage 4: adjoint (c bx, c by) of (k4x, k4y) = f(x4, y4)
        ux = c * bx
        uy = c * by
        da += ux * x4
        db -= ux * x4 * y4
        dd += uy * x4 * y4
        dg -= uy * y4
        u3x = 2.0 * ux + dt * (ux * (alpha - beta * y4) + uy * delta * y4)
        u3y = 2.0 * uy + dt * (uy * (delta * x4 - gamma) - ux * beta * x4)
        nbx = bx + ux * (alpha - beta * y4) + uy * delta * y4
        nby = by + uy * (delta * x4 - gamma) - ux * beta * x4
        # stage 3 at (x3, y3)
        da += u3x * x3
        db -= u3x * x3 * y3
        dd += u3y * x3 * y3
        dg -= u3y * y3
        px = u3x * (alpha - beta * y3) + u3y * delta * y3
        py = u3y * (delta * x3 - gamma) - u3x * beta * x3
        nbx += px
        nby += py
        u2x = 2.0 * ux + h * px
        u2y = 2.0 * uy + h * py
        # stage 2 at (x2, y2)
        da += u2x * x2
        db -= u2x * x2 * y2
        dd += u2y * x2 * y2
        dg -= u2y * y2
        px = u2x * (alpha - beta * y2) + u2y * delta * y2
        py = u2y * (delta * x2 - gamma) - u2x * beta * x2
        nbx += px
        nby += py
        u1x = ux + h * px
        u1y = uy + h * py
        # stage 1 at (x, y)
        da += u1x * x
        db -= u1x * x * y
        dd += u1y * x * y
        dg -= u1y * y
        bx = nbx + u1x * (alpha - beta * y) + u1y * delta * y
        by = nby + u1y * (delta * x - gamma) - u1x * beta * x
    return da, db, dg, dd


def make_args(rng, steps):
    return (1.5, 1.0, 3.0, 1.0, 1.0, 1.0, 10.0 / steps, steps)


def torch_loss(alpha, beta, gamma, delta, x0, y0, dt, steps):
    x = x0
    y = y0
    for i in range(steps):
        k1x = alpha * x - beta * x * y
        k1y = delta * x * y - gamma * y
        x2 = x + 0.5 * dt * k1x
        y2 = y + 0.5 * dt * k1y
        k2x = alpha * x2 - beta * x2 * y2
        k2y = delta * x2 * y2 - gamma * y2
        x3 = x + 0.5 * dt * k2x
        y3 = y + 0.5 * dt * k2y
        k3x = alpha * x3 - beta * x3 * y3
        k3y = delta * x3 * y3 - gamma * y3
        x4 = x + dt * k3x
        y4 = y + dt * k3y
        k4x = alpha * x4 - beta * x4 * y4
        k4y = delta * x4 * y4 - gamma * y4
        x = x + dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y = y + dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
    return x * x + y * y


def jax_jit_loss():
    """The RK4 loop as lax.fori_loop, so jit compiles one step instead of an unrolled
    10 000-step graph."""
    from jax import lax

    def loss(alpha, beta, gamma, delta, x0, y0, dt, steps):
        def step(i, state):
            x, y = state
            k1x = alpha * x - beta * x * y
            k1y = delta * x * y - gamma * y
            x2 = x + 0.5 * dt * k1x
            y2 = y + 0.5 * dt * k1y
            k2x = alpha * x2 - beta * x2 * y2
            k2y = delta * x2 * y2 - gamma * y2
            x3 = x + 0.5 * dt * k2x
            y3 = y + 0.5 * dt * k2y
            k3x = alpha * x3 - beta * x3 * y3
            k3y = delta * x3 * y3 - gamma * y3
            x4 = x + dt * k3x
            y4 = y + dt * k3y
            k4x = alpha * x4 - beta * x4 * y4
            k4y = delta * x4 * y4 - gamma * y4
            return (x + dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x),
                    y + dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y))

        x, y = lax.fori_loop(0, steps, step, (x0 + 0.0 * alpha, y0 + 0.0 * alpha))
        return x * x + y * y

    return loss
