"""Advection-diffusion on a 2-D grid, updated in place through slices.

An explicit finite-difference step ``u[1:-1, 1:-1] += dt * (kappa * lap - adv)``
repeated a few hundred times on a copy of the initial field; the loss is the
squared norm of the final field, differentiated with respect to the initial
field. Measures writes into slices of an array the function owns: the
gradient must neither copy the grid per step nor keep the steps' temporaries.
"""
import numpy as np

KIND = "vectorized"
ARGNUMS = 0
SIZES = {
    "small": {"n": 32, "steps": 200},
    "medium": {"n": 128, "steps": 300},
    "large": {"n": 512, "steps": 300},
}


def loss(u0, vel, kappa, dt, steps):
    u = u0.copy()
    for step in range(steps):
        lap = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]
        adv = vel * (u[1:-1, 2:] - u[1:-1, :-2]) * 0.5
        u[1:-1, 1:-1] += dt * (kappa * lap - adv)
    return np.sum(u ** 2)


def grad_loss(u0, vel, kappa, dt, steps):
    """Hand-written: the update is linear in u, so the backward sweep needs no saved state;
    each step sends the interior's adjoint back through the five-point stencil."""
    u = u0.copy()
    for step in range(steps):
        lap = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]
        adv = vel * (u[1:-1, 2:] - u[1:-1, :-2]) * 0.5
        u[1:-1, 1:-1] += dt * (kappa * lap - adv)
    du = 2.0 * u
    for step in range(steps):
        g = dt * du[1:-1, 1:-1]
        gl = kappa * g
        ga = (0.5 * vel) * g
        du[:-2, 1:-1] += gl
        du[2:, 1:-1] += gl
        du[1:-1, :-2] += gl + ga
        du[1:-1, 2:] += gl - ga
        du[1:-1, 1:-1] -= 4.0 * gl
    return du


def make_args(rng, n, steps):
    x = np.linspace(-1.0, 1.0, n)
    u0 = np.exp(-8.0 * (x[:, None] ** 2 + x[None, :] ** 2)) + 0.01 * rng.standard_normal((n, n))
    return (u0, 0.4, 0.2, 0.2, steps)


def torch_loss(u0, vel, kappa, dt, steps):
    import torch
    u = u0.clone()
    for step in range(steps):
        lap = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]
        adv = vel * (u[1:-1, 2:] - u[1:-1, :-2]) * 0.5
        u[1:-1, 1:-1] += dt * (kappa * lap - adv)
    return torch.sum(u ** 2)


def jax_jit_loss():
    """The same update written for JAX, whose arrays are immutable: ``.at[...].add``."""
    from jax import lax

    def loss(u0, vel, kappa, dt, steps):
        def step(_, u):
            lap = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * u[1:-1, 1:-1]
            adv = vel * (u[1:-1, 2:] - u[1:-1, :-2]) * 0.5
            return u.at[1:-1, 1:-1].add(dt * (kappa * lap - adv))

        u = lax.fori_loop(0, steps, step, u0)
        return (u ** 2).sum()

    return loss
