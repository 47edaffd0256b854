"""Low-dimensional data with known densities, for theory tests and mode coverage.

`ring` (8 Gaussians on a circle of radius 2, std 0.02) and `grid` (25 Gaussians at
{-4, -2, 0, 2, 4}^2, std 0.05) are the benchmarks of VEEGAN (Srivastava et al.
2017) and PacGAN (Lin et al. 2018).
"""

import numpy as np


def ring_modes(n_modes=8, radius=2.0):
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def grid_modes(side=5, spacing=2.0):
    coords = (np.arange(side) - (side - 1) / 2) * spacing
    return np.array([(a, b) for a in coords for b in coords])


MIXTURES = {"ring": (ring_modes, 0.02), "grid": (grid_modes, 0.05)}


def mixture(name, n, seed=0):
    """n samples of the named 2-D mixture, float32, with its (modes, std)."""
    make_modes, std = MIXTURES[name]
    modes = make_modes()
    rng = np.random.default_rng(seed)
    which = rng.integers(len(modes), size=n)
    x = modes[which] + std * rng.standard_normal((n, 2))
    return x.astype(np.float32), modes, std


def mode_coverage(samples, modes, std, min_count=None):
    """VEEGAN/PacGAN's figures: (modes covered, share of high-quality samples).

    A sample is high quality if within 3 std of its nearest mode; a mode is
    covered if it receives at least `min_count` high-quality samples (default:
    a fifth of a uniform share, i.e. len(samples) / len(modes) / 5).
    """
    samples = np.asarray(samples, dtype=np.float64)
    d = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
    nearest = d.argmin(axis=1)
    good = d[np.arange(len(samples)), nearest] <= 3 * std
    if min_count is None:
        min_count = max(1, len(samples) // len(modes) // 5)
    counts = np.bincount(nearest[good], minlength=len(modes))
    return int((counts >= min_count).sum()), float(good.mean())
