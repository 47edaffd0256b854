"""The declared capabilities (zoo.models.capabilities): one meaning of each method on every model."""

import keras
import numpy as np
import pytest

import zoo
from zoo.models.capabilities import Autoencoder, Generator, Hasher, capabilities_of

from tests.test_export import tiny_avb, tiny_dshgan
from tests.test_presets import LATENT, SHAPE, tiny_gan, tiny_vae


def tiny_vaegan(seed=0):
    keras.utils.set_random_seed(seed)
    return zoo.VAEGAN.larsen((16, 16, 1), latent_dim=LATENT, width=0.1, seed=seed)


def images(n, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def test_every_model_class_declares_what_it_is():
    assert capabilities_of(zoo.GAN) == ("generator",)
    assert capabilities_of(zoo.DSHGAN) == ("generator", "hasher")
    assert capabilities_of(zoo.VAEGAN) == ("generator", "autoencoder")
    for cls in (zoo.VAE, zoo.AVB):  # their decoders have a likelihood the AIS/IWAE estimators need
        assert capabilities_of(cls) == ("generator", "autoencoder", "likelihood")
    assert capabilities_of(tiny_gan()) == ("generator",)  # an instance answers as its class
    # Negative control: a plain Keras model (the domain classifier) declares nothing.
    assert capabilities_of(keras.Sequential([keras.layers.Dense(1)])) == ()


def test_a_preset_whose_generator_never_trained_is_no_generator():
    # DSH-GAN's real-triplet recipe leaves G untrained and says so in the metadata.
    meta = {"untrained_networks": ["generator", "discriminator"]}
    assert capabilities_of(zoo.DSHGAN, meta) == ("hasher",)
    assert capabilities_of(zoo.DSHGAN, {"untrained_networks": ["discriminator"]}) == ("generator", "hasher")
    assert capabilities_of(zoo.DSHGAN, {}) == ("generator", "hasher")  # control: nothing said, nothing dropped


@pytest.mark.parametrize("build", [tiny_gan, tiny_vae, tiny_avb, tiny_dshgan, tiny_vaegan])
def test_generate_is_decode_of_the_prior(build):
    model = build()
    assert isinstance(model, Generator)
    labels = None if model.num_classes is None else np.arange(5) % model.num_classes
    z = model.sample_prior(5, seed=3)
    assert z.shape == (5, model.latent_dim) and z.dtype == np.float32
    np.testing.assert_array_equal(z, model.sample_prior(5, seed=3))  # seeded, NumPy: every backend alike
    x = model.generate(5, seed=3, labels=labels)
    np.testing.assert_array_equal(x, model.decode(z, labels))
    assert x.shape == (5, *model.data_shape) and x.min() >= 0 and x.max() <= 1
    u8 = model.generate(5, seed=3, labels=labels, output="uint8")  # every generator takes output=
    assert u8.dtype == np.uint8 and np.abs(u8.astype(float) - np.round(x * 255)).max() == 0
    if model.num_classes is None:
        with pytest.raises(ValueError, match="unconditional"):
            model.decode(z, labels=np.zeros(5, int))


@pytest.mark.parametrize("build", [tiny_vae, tiny_avb, tiny_vaegan])
def test_encode_is_the_posterior_mean_and_reconstruct_decodes_it(build):
    model = build()
    assert isinstance(model, Autoencoder)
    x = images(6, model.data_shape)
    z = model.encode(x)
    assert z.shape == (6, model.latent_dim)  # one code per image, whatever the model
    np.testing.assert_allclose(model.reconstruct(x), model.decode(z), atol=1e-6)
    draws = model.sample_posterior(x, n_samples=4000, seed=1)
    assert draws.shape == (6, 4000, model.latent_dim)
    if isinstance(model, zoo.AVB):
        # No closed-form mean: encode averages posterior_mean_samples draws of z_phi (seed 0).
        np.testing.assert_allclose(z, model.sample_posterior(x, model.posterior_mean_samples, seed=0).mean(1),
                                   atol=1e-5)
    else:
        # The Gaussian posterior's draws average to mu (4,000 draws: standard error below 0.02
        # for the tiny nets' sigma of about 1, so 0.1 is a loose bound, tight against a wrong mean).
        np.testing.assert_allclose(draws.mean(1), z, atol=0.1)
        assert not np.allclose(draws.mean(1), z + 0.5, atol=0.1)  # negative control of the bound


def test_hasher_codes_are_the_scores_thresholded():
    model = tiny_dshgan()
    assert isinstance(model, Hasher) and not isinstance(model, Autoencoder)
    x = images(5)
    bits = model.hash(x, packed=False)
    np.testing.assert_array_equal(bits, (model.hash_scores(x) > 0.5).astype("uint8"))
    assert model.hash(x).shape == (5, -(-model.code_length // 8))
