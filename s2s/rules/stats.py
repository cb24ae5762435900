"""scipy.stats distributions, lowered to the numpy and scipy.special they are made of.

``norm.logpdf(x, mu, s)`` (however it is spelled: ``scipy.stats.norm.logpdf``, a
frozen ``norm(mu, s).logpdf(x)``) is replaced by the function below registered
for it, inlined like a helper of the user's: its value is scipy's, and forward
mode, reverse mode and second derivatives all come from the primitives it calls.
Every parameter (``loc``, ``scale``, shapes) is differentiable where they are.
Outside the support the value is scipy's (-inf, 0 or 1); the derivative there is
not meaningful. A discrete distribution's ``k`` is never differentiated.
"""
import numpy as np
from scipy.special import (betainc, betaincc, betaln, expit, gammainc, gammaincc, gammaln, log_expit,
                           log_ndtr, ndtr, stdtr, xlog1py, xlogy)

from .registry import lowers


# --- continuous, on the whole line --------------------------------------------------

@lowers("scipy.stats.norm.logpdf")
def norm_logpdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return -0.5 * z ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)


@lowers("scipy.stats.norm.pdf")
def norm_pdf(x, loc=0.0, scale=1.0):
    return np.exp(norm_logpdf(x, loc, scale))


@lowers("scipy.stats.norm.cdf")
def norm_cdf(x, loc=0.0, scale=1.0):
    return ndtr((x - loc) / scale)


@lowers("scipy.stats.norm.logcdf")
def norm_logcdf(x, loc=0.0, scale=1.0):
    return log_ndtr((x - loc) / scale)


@lowers("scipy.stats.norm.sf")
def norm_sf(x, loc=0.0, scale=1.0):
    return ndtr((loc - x) / scale)


@lowers("scipy.stats.norm.logsf")
def norm_logsf(x, loc=0.0, scale=1.0):
    return log_ndtr((loc - x) / scale)


