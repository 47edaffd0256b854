"""Domain FID / KID: the formulas on known cases, and the bundled classifiers on real data."""

import json

import numpy as np
import pytest

from zoo import data
from zoo.metrics import FeatureExtractor, fid_kid, frechet_distance, kernel_distance, statistics
from zoo.metrics.fid import SAVED_MODELS


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
