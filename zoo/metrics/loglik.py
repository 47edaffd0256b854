"""Log-likelihood log p(x) of latent-variable models p(x) = int p(z) p(x|z) dz.

Three estimators, for any decoder whose log p(x|z) is written with keras.ops (so
they run on TensorFlow, JAX and PyTorch), with p(z) = N(0, I):

- `iwae_log_likelihood`: the importance-weighted bound of Burda et al. (2016) for
  models with a tractable Gaussian q(z|x) (the zoo's `VAE`):

      log p(x) >= E[log 1/K sum_k p(x, z_k) / q(z_k|x)],   z_k ~ q(z|x).

  K = 1 is the ELBO; the bound tightens monotonically as K grows.
- `ais_log_likelihood`: annealed importance sampling (Neal 2001) as Wu et al.
  (2017, "On the quantitative analysis of decoder-based models") use it and the
  AVB paper reports it. It needs only p(z) and p(x|z), not q, so it also serves
  AVB's black-box encoder. Chains start at z ~ p(z) and move along the geometric
  path p_t(z) ∝ p(z) p(x|z)^beta_t, 0 = beta_0 < ... < beta_T = 1, by HMC
  transitions that leave each p_t invariant; the weights w, with

      log w = sum_t (beta_t - beta_{t-1}) log p(x | z_{t-1}),

  are unbiased for p(x) however poorly the chains mix, so log-mean-exp over chains
  is a stochastic lower bound of log p(x) (in expectation, by Jensen) that tightens
  as T grows. (The step size is adapted along the way, as Wu et al. do, from past
  acceptance rates: a small departure from exactness.)
- `grid_log_likelihood`: dense numerical integration over a grid, the exact
  reference for 1- to 3-d latents (the AVB toy problem's 2-d latent).

Only log p(x|z) and its gradient in z (`zoo.core.backend.input_value_and_grad`) run
on the backend; the sampler's own arithmetic is NumPy, with float64 Hamiltonians
and log-weights.

Each takes either a zoo model with a decoder and a `likelihood` (`VAE`, `AVB`), so
`ais_log_likelihood(model, x_test)` works, or a callable `log_likelihood_fn(x, z)`
returning log p(x|z) per row. Data for a model are what its `encode` accepts
(images: uint8 or floats in [0, 1]); log p(x) is in nats in the model's own data
space (a Gaussian likelihood on data_range (-1, 1) is d log 2 below the density
of the same images scaled to [0, 1]). Noise comes from NumPy with `seed`: the same
draws on every backend.
"""

import math

import numpy as np
from keras import ops

from zoo.core.backend import input_value_and_grad
from zoo.models.common import check_real_batch, images_to_model

SCHEDULES = ("sigmoid", "linear")
# Wu et al.'s HMC step-size adaptation (after the Theano HMC tutorial): the step
# grows by 2% while the smoothed acceptance rate exceeds the target, else shrinks.
STEP_INCREASE, STEP_DECREASE = 1.02, 0.98
STEP_MIN, STEP_MAX = 1e-4, 0.5
ACCEPTANCE_SLOWNESS = 0.9


