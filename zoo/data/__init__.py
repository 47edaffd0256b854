"""Data for every model: tfds names, .npz files, image folders and zips -> tf.data."""

from zoo.data import ranges, toy
from zoo.data.pipeline import holdout, load, make_dataset, scale, split_per_class
from zoo.data.protocols import HashingSplit, cifar10_hashing_split, hashing_split, validation_split
from zoo.data.sources import DataError, DataNotFoundError, load_arrays

__all__ = ["DataError", "DataNotFoundError", "load", "load_arrays", "make_dataset", "scale", "split_per_class", "holdout", "ranges", "toy",
           "HashingSplit", "hashing_split", "cifar10_hashing_split", "validation_split"]
