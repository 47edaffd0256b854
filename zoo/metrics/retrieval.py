"""Hamming-ranking retrieval metrics: MAP, MAP@k, precision within a radius,
precision@k and precision-recall curves.

Codes are packed `uint8` rows (see `zoo.retrieval.pack_codes`). Labels are
either ints `(n,)` (single-label data such as CIFAR-10) or multi-hot 0/1
vectors `(n, classes)` (NUS-WIDE); a database item is relevant to a query when
they share at least one label.

Conventions, which papers disagree on (state them next to every figure):

- Tie order: the ranking sorts the database by (Hamming distance, database
  position), ascending (a stable sort, or `HammingIndex`, which orders ties
  the same way). Equal distances are frequent with short codes, so keep
  the database in an order unrelated to its labels (the CIFAR-10 protocol in
  `zoo.data.protocols` shuffles it), or ties favour whichever class comes
  first.
- `mean_average_precision(top_k=None)` ranks the whole database; AP divides
  by the number of relevant items in the database.
- MAP@k divides each query's sum of precisions by the number of relevant
  items retrieved within the top k (DeepHash-pytorch's `CalcTopMap`), not by
  min(k, relevant).
- A query with nothing relevant retrieved (or nothing relevant at all) scores
  0 and still counts in the mean, in every metric here.
- Precision within a radius: a query that retrieves nothing within the radius
  counts as precision 0 (Xia et al., AAAI 2014 and the DSH papers after it);
  `empty="skip"` averages over the queries that retrieve something instead.
"""

import numpy as np

from zoo.retrieval.index import (
    HammingIndex,
    check_codes,
    code_bytes,
    hamming_distances,
    numpy_search,
)

_CHUNK_ENTRIES = 2_000_000  # query x database entries per chunk: bounds memory


def _inputs(query_codes, db_codes, query_labels, db_labels, bits=None):
    q = check_codes(query_codes, name="query_codes")
    db = check_codes(db_codes, name="db_codes")
    if q.shape[1] != db.shape[1]:
        raise ValueError(
            f"query_codes have {q.shape[1]} bytes a code, db_codes {db.shape[1]}."
        )
    if bits is None:
        bits = 8 * q.shape[1]
    elif code_bytes(bits) != q.shape[1]:
        raise ValueError(f"{bits}-bit codes take {code_bytes(bits)} bytes; got {q.shape[1]}.")
    ql = _labels(query_labels, "query_labels")
    dl = _labels(db_labels, "db_labels")
    if len(ql) != len(q) or len(dl) != len(db):
        raise ValueError(
            f"Got {len(q)} query codes and {len(ql)} query labels, {len(db)} database "
            f"codes and {len(dl)} database labels; counts must match."
        )
    if ql.ndim != dl.ndim or ql.shape[1:] != dl.shape[1:]:
        raise ValueError(
            f"query_labels {ql.shape} and db_labels {dl.shape} must both be ints (n,) "
            "or multi-hot vectors (n, classes) of the same width."
        )
    if len(q) == 0 or len(db) == 0:
        raise ValueError("Need at least one query and one database item.")
    return q, db, ql, dl, bits


def _labels(labels, name):
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{name}: single labels must be ints; got dtype {labels.dtype}.")
        return labels
    if labels.ndim == 2:
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"{name}: 2-D labels must be multi-hot 0/1 vectors; pass class ints as shape (n,)."
            )
        return labels.astype(np.float32)
    raise ValueError(f"{name}: expected ints (n,) or multi-hot (n, classes); got shape {labels.shape}.")


def relevance(query_labels, db_labels):
    """`bool (queries, database)`: does the pair share at least one label?"""
    if query_labels.ndim == 1:
        return query_labels[:, None] == db_labels[None, :]
    return query_labels @ db_labels.T > 0


def _chunks(n_queries, n_db):
    step = max(1, _CHUNK_ENTRIES // max(n_db, 1))
    for s in range(0, n_queries, step):
        yield slice(s, min(s + step, n_queries))


def _ap_of_ranked(rel, divisor):
    """AP of each row of a ranked relevance matrix, summed precisions / divisor."""
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, rel.shape[1] + 1)
    total = (precision * rel).sum(axis=1)
    return np.where(divisor > 0, total / np.maximum(divisor, 1), 0.0)


def average_precisions(query_codes, db_codes, query_labels, db_labels, top_k=None):
    """Each query's average precision `(queries,)`; see `mean_average_precision`."""
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1
    ):
        raise ValueError(f"top_k must be a positive integer or None; got {top_k!r}.")
    q, db, ql, dl, _ = _inputs(query_codes, db_codes, query_labels, db_labels)
    ap = np.empty(len(q))
    if top_k is None or top_k >= len(db):
        for s in _chunks(len(q), len(db)):
            d = hamming_distances(q[s], db)
            # A stable sort keeps ties in database order (radix sort on 16 bits).
            order = np.argsort(d.astype(np.uint16), axis=1, kind="stable")
            rel = np.take_along_axis(relevance(ql[s], dl), order, axis=1)
            # Whole database (or top_k >= its size): relevant retrieved = all relevant.
            ap[s] = _ap_of_ranked(rel, rel.sum(axis=1))
        return ap
    _, positions = _top_k(q, db, top_k)
    width = 1 if dl.ndim == 1 else dl.shape[1]
    for s in _chunks(len(q), positions.shape[1] * width):
        rel = _gather_relevance(ql[s], dl, positions[s])
        ap[s] = _ap_of_ranked(rel, rel.sum(axis=1))
    return ap


