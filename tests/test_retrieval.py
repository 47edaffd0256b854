"""Retrieval stack: Hamming index on FAISS, metrics, CIFAR-10 protocol, LSH/ITQ.

Backend-independent (NumPy and FAISS); runs under each backend like the rest.
"""

import time

import keras
import numpy as np
import pytest

from zoo.data import cifar10_hashing_split, hashing_split
from zoo.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
)
from zoo.metrics.retrieval import average_precisions
from zoo.retrieval import (
    ITQ,
    LSH,
    HammingIndex,
    hamming_distances,
    numpy_search,
    pack_codes,
    unpack_codes,
)


@pytest.fixture(autouse=True)
def _seed():
    """Overrides conftest's: these tests seed NumPy themselves and build no Keras
    models, so they skip its per-test `clear_session` (most of their time)."""
    yield


def random_codes(rng, n, bits):
    return pack_codes(rng.integers(0, 2, (n, bits)))


def code(bit_string):
    """One packed code from a string like "0000 0011"."""
    return pack_codes([[int(c) for c in bit_string.replace(" ", "")]])


# ----------------------------------------------------------------------------- codes


def test_pack_unpack_round_trip_and_padding():
    rng = np.random.default_rng(0)
    for bits in (8, 12, 48, 64):
        b = rng.integers(0, 2, (5, bits))
        packed = pack_codes(b)
        assert packed.dtype == np.uint8 and packed.shape == (5, (bits + 7) // 8)
        np.testing.assert_array_equal(unpack_codes(packed, bits), b)
    # 12 bits: 2 bytes, the 4 padding bits are the low bits of the last byte.
    packed = pack_codes(np.ones((1, 12)))
    np.testing.assert_array_equal(packed, [[0xFF, 0xF0]])
    assert pack_codes(np.array([[0.0, 1.0, 1.0]])).tolist() == [[0b01100000]]


def test_code_validation_errors():
    with pytest.raises(ValueError, match="0s and 1s"):
        pack_codes([[0, 2, 1]])
    with pytest.raises(ValueError, match="shape"):
        pack_codes([0, 1, 1])
    index = HammingIndex(12)
    with pytest.raises(ValueError, match="uint8"):
        index.add(np.zeros((3, 2), np.int64))
    with pytest.raises(ValueError, match="take 2 bytes"):
        index.add(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="padding bits"):
        index.add(np.array([[0, 1]], np.uint8))
    with pytest.raises(ValueError, match="bits must be"):
        HammingIndex(0)
    index.add(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="k must be"):
        index.search(np.zeros((1, 2), np.uint8), 0)
    with pytest.raises(ValueError, match="radius"):
        index.range_search(np.zeros((1, 2), np.uint8), -1)
    with pytest.raises(ValueError, match="ids must have shape"):
        index.add(np.zeros((2, 2), np.uint8), ids=[1])


def test_hamming_distances_reference(monkeypatch):
    rng = np.random.default_rng(1)
    for width in (1, 2, 6, 8, 9, 40):  # 40 bytes: 320 bits, past uint8 counts
        a = rng.integers(0, 256, (7, width), dtype=np.uint8)
        b = rng.integers(0, 256, (30, width), dtype=np.uint8)
        expected = (np.unpackbits(a, axis=1)[:, None] != np.unpackbits(b, axis=1)[None]).sum(-1)
        np.testing.assert_array_equal(hamming_distances(a, b), expected)
        # The popcount table, used where np.bitwise_count (NumPy 2) is missing.
        monkeypatch.delattr(np, "bitwise_count", raising=False)
        np.testing.assert_array_equal(hamming_distances(a, b), expected)
        monkeypatch.undo()


# ----------------------------------------------------------------------------- index


def test_tie_order_by_insertion_position():
    zero, one = code("0000 0000"), code("0000 0001")
    db = np.concatenate([one, zero, one, zero, zero])
    index = HammingIndex(8).add(db)
    distances, ids = index.search(zero, 5)
    np.testing.assert_array_equal(distances, [[0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(ids, [[1, 3, 4, 0, 2]])
    # At the k-th place, the first added of the tied codes are kept.
    np.testing.assert_array_equal(index.search(zero, 2)[1], [[1, 3]])
    np.testing.assert_array_equal(index.search(zero, 4)[1], [[1, 3, 4, 0]])
    # Custom ids: ties still follow insertion order, whatever the id values.
    index = HammingIndex(8).add(db, ids=[50, 40, 30, 20, 10])
    np.testing.assert_array_equal(index.search(zero, 4)[1], [[40, 20, 10, 50]])


@pytest.mark.parametrize("bits", [8, 12, 48])
def test_index_top_k_equals_numpy_brute_force(bits):
    # 8 and 12 bits over 3,000 codes: many ties, also at the k-th place.
    rng = np.random.default_rng(bits)
    db, queries = random_codes(rng, 3000, bits), random_codes(rng, 40, bits)
    expected = numpy_search(queries, db, 50)
    for compact in (False, True):
        index = HammingIndex(bits, compact=compact)
        index.add(db[:1000]).add(db[1000:])  # two adds = one
        distances, ids = index.search(queries, 50)
        np.testing.assert_array_equal(distances, expected[0])
        np.testing.assert_array_equal(ids, expected[1])
    full = hamming_distances(queries, db)
    np.testing.assert_array_equal(np.sort(full, axis=1)[:, :50], expected[0])


def test_search_with_fewer_codes_than_k():
    rng = np.random.default_rng(0)
    index = HammingIndex(16)
    distances, ids = index.search(random_codes(rng, 3, 16), 5)
    assert distances.shape == ids.shape == (3, 0)
    index.add(random_codes(rng, 4, 16))
    distances, ids = index.search(random_codes(rng, 3, 16), 10)
    assert ids.shape == (3, 4) and sorted(ids[0]) == [0, 1, 2, 3]


def test_range_search_matches_brute_force():
    rng = np.random.default_rng(3)
    db, queries = random_codes(rng, 2000, 12), random_codes(rng, 20, 12)
    ids_given = rng.permutation(10_000)[:2000]
    index = HammingIndex(12).add(db, ids=ids_given)
    full = hamming_distances(queries, db)
    for radius in (0, 2, 12):
        lims, distances, ids = index.range_search(queries, radius)
        assert len(lims) == len(queries) + 1
        for i in range(len(queries)):
            within = np.flatnonzero(full[i] <= radius)
            order = within[np.argsort(full[i, within], kind="stable")]  # (distance, position)
            np.testing.assert_array_equal(ids[lims[i] : lims[i + 1]], ids_given[order])
            np.testing.assert_array_equal(distances[lims[i] : lims[i + 1]], full[i, order])
    assert lims[-1] == len(queries) * len(db)  # radius 12 = everything


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    db, queries = random_codes(rng, 500, 12), random_codes(rng, 10, 12)
    for ids in (None, rng.permutation(5000)[:500]):
        index = HammingIndex(12).add(db, ids=ids)
        path = index.save(tmp_path / "codes.hidx")
        loaded = HammingIndex.load(path)
        assert (loaded.bits, len(loaded)) == (12, 500)
        np.testing.assert_array_equal(loaded.codes, db)
        np.testing.assert_array_equal(loaded.ids, index.ids)
        for a, b in zip(loaded.search(queries, 20), index.search(queries, 20)):
            np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["codes.hidx"]  # no temporary left


def test_load_missing_or_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No Hamming index"):
        HammingIndex.load(tmp_path / "missing.hidx")
    path = HammingIndex(48).add(random_codes(np.random.default_rng(5), 100, 48)).save(
        tmp_path / "codes.hidx"
    )
    data = bytearray(path.read_bytes())
    flipped = data.copy()
    flipped[-10] ^= 0xFF
    (tmp_path / "flipped").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="checksum"):
        HammingIndex.load(tmp_path / "flipped")
    (tmp_path / "truncated").write_bytes(bytes(data[:-7]))
    with pytest.raises(ValueError, match="truncated"):
        HammingIndex.load(tmp_path / "truncated")
    (tmp_path / "other").write_bytes(b"PK\x03\x04 not an index")
    with pytest.raises(ValueError, match="magic"):
        HammingIndex.load(tmp_path / "other")


def test_faiss_coexists_with_the_backend():
    """FAISS and the backend each bring OpenMP; run one after the other."""
    rng = np.random.default_rng(6)
    index = HammingIndex(64).add(random_codes(rng, 20_000, 64))
    index.search(random_codes(rng, 64, 64), 10)
    x = keras.ops.ones((256, 256))
    y = keras.ops.convert_to_numpy(keras.ops.matmul(x, x))
    assert y[0, 0] == 256.0
    index.search(random_codes(rng, 64, 64), 10)


# ----------------------------------------------------------------------------- metrics


def hand_case():
    """Query 0000 0000; database distances [0, 1, 1, 2, 3], relevant [y, n, y, n, y]."""
    db = np.concatenate([code(s) for s in ("00000000", "10000000", "01000000", "11000000", "11100000")])
    return code("00000000"), db, np.array([1]), np.array([1, 0, 1, 0, 1])


def test_metrics_hand_computed():
    q, db, ql, dl = hand_case()
    # Ranking: positions 0, 1, 2, 3, 4 (ties at distance 1 by position).
    assert mean_average_precision(q, db, ql, dl) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # MAP@3: relevant within the top 3 are positions 0 and 2; divide by 2.
    assert mean_average_precision(q, db, ql, dl, top_k=3) == pytest.approx((1 + 2 / 3) / 2)
    assert mean_average_precision(q, db, ql, dl, top_k=1) == pytest.approx(1.0)
    assert precision_at_k(q, db, ql, dl, k=2) == pytest.approx(0.5)
    assert precision_at_k(q, db, ql, dl, k=5) == pytest.approx(0.6)
    assert precision_within_radius(q, db, ql, dl, radius=2) == pytest.approx(2 / 4)
    assert precision_within_radius(q, db, ql, dl, radius=0) == pytest.approx(1.0)
    precision, recall, radii = precision_recall_curve(q, db, ql, dl)
    np.testing.assert_array_equal(radii, np.arange(9))
    np.testing.assert_allclose(precision, [1, 2 / 3, 1 / 2] + [3 / 5] * 6)
    np.testing.assert_allclose(recall, [1 / 3, 2 / 3, 2 / 3] + [1] * 6)
    # Swap the tied items: the relevant one now ranks first at distance 1.
    swapped = db[[0, 2, 1, 3, 4]]
    assert mean_average_precision(q, swapped, ql, dl[[0, 2, 1, 3, 4]]) == pytest.approx(
        (1 + 1 + 3 / 5) / 3
    )


def test_empty_conventions():
    q, db, _, dl = hand_case()
    far = code("11111111")  # distance >= 5 from everything: nothing within radius 2
    queries, labels = np.concatenate([q, far]), np.array([1, 1])
    assert precision_within_radius(queries, db, labels, dl) == pytest.approx(0.5 / 2)
    assert precision_within_radius(queries, db, labels, dl, empty="skip") == pytest.approx(0.5)
    # A query with nothing relevant scores 0 in MAP and counts in the mean.
    labels = np.array([1, 7])
    aps = average_precisions(queries, db, labels, dl)
    assert aps[1] == 0.0 and mean_average_precision(queries, db, labels, dl) == pytest.approx(aps[0] / 2)


def test_multi_hot_labels():
    q, db, ql, dl = hand_case()
    one_hot = np.eye(2)[dl]
    single = mean_average_precision(q, db, ql, dl)
    assert mean_average_precision(q, db, np.eye(2)[ql], one_hot) == pytest.approx(single)
    # Multi-label: relevant when any label is shared.
    db_labels = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0], [1, 1, 0]])
    query_labels = np.array([[0, 1, 0]])  # relevant: positions 1 and 4
    assert mean_average_precision(q, db, query_labels, db_labels) == pytest.approx((1 / 2 + 2 / 5) / 2)
    assert mean_average_precision(q, db, query_labels, db_labels, top_k=3) == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="multi-hot"):
        mean_average_precision(q, db, np.array([[2]]), np.array([[1], [0], [1], [0], [1]]))
    with pytest.raises(ValueError, match="same width"):
        mean_average_precision(q, db, ql, one_hot)


