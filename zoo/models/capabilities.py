"""What a trained model can do, declared by the model, not guessed by its users.

Three capabilities, each one meaning for every model that has it:

- `Generator`: draws images from a prior.
    `sample_prior(n, seed)`   z ~ p(z) as NumPy (the same z for a seed on every backend)
    `decode(z, labels=None)`  images in [0, 1] for latent codes (uint8 with output="uint8")
    `generate(n, seed, labels=None)` = decode(sample_prior(n, seed), labels)
    `num_classes`             None, or the number of classes `labels` must name
- `Autoencoder`: maps images to latent codes and back.
    `encode(images)`          (n, latent_dim): the posterior mean E[z|x]
    `sample_posterior(images, n_samples, seed)`  (n, n_samples, latent_dim): z ~ q(z|x)
    `reconstruct(images)`     decode(encode(images)): from the posterior mean
- `ExplicitLikelihood`: a decoder with a likelihood p(x|z) and the prior N(0, I),
  which the log-likelihood estimators (AIS, IWAE: `zoo.metrics.loglik`) need.
    `decoder`, `latent_dim`, `reconstruction_nll(x, decoded)` (-log p(x|z) per example)
- `Hasher`: binary codes for similar-image search.
    `hash(images, packed=True)`, `hash_scores(images)` (relaxed codes in (0, 1)), `code_length`

Demos, recipes, metrics and export ask `capabilities_of(model_or_class)` or
`isinstance(model, Generator)`; a model class lists what it is by inheriting
these. The implementations shared by several models live here too: G(z[, y])
sampling for the GAN family (`NetworkGenerator`).
"""

import keras
import numpy as np

from zoo.data import ranges
from zoo.models.common import (
    check_count, check_fits_in_memory, check_latents, in_batches, model_to_unit, non_finite_message,
)

LATENT_DISTRIBUTIONS = ("normal", "uniform")


def check_output(output):
    if output not in ("float", "uint8"):
        raise ValueError(f'output must be "float" or "uint8"; got {output!r}.')


def as_output(x, output):
    """Images in [0, 1] as the `output` asked for: "float" (float32) or "uint8"."""
    return ranges.to_pixels(x) if output == "uint8" else np.asarray(x, "float32")


class Generator:
    """Draws images: `generate(n, seed)` = `decode(sample_prior(n, seed))`.

    A subclass implements `decode(z, labels=None, output="float", batch_size=256,
    use_ema=True)` and sets `latent_dim` (and `latent_distribution`, `num_classes`
    when they are not a standard normal and None)."""

    latent_distribution = "normal"
    num_classes = None

    def sample_prior(self, n, seed=None):
        """n draws of z ~ p(z), NumPy float32 (N(0, I), or U(-sqrt 3, sqrt 3) per
        dimension: unit variance, the GAN paper's uniform noise)."""
        n = check_count(n)
        rng = np.random.default_rng(seed)
        if self.latent_distribution == "uniform":
            r = 3.0**0.5
            return rng.uniform(-r, r, (n, self.latent_dim)).astype("float32")
        return rng.standard_normal((n, self.latent_dim)).astype("float32")

    def decode(self, z, labels=None, *, output="float", batch_size=256, use_ema=True):
        raise NotImplementedError

    def decode_tensor(self, z, labels=None):
        """decode on tensors (a traced function: export): images in the model's
        `data_range` from the sampling networks (their moving averages, if kept);
        `labels` one-hot."""
        raise NotImplementedError

    def generate(self, n, seed=None, labels=None, *, output="float", batch_size=256, use_ema=True):
        """n samples as NumPy: "float" in [0, 1] or "uint8" in [0, 255].

        `seed` fixes the noise (NumPy's generator, so a seed gives the same z on
        every backend). `labels`: one int for all, n ints, or (n, num_classes)
        label vectors; required for a conditional model, refused otherwise.
        `use_ema`: sample the moving average of the weights when the model keeps
        one (`ema_decay`); False samples the raw, last-iterate network."""
        check_output(output)
        n = check_count(n)
        check_fits_in_memory(n, self.data_shape, f"{type(self).__name__}.generate")
        return self.decode(self.sample_prior(n, seed), labels, output=output, batch_size=batch_size,
                           use_ema=use_ema)

    def _check_no_labels(self, labels):
        if labels is not None:
            raise ValueError(f"labels were given, but this {type(self).__name__} is unconditional (decode and "
                             "generate take labels as their second and third arguments; the rest by keyword).")


class Autoencoder:
    """Encodes images to latent codes and decodes them back. A subclass implements
    `encode`, `sample_posterior` and `decode` (it is a `Generator` too)."""

    def encode(self, images, batch_size=256):
        """(n, latent_dim): the posterior mean E[z|x] of each image."""
        raise NotImplementedError

    def sample_posterior(self, images, n_samples=1, seed=None, batch_size=256):
        """(n, n_samples, latent_dim) draws of z ~ q(z|x), seeded (NumPy's generator)."""
        raise NotImplementedError

    #: the inputs of `posterior_tensors` besides the images: () or ("eps",)
    posterior_inputs = ()

    def posterior_tensors(self, x, eps=None):
        """q(z|x) on tensors of the model's range (a traced function: export), as
        named outputs; "mu" or "z" is the code `decode_tensor` takes."""
        raise NotImplementedError

    def reconstruct(self, images, batch_size=256, use_ema=True):
        """decode(encode(images)): reconstructions in [0, 1] from the posterior mean."""
        return self.decode(self.encode(images, batch_size), batch_size=batch_size, use_ema=use_ema)


