"""A variational objective: the negative evidence lower bound of a Bayesian linear
regression under a diagonal Gaussian posterior, reparameterized with fixed noise ``eps``."""
import numpy as np
from scipy.stats import multivariate_normal, norm


def negative_elbo(mu, log_sigma, X, y, eps, prior_cov):
    w = mu + np.exp(log_sigma) * eps  # one weight vector per row of eps
    log_lik = np.sum(norm.logpdf(y, w @ X.T, 0.5), axis=1)
    log_prior = multivariate_normal.logpdf(w, np.zeros(len(mu)), prior_cov)
    log_q = np.sum(norm.logpdf(w, mu, np.exp(log_sigma)), axis=1)
    return -np.mean(log_lik + log_prior - log_q)
