"""Gaussian Parzen-window log-likelihood: the evaluation of Goodfellow et al. 2014.

A Gaussian kernel density with width sigma is fitted to generated samples s_i
and the mean log-density of test points x is reported (pixels in [0, 1]):

    log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log N - d/2 log(2 pi sigma^2)

The authors' script: 10,000 samples, sigma from logspace(-1, 0, 10) chosen on a
validation set, standard error over test points. Distances come from matrix
products (||x||^2 + ||s||^2 - 2 x.s), in batches, with float64 accumulation.
"""

import numpy as np

PAPER_SIGMAS = np.logspace(-1, 0, 10)


def _sq_dists(x, s, s_sq):
    x_sq = np.einsum("ij,ij->i", x, x)[:, None]
    d = x_sq + s_sq[None, :] - 2.0 * (x @ s.T)
    return np.maximum(d, 0.0)


def _logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def parzen_log_likelihoods(x, samples, sigmas, batch_size=500):
    """Log-densities of each row of `x` under the Parzen window on `samples`.

    Returns an array (len(sigmas), len(x)): one pass over the distances serves
    every sigma.
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    s = np.asarray(samples, np.float64).reshape(len(samples), -1)
    if x.shape[1] != s.shape[1]:
        raise ValueError(f"x has {x.shape[1]} dimensions but samples have {s.shape[1]}.")
    sigmas = np.atleast_1d(np.asarray(sigmas, np.float64))
    if np.any(sigmas <= 0):
        raise ValueError(f"sigmas must be positive; got {sigmas}.")
    n, d = s.shape
    s_sq = np.einsum("ij,ij->i", s, s)
    out = np.empty((len(sigmas), len(x)))
    for start in range(0, len(x), batch_size):
        dist = _sq_dists(x[start : start + batch_size], s, s_sq)
        for k, sigma in enumerate(sigmas):
            lse = _logsumexp(-dist / (2.0 * sigma**2), axis=1)
            out[k, start : start + batch_size] = (
                lse - np.log(n) - 0.5 * d * np.log(2.0 * np.pi * sigma**2)
            )
    return out


def select_sigma(samples, x_valid, sigmas=PAPER_SIGMAS, batch_size=500):
    """The sigma of `sigmas` with the best mean validation log-likelihood."""
    ll = parzen_log_likelihoods(x_valid, samples, sigmas, batch_size).mean(axis=1)
    return float(np.asarray(sigmas)[int(np.argmax(ll))])


def parzen_estimate(samples, x_test, x_valid, sigmas=PAPER_SIGMAS, batch_size=500):
    """The paper's protocol: sigma chosen on `x_valid`, then test mean and standard error.

    Returns dict(mean, std_error, sigma).
    """
    sigma = select_sigma(samples, x_valid, sigmas, batch_size)
    ll = parzen_log_likelihoods(x_test, samples, [sigma], batch_size)[0]
    return {
        "mean": float(ll.mean()),
        "std_error": float(ll.std(ddof=1) / np.sqrt(len(ll))),
        "sigma": sigma,
    }
