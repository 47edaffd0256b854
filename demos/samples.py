"""The data samples shipped in demos/data, and the Generate tab's nearest training images.

Each sample is a seeded, class-balanced draw from CIFAR-10's or MNIST's train and
test splits (demos/build_samples.py builds them from the full data sets and
records seed and source sha256): the test samples are the offline retrieval
databases, the train samples what generated images are compared with.
"""

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demos.errors import UserError
from demos.images import convert_images

SAMPLES_DIR = Path(__file__).resolve().parent / "data"
SHIPPED = {"cifar10": ("cifar10_sample.npz", "CIFAR-10"), "mnist": ("mnist_sample.npz", "MNIST")}


@functools.lru_cache(maxsize=None)
def load_sample(dataset, split):
    """(x uint8 NHWC, y int64, class names, description, where) of a sample shipped in demos/data:
    a seeded, class-balanced draw from `dataset`'s `split` (demos/build_samples.py made it).
    `where[i]`: the source of image i (the zip member, or the position in the source's split)."""
    filename, title = SHIPPED[dataset]
    path = SAMPLES_DIR / filename
    try:
        with np.load(path, allow_pickle=False) as d:
            x, y = d[f"x_{split}"], d[f"y_{split}"].astype(np.int64)
            names = [str(c) for c in d["class_names"]]
            where = d[f"{split}_source"]
            seed, source, sha = int(d["seed"]), str(d["source"]), str(d["source_sha256"])
    except (OSError, KeyError, ValueError) as e:
        raise UserError(f"The demo's {title} sample {path} is missing or unreadable ({e}); rebuild it with "
                        "`python -m demos.build_samples`.") from None
    if np.issubdtype(where.dtype, np.integer):
        where = [f"x_{split}[{int(i)}]" for i in where]
    else:
        where = [str(w) for w in where]
    per_class = len(x) // max(1, len(np.unique(y)))
    desc = (f"a seeded sample of {title}'s {split} split shipped with the demo ({len(x):,} images, {per_class:,} "
            f"a class, seed {seed}, from {source} sha256 {sha[:12]}...; demos/data/{filename})")
    return x, y, names, desc, where


# ---------------------------------------------------------------------------------------------
# Nearest training images
# ---------------------------------------------------------------------------------------------
NEAREST_K = 4  # nearest training images per sample
SCALE_QUERIES = 256  # test images whose nearest-training distance gives the scale


@dataclass
class TrainingSample:
    x: np.ndarray  # uint8, in the generator's shape
    y: np.ndarray
    names: list
    where: list
    description: str
    flat: np.ndarray  # float32 (n, H*W*C), pixels in [0, 1]
    sq: np.ndarray  # squared norms of `flat`
    test_median: float  # median L2 from a shipped test image to its nearest image here
    test_min: float

    def nearest(self, images, k=NEAREST_K):
        """(distances float, ids int) of the k nearest (L2 in pixel space, [0, 1]) per image."""
        q = np.asarray(images, np.float32).reshape(len(images), -1)
        d2 = (q * q).sum(1)[:, None] + self.sq[None] - 2.0 * (q @ self.flat.T)
        ids = np.argsort(d2, axis=1, kind="stable")[:, :k]
        return np.sqrt(np.maximum(np.take_along_axis(d2, ids, 1), 0.0)), ids


class TrainingSamples:
    """The shipped train-split sample of each generator's data set, in its shape, built on first use."""

    def __init__(self, store):
        self.store, self._samples, self._lock = store, {}, threading.Lock()

    def dataset_of(self, name):
        dataset = self.store.info(name).dataset
        return dataset if dataset in SHIPPED else None

    def get(self, name, shape):
        dataset = self.dataset_of(name)
        if dataset is None:
            return None
        key = (dataset, tuple(shape))
        with self._lock:
            if key not in self._samples:
                x, y, names, desc, where = load_sample(dataset, "train")
                x = convert_images(x, tuple(shape))
                flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
                sample = TrainingSample(x, y, names, where, desc, flat, (flat * flat).sum(1), 0.0, 0.0)
                tx = convert_images(load_sample(dataset, "test")[0][:SCALE_QUERIES], tuple(shape))
                d, _ = sample.nearest(tx.astype(np.float32) / 255.0, k=1)
                sample.test_median, sample.test_min = float(np.median(d)), float(d.min())
                self._samples[key] = sample
            return self._samples[key]
