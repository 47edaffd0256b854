"""Retrieval with binary codes from any hashing model: a Hamming index on FAISS,
code packing, and the LSH / ITQ baselines. Metrics live in `zoo.metrics`."""

from zoo.retrieval.baselines import ITQ, LSH
from zoo.retrieval.index import (
    HammingIndex,
    code_bytes,
    hamming_distances,
    numpy_search,
    pack_codes,
    unpack_codes,
)

__all__ = [
    "ITQ",
    "LSH",
    "HammingIndex",
    "code_bytes",
    "hamming_distances",
    "numpy_search",
    "pack_codes",
    "unpack_codes",
]
