"""The zoo's Gradio app: generation, reconstruction, retrieval and model cards.

    python -m demos                      # http://127.0.0.1:7860, the bundled presets
    python -m demos --database ../shared/datasets/cifar10.zip --port 7861

One `gr.Blocks` app with four tabs:

- Generate: any generator preset (GAN family, VAE, VAE-GAN, AVB, DSH-GAN's G),
  a seed (or a random one), a number of images, a class for conditional models;
  beside the samples, the first few each with its nearest training images (L2
  in pixel space, among a shipped sample of the model's training split); and a
  latent interpolation between two seeds, as a grid (row r goes from seed A's
  r-th latent to seed B's r-th).
- Reconstruct: a sketch or an upload, reconstructed by every VAE / VAE-GAN /
  AVB preset, each after converting the image to that preset's shape
  (grayscale/RGB, alpha, inversion, crop and resize, all listed in the output).
- Retrieve: a DSH-GAN preset hashes a query (an example from the database or an
  upload); the top-k database images with their labels, Hamming distances and
  code bits, and the precision of the list when the query's label is known.
- Model cards: each preset's metadata (data, split, recipe command, figures).

Every measured figure shown says how it was measured (the preset metadata's
`how`); each tab has a copyable gradio_client snippet of its endpoints.

Presets are discovered when the app is built: a kind with none bundled gets a
tab that says what is missing and how to train it. Models load on first use and
run on whatever Keras backend is set (KERAS_BACKEND).

The retrieval database must exist offline. By default ("auto") a hashing
preset searches images of its own data set: the seeded test-split sample of
CIFAR-10 or MNIST shipped in demos/data (demos/build_samples.py builds them
from the full data sets and records seed and source sha256); a preset of
another data set gets scikit-learn's `load_digits` (1,797 labelled 8x8
digits, in the scikit-learn wheel), padded by 2 pixels and resized.
`--database` takes "cifar10", "mnist", "digits", anything
`zoo.data.load_arrays` reads (a keras-style .npz, an image folder or a zip of
one) or a tfds name. The database is hashed once per (preset weights,
database) pair and the index cached under `$ZOO_CACHE/demo` (default
~/.cache/keras-gan-zoo/demo).
"""

import functools
import hashlib
import io
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

import gradio as gr

log = logging.getLogger("demos")
# A message for the user (a toast in the UI, AppError in gradio_client); expected, so no server traceback.
UserError = functools.partial(gr.Error, print_exception=False)

KINDS = {"zoo>GAN": "GAN", "zoo>VAE": "VAE", "zoo>VAEGAN": "VAE-GAN", "zoo>AVB": "AVB", "zoo>DSHGAN": "DSH-GAN"}
GENERATOR_KINDS = ("GAN", "VAE", "VAE-GAN", "AVB", "DSH-GAN")
AUTOENCODER_KINDS = ("VAE", "VAE-GAN", "AVB")
HASHER_KINDS = ("DSH-GAN",)
CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "digits": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
TRAIN_HINTS = {
    "generators": "python -m recipes.train dcgan_mnist --data ../shared/datasets/mnist.npz "
                  "--preset saved_models/dcgan_mnist",
    "autoencoders": "python -m recipes.train vae_mnist --data ../shared/datasets/mnist.npz "
                    "--preset saved_models/vae_mnist  (or vaegan_mnist, avb_ac_mnist)",
    "hashers": "python -m recipes.train dshgan_cifar10_48bit --data ../shared/datasets/cifar10.zip "
               "--preset saved_models/dshgan_cifar10_48bit",
}
MAX_PIXELS = 25_000_000  # bigger uploads are refused with a message, before decoding
MAX_IMAGES = 64
MAX_STEPS = 16
MAX_K = 50
CELL = 84  # displayed cell size (pixels) of the grids: small images are upscaled
EACH_CLASS = "each class in turn"
UNKNOWN = "unknown"


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------
@dataclass
class PresetInfo:
    name: str
    path: Path
    model: str  # registered name or class name from config.json
    kind: str | None  # one of KINDS' values, or None (classifiers, ...)
    meta: dict = field(default_factory=dict)

    @property
    def description(self):
        return self.meta.get("description") or self.model

    @property
    def dataset(self):
        return self.meta.get("dataset")

    @property
    def label(self):
        return f"{self.name} ({self.kind or self.model})"


def _read_preset(name, path):
    config = json.loads((path / "config.json").read_text())
    try:
        meta = json.loads((path / "metadata.json").read_text())
    except (OSError, ValueError):
        meta = {}
    model = config.get("registered_name") or config.get("class_name", "?")
    return PresetInfo(name, path, model, KINDS.get(model), meta)


def discover_presets(preset_names=None, preset_dirs=None):
    """{name: PresetInfo} of the bundled presets and of those in `preset_dirs`
    (each a preset folder or a folder of presets); `preset_names` keeps only those.
    Returns (presets, problems): unreadable presets are skipped and reported."""
    from zoo.presets import SAVED_MODELS, list_presets

    found, problems = {}, []
    candidates = [(n, SAVED_MODELS / n) for n in list_presets()]
    for d in preset_dirs or ():
        d = Path(d).expanduser()
        if (d / "config.json").exists():
            candidates.append((d.name, d))
        elif d.is_dir():
            candidates += [(s.name, s) for s in sorted(d.iterdir())
                           if s.is_dir() and not s.name.startswith(".") and (s / "config.json").exists()]
        else:
            problems.append(f"{d}: not a folder")
    for name, path in candidates:
        if preset_names is not None and name not in preset_names:
            continue
        try:
            found[name] = _read_preset(name, path)
        except (OSError, ValueError) as e:
            problems.append(f"{name}: unreadable ({e})")
    return found, problems


class ModelStore:
    """Loads presets on first use (once, under a per-preset lock) and serialises each model's calls."""

    def __init__(self, presets):
        self.presets = presets
        self._models = {}
        self._locks = {name: threading.RLock() for name in presets}

    def info(self, name):
        if name not in self.presets:
            raise UserError(f"No preset {name!r} in this app; choose one of {', '.join(self.presets) or '(none)'}.")
        return self.presets[name]

    def lock(self, name):
        self.info(name)
        return self._locks[name]

    def get(self, name):
        info = self.info(name)
        with self._locks[name]:
            if name not in self._models:
                import zoo

                start = time.monotonic()
                self._models[name] = zoo.load(info.path)
                log.info("loaded %s in %.1f s", name, time.monotonic() - start)
            return self._models[name]

    def of_kind(self, kinds):
        return [n for n, p in self.presets.items() if p.kind in kinds]


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------
def open_image(path):
    """A PIL image from a file, or a gr.Error saying why not (not an image, too big)."""
    try:
        im = Image.open(path)
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise UserError(
                f"The image is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); this app takes images of at "
                f"most {MAX_PIXELS / 1e6:.0f} megapixels. Shrink it first."
            )
        im.load()
        return im
    except gr.Error:
        raise
    except Image.DecompressionBombError:
        raise UserError(f"The image is too large to open safely (over {MAX_PIXELS / 1e6:.0f} megapixels).") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        name = Path(str(path)).name
        raise UserError(
            f"{name} is not an image this app can read (PNG, JPEG, WebP, BMP or GIF): {e.__class__.__name__}."
        ) from None


