"""The data layer and the metrics, checked against hand-made and naive cases."""

import io
import math
import zipfile

import numpy as np
import pytest
from scipy.special import logsumexp

from zoo import data
from zoo.data import toy
from zoo.metrics import parzen_estimate, parzen_log_likelihoods, select_sigma


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------
def write_npz(path, n=20):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n, 6, 6), dtype=np.uint8), y_train=np.arange(n) % 4,
        x_test=rng.integers(0, 256, (4, 6, 6), dtype=np.uint8), y_test=np.arange(4),
    )
    return path


def write_image_zip(path, classes=("cat", "ant"), per_class=3, top=""):
    from PIL import Image

    with zipfile.ZipFile(path, "w") as z:
        for ci, c in enumerate(classes):
            for i in range(per_class):
                buf = io.BytesIO()
                Image.fromarray(np.full((5, 5, 3), 40 * ci + i, np.uint8)).save(buf, format="PNG")
                z.writestr(f"{top}train/{c}/{i:04d}.png", buf.getvalue())
    return path


def test_npz_in_keras_datasets_layout(tmp_path):
    x, y, classes = data.load_arrays(write_npz(tmp_path / "d.npz"), "train")
    assert x.shape == (20, 6, 6, 1) and x.dtype == np.uint8
    assert y.tolist()[:5] == [0, 1, 2, 3, 0] and classes == ["0", "1", "2", "3"]
    assert data.load_arrays(tmp_path / "d.npz", "test")[0].shape == (4, 6, 6, 1)


def test_npz_with_other_keys_is_named(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"lacks \['x_train', 'y_train'\].*images"):
        data.load_arrays(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        data.load_arrays(tmp_path / "junk.npz")


@pytest.mark.parametrize("top", ["", "cifar/"])
def test_image_zip_and_folder_with_alphabetical_labels(tmp_path, monkeypatch, top):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    path = write_image_zip(tmp_path / "imgs.zip", top=top)
    x, y, classes = data.load_arrays(path, "train")
    assert classes == ["ant", "cat"]  # alphabetical, whatever the zip order
    assert x.shape == (6, 5, 5, 3) and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert x[3, 0, 0, 0] == 0 and x[0, 0, 0, 0] == 40  # "cat" images were written first
    # Second call comes from the cache, same arrays.
    assert any((tmp_path / "cache").iterdir())
    x2, y2, _ = data.load_arrays(path, "train")
    np.testing.assert_array_equal(x, x2)
    # The same layout unpacked into a folder.
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "folder")
    xf, yf, cf = data.load_arrays(tmp_path / "folder" / top if top else tmp_path / "folder", "train")
    np.testing.assert_array_equal(xf, x)
    with pytest.raises(ValueError, match="no images under 'test/<class>/'"):
        data.load_arrays(path, "test")


def test_pipeline_scales_batches_and_is_seeded(tmp_path):
    x, y, _ = data.load_arrays(write_npz(tmp_path / "d.npz"))
    ds = data.make_dataset(x, y, batch_size=8, data_range=(-1, 1), seed=5)
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == 2  # 20 examples, remainder dropped
    xb, yb = batches[0]
    assert xb.shape == (8, 6, 6, 1) and xb.dtype == np.float32
    assert xb.min() >= -1 and xb.max() <= 1
    # The first batch of a seeded pipeline is the same each time it is built.
    again = next(data.make_dataset(x, y, batch_size=8, data_range=(-1, 1), seed=5).as_numpy_iterator())
    np.testing.assert_array_equal(again[1], yb)
    unit = next(data.make_dataset(x, batch_size=4, data_range=(0, 1), shuffle=False).as_numpy_iterator())
    np.testing.assert_allclose(unit, x[:4] / 255.0, atol=1e-6)


def test_value_range_is_a_deprecated_name_of_data_range(tmp_path):
    x, _, _ = data.load_arrays(write_npz(tmp_path / "d.npz"))
    with pytest.warns(DeprecationWarning, match="value_range is deprecated; pass data_range"):
        old = next(data.make_dataset(x, batch_size=4, value_range=(0, 1), shuffle=False).as_numpy_iterator())
    np.testing.assert_array_equal(old, next(data.make_dataset(x, batch_size=4, data_range=(0, 1),
                                                              shuffle=False).as_numpy_iterator()))
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(data.scale(x, value_range=(0, 1)), data.scale(x, (0, 1)))
    with pytest.raises(TypeError, match="not both"):
        data.scale(x, data_range=(0, 1), value_range=(-1, 1))


