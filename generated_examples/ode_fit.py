"""Fitting an ODE model to data: the Lotka-Volterra predator-prey equations, integrated by
scipy's odeint, and the squared error of the log populations at the observation times."""
import numpy as np
from scipy.integrate import odeint


def lotka_volterra(z, t, alpha, beta, delta, gamma):
    prey, predator = z[0], z[1]
    return np.array([alpha * prey - beta * prey * predator, delta * prey * predator - gamma * predator])


def loss(log_rates, z0, t, observed):
    alpha, beta, delta, gamma = np.exp(log_rates)
    zs = odeint(lotka_volterra, z0, t, args=(alpha, beta, delta, gamma), rtol=1e-10, atol=1e-10)
    return 0.5 * np.sum((np.log(zs) - np.log(observed)) ** 2)