def ImageUpload(**kwargs):  # noqa: N802 - used like a component class
    """A gr.Image whose preprocessing turns unreadable or huge files into a readable gr.Error.

    The instance's preprocess is wrapped (a subclass would make Gradio write a
    .pyi stub next to this file)."""
    component = gr.Image(**kwargs)
    preprocess = component.preprocess

    def safe_preprocess(payload):
        if payload is not None and getattr(payload, "path", None):
            open_image(payload.path).close()
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - anything else decoding the upload
            raise UserError(f"Could not read the uploaded image: {e.__class__.__name__}: {e}") from None

    component.preprocess = safe_preprocess
    return component


def to_shape(im, shape, invert="auto"):
    """Convert a PIL image to a model's (H, W, C) uint8 array; returns (array, notes).

    Alpha is composited onto white; colour <-> grayscale by PIL's conversions;
    `invert` ("auto", True, False) flips a grayscale image whose mean is bright
    (dark strokes on light paper -> MNIST's light digits on black; "auto" only
    for 1-channel shapes); a different aspect ratio is centre-cropped; then a
    Lanczos resize. `notes` says what was done."""
    h, w, c = (tuple(shape) + (1,))[:3] if len(shape) == 2 else tuple(shape)
    notes = []
    im = _eight_bit(im, notes)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            notes.append(f"{im.mode} with transparency: composited onto white")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba).convert("RGB")
        if c == 1:
            notes.append("RGB -> grayscale")
            im = im.convert("L")
        elif not notes:
            notes.append("alpha channel dropped (opaque)")
    elif c == 1 and im.mode != "L":
        notes.append(f"{im.mode} -> grayscale")
        im = im.convert("L")
    elif c == 3 and im.mode != "RGB":
        notes.append(f"{'grayscale' if im.mode in ('L', '1', 'I', 'F', 'I;16') else im.mode} -> RGB"
                     + (" (the gray level copied to R, G and B)" if im.mode == "L" else ""))
        im = im.convert("RGB")
    if c not in (1, 3):
        raise UserError(f"The model takes {c}-channel images; this app handles 1 (grayscale) or 3 (RGB).")
    do_invert = invert is True or (invert == "auto" and c == 1 and np.asarray(im).mean() > 127)
    if do_invert:
        im = ImageOps.invert(im)
        notes.append("inverted (dark on light -> light on dark, as the training data)")
    if im.size != (w, h):
        src = im.size
        if abs(src[0] / src[1] - w / h) > 0.01:
            im = ImageOps.fit(im, (max(1, round(src[1] * w / h)) if src[0] * h > src[1] * w else src[0],
                                   src[1] if src[0] * h > src[1] * w else max(1, round(src[0] * h / w))),
                              Image.Resampling.BICUBIC)
            notes.append(f"centre-cropped {src[0]}x{src[1]} -> {im.size[0]}x{im.size[1]} ({w}:{h})")
        notes.append(f"resized {im.size[0]}x{im.size[1]} -> {w}x{h} (Lanczos)")
        im = im.resize((w, h), Image.Resampling.LANCZOS)
    x = np.asarray(im, dtype=np.uint8)
    if x.ndim == 2:
        x = x[..., None]
    return x, notes


def _eight_bit(im, notes):
    """A 16-bit, 32-bit or float grayscale image as 8-bit "L", scaled by its bit depth.

    PIL's convert("L") clips such images instead of scaling them (a 16-bit scan
    becomes almost all white)."""
    if im.mode not in ("I", "F") and not im.mode.startswith("I;16"):
        return im
    a = np.asarray(im).astype(np.float64)
    if a.size and not np.isfinite(a).all():
        raise UserError(f"The {im.mode} image holds NaN or infinite pixel values.")
    top = float(a.max()) if a.size else 0.0
    if im.mode.startswith("I;16"):
        full, depth = 65535.0, "16-bit"
    elif im.mode == "F" and top <= 1.0:
        full, depth = 1.0, "float [0, 1]"
    elif top <= 255:
        full, depth = 255.0, "8-bit values"
    elif top <= 65535:
        full, depth = 65535.0, "16-bit values"
    else:
        full, depth = top, f"values up to {top:g}"
    if a.size and a.min() < 0:
        raise UserError(f"The {im.mode} image has negative pixel values (min {a.min():g}).")
    notes.append(f"{im.mode} ({depth}) scaled to 8 bits")
    return Image.fromarray(np.round(a / full * 255.0).clip(0, 255).astype(np.uint8), mode="L")


