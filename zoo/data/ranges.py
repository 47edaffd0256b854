"""Pixel ranges: uint8 / [0, 1] images <-> a model's `data_range` (lo, hi).

The one implementation of these conversions (models, pipelines, metrics,
export and image grids use it). NumPy only, so it imports without TensorFlow;
`from_unit` and `unit_of` are plain arithmetic and take tf or Keras tensors too
(tf.data maps, exported graphs).
"""

import warnings

import numpy as np

PIXEL_MAX = 255.0  # uint8 pixels span [0, PIXEL_MAX]
UNIT = (0.0, 1.0)


def from_unit(x, data_range):
    """x in [0, 1] -> x in `data_range` (any array or tensor type)."""
    lo, hi = data_range
    return x * (hi - lo) + lo


def unit_of(x, data_range):
    """x in `data_range` -> x in [0, 1], not clipped (any array or tensor type)."""
    lo, hi = data_range
    return (x - lo) / (hi - lo)


def pixels_to_unit(x):
    """Pixel values in [0, 255] (uint8, or any dtype) -> NumPy float32 in [0, 1]."""
    return np.asarray(x).astype(np.float32) / PIXEL_MAX


def to_range(images, data_range):
    """uint8 images in [0, 255] or floats in [0, 1] -> NumPy float32 in `data_range`.

    Converts only: callers that take user images check their values first
    (`zoo.models.common.images_to_model`)."""
    x = np.asarray(images)
    x = pixels_to_unit(x) if x.dtype == np.uint8 else x.astype(np.float32)
    return from_unit(x, data_range)


def to_unit(x, data_range):
    """NumPy values in `data_range` -> float32 in [0, 1], clipped."""
    return np.clip(unit_of(np.asarray(x), data_range), 0.0, 1.0).astype(np.float32)


def to_pixels(x):
    """Floats in [0, 1] -> uint8 pixels, rounded (clipped to [0, 1] first)."""
    return np.round(np.clip(np.asarray(x), 0.0, 1.0) * PIXEL_MAX).astype(np.uint8)


_DEFAULT = (-1.0, 1.0)


def renamed_value_range(data_range, value_range, where, default=_DEFAULT):
    """The range to use given `data_range` and the deprecated `value_range` keyword
    (zoo.data's old name for it); warns when `value_range` is passed."""
    if value_range is None:
        return data_range
    if data_range is not None and tuple(data_range) != tuple(default) and tuple(data_range) != tuple(value_range):
        raise TypeError(f"{where}: pass data_range only (value_range is its deprecated name), not both.")
    warnings.warn(f"{where}: value_range is deprecated; pass data_range (the models' name for it).",
                  DeprecationWarning, stacklevel=3)
    return value_range


__all__ = ["PIXEL_MAX", "UNIT", "from_unit", "unit_of", "pixels_to_unit", "to_range", "to_unit", "to_pixels"]
