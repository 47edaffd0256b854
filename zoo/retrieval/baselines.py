"""Unsupervised hashing baselines that DSH-GAN's paper compares against.

Both learn from feature vectors (pixels, or a network's features) and give
packed codes for `HammingIndex` and `zoo.metrics.retrieval`:

- `LSH`: random Gaussian projections of zero-centred features, one bit each
  (Charikar's sign random projections); the "no learning" floor.
- `ITQ`: Gong & Lazebnik, "Iterative Quantization", CVPR 2011: PCA to `bits`
  dimensions, then a rotation that makes the signs lose as little as possible
  (50 alternating iterations, as in the paper).

A bit is 1 where the projected value is >= 0. NumPy only, seeded, so codes
are reproducible.
"""

import numpy as np

from zoo.retrieval.index import _check_bits, pack_codes


def _features(x, name="features"):
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{name}: expected shape (n, ...) with a feature axis; got {x.shape}.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{name}: expected numbers; got dtype {x.dtype}.")
    x = x.reshape(len(x), -1).astype(np.float64)  # a copy: centred in place below
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinity.")
    return x


class _Hasher:
    def __init__(self, bits, seed=0):
        self.bits = _check_bits(bits)
        self.seed = int(seed)
        self.mean = None
        self.projection = None  # (features, bits)

    def _check_fitted(self, x):
        if self.projection is None:
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(features) first.")
        if x.shape[1] != self.projection.shape[0]:
            raise ValueError(
                f"Fitted on {self.projection.shape[0]} features; got {x.shape[1]}."
            )

    def encode(self, x):
        """Packed `uint8` codes `(n, ceil(bits / 8))` of features `(n, ...)`."""
        x = _features(x)
        self._check_fitted(x)
        x -= self.mean
        return pack_codes(x @ self.projection >= 0)

    def fit_encode(self, x):
        return self.fit(x).encode(x)


class LSH(_Hasher):
    """Sign random projections: `bits` seeded Gaussian directions through the mean."""

    def fit(self, x):
        x = _features(x)
        rng = np.random.default_rng(self.seed)
        self.mean = x.mean(axis=0)
        self.projection = rng.standard_normal((x.shape[1], self.bits))
        return self


class ITQ(_Hasher):
    """Iterative quantization: PCA to `bits` dimensions, then a learned rotation.

    Args:
        bits: code length; at most the number of features (and of examples).
        iterations: alternating updates of codes and rotation (50 in the paper).
        seed: for the random initial rotation.
    """

    def __init__(self, bits, iterations=50, seed=0):
        super().__init__(bits, seed)
        self.iterations = int(iterations)

    def fit(self, x):
        x = _features(x)
        n, d = x.shape
        if self.bits > min(n, d):
            raise ValueError(
                f"ITQ needs at least {self.bits} features and examples for {self.bits} bits; "
                f"got {n} examples of {d} features."
            )
        self.mean = x.mean(axis=0)
        xc = x
        xc -= self.mean  # in place: pixel features of 59,000 images take 1.4 GB
        # PCA: top `bits` eigenvectors of the covariance, signs fixed so that
        # the largest entry of each is positive (LAPACK may flip them).
        _, vectors = np.linalg.eigh(xc.T @ xc / n)
        pca = vectors[:, ::-1][:, : self.bits]
        pca *= np.sign(pca[np.abs(pca).argmax(axis=0), np.arange(self.bits)])
        v = xc @ pca
        rng = np.random.default_rng(self.seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
        for _ in range(self.iterations):
            b = np.where(v @ rotation >= 0, 1.0, -1.0)
            # Fix B, the rotation minimising ||B - V R|| is the orthogonal
            # Procrustes solution from the SVD of B^T V.
            u, _, wt = np.linalg.svd(b.T @ v)
            rotation = wt.T @ u.T
        self.projection = pca @ rotation
        return self
