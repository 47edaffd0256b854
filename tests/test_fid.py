"""Domain FID / KID: the formulas on known cases, and the bundled classifiers on real data."""

import json

import keras
import numpy as np
import pytest

from zoo import data
from zoo.metrics import FeatureExtractor, fid_kid, frechet_distance, kernel_distance, statistics
from zoo.presets import SAVED_MODELS


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    cov = a @ a.T + np.eye(6)
    mu = rng.standard_normal(6)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    # Diagonal covariances: FID = |dmu|^2 + sum (s_a - s_b)^2 over standard deviations.
    s_a, s_b = np.array([1.0, 2.0, 0.5]), np.array([2.0, 2.0, 1.5])
    d_mu = np.array([1.0, -1.0, 0.0])
    want = (d_mu**2).sum() + ((s_a - s_b) ** 2).sum()
    got = frechet_distance(d_mu, np.diag(s_a**2), np.zeros(3), np.diag(s_b**2))
    assert got == pytest.approx(want, rel=1e-9)


def test_kernel_distance_is_unbiased_near_zero_for_one_distribution():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8))
    same, same_std = kernel_distance(a, b, subsets=20, subset_size=500)
    shifted, _ = kernel_distance(a, b + 0.5, subsets=20, subset_size=500)
    assert abs(same) < 3 * same_std + 1e-3  # unbiased: zero within its noise
    assert shifted > 20 * max(abs(same), same_std)


@pytest.mark.parametrize("dataset, fixture", [("mnist", "mnist_path"), ("cifar10", "cifar_path")])
def test_bundled_classifier_fid_of_real_halves_is_small_and_of_noise_is_large(dataset, fixture, request):
    folder = SAVED_MODELS / f"classifier_{dataset}"
    if not (folder / "config.json").exists():
        pytest.fail(f"{folder} is missing: train it with recipes.train_classifier")
    path = request.getfixturevalue(fixture)
    meta = json.loads((folder / "metadata.json").read_text())
    extractor = FeatureExtractor.load(dataset)
    x, _, _ = data.load_arrays(path, "test")
    x = x[np.random.default_rng(0).permutation(len(x))[:4000]]
    halves = fid_kid(x[:2000], x[2000:], extractor, kid_subsets=10, kid_subset_size=1000)
    noise = np.random.default_rng(1).integers(0, 256, x[:2000].shape, dtype=np.uint8)
    vs_noise = fid_kid(x[:2000], noise, extractor, kid_subsets=10, kid_subset_size=1000)
    # Two halves of the real test set differ only by sampling: their FID is the
    # finite-sample bias (about trace terms / n), a tiny share of real-vs-noise.
    assert halves["fid"] < 0.02 * vs_noise["fid"], (halves, vs_noise)
    assert abs(halves["kid"]) < 0.01 * vs_noise["kid"]
    assert vs_noise["fid"] > 50 * max(halves["fid"], 1e-3)
    # The shipped classifier is a usable one (its accuracy is in its metadata).
    assert meta["test_accuracy"] > (0.98 if dataset == "mnist" else 0.7)
    assert halves["features"] == f"classifier_{dataset}:{meta['feature_dim']}-d"


def test_statistics_shapes():
    mu, cov = statistics(np.random.default_rng(0).standard_normal((50, 3)))
    assert mu.shape == (3,) and cov.shape == (3, 3)


def test_missing_classifier_lists_the_bundled_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled"):
        FeatureExtractor.load("imagenet")


# -- Inception-v3 FID from a user's weights file (here a random InceptionV3: the code path,
# -- the resize and the statistics, not the published numbers, which need the real weights) --
@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    net = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
    path = tmp_path_factory.mktemp("inception") / "random_inception.weights.h5"
    net.save_weights(path)
    return path, net


