"""Image grids as PNG: what a user looks at first."""

import os
from pathlib import Path

import numpy as np

from zoo.data import ranges


def image_grid(images, cols=None, pad=2):
    """(n, h, w, c) images in [0, 1] or uint8 -> one uint8 (H, W, c) grid."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"Expected images (n, h, w, c); got shape {images.shape}.")
    if images.dtype != np.uint8:
        images = ranges.to_pixels(images)
    n, h, w, c = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i, im in enumerate(images):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = im
    return grid


def save_image_grid(images, path, cols=None, scale=2):
    """Write a PNG grid of images (atomically) and return its path."""
    from PIL import Image

    grid = image_grid(images, cols)
    im = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    im.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
