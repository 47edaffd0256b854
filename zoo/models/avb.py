"""Adversarial Variational Bayes: Mescheder, Nowozin, Geiger, ICML 2017.

A VAE whose encoder is a black box, z = z_phi(x, eps) with eps ~ N(0, I), so
q_phi(z|x) has no closed-form density. Its KL term is estimated by an adversary
T(x, z), trained by logistic regression to tell (x, z ~ q(z|x)) from (x, z ~ p(z)):

    max_T  E_pD(x) E_q(z|x)[log sigma(T(x, z))] + E_pD(x) E_p(z)[log(1 - sigma(T(x, z)))]

whose optimum is T*(x, z) = log q(z|x) - log p(z). The encoder and decoder then
maximise

    E_pD(x) E_eps[-T*(x, z_phi(x, eps)) + log p_theta(x | z_phi(x, eps))]

with T held fixed (the expected gradient of T* w.r.t. phi is zero).

Adaptive contrast (`adaptive_contrast=True`): compare q with r_alpha(z|x), a
Gaussian with the sample mean and variance of q(z|x) (gradient stopped in the
normalisation), instead of p(z). Then KL(q || p) = KL(q || r) + E_q[log r - log p];
T learns log q - log r on z_bar = (z - mu) / sigma against z_bar ~ N(0, I), and
the second term is the closed form KL(r || p) (E_q of a quadratic in z equals E_r).
The moments come from `contrast_samples` draws of z per x, or, with the authors'
encoder `blocks.avb_basis_encoder` (z = z0(x) + sum_i a_i(x) v_i(eps_i), which
returns [z, E[z|x], Var[z|x]]), from the encoder itself with one z per x.

`stop_moments=False` differentiates z_bar through mu and sigma as well. Both
gradients are unbiased at the optimal T* = log q_bar + 1/2 ||z_bar||^2 + const,
q_bar the law of z_bar (KL(q || r) = KL(q_bar || N(0, I))): through the stopped
moments T* sends E[grad T*] = 0 to the mean and E[z_bar_j d_j T*] = -1 + 1 = 0
to each scale. A learnt T is only close, and in the stopped form its error
pushes q's mean and scale; differentiated, z_bar is invariant to them, so T
shapes q_bar only and the mean and variance follow the reconstruction and the
closed form, as in a VAE.

Players: "T" (the adversary) and "vae" (encoder and decoder):
`compile(T_optimizer=..., vae_optimizer=...)`; the authors use Adam with beta_1 = 0.5.
"""

import keras
import numpy as np
from keras import ops

from zoo.core import AdversarialModel
from zoo.models import blocks
from zoo.models.capabilities import Autoencoder, ExplicitLikelihood, Generator, as_output, check_output
from zoo.models.common import (
    check_count, check_latents, float32, gaussian_kl, images_to_model, in_batches, model_to_unit,
    non_finite_message, reconstruction_nll, seeded_normal,
)

LIKELIHOODS = ("bernoulli", "gaussian")
# Added to q's variances before they divide or enter a log: a collapsed latent
# (all draws equal) must not give inf in z_bar or KL(r || p).
VAR_FLOOR = 1e-6


def adversary_cost(t_q, t_p):
    """The adversary's logistic loss: -E log sigma(T(x, z_q)) - E log(1 - sigma(T(x, z_p)))."""
    t_q, t_p = float32(t_q, t_p)
    return ops.mean(ops.softplus(-t_q)) + ops.mean(ops.softplus(t_p))