# -- helpers ----------------------------------------------------------------------------
def log_mean_exp(a, axis=-1):
    """log(mean(exp(a))) along `axis`, stably (shift by the max), float64."""
    a = np.asarray(a, np.float64)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = m + np.log(np.mean(np.exp(a - m), axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis)


def _standard_normal_logpdf(z):
    """log N(z | 0, I) per row (NumPy, float64)."""
    z = np.asarray(z, np.float64)
    return -0.5 * np.sum(z**2, axis=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def _positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _is_model(obj):
    from zoo.models.capabilities import ExplicitLikelihood

    return isinstance(obj, ExplicitLikelihood)


def model_log_likelihood_fn(model):
    """log p(x|z) per row from a zoo model's decoder and likelihood (Bernoulli
    logits or a Gaussian of width `pixel_sigma`), x in the model's data space."""
    return lambda x, z: -model.reconstruction_nll(x, model.decoder(z, training=False))


def _model_data(model, x):
    """User data -> float32 in the model's data space, checked."""
    shape = tuple(model.data_shape)
    x = np.asarray(x)
    if len(shape) == 3 and getattr(model, "data_range", None) is not None:
        return images_to_model(x, shape, model.data_range)
    x = x.astype("float32") if np.issubdtype(x.dtype, np.floating) else x
    check_real_batch(x, shape, getattr(model, "data_range", None))
    return x.astype("float32")


def _check_data(x):
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of shape (n, ...); got shape {x.shape}.")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"x must be numeric; got dtype {x.dtype}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("x holds NaN or infinite values.")
    return x.astype("float32")


def _resolve(model_or_fn, x, latent_dim):
    """(log_likelihood_fn, x float32, latent_dim) from a model or a callable."""
    if _is_model(model_or_fn):
        model = model_or_fn
        if latent_dim is not None and int(latent_dim) != model.latent_dim:
            raise ValueError(f"latent_dim={latent_dim} disagrees with the model's {model.latent_dim}.")
        return model_log_likelihood_fn(model), _model_data(model, x), model.latent_dim
    if not callable(model_or_fn):
        raise TypeError(
            "Expected a zoo model with a decoder (VAE, AVB) or a callable "
            f"log_likelihood_fn(x, z); got {type(model_or_fn).__name__}."
        )
    if latent_dim is None:
        raise ValueError("latent_dim is needed with a log_likelihood_fn (a model knows its own).")
    return model_or_fn, _check_data(x), _positive_int("latent_dim", latent_dim)


def _log_likelihood(fn, x, z):
    """fn(x, z) as a float64 NumPy vector, checked for shape."""
    rows = len(z)
    x, z = ops.convert_to_tensor(np.asarray(x, np.float32)), ops.convert_to_tensor(np.asarray(z, np.float32))
    out = ops.convert_to_numpy(fn(x, z)).astype(np.float64)
    if out.shape != (rows,):
        raise ValueError(f"log_likelihood_fn must return one value per row, shape ({rows},); got {out.shape}.")
    return out


# -- annealing schedules ------------------------------------------------------------------
def annealing_schedule(num_steps, schedule="sigmoid", delta=4.0):
    """beta_0 = 0 < beta_1 < ... < beta_T = 1, T = num_steps.

    "sigmoid" (Grosse et al. 2015, used by Wu et al. 2017): the rescaled
    sigma(delta (2t/T - 1)), spending more steps near both ends where log w
    changes fastest per unit beta; "linear": equal increments. An explicit
    increasing sequence from 0 to 1 is returned as is (after checks).
    """
    if not isinstance(schedule, str):
        betas = np.asarray(schedule, np.float64)
        if (betas.ndim != 1 or len(betas) < 2 or betas[0] != 0.0 or betas[-1] != 1.0
                or np.any(np.diff(betas) <= 0)):
            raise ValueError("An explicit schedule must increase strictly from 0 to 1.")
        return betas
    num_steps = _positive_int("num_steps", num_steps)
    if schedule == "linear":
        return np.linspace(0.0, 1.0, num_steps + 1)
    if schedule == "sigmoid":
        if delta <= 0:
            raise ValueError(f"delta must be positive; got {delta}.")
        s = 1.0 / (1.0 + np.exp(-delta * (2.0 * np.arange(num_steps + 1) / num_steps - 1.0)))
        betas = (s - s[0]) / (s[-1] - s[0])
        betas[0], betas[-1] = 0.0, 1.0
        return betas
    raise ValueError(f"schedule must be one of {SCHEDULES} or an array of betas; got {schedule!r}.")


# -- AIS ------------------------------------------------------------------------------------
def ais_log_likelihood(model_or_fn, x, latent_dim=None, num_steps=1000, num_chains=16,
                       leapfrog_steps=10, schedule="sigmoid", initial_step_size=0.05,
                       target_acceptance=0.65, seed=0, batch_size=128, return_diagnostics=False):
    """AIS estimate of log p(x) per example, with HMC transitions (Wu et al. 2017).

    Args:
        model_or_fn: a zoo model with a decoder (`VAE`, `AVB`), or a callable
            `log_likelihood_fn(x, z)` -> log p(x|z), one value per row, written with
            keras.ops so its gradient in z exists on every backend.
        x: data, shape (n, ...). For a model, what its `encode` accepts.
        latent_dim: dimension of z (taken from a model).
        num_steps: T, the number of intermediate distributions (and HMC transitions).
        num_chains: independent AIS chains per example; the estimate is the log of
            the mean of their weights.
        leapfrog_steps: leapfrog steps per HMC transition.
        schedule: "sigmoid", "linear" or an explicit array of betas from 0 to 1.
        initial_step_size, target_acceptance: each example's leapfrog step size
            starts here and is multiplied by 1.02 (0.98) after each transition while
            the smoothed acceptance rate of its chains is above (below) the target,
            within [1e-4, 0.5].
        seed: seeds the NumPy draws of z_0, momenta and Metropolis tests.
        batch_size: examples per batch (each with `num_chains` chains).
        return_diagnostics: also return a dict with per-example "acceptance_rate"
            (mean over transitions and chains), final "step_size", the chains'
            "log_weights" (n, num_chains), their "effective_sample_size" and the
            "standard_error" of each estimate over chains (delta method:
            sd(w) / (sqrt(C) mean(w))).

    Returns:
        log p(x) estimates, NumPy float64 of shape (n,) (and diagnostics).
    """
    fn, x, d = _resolve(model_or_fn, x, latent_dim)
    betas = annealing_schedule(num_steps, schedule)
    chains = _positive_int("num_chains", num_chains)
    leapfrog = _positive_int("leapfrog_steps", leapfrog_steps)
    batch = _positive_int("batch_size", batch_size)
    if not (0.0 < target_acceptance < 1.0):
        raise ValueError(f"target_acceptance must be in (0, 1); got {target_acceptance}.")
    if not (STEP_MIN <= initial_step_size <= STEP_MAX):
        raise ValueError(f"initial_step_size must be in [{STEP_MIN}, {STEP_MAX}]; got {initial_step_size}.")
    rng = np.random.default_rng(seed)
    logw, acc, step = [], [], []
    for s in range(0, len(x), batch):
        out = _ais_batch(fn, x[s:s + batch], d, betas, chains, leapfrog,
                         float(initial_step_size), float(target_acceptance), rng)
        for lst, v in zip((logw, acc, step), out):
            lst.append(v)
    logw = np.concatenate(logw)
    log_px = log_mean_exp(logw, axis=1)
    if not return_diagnostics:
        return log_px
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    return log_px, {
        "acceptance_rate": np.concatenate(acc), "step_size": np.concatenate(step),
        "log_weights": logw, "effective_sample_size": w.sum(1) ** 2 / (w**2).sum(1),
        "standard_error": w.std(1) / (math.sqrt(chains) * w.mean(1)),
    }


def _ais_batch(fn, x, d, betas, chains, leapfrog, step0, target, rng):
    """AIS for one batch: (log weights (b, chains), acceptance rates (b,), final step sizes (b,))."""
    b = len(x)
    rows = b * chains
    xr = ops.convert_to_tensor(np.repeat(x, chains, axis=0))  # chains of one x are consecutive

    def value_and_grad(z):
        ll, g = input_value_and_grad(lambda zz: fn(xr, zz), z.astype(np.float32))
        ll = ops.convert_to_numpy(ll).astype(np.float64)
        if ll.shape != (rows,):
            raise ValueError(f"log_likelihood_fn must return one value per row, shape ({rows},); got {ll.shape}.")
        return ll, ops.convert_to_numpy(g).astype(np.float32)

    z = rng.standard_normal((rows, d)).astype(np.float32)  # exact samples of p_0 = p(z)
    ll, g = value_and_grad(z)
    logw = np.zeros(rows)
    eps = np.full((b, 1), step0, np.float32)
    avg_acc = np.full(b, target)
    acc_sum = np.zeros(b)
    for t in range(1, len(betas)):
        logw += (betas[t] - betas[t - 1]) * ll
        beta = float(betas[t])
        z, ll, g, a = _hmc_transition(value_and_grad, z, ll, g, beta, np.repeat(eps, chains, axis=0),
                                      leapfrog, rng)
        a = a.reshape(b, chains).mean(1)
        acc_sum += a
        avg_acc = ACCEPTANCE_SLOWNESS * avg_acc + (1 - ACCEPTANCE_SLOWNESS) * a
        eps = np.clip(eps * np.where(avg_acc > target, STEP_INCREASE, STEP_DECREASE)[:, None],
                      STEP_MIN, STEP_MAX).astype(np.float32)
    return logw.reshape(b, chains), acc_sum / max(len(betas) - 1, 1), eps[:, 0].astype(np.float64)


def _hmc_transition(value_and_grad, z0, ll0, g0, beta, eps, leapfrog, rng):
    """One HMC transition leaving p_beta(z) ∝ N(z | 0, I) p(x|z)^beta invariant.

    Potential U(z) = 1/2 ||z||^2 - beta log p(x|z); leapfrog integration with unit
    mass, then a Metropolis test per chain. Returns (z, log p(x|z), its gradient,
    acceptance probabilities)."""

    def grad_log_target(z, g):
        return -z + beta * g

    p0 = rng.standard_normal(z0.shape).astype(np.float32)
    z, ll, g = z0, ll0, g0
    p = p0 + 0.5 * eps * grad_log_target(z, g)
    for i in range(leapfrog):
        z = z + eps * p
        ll, g = value_and_grad(z)
        if i < leapfrog - 1:
            p = p + eps * grad_log_target(z, g)
    p = p + 0.5 * eps * grad_log_target(z, g)

    def hamiltonian(z, ll, p):
        z, p = z.astype(np.float64), p.astype(np.float64)
        return 0.5 * np.sum(z**2, -1) - beta * ll + 0.5 * np.sum(p**2, -1)

    log_accept = hamiltonian(z0, ll0, p0) - hamiltonian(z, ll, p)
    ok = np.isfinite(log_accept) & np.all(np.isfinite(g), axis=-1)
    log_accept = np.where(ok, np.minimum(log_accept, 0.0), -np.inf)
    accept = np.log(rng.uniform(size=len(z0))) < log_accept
    a = accept[:, None]
    return (np.where(a, z, z0), np.where(accept, ll, ll0), np.where(a, g, g0), np.exp(log_accept))


# -- IWAE ----------------------------------------------------------------------------------
def iwae_log_likelihood(model_or_fn, x, posterior_fn=None, num_samples=1000, seed=0, batch_size=4096):
    """The importance-weighted bound (Burda et al. 2016) with K = num_samples draws of
    a Gaussian q(z|x), per example:

        log 1/K sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k = mu + sigma * eps_k

    K = 1 gives an unbiased estimate of the ELBO; the bound increases with K to
    log p(x). For a zoo model, q is its Gaussian encoder x -> (mu, log_var) (the
    `VAE`; an AVB's black-box q has no density: use `ais_log_likelihood`).
    Otherwise pass `log_likelihood_fn(x, z)` and `posterior_fn(x) -> (mu, log_var)`.

    batch_size: (x, z) pairs per decoder call. Returns NumPy float64 (n,).
    """
    if _is_model(model_or_fn):
        model = model_or_fn
        if posterior_fn is not None:
            raise ValueError("posterior_fn is taken from the model; pass it only with a log_likelihood_fn.")
        if not _has_gaussian_encoder(model):
            raise ValueError(
                f"{type(model).__name__} has no Gaussian encoder x -> (mu, log_var), so q(z|x) "
                "has no density for importance weights; use ais_log_likelihood."
            )
        fn, x = model_log_likelihood_fn(model), _model_data(model, x)
        def posterior_fn(a):
            return model.encoder(a, training=False)
    else:
        if not callable(model_or_fn):
            raise TypeError(
                "Expected a zoo model with a Gaussian encoder (VAE) or a callable "
                f"log_likelihood_fn(x, z); got {type(model_or_fn).__name__}."
            )
        if not callable(posterior_fn):
            raise ValueError("posterior_fn(x) -> (mu, log_var) is needed with a log_likelihood_fn.")
        fn, x = model_or_fn, _check_data(x)
    k = _positive_int("num_samples", num_samples)
    rows = _positive_int("batch_size", batch_size)
    rng = np.random.default_rng(seed)
    out = np.empty(len(x))
    per = max(1, rows // k)  # examples per call when all K samples fit in one call
    for s in range(0, len(x), per):
        xb = x[s:s + per]
        mu, log_var = (ops.convert_to_numpy(v).astype(np.float64) for v in posterior_fn(xb))
        if mu.shape != log_var.shape or mu.shape[0] != len(xb) or mu.ndim != 2:
            raise ValueError(f"posterior_fn must return (mu, log_var) of shape (n, latent); got {mu.shape}, {log_var.shape}.")
        logw = np.empty((len(xb), k))
        chunk = max(1, rows // len(xb))  # samples per call
        for c in range(0, k, chunk):
            kc = min(chunk, k - c)
            e = rng.standard_normal((len(xb), kc, mu.shape[1]))
            z = mu[:, None] + np.exp(0.5 * log_var)[:, None] * e
            ll = _log_likelihood(fn, np.repeat(xb, kc, axis=0), z.reshape(-1, mu.shape[1]).astype(np.float32))
            # log p(z) - log q(z|x): the 2 pi terms cancel and (z - mu) / sigma = eps.
            log_pq = -0.5 * np.sum(z**2, -1) + 0.5 * np.sum(e**2, -1) + 0.5 * np.sum(log_var, -1)[:, None]
            logw[:, c:c + kc] = ll.reshape(len(xb), kc) + log_pq
        out[s:s + per] = log_mean_exp(logw, axis=1)
    return out


def _has_gaussian_encoder(model):
    enc = getattr(model, "encoder", None)
    return enc is not None and len(enc.inputs) == 1 and len(enc.outputs) == 2


# -- dense numerical integration ---------------------------------------------------------------
def grid_log_likelihood(model_or_fn, x, latent_dim=None, limit=6.0, points_per_dim=201, batch_size=65536):
    """log p(x) = log int N(z | 0, I) p(x|z) dz by the midpoint rule on a grid over
    [-limit, limit]^d: exact up to discretisation for d <= 3 (the prior mass
    outside |z_i| < 6 is ~1e-9 per dimension). batch_size: (x, z) pairs per call.
    Returns NumPy float64 (n,)."""
    fn, x, d = _resolve(model_or_fn, x, latent_dim)
    if d > 3:
        raise ValueError(f"Grid integration needs latent_dim <= 3 (got {d}); use ais_log_likelihood.")
    g = _positive_int("points_per_dim", points_per_dim)
    if not limit > 0:
        raise ValueError(f"limit must be positive; got {limit}.")
    rows = _positive_int("batch_size", batch_size)
    h = 2.0 * limit / g
    axis = -limit + h * (np.arange(g) + 0.5)
    grid = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), -1).reshape(-1, d)
    log_prior = _standard_normal_logpdf(grid) + d * math.log(h)
    out = np.empty(len(x))
    for i in range(len(x)):
        terms = np.empty(len(grid))
        for s in range(0, len(grid), rows):
            zg = grid[s:s + rows].astype(np.float32)
            terms[s:s + rows] = _log_likelihood(fn, np.repeat(x[i:i + 1], len(zg), axis=0), zg)
        terms += log_prior
        m = terms.max()
        out[i] = m + math.log(np.exp(terms - m).sum())
    return out


__all__ = ["ais_log_likelihood", "annealing_schedule", "grid_log_likelihood", "iwae_log_likelihood",
           "log_mean_exp", "model_log_likelihood_fn"]
