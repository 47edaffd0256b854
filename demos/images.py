"""Images in and out of the app: uploads and sketches read safely, converted to a
model's shape (with notes saying what was done), and grids written as PNG files."""

import functools
import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

import gradio as gr

from demos.errors import UserError
from zoo import visualize

MAX_PIXELS = 25_000_000  # bigger uploads are refused with a message, before decoding
CELL = 84  # displayed cell size (pixels) of the grids: small images are upscaled


# ---------------------------------------------------------------------------------------------
# Uploads and sketches
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


def sketch_composite(sketch):
    """The drawing in a sketchpad value (an ImageEditor dict, or one image through the API)
    as a PIL image; None when nothing is drawn. Anything that is not an image is a UserError."""

    def image(value):  # the API may send anything: check it as the upload is checked
        return value if value is None or isinstance(value, Image.Image) else _sketch_image(value)

    if isinstance(sketch, dict):
        composite = image(sketch.get("composite"))
        layers = [image(layer) for layer in (sketch.get("layers") or []) if layer is not None]
        drawn = any(_has_ink(layer) for layer in layers)
        return composite if composite is not None and (drawn or _varies(composite)) else None
    if sketch is not None:
        sketch = image(sketch)
        return sketch if _varies(sketch) else None
    return None


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
# Conversion to a model's shape
# ---------------------------------------------------------------------------------------------
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


def convert_images(x_raw, shape, progress=None):
    """(n, H, W, C) uint8 images as `shape`: a channel conversion when only the channels
    differ, else `to_shape` image by image (no inversion: data sets are as trained)."""
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


# ---------------------------------------------------------------------------------------------
# Pictures for the page
# ---------------------------------------------------------------------------------------------
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


def image_grid(images, cols, cell=CELL):
    """(n, H, W, C) floats in [0, 1] (or uint8) -> one uint8 grid, each image upscaled by an
    integer factor to about `cell` pixels: zoo.visualize's grid of the enlarged images."""
    images = to_uint8(images)
    f = max(1, cell // max(images.shape[1:3]))
    grid = visualize.image_grid(np.repeat(np.repeat(images, f, axis=1), f, axis=2), cols)
    return grid[..., 0] if grid.shape[-1] == 1 else grid


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

