"""Variational autoencoder (Kingma & Welling 2014) with a Gaussian encoder.

The pixel-wise baseline that VAE-GAN (Larsen et al. 2016) improves on, and the
Gaussian VAE that AVB (Mescheder et al. 2017) is compared with:

    -ELBO(x) = E_q(z|x)[-log p(x|z)] + KL(q(z|x) || p(z)),   z = mu + sigma * eps

with p(x|z) a Gaussian of fixed width `pixel_sigma` around the decoder's output
(pixels in [-1, 1]) or a Bernoulli with the decoder's logits (pixels in [0, 1]).
One player, "vae", trains encoder and decoder: `compile(optimizer=...)`.
"""

import keras
import numpy as np
from keras import ops

from zoo.core import AdversarialModel
from zoo.models import blocks
from zoo.models.capabilities import Autoencoder, ExplicitLikelihood, Generator, as_output, check_output
from zoo.models.common import (
    check_count, check_latents, gaussian_kl, images_to_model, in_batches, model_to_unit, reconstruction_nll,
    reparameterize, seeded_normal, slerp,
)

LIKELIHOODS = ("gaussian", "bernoulli")


class LatentImageModel(Generator, Autoencoder):
    """The `Generator` and `Autoencoder` of a model with a Gaussian encoder
    x -> [mu, log_var] and a decoder z -> x: the VAE and VAE-GAN.

    Images in and out are NumPy: uint8 or floats in [0, 1]. With `use_ema`
    (the default) decoding uses the moving average of the decoder's weights
    when the model keeps one (`ema_decay`); `use_ema=False` the raw decoder.
    """

    def _decoder_mean(self, z, training=False, network=None):
        """Decoder output in the model's data_range."""
        out = (network or self.decoder)(z, training=training)
        return ops.sigmoid(out) if self.likelihood == "bernoulli" else out

    def posterior(self, images, batch_size=256):
        """(mu, log_var) of q(z|x), NumPy."""
        x = images_to_model(images, self.data_shape, self.data_range)
        return in_batches(lambda b: self.encoder(b, training=False), [x], batch_size)

    def encode(self, images, batch_size=256):
        """(n, latent_dim): the posterior mean mu(x)."""
        return self.posterior(images, batch_size)[0]

    def sample_posterior(self, images, n_samples=1, seed=None, batch_size=256):
        """(n, n_samples, latent_dim): z = mu + sigma * eps, eps seeded (NumPy)."""
        mu, log_var = self.posterior(images, batch_size)
        n_samples = check_count(n_samples, "n_samples")
        eps = seeded_normal(len(mu) * n_samples, self.latent_dim, seed).reshape(len(mu), n_samples, self.latent_dim)
        return (mu[:, None] + np.exp(0.5 * log_var)[:, None] * eps).astype("float32")

    def decode(self, z, labels=None, *, output="float", batch_size=256, use_ema=True):
        """Images in [0, 1] (or uint8) for latent codes z (the decoder's mean)."""
        check_output(output)
        self._check_no_labels(labels)
        z = check_latents(z, self.latent_dim)
        net = self.averaged("decoder") if use_ema else self.decoder
        x = in_batches(lambda b: self._decoder_mean(b, network=net), [z], batch_size)
        return as_output(model_to_unit(x, self.data_range), output)

    def decode_tensor(self, z, labels=None):
        return self._decoder_mean(z, network=self.averaged("decoder"))

    def posterior_tensors(self, x, eps=None):
        mu, log_var = self.encoder(x, training=False)
        return {"mu": mu, "log_var": log_var}

    def interpolate(self, a, b, steps=8, spherical=False, use_ema=True):
        """Decoded points on the line (or great circle) between two latent codes.

        `a` and `b`: images (encoded to their posterior means) or latent vectors.
        Returns (steps, *image_shape) in [0, 1].
        """
        za, zb = (self._as_latent(v) for v in (a, b))
        t = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
        z = slerp(za[None], zb[None], t) if spherical else (1 - t) * za + t * zb
        return self.decode(z.astype("float32"), use_ema=use_ema)

    def _as_latent(self, v):
        v = np.asarray(v)
        if v.shape == (self.latent_dim,):
            return v.astype("float32")
        return self.encode(v)[0]


@keras.saving.register_keras_serializable(package="zoo")
class VAE(LatentImageModel, ExplicitLikelihood, AdversarialModel):
    """Gaussian-encoder VAE. Logs "loss" (the negative ELBO in nats per image),
    "reconstruction" (E_q[-log p(x|z)]) and "kl".

    `ema_decay` (with `ema_start`, `ema_warmup`): keep a moving average of the
    decoder's weights, which `decode`, `generate`, `reconstruct` and
    `interpolate` use by default (`zoo.core.ema`; None: none)."""

    players = {"vae": ("encoder", "decoder")}
    label_policy = "refused"
    averaged_networks = ("decoder",)
    config_attributes = ("likelihood", "pixel_sigma", "data_range", "seed")

    def __init__(self, encoder, decoder, likelihood="gaussian", pixel_sigma=0.1,
                 data_range=(-1.0, 1.0), seed=None, ema_decay=None, ema_start=0, ema_warmup=False,
                 **kwargs):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}.")
        if likelihood == "bernoulli" and tuple(data_range) != (0.0, 1.0):
            raise ValueError("A Bernoulli likelihood needs data_range (0, 1).")
        if pixel_sigma <= 0:
            raise ValueError(f"pixel_sigma must be positive; got {pixel_sigma}.")
        self.encoder, self.decoder = encoder, decoder
        self.likelihood, self.pixel_sigma = likelihood, float(pixel_sigma)
        self.data_range = tuple(float(v) for v in data_range)
        self.seed = seed
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        self.data_shape = tuple(encoder.inputs[0].shape[1:])
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.init_logs(["loss", "reconstruction", "kl"])
        self.init_ema(ema_decay, ema_start, ema_warmup)
        self.built = True

    @classmethod
    def larsen(cls, image_shape=(28, 28, 1), latent_dim=128, likelihood="gaussian", width=1.0, **kwargs):
        """The encoder and decoder of Larsen et al. (the VAE-GAN's), sized by image shape."""
        if likelihood == "bernoulli":
            kwargs.setdefault("data_range", (0.0, 1.0))
        output = "logits" if likelihood == "bernoulli" else "tanh"
        return cls(blocks.gaussian_encoder(image_shape, latent_dim, width),
                   blocks.larsen_decoder(image_shape, latent_dim, output=output, width=width),
                   likelihood=likelihood, **kwargs)

    def reconstruction_nll(self, x, decoded):
        return reconstruction_nll(x, decoded, self.likelihood, self.pixel_sigma)

    def negative_elbo(self, x, training=True):
        mu, log_var = self.encoder(x, training=training)
        eps = self.noise(keras.random.normal, ops.shape(mu))
        decoded = self.decoder(reparameterize(mu, log_var, eps), training=training)
        rec = ops.mean(self.reconstruction_nll(x, decoded))
        kl = ops.mean(gaussian_kl(mu, log_var))
        return rec + kl, (rec, kl)

    def train_step(self, data):
        x, _ = self._unpack(data)
        loss, (rec, kl) = self.update("vae", lambda: self.negative_elbo(x))
        return self.track(loss=loss, reconstruction=rec, kl=kl)

    def test_step(self, data):
        loss, (rec, kl) = self.negative_elbo(self._unpack(data)[0], training=False)
        return self.track(loss=loss, reconstruction=rec, kl=kl)

    def call(self, x, training=False):
        mu, _ = self.encoder(x, training=training)
        return self._decoder_mean(mu, training=training)