def to_uint8(x):
    """Floats in [0, 1] (or uint8) -> uint8."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    return np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


def png_file(x):
    """Write an image array as a PNG named by its content (atomically) and return the path.

    Handlers return paths rather than arrays: Gradio writes array outputs into
    its cache in place, so two identical outputs served at once (20 users
    retrieving the same example) could read a half-written file; a finished
    file is copied into the cache atomically."""
    x = to_uint8(x)
    buf = io.BytesIO()
    Image.fromarray(x[..., 0] if x.ndim == 3 and x.shape[-1] == 1 else x).save(buf, format="png")
    data = buf.getvalue()
    folder = Path(tempfile.gettempdir()) / "zoo-demo-images"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:24]}.png"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".png")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return str(path)


def code_bits(packed, bits):
    """A packed uint8 code as its string of 0s and 1s (first bit first, as np.unpackbits)."""
    return "".join("1" if b else "0" for b in np.unpackbits(np.asarray(packed, np.uint8))[:bits])


def upscale(x, cell=CELL):
    """An (H, W, C) uint8 image enlarged by an integer factor (nearest) to about `cell` pixels."""
    x = to_uint8(x)
    f = max(1, cell // max(x.shape[0], x.shape[1]))
    x = np.repeat(np.repeat(x, f, axis=0), f, axis=1)
    return x[..., 0] if x.shape[-1] == 1 else x


def grid_shape(n, cols, h, w, cell=CELL, pad=2):
    """The (height, width) of `image_grid` of n images of h x w: tests check outputs with it."""
    f = max(1, cell // max(h, w))
    rows = -(-n // cols)
    return rows * (h * f + pad) + pad, cols * (w * f + pad) + pad


def image_grid(images, cols, cell=CELL, pad=2):
    """(n, H, W, C) floats in [0, 1] -> one uint8 grid image (H x W upscaled by an integer factor)."""
    images = to_uint8(images)
    n, h, w, c = images.shape
    f = max(1, cell // max(h, w))
    rows = -(-n // cols)
    gh, gw = grid_shape(n, cols, h, w, cell, pad)
    out = np.full((gh, gw, c), 255, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        tile = np.repeat(np.repeat(images[i], f, axis=0), f, axis=1)
        y0, x0 = pad + r * (h * f + pad), pad + k * (w * f + pad)
        out[y0:y0 + h * f, x0:x0 + w * f] = tile
    return out[..., 0] if c == 1 else out


NEAREST_CELL = 96  # cell of the nearest-training-images picture: room for its captions
CAPTION = 28  # pixels under each of its tiles: two lines of text


@functools.lru_cache(maxsize=1)
def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def labelled_grid_layout(n, cols, h, w, cell=NEAREST_CELL, pad=4):
    """(factor, tile width, column width, row height, (height, width)) of `labelled_grid`."""
    f = max(1, cell // max(h, w))
    col = max(w * f, cell - 12) + pad
    row = h * f + CAPTION + pad
    rows = -(-n // cols)
    return f, w * f, col, row, (rows * row + pad, cols * col + pad)


def labelled_grid(images, captions, cols, cell=NEAREST_CELL, pad=4):
    """(n, H, W, C) uint8 images, each upscaled (nearest) with two lines of caption under it,
    on white: one RGB picture."""
    from PIL import ImageDraw

    images = to_uint8(images)
    n, h, w, c = images.shape
    f, tw, col, row, (gh, gw) = labelled_grid_layout(n, cols, h, w, cell, pad)
    canvas = Image.new("RGB", (gw, gh), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i in range(n):
        r, k = divmod(i, cols)
        tile = np.repeat(np.repeat(images[i], f, axis=0), f, axis=1)
        tile = np.repeat(tile, 3, axis=-1) if c == 1 else tile
        x0, y0 = pad + k * col, pad + r * row
        canvas.paste(Image.fromarray(tile), (x0, y0))
        for line, text in enumerate(captions[i]):
            draw.text((x0, y0 + h * f + 1 + 13 * line), str(text), fill=(0, 0, 0), font=_font())
    return np.asarray(canvas)


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------
def class_names(info, num_classes):
    names = CLASS_NAMES.get(info.dataset) or info.meta.get("class_names")
    if not names or len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    return list(names)


def num_classes_of(model):
    return getattr(model, "num_classes", None) if hasattr(model, "decode_latents") else None


def latents(model, n, seed):
    """The latents `model.generate(n, seed)` draws (NumPy's generator: the same on every backend)."""
    rng = np.random.default_rng(seed)
    if hasattr(model, "decode_latents"):  # GAN family and DSH-GAN's G
        if model.latent_distribution == "uniform":
            r = 3.0**0.5
            return rng.uniform(-r, r, (n, model.latent_dim)).astype("float32")
        return rng.standard_normal((n, model.latent_dim)).astype("float32")
    return rng.standard_normal((n, model.latent_dim)).astype("float32")  # zoo.models.common.seeded_normal


BUCKET = 64  # model calls get batches padded to a multiple of this: few shapes, few JAX/XLA compiles


def padded(fn, *arrays, bucket=BUCKET):
    """fn(*arrays) with the batch zero-padded to a multiple of `bucket` rows, output cut back.

    On JAX every new input shape compiles anew (seconds); padding keeps the
    shapes to a few, whatever number of images is asked for."""
    n = len(arrays[0])
    m = -(-n // bucket) * bucket
    if m == n:
        return fn(*arrays)
    pad = [np.concatenate([a, np.zeros((m - n, *a.shape[1:]), a.dtype)]) for a in arrays]
    return fn(*pad)[:n]


def decode(model, z, labels=None):
    if hasattr(model, "decode_latents"):
        if num_classes_of(model):
            labels = np.eye(model.num_classes, dtype="float32")[np.asarray(labels, int)]
            return padded(model.decode_latents, z, labels)
        return padded(model.decode_latents, z)
    return padded(model.decode, z)


def labels_for(choice, names, n):
    if choice in (None, "", EACH_CLASS):
        return np.arange(n) % len(names)
    if choice not in names:
        raise UserError(f"Unknown class {choice!r}; choose one of {', '.join(names)} or '{EACH_CLASS}'.")
    return np.full(n, names.index(choice))


def _int(value, name, lo, hi):
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a whole number; got {value!r}.") from None
    if not lo <= v <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}; got {v}.")
    return v


# ---------------------------------------------------------------------------------------------
# Retrieval database
# ---------------------------------------------------------------------------------------------
def cache_root():
    from zoo.data.sources import cache_dir

    return cache_dir() / "demo"


SAMPLES_DIR = Path(__file__).resolve().parent / "data"
SHIPPED = {"cifar10": ("cifar10_sample.npz", "CIFAR-10"), "mnist": ("mnist_sample.npz", "MNIST")}
AUTO = "auto"


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
        x = self._convert(x_raw, shape, progress)
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

    @staticmethod
    def _convert(x_raw, shape, progress):
        h, w, c = shape
        if x_raw.shape[1:] == (h, w, c):
            return x_raw
        if x_raw.shape[1:3] == (h, w):  # channels only
            return np.repeat(x_raw, c, axis=-1) if c == 3 else np.round(
                x_raw.astype("float32") @ np.array([0.299, 0.587, 0.114], "float32"))[..., None].astype(np.uint8)
        out = np.empty((len(x_raw), h, w, c), np.uint8)
        for i, img in enumerate(x_raw):
            if progress is not None and i % 500 == 0:
                progress(i / len(x_raw), desc=f"Converting the database to {h}x{w}x{c}: {i:,}/{len(x_raw):,}")
            im = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
            out[i] = to_shape(im, shape, invert=False)[0]
        return out


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


# ---------------------------------------------------------------------------------------------
# Nearest training images
# ---------------------------------------------------------------------------------------------
NEAREST_ROWS = 4  # samples shown with their nearest training images
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
                x = Retrieval._convert(x, tuple(shape), None)
                flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
                sample = TrainingSample(x, y, names, where, desc, flat, (flat * flat).sum(1), 0.0, 0.0)
                tx = Retrieval._convert(load_sample(dataset, "test")[0][:SCALE_QUERIES], tuple(shape), None)
                d, _ = sample.nearest(tx.astype(np.float32) / 255.0, k=1)
                sample.test_median, sample.test_min = float(np.median(d)), float(d.min())
                self._samples[key] = sample
            return self._samples[key]


# ---------------------------------------------------------------------------------------------
# Model cards
# ---------------------------------------------------------------------------------------------
def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def model_card(info):
    m = info.meta
    lines = [f"### {info.name}", "", f"**{info.description}**", "",
             f"| | |\n|---|---|\n| model | `{info.model}`{' (' + info.kind + ')' if info.kind else ''} |"]
    for key in ("dataset", "data", "split", "recipe", "backend", "trained_on_backend", "keras_version",
                "zoo_version", "created"):
        if m.get(key) is not None:
            lines.append(f"| {key.replace('_', ' ')} | {_fmt(m[key])} |")
    training = m.get("training") or {}
    labels = {"seconds": "training seconds (wall time of the recorded run"
                         + (f", {m['backend']} backend" if m.get("backend") else "") + ")",
              "steps": "training steps (optimizer steps of the recorded run)"}
    for key in ("seconds", "steps", "batch_size", "seed"):
        if training.get(key) is not None:
            lines.append(f"| {labels.get(key, 'training ' + key.replace('_', ' '))} | {_fmt(training[key])} |")
    if m.get("weights_bytes"):
        lines.append(f"| weights | {m['weights_bytes'] / 1e6:.1f} MB, sha256 `{str(m.get('sha256', ''))[:16]}...` |")
    lines.append("")
    if m.get("command"):
        lines += ["**Recipe** (reproduces this preset):", "", "```bash", m["command"], "```", ""]
    lines += ["**Measured figures**", "", figures_markdown(info, title=False), "", f"Folder: `{info.path}`"]
    return "\n".join(lines)


NO_PROTOCOL = "_not recorded in this preset's metadata_"


def figure_rows(info):
    """[(name, value text, how it was measured)] of a preset's metadata figures."""
    rows = []
    for name, f in (info.meta.get("figures") or {}).items():
        if isinstance(f, dict):
            value = _fmt(f.get("value"))
            if f.get("std_error") is not None:
                value += f" ± {_fmt(f['std_error'])} (standard error)"
            elif f.get("std") is not None:
                value += f" ± {_fmt(f['std'])} (std)"
            how = str(f.get("how") or "").replace("|", "/").replace("\n", " ") or NO_PROTOCOL
        else:
            value, how = _fmt(f), NO_PROTOCOL
        rows.append((name, value, how))
    return rows


def figures_markdown(info, title=True):
    """A preset's measured figures as a Markdown table, each with how it was measured."""
    rows = figure_rows(info)
    head = [f"**Measured figures of {info.name}** (from its metadata; recipe: "
            f"`{info.meta.get('command') or info.meta.get('recipe') or 'not recorded'}`)", ""] if title else []
    if not rows:
        return "\n".join(head + ["_No measured figures recorded in this preset's metadata._"])
    return "\n".join(head + ["| figure | value | how it was measured |", "|---|---|---|"]
                     + [f"| {n} | {v} | {h} |" for n, v, h in rows])


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------
def readable(fn):
    """Every handler: a gr.Error with a message for any failure, the traceback only in the server log."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001
            log.exception("handler %s failed", fn.__name__)
            raise UserError(f"{fn.__name__} failed: {e.__class__.__name__}: {e}") from None

    return wrapper


class Handlers:
    def __init__(self, store, retrieval, training=None):
        self.store, self.retrieval = store, retrieval
        self.training = training or TrainingSamples(store)

    def figures(self, name):
        """The preset's measured figures, each with how it was measured (its metadata)."""
        return figures_markdown(self.store.info(name))

    # -- generate ---------------------------------------------------------------------------
    def class_choices(self, name):
        """(choices, visible) of the class dropdown for a generator preset."""
        if not name:
            return [], False
        info = self.store.info(name)
        model = self.store.get(name)
        k = num_classes_of(model)
        if not k:
            return [], False
        return [EACH_CLASS] + class_names(info, k), True

    def on_generator(self, name):
        choices, visible = self.class_choices(name)
        return gr.update(choices=choices, value=choices[0] if choices else None, visible=visible)

    def generate(self, name, n, seed, label, progress=gr.Progress()):
        info = self.store.info(name)
        if info.kind not in GENERATOR_KINDS:
            raise UserError(f"{name} is a {info.kind or info.model}, not a generator.")
        n = _int(n, "Number of images", 1, MAX_IMAGES)
        seed = _int(seed, "Seed", 0, 2**32 - 1)
        progress(0.1, desc=f"Loading {name}")
        model = self.store.get(name)
        k = num_classes_of(model)
        labels = labels_for(label, class_names(info, k), n) if k else None
        progress(0.4, desc=f"Generating {n} images")
        start = time.monotonic()
        with self.store.lock(name):
            images = decode(model, latents(model, n, seed), labels)
        seconds = time.monotonic() - start
        cols = int(np.ceil(np.sqrt(n))) if not k or label not in (None, "", EACH_CLASS) else min(n, k)
        note = f"{n} images from **{name}**, seed {seed}" + (
            f", classes: {label or EACH_CLASS}" if k else "") + f" ({seconds:.2f} s to generate on this server)"
        progress(0.8, desc="Finding the nearest training images")
        nearest, nearest_table, nearest_note = self.nearest(name, model, np.asarray(images)[:NEAREST_ROWS])
        return png_file(image_grid(images, cols)), note, nearest, nearest_table, nearest_note

    def nearest(self, name, model, images):
        """(image, table, note): each image beside its NEAREST_K nearest images of the shipped
        training sample of the model's data set, by L2 distance in pixel space, as one picture
        (one file to serve, not 20) with the distances written under each image; the table
        lists them: [sample, rank, training image, label, L2]."""
        shape = tuple(model.data_shape)
        sample = self.training.get(name, shape)
        if sample is None:
            dataset = self.store.info(name).dataset
            return None, [], (f"No training sample of {name}'s data set ({dataset or 'not recorded in its metadata'}) "
                              f"ships with this app (it has {', '.join(SHIPPED)}), so no nearest training images.")
        images = to_uint8(images)  # the samples as shown, PNG pixels
        distances, ids = sample.nearest(images.astype(np.float32) / 255.0)
        tiles, captions, rows = [], [], []
        for r, (image, ds, js) in enumerate(zip(images, distances, ids)):
            tiles.append(image)
            captions.append((f"sample {r + 1}", "generated"))
            for rank, (d, j) in enumerate(zip(ds, js)):
                label = sample.names[int(sample.y[j])]
                tiles.append(sample.x[j])
                captions.append((f"L2 {d:.2f}", label))
                rows.append([r + 1, rank + 1, sample.where[j], label, round(float(d), 3)])
        picture = labelled_grid(np.stack(tiles), captions, NEAREST_K + 1)
        dims = int(np.prod(shape))
        closest = float(distances[:, 0].min())
        note = (f"**Nearest training images**: each of the first {len(images)} samples (left column) and its "
                f"{NEAREST_K} nearest images among {len(sample.x):,} training images: {sample.description}. "
                f"**L2** = Euclidean distance over all {dims:,} pixel values ({'x'.join(map(str, shape))}, "
                f"scaled to [0, 1]), exact search. Closest here: {closest:.2f}. For scale: {SCALE_QUERIES} of the "
                f"shipped *test* images (real images the model never trained on) lie at median L2 "
                f"{sample.test_median:.2f} (min {sample.test_min:.2f}) from their nearest image in this sample; "
                f"a copied training image would be at 0. A sample of the training set, not all of it.")
        return png_file(picture), rows, note

    def random_seed(self):
        """A fresh seed for the Generate tab (the system's randomness, not a seeded draw)."""
        return 1 + secrets.randbelow(999_999)  # never 0, the default: a click always changes it

    def interpolate(self, name, seed_a, seed_b, steps, rows, label, spherical, progress=gr.Progress()):
        from zoo.models.common import slerp

        info = self.store.info(name)
        if info.kind not in GENERATOR_KINDS:
            raise UserError(f"{name} is a {info.kind or info.model}, not a generator.")
        seed_a, seed_b = _int(seed_a, "Seed A", 0, 2**32 - 1), _int(seed_b, "Seed B", 0, 2**32 - 1)
        steps, rows = _int(steps, "Steps", 2, MAX_STEPS), _int(rows, "Rows", 1, 8)
        progress(0.1, desc=f"Loading {name}")
        model = self.store.get(name)
        za, zb = latents(model, rows, seed_a), latents(model, rows, seed_b)
        t = np.linspace(0.0, 1.0, steps, dtype="float32")[None, :, None]
        if spherical:
            z = slerp(za[:, None], zb[:, None], t)
        else:
            z = (1 - t) * za[:, None] + t * zb[:, None]
        z = z.reshape(rows * steps, -1).astype("float32")
        k = num_classes_of(model)
        labels = None
        if k:
            per_row = labels_for(label, class_names(info, k), rows)
            labels = np.repeat(per_row, steps)
        progress(0.4, desc=f"Decoding {rows * steps} latents")
        with self.store.lock(name):
            images = decode(model, z, labels)
        note = (f"{'Spherical' if spherical else 'Linear'} interpolation, {steps} steps, from seed {seed_a} "
                f"(left) to seed {seed_b} (right); row r joins the r-th latent of each seed.")
        return png_file(image_grid(images, steps)), note

    # -- reconstruct --------------------------------------------------------------------------
    def reconstruct(self, image, names, invert="auto", progress=gr.Progress(), source="upload"):
        if image is None:
            raise UserError("No image: upload one (PNG, JPEG, WebP, BMP or GIF) or draw in the sketchpad.")
        names = [n for n in (names or []) if n]
        if not names:
            raise UserError("Choose at least one VAE, VAE-GAN or AVB preset.")
        invert = {"auto": "auto", "yes": True, "no": False}.get(invert, "auto")
        gallery, lines = [], [f"Input: {image.size[0]}x{image.size[1]} {image.mode} ({source})", ""]
        for i, name in enumerate(names):
            info = self.store.info(name)
            if info.kind not in AUTOENCODER_KINDS:
                raise UserError(f"{name} is a {info.kind or info.model}, not a VAE, VAE-GAN or AVB.")
            progress(i / len(names), desc=f"Reconstructing with {name}")
            model = self.store.get(name)
            shape = tuple(model.data_shape)
            x, notes = to_shape(image, shape, invert)
            with self.store.lock(name):
                rec = model.reconstruct(x[None], seed=0) if info.kind == "AVB" else model.reconstruct(x[None])
            rec = np.asarray(rec)[0]
            mse = float(np.mean((rec - x / 255.0) ** 2))
            gallery += [(png_file(upscale(x, 168)), f"{name}: input as {shape[0]}x{shape[1]}x{shape[2]}"),
                        (png_file(upscale(rec, 168)), f"{name}: reconstruction (MSE {mse:.4f})")]
            lines.append(f"- **{name}** ({info.kind}, {shape[0]}x{shape[1]}x{shape[2]}): "
                         + ("; ".join(notes) if notes else "no conversion needed")
                         + f". Pixel MSE of the reconstruction: {mse:.4f}.")
        return gallery, "\n".join(lines)

    def reconstruct_upload(self, image, names, invert, progress=gr.Progress()):
        return self.reconstruct(image, names, invert, progress, source="upload")

    def reconstruct_sketch(self, sketch, names, invert, progress=gr.Progress()):
        def image(value):  # the API may send anything: check it as the upload is checked
            return value if value is None or isinstance(value, Image.Image) else _sketch_image(value)

        composite = None
        if isinstance(sketch, dict):
            composite = image(sketch.get("composite"))
            layers = [image(layer) for layer in (sketch.get("layers") or []) if layer is not None]
            drawn = any(_has_ink(layer) for layer in layers)
            if composite is None or not (drawn or _varies(composite)):
                composite = None
        elif sketch is not None:
            sketch = image(sketch)
            composite = sketch if _varies(sketch) else None
        if composite is None:
            raise UserError("The sketch is empty: draw something first (or upload an image in the Upload tab).")
        return self.reconstruct(composite, names, invert, progress, source="sketch")

    # -- retrieve ---------------------------------------------------------------------------------
    def database_summary(self, name, progress=gr.Progress()):
        db = self.retrieval.get(name, progress)
        return self._db_note(name, db)

    def _db_note(self, name, db):
        where = f"`{db.cache_path.name}` in the demo's cache ($ZOO_CACHE/demo)"
        how = f"loaded from {where}" if db.from_cache else f"hashed once and kept as {where}"
        return (f"Database: {db.description}, {len(db.x):,} images as {'x'.join(map(str, db.x.shape[1:]))}; "
                f"{db.index.bits}-bit codes from **{name}**, {how} ({db.seconds:.1f} s).")

    def example(self, name, number, progress=gr.Progress()):
        """Database image `number` (its native pixels, so it retrieves itself) and its label."""
        db = self.retrieval.get(name, progress)
        i = _int(number, "Example number", 0, len(db.x) - 1)
        x = db.x[i]
        return png_file(x), db.names[int(db.y[i])], self._db_note(name, db)

    def examples(self, name, progress=gr.Progress()):
        """One database image of each class: the example queries."""
        db = self.retrieval.get(name, progress)
        picks = [int(np.flatnonzero(db.y == c)[0]) for c in np.unique(db.y)]
        return [(png_file(upscale(db.x[i])), f"#{i} · {db.names[int(db.y[i])]}") for i in picks], picks

    def retrieve(self, name, image, label, k, progress=gr.Progress()):
        info = self.store.info(name)
        if info.kind not in HASHER_KINDS:
            raise UserError(f"{name} is a {info.kind or info.model}, not a hashing model (DSH-GAN).")
        if image is None:
            raise UserError("No query image: pick an example or upload an image.")
        k = _int(k, "k", 1, MAX_K)
        db = self.retrieval.get(name, progress)
        model = self.store.get(name)
        progress(0.9, desc="Hashing the query")
        x, notes = to_shape(image, tuple(model.data_shape), invert=False)
        with self.store.lock(name):
            code = model.hash(x[None])
        distances, ids = db.index.search(code, min(k, len(db.x)))
        distances, ids = exact_first(db, {"code": code, "x": x}, distances[0], ids[0], k)
        labels = [db.names[int(db.y[i])] for i in ids]
        gallery = [(png_file(upscale(db.x[i])), f"#{i} · {lab} · d={d}") for i, lab, d in zip(ids, labels, distances)]
        rows = [[r + 1, int(i), lab, int(d), code_bits(db.codes[i], model.code_length)]
                for r, (i, lab, d) in enumerate(zip(ids, labels, distances))]
        bits = code_bits(code[0], model.code_length)
        lines = [f"Query code ({model.code_length} bits): `{bits}`",
                 f"Hamming distance: the number of the {model.code_length} code bits in which a result differs "
                 "from the query (the table lists each result's bits); the list is the exact top k by that "
                 "distance, ties in database order, a database image identical to the query first.",
                 f"Conversion: {'; '.join(notes) if notes else 'none needed'}."]
        if label not in (None, "", UNKNOWN):
            if label not in db.names:
                raise UserError(f"Unknown label {label!r}; choose one of {', '.join(db.names)} or '{UNKNOWN}'.")
            hits = sum(lab == label for lab in labels)
            lines.insert(0, f"**Precision@{len(ids)} = {hits / len(ids):.3f}** ({hits} of {len(ids)} results are "
                            f"labelled {label!r}): the fraction of this one query's results whose database label "
                            "is the query's label; not the preset's measured MAP, whose protocol is in its figures")
        else:
            lines.insert(0, "Precision: set the query's label to measure it.")
        lines.append(self._db_note(name, db))
        return gallery, rows, "\n\n".join(lines)


def _sketch_image(value):
    """The sketchpad's composite (an array through the API) as a PIL image, or a UserError
    naming what is wrong with it, as the upload's checks do."""
    try:
        a = np.asarray(value)
    except Exception:  # noqa: BLE001 - a ragged list, an object
        a = None
    if a is None or a.dtype.kind not in "biuf":
        raise UserError(f"The sketch must be an image (an array of pixels); got {type(value).__name__}.")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)) or min(a.shape[:2]) < 1:
        raise UserError(f"The sketch must be an (H, W), (H, W, 3) or (H, W, 4) image; got shape {a.shape}.")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise UserError(f"The sketch is {a.shape[1]}x{a.shape[0]} pixels, more than this app takes.")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise UserError("The sketch holds NaN or infinite pixel values.")
        if a.size and a.max() <= 1.0:
            a = a * 255.0
    if a.size and (a.min() < 0 or a.max() > 255):
        raise UserError(f"The sketch's pixels span [{a.min():g}, {a.max():g}]; expected [0, 255].")
    a = np.round(a).astype(np.uint8)
    return Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a)


