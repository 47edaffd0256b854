"""Presets: save / load round trips, cross-backend loading, bad input, and every bundled preset."""

import json
import math
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import zoo
from zoo import presets
from zoo.presets import PresetClassError, PresetIntegrityError, PresetNotFoundError

from tests.conftest import DATA_DIR, ROOT

SHAPE = (8, 8, 1)
LATENT = 4


# -- tiny models, built here -----------------------------------------------------------------
def tiny_generator(num_classes=None):
    z = keras.Input((LATENT,))
    inputs = [z] if num_classes is None else [z, keras.Input((num_classes,))]
    h = inputs[0] if num_classes is None else keras.layers.Concatenate()(inputs)
    h = keras.layers.Dense(16, activation="relu")(h)
    h = keras.layers.BatchNormalization()(h)
    x = keras.layers.Reshape(SHAPE)(keras.layers.Dense(math.prod(SHAPE), activation="tanh")(h))
    return keras.Model(inputs if num_classes else z, x, name="generator")


def tiny_discriminator(num_classes=None):
    x = keras.Input(SHAPE)
    inputs = [x] if num_classes is None else [x, keras.Input((num_classes,))]
    h = keras.layers.Flatten()(x)
    if num_classes:
        h = keras.layers.Concatenate()([h, inputs[1]])
    out = keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(h))
    return keras.Model(inputs if num_classes else x, out, name="discriminator")


def tiny_gan(num_classes=None, seed=0):
    keras.utils.set_random_seed(seed)
    return zoo.GAN(tiny_generator(num_classes), tiny_discriminator(num_classes), seed=seed)


def tiny_vae(seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input(SHAPE)
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(x))
    encoder = keras.Model(x, [keras.layers.Dense(LATENT)(h), keras.layers.Dense(LATENT)(h)], name="encoder")
    z = keras.Input((LATENT,))
    out = keras.layers.Reshape(SHAPE)(keras.layers.Dense(math.prod(SHAPE), activation="tanh")(z))
    return zoo.VAE(encoder, keras.Model(z, out, name="decoder"), seed=seed)


@pytest.fixture
def gan_preset(tmp_path):
    gan = tiny_gan()
    path = presets.save_preset(gan, tmp_path / "tiny_gan", {"description": "a tiny GAN", "dataset": "none"})
    return gan, path


# -- round trips -------------------------------------------------------------------------------
def test_save_then_from_preset_gives_the_same_model(gan_preset):
    gan, path = gan_preset
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "metadata.json", "model.weights.h5"]
    loaded = zoo.GAN.from_preset(path)
    assert type(loaded) is zoo.GAN and not loaded.compiled
    np.testing.assert_allclose(loaded.generate(5, seed=3), gan.generate(5, seed=3), atol=1e-6)
    assert zoo.load(str(path)).latent_dim == LATENT
    meta = loaded.preset_metadata
    assert meta["description"] == "a tiny GAN" and meta["model"] == "zoo>GAN"
    assert meta["backend"] == keras.backend.backend() and meta["keras_version"] == keras.__version__
    assert meta["sha256"] == presets.sha256(path / "model.weights.h5")
    assert "created" in meta and meta["weights_bytes"] == (path / "model.weights.h5").stat().st_size
    # The config is the model's serialized config, without compile state.
    config = json.loads((path / "config.json").read_text())
    assert config["registered_name"] == "zoo>GAN" and "compile_config" not in config


def test_compiled_model_saves_weights_without_optimizer_slots(tmp_path):
    vae = tiny_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(np.random.default_rng(0).uniform(-1, 1, (16, *SHAPE)).astype("float32"), batch_size=8, verbose=0)
    path = presets.save_preset(vae, tmp_path / "vae")
    import h5py

    with h5py.File(path / "model.weights.h5") as f:
        assert "optimizer" not in f
    loaded = zoo.VAE.from_preset(path, compile=True)
    assert loaded.compiled
    images = np.random.default_rng(1).uniform(0, 1, (3, *SHAPE)).astype("float32")
    np.testing.assert_allclose(loaded.reconstruct(images), vae.reconstruct(images), atol=1e-6)


def test_conditional_gan_round_trip(tmp_path):
    gan = tiny_gan(num_classes=3)
    path = presets.save_preset(gan, tmp_path / "cgan")
    loaded = zoo.load(path)
    assert loaded.num_classes == 3
    np.testing.assert_allclose(loaded.generate(4, seed=0, labels=[0, 1, 2, 0]),
                               gan.generate(4, seed=0, labels=[0, 1, 2, 0]), atol=1e-6)


NEXT_BACKEND = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}


