"""keras-tuner hypermodels: searches complete, resume, and refuse bad settings."""

import math

import numpy as np
import pytest

import zoo
from zoo.metrics import FeatureExtractor
from zoo.metrics.callbacks import FIDCallback
from zoo.metrics.classifier import domain_classifier
from zoo.tuning import GANHyperModel, VAEGANHyperModel, VAEHyperModel, make_tuner

SHAPE = (16, 16, 1)


@pytest.fixture(scope="module")
def extractor():
    # An untrained classifier: its features are enough to exercise the plumbing.
    return FeatureExtractor(domain_classifier(SHAPE, 10, width=4, feature_dim=8))


def real(n=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


def scaled(x):
    return x.astype("float32") / 127.5 - 1.0


def hypermodels(extractor):
    small = dict(latent_dims=(4,))
    return {
        "gan": GANHyperModel(SHAPE, width=4, d_steps=(1,), val_images=real(32, 1), extractor=extractor,
                             fid_samples=32, **small),
        "vaegan": VAEGANHyperModel(SHAPE, width=0.0625, val_images=real(32, 1), extractor=extractor,
                                   fid_samples=32, **small),
        "vae": VAEHyperModel(SHAPE, width=0.0625, **small),
    }


OBJECTIVES = {"gan": "val_fid", "vaegan": "val_fid", "vae": "val_loss"}


def _check_ranking(tuner, trials, name, direction):
    """The search optimises `name` in `direction`: each trial's score is the
    value its fit logged, and the best trial is strictly the better one (two
    trials with different hyperparameters score differently). `best <= second`
    alone holds for any objective, since get_best_trials sorts by it."""
    assert tuner.oracle.objective.name == name and tuner.oracle.objective.direction == direction
    for t in trials:
        assert t.score == pytest.approx(t.metrics.get_best_value(name))
    assert trials[0].hyperparameters.values != trials[1].hyperparameters.values
    better = trials[0].score < trials[1].score if direction == "min" else trials[0].score > trials[1].score
    assert better, [t.score for t in trials]


@pytest.mark.parametrize("name", ["gan", "vaegan", "vae"])
def test_two_trial_random_search_ranks_by_the_minimised_objective(name, extractor, tmp_path):
    hm = hypermodels(extractor)[name]
    tuner = make_tuner(hm, "random", max_trials=2, directory=tmp_path, project_name=name)
    x = scaled(real(32))
    kwargs = dict(epochs=1, batch_size=16, verbose=0)
    if name == "vae":
        kwargs["validation_data"] = (scaled(real(16, 2)),)
    tuner.search(x, **kwargs)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2
    assert all(t.score is not None and math.isfinite(t.score) for t in trials)
    _check_ranking(tuner, trials, OBJECTIVES[name], "min")


def test_interrupted_search_resumes_without_redoing_trials(extractor, tmp_path):
    hm = hypermodels(extractor)["gan"]
    fitted = []  # one fit per trial run (the tuner also builds once to learn the space)
    original_fit = hm.fit
    hm.fit = lambda hp, model, *a, **k: fitted.append(1) or original_fit(hp, model, *a, **k)
    x = scaled(real(32))
    make_tuner(hm, max_trials=1, directory=tmp_path, project_name="p").search(x, epochs=1, batch_size=16, verbose=0)
    assert len(fitted) == 1
    # A new process would build a new tuner on the same directory.
    resumed = make_tuner(hm, max_trials=2, directory=tmp_path, project_name="p")
    resumed.search(x, epochs=1, batch_size=16, verbose=0)
    assert len(fitted) == 2  # only the second trial ran
    assert len(resumed.oracle.trials) == 2


def test_fid_callback_puts_the_objective_in_the_logs(extractor):
    hm = hypermodels(extractor)["gan"]
    import keras_tuner as kt

    model = hm.build(kt.HyperParameters())
    hist = hm.fit(kt.HyperParameters(), model, scaled(real(32)), epochs=2, batch_size=16, verbose=0)
    assert len(hist.history["val_fid"]) == 2 and all(v >= 0 for v in hist.history["val_fid"])


def test_bad_search_space_and_objective_are_named(extractor):
    with pytest.raises(ValueError, match=r"learning_rates must satisfy 0 < min <= max"):
        GANHyperModel(SHAPE, learning_rates=(0.0, 1e-3))
    with pytest.raises(ValueError, match="d_steps values must be int >= 1"):
        GANHyperModel(SHAPE, d_steps=(0, 1))
    with pytest.raises(ValueError, match="generator_losses"):
        GANHyperModel(SHAPE, generator_losses=("hinge",))
    with pytest.raises(ValueError, match="Pass both val_images and extractor"):
        GANHyperModel(SHAPE, val_images=real(8))
    with pytest.raises(ValueError, match=r"Objective 'val_accuracy' is not in GANHyperModel's fit logs"):
        make_tuner(hypermodels(extractor)["gan"], objective="val_accuracy", directory="/tmp/unused")
    with pytest.raises(ValueError, match="tuner must be one of"):
        make_tuner(hypermodels(extractor)["vae"], tuner="grid")
    with pytest.raises(ValueError, match="at least 2 held-out"):
        FIDCallback(real(1), extractor)


def test_moved_names_still_import_from_their_old_modules():
    import zoo.metrics.callbacks as callbacks
    import zoo.tuning as tuning
    from zoo.models import blocks

    for name in ("FIDCallback", "MAPCallback", "NLLCallback"):
        assert getattr(tuning, name) is getattr(callbacks, name)
    # The FID classifier's network lives beside the FID code only: an alias in blocks
    # would tie models and metrics in an import circle.
    assert not hasattr(blocks, "domain_classifier") and callable(domain_classifier)


def dsh_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    return x, rng.integers(-1, 3, n)  # -1: unlabelled


def test_dshgan_search_maximises_validation_map(tmp_path):
    from zoo.tuning import DSHGANHyperModel

    xq, yq = dsh_data(8, 1)
    xdb, ydb = dsh_data(24, 2)
    hm = DSHGANHyperModel((16, 16, 3), 3, validation=(xq, np.abs(yq), xdb, np.abs(ydb)),
                          code_lengths=(12, 16), widths=(4, 4, 4), latent_dim=4)
    tuner = make_tuner(hm, "random", max_trials=2, directory=tmp_path, project_name="dsh")
    assert tuner.oracle.objective.direction == "max"
    x, y = dsh_data()
    tuner.search(scaled(x), y, epochs=1, batch_size=16, verbose=0)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2
    assert all(0.0 <= t.score <= 1.0 for t in trials)  # MAP is a mean of precisions
    _check_ranking(tuner, trials, "val_map", "max")
    with pytest.raises(ValueError, match="val_map objective needs validation"):
        make_tuner(DSHGANHyperModel((16, 16, 3), 3), objective="val_map", directory=tmp_path)
    with pytest.raises(ValueError, match="margins must satisfy"):
        DSHGANHyperModel((16, 16, 3), 3, margins=(0.5, 0.1))


def test_avb_search_minimises_validation_nll_by_ais(tmp_path):
    from zoo.tuning import AVBHyperModel

    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(64, 8)) < 0.3).astype("float32")  # binary vectors
    hm = AVBHyperModel((8,), val_data=x[:8], latent_dims=(2,), hidden=(16,),
                       nll_settings=dict(num_steps=10, num_chains=2, leapfrog_steps=2))
    tuner = make_tuner(hm, "random", max_trials=2, directory=tmp_path, project_name="avb")
    assert tuner.oracle.objective.direction == "min"
    tuner.search(x, epochs=1, batch_size=16, verbose=0)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2
    # A Bernoulli NLL of 8 binary pixels is positive and finite.
    assert all(0.0 < t.score < 1e3 for t in trials)
    _check_ranking(tuner, trials, "val_nll", "min")
    with pytest.raises(ValueError, match="val_nll objective needs val_data"):
        make_tuner(AVBHyperModel((8,)), objective="val_nll", directory=tmp_path)
    with pytest.raises(ValueError, match="t_steps values must be int >= 1"):
        AVBHyperModel((8,), t_steps=(0,))


def test_tune_recipe_writes_the_best_trial_as_a_preset(mnist_path, tmp_path):
    from recipes import tune

    out = tmp_path / "best"
    tune.main(["vae", "--data", str(mnist_path), "--max-trials", "1", "--epochs", "1", "--steps-per-epoch", "2",
               "--dir", str(tmp_path / "search"), "--write-preset", str(out)])
    model = zoo.load(str(out))
    assert isinstance(model, zoo.VAE)
    meta = model.preset_metadata
    assert meta["command"].startswith("python -m recipes.tune vae --data")
    assert meta["hyperparameters"] and meta["dataset"] == "mnist"
    assert math.isfinite(meta["figures"]["val_loss"]["value"])
