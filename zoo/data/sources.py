"""Where images come from: a tfds name, a `.npz`, or an image folder / zip.

`load_arrays(source, split)` returns `(x, y, class_names)` with `x` uint8 of shape
(n, height, width, channels) and `y` int64 of shape (n,), whatever the source:

- a path to a `.npz` in the `keras.datasets` layout (`x_train`, `y_train`,
  `x_test`, `y_test`);
- a path to an image folder or a zip of one, laid out `<split>/<class>/*.jpg`
  (labels are the alphabetical index of the class folder); decoded once and
  cached as `.npy` under `$ZOO_CACHE` (default `~/.cache/keras-gan-zoo`);
- a tensorflow-datasets name (`"mnist"`, or `"tfds:mnist"`), for users who can
  download.
"""

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from zoo.data import ranges

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class DataError(ValueError):
    """A data set that cannot be read as images and labels; the message names the file,
    the member or key, and the problem. `recipes.train` prints it as one line."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The data path does not exist."""


def cache_dir():
    return Path(os.environ.get("ZOO_CACHE", Path.home() / ".cache" / "keras-gan-zoo"))


def load_arrays(source, split="train"):
    """Load a split of a data set as NumPy arrays `(x uint8 NHWC, y int64, class_names)`."""
    source = str(source)
    if source.startswith("tfds:"):
        return _load_tfds(source[len("tfds:"):], split)
    path = Path(source).expanduser()
    looks_like_path = os.sep in source or path.suffix != "" or source.startswith(".")
    if not path.exists():
        if looks_like_path:
            raise DataNotFoundError(
                f"Data path {source!r} does not exist (expected a .npz, an image "
                "folder or a .zip of one)."
            )
        return _load_tfds(source, split)
    if path.suffix == ".npz":
        return _load_npz(path, split)
    if path.is_dir() or path.suffix == ".zip":
        return _load_image_folder(path, split)
    raise DataError(
        f"Cannot read {source!r}: expected a .npz file, an image folder or a .zip of one."
    )


