"""The Retrieve tab's database: images hashed once per (preset weights, database) pair
by a hashing preset, the index cached on disk under `$ZOO_CACHE/demo` (default
~/.cache/keras-gan-zoo/demo).

The database must exist offline. By default ("auto") a hashing preset searches
images of its own data set: the shipped test-split sample of CIFAR-10 or MNIST
(demos/samples.py); a preset of another data set gets scikit-learn's
`load_digits` (1,797 labelled 8x8 digits, in the scikit-learn wheel), padded by
2 pixels and resized. `--database` takes "cifar10", "mnist", "digits", anything
`zoo.data.load_arrays` reads (a keras-style .npz, an image folder or a zip of
one) or a tfds name.
"""

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demos.catalog import padded
from demos.images import convert_images
from demos.samples import SHIPPED, load_sample

log = logging.getLogger("demos")
AUTO = "auto"


def cache_root():
    from zoo.data.sources import cache_dir

    return cache_dir() / "demo"


def load_database_arrays(spec, split="test", limit=None):
    """(x uint8 NHWC, y int64, class names, description) of a database spec: "cifar10" or
    "mnist" (the samples shipped in demos/data, offline), "digits" (scikit-learn's
    load_digits, offline), or anything zoo.data.load_arrays reads."""
    if spec in SHIPPED:
        x, y, names, desc, _ = load_sample(spec, split if split in ("train", "test") else "test")
    elif spec in (None, "", "digits"):
        from sklearn.datasets import load_digits

        d = load_digits()
        x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)  # ink is high: light digits on black
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None]  # a margin, as MNIST's
        y = d.target.astype(np.int64)
        names, desc = [str(i) for i in range(10)], "scikit-learn's load_digits (1,797 labelled 8x8 digits)"
    else:
        from zoo.data import load_arrays

        x, y, names = load_arrays(spec, split)
        desc = f"{spec} ({split} split)"
    if limit and len(x) > limit:
        keep = np.sort(np.random.default_rng(0).permutation(len(x))[:limit])
        x, y = x[keep], y[keep]
        desc += f", {limit:,} images drawn with seed 0"
    if not names or len(names) <= int(y.max()):
        names = [str(i) for i in range(int(y.max()) + 1)]
    return x, y, list(names), desc


def database_for(info, spec=AUTO):
    """The database a hashing preset searches: with `spec` "auto", the shipped test sample of
    its own data set (its metadata's `dataset`: cifar10 or mnist), else load_digits."""
    if spec not in (None, "", AUTO):
        return spec
    return info.dataset if info.dataset in SHIPPED else "digits"


@dataclass
class Database:
    x: np.ndarray  # uint8, converted to the preset's shape
    y: np.ndarray
    names: list
    index: object  # zoo.retrieval.HammingIndex
    description: str
    codes: np.ndarray  # packed uint8 (n, ceil(bits / 8)): the index's codes, for showing a result's bits
    cache_path: Path
    from_cache: bool
    seconds: float


class Retrieval:
    """One hashed database per DSH-GAN preset, built on first use and cached on disk."""

    def __init__(self, store, spec=AUTO, split="test", limit=10_000):
        self.store, self.spec, self.split, self.limit = store, spec or AUTO, split, limit
        self._dbs, self._lock = {}, threading.Lock()
        self._raws = {}

    def spec_for(self, name):
        return database_for(self.store.info(name), self.spec)

    def raw(self, name):
        """(x, y, class names, description) of the database of preset `name`, before conversion."""
        spec = self.spec_for(name)
        if spec not in self._raws:
            self._raws[spec] = load_database_arrays(spec, self.split, self.limit)
        return self._raws[spec]

    def class_names(self, name):
        with self._lock:
            return self.raw(name)[2]

    def get(self, name, progress=None):
        with self._lock:
            if name in self._dbs:
                return self._dbs[name]
            db = self._build(name, progress)
            self._dbs[name] = db
            return db

    def _build(self, name, progress):
        from zoo.retrieval import HammingIndex

        start = time.monotonic()
        model = self.store.get(name)
        x_raw, y, names, desc = self.raw(name)
        shape = tuple(model.data_shape)
        fp = hashlib.sha256()
        fp.update(repr((x_raw.shape, shape)).encode())
        fp.update(x_raw.tobytes())
        fp.update(y.tobytes())
        weights = self.store.info(name).meta.get("sha256") or name
        path = cache_root() / f"{name}-{weights[:16]}-{fp.hexdigest()[:16]}.hidx"
        x = convert_images(x_raw, shape, progress)
        if path.exists():
            try:
                index = HammingIndex.load(path)
                if len(index) == len(x) and index.bits == model.code_length:
                    return Database(x, y, names, index, desc, index.codes.copy(), path, True,
                                    time.monotonic() - start)
            except (OSError, ValueError) as e:
                log.warning("rebuilding the index: %s", e)
        index = HammingIndex(model.code_length)
        batch = 512
        with self.store.lock(name):
            for s in range(0, len(x), batch):
                if progress is not None:
                    progress(s / len(x), desc=f"Hashing the database with {name}: {s:,}/{len(x):,}")
                index.add(padded(model.hash, x[s:s + batch], bucket=batch))
        path.parent.mkdir(parents=True, exist_ok=True)
        index.save(path)
        return Database(x, y, names, index, desc, index.codes.copy(), path, False, time.monotonic() - start)


def exact_first(db, query, distances, ids, k):
    """Put database images identical to the query (pixel for pixel) first among the
    distance-0 hits, so a database image retrieves itself first whatever the tie order."""
    lims, _, zero_ids = db.index.range_search(query["code"], 0)
    same = [int(i) for i in zero_ids if np.array_equal(db.x[i], query["x"])]
    if not same:
        return distances, ids
    rest = [(int(d), int(i)) for d, i in zip(distances, ids) if int(i) not in same]
    pairs = [(0, i) for i in same] + rest
    pairs = pairs[:k]
    return np.array([d for d, _ in pairs]), np.array([i for _, i in pairs])


def code_bits(packed, bits):
    """A packed uint8 code as its string of 0s and 1s (first bit first, as np.unpackbits)."""
    return "".join("1" if b else "0" for b in np.unpackbits(np.asarray(packed, np.uint8))[:bits])