def _varies(im):
    a = np.asarray(im)
    return a.size > 0 and a.min() != a.max() and (a.ndim < 3 or a.shape[-1] != 4 or a[..., 3].max() > 0)


def _has_ink(layer):
    a = np.asarray(layer)
    if a.ndim == 3 and a.shape[-1] == 4:
        return bool(a[..., 3].max() > 0)
    return _varies(a)


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------
def _missing(kind_text, hint):
    return gr.Markdown(
        f"**No {kind_text} preset is available in this app yet.** Presets are discovered at start in "
        f"`saved_models/` (and in `--presets` folders). Train one and restart the app, e.g.:\n\n"
        f"```bash\n{hint}\n```"
    )


# Queue limits for a CPU Space (free tier: 2 vCPUs): two model calls at a time, one per core,
# and up to 64 waiting; every visitor sees a queue position instead of a timeout.
QUEUE_CONCURRENCY = int(os.environ.get("ZOO_DEMO_CONCURRENCY", "2"))
QUEUE_MAX_SIZE = int(os.environ.get("ZOO_DEMO_MAX_QUEUE", "64"))


def client_target():
    """What `gradio_client.Client(...)` takes for this app: the Space's id on Hugging Face
    Spaces (SPACE_ID), else the local URL."""
    if os.environ.get("SPACE_ID"):
        return os.environ["SPACE_ID"]
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{os.environ.get('GRADIO_SERVER_PORT', '7860')}"


