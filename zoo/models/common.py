"""Helpers shared by the latent-variable models: the Gaussian posterior and image I/O."""

import math
import os

import numpy as np
from keras import ops

from zoo.core.checks import check_real_batch, non_finite_message  # noqa: F401  (re-exported)
from zoo.data import ranges


def float32(*tensors):
    """The tensors in float32. Losses are computed in float32 whatever the
    network's compute dtype: under a mixed-precision policy a bfloat16 mean
    keeps about 3 significant digits."""
    cast = [ops.cast(t, "float32") for t in tensors]
    return cast[0] if len(cast) == 1 else cast


def reparameterize(mu, log_var, eps):
    """z = mu + sigma * eps (Kingma & Welling's reparameterisation)."""
    mu, log_var, eps = float32(mu, log_var, eps)
    return mu + ops.exp(0.5 * log_var) * eps


def gaussian_kl(mu, log_var):
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per example, summed over latent dims."""
    mu, log_var = float32(mu, log_var)
    return 0.5 * ops.sum(ops.square(mu) + ops.exp(log_var) - 1.0 - log_var, axis=-1)


def gaussian_nll(x, mean, sigma):
    """-log N(x | mean, sigma^2 I) per example, summed over all but the batch axis."""
    d = float(np.prod(x.shape[1:]))
    x, mean = float32(x, mean)
    sq = ops.sum(ops.reshape(ops.square(x - mean), (ops.shape(x)[0], -1)), axis=-1)
    return 0.5 * sq / sigma**2 + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))


def bernoulli_nll(x, logits):
    """-log Bernoulli(x | sigmoid(logits)) per example, x in [0, 1]."""
    x, logits = float32(x, logits)
    per = ops.softplus(logits) - x * logits
    return ops.sum(ops.reshape(per, (ops.shape(x)[0], -1)), axis=-1)


def reconstruction_nll(x, decoded, likelihood, pixel_sigma):
    """-log p(x|z) per example: Bernoulli on the decoder's logits (x in [0, 1]) or
    a Gaussian of width `pixel_sigma` around its output."""
    if likelihood == "bernoulli":
        return bernoulli_nll(x, decoded)
    return gaussian_nll(x, decoded, pixel_sigma)


def images_to_model(images, data_shape, data_range):
    """User images -> float32 in the model's data_range.

    Accepts uint8 in [0, 255] or floats in [0, 1]; names the problem otherwise.
    """
    x = np.asarray(images)
    if x.ndim == len(data_shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(data_shape):
        raise ValueError(
            f"Expected images of shape (n, {', '.join(map(str, data_shape))}); got {x.shape}."
        )
    if np.issubdtype(x.dtype, np.floating):
        bad = non_finite_message(x)
        if bad:
            raise ValueError(f"The images hold {bad}; pass finite pixels in [0, 1] or uint8.")
        if x.size and (x.min() < -1e-3 or x.max() > 1 + 1e-3):
            raise ValueError(
                f"Float images must be in [0, 1]; got values in [{x.min():.3g}, {x.max():.3g}]."
            )
    elif x.dtype != np.uint8:
        raise ValueError(f"Images must be uint8 or float in [0, 1]; got dtype {x.dtype}.")
    return ranges.to_range(x, data_range)


def model_to_unit(x, data_range):
    """Model outputs in data_range -> NumPy float32 in [0, 1]."""
    return ranges.to_unit(ops.convert_to_numpy(x), data_range)


def check_count(n, what="n"):
    """`n` as a Python int >= 0, or a ValueError naming the problem."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        if isinstance(n, (float, np.floating)) and float(n).is_integer():
            n = int(n)
        else:
            raise ValueError(f"{what} must be a whole number of samples; got {n!r}.")
    if n < 0:
        raise ValueError(f"{what} must be >= 0; got {n}.")
    return int(n)


def available_memory():
    """Bytes this machine can still allocate (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_latents(z, latent_dim):
    """Latent codes as float32 (n, latent_dim), or a ValueError naming the shape or the NaN/Inf."""
    z = np.asarray(z, "float32")
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape (n, {latent_dim}); got {z.shape}.")
    bad = non_finite_message(z)
    if bad:
        raise ValueError(f"z holds {bad}.")
    return z


def check_fits_in_memory(n, per_sample_shape, what="generate", bytes_per_value=4):
    """Refuse a request whose float32 output would not fit in memory, saying how much it needs.

    Half of the available memory is the limit: the model's activations and the
    caller's copies need the rest."""
    need = int(n) * int(np.prod(per_sample_shape)) * bytes_per_value
    have = available_memory()
    if have is not None and need > have / 2:
        raise MemoryError(
            f"{what}({n}) would return {need / 1e9:.1f} GB of float32 values of shape "
            f"(n, {', '.join(map(str, per_sample_shape))}); this machine has {have / 1e9:.1f} GB "
            "available. Ask for fewer at a time (e.g. several calls with different seeds)."
        )


def in_batches(fn, arrays, batch_size=256):
    """Apply fn to aligned slices of `arrays`; concatenate each output (NumPy).

    An empty input gives empty outputs of the right shape (fn runs once on one
    zero row to learn them)."""
    batch_size = check_count(batch_size, "batch_size")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    n = len(arrays[0])
    if n == 0:
        probe = [np.zeros((1, *np.shape(a)[1:]), np.asarray(a).dtype) for a in arrays]
        out = fn(*probe)
        out = out if isinstance(out, (tuple, list)) else (out,)
        res = [ops.convert_to_numpy(o)[:0] for o in out]
        return res[0] if len(res) == 1 else tuple(res)
    outs = None
    for s in range(0, n, batch_size):
        out = fn(*[a[s : s + batch_size] for a in arrays])
        out = out if isinstance(out, (tuple, list)) else (out,)
        out = [ops.convert_to_numpy(o) for o in out]
        outs = [[o] for o in out] if outs is None else [acc + [o] for acc, o in zip(outs, out)]
    res = [np.concatenate(o, axis=0) for o in outs]
    return res[0] if len(res) == 1 else tuple(res)


def slerp(a, b, t):
    """Spherical interpolation between latent codes (White 2016), rows of a and b."""
    a_n = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b_n = b / np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip((a_n * b_n).sum(-1, keepdims=True), -1, 1))
    so = np.sin(omega)
    safe = so > 1e-6
    lin = (1 - t) * a + t * b
    sph = np.sin((1 - t) * omega) / np.where(safe, so, 1) * a + np.sin(t * omega) / np.where(safe, so, 1) * b
    return np.where(safe, sph, lin)


def seeded_normal(n, dim, seed):
    """N(0, I) draws from NumPy: the same z for a seed on every backend."""
    n = check_count(n)
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")


__all__ = [
    "reparameterize", "gaussian_kl", "gaussian_nll", "bernoulli_nll", "reconstruction_nll",
    "check_real_batch", "images_to_model", "non_finite_message", "check_count", "check_latents",
    "check_fits_in_memory", "model_to_unit", "in_batches", "slerp", "seeded_normal",
]