def test_map_agrees_with_sklearn_without_ties():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    for _ in range(5):
        # Database code i differs from the query in exactly i bits: no ties.
        query = rng.integers(0, 2, (1, 64))
        flips = np.zeros((64, 64), int)
        for i in range(64):
            flips[i, rng.permutation(64)[:i]] = 1
        db = pack_codes(query ^ flips)[rng.permutation(64)]
        labels = rng.integers(0, 3, 64)
        distances = hamming_distances(pack_codes(query), db)[0]
        assert len(np.unique(distances)) == 64
        expected = metrics.average_precision_score(labels == 1, -distances)
        assert mean_average_precision(pack_codes(query), db, [1], labels) == pytest.approx(expected)


def test_map_at_k_and_precision_at_k_match_a_reference():
    """The FAISS-ranked MAP@k equals a plain loop over stable-sorted distances."""
    rng = np.random.default_rng(8)
    bits = 12  # short codes: many ties
    db, queries = random_codes(rng, 1500, bits), random_codes(rng, 60, bits)
    dl, ql = rng.integers(0, 5, 1500), rng.integers(0, 5, 60)
    full = hamming_distances(queries, db)
    for k in (1, 10, 200, 1500, None):
        aps, p_at_k = [], []
        for i in range(len(queries)):
            order = np.argsort(full[i], kind="stable")[: k or len(db)]
            rel = dl[order] == ql[i]
            hits = np.cumsum(rel)
            aps.append((hits / np.arange(1, len(rel) + 1))[rel].sum() / max(rel.sum(), 1))
            p_at_k.append(rel.mean())
        assert mean_average_precision(queries, db, ql, dl, top_k=k) == pytest.approx(np.mean(aps))
        if k:
            assert precision_at_k(queries, db, ql, dl, k=k) == pytest.approx(np.mean(p_at_k))
    assert precision_within_radius(queries, db, ql, dl, radius=2) == pytest.approx(
        np.mean([
            (dl[r] == ql[i]).mean() if (r := full[i] <= 2).any() else 0.0
            for i in range(len(queries))
        ])
    )
    precision, recall, _ = precision_recall_curve(queries, db, ql, dl, bits=bits)
    assert precision.shape == recall.shape == (bits + 1,)
    assert recall[-1] == pytest.approx(1.0) and np.all(np.diff(recall) >= 0)


