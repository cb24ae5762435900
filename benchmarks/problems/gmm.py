"""Gaussian mixture objective in the ADBench / GradBench parametrization.

Parameters: ``alphas`` (K,) mixture logits, ``means`` (K, d), and ``icf`` (K,
d + d(d-1)/2): per component, the log of the diagonal of the inverse-covariance
factor Q (``Qs``) followed by its strictly lower-triangular entries (``Ls``,
column by column, as in ADBench). Wishart prior with ``wishart_gamma``,
``wishart_m``. As in ADBench's objective, the Wishart normalizing constant
(which has no gradient) is left out.

The lower-triangular matrices are built by gathering ``icf`` through a
precomputed index array ``tri_idx`` (d, d) and zeroing the rest with
``tri_mask``: numpy has no differentiable "vector to triangular matrix".
"""
import numpy as np

KIND = "vectorized"
ARGNUMS = (0, 1, 2)
SIZES = {
    "small": {"d": 2, "K": 5, "n": 1000},
    "medium": {"d": 10, "K": 25, "n": 1000},
    "large": {"d": 64, "K": 100, "n": 1000},
}


def loss(alphas, means, icf, x, wishart_gamma, wishart_m, tri_idx, tri_mask):
    n, d = x.shape
    log_qdiag = icf[:, :d]
    Qdiags = np.exp(log_qdiag)
    sum_qs = np.sum(log_qdiag, axis=1)
    Ls = icf[:, tri_idx] * tri_mask
    xc = x[None, :, :] - means[:, None, :]
    Qxc = Qdiags[:, None, :] * xc + xc @ np.transpose(Ls, (0, 2, 1))
    inner = alphas[:, None] + sum_qs[:, None] - 0.5 * np.sum(Qxc ** 2, axis=2)
    m = np.max(inner, axis=0)
    lse = m + np.log(np.sum(np.exp(inner - m), axis=0))
    am = np.max(alphas)
    lse_alphas = am + np.log(np.sum(np.exp(alphas - am)))
    sq = np.sum(Qdiags ** 2, axis=1) + np.sum(icf[:, d:] ** 2, axis=1)
    prior = np.sum(0.5 * wishart_gamma ** 2 * sq - wishart_m * sum_qs)
    return -0.5 * n * d * np.log(2 * np.pi) + np.sum(lse) - n * lse_alphas + prior


def grad_loss(alphas, means, icf, x, wishart_gamma, wishart_m, tri_idx, tri_mask):
    """Hand-written: r = responsibilities, G = d/dQxc = -r * Qxc."""
    n, d = x.shape
    Qdiags = np.exp(icf[:, :d])
    Ls = icf[:, tri_idx] * tri_mask
    xc = x[None, :, :] - means[:, None, :]
    Qxc = Qdiags[:, None, :] * xc + xc @ np.transpose(Ls, (0, 2, 1))
    inner = (alphas + np.sum(icf[:, :d], axis=1))[:, None] - 0.5 * np.sum(Qxc * Qxc, axis=2)
    r = np.exp(inner - np.max(inner, axis=0))
    r /= np.sum(r, axis=0)
    rsum = np.sum(r, axis=1)
    pa = np.exp(alphas - np.max(alphas))
    dalphas = rsum - n * pa / np.sum(pa)
    G = -r[:, :, None] * Qxc
    g2 = wishart_gamma ** 2
    dicf = np.empty_like(icf)
    dicf[:, :d] = (np.sum(G * xc, axis=1) + g2 * Qdiags) * Qdiags + (rsum - wishart_m)[:, None]
    dicf[:, d:] = g2 * icf[:, d:]
    dLs = np.transpose(G, (0, 2, 1)) @ xc
    rows, cols = np.nonzero(tri_mask)
    dicf[:, tri_idx[rows, cols]] += dLs[:, rows, cols]
    dmeans = -np.sum(Qdiags[:, None, :] * G + G @ Ls, axis=1)
    return dalphas, dmeans, dicf


def triangular_index(d):
    """ADBench order: L[j, i] = icf[d + c] for i < j, c counting column by column."""
    idx = np.zeros((d, d), dtype=np.int64)
    c = d
    for i in range(d):
        for j in range(i + 1, d):
            idx[j, i] = c
            c += 1
    mask = (np.arange(d)[:, None] > np.arange(d)[None, :]).astype(np.float64)
    return idx, mask


def make_args(rng, d, K, n):
    alphas = rng.standard_normal(K)
    means = rng.random((K, d))
    icf = np.concatenate([0.5 * rng.standard_normal((K, d)),
                          0.1 * rng.standard_normal((K, d * (d - 1) // 2))], axis=1)
    x = rng.random((n, d))
    tri_idx, tri_mask = triangular_index(d)
    return (alphas, means, icf, x, 1.0, 0, tri_idx, tri_mask)


def torch_loss(alphas, means, icf, x, wishart_gamma, wishart_m, tri_idx, tri_mask):
    import math

    import torch
    n, d = x.shape
    log_qdiag = icf[:, :d]
    Qdiags = torch.exp(log_qdiag)
    sum_qs = torch.sum(log_qdiag, dim=1)
    Ls = icf[:, tri_idx] * tri_mask
    xc = x[None, :, :] - means[:, None, :]
    Qxc = Qdiags[:, None, :] * xc + xc @ Ls.transpose(1, 2)
    inner = alphas[:, None] + sum_qs[:, None] - 0.5 * torch.sum(Qxc ** 2, dim=2)
    m = torch.amax(inner, dim=0)
    lse = m + torch.log(torch.sum(torch.exp(inner - m), dim=0))
    am = torch.amax(alphas)
    lse_alphas = am + torch.log(torch.sum(torch.exp(alphas - am)))
    sq = torch.sum(Qdiags ** 2, dim=1) + torch.sum(icf[:, d:] ** 2, dim=1)
    prior = torch.sum(0.5 * wishart_gamma ** 2 * sq - wishart_m * sum_qs)
    return -0.5 * n * d * math.log(2 * math.pi) + torch.sum(lse) - n * lse_alphas + prior
