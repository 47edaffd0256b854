"""Helpers shared by the latent-variable models: the Gaussian posterior and image I/O."""

import math

import numpy as np
from keras import ops


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


def check_real_batch(x, data_shape, data_range):
    """Raise a ValueError naming the problem if `x` is not a batch of real data."""
    x = np.asarray(x)
    if tuple(x.shape[1:]) != tuple(data_shape):
        raise ValueError(
            f"Expected data of shape (batch, {', '.join(map(str, data_shape))}); "
            f"got {x.shape}."
        )
    if not np.issubdtype(x.dtype, np.floating):
        hint = " (raw uint8 pixels? zoo.data scales them)" if x.dtype == np.uint8 else ""
        raise ValueError(f"Expected floating-point data; got dtype {x.dtype}{hint}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("The data holds NaN or infinite values.")
    if data_range is not None and x.size:
        lo, hi = data_range
        tol = 1e-3 * (hi - lo)
        if x.min() < lo - tol or x.max() > hi + tol:
            raise ValueError(
                f"Data values span [{x.min():.3g}, {x.max():.3g}], outside the model's "
                f"data_range [{lo:g}, {hi:g}]; scale them (zoo.data does)."
            )


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
    if x.dtype == np.uint8:
        x = x.astype("float32") / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        if x.size and (x.min() < -1e-3 or x.max() > 1 + 1e-3):
            raise ValueError(
                f"Float images must be in [0, 1]; got values in [{x.min():.3g}, {x.max():.3g}]."
            )
        x = x.astype("float32")
    else:
        raise ValueError(f"Images must be uint8 or float in [0, 1]; got dtype {x.dtype}.")
    lo, hi = data_range
    return x * (hi - lo) + lo


def model_to_unit(x, data_range):
    """Model outputs in data_range -> NumPy float32 in [0, 1]."""
    x = ops.convert_to_numpy(x)
    lo, hi = data_range
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype("float32")


def in_batches(fn, arrays, batch_size=256):
    """Apply fn to aligned slices of `arrays`; concatenate each output (NumPy)."""
    n = len(arrays[0])
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
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")


__all__ = [
    "reparameterize", "gaussian_kl", "gaussian_nll", "bernoulli_nll",
    "check_real_batch", "images_to_model", "model_to_unit", "in_batches", "slerp", "seeded_normal",
]
