"""Convolution and interpolation: numpy.convolve and correlate, scipy.signal.convolve and
correlate (a correlation is lowered to a convolution), numpy.interp."""
import numpy as np
import scipy  # scipy.signal, resolved when a lowering is read

from .registry import jvp, lowers, vjp


@vjp("numpy.convolve", "a, v, mode='full'", differentiable="a, v")
def convolve_vjp():
    return {"a": "convolve_adjoint(g, a, v, mode)", "v": "convolve_adjoint(g, v, a, mode)"}


@jvp("numpy.convolve")
def convolve_jvp():
    return {"a": "np.convolve(da, v, mode)", "v": "np.convolve(a, dv, mode)"}


@vjp("scipy.signal.convolve", "in1, in2, mode='full', method='auto'", differentiable="in1, in2")
def signal_convolve_vjp():
    return {"in1": "signal_convolve_adjoint(g, in1, in2, mode)", "in2": "signal_convolve_adjoint(g, in2, in1, mode)"}


@jvp("scipy.signal.convolve")
def signal_convolve_jvp():
    return {"in1": "scipy.signal.convolve(din1, in2, mode)", "in2": "scipy.signal.convolve(in1, din2, mode)"}


@lowers("numpy.correlate")
def correlate(a, v, mode="valid"):
    return np.convolve(a, v[::-1], mode)  # real arrays: numpy's own definition


@lowers("scipy.signal.correlate")
def signal_correlate(in1, in2, mode="full", method="auto"):
    return scipy.signal.convolve(in1, np.flip(in2), mode)  # real arrays: scipy's own definition


@vjp("numpy.interp", "x, xp, fp, left=None, right=None, period=None", differentiable="x, xp, fp, left, right")
def interp_vjp(period):
    # In x and fp; xp, left and right as constants only (refused when they vary).
    if period is not None:
        raise NotImplementedError("np.interp(period=...) has no rule")
    return {"x": "g * interp_slope(x, xp, fp)",
            "fp": "interp_fp_adjoint(g, x, xp, np.size(fp), left, right)"}


@jvp("numpy.interp")
def interp_jvp(period):
    if period is not None:
        raise NotImplementedError("np.interp(period=...) has no rule")
    return {"x": "interp_slope(x, xp, fp) * dx",
            "fp": "np.interp(x, xp, dfp, None if left is None else 0.0, None if right is None else 0.0)"}
