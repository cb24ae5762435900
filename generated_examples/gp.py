"""Gaussian-process regression: the negative log marginal likelihood of ``y`` under a
squared-exponential kernel with log length scale, log signal and log noise scales."""
import numpy as np
from scipy.linalg import cho_factor, cho_solve


def neg_log_marginal_likelihood(log_ell, log_sf, log_sn, X, y):
    sq_dist = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    K = np.exp(2 * log_sf - 0.5 * sq_dist / np.exp(2 * log_ell)) + np.exp(2 * log_sn) * np.eye(len(y))
    c, lower = cho_factor(K, lower=True)
    alpha = cho_solve((c, lower), y)
    return 0.5 * y @ alpha + np.sum(np.log(np.diag(c))) + 0.5 * len(y) * np.log(2 * np.pi)