# ----------------------------------------------------------------------------- protocol


def synthetic(per_class=600, classes=10):
    y = np.repeat(np.arange(classes), per_class)  # class-sorted, like the zip loader
    return np.arange(len(y)), y


def test_hashing_split_counts_and_disjointness():
    x, y = synthetic()
    split = hashing_split(x, y, queries_per_class=10, train_per_class=50, seed=3)
    assert np.bincount(y[split.query]).tolist() == [10] * 10
    assert np.bincount(y[split.train]).tolist() == [50] * 10
    assert len(split.database) == len(y) - 100 and len(split.unlabelled) == len(y) - 100 - 500
    everything = np.concatenate([split.query, split.database])
    np.testing.assert_array_equal(np.sort(everything), np.arange(len(y)))
    np.testing.assert_array_equal(np.sort(np.concatenate([split.train, split.unlabelled])),
                                  np.sort(split.database))
    assert not set(split.query) & set(split.database)
    assert not set(split.train) & set(split.unlabelled)
    # The database is shuffled: ties in Hamming ranking must not follow the class order.
    assert not np.all(np.diff(split.database) > 0)
    xq, yq = split.arrays("query")
    np.testing.assert_array_equal(yq, y[xq])
    with pytest.raises(ValueError, match="part"):
        split.arrays("test")


