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
from zoo.models.common import (
    bernoulli_nll, check_count, check_fits_in_memory, check_latents, check_real_batch, gaussian_kl,
    gaussian_nll, images_to_model, in_batches, model_to_unit, reparameterize, seeded_normal,
    slerp,
)

LIKELIHOODS = ("gaussian", "bernoulli")


class LatentImageModel:
    """encode / decode / reconstruct / generate / interpolate for models with a
    Gaussian encoder x -> [mu, log_var] and a decoder z -> x.

    Images in and out are NumPy: uint8 or floats in [0, 1]. With `use_ema`
    (the default) decoding uses the moving average of the decoder's weights
    when the model keeps one (`ema_decay`); `use_ema=False` the raw decoder.
    """

    def _decoder_mean(self, z, training=False, network=None):
        """Decoder output in the model's data_range."""
        out = (network or self.decoder)(z, training=training)
        return ops.sigmoid(out) if self.likelihood == "bernoulli" else out

    def encode(self, images, batch_size=256):
        """(mu, log_var) of q(z|x), NumPy."""
        x = images_to_model(images, self.data_shape, self.data_range)
        return in_batches(lambda b: self.encoder(b, training=False), [x], batch_size)

    def decode(self, z, batch_size=256, use_ema=True):
        """Images in [0, 1] for latent codes z (the decoder's mean)."""
        z = check_latents(z, self.latent_dim)
        net = self.averaged("decoder") if use_ema else self.decoder
        x = in_batches(lambda b: self._decoder_mean(b, network=net), [z], batch_size)
        return model_to_unit(x, self.data_range)

    def reconstruct(self, images, batch_size=256, use_ema=True):
        """Dec(mu(x)): reconstructions in [0, 1] from the posterior mean."""
        mu, _ = self.encode(images, batch_size)
        return self.decode(mu, batch_size, use_ema=use_ema)

    def generate(self, n, seed=None, output="float", batch_size=256, use_ema=True):
        """n samples Dec(z), z ~ N(0, I) drawn with NumPy (the same z on every backend)."""
        if output not in ("float", "uint8"):
            raise ValueError(f'output must be "float" or "uint8"; got {output!r}.')
        n = check_count(n)
        check_fits_in_memory(n, self.data_shape, f"{type(self).__name__}.generate")
        x = self.decode(seeded_normal(n, self.latent_dim, seed), batch_size, use_ema=use_ema)
        return np.round(x * 255).astype("uint8") if output == "uint8" else x

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
        return self.encode(v)[0][0]


@keras.saving.register_keras_serializable(package="zoo")
class VAE(LatentImageModel, AdversarialModel):
    """Gaussian-encoder VAE. Logs "loss" (the negative ELBO in nats per image),
    "reconstruction" (E_q[-log p(x|z)]) and "kl".

    `ema_decay` (with `ema_start`, `ema_warmup`): keep a moving average of the
    decoder's weights, which `decode`, `generate`, `reconstruct` and
    `interpolate` use by default (`zoo.core.ema`; None: none)."""

    players = {"vae": ("encoder", "decoder")}
    averaged_networks = ("decoder",)

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
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.rec_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
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
        if self.likelihood == "bernoulli":
            return bernoulli_nll(x, decoded)
        return gaussian_nll(x, decoded, self.pixel_sigma)

    def negative_elbo(self, x, training=True):
        mu, log_var = self.encoder(x, training=training)
        eps = self.noise(keras.random.normal, ops.shape(mu))
        decoded = self.decoder(reparameterize(mu, log_var, eps), training=training)
        rec = ops.mean(self.reconstruction_nll(x, decoded))
        kl = ops.mean(gaussian_kl(mu, log_var))
        return rec + kl, (rec, kl)

    def train_step(self, data):
        x = self._unpack(data)
        loss, (rec, kl) = self.update("vae", lambda: self.negative_elbo(x))
        return self._track(loss, rec, kl)

    def test_step(self, data):
        loss, (rec, kl) = self.negative_elbo(self._unpack(data), training=False)
        return self._track(loss, rec, kl)

    def _track(self, loss, rec, kl):
        self.loss_tracker.update_state(loss)
        self.rec_tracker.update_state(rec)
        self.kl_tracker.update_state(kl)
        return self.logs()

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if y is not None:
            raise ValueError("A VAE takes images only; labels were given.")
        return x

    def check_batch(self, x, y):
        check_real_batch(x, self.data_shape, self.data_range)
        if y is not None:
            raise ValueError("A VAE takes images only; labels were given.")

    def call(self, x, training=False):
        mu, _ = self.encoder(x, training=training)
        return self._decoder_mean(mu, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "likelihood": self.likelihood, "pixel_sigma": self.pixel_sigma,
            "data_range": self.data_range, "seed": self.seed,
        }