def test_preset_saved_on_another_backend_loads_here(tmp_path):
    other = NEXT_BACKEND[keras.backend.backend()]
    script = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_presets import tiny_gan, tiny_vae
        from zoo import presets
        gan, vae = tiny_gan(seed=5), tiny_vae(seed=6)
        presets.save_preset(gan, {str(tmp_path / 'gan')!r})
        presets.save_preset(vae, {str(tmp_path / 'vae')!r})
        images = np.random.default_rng(0).uniform(0, 1, (3, 8, 8, 1)).astype("float32")
        np.savez({str(tmp_path / 'out.npz')!r}, gen=gan.generate(4, seed=1), rec=vae.reconstruct(images),
                 images=images)
    """)
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    want = np.load(tmp_path / "out.npz")
    gan = zoo.GAN.from_preset(tmp_path / "gan")
    vae = zoo.VAE.from_preset(tmp_path / "vae")
    assert gan.preset_metadata["backend"] == other
    np.testing.assert_allclose(gan.generate(4, seed=1), want["gen"], atol=1e-5)
    np.testing.assert_allclose(vae.reconstruct(want["images"]), want["rec"], atol=1e-5)


def test_list_presets_reads_descriptions_and_skips_temporary_folders(tmp_path, gan_preset):
    _, path = gan_preset
    (tmp_path / ".tiny_gan.tmp-123").mkdir()  # what a killed save leaves behind
    (tmp_path / "not_a_preset").mkdir()
    assert presets.list_presets(tmp_path) == {"tiny_gan": "a tiny GAN"}
    bundled = zoo.list_presets()
    assert {"classifier_mnist", "classifier_cifar10"} <= set(bundled)
    assert all(isinstance(d, str) and d for d in bundled.values())


# -- bad input ---------------------------------------------------------------------------------
def test_unknown_name_lists_the_bundled_presets():
    with pytest.raises(PresetNotFoundError, match="classifier_mnist") as info:
        zoo.load("no_such_preset")
    assert "Bundled presets" in str(info.value)
    with pytest.raises(PresetNotFoundError, match="classifier_mnist"):
        zoo.GAN.from_preset("dcgan_nowhere")


def test_config_for_another_model_is_refused(gan_preset):
    _, path = gan_preset
    with pytest.raises(PresetClassError, match=r"holds a zoo>GAN model, not a VAE"):
        zoo.VAE.from_preset(path)
    with pytest.raises(PresetClassError, match="Functional"):
        zoo.GAN.from_preset("classifier_mnist")


def test_missing_file_is_named(gan_preset):
    _, path = gan_preset
    (path / "metadata.json").unlink()
    with pytest.raises(PresetNotFoundError, match="metadata.json missing"):
        zoo.GAN.from_preset(path)
    (path / "config.json").unlink()
    with pytest.raises(PresetNotFoundError, match="not a preset folder"):
        zoo.load(path)


def test_truncated_weights_are_reported_as_corrupt(gan_preset):
    _, path = gan_preset
    weights = path / "model.weights.h5"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(PresetIntegrityError, match="corrupt or truncated"):
        zoo.GAN.from_preset(path)
    weights.write_bytes(b"\0" * len(data))  # same size, not HDF5
    with pytest.raises(PresetIntegrityError, match="corrupt or truncated"):
        zoo.GAN.from_preset(path)


def test_checksum_mismatch_is_reported(gan_preset, tmp_path):
    _, path = gan_preset
    # Valid weights of the same architecture, but not the ones the metadata recorded.
    other = presets.save_preset(tiny_gan(seed=9), tmp_path / "other")
    (path / "model.weights.h5").write_bytes((other / "model.weights.h5").read_bytes())
    with pytest.raises(PresetIntegrityError, match="Checksum mismatch"):
        zoo.GAN.from_preset(path)


def test_corrupt_config_and_missing_checksum(gan_preset):
    _, path = gan_preset
    meta = json.loads((path / "metadata.json").read_text())
    del meta["sha256"]
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(PresetIntegrityError, match="no sha256"):
        zoo.load(path)
    presets.update_metadata(path, sha256=presets.sha256(path / "model.weights.h5"))
    assert zoo.load(path) is not None
    (path / "config.json").write_text('{"class_name": "GAN", ')
    with pytest.raises(PresetIntegrityError, match="not valid JSON"):
        zoo.load(path)


def test_loading_never_deserialises_code(tmp_path):
    keras.utils.set_random_seed(0)
    z = keras.Input((LATENT,))
    h = keras.layers.Lambda(lambda t: t * 2.0)(z)
    x = keras.layers.Reshape(SHAPE)(keras.layers.Dense(math.prod(SHAPE), activation="tanh")(h))
    gan = zoo.GAN(keras.Model(z, x, name="generator"), tiny_discriminator())
    path = presets.save_preset(gan, tmp_path / "lambda_gan")
    with pytest.raises(PresetIntegrityError, match="safe_mode"):
        zoo.GAN.from_preset(path)


def test_failed_save_leaves_the_previous_preset_intact(gan_preset, monkeypatch):
    gan, path = gan_preset
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def fail_midway(model, target):
        target.write_bytes(b"half a weights file")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(presets, "_save_weights", fail_midway)
    with pytest.raises(OSError, match="simulated"):
        presets.save_preset(tiny_gan(seed=7), path, {"description": "v2"})
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp left
    np.testing.assert_allclose(zoo.GAN.from_preset(path).generate(3, seed=0), gan.generate(3, seed=0), atol=1e-6)


def test_save_over_an_existing_preset_replaces_it(gan_preset):
    _, path = gan_preset
    new = tiny_gan(seed=11)
    presets.save_preset(new, path, {"description": "v2"})
    loaded = zoo.GAN.from_preset(path)
    assert loaded.preset_metadata["description"] == "v2"
    np.testing.assert_allclose(loaded.generate(3, seed=0), new.generate(3, seed=0), atol=1e-6)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_hf_address_needs_huggingface_hub():
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install huggingface_hub"):
            zoo.load("hf://someone/some-preset")
    else:
        pytest.skip("huggingface_hub is installed; the tests never download")


# -- every bundled preset -------------------------------------------------------------------------
def check_outputs(model):
    """Each model's documented outputs: shapes, dtypes and ranges."""
    n = 6
    if isinstance(model, zoo.DSHGAN):
        images = np.random.default_rng(0).integers(0, 256, (n, *model.data_shape), dtype=np.uint8)
        codes = model.hash(images)
        assert codes.shape == (n, math.ceil(model.code_length / 8)) and codes.dtype == np.uint8
        x = model.generate(n, seed=0, labels=np.arange(n) % model.num_classes)
    elif isinstance(model, zoo.GAN):
        labels = None if model.num_classes is None else np.arange(n) % model.num_classes
        x = model.generate(n, seed=0, labels=labels)
    elif isinstance(model, (zoo.VAE, zoo.VAEGAN, zoo.AVB)):
        x = model.generate(n, seed=0)
        rec = model.reconstruct(x)
        assert rec.shape == x.shape and rec.min() >= 0 and rec.max() <= 1
        z = model.encode(x)  # the posterior mean, one code per image for every autoencoder
        assert z.shape == (n, model.latent_dim) and np.all(np.isfinite(z))
    else:  # a domain classifier: images in [-1, 1] -> 10 logits
        shape = tuple(model.inputs[0].shape[1:])
        x = np.random.default_rng(0).uniform(-1, 1, (n, *shape)).astype("float32")
        logits = keras.ops.convert_to_numpy(model(x))
        assert logits.shape == (n, 10) and np.all(np.isfinite(logits))
        return
    assert x.shape == (n, *model.data_shape) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and np.all(np.isfinite(x))