def test_ranges_is_numpy_only_and_is_the_models_conversion():
    import importlib.util
    import subprocess
    import sys

    # Loaded by itself with TensorFlow and Keras blocked: NumPy is all it needs.
    code = ("import sys, importlib.util; sys.modules['tensorflow'] = sys.modules['keras'] = None; "
            f"spec = importlib.util.spec_from_file_location('ranges', {data.ranges.__file__!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "print(m.to_range(m.to_pixels([[1.0, 0.0]]), (-1, 1)).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[[1.0, -1.0]]"
    assert importlib.util.find_spec("zoo.data.ranges") is not None

    from zoo.models.common import images_to_model, model_to_unit

    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (5, 4, 4, 1), dtype=np.uint8)
    for r in ((-1.0, 1.0), (0.0, 1.0), (0.0, 255.0)):
        x = data.ranges.to_range(u8, r)
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, images_to_model(u8, (4, 4, 1), r))
        np.testing.assert_array_equal(data.scale(u8, r), x)  # the pipelines' scaling too
        np.testing.assert_array_equal(model_to_unit(x, r), data.ranges.to_unit(x, r))
        np.testing.assert_allclose(data.ranges.to_unit(x, r), u8 / 255.0, atol=1e-6)
        np.testing.assert_array_equal(data.ranges.to_pixels(data.ranges.to_unit(x, r)), u8)
    np.testing.assert_array_equal(data.ranges.to_unit([-3.0, 3.0], (-1, 1)), [0.0, 1.0])  # clipped
    with pytest.raises(ValueError, match=r"Float images must be in \[0, 1\]"):
        images_to_model(np.full((1, 4, 4, 1), 2.0), (4, 4, 1), (-1, 1))
    with pytest.raises(ValueError, match="Images must be uint8 or float in"):
        images_to_model(np.ones((1, 4, 4, 1), np.int32), (4, 4, 1), (-1, 1))


def test_split_per_class_counts_and_seed():
    y = np.repeat(np.arange(5), 30)
    chosen, rest = data.split_per_class(y, 7, seed=1)
    assert np.bincount(y[chosen]).tolist() == [7] * 5
    assert len(np.intersect1d(chosen, rest)) == 0 and len(chosen) + len(rest) == len(y)
    np.testing.assert_array_equal(chosen, data.split_per_class(y, 7, seed=1)[0])
    assert not np.array_equal(chosen, data.split_per_class(y, 7, seed=2)[0])
    with pytest.raises(ValueError, match="fewer than 31"):
        data.split_per_class(y, 31)


def test_validation_split_never_touches_the_protocols_queries():
    from zoo.data import hashing_split, validation_split

    y = np.repeat(np.arange(10), 200)
    split = hashing_split(None, y, queries_per_class=10, train_per_class=60, seed=0)
    val = validation_split(split, per_class=6, seed=0)
    assert len(val.query) == 60 and len(val.train) == 540
    assert np.all(np.bincount(y[val.query]) == 6) and np.all(np.bincount(y[val.train]) == 54)
    np.testing.assert_array_equal(np.sort(np.concatenate([val.query, val.train])), split.train)
    for part in (val.query, val.train, val.database, val.unlabelled):
        assert not np.isin(part, split.query).any()  # the test queries are in no part
    assert not np.isin(val.database, val.query).any()
    np.testing.assert_array_equal(val.database, split.database[~np.isin(split.database, val.query)])  # same order
    np.testing.assert_array_equal(validation_split(split, 6, seed=0).query, val.query)  # seeded
    assert not np.array_equal(validation_split(split, 6, seed=1).query, val.query)  # control: seed matters


def test_real_mnist_and_cifar_load(mnist_path, cifar_path):
    x, y, _ = data.load_arrays(mnist_path, "train")
    assert x.shape == (60000, 28, 28, 1) and np.bincount(y).sum() == 60000
    xt, yt, classes = data.load_arrays(cifar_path, "test")
    assert xt.shape == (10000, 32, 32, 3) and classes[0] == "airplane" and np.bincount(yt).tolist() == [1000] * 10


# ---------------------------------------------------------------------------
# Parzen window
# ---------------------------------------------------------------------------
def test_parzen_matches_the_naive_formula():
    rng = np.random.default_rng(0)
    s, x = rng.uniform(0, 1, (300, 7)), rng.uniform(0, 1, (50, 7))
    sigmas = [0.1, 0.3]
    got = parzen_log_likelihoods(x, s, sigmas, batch_size=16)
    for k, sigma in enumerate(sigmas):
        d2 = ((x[:, None, :] - s[None, :, :]) ** 2).sum(-1)
        want = logsumexp(-d2 / (2 * sigma**2), axis=1) - math.log(300) - 3.5 * math.log(2 * math.pi * sigma**2)
        np.testing.assert_allclose(got[k], want, rtol=1e-9, atol=1e-9)


