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

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


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
            raise FileNotFoundError(
                f"Data path {source!r} does not exist (expected a .npz, an image "
                "folder or a .zip of one)."
            )
        return _load_tfds(source, split)
    if path.suffix == ".npz":
        return _load_npz(path, split)
    if path.is_dir() or path.suffix == ".zip":
        return _load_image_folder(path, split)
    raise ValueError(
        f"Cannot read {source!r}: expected a .npz file, an image folder or a .zip of one."
    )


def _as_nhwc_uint8(x, where):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"{where}: expected images (n, h, w[, c]); got shape {x.shape}.")
    if x.dtype != np.uint8:
        if x.min() < 0 or x.max() > 255:
            raise ValueError(f"{where}: expected pixels in [0, 255]; got dtype {x.dtype}.")
        x = x.astype(np.uint8)
    return x


def _load_npz(path, split):
    keys = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
    if split not in keys:
        raise ValueError(f"{path}: split must be 'train' or 'test'; got {split!r}.")
    try:
        data = np.load(path)
    except Exception as e:  # zipfile.BadZipFile, OSError, ValueError, ...
        raise ValueError(f"{path} is not a readable .npz file: {e}") from e
    with data:
        xk, yk = keys[split]
        missing = [k for k in (xk, yk) if k not in data.files]
        if missing:
            raise ValueError(
                f"{path} lacks {missing}; expected the keras.datasets layout "
                f"(x_train, y_train, x_test, y_test), found {sorted(data.files)}."
            )
        x = _as_nhwc_uint8(data[xk], str(path))
        y = np.asarray(data[yk]).reshape(-1).astype(np.int64)
    if len(x) != len(y):
        raise ValueError(f"{path}: {len(x)} images but {len(y)} labels in {split!r}.")
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
        archive = zipfile.ZipFile(path)
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
        raise ValueError(
            f"{path} has no images under '{split}/<class>/'; expected the layout "
            f"{split}/<class>/<image>.jpg."
        )
    classes = sorted({c for c, _ in entries})
    index = {c: i for i, c in enumerate(classes)}
    entries.sort(key=lambda e: (index[e[0]], e[1]))
    images = []
    for _, n in entries:
        with Image.open(io.BytesIO(read(n))) as im:
            images.append(np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im))
    if archive is not None:
        archive.close()
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"{path}: images of different shapes {sorted(shapes)[:4]}; resize them first.")
    x = _as_nhwc_uint8(np.stack(images), str(path))
    y = np.array([index[c] for c, _ in entries], dtype=np.int64)
    return x, y, classes


def _load_tfds(name, split):
    try:
        import tensorflow_datasets as tfds

        ds, info = tfds.load(name, split=split, as_supervised=True, batch_size=-1, with_info=True)
    except Exception as e:
        raise RuntimeError(
            f"Could not load tfds data set {name!r} (split {split!r}): {e}. "
            "Without internet access, pass a local .npz, image folder or zip instead."
        ) from e
    x, y = tfds.as_numpy(ds)
    classes = info.features["label"].names if "label" in info.features else []
    return _as_nhwc_uint8(x, name), np.asarray(y).astype(np.int64), list(classes)
