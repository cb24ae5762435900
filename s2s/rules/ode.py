"""scipy.integrate's ODE solvers: ``odeint`` and ``solve_ivp`` calls are normalized to
``odeint_solve(rhs, rhs_vjp, rhs_jvp, (y0, t, *args), options)`` (see s2s/ode.py),
whose rule this is: the adjoint equations backwards (reverse mode), the forward
sensitivity equations (forward mode), in the helpers ``odeint_adjoint`` and
``odeint_tangent``."""
from .registry import jvp, vjp


@vjp("s2s.helpers.odeint_solve", "func, func_vjp, func_jvp, inputs, options", differentiable="inputs")
def odeint_solve_vjp():
    return {"inputs": "odeint_adjoint(g, ans, func, func_vjp, inputs, options)"}


@jvp("s2s.helpers.odeint_solve")
def odeint_solve_jvp():
    return {"inputs": "odeint_tangent(ans, func, func_jvp, inputs, dinputs, options)"}