@pytest.mark.parametrize("name", sorted(presets.list_presets()))
def test_bundled_preset_loads_and_produces_documented_outputs(name):
    model = zoo.load(name)
    meta = model.preset_metadata
    for key in ("description", "dataset", "command", "backend", "keras_version", "sha256"):
        assert meta.get(key), f"{name}: metadata lacks {key}"
    assert meta.get("figures"), f"{name}: metadata records no measured figures"
    for figure, value in meta["figures"].items():
        assert "value" in value and value.get("how"), f"{name}: figure {figure} says not how it was measured"
    check_outputs(model)


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_bundled_metadata_records_the_data_by_name_and_checksum_not_by_path():
    folders = sorted((ROOT / "saved_models").glob("*/metadata.json"))
    assert folders
    for path in folders:
        meta = json.loads(path.read_text())
        data = meta.get("data")
        assert isinstance(data, dict) and "/" not in data.get("name", "/"), f"{path}: data {data!r}"
        assert re.fullmatch(r"[0-9a-f]{64}", data.get("sha256", "")), f"{path}: data {data!r}"
        # No absolute path of the machine it was trained on, anywhere.
        for text in _strings(meta):
            assert not re.search(r"(^|[\s='\"])(/|[A-Za-z]:\\)(work|home|root|tmp|Users|mnt)\b", text), \
                f"{path}: {text!r}"


@pytest.mark.parametrize("name", [n for n in sorted(presets.list_presets()) if n.startswith("classifier_")])
def test_bundled_classifier_accuracy_on_a_test_subset_agrees_with_metadata(name):
    from zoo import data

    meta = presets.load_metadata(name)
    path = DATA_DIR / {"mnist": "mnist.npz", "cifar10": "cifar10.zip"}[meta["dataset"]]
    if not path.exists():
        pytest.skip(f"{path} not found")
    x, y, _ = data.load_arrays(path, "test")
    idx = np.random.default_rng(0).permutation(len(x))[:1000]
    model = zoo.load(name)
    logits = keras.ops.convert_to_numpy(model(data.scale(x[idx], (-1.0, 1.0))))
    accuracy = float((logits.argmax(1) == y[idx]).mean())
    # 1,000 images: a binomial standard error of at most 1.6 points; allow 4.
    assert abs(accuracy - meta["figures"]["test_accuracy"]["value"]) < 0.04, accuracy


