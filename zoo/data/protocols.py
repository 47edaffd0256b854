"""Seeded evaluation protocols, so that a figure can name the split it used.

The CIFAR-10 hashing protocol of DSH-GAN (Qiu et al. 2017) and the deep
hashing papers before it: pool all 60,000 images (train then test of the
source), draw 1,000 queries (100 a class); the other 59,000 are the retrieval
database; 5,000 labelled training images (500 a class) are drawn from the
database, and the remaining 54,000 database images are the unlabelled pool of
the semi-supervised GAN. Papers differ on these choices: state the seed (0 by
default) with every figure, and that the images are the JPEG export in
`shared/datasets/cifar10.zip`, a lossy re-encoding of CIFAR-10 rather than
the original binary batches.
"""

import dataclasses

import numpy as np

from zoo.data.pipeline import split_per_class
from zoo.data.sources import load_arrays

CIFAR10_PROTOCOL_SEED = 0


@dataclasses.dataclass(frozen=True, repr=False)
class HashingSplit:
    """Indices into `x`/`y` of the four parts of a hashing protocol.

    `query`, `train` and `unlabelled` are sorted. `database` (`train` and
    `unlabelled` together) is in a seeded random order: Hamming ranking breaks
    distance ties by database position, and a class-sorted database would make
    ties favour the first classes.
    """

    x: np.ndarray
    y: np.ndarray
    query: np.ndarray
    train: np.ndarray
    database: np.ndarray
    unlabelled: np.ndarray
    seed: int

    def arrays(self, part):
        """`(x, y)` of one part: "query", "train", "database" or "unlabelled"."""
        if part not in ("query", "train", "database", "unlabelled"):
            raise ValueError(
                f"part must be 'query', 'train', 'database' or 'unlabelled'; got {part!r}."
            )
        idx = getattr(self, part)
        return self.x[idx], self.y[idx]

    def __repr__(self):
        return (
            f"HashingSplit(seed={self.seed}, query={len(self.query)}, train={len(self.train)}, "
            f"database={len(self.database)}, unlabelled={len(self.unlabelled)})"
        )


def hashing_split(x, y, queries_per_class=100, train_per_class=500, seed=CIFAR10_PROTOCOL_SEED):
    """Split `(x, y)` into queries, labelled training images, database and unlabelled pool.

    Queries are drawn per class from everything; the labelled training images
    per class from the rest, which is the database. `x` may be None when only
    the indices are wanted. The two draws and the
    database order use independent streams spawned from `SeedSequence(seed)`.
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be class ints of shape (n,); got {y.dtype} {y.shape}.")
    if x is not None and len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels.")
    query_seed, train_seed, order_seed = np.random.SeedSequence(seed).spawn(3)
    query, database = split_per_class(y, queries_per_class, seed=query_seed)
    train, unlabelled = split_per_class(y[database], train_per_class, seed=train_seed)
    train, unlabelled = database[train], database[unlabelled]
    database = np.random.default_rng(order_seed).permutation(database)
    return HashingSplit(x, y, query, train, database, unlabelled, int(seed))


def validation_split(split, per_class=50, seed=0):
    """A validation protocol inside `split`'s labelled images, for model selection.

    `per_class` labelled images a class (seeded; 500 of CIFAR-10's 5,000 by
    default) become the queries; the other labelled images are the training
    set, and the database is `split`'s without the new queries (same order).
    The protocol's own queries are in none of its parts: choices made on this
    split never see them. Returns a `HashingSplit` of the same `x`/`y`.
    """
    chosen, rest = split_per_class(split.y[split.train], per_class, seed=np.random.SeedSequence([seed, 1]))
    query, train = split.train[chosen], split.train[rest]
    database = split.database[~np.isin(split.database, query)]
    return HashingSplit(split.x, split.y, query, train, database, split.unlabelled, split.seed)


def cifar10_hashing_split(path=None, seed=CIFAR10_PROTOCOL_SEED):
    """The CIFAR-10 protocol on the zip export: 1,000 queries, 5,000 labelled, 59,000 database.

    `path` defaults to `$ZOO_DATA_DIR/cifar10.zip` or `../shared/datasets/cifar10.zip`
    next to the repository. Images are pooled in the order train, then test.
    """
    if path is None:
        import os
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        data_dir = Path(os.environ.get("ZOO_DATA_DIR", root.parent / "shared" / "datasets"))
        path = data_dir / "cifar10.zip"
    x_train, y_train, _ = load_arrays(path, "train")
    x_test, y_test, _ = load_arrays(path, "test")
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test])
    return hashing_split(x, y, 100, 500, seed)
