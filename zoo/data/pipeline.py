"""tf.data pipelines scaled to a model's range, and seeded splits.

tf.data feeds `model.fit` on every Keras backend (Keras converts batches to
JAX or torch tensors), so one pipeline serves all three. TensorFlow is imported
when a pipeline is built, not with the zoo: a JAX or PyTorch machine without it
still imports every model, and `semi_supervised_dataset` falls back to a seeded
NumPy stream there.
"""

import importlib.util

import numpy as np

from zoo.data import ranges
from zoo.data.ranges import renamed_value_range
from zoo.data.sources import load_arrays


def has_tensorflow():
    return importlib.util.find_spec("tensorflow") is not None


def _tf():
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ImportError(
            "zoo.data's tf.data pipelines need TensorFlow (pip install tensorflow). Without it, "
            "pass NumPy arrays to fit, or semi_supervised_dataset(..., stream='numpy')."
        ) from e
    return tf


def scale(x, data_range=(-1.0, 1.0), *, value_range=None):
    """uint8 pixels [0, 255] -> float32 in `data_range` (NumPy or tf tensors).
    `value_range`: the deprecated name of `data_range`."""
    data_range = renamed_value_range(data_range, value_range, "scale")
    if isinstance(x, np.ndarray):
        return ranges.from_unit(ranges.pixels_to_unit(x), data_range)
    tf = _tf()
    return ranges.from_unit(tf.cast(x, tf.float32) / ranges.PIXEL_MAX, data_range)


def make_dataset(
    x,
    y=None,
    batch_size=64,
    data_range=(-1.0, 1.0),
    shuffle=True,
    seed=0,
    drop_remainder=True,
    repeat=False,
    *,
    value_range=None,
):
    """A batched, shuffled (seeded), prefetched tf.data pipeline of uint8 images.

    Images stay uint8 in memory and are scaled per batch to `data_range` (the
    model's; `value_range` is its deprecated name). Yields `x` or `(x, y)`.
    `drop_remainder` keeps every batch the same size (k D-steps split a batch).
    """
    data_range = renamed_value_range(data_range, value_range, "make_dataset")
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"make_dataset expects uint8 images; got {x.dtype}.")
    if y is not None and len(y) != len(x):
        raise ValueError(f"{len(x)} images but {len(y)} labels.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive; got {batch_size}.")
    if drop_remainder and len(x) < batch_size:
        raise ValueError(
            f"Only {len(x)} examples for batch_size {batch_size} with drop_remainder."
        )
    tf = _tf()
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, np.asarray(y)))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if y is None:
        ds = ds.map(lambda b: scale(b, data_range), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda b, l: (scale(b, data_range), l), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load(
    source,
    split="train",
    batch_size=64,
    data_range=(-1.0, 1.0),
    labels=False,
    shuffle=True,
    seed=0,
    drop_remainder=True,
    take=None,
    *,
    value_range=None,
):
    """Load `source` (tfds name, .npz, image folder or zip) as a tf.data pipeline,
    images scaled to `data_range` (`value_range`: its deprecated name).

    `labels=True` yields `(images, int labels)` for conditional models. `take`
    keeps the first `take` examples (before shuffling).
    """
    data_range = renamed_value_range(data_range, value_range, "load")
    x, y, _ = load_arrays(source, split)
    if take is not None:
        x, y = x[:take], y[:take]
    return make_dataset(
        x, y if labels else None, batch_size=batch_size, data_range=data_range,
        shuffle=shuffle, seed=seed, drop_remainder=drop_remainder,
    )


def split_per_class(y, per_class, seed=0):
    """Seeded split by count per class: (chosen indices, the rest), both sorted.

    DSH-GAN's protocol: e.g. 100 queries a class, then 500 labelled a class;
    raises if a class has fewer than `per_class` examples.
    """
    y = np.asarray(y).reshape(-1)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < per_class:
            raise ValueError(f"Class {c} has {len(idx)} examples, fewer than {per_class}.")
        chosen.append(rng.choice(idx, per_class, replace=False))
    chosen = np.sort(np.concatenate(chosen))
    rest = np.setdiff1d(np.arange(len(y)), chosen)
    return chosen, rest


def holdout(n, count, seed=0):
    """Seeded split of range(n): (`count` held-out indices, the rest), both sorted."""
    if not 0 <= count <= n:
        raise ValueError(f"Cannot hold out {count} of {n} examples.")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:count]), np.sort(perm[count:])


