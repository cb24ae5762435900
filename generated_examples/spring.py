"""Damped springs integrated with explicit Euler steps.

One input (the stiffness ``k``), many outputs (every final position): the
case forward mode is for. ``jvp_simulate(k, x0, v0, dt, dk)`` returns the
positions and their tangent along ``dk``.
"""

DAMPING = 0.1


def simulate(k, x0, v0, dt):
    """Final positions of the springs after 50 explicit Euler steps of size dt."""
    x = x0
    v = v0
    for step in range(50):
        a = -k * x - DAMPING * v  # Hooke's law, with damping
        x = x + dt * v
        v = v + dt * a
    return x