def _bilinear_half_pixel(x, size):
    """NumPy reference of TF2's tf.image.resize(bilinear, antialias=False): half-pixel centres."""
    n, h, w, c = x.shape
    out = np.empty((n, size, size, c), np.float64)
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    for i in range(n):
        a = x[i].astype(np.float64)
        top = a[y0][:, x0] * (1 - wx) + a[y0][:, x1] * wx
        bottom = a[y1][:, x0] * (1 - wx) + a[y1][:, x1] * wx
        out[i] = top * (1 - wy) + bottom * wy
    return out


def test_inception_preprocess_is_the_reference_resize():
    from zoo.metrics import InceptionExtractor

    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    got = InceptionExtractor.preprocess(x)
    want = _bilinear_half_pixel(np.repeat(x, 3, -1), 299) / 127.5 - 1.0
    assert got.shape == (2, 299, 299, 3)
    # float32 interpolation of values in [0, 255]: 1e-4 of the [-1, 1] range on every backend.
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Negative control: an antialiased (or nearest) resize is visibly different.
    nearest = np.repeat(np.repeat(np.repeat(x, 3, -1), 11, 1), 11, 2)[:, :299, :299] / 127.5 - 1.0
    assert np.abs(got - nearest).max() > 0.1
    np.testing.assert_allclose(InceptionExtractor.preprocess(x / 255.0), got, atol=1e-4)  # [0, 1] floats too


def test_inception_fid_from_a_weights_file(inception_file, monkeypatch):
    from recipes.evaluate import inception_figures
    from zoo.metrics import InceptionExtractor, frechet_distance, statistics

    path, net = inception_file
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    b = rng.integers(0, 64, (4, 32, 32, 3), dtype=np.uint8)
    extractor = InceptionExtractor(path, batch_size=3)  # two batches, the second partial
    fa, fb = extractor(a), extractor(b)
    assert fa.shape == (4, 2048) and fa.dtype == np.float64 and not np.allclose(fa, fb)
    # The file's weights, not fresh ones: features equal those of the network that was saved.
    want = keras.ops.convert_to_numpy(net(InceptionExtractor.preprocess(a), training=False))
    np.testing.assert_allclose(fa, want, rtol=1e-4, atol=1e-5)
    # A random network's features are ~1e-4, so its FIDs are tiny: check the path, not a size.
    trace = np.trace(statistics(fa)[1])
    # Zero up to float64 rounding: the square roots of a rank-3 covariance's ~2,045 zero
    # eigenvalues (rounded to ~1e-19) add ~1e-12 against a trace of ~1e-6 (seen: 1.4e-12
    # to 2.4e-12 on the three backends); 1e-4 of the trace leaves room.
    assert abs(frechet_distance(*statistics(fa), *statistics(fa))) < 1e-4 * trace
    assert inception_figures(a, b, "cifar10", log=lambda *_: None) == {}  # no weights: no figure
    monkeypatch.setenv("ZOO_INCEPTION_WEIGHTS", str(path))
    figure = inception_figures(a, b, "cifar10", log=lambda *_: None)["inception_fid"]
    # Figures are rounded to 4 decimals (recipes.evaluate._figure).
    assert figure["value"] == round(frechet_distance(*statistics(fa), *statistics(fb)), 4)
    assert "299x299 bilinear" in figure["how"] and path.name in figure["how"]


def test_inception_weights_errors_name_the_file(tmp_path, monkeypatch):
    from zoo.metrics import InceptionExtractor

    monkeypatch.delenv("ZOO_INCEPTION_WEIGHTS", raising=False)
    assert InceptionExtractor.from_env() is None
    with pytest.raises(ValueError, match="ZOO_INCEPTION_WEIGHTS"):
        InceptionExtractor()
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        InceptionExtractor(tmp_path / "nowhere.weights.h5")
    pth = tmp_path / "pt_inception-2015-12-05.pth"
    pth.write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="PyTorch file"):
        InceptionExtractor(pth)
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="junk.weights.h5 does not hold Keras InceptionV3"):
        InceptionExtractor(junk)