@keras.saving.register_keras_serializable(package="zoo")
class AVB(Generator, Autoencoder, ExplicitLikelihood, AdversarialModel):
    """AVB with players "T" and "vae".

    Args:
        encoder: [x, eps] -> z, or -> [z, E[z|x], Var[z|x]] (the authors' basis
            encoder), whose moments adaptive contrast then uses.
        decoder: z -> Bernoulli logits (data in [0, 1]) or Gaussian means.
        adversary: [x, z] -> T(x, z), shape (batch, 1).
        likelihood: "bernoulli" or "gaussian" (with `pixel_sigma`).
        adaptive_contrast: compare q with the Gaussian r_alpha(z|x) instead of p(z).
        contrast_samples: samples of q(z|x) per x for r_alpha's mean and variance
            (and for the Monte Carlo terms of the loss); unused when the encoder
            gives the moments.
        stop_moments: normalise z with r_alpha's moments gradient-stopped (the
            authors); False differentiates through them (see the module's text).
        t_steps: adversary steps per (theta, phi) step.
    Logs: "loss" (the estimated negative ELBO), "reconstruction", "kl" (E_q[T],
    plus KL(r || p) with adaptive contrast) and "t_loss".
    """

    players = {"T": ("adversary",), "vae": ("encoder", "decoder")}
    label_policy = "refused"
    data_noun = "data"  # images or vectors (toy problems)
    config_attributes = ("likelihood", "pixel_sigma", "adaptive_contrast", "contrast_samples", "stop_moments",
                         "t_steps", "data_range", "seed")
    #: draws of z ~ q(z|x) whose mean is `encode`'s posterior mean, when the
    #: encoder does not give E[z|x] itself.
    posterior_mean_samples = 64

    def __init__(self, encoder, decoder, adversary, likelihood="bernoulli", pixel_sigma=0.1,
                 adaptive_contrast=False, contrast_samples=8, stop_moments=True, t_steps=1,
                 data_range=(0.0, 1.0), seed=None, **kwargs):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}.")
        if int(t_steps) != t_steps or t_steps < 1:
            raise ValueError(f"t_steps must be a positive integer; got {t_steps!r}.")
        self.encoder_moments = len(encoder.outputs) == 3
        if len(encoder.outputs) not in (1, 3):
            raise ValueError("encoder must return z, or [z, E[z|x], Var[z|x]]; it has "
                             f"{len(encoder.outputs)} outputs.")
        if adaptive_contrast and contrast_samples < 2 and not self.encoder_moments:
            raise ValueError("adaptive_contrast needs contrast_samples >= 2 to estimate a variance "
                             "(or an encoder that returns [z, E[z|x], Var[z|x]]).")
        self.encoder, self.decoder, self.adversary = encoder, decoder, adversary
        self.likelihood, self.pixel_sigma = likelihood, float(pixel_sigma)
        self.adaptive_contrast, self.contrast_samples = bool(adaptive_contrast), int(contrast_samples)
        self.stop_moments = bool(stop_moments)
        self.t_steps = int(t_steps)
        self.data_range = None if data_range is None else tuple(float(v) for v in data_range)
        self.seed = seed
        self.data_shape = tuple(encoder.inputs[0].shape[1:])
        self.noise_dim = int(encoder.inputs[1].shape[-1])
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.init_logs(["loss", "reconstruction", "kl", "t_loss"])
        self.built = True

    @classmethod
    def build_default(cls, data_shape, latent_dim=32, noise_dim=None, hidden=(256, 256), num_basis=None,
                      noise_hidden=(128, 128, 128), t_activation="elu", **kwargs):
        """The zoo's AVB nets (conv stacks for images, MLPs for vectors) with the
        authors' form of T. `num_basis`: the authors' basis encoder with that many
        noise networks of widths `noise_hidden` (its moments serve adaptive
        contrast) instead of the MLP on [features of x, eps]. `t_activation`:
        T's hidden units (ELU for MNIST; "relu" where log q/p has sharp edges,
        see `blocks.avb_adversary`)."""
        output = "logits" if kwargs.get("likelihood", "bernoulli") == "bernoulli" else "tanh"
        if num_basis:
            # One hidden layer on x before the heads: a deeper basis encoder outran T on
            # MNIST (bench/results/avb_mnist_30min_basis/x_depth: 32-d diverged, 8-d lost).
            encoder = blocks.avb_basis_encoder(data_shape, latent_dim, noise_dim, num_basis, hidden[:1],
                                               noise_hidden)
        else:
            encoder = blocks.avb_encoder(data_shape, latent_dim, noise_dim, hidden)
        return cls(encoder,
                   blocks.avb_decoder(data_shape, latent_dim, hidden, output=output),
                   blocks.avb_adversary(data_shape, latent_dim, hidden, activation=t_activation), **kwargs)

    # -- sampling q(z|x) -------------------------------------------------------------
    def _repeat(self, x, k):
        """Each example k times, consecutively: (n * k, ...)."""
        return ops.reshape(ops.repeat(ops.expand_dims(x, 1), k, axis=1), (-1, *self.data_shape))

    def posterior_samples(self, x, k, training=True):
        """(x repeated k times, z ~ q(z|x) of shape (n * k, latent), and the
        encoder's (E[z|x], Var[z|x]) when it gives them, else None)."""
        xk = self._repeat(x, k) if k > 1 else x
        eps = self.noise(keras.random.normal, (ops.shape(xk)[0], self.noise_dim))
        out = self.encoder([xk, eps], training=training)
        if self.encoder_moments:
            return xk, out[0], (out[1], out[2] + VAR_FLOOR)
        return xk, out, None

    def contrast(self, z, k, moments=None):
        """Adaptive contrast: (z_bar, mu, var) with the encoder's moments, or those
        of each x's k samples (mu, var then of shape (n, latent)).

        z_bar uses the moments with their gradient stopped (unless
        `stop_moments=False`); mu and var keep it, for the closed-form KL(r || p)."""
        stop = ops.stop_gradient if self.stop_moments else (lambda t: t)
        if moments is not None:
            mu, var = moments
            return (z - stop(mu)) / ops.sqrt(stop(var)), mu, var
        zk = ops.reshape(z, (-1, k, self.latent_dim))
        mu = ops.mean(zk, axis=1, keepdims=True)
        var = ops.mean(ops.square(zk - mu), axis=1, keepdims=True) + VAR_FLOOR
        z_bar = (zk - stop(mu)) / ops.sqrt(stop(var))
        return ops.reshape(z_bar, (-1, self.latent_dim)), mu[:, 0], var[:, 0]

    def _k(self):
        return self.contrast_samples if self.adaptive_contrast and not self.encoder_moments else 1

    # -- the two players' losses ------------------------------------------------------
    def adversary_loss(self, x, training=True):
        """Logistic regression of T: (x, z ~ q) against (x, z ~ p), or with adaptive
        contrast (x, z_bar ~ q_bar) against (x, z_bar ~ N(0, I))."""
        k = self._k()
        xk, z, moments = self.posterior_samples(x, k, training=training)
        if self.adaptive_contrast:
            z = self.contrast(z, k, moments)[0]
        z = ops.stop_gradient(z)
        z_p = self.noise(keras.random.normal, ops.shape(z))
        t_q = self.adversary([xk, z], training=training)
        t_p = self.adversary([xk, z_p], training=training)
        return adversary_cost(t_q, t_p), ()

    def vae_loss(self, x, training=True):
        """The estimated negative ELBO: E_q[-log p(x|z)] + E_q[T(x, z)] (+ KL(r || p))."""
        k = self._k()
        xk, z, moments = self.posterior_samples(x, k, training=training)
        rec = ops.mean(self.reconstruction_nll(xk, self.decoder(z, training=training)))
        if self.adaptive_contrast:
            z_bar, mu, var = self.contrast(z, k, moments)
            kl = ops.mean(float32(self.adversary([xk, z_bar], training=training))) + ops.mean(
                gaussian_kl(mu, ops.log(var)))
        else:
            kl = ops.mean(float32(self.adversary([xk, z], training=training)))
        return rec + kl, (rec, kl)

    def reconstruction_nll(self, x, decoded):
        return reconstruction_nll(x, decoded, self.likelihood, self.pixel_sigma)

    # -- one training step -----------------------------------------------------------
    def train_step(self, data):
        x, _ = self._unpack(data)
        for _ in range(self.t_steps):
            t_loss, _ = self.update("T", lambda: self.adversary_loss(x))
        loss, (rec, kl) = self.update("vae", lambda: self.vae_loss(x))
        return self.track(loss=loss, reconstruction=rec, kl=kl, t_loss=t_loss)

    def test_step(self, data):
        x, _ = self._unpack(data)
        t_loss, _ = self.adversary_loss(x, training=False)
        loss, (rec, kl) = self.vae_loss(x, training=False)
        return self.track(loss=loss, reconstruction=rec, kl=kl, t_loss=t_loss)

    # -- API ---------------------------------------------------------------------------
    def z_phi(self, x, eps, training=False):
        """z = z_phi(x, eps) on model-range tensors (the basis encoder's moments dropped)."""
        encoded = self.encoder([x, eps], training=training)
        return encoded[0] if self.encoder_moments else encoded

    def _decoder_mean(self, z, training=False):
        """E[x|z]: sigmoid of the logits (Bernoulli) or the Gaussian mean, in model range."""
        decoded = self.decoder(z, training=training)
        return ops.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded

    def call(self, inputs, training=False):
        """[x, eps] -> the decoder's mean at z = z_phi(x, eps)."""
        return self._decoder_mean(self.z_phi(*inputs, training=training), training=training)

    def _to_model(self, images):
        if self.data_range is None or len(self.data_shape) != 3:
            x = np.asarray(images, "float32")
            if x.ndim == len(self.data_shape):
                x = x[None]
            if tuple(x.shape[1:]) != tuple(self.data_shape):
                raise ValueError(
                    f"Expected data of shape (n, {', '.join(map(str, self.data_shape))}); got {x.shape}."
                )
            bad = non_finite_message(x)
            if bad:
                raise ValueError(f"The data hold {bad}.")
            return x
        return images_to_model(images, self.data_shape, self.data_range)

    def _to_user(self, x):
        if self.data_range is None or len(self.data_shape) != 3:
            return ops.convert_to_numpy(x)
        return model_to_unit(x, self.data_range)

    def sample_posterior(self, images, n_samples=1, seed=None, batch_size=256):
        """(n, n_samples, latent_dim) draws z = z_phi(x, eps), eps seeded (NumPy)."""
        x = self._to_model(images)
        n_samples = check_count(n_samples, "n_samples")
        xr = np.repeat(x, n_samples, axis=0)
        eps = seeded_normal(len(xr), self.noise_dim, seed)
        z = in_batches(self.z_phi, [xr, eps], batch_size)
        return z.reshape(len(x), n_samples, self.latent_dim)

    def encode(self, images, batch_size=256):
        """(n, latent_dim): the posterior mean E[z|x]; from the encoder when it gives
        it (the basis encoder), else the mean of `posterior_mean_samples` draws
        (seed 0)."""
        if self.encoder_moments:
            x = self._to_model(images)
            eps = np.zeros((len(x), self.noise_dim), "float32")  # the moments do not depend on eps
            return in_batches(lambda b, e: self.encoder([b, e], training=False)[1], [x, eps], batch_size)
        return self.sample_posterior(images, self.posterior_mean_samples, seed=0, batch_size=batch_size).mean(1)

    posterior_inputs = ("eps",)

    def posterior_tensors(self, x, eps=None):
        return {"z": self.z_phi(x, eps)}

    def decode_tensor(self, z, labels=None):
        return self._decoder_mean(z)

    def decode(self, z, labels=None, *, output="float", batch_size=256, use_ema=True):
        """The decoder's mean for latent codes z, in [0, 1] for images (AVB keeps no
        moving average: `use_ema` is accepted for the common interface)."""
        check_output(output)
        self._check_no_labels(labels)
        z = check_latents(z, self.latent_dim)
        x = self._to_user(in_batches(self._decoder_mean, [z], batch_size))
        return as_output(x, output) if output == "uint8" else x  # vectors (toy data) stay as they are
