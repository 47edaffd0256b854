"""Exact Hamming search over packed binary codes, on FAISS's binary flat index.

Codes travel as packed `uint8` rows, `ceil(bits / 8)` bytes each, bit `i` of a
code in byte `i // 8` at position `7 - i % 8` (NumPy's `packbits` big-endian
order). A code length that is not a multiple of 8 (12 bits, say) is padded
with zero bits at the end of its last byte: the padding is zero in every code,
so it never adds to a Hamming distance, and FAISS (which needs whole bytes)
searches the padded codes exactly. Inputs with a padding bit set are refused
(`pack_codes` never sets one).

Tie order: `search` and `range_search` return neighbours sorted by (Hamming
distance, insertion position), ascending. At the k-th place, the codes kept
among equal distances are the ones added first. FAISS's flat binary search
scans the database in insertion order, admits a code only at a strictly
smaller distance than its heap top, and orders its heap by (distance, id), so
it keeps exactly those. FAISS does not document this, so we sort its k results
by (distance, position) again, and the tests check the whole result against a
stable NumPy brute force (`numpy_search`) on codes with many ties.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

MAGIC = b"ZOOHAMMING\x00\x01"  # file format 1
_HEADER_LEN_BYTES = 4

# Popcount of every byte value: the NumPy fallback when `np.bitwise_count`
# (NumPy >= 2.0) is missing.
_POPCOUNT8 = np.array([i.bit_count() for i in range(256)], dtype=np.uint8)


def code_bytes(bits):
    """Bytes per packed code: bits rounded up to whole bytes."""
    return (int(bits) + 7) // 8


def _check_bits(bits):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 1:
        raise ValueError(f"bits must be a positive integer; got {bits!r}.")
    return int(bits)


def pack_codes(bits_array):
    """Pack 0/1 codes `(n, bits)` into `uint8` rows of `ceil(bits / 8)` bytes.

    Accepts ints, bools or floats equal to 0 or 1 (e.g. `1[h > 0.5]`). Padding
    bits of the last byte are zero.
    """
    b = np.asarray(bits_array)
    if b.ndim != 2:
        raise ValueError(f"Expected 0/1 codes of shape (n, bits); got shape {b.shape}.")
    if b.shape[1] == 0:
        raise ValueError("Expected at least one bit per code; got shape (n, 0).")
    if b.dtype != bool:
        if not (np.issubdtype(b.dtype, np.integer) or np.issubdtype(b.dtype, np.floating)):
            raise ValueError(f"Expected 0/1 codes of a numeric or bool dtype; got {b.dtype}.")
        if b.size and not np.isin(b, (0, 1)).all():
            raise ValueError(
                "Expected codes of 0s and 1s; got other values "
                f"(min {b.min()}, max {b.max()}). Threshold them first, e.g. h > 0.5."
            )
    return np.packbits(b.astype(bool), axis=1)


def unpack_codes(codes, bits):
    """Unpack `uint8` rows into 0/1 `uint8` codes of shape `(n, bits)`."""
    bits = _check_bits(bits)
    codes = check_codes(codes, bits)
    return np.unpackbits(codes, axis=1, count=bits)


def check_codes(codes, bits=None, name="codes"):
    """Validate packed codes: 2-D `uint8`, the right width, zero padding bits."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        raise ValueError(
            f"{name}: expected packed uint8 codes (see pack_codes); got dtype {codes.dtype}."
        )
    if codes.ndim != 2:
        raise ValueError(f"{name}: expected packed codes of shape (n, bytes); got shape {codes.shape}.")
    if bits is None:
        return np.ascontiguousarray(codes)
    width = code_bytes(bits)
    if codes.shape[1] != width:
        raise ValueError(
            f"{name}: {bits}-bit codes take {width} bytes a row; got {codes.shape[1]} "
            f"(shape {codes.shape})."
        )
    pad = 8 * width - bits
    if pad and len(codes) and (codes[:, -1] & np.uint8((1 << pad) - 1)).any():
        raise ValueError(
            f"{name}: {bits}-bit codes must have their {pad} padding bits (the low bits of "
            "the last byte) set to zero; pack them with pack_codes."
        )
    return np.ascontiguousarray(codes)