def test_parzen_recovers_a_known_density():
    # Samples from N(0, I) in 2-D; the Parzen window (sigma small vs n) should
    # approach the true log-density -log(2 pi) - |x|^2 / 2 near the centre.
    rng = np.random.default_rng(1)
    s = rng.standard_normal((20000, 2))
    x = rng.standard_normal((2000, 2)) * 0.5
    sigma = select_sigma(s, x[:500], sigmas=np.logspace(-1.5, 0, 12))
    est = parzen_estimate(s, x[500:], x[:500], sigmas=[sigma])
    truth = float(np.mean(-math.log(2 * math.pi) - 0.5 * (x[500:] ** 2).sum(1)))
    # Kernel smoothing biases the estimate by ~sigma^2 terms; 0.1 nats covers it.
    assert est["mean"] == pytest.approx(truth, abs=0.1)
    assert 0 < est["std_error"] < 0.05


# ---------------------------------------------------------------------------
# Toy mixtures
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, n_modes", [("ring", 8), ("grid", 25)])
def test_mode_coverage_of_true_samples_and_of_a_collapsed_generator(name, n_modes):
    x, modes, std = toy.mixture(name, 5000, seed=0)
    covered, quality = toy.mode_coverage(x, modes, std)
    assert covered == n_modes and quality > 0.98  # 3 std holds 98.9% of a 2-D Gaussian
    collapsed = np.repeat(modes[:2], 2500, axis=0)
    assert toy.mode_coverage(collapsed, modes, std)[0] == 2


def test_semi_supervised_dataset_mixes_labelled_and_unlabelled():
    from zoo.data.pipeline import semi_supervised_dataset

    labelled = np.zeros((50, 8, 8, 3), "uint8")  # black images: labelled
    unlabelled = np.full((500, 8, 8, 3), 255, "uint8")  # white: unlabelled
    ds = semi_supervised_dataset(labelled, np.arange(50) % 10, unlabelled, batch_size=100,
                                 labelled_fraction=0.3, seed=0)
    shares = []
    for x, y in ds.take(20).as_numpy_iterator():
        assert x.shape == (100, 8, 8, 3) and x.min() >= -1 and x.max() <= 1
        # Every unlabelled image carries -1, every labelled one its class.
        np.testing.assert_array_equal(y >= 0, x[:, 0, 0, 0] < 0)
        shares.append(np.mean(y >= 0))
    # 2,000 Bernoulli(0.3) draws: sd of the mean is 0.01, so 0.05 is 5 sd.
    assert abs(np.mean(shares) - 0.3) < 0.05
    vectors = semi_supervised_dataset(labelled, np.eye(10)[np.arange(50) % 10], unlabelled,
                                      batch_size=10, labelled_fraction=0.5)
    _, yv = next(vectors.as_numpy_iterator())
    assert yv.shape == (10, 10) and set(yv.sum(1)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="labelled_fraction"):
        semi_supervised_dataset(labelled, np.arange(50) % 10, unlabelled, labelled_fraction=0)


def test_semi_supervised_numpy_stream_for_machines_without_tensorflow():
    """The NumPy stream (what a JAX or torch machine without TensorFlow gets) keeps
    the tf.data pipeline's law: labelled share, label convention, every image once a pass."""
    from zoo.data.pipeline import semi_supervised_dataset

    labelled = np.repeat(np.arange(50, dtype="uint8"), 3 * 4).reshape(50, 2, 2, 3)  # image i is all i
    unlabelled = np.full((500, 2, 2, 3), 255, "uint8")
    stream = semi_supervised_dataset(labelled, np.arange(50) % 10, unlabelled, batch_size=100,
                                     labelled_fraction=0.3, seed=0, stream="numpy")
    seen, shares = [], []
    for _ in range(20):
        x, y = next(stream)
        assert x.shape == (100, 2, 2, 3) and x.dtype == np.float32 and -1 <= x.min() <= x.max() <= 1
        np.testing.assert_array_equal(y >= 0, x[:, 0, 0, 0] < 1)
        shares.append(np.mean(y >= 0))
        ids = np.rint((x[y >= 0, 0, 0, 0] + 1) * 127.5).astype(int)
        np.testing.assert_array_equal(y[y >= 0], ids % 10)  # each image keeps its own label
        seen.extend(ids)
    assert abs(np.mean(shares) - 0.3) < 0.05  # as above: 5 sd of 2,000 Bernoulli(0.3) draws
    # Passes are permutations: after ~12 passes no image is drawn twice more than another.
    counts = np.bincount(seen, minlength=50)
    assert counts.max() - counts.min() <= 1, counts
    again = semi_supervised_dataset(labelled, np.arange(50) % 10, unlabelled, batch_size=100,
                                    labelled_fraction=0.3, seed=0, stream="numpy")
    np.testing.assert_array_equal(next(again)[1], next(semi_supervised_dataset(
        labelled, np.arange(50) % 10, unlabelled, batch_size=100, labelled_fraction=0.3, seed=0,
        stream="numpy"))[1])
    with pytest.raises(ValueError, match="stream"):
        semi_supervised_dataset(labelled, np.arange(50) % 10, unlabelled, stream="torch")