def api_snippets(generator=None, generator_class=None, autoencoders=(), hasher=None, card=None,
                 target=None):
    """{tab: Python code} calling each tab's endpoints with gradio_client, on this app's presets."""
    target = target or client_target()
    head = f"from gradio_client import Client{{}}\n\nclient = Client({target!r})\n"
    out = {}
    if generator:
        out["generate"] = head.format("") + (
            "seed = client.predict(api_name=\"/random_seed\")  # a fresh random seed\n"
            "# preset, number of images (1-64), seed, class (conditional presets: a class name or\n"
            f"# {EACH_CLASS!r}; None for the others)\n"
            f"grid, note, nearest, table, nearest_note = client.predict({generator!r}, 16, seed,"
            f" {generator_class!r},\n"
            "                                                          api_name=\"/generate\")\n"
            "print(grid, note)  # grid, nearest: paths of the PNGs, downloaded\n"
            "for sample, rank, training_image, label, l2 in table[\"data\"]:  # the nearest training images\n"
            "    print(sample, rank, training_image, label, \"L2\", l2)\n"
            "# preset, seed A, seed B, steps, rows, class, spherical\n"
            f"grid, note = client.predict({generator!r}, 0, 1, 8, 4, {generator_class!r}, True,"
            " api_name=\"/interpolate\")\n"
        )
    if autoencoders:
        out["reconstruct"] = head.format(", handle_file") + (
            "# an image file (PNG, JPEG, ...), the presets, invert grayscale: \"auto\", \"yes\" or \"no\"\n"
            f"gallery, note = client.predict(handle_file(\"digit.png\"), {list(autoencoders)!r}, \"auto\",\n"
            "                               api_name=\"/reconstruct_upload\")\n"
            "for item in gallery:  # per preset: the input as it sees it, then its reconstruction\n"
            "    print(item[\"image\"], item[\"caption\"])\n"
            "print(note)\n"
        )
    if hasher:
        out["retrieve"] = head.format(", handle_file") + (
            "# a query: database image 5 and its label (or handle_file(\"your_image.png\") and \"unknown\")\n"
            f"image, label, database = client.predict({hasher!r}, 5, api_name=\"/example\")\n"
            "# preset, query image, its label (for precision@k), k\n"
            f"gallery, table, note = client.predict({hasher!r}, handle_file(image), label, 10,"
            " api_name=\"/retrieve\")\n"
            "for rank, number, result_label, distance, bits in table[\"data\"]:\n"
            "    print(rank, number, result_label, distance, bits)  # Hamming distance, the result's code bits\n"
            "print(note)\n"
        )
    if card:
        out["cards"] = head.format("") + f"print(client.predict({card!r}, api_name=\"/card\"))  # Markdown\n"
    return out