def _words(codes):
    """Rows zero-padded to whole 64-bit words, as `uint64 (words, n)`: one
    contiguous row per word, so the scan streams through memory."""
    n, width = codes.shape
    words = -(-width // 8)
    padded = np.zeros((n, 8 * words), np.uint8)
    padded[:, :width] = codes
    return np.ascontiguousarray(padded.view(np.uint64).T)


def _popcount(words):
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    return _POPCOUNT8[words.view(np.uint8)].reshape(*words.shape, 8).sum(-1, dtype=np.uint8)


def _scan(q_words, db_words):
    """Distances `(nq, n)` from word-major codes; uint8 while they fit, else uint16."""
    out = _popcount(q_words[0][:, None] ^ db_words[0][None, :])
    if len(q_words) > 3:  # more than 255 bits
        out = out.astype(np.uint16)
    for j in range(1, len(q_words)):
        out += _popcount(q_words[j][:, None] ^ db_words[j][None, :])
    return out


def _check_pair(queries, database):
    queries = check_codes(queries, name="queries")
    database = check_codes(database, name="database")
    if queries.shape[1] != database.shape[1]:
        raise ValueError(
            f"queries have {queries.shape[1]} bytes a code, the database {database.shape[1]}."
        )
    return queries, database


def hamming_distances(queries, database):
    """All Hamming distances `(len(queries), len(database))`, `int32`, in NumPy.

    The reference for the FAISS index (and its fallback): XOR of 64-bit words
    and a popcount. Memory is `4 * len(queries) * len(database)` bytes, so
    callers with a big database pass the queries in chunks.
    """
    queries, database = _check_pair(queries, database)
    return _scan(_words(queries), _words(database)).astype(np.int32)


def numpy_search(queries, database, k, chunk=None):
    """Exact top-k by a NumPy brute-force scan, ties by database position.

    Returns `(distances int32, positions int64)` of shape `(n, min(k, len(database)))`.
    A stable sort (a radix sort for 8- and 16-bit ints) keeps equal distances
    in database order. The fallback and the reference of `HammingIndex`.
    `chunk` queries are scanned at once; the default keeps the temporaries
    near 2**20 entries, which measured fastest (they stay in cache).
    """
    queries, database = _check_pair(queries, database)
    k = min(int(k), len(database))
    chunk = chunk or max(1, 2**20 // max(len(database), 1))
    db_words = _words(database)
    dist_out = np.empty((len(queries), k), np.int32)
    pos_out = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), chunk):
        d = _scan(_words(queries[s : s + chunk]), db_words)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        dist_out[s : s + chunk] = np.take_along_axis(d, order, axis=1)
        pos_out[s : s + chunk] = order
    return dist_out, pos_out


def _faiss():
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError(
            "HammingIndex needs FAISS: pip install faiss-cpu (or faiss-gpu)."
        ) from e
    return faiss


# Code sizes (bytes) that FAISS has a dedicated Hamming kernel for; others take
# a generic byte loop, 2-3x slower (48-bit codes: 6 bytes, see the benchmark).
_FAISS_FAST_SIZES = (4, 8, 16, 20, 32, 64)