class ExplicitLikelihood:
    """A decoder with an explicit likelihood: `reconstruction_nll(x, decoder(z))` is
    -log p(x|z) per example, x in the model's data space (the VAE and AVB; the
    VAE-GAN's is in Dis's features, not pixels)."""

    def reconstruction_nll(self, x, decoded):
        raise NotImplementedError


class Hasher:
    """Binary codes for similar-image search: `hash(images, packed=True)` (uint8 bytes,
    or {0, 1} bits with packed=False), `hash_scores(images)` (relaxed codes in (0, 1),
    the bits where they exceed 1/2) and `code_length` (bits)."""

    def hash_scores(self, images, batch_size=256):
        raise NotImplementedError

    def hash(self, images, packed=True, batch_size=256):
        raise NotImplementedError

    def hash_scores_tensor(self, x):
        """hash_scores on tensors of the model's range (a traced function: export)."""
        raise NotImplementedError


CAPABILITIES = {"generator": Generator, "autoencoder": Autoencoder, "likelihood": ExplicitLikelihood,
                "hasher": Hasher}


UNTRAINED_KEY = "untrained_networks"  # preset metadata: networks its recipe never trained


def capabilities_of(model_or_class, metadata=None):
    """The capabilities a model (or model class) declares, e.g. ("generator", "autoencoder").

    With a preset's `metadata`, less what its recipe left untrained: DSH-GAN's
    real-triplet hasher declares a generator, but its G never trained, so the
    preset is no generator for a demo, a sample grid or a coverage test."""
    cls = model_or_class if isinstance(model_or_class, type) else type(model_or_class)
    names = tuple(name for name, base in CAPABILITIES.items() if issubclass(cls, base))
    untrained = set((metadata or {}).get(UNTRAINED_KEY, ()))
    if "generator" in untrained:
        names = tuple(n for n in names if n != "generator")
    return names


class NetworkGenerator(Generator):
    """`Generator` for a model with a generator network G(z) or G(z, y): the GAN
    family and DSH-GAN's G. Needs `generator`, `latent_dim`, `latent_distribution`,
    `seed_generator`, `num_classes` (None if unconditional), `data_range` and
    `_g(z, y, training, network)`."""

    def sample_latent(self, n):
        """z ~ p(z) in training, drawn from the model's seeded training noise."""
        shape = (n, self.latent_dim)
        if self.latent_distribution == "uniform":
            r = 3.0**0.5
            return self.noise(keras.random.uniform, shape, minval=-r, maxval=r)
        return self.noise(keras.random.normal, shape)

    def decode(self, z, labels=None, *, output="float", batch_size=256, use_ema=True):
        """G(z[, y]) in batches, as NumPy in [0, 1] (or uint8); G's moving average
        if the model keeps one and `use_ema`."""
        check_output(output)
        z = check_latents(z, self.latent_dim)
        if labels is not None or self.num_classes is not None:
            labels = self._check_labels(labels, len(z))
        arrays = [z] if labels is None else [z, labels]
        net = self.averaged("generator") if use_ema else self.generator
        x = in_batches(lambda zb, yb=None: self._g(zb, yb, training=False, network=net), arrays, batch_size)
        if self.data_range is not None:
            x = model_to_unit(x, self.data_range)
        return as_output(x, output)

    def decode_tensor(self, z, labels=None):
        return self._g(z, labels, training=False, network=self.averaged("generator"))

    def decode_latents(self, z, labels=None, *, output="float", batch_size=256, use_ema=True):
        """The name of `decode` before the capabilities were declared; kept for old scripts."""
        return self.decode(z, labels, output=output, batch_size=batch_size, use_ema=use_ema)

    def _check_labels(self, labels, n):
        if self.num_classes is None:
            self._check_no_labels(labels)
            return None
        if labels is None:
            raise ValueError(
                f"This {type(self).__name__} is conditional on {self.num_classes} classes: pass labels."
            )
        labels = np.asarray(labels)
        if labels.dtype.kind not in "biuf":
            raise ValueError(f"Labels must be numbers; got dtype {labels.dtype}.")
        if labels.ndim == 0:
            labels = np.full((n,), labels)
        if labels.ndim == 1:
            if len(labels) != n:
                raise ValueError(f"Got {len(labels)} labels for {n} samples.")
            check_int_labels(labels, self.num_classes)
            return np.eye(self.num_classes, dtype="float32")[labels.astype(int)]
        if labels.shape != (n, self.num_classes):
            raise ValueError(
                f"Label vectors must have shape ({n}, {self.num_classes}); got {labels.shape}."
            )
        bad = non_finite_message(labels)
        if bad:
            raise ValueError(f"The label vectors hold {bad}.")
        return labels.astype("float32")


def check_int_labels(labels, num_classes):
    """Raise a ValueError unless `labels` are whole class indices in [0, num_classes)."""
    if not np.issubdtype(labels.dtype, np.integer):
        # Whole-valued floats (2.0) are accepted as class indices; 2.7 or NaN is not truncated.
        whole = np.isfinite(labels) & np.equal(np.mod(labels, 1), 0)
        if not np.all(whole):
            bad = labels[~whole]
            raise ValueError(
                f"Integer class labels expected; got {bad.size} non-integer value(s) "
                f"such as {bad.flat[0].item()!r} (dtype {labels.dtype})."
            )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"Class labels must be in [0, {num_classes}); got range "
            f"[{labels.min()}, {labels.max()}]."
        )