def test_hashing_split_is_seeded():
    x, y = synthetic()
    a, b = (hashing_split(x, y, 10, 50, seed=0) for _ in range(2))
    c = hashing_split(x, y, 10, 50, seed=1)
    for part in ("query", "train", "database", "unlabelled"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.query, c.query)
    with pytest.raises(ValueError, match="fewer than"):
        hashing_split(x, y, queries_per_class=100, train_per_class=550)


def test_cifar10_protocol(cifar_path):
    start = time.monotonic()
    split = cifar10_hashing_split(cifar_path)
    if time.monotonic() - start > 60:
        pytest.skip("decoding the zip took long (first run fills the cache)")
    assert split.x.shape == (60_000, 32, 32, 3)
    assert (len(split.query), len(split.train), len(split.database), len(split.unlabelled)) == (
        1000, 5000, 59_000, 54_000)
    assert np.bincount(split.y[split.query]).tolist() == [100] * 10
    assert np.bincount(split.y[split.train]).tolist() == [500] * 10
    assert split.seed == 0


# ----------------------------------------------------------------------------- baselines


def test_lsh_and_itq_codes():
    rng = np.random.default_rng(9)
    centres = rng.normal(0, 4, (5, 64))
    labels = rng.integers(0, 5, 600)
    features = centres[labels] + rng.normal(0, 1, (600, 64))
    # Few ITQ iterations: small SVDs crawl when BLAS threads fight for a busy CPU.
    for cls, kwargs in ((LSH, {}), (ITQ, {"iterations": 5})):
        for bits in (12, 48):
            hasher = cls(bits, seed=0, **kwargs).fit(features)
            codes = hasher.encode(features)
            assert codes.dtype == np.uint8 and codes.shape == (600, (bits + 7) // 8)
            np.testing.assert_array_equal(cls(bits, seed=0, **kwargs).fit_encode(features), codes)
            HammingIndex(bits).add(codes)  # padding bits are zero
        # Clustered data: both retrieve well.
        score = mean_average_precision(codes[:100], codes[100:], labels[:100], labels[100:])
        assert score > 0.6, (cls.__name__, score)
    assert not np.array_equal(LSH(48, seed=1).fit_encode(features), LSH(48, seed=0).fit_encode(features))
    with pytest.raises(ValueError, match="at least 48 features"):
        ITQ(48).fit(features[:, :16])
    with pytest.raises(ValueError, match="not fitted"):
        ITQ(12).encode(features)


def test_itq_rotation_lowers_quantization_loss():
    rng = np.random.default_rng(10)
    features = rng.normal(0, 1, (400, 32)) @ rng.normal(0, 1, (32, 32))

    def loss(hasher):
        projected = (features - hasher.mean) @ hasher.projection
        return np.sum((np.where(projected >= 0, 1.0, -1.0) - projected) ** 2)

    # Alternating minimisation: the loss ||B - VR||^2 never goes up.
    losses = [loss(ITQ(12, iterations=n).fit(features)) for n in (0, 1, 5, 20)]
    assert np.all(np.diff(losses) < 0), losses