def _storage_bytes(code_size):
    for size in _FAISS_FAST_SIZES:
        if code_size <= size:
            return size
    return -(-code_size // 8) * 8


class HammingIndex:
    """Exact Hamming search over packed binary codes (FAISS `IndexBinaryFlat`).

    Why FAISS: its flat binary scan (SIMD popcount, a heap per query, all
    cores) is several times faster than a NumPy scan; see
    `bench/hamming_search.py`.

    Args:
        bits: code length. Codes go in and out as `ceil(bits / 8)`-byte
            `uint8` rows, zero padded when `bits` is not a multiple of 8 (see
            the module docstring).
        compact: store exactly `ceil(bits / 8)` bytes a code. By default the
            index stores codes zero-padded to the next size FAISS has a fast
            kernel for (4, 8, 16, 20, 32 or 64 bytes; 48-bit codes take 8
            bytes instead of 6) because that searches 2-3x faster; padding
            zeros never change a distance.

    Example:

    ```python
    index = HammingIndex(48)
    index.add(db_codes)                      # uint8 (n, 6)
    distances, ids = index.search(query_codes, k=100)
    ```
    """

    def __init__(self, bits, compact=False):
        self.bits = _check_bits(bits)
        self.compact = bool(compact)
        self.code_size = code_bytes(self.bits)
        self.storage_size = self.code_size if compact else _storage_bytes(self.code_size)
        self._index = _faiss().IndexBinaryFlat(8 * self.storage_size)
        self._ids = None  # None: ids are insertion positions (saves 8 bytes a code)

    def __len__(self):
        return int(self._index.ntotal)

    def __repr__(self):
        return f"HammingIndex(bits={self.bits}, count={len(self)})"

    @property
    def bytes_per_code(self):
        """Memory per stored code: the (padded) code, plus 8 if custom ids are kept."""
        return self.storage_size + (8 if self._ids is not None else 0)

    @property
    def codes(self):
        """The stored codes, `uint8 (count, code_size)`, in insertion order."""
        flat = _faiss().vector_to_array(self._index.xb)
        return flat.reshape(len(self), self.storage_size)[:, : self.code_size]

    def _pad(self, codes):
        if self.storage_size == self.code_size:
            return codes
        padded = np.zeros((len(codes), self.storage_size), np.uint8)
        padded[:, : self.code_size] = codes
        return padded

    @property
    def ids(self):
        """The stored ids, `int64 (count,)`, in insertion order."""
        if self._ids is None:
            return np.arange(len(self), dtype=np.int64)
        return self._ids.copy()

    def add(self, codes, ids=None):
        """Add packed codes; `ids` (non-negative ints) default to insertion positions."""
        codes = check_codes(codes, self.bits)
        if ids is not None:
            ids = np.asarray(ids)
            if ids.shape != (len(codes),):
                raise ValueError(f"ids must have shape ({len(codes)},); got {ids.shape}.")
            if ids.size and not np.issubdtype(ids.dtype, np.integer):
                raise ValueError(f"ids must be integers; got dtype {ids.dtype}.")
            ids = ids.astype(np.int64)
            if ids.size and ids.min() < 0:
                raise ValueError("ids must be non-negative (-1 would read as 'no result').")
            merged = np.concatenate([self.ids, ids])
            if len(np.unique(merged)) != len(merged):
                raise ValueError("ids must be unique across the index.")
            self._ids = merged
        elif self._ids is not None:
            start = len(self)
            fresh = np.arange(start, start + len(codes), dtype=np.int64)
            merged = np.concatenate([self._ids, fresh])
            if len(np.unique(merged)) != len(merged):
                raise ValueError(
                    "Default ids (insertion positions) collide with ids given earlier; pass ids."
                )
            self._ids = merged
        if len(codes):
            self._index.add(self._pad(codes))
        return self

    def _to_ids(self, positions):
        return positions if self._ids is None else self._ids[positions]

    def search(self, queries, k):
        """Exact top-k: `(distances int32, ids int64)`, each `(n, min(k, count))`.

        Rows are sorted by (distance, insertion position); see the module
        docstring for why the order is deterministic.
        """
        queries = check_codes(queries, self.bits, name="queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}.")
        k = min(int(k), len(self))
        if k == 0 or len(queries) == 0:
            return np.zeros((len(queries), k), np.int32), np.zeros((len(queries), k), np.int64)
        distances, positions = self._index.search(self._pad(queries), k)
        distances = distances.astype(np.int32)
        order = _row_lexsort(distances, positions)
        distances = np.take_along_axis(distances, order, axis=1)
        positions = np.take_along_axis(positions, order, axis=1)
        return distances, self._to_ids(positions)

    def range_search(self, queries, radius):
        """All codes within Hamming distance `radius` (inclusive) of each query.

        Returns `(lims, distances, ids)` as FAISS does: the results of query `i`
        are `distances[lims[i]:lims[i + 1]]` and `ids[lims[i]:lims[i + 1]]`,
        sorted by (distance, insertion position).
        """
        queries = check_codes(queries, self.bits, name="queries")
        if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
            raise ValueError(f"radius must be a non-negative integer; got {radius!r}.")
        if len(queries) == 0 or len(self) == 0:
            return np.zeros(len(queries) + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64)
        # FAISS keeps distances strictly below its radius.
        lims, distances, positions = self._index.range_search(self._pad(queries), int(radius) + 1)
        lims = lims.astype(np.int64)
        distances = distances.astype(np.int32)
        positions = positions.astype(np.int64)
        row = np.repeat(np.arange(len(queries)), np.diff(lims))
        order = np.lexsort((positions, distances, row))
        return lims, distances[order], self._to_ids(positions[order])

    def save(self, path):
        """Write the index to `path` atomically (a temporary file, then `os.replace`).

        Format 1: the magic bytes, a 4-byte little-endian header length, a JSON
        header (bits, count, code_size, whether ids are stored, `compact`, the
        SHA-256 of the payload), then the payload: the `ceil(bits / 8)`-byte
        codes, then the little-endian int64 ids if any.
        """
        path = Path(path)
        payload = self.codes.tobytes()
        if self._ids is not None:
            payload += self._ids.astype("<i8").tobytes()
        header = json.dumps({
            "format": 1,
            "bits": self.bits,
            "count": len(self),
            "code_size": self.code_size,
            "has_ids": self._ids is not None,
            "compact": self.compact,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }).encode()
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                f.write(MAGIC)
                f.write(len(header).to_bytes(_HEADER_LEN_BYTES, "little"))
                f.write(header)
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # a killed run never leaves a half-written index
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    @classmethod
    def load(cls, path):
        """Read an index written by `save`; a clear error if missing or corrupt."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No Hamming index at {str(path)!r}.")
        data = path.read_bytes()

        def corrupt(why):
            return ValueError(f"{path} is not a valid HammingIndex file: {why}.")

        if not data.startswith(MAGIC):
            raise corrupt("wrong magic bytes (not written by HammingIndex.save, or damaged)")
        start = len(MAGIC) + _HEADER_LEN_BYTES
        if len(data) < start:
            raise corrupt("truncated header")
        header_len = int.from_bytes(data[len(MAGIC) : start], "little")
        try:
            header = json.loads(data[start : start + header_len])
            bits, count = _check_bits(header["bits"]), int(header["count"])
            has_ids, checksum = bool(header["has_ids"]), str(header["sha256"])
            fmt, compact = header["format"], bool(header.get("compact", False))
        except (ValueError, KeyError, TypeError) as e:
            raise corrupt(f"unreadable header ({e})") from None
        if fmt != 1:
            raise corrupt(f"unknown format {fmt!r}")
        payload = data[start + header_len :]
        size = code_bytes(bits)
        expected = count * size + (8 * count if has_ids else 0)
        if len(payload) != expected:
            raise corrupt(f"payload is {len(payload)} bytes, the header says {expected} (truncated?)")
        if hashlib.sha256(payload).hexdigest() != checksum:
            raise corrupt("checksum mismatch (the file was modified or damaged)")
        index = cls(bits, compact=compact)
        codes = np.frombuffer(payload, np.uint8, count * size).reshape(count, size)
        ids = np.frombuffer(payload, "<i8", offset=count * size).astype(np.int64) if has_ids else None
        index.add(codes, ids)
        return index


def _row_lexsort(distances, positions):
    """Per-row order by (distance, position); positions are unique in a row."""
    return np.argsort(distances.astype(np.int64) * (positions.max() + 2) + positions, axis=1, kind="stable")