def mean_average_precision(query_codes, db_codes, query_labels, db_labels, top_k=None):
    """MAP of Hamming ranking: over the whole database, or MAP@k with `top_k`.

    Ties in distance are ranked by database position; MAP@k divides by the
    relevant items found within the top k (DeepHash-pytorch's convention).
    Queries with no relevant item retrieved score 0.
    """
    return float(np.mean(average_precisions(query_codes, db_codes, query_labels, db_labels, top_k)))


def _top_k(q, db, k):
    """Top-k `(distances, positions)` by (distance, position), identical either way:
    from the FAISS index when k is small next to the database (its heap is
    fast there: 10x the NumPy sort at k=100 of 59,000), else a NumPy stable sort."""
    if 16 * k <= len(db):
        return HammingIndex(8 * q.shape[1]).add(db).search(q, k)
    return numpy_search(q, db, k)


def _gather_relevance(ql, dl, positions):
    if ql.ndim == 1:
        return ql[:, None] == dl[positions]
    return np.einsum("qc,qkc->qk", ql, dl[positions]) > 0


def precision_at_k(query_codes, db_codes, query_labels, db_labels, k=100):
    """Mean share of relevant items among each query's top k (ties by position).

    With fewer than k database items, the share is of all of them.
    """
    q, db, ql, dl, _ = _inputs(query_codes, db_codes, query_labels, db_labels)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    _, positions = _top_k(q, db, k)
    return float(_gather_relevance(ql, dl, positions).mean())


def _radius_counts(query_codes, db_codes, query_labels, db_labels, bits=None):
    """Per query and radius r = 0..bits: items and relevant items within r; relevant in all."""
    q, db, ql, dl, bits = _inputs(query_codes, db_codes, query_labels, db_labels, bits)
    check_codes(q, bits, "query_codes")
    check_codes(db, bits, "db_codes")
    width = bits + 1
    retrieved = np.empty((len(q), width), np.int64)
    hits = np.empty((len(q), width), np.int64)
    relevant = np.empty(len(q), np.int64)
    for s in _chunks(len(q), len(db)):
        d = hamming_distances(q[s], db)
        rel = relevance(ql[s], dl)
        n = d.shape[0]
        flat = d + width * np.arange(n)[:, None]
        retrieved[s] = np.bincount(flat.ravel(), minlength=n * width).reshape(n, width)
        hits[s] = np.bincount(flat[rel], minlength=n * width).reshape(n, width)
        relevant[s] = rel.sum(axis=1)
    return np.cumsum(retrieved, axis=1), np.cumsum(hits, axis=1), relevant, bits


def _mean_precision(retrieved, hits, empty):
    if empty not in ("zero", "skip"):
        raise ValueError(f"empty must be 'zero' or 'skip'; got {empty!r}.")
    precision = np.where(retrieved > 0, hits / np.maximum(retrieved, 1), 0.0)
    if empty == "zero":
        return precision.mean(axis=0)
    some = retrieved > 0
    with np.errstate(invalid="ignore"):
        return np.where(some.any(axis=0), precision.sum(axis=0) / some.sum(axis=0), np.nan)


def precision_within_radius(
    query_codes, db_codes, query_labels, db_labels, radius=2, empty="zero"
):
    """Mean precision of the items within Hamming distance `radius` (inclusive).

    `empty="zero"`: a query with nothing within the radius counts as precision
    0 (Xia et al. 2014 and the DSH papers). `"skip"`: average over the queries
    that retrieve something (NaN if none does).
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be a non-negative integer; got {radius!r}.")
    retrieved, hits, _, bits = _radius_counts(query_codes, db_codes, query_labels, db_labels)
    r = min(int(radius), bits)
    return float(_mean_precision(retrieved[:, r : r + 1], hits[:, r : r + 1], empty)[0])


def precision_recall_curve(
    query_codes, db_codes, query_labels, db_labels, bits=None, empty="zero"
):
    """Precision and recall of Hamming-radius retrieval for radius 0..bits.

    Returns `(precision, recall, radii)`, each `(bits + 1,)`: at radius r, the
    mean over queries of the precision (as `precision_within_radius`, same
    `empty` convention) and of the recall (relevant items within r over all
    relevant items; 0 for a query with none) of the items within distance r.
    `bits` defaults to 8 bits a byte of code; pass it for 12-bit codes.
    """
    retrieved, hits, relevant, bits = _radius_counts(
        query_codes, db_codes, query_labels, db_labels, bits
    )
    precision = _mean_precision(retrieved, hits, empty)
    recall = np.where(relevant[:, None] > 0, hits / np.maximum(relevant, 1)[:, None], 0.0)
    return precision, recall.mean(axis=0), np.arange(bits + 1)