def semi_supervised_dataset(
    x_labelled,
    y_labelled,
    x_unlabelled,
    batch_size=64,
    labelled_fraction=0.5,
    data_range=(-1.0, 1.0),
    seed=0,
    stream="auto",
    *,
    value_range=None,
):
    """An endless pipeline of `(images, labels)` mixing labelled and unlabelled
    images, for semi-supervised models (DSH-GAN). Unlabelled images carry label
    -1 (integer labels) or an all-zero vector (label vectors).

    Each example is drawn from the labelled set with probability
    `labelled_fraction` (seeded), so a batch holds that share of labelled images
    on average however few labels there are (DSH-GAN's CIFAR-10 protocol has
    5,000 labelled against 54,000 unlabelled). Endless: pass `steps_per_epoch` to fit.

    `stream`: "tf.data", "numpy" (a generator of NumPy batches with the same
    sampling law, not the same draws) or "auto" (tf.data when TensorFlow is installed).
    Images are scaled to `data_range` (`value_range`: its deprecated name).
    """
    data_range = renamed_value_range(data_range, value_range, "semi_supervised_dataset")
    x_labelled, x_unlabelled = np.asarray(x_labelled), np.asarray(x_unlabelled)
    y_labelled = np.asarray(y_labelled)
    for name, x in (("x_labelled", x_labelled), ("x_unlabelled", x_unlabelled)):
        if x.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8 images; got {x.dtype}.")
    if len(y_labelled) != len(x_labelled):
        raise ValueError(f"{len(x_labelled)} labelled images but {len(y_labelled)} labels.")
    if x_labelled.shape[1:] != x_unlabelled.shape[1:]:
        raise ValueError(
            f"Labelled images are {x_labelled.shape[1:]}, unlabelled {x_unlabelled.shape[1:]}."
        )
    if not 0.0 < labelled_fraction <= 1.0:
        raise ValueError(f"labelled_fraction must be in (0, 1]; got {labelled_fraction}.")
    if y_labelled.ndim == 1:
        y_labelled = y_labelled.astype("int32")
        y_unlabelled = np.full(len(x_unlabelled), -1, "int32")
    else:
        y_labelled = y_labelled.astype("float32")
        y_unlabelled = np.zeros((len(x_unlabelled), y_labelled.shape[1]), "float32")
    if stream not in ("auto", "tf.data", "numpy"):
        raise ValueError(f"stream must be 'auto', 'tf.data' or 'numpy'; got {stream!r}.")
    use_unlabelled = labelled_fraction < 1.0 and len(x_unlabelled) > 0
    if stream == "numpy" or (stream == "auto" and not has_tensorflow()):
        parts = [(x_labelled, y_labelled)] + ([(x_unlabelled, y_unlabelled)] if use_unlabelled else [])
        weights = [labelled_fraction, 1.0 - labelled_fraction][: len(parts)]
        return _numpy_mix(parts, weights, batch_size, data_range, seed)
    tf = _tf()

    def endless(x, y, s):
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        return ds.shuffle(len(x), seed=s, reshuffle_each_iteration=True).repeat()

    parts = [endless(x_labelled, y_labelled, seed)]
    weights = [labelled_fraction]
    if use_unlabelled:
        parts.append(endless(x_unlabelled, y_unlabelled, seed + 1))
        weights.append(1.0 - labelled_fraction)
    ds = tf.data.Dataset.sample_from_datasets(parts, weights, seed=seed)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda b, l: (scale(b, data_range), l), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _numpy_mix(parts, weights, batch_size, data_range, seed):
    """Endless `(images, labels)` batches: each example from part i with
    probability weights[i]; each part read in a fresh seeded permutation per pass."""
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(len(x)) for x, _ in parts]
    cursors = [0] * len(parts)
    weights = np.asarray(weights, "float64") / np.sum(weights)

    def take(i, n):
        out = []
        while n:
            if cursors[i] == len(orders[i]):
                orders[i], cursors[i] = rng.permutation(len(orders[i])), 0
            got = orders[i][cursors[i]: cursors[i] + n]
            cursors[i] += len(got)
            n -= len(got)
            out.append(got)
        return np.concatenate(out)

    while True:
        which = rng.choice(len(parts), size=batch_size, p=weights)
        xs, ys = [], []
        for i, (x, y) in enumerate(parts):
            idx = take(i, int(np.sum(which == i)))
            xs.append(x[idx])
            ys.append(y[idx])
        perm = rng.permutation(batch_size)  # interleave the parts within the batch
        yield scale(np.concatenate(xs)[perm], data_range), np.concatenate(ys)[perm]