def _parzen_protocol(how):
    """(samples, seed, sigma, test images) from a Parzen figure's `how`."""
    m = re.search(r"on (\d+) samples \(seed (\d+)\), sigma ([0-9.e-]+) .* mean over (\d+)", how)
    assert m, f"cannot read the Parzen protocol from {how!r}"
    return int(m[1]), int(m[2]), float(m[3]), int(m[4])


GENERATORS = [n for n in sorted(presets.list_presets())
              if "parzen_log_likelihood" in presets.load_metadata(n).get("figures", {})]


@pytest.mark.parametrize("name", GENERATORS)
def test_bundled_generator_parzen_figure_agrees_with_metadata(name, mnist_path):
    # The metadata's own protocol, re-run here: the same samples (generation is
    # seeded and gives the same images on every backend), the same sigma, the
    # same seeded test images. Cheap for the quick protocol the presets record
    # (2,000 samples x 1,000 test images); a larger one is cut to 1,000 images.
    from recipes.evaluate import _seeded_subset, generated_images
    from zoo import data
    from zoo.metrics.parzen import parzen_log_likelihoods

    meta = presets.load_metadata(name)
    path = mnist_path if meta["dataset"] == "mnist" else DATA_DIR / "cifar10.zip"
    if not path.exists():
        pytest.skip(f"{path} not found")
    figure = meta["figures"]["parzen_log_likelihood"]
    n_samples, seed, sigma, n_test = _parzen_protocol(figure["how"])
    x_test, _, _ = data.load_arrays(path, "test")
    subset = _seeded_subset(len(x_test), n_test, 0)
    exact = n_samples * n_test <= 2000 * 1000
    test = x_test[subset if exact else subset[:1000]].astype("float32") / 255.0
    model = zoo.load(name)
    # All the protocol's samples: fewer kernel centres would bias the estimate down
    # (the full-protocol presets' 10,000 samples cut to 2,000 lose 50-100 nats).
    samples = generated_images(model, n_samples, seed=seed)
    ll = parzen_log_likelihoods(test.reshape(len(test), -1), samples.reshape(len(samples), -1), [sigma])[0]
    if exact:
        # Float differences between backends' generators move it by far less than
        # 0.5 nats (a tenth of the figures' standard errors, 3-5 nats).
        assert abs(ll.mean() - figure["value"]) <= 0.5, (ll.mean(), figure["value"])
    else:  # a subset: within 4 of its standard errors
        assert abs(ll.mean() - figure["value"]) <= 4 * ll.std(ddof=1) / np.sqrt(len(ll))


@pytest.mark.parametrize("name", [n for n in sorted(presets.list_presets()) if n.startswith("dshgan_")])
def test_bundled_dshgan_check_map_agrees_with_metadata(name, cifar_path):
    from recipes.evaluate import hashing_check_figure
    from zoo.data import cifar10_hashing_split

    meta = presets.load_metadata(name)
    expected = meta["figures"]["map_check"]["value"]
    got = hashing_check_figure(zoo.load(name), cifar10_hashing_split(cifar_path, seed=0))["value"]
    # The same computation on another backend: a code bit whose unit sits at 0.5
    # within float error can flip; 0.01 of MAP allows a few such flips.
    assert abs(got - expected) <= 0.01, (got, expected)


def test_parzen_sigma_is_chosen_on_held_out_images_only_when_the_recipe_held_them_out():
    from recipes.evaluate import VALID_N, sigma_images
    from recipes.train import RECIPES

    x = np.arange(60000)[:, None]  # row i holds i: the rows chosen are readable
    held, how = sigma_images(x, 50000)
    assert held[:, 0].tolist() == list(range(50000, 50000 + VALID_N))
    assert "held out" in how and "train[50000:51000]" in how and "not held out" not in how
    # A model trained on the whole split: the images are training images, and said so.
    seen, how = sigma_images(x, None)
    assert len(seen) == VALID_N and "not held out" in how
    # The negative control: a prefix that leaves fewer than VALID_N images is no hold-out.
    assert "not held out" in sigma_images(x, 59500)[1]
    # Every MNIST generator recipe trains on Goodfellow et al.'s train[:50000].
    for name, recipe in RECIPES.items():
        if recipe.dataset == "mnist":
            assert recipe.train_images == 50000 and "train[:50000]" in recipe.split, name