def _snippet(code, elem_id):
    with gr.Accordion("Use this tab from Python (gradio_client)", open=False, elem_id=f"{elem_id}-acc"):
        gr.Code(code, language="python", interactive=False, elem_id=elem_id,
                label="pip install gradio_client; the endpoints are listed under 'Use via API' below")


def create_app(preset_names=None, preset_dirs=None, database=AUTO, database_split="test",
               database_limit=10_000, warm=False):
    """Build the app (a gr.Blocks, not launched). `preset_names`: keep only these presets;
    `preset_dirs`: extra preset folders; `database`: "auto" (the offline default: each
    hashing preset searches the shipped test sample of its own data set, CIFAR-10 or MNIST,
    else load_digits), "cifar10" or "mnist" (those samples), "digits", a path
    zoo.data.load_arrays reads or a tfds name. `warm`: load every model now."""
    import keras

    presets, problems = discover_presets(preset_names, preset_dirs)
    store = ModelStore(presets)
    retrieval = Retrieval(store, database, database_split, database_limit)
    h = Handlers(store, retrieval)
    generators = store.of_kind(GENERATOR_KINDS)
    autoencoders = store.of_kind(AUTOENCODER_KINDS)
    hashers = store.of_kind(HASHER_KINDS)
    if warm:
        for name in generators + autoencoders + hashers:
            store.get(name)
    first_choices, first_visible = h.class_choices(generators[0]) if generators else ([], False)
    snippets = api_snippets(generators[0] if generators else None, EACH_CLASS if first_visible else None,
                            autoencoders, hashers[0] if hashers else None, next(iter(presets), None))

    with gr.Blocks(title="Keras GAN zoo", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Keras GAN zoo\nGenerative models trained with `model.fit` on TensorFlow, JAX and PyTorch. "
            f"Running on the **{keras.backend.backend()}** backend with {len(presets)} presets: "
            f"{len(generators)} generators, {len(autoencoders)} autoencoders, {len(hashers)} hashing models. "
            f"This server runs {QUEUE_CONCURRENCY} requests at a time; others wait in a queue (at most "
            f"{QUEUE_MAX_SIZE}) that shows your position."
        )
        with gr.Tab("Generate", id="generate"):
            if not generators:
                _missing("generator (GAN, VAE, VAE-GAN, AVB or DSH-GAN)", TRAIN_HINTS["generators"])
            else:
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        g_preset = gr.Dropdown(generators, value=generators[0], label="Generator preset",
                                               elem_id="gen-preset")
                        g_class = gr.Dropdown(first_choices, value=first_choices[0] if first_choices else None,
                                              visible=first_visible, allow_custom_value=True,
                                              label="Class (conditional models)",
                                              elem_id="gen-class")
                        g_n = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="Number of images", elem_id="gen-n")
                        g_seed = gr.Number(0, precision=0, label="Seed", elem_id="gen-seed")
                        with gr.Row():
                            g_random = gr.Button("Random seed", elem_id="gen-random", min_width=100)
                            g_btn = gr.Button("Generate", variant="primary", elem_id="gen-btn", min_width=100)
                    with gr.Column(scale=2):
                        g_out = gr.Image(label="Samples", format="png", type="numpy", interactive=False,
                                         elem_id="gen-out")
                        g_note = gr.Markdown(elem_id="gen-note")
                    with gr.Column(scale=2):
                        g_nearest = gr.Image(label="Nearest training images: each sample | its nearest, L2",
                                             format="png", type="numpy", interactive=False, height=500,
                                             elem_id="gen-nearest")
                        g_nearest_note = gr.Markdown(elem_id="gen-nearest-note")
                        g_nearest_table = gr.Dataframe(
                            headers=["sample", "rank", "training image", "label", "L2"], interactive=False,
                            max_height=240, label="Nearest training images: the list", elem_id="gen-nearest-table")
                g_figures = gr.Markdown(h.figures(generators[0]), elem_id="gen-figures")
                gr.Markdown("### Latent interpolation")
                with gr.Row():
                    with gr.Column(scale=1):
                        i_a = gr.Number(0, precision=0, label="Seed A")
                        i_b = gr.Number(1, precision=0, label="Seed B")
                        i_steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Steps")
                        i_rows = gr.Slider(1, 8, value=4, step=1, label="Rows")
                        i_sph = gr.Checkbox(True, label="Spherical (slerp)")
                        i_btn = gr.Button("Interpolate", elem_id="interp-btn")
                    with gr.Column(scale=2):
                        i_out = gr.Image(label="Interpolation", format="png", type="numpy", interactive=False,
                                         elem_id="interp-out")
                        i_note = gr.Markdown()
                _snippet(snippets["generate"], "gen-api")
                g_preset.change(readable(h.on_generator), g_preset, g_class, api_name="classes")
                g_preset.change(readable(h.figures), g_preset, g_figures, api_name=False, queue=False)
                generate_outputs = [g_out, g_note, g_nearest, g_nearest_table, g_nearest_note]
                g_btn.click(readable(h.generate), [g_preset, g_n, g_seed, g_class], generate_outputs,
                            api_name="generate")
                g_random.click(readable(h.random_seed), None, g_seed, api_name="random_seed", queue=False).then(
                    readable(h.generate), [g_preset, g_n, g_seed, g_class], generate_outputs, api_name=False)
                i_btn.click(readable(h.interpolate), [g_preset, i_a, i_b, i_steps, i_rows, g_class, i_sph],
                            [i_out, i_note], api_name="interpolate")

        with gr.Tab("Reconstruct", id="reconstruct"):
            if not autoencoders:
                _missing("VAE, VAE-GAN or AVB", TRAIN_HINTS["autoencoders"])
            else:
                with gr.Row():
                    with gr.Column(scale=1):
                        r_presets = gr.CheckboxGroup(autoencoders, value=autoencoders, label="Presets")
                        r_invert = gr.Radio(["auto", "yes", "no"], value="auto",
                                            label="Invert grayscale (auto: when the image is mostly light)")
                        with gr.Tab("Draw"):
                            canvas = Image.new("RGB", (280, 280), (0, 0, 0))
                            r_sketch = gr.Sketchpad(
                                value={"background": canvas, "layers": [], "composite": canvas},
                                type="pil", image_mode="RGB", canvas_size=(280, 280),
                                brush=gr.Brush(colors=["#FFFFFF"], color_mode="fixed", default_size=18),
                                label="Draw (white on black, like MNIST)", elem_id="rec-sketch")
                            r_sketch_btn = gr.Button("Reconstruct the drawing", variant="primary")
                        with gr.Tab("Upload"):
                            r_upload = ImageUpload(type="pil", image_mode=None, sources=["upload", "clipboard"],
                                                   label="Image", elem_id="rec-upload")
                            r_upload_btn = gr.Button("Reconstruct the upload", variant="primary",
                                                     elem_id="rec-upload-btn")
                    with gr.Column(scale=2):
                        r_out = gr.Gallery(label="Input as each preset sees it | its reconstruction", columns=2,
                                           format="png", elem_id="rec-out")
                        r_note = gr.Markdown(elem_id="rec-note")
                        gr.Markdown("MSE: the mean over the preset's H·W·C pixel values, scaled to [0, 1], of "
                                    "(reconstruction − input as the preset sees it)², for this one image.")
                with gr.Accordion("Measured figures of these presets", open=False):
                    gr.Markdown("\n\n".join(h.figures(n) for n in autoencoders), elem_id="rec-figures")
                _snippet(snippets["reconstruct"], "rec-api")
                r_sketch_btn.click(readable(h.reconstruct_sketch), [r_sketch, r_presets, r_invert], [r_out, r_note],
                                   api_name="reconstruct_sketch")
                r_upload_btn.click(readable(h.reconstruct_upload), [r_upload, r_presets, r_invert], [r_out, r_note],
                                   api_name="reconstruct_upload")

        with gr.Tab("Retrieve", id="retrieve"):
            if not hashers:
                _missing("DSH-GAN (hashing)", TRAIN_HINTS["hashers"])
            else:
                def label_choices(name):
                    try:
                        return [UNKNOWN] + list(retrieval.class_names(name))
                    except Exception as e:  # noqa: BLE001 - a database that fails to load says so on first use
                        log.warning("database of %s: %s", name, e)
                        return [UNKNOWN]

                with gr.Row():
                    with gr.Column(scale=1):
                        q_preset = gr.Dropdown(hashers, value=hashers[0], label="Hashing preset",
                                               elem_id="ret-preset")
                        q_number = gr.Number(0, precision=0, label="Example: database image number")
                        q_example_btn = gr.Button("Use this database image as the query", elem_id="ret-example")
                        q_image = ImageUpload(type="pil", image_mode=None, label="Query (or upload your own)",
                                              height=220, elem_id="ret-query")
                        q_label = gr.Dropdown(label_choices(hashers[0]), value=UNKNOWN, allow_custom_value=True,
                                              label="Query label (for precision)", elem_id="ret-label")
                        q_k = gr.Slider(1, MAX_K, value=10, step=1, label="k")
                        q_btn = gr.Button("Search", variant="primary", elem_id="ret-btn")
                    with gr.Column(scale=2):
                        q_gallery = gr.Gallery(label="Top k: database number · label · Hamming distance",
                                               columns=5, format="png", elem_id="ret-out")
                        q_note = gr.Markdown(elem_id="ret-note")
                        q_table = gr.Dataframe(headers=["rank", "database #", "label", "Hamming distance",
                                                        "code bits"],
                                               interactive=False, wrap=True, label="Results", elem_id="ret-table")
                        q_examples = gr.Gallery(label="One database image per class (their numbers)", columns=5,
                                                format="png")
                        q_db = gr.Markdown(elem_id="ret-db")
                q_figures = gr.Markdown(h.figures(hashers[0]), elem_id="ret-figures")
                _snippet(snippets["retrieve"], "ret-api")

                q_example_btn.click(readable(h.example), [q_preset, q_number], [q_image, q_label, q_db],
                                    api_name="example")
                q_btn.click(readable(h.retrieve), [q_preset, q_image, q_label, q_k], [q_gallery, q_table, q_note],
                            api_name="retrieve")

                def _examples(name, progress=gr.Progress()):
                    return h.examples(name, progress)[0], h.database_summary(name, progress)

                def _on_hasher(name):
                    return gr.update(choices=label_choices(name), value=UNKNOWN), h.figures(name)

                q_preset.change(readable(_examples), q_preset, [q_examples, q_db], api_name="database")
                q_preset.change(readable(_on_hasher), q_preset, [q_label, q_figures], api_name=False)
                demo.load(readable(_examples), q_preset, [q_examples, q_db], api_name=False)

        with gr.Tab("Model cards", id="cards"):
            names = list(presets)
            if not names:
                gr.Markdown("**No presets found** in `saved_models/`.")
            else:
                c_preset = gr.Dropdown(names, value=names[0], label="Preset", elem_id="card-preset")
                c_card = gr.Markdown(model_card(presets[names[0]]), elem_id="card")
                c_preset.change(readable(lambda n: model_card(store.info(n))), c_preset, c_card, api_name="card")
            kinds = {k: len(store.of_kind((k,))) for k in GENERATOR_KINDS}
            absent = [k for k, v in kinds.items() if not v]
            gr.Markdown(
                "Presets by kind: " + ", ".join(f"{k} {v}" for k, v in kinds.items())
                + (f". None yet of: {', '.join(absent)}." if absent else ".")
                + ("\n\nSkipped: " + "; ".join(problems) if problems else "")
            )
            if names:
                _snippet(snippets["cards"], "card-api")
    demo.zoo_store, demo.zoo_retrieval, demo.zoo_training, demo.zoo_snippets = store, retrieval, h.training, snippets
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


def launch(demo, host="127.0.0.1", port=None, share=False, **kwargs):
    """Launch with the app's defaults: loopback, uploads up to 20 MB, no SSR, no analytics."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return demo.launch(server_name=host, server_port=port, share=share, max_file_size="20mb", ssr_mode=False,
                       footer_links=["api", "settings"], **kwargs)