@lowers("scipy.stats.t.logpdf")
def t_logpdf(x, df, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    log_norm = gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * np.log(df * np.pi)
    return log_norm - np.log(scale) - (df + 1) / 2 * np.log1p(z ** 2 / df)


@lowers("scipy.stats.t.pdf")
def t_pdf(x, df, loc=0.0, scale=1.0):
    return np.exp(t_logpdf(x, df, loc, scale))


@lowers("scipy.stats.t.cdf")
def t_cdf(x, df, loc=0.0, scale=1.0):
    return stdtr(df, (x - loc) / scale)


@lowers("scipy.stats.t.logcdf")
def t_logcdf(x, df, loc=0.0, scale=1.0):
    return np.log(stdtr(df, (x - loc) / scale))


@lowers("scipy.stats.t.sf")
def t_sf(x, df, loc=0.0, scale=1.0):
    return stdtr(df, (loc - x) / scale)


@lowers("scipy.stats.t.logsf")
def t_logsf(x, df, loc=0.0, scale=1.0):
    return np.log(stdtr(df, (loc - x) / scale))


@lowers("scipy.stats.laplace.logpdf")
def laplace_logpdf(x, loc=0.0, scale=1.0):
    return -np.abs(x - loc) / scale - np.log(2 * scale)


@lowers("scipy.stats.laplace.pdf")
def laplace_pdf(x, loc=0.0, scale=1.0):
    return np.exp(laplace_logpdf(x, loc, scale))


@lowers("scipy.stats.laplace.cdf")
def laplace_cdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    half_tail = 0.5 * np.exp(-np.abs(z))
    return np.where(z < 0, half_tail, 1 - half_tail)


@lowers("scipy.stats.laplace.logcdf")
def laplace_logcdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return np.where(z < 0, z - np.log(2.0), np.log1p(-0.5 * np.exp(-np.abs(z))))


@lowers("scipy.stats.laplace.sf")
def laplace_sf(x, loc=0.0, scale=1.0):
    return laplace_cdf(-x, -loc, scale)


@lowers("scipy.stats.laplace.logsf")
def laplace_logsf(x, loc=0.0, scale=1.0):
    return laplace_logcdf(-x, -loc, scale)


@lowers("scipy.stats.cauchy.logpdf")
def cauchy_logpdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return -np.log(np.pi * scale) - np.log1p(z ** 2)


@lowers("scipy.stats.cauchy.pdf")
def cauchy_pdf(x, loc=0.0, scale=1.0):
    return np.exp(cauchy_logpdf(x, loc, scale))


@lowers("scipy.stats.cauchy.cdf")
def cauchy_cdf(x, loc=0.0, scale=1.0):
    return 0.5 + np.arctan((x - loc) / scale) / np.pi


@lowers("scipy.stats.cauchy.logcdf")
def cauchy_logcdf(x, loc=0.0, scale=1.0):
    return np.log(0.5 + np.arctan((x - loc) / scale) / np.pi)


@lowers("scipy.stats.cauchy.sf")
def cauchy_sf(x, loc=0.0, scale=1.0):
    return 0.5 - np.arctan((x - loc) / scale) / np.pi


@lowers("scipy.stats.cauchy.logsf")
def cauchy_logsf(x, loc=0.0, scale=1.0):
    return np.log(0.5 - np.arctan((x - loc) / scale) / np.pi)


@lowers("scipy.stats.logistic.logpdf")
def logistic_logpdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return log_expit(z) + log_expit(-z) - np.log(scale)


@lowers("scipy.stats.logistic.pdf")
def logistic_pdf(x, loc=0.0, scale=1.0):
    return np.exp(logistic_logpdf(x, loc, scale))


@lowers("scipy.stats.logistic.cdf")
def logistic_cdf(x, loc=0.0, scale=1.0):
    return expit((x - loc) / scale)


@lowers("scipy.stats.logistic.logcdf")
def logistic_logcdf(x, loc=0.0, scale=1.0):
    return log_expit((x - loc) / scale)


@lowers("scipy.stats.logistic.sf")
def logistic_sf(x, loc=0.0, scale=1.0):
    return expit((loc - x) / scale)


@lowers("scipy.stats.logistic.logsf")
def logistic_logsf(x, loc=0.0, scale=1.0):
    return log_expit((loc - x) / scale)


# --- continuous, on a half line or an interval -----------------------------------------

@lowers("scipy.stats.expon.logpdf")
def expon_logpdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return np.where(z >= 0, -z - np.log(scale), -np.inf)


@lowers("scipy.stats.expon.pdf")
def expon_pdf(x, loc=0.0, scale=1.0):
    return np.exp(expon_logpdf(x, loc, scale))


@lowers("scipy.stats.expon.cdf")
def expon_cdf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return np.where(z > 0, -np.expm1(-z), 0.0)


@lowers("scipy.stats.expon.logcdf")
def expon_logcdf(x, loc=0.0, scale=1.0):
    return np.log(expon_cdf(x, loc, scale))


@lowers("scipy.stats.expon.sf")
def expon_sf(x, loc=0.0, scale=1.0):
    return np.exp(expon_logsf(x, loc, scale))


@lowers("scipy.stats.expon.logsf")
def expon_logsf(x, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return np.where(z > 0, -z, 0.0)


@lowers("scipy.stats.gamma.logpdf")
def gamma_logpdf(x, a, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return np.where(z >= 0, xlogy(a - 1, z) - z - gammaln(a) - np.log(scale), -np.inf)


@lowers("scipy.stats.gamma.pdf")
def gamma_pdf(x, a, loc=0.0, scale=1.0):
    return np.exp(gamma_logpdf(x, a, loc, scale))


@lowers("scipy.stats.gamma.cdf")
def gamma_cdf(x, a, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return gammainc(a, np.where(z > 0, z, 0.0))


@lowers("scipy.stats.gamma.logcdf")
def gamma_logcdf(x, a, loc=0.0, scale=1.0):
    return np.log(gamma_cdf(x, a, loc, scale))


@lowers("scipy.stats.gamma.sf")
def gamma_sf(x, a, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return gammaincc(a, np.where(z > 0, z, 0.0))


@lowers("scipy.stats.gamma.logsf")
def gamma_logsf(x, a, loc=0.0, scale=1.0):
    return np.log(gamma_sf(x, a, loc, scale))


@lowers("scipy.stats.chi2.logpdf")
def chi2_logpdf(x, df, loc=0.0, scale=1.0):
    return gamma_logpdf(x, df / 2, loc, 2 * scale)


@lowers("scipy.stats.chi2.pdf")
def chi2_pdf(x, df, loc=0.0, scale=1.0):
    return np.exp(gamma_logpdf(x, df / 2, loc, 2 * scale))


@lowers("scipy.stats.chi2.cdf")
def chi2_cdf(x, df, loc=0.0, scale=1.0):
    return gamma_cdf(x, df / 2, loc, 2 * scale)


@lowers("scipy.stats.chi2.logcdf")
def chi2_logcdf(x, df, loc=0.0, scale=1.0):
    return np.log(gamma_cdf(x, df / 2, loc, 2 * scale))


@lowers("scipy.stats.chi2.sf")
def chi2_sf(x, df, loc=0.0, scale=1.0):
    return gamma_sf(x, df / 2, loc, 2 * scale)


@lowers("scipy.stats.chi2.logsf")
def chi2_logsf(x, df, loc=0.0, scale=1.0):
    return np.log(gamma_sf(x, df / 2, loc, 2 * scale))


@lowers("scipy.stats.beta.logpdf")
def beta_logpdf(x, a, b, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    inside = np.logical_and(z >= 0, z <= 1)
    return np.where(inside, xlogy(a - 1, z) + xlog1py(b - 1, -z) - betaln(a, b) - np.log(scale), -np.inf)


@lowers("scipy.stats.beta.pdf")
def beta_pdf(x, a, b, loc=0.0, scale=1.0):
    return np.exp(beta_logpdf(x, a, b, loc, scale))


@lowers("scipy.stats.beta.cdf")
def beta_cdf(x, a, b, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return betainc(a, b, np.where(z > 0, np.where(z < 1, z, 1.0), 0.0))


@lowers("scipy.stats.beta.logcdf")
def beta_logcdf(x, a, b, loc=0.0, scale=1.0):
    return np.log(beta_cdf(x, a, b, loc, scale))


@lowers("scipy.stats.beta.sf")
def beta_sf(x, a, b, loc=0.0, scale=1.0):
    z = (x - loc) / scale
    return betaincc(a, b, np.where(z > 0, np.where(z < 1, z, 1.0), 0.0))


@lowers("scipy.stats.beta.logsf")
def beta_logsf(x, a, b, loc=0.0, scale=1.0):
    return np.log(beta_sf(x, a, b, loc, scale))


# --- multivariate ----------------------------------------------------------------------

@lowers("scipy.stats.multivariate_normal.logpdf")
def multivariate_normal_logpdf(x, mean=0.0, cov=1.0, allow_singular=False):
    # x (..., k); cov a (k, k) matrix of which, as scipy, only the lower triangle is read,
    # or a scalar or a vector for a diagonal one.
    k = np.shape(x)[-1]
    cov_matrix = np.tril(cov) + np.transpose(np.tril(cov, -1)) if np.ndim(cov) == 2 else cov * np.eye(k)
    residual = x - mean
    mahalanobis = np.sum(residual * (residual @ np.linalg.inv(cov_matrix)), axis=-1)
    sign, log_det = np.linalg.slogdet(cov_matrix)
    return -0.5 * (mahalanobis + log_det + k * np.log(2 * np.pi))


@lowers("scipy.stats.multivariate_normal.pdf")
def multivariate_normal_pdf(x, mean=0.0, cov=1.0, allow_singular=False):
    return np.exp(multivariate_normal_logpdf(x, mean, cov))


@lowers("scipy.stats.dirichlet.logpdf")
def dirichlet_logpdf(x, alpha):
    # x (k,) or (k, n): components along the first axis, as scipy has them.
    log_norm = gammaln(np.sum(alpha)) - np.sum(gammaln(alpha))
    return np.sum(xlogy(alpha - 1, np.transpose(x)), axis=-1) + log_norm


@lowers("scipy.stats.dirichlet.pdf")
def dirichlet_pdf(x, alpha):
    return np.exp(dirichlet_logpdf(x, alpha))


# --- discrete (k is never differentiated) ---------------------------------------------------

@lowers("scipy.stats.poisson.logpmf")
def poisson_logpmf(k, mu, loc=0):
    n = k - loc
    count = np.logical_and(n >= 0, n == np.floor(n))
    return np.where(count, xlogy(n, mu) - mu - gammaln(n + 1), -np.inf)


@lowers("scipy.stats.poisson.pmf")
def poisson_pmf(k, mu, loc=0):
    return np.exp(poisson_logpmf(k, mu, loc))


@lowers("scipy.stats.poisson.cdf")
def poisson_cdf(k, mu, loc=0):
    n = np.floor(k - loc)
    return np.where(n >= 0, gammaincc(n + 1, mu), 0.0)


@lowers("scipy.stats.poisson.logcdf")
def poisson_logcdf(k, mu, loc=0):
    return np.log(poisson_cdf(k, mu, loc))


@lowers("scipy.stats.poisson.sf")
def poisson_sf(k, mu, loc=0):
    n = np.floor(k - loc)
    return np.where(n >= 0, gammainc(n + 1, mu), 1.0)


@lowers("scipy.stats.poisson.logsf")
def poisson_logsf(k, mu, loc=0):
    return np.log(poisson_sf(k, mu, loc))


@lowers("scipy.stats.bernoulli.logpmf")
def bernoulli_logpmf(k, p, loc=0):
    n = k - loc
    return np.where(np.logical_or(n == 0, n == 1), xlogy(n, p) + xlog1py(1 - n, -p), -np.inf)


@lowers("scipy.stats.bernoulli.pmf")
def bernoulli_pmf(k, p, loc=0):
    return np.exp(bernoulli_logpmf(k, p, loc))


@lowers("scipy.stats.bernoulli.cdf")
def bernoulli_cdf(k, p, loc=0):
    n = k - loc
    return np.where(n < 0, 0.0, np.where(n < 1, 1 - p, 1.0))


@lowers("scipy.stats.bernoulli.logcdf")
def bernoulli_logcdf(k, p, loc=0):
    return np.log(bernoulli_cdf(k, p, loc))


@lowers("scipy.stats.bernoulli.sf")
def bernoulli_sf(k, p, loc=0):
    n = k - loc
    return np.where(n < 0, 1.0, np.where(n < 1, p, 0.0))


@lowers("scipy.stats.bernoulli.logsf")
def bernoulli_logsf(k, p, loc=0):
    return np.log(bernoulli_sf(k, p, loc))


@lowers("scipy.stats.binom.logpmf")
def binom_logpmf(k, n, p, loc=0):
    m = k - loc
    count = np.logical_and(np.logical_and(m >= 0, m <= n), m == np.floor(m))
    log_choose = gammaln(n + 1) - gammaln(m + 1) - gammaln(n - m + 1)
    return np.where(count, log_choose + xlogy(m, p) + xlog1py(n - m, -p), -np.inf)


@lowers("scipy.stats.binom.pmf")
def binom_pmf(k, n, p, loc=0):
    return np.exp(binom_logpmf(k, n, p, loc))


@lowers("scipy.stats.binom.cdf")
def binom_cdf(k, n, p, loc=0):
    m = np.floor(k - loc)
    inside = np.logical_and(m >= 0, m < n)
    safe = np.where(inside, m, 0.0)
    return np.where(inside, betainc(n - safe, safe + 1, 1 - p), np.where(m < 0, 0.0, 1.0))


@lowers("scipy.stats.binom.logcdf")
def binom_logcdf(k, n, p, loc=0):
    return np.log(binom_cdf(k, n, p, loc))


@lowers("scipy.stats.binom.sf")
def binom_sf(k, n, p, loc=0):
    m = np.floor(k - loc)
    inside = np.logical_and(m >= 0, m < n)
    safe = np.where(inside, m, 0.0)
    return np.where(inside, betainc(safe + 1, n - safe, p), np.where(m < 0, 1.0, 0.0))


@lowers("scipy.stats.binom.logsf")
def binom_logsf(k, n, p, loc=0):
    return np.log(binom_sf(k, n, p, loc))