def _as_nhwc_uint8(x, where):
    """Images as uint8 NHWC. uint8 passes; floats in [0, 1] are scaled to [0, 255];
    whole-valued numbers in [0, 255] are cast; anything else is refused by name."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{where}: expected images (n, h, w[, c]); got shape {x.shape}.")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: expected numeric pixels; got dtype {x.dtype}.")
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        if not finite.all():
            n_nan = int(np.isnan(x).sum())
            raise DataError(
                f"{where}: {n_nan} NaN and {int(finite.size - finite.sum()) - n_nan} infinite "
                f"pixel values (dtype {x.dtype}); images must be finite."
            )
    if x.size == 0:
        return x.astype(np.uint8)
    lo, hi = x.min(), x.max()
    if x.dtype.kind == "f" and lo >= 0 and hi <= 1:
        # Floats in [0, 1] (the usual float image convention): scale, do not truncate to 0.
        return ranges.to_pixels(x)
    if lo < 0 or hi > 255:
        raise DataError(
            f"{where}: pixels span [{lo:g}, {hi:g}] (dtype {x.dtype}); expected uint8 in [0, 255] "
            "or floats in [0, 1]."
        )
    if x.dtype.kind == "f" and not np.all(np.equal(np.mod(x, 1), 0)):
        raise DataError(
            f"{where}: float pixels span [{lo:g}, {hi:g}] and are not whole numbers; expected "
            "floats in [0, 1] or whole numbers in [0, 255]."
        )
    return x.astype(np.uint8)


def _as_labels(y, where, n_images):
    """Labels as int64 class indices 0..C-1, checked: whole numbers, not negative, dense."""
    y = np.asarray(y)
    if y.ndim > 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise DataError(f"{where}: expected one integer label per image; got shape {y.shape}.")
    y = y.reshape(-1)
    if len(y) != n_images:
        raise DataError(f"{where}: {n_images} images but {len(y)} labels.")
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where}: labels must be integers; got dtype {y.dtype}.")
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & np.equal(np.mod(y, 1), 0)
        if not whole.all():
            raise DataError(
                f"{where}: {int((~whole).sum())} labels are not whole numbers (e.g. {y[~whole][0]!r}); "
                "labels must be class indices 0, 1, ..."
            )
    y = y.astype(np.int64)
    if y.size == 0:
        return y
    if y.min() < 0:
        raise DataError(
            f"{where}: {int((y < 0).sum())} labels are negative (min {y.min()}); labels must be "
            "class indices 0, 1, ..."
        )
    n_classes, distinct = int(y.max()) + 1, len(np.unique(y))
    # A small set may miss a few classes; a label far beyond the number of distinct
    # values (1,000,000 among ten) is an id or a corrupt value, not a class index.
    if n_classes > 100 and n_classes > 2 * distinct:
        raise DataError(
            f"{where}: labels go up to {n_classes - 1} but only {distinct} distinct values occur; "
            "labels must be class indices 0..C-1."
        )
    return y


def _load_npz(path, split):
    keys = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
    if split not in keys:
        raise DataError(f"{path}: split must be 'train' or 'test'; got {split!r}.")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile.BadZipFile, OSError, ValueError, ...
        raise DataError(f"{path} is not a readable .npz file: {e}") from e
    with data:
        xk, yk = keys[split]
        missing = [k for k in (xk, yk) if k not in data.files]
        if missing:
            raise DataError(
                f"{path} lacks {missing}; expected the keras.datasets layout "
                f"(x_train, y_train, x_test, y_test), found {sorted(data.files)}."
            )
        arrays = {}
        for k in (xk, yk):
            try:
                arrays[k] = data[k]
            except Exception as e:  # a truncated member, an object array (pickle refused)
                raise DataError(f"{path}: cannot read key {k!r}: {e}") from e
        x = _as_nhwc_uint8(arrays[xk], f"{path} [{xk}]")
        y = _as_labels(arrays[yk], f"{path} [{yk}]", len(x))
    n_classes = int(y.max()) + 1 if len(y) else 0
    return x, y, [str(i) for i in range(n_classes)]


def _load_image_folder(path, split):
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{split}".encode()).hexdigest()[:16]
    cached = cache_dir() / f"{path.stem}-{split}-{key}.npz"
    if cached.exists():
        with np.load(cached) as d:
            return d["x"], d["y"], [str(c) for c in d["classes"]]
    x, y, classes = _decode_image_folder(path, split)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, x=x, y=y, classes=np.array(classes))
    os.replace(tmp, cached)  # atomic: a killed run never leaves a half cache
    return x, y, classes


def _decode_image_folder(path, split):
    from PIL import Image

    if path.suffix == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"{path} is not a readable zip file: {e}") from e
        names = archive.namelist()
        read = archive.read
    else:
        archive = None
        names = [str(p.relative_to(path)).replace(os.sep, "/") for p in path.rglob("*") if p.is_file()]
        read = lambda n: (path / n).read_bytes()  # noqa: E731
    # Accept an optional top folder inside the zip: <top>/<split>/<class>/<file>.
    entries = []
    for n in names:
        parts = n.split("/")
        if len(parts) >= 3 and parts[-3] == split and n.lower().endswith(IMAGE_SUFFIXES):
            entries.append((parts[-2], n))
    if not entries:
        raise DataError(
            f"{path} has no images under '{split}/<class>/'; expected the layout "
            f"{split}/<class>/<image>.jpg."
        )
    classes = sorted({c for c, _ in entries})
    index = {c: i for i, c in enumerate(classes)}
    entries.sort(key=lambda e: (index[e[0]], e[1]))
    images = []
    try:
        for _, n in entries:
            try:
                with Image.open(io.BytesIO(read(n))) as im:
                    images.append(np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im))
            except Exception as e:  # PIL.UnidentifiedImageError, OSError (truncated), BadZipFile (CRC)
                raise DataError(f"{path}: member {n!r} is not a readable image: {e}") from e
    finally:
        if archive is not None:
            archive.close()
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DataError(f"{path}: images of different shapes {sorted(shapes)[:4]}; resize them first.")
    x = _as_nhwc_uint8(np.stack(images), str(path))
    y = np.array([index[c] for c, _ in entries], dtype=np.int64)
    return x, y, classes


def _load_tfds(name, split):
    try:
        import tensorflow_datasets as tfds

        ds, info = tfds.load(name, split=split, as_supervised=True, with_info=True)
        # In large batches rather than batch_size=-1: the one-element read aborts the
        # process on a data set of unknown length (tfds's mock data, tests/test_hub.py).
        parts = list(tfds.as_numpy(ds.batch(4096)))
    except Exception as e:
        raise DataError(
            f"Could not load tfds data set {name!r} (split {split!r}): {e}. "
            "Without internet access, pass a local .npz, image folder or zip instead."
        ) from e
    if not parts:
        raise DataError(f"tfds data set {name!r} has no examples in split {split!r}.")
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    classes = info.features["label"].names if "label" in info.features else []
    x = _as_nhwc_uint8(x, name)
    return x, _as_labels(y, name, len(x)), list(classes)
