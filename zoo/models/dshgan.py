"""Deep Semantic Hashing with GANs (Qiu, Pan, Yao, Mei, SIGIR 2017).

Binary codes for similar-image search, learnt from few labelled images by
generating labelled synthetic ones. Three networks:

- the generator G(z, y): noise concatenated with an embedding of the label
  vector y (one-hot, multi-hot);
- the pre-training discriminator D(x) -> [real/synthetic logit, label logits],
  one sigmoid unit per label, so an unlabelled real image has the valid
  target y = 0 (all zeros);
- the hashing network H(x): a shared CNN with three streams, hash (q sigmoid
  units h, code b = 1[h > 0.5]), classification and adversary (real/synthetic).

Training runs in two phases, chosen with `model.phase` between `fit` calls:

1. "pretrain", the semi-supervised conditional GAN. D: real vs synthetic, plus
   labels of real images (zeros for unlabelled ones). G: makes images D takes
   as real and labels as y.
2. "hash", the main training on real-synthetic triplets: a labelled real query
   x_q with labels y, a synthetic positive x_+ = G(z, y) and a synthetic
   negative x_- = G(z', y') whose labels y' share none with y. H minimises

       max(0, m - ||h_q - h_-||^2 + ||h_q - h_+||^2)      (triplet, relaxed codes)
     + class_weight * classification loss (softmax, or sigmoid for multi-label)
     + adversary_weight * real-vs-synthetic loss

   end to end, while G keeps training adversarially against H's adversary
   stream, its loss taken over the triplet's synthetic images.

`diversity_weight` > 0 adds a mode-seeking term to G's losses in both phases
(Mao et al., "Mode Seeking GANs", CVPR 2019; not in DSH-GAN): without it, G
trained with a label head (D's, then H's) learns one image per class and
ignores z (bench/results/dshgan_cifar10*/pretrained_samples.png), which leaves
the hash phase ten synthetic exemplars rather than a distribution.

`synthetic_triplets=False` gives the paper's ablation: the same hashing network
on triplets of real labelled images from the batch, without the generator.

Labels: integers (batch,) with -1 for an unlabelled image, or label vectors
(batch, num_classes) with an all-zero row for an unlabelled image.

Players: "g", "d" and "h": `compile(g_optimizer=..., d_optimizer=..., h_optimizer=...)`.

The training toolkit (`zoo.models.gan`'s docstring), off by default, for the
pre-training GAN: R1 on D's real/synthetic logit (`r1_gamma`), DiffAugment
before D (`diff_augment`), spectral norm in D
(`DSHGAN.build_default(spectral_norm=True)`), and a moving average of G's
weights (`ema_decay`), which `generate` and `make_triplets` sample; training
(both phases) uses the raw G.

For the hashing network: `hash_augment`, an augmentation policy of
`zoo.models.augment` applied to every image H trains on in the hash phase
(e.g. "translation,flip", the standard CIFAR crop and flip; not in the paper,
which fine-tuned an ImageNet network), and a residual hashing network
(`build_default(hasher="resnet")`), a CIFAR-grade design for training from
scratch.
"""

import keras
import numpy as np
from keras import ops

from zoo.core import AdversarialModel
from zoo.core import keras_internals
from zoo.core import backend
from zoo.models import augment, blocks
from zoo.models.capabilities import LATENT_DISTRIBUTIONS, Hasher, NetworkGenerator
from zoo.models.common import float32, images_to_model, in_batches
from zoo.models.gan import (
    check_r1_gamma,
    discriminator_cost,
    generator_cost,
    r1_penalty,
)

PHASES = ("pretrain", "hash")


# ---------------------------------------------------------------------------
# The losses
# ---------------------------------------------------------------------------
def mode_seeking_loss(x1, x2, z1, z2, eps=1e-5):
    """1 / (mean|G(z1, y) - G(z2, y)| / mean|z1 - z2| + eps) over pairs with the same y
    (Mao et al. 2019): large when G maps different noise to the same image."""
    ratio = ops.mean(ops.abs(x1 - x2)) / ops.mean(ops.abs(z1 - z2))
    return 1.0 / (ratio + eps)


def triplet_loss(h_q, h_pos, h_neg, margin):
    """max(0, m - ||h_q - h_-||^2 + ||h_q - h_+||^2) per triplet, on relaxed codes."""
    h_q, h_pos, h_neg = float32(h_q, h_pos, h_neg)
    d_pos = ops.sum(ops.square(h_q - h_pos), axis=-1)
    d_neg = ops.sum(ops.square(h_q - h_neg), axis=-1)
    return ops.relu(margin - d_neg + d_pos)


def sigmoid_label_loss(logits, targets):
    """Per-example sigmoid cross-entropy summed over labels; all-zero targets are valid."""
    logits, targets = float32(logits, targets)
    return ops.sum(ops.softplus(logits) - targets * logits, axis=-1)


def softmax_label_loss(logits, targets):
    """Per-example softmax cross-entropy against one-hot targets."""
    logits, targets = float32(logits, targets)
    return -ops.sum(targets * ops.log_softmax(logits, axis=-1), axis=-1)


def masked_mean(values, mask):
    """Mean of `values` where `mask` is 1 (0 when the mask is empty)."""
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def negatives_of(y, u):
    """One-hot y' sharing no label with y, given uniform draws u of y's shape: the
    class of largest u outside y (u - 2y puts every class of y below every other)."""
    return ops.one_hot(ops.argmax(u - 2.0 * float32(y), axis=-1), ops.shape(y)[-1])


def has_labels(y):
    """1.0 for rows with at least one label, 0.0 for unlabelled (all-zero) rows."""
    return ops.cast(ops.sum(y, axis=-1) > 0, "float32")


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="zoo")
class DSHGAN(NetworkGenerator, Hasher, AdversarialModel):
    """DSH-GAN with players "g" (generator), "d" (pre-training discriminator)
    and "h" (hashing network).

    Args:
        generator: [z, y] -> image in `data_range`.
        discriminator: x -> [real/synthetic logit (batch, 1), label logits (batch, C)].
        hasher: x -> [h (batch, q) in (0, 1), class logits (batch, C), adversary logit (batch, 1)].
        margin: m of the triplet loss; default q / 4 (codes h live in [0, 1]^q,
            so ||h_q - h_-||^2 <= q: the default asks a negative to differ from
            the query in a quarter of the bits more than the positive does).
        class_weight, adversary_weight: weights of H's classification and
            adversary streams (the paper sums the three losses: 1 and 1).
        triplet_weight: weight of the triplet loss (1, the paper's); 0 trains
            the hash layer through the classification stream only (the
            "classification only" baseline of the paper's comparison).
        synthetic_triplets: False trains H on real triplets only (the ablation).
        diversity_weight: weight of a mode-seeking term in G's losses (0: the
            paper's losses; see the module docstring).
        multi_label: sigmoid classification for multi-label data (NUS-WIDE);
            softmax for single-label data (CIFAR-10).
        phase: "pretrain" or "hash" (see the module docstring).
        r1_gamma: R1 penalty gamma/2 E||grad_x l(x)||^2 of D's real/synthetic
            logit on real images, added to D's loss (Mescheder et al. 2018); 0: none.
        diff_augment: DiffAugment policy (Zhao et al. 2020) for D's inputs in
            pre-training, e.g. "color,translation,cutout"; None: none.
        ema_decay, ema_start, ema_warmup: a moving average of G's weights for
            sampling (`zoo.core.ema`); None: none.
        hash_augment: augmentation policy (`zoo.models.augment`) of H's
            training images in the hash phase, e.g. "translation,flip"; None: none.

    Example:
        >>> model = DSHGAN.build_default((32, 32, 3), num_classes=10, code_length=48)
        >>> model.compile()
        >>> model.phase = "pretrain"; model.fit(semi_supervised_ds, epochs=5)
        >>> model.phase = "hash"; model.fit(semi_supervised_ds, epochs=5)
        >>> codes = model.hash(images)          # (n, 6) uint8, packed bits
    """

    players = {"g": ("generator",), "d": ("discriminator",), "h": ("hasher",)}
    averaged_networks = ("generator",)
    config_attributes = ("margin", "class_weight", "adversary_weight", "triplet_weight", "synthetic_triplets", "multi_label",
                         "latent_distribution", "data_range", "phase", "diversity_weight", "seed", "r1_gamma",
                         "diff_augment", "hash_augment")
    label_policy = "required"  # every batch: labels, -1 (or all-zero vectors) for unlabelled images
    display_name = "DSH-GAN"

    def __init__(self, generator, discriminator, hasher, margin=None, class_weight=1.0,
                 adversary_weight=1.0, synthetic_triplets=True, multi_label=False,
                 latent_distribution="normal", data_range=(-1.0, 1.0), phase="pretrain",
                 diversity_weight=0.0, seed=None, r1_gamma=0.0, diff_augment=None,
                 ema_decay=None, ema_start=0, ema_warmup=False, hash_augment=None, triplet_weight=1.0,
                 **kwargs):
        super().__init__(**kwargs)
        if latent_distribution not in LATENT_DISTRIBUTIONS:
            raise ValueError(
                f"latent_distribution must be one of {LATENT_DISTRIBUTIONS}; got {latent_distribution!r}."
            )
        self.generator, self.discriminator, self.hasher = generator, discriminator, hasher
        if len(generator.inputs) != 2:
            raise ValueError("DSH-GAN's generator must be conditional: [z, y] -> x.")
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.num_classes = int(generator.inputs[1].shape[-1])
        self.data_shape = tuple(generator.outputs[0].shape[1:])
        self.code_length = int(hasher.outputs[0].shape[-1])
        for net, label_out in ((discriminator, 1), (hasher, 1)):
            if tuple(net.inputs[0].shape[1:]) != self.data_shape:
                raise ValueError(
                    f"The {net.name} takes inputs of shape {tuple(net.inputs[0].shape[1:])} "
                    f"but the generator makes {self.data_shape}."
                )
            width = int(net.outputs[label_out].shape[-1])
            if width != self.num_classes:
                raise ValueError(
                    f"The {net.name} predicts {width} labels; the generator takes {self.num_classes}."
                )
        self.margin = self.code_length / 4.0 if margin is None else float(margin)
        if self.margin <= 0:
            raise ValueError(f"margin must be positive; got {margin!r}.")
        self.class_weight, self.adversary_weight = float(class_weight), float(adversary_weight)
        self.triplet_weight = float(triplet_weight)
        if not self.triplet_weight >= 0:
            raise ValueError(f"triplet_weight must be >= 0; got {triplet_weight!r}.")
        self.diversity_weight = float(diversity_weight)
        if self.diversity_weight < 0:
            raise ValueError(f"diversity_weight must be >= 0; got {diversity_weight!r}.")
        self.synthetic_triplets, self.multi_label = bool(synthetic_triplets), bool(multi_label)
        self.latent_distribution = latent_distribution
        self.data_range = tuple(float(v) for v in data_range)
        self.seed = seed
        self.phase = phase

        self.seed_generator = keras.random.SeedGenerator(seed)
        self.r1_gamma = check_r1_gamma(r1_gamma)
        self.diff_augment = augment.check_policy(diff_augment)
        self.hash_augment = augment.check_policy(hash_augment, "hash_augment")
        # Each phase logs its own values; the real-only ablation has no G or adversary in the hash phase.
        hash_logs = ["loss", "h_loss", "triplet_loss", "class_loss"]  # loss: H's, this phase's objective
        if self.synthetic_triplets:
            hash_logs += ["adversary_loss", "H_x", "H_G_z", "g_loss"]
        self.init_logs({"pretrain": ["d_loss", "g_loss", "D_x", "D_G_z"] + ["r1"] * bool(self.r1_gamma),
                        "hash": hash_logs})
        self.init_ema(ema_decay, ema_start, ema_warmup)
        self.built = True

    @classmethod
    def build_default(cls, image_shape=(32, 32, 3), num_classes=10, code_length=48,
                      latent_dim=100, g_width=64, d_width=64, h_width=32, spectral_norm=False,
                      hasher="vgg", hasher_norm="group", backbone="ResNet50", backbone_weights=None,
                      backbone_kwargs=None, **kwargs):
        """DCGAN generator and discriminator and a hashing net, all sized by image shape.
        `spectral_norm`: D's layers spectrally normalised (Miyato et al. 2018).
        `hasher`: "vgg" (`blocks.hashing_network`), "resnet"
        (`blocks.resnet_hashing_network`, with `hasher_norm` "group" or "batch") or
        "application": a keras.applications `backbone` with `backbone_weights`
        ("imagenet", a weights file, or None; `blocks.application_hashing_network`)."""
        if hasher == "application":
            h_net = blocks.application_hashing_network(image_shape, code_length, num_classes, backbone,
                                                       backbone_weights, backbone_kwargs=backbone_kwargs)
        elif hasher == "vgg":
            h_net = blocks.hashing_network(image_shape, code_length, num_classes, h_width)
        elif hasher == "resnet":
            h_net = blocks.resnet_hashing_network(image_shape, code_length, num_classes, h_width,
                                                  norm=hasher_norm)
        else:
            raise ValueError(f'hasher must be "vgg", "resnet" or "application"; got {hasher!r}.')
        return cls(
            blocks.dcgan_generator(image_shape, latent_dim, g_width, num_classes),
            blocks.semi_supervised_discriminator(image_shape, num_classes, d_width, spectral_norm),
            h_net,
            **kwargs,
        )

    @property
    def phase(self):
        return self._phase

    @phase.setter
    def phase(self, value):
        if value not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}; got {value!r}.")
        self._phase = value
        # The phase is read when a step is traced: retrace on the next fit.
        keras_internals.forget_compiled_steps(self)

    # -- sampling labels, latents and triplets ----------------------------------
    def random_labels(self, n):
        """One class per row, uniformly: labels for synthetic images of unlabelled rows."""
        c = self.noise(keras.random.randint, (n,), minval=0, maxval=self.num_classes)
        return ops.one_hot(c, self.num_classes)

    def negative_labels(self, y):
        """y' sharing no label with y: one class drawn uniformly among those not in y.

        Uniform scores minus 2 on y's classes put every class of y below every
        other class, so the argmax is a class outside y whenever one exists (a
        row holding every label has no negative; `valid_negatives` masks it).
        """
        return negatives_of(y, self.noise(keras.random.uniform, ops.shape(y)))

    @staticmethod
    def valid_negatives(y, y_neg):
        return ops.cast(ops.sum(y * y_neg, axis=-1) == 0, "float32")

    def real_triplets(self, y):
        """Indices of a real positive and a real negative for each row of the batch
        (the ablation without the generator), drawn uniformly among the labelled
        images that share (or share no) label with the row; `valid` masks rows
        without such a pair, and unlabelled rows."""
        n = ops.shape(y)[0]
        labelled = has_labels(y)
        both = labelled[:, None] * labelled[None, :]
        similar = ops.cast(ops.matmul(y, ops.transpose(y)) > 0, "float32")
        pos_ok = similar * (1.0 - ops.eye(n)) * both
        neg_ok = (1.0 - similar) * both
        scores = self.noise(keras.random.uniform, (n, n))
        pos = ops.argmax(ops.where(pos_ok > 0, scores, -1.0), axis=1)
        neg = ops.argmax(ops.where(neg_ok > 0, scores, -1.0), axis=1)
        valid = ops.cast(ops.max(pos_ok, axis=1) > 0, "float32") * ops.cast(
            ops.max(neg_ok, axis=1) > 0, "float32"
        )
        return pos, neg, valid

    def _g(self, z, y, training, network=None):
        return (network or self.generator)([z, y], training=training)

    def call(self, inputs, training=False):
        """G(z, y)."""
        return self.generator(inputs, training=training)

    # -- phase 1: the semi-supervised conditional GAN ------------------------------
    def discriminator_loss(self, x, y, fake, training=True):
        """D: real vs synthetic, and the labels of real images (zeros if unlabelled)."""
        loss, (d_x, d_g_z, _) = self.discriminator_terms(x, y, fake, training)
        return loss, (d_x, d_g_z)

    def discriminator_terms(self, x, y, fake, training=True):
        """(D's loss [+ R1], (D_x, D_G_z, R1)); in training DiffAugment (if any)
        before D and R1 (if any) on the real/synthetic logit of real images."""
        m = ops.shape(x)[0]
        params = None  # real and fake rows drawn separately (one global draw each under tf.distribute)
        if training and self.diff_augment:
            params = augment.concat_params(self.augment_params(m), self.augment_params(ops.shape(fake)[0]))

        def logits_of(x_real):
            both = ops.concatenate([x_real, fake], 0)
            if params is not None:
                both = augment.apply(self.diff_augment, both, params)
            adv, label_logits = self.discriminator(both, training=training)
            return adv[:m], (adv, label_logits)

        r1 = ops.zeros(())
        if self.r1_gamma and training:
            _, (adv, label_logits), grad = backend.input_gradient(logits_of, x, has_aux=True)
            r1 = r1_penalty(grad, self.r1_gamma)
        else:
            _, (adv, label_logits) = logits_of(x)
        real, synthetic = adv[:m], adv[m:]
        label_loss = ops.mean(sigmoid_label_loss(label_logits[:m], y))
        aux = (ops.mean(ops.sigmoid(real)), ops.mean(ops.sigmoid(synthetic)), r1)
        return discriminator_cost(real, synthetic) + label_loss + r1, aux

    def augment_params(self, n):
        """DiffAugment's random parameters for n images from the model's noise (None if off)."""
        if not self.diff_augment:
            return None
        return augment.sample(self.diff_augment, n, self.data_shape, self.noise)

    def generator_pretrain_loss(self, z, y_syn, training=True):
        """G: images that D takes as real and labels as y (non-saturating); with
        `diversity_weight`, rows i and i + m//2 share a label and form the
        mode-seeking pairs (see `paired_labels`)."""
        fake = self._g(z, y_syn, training)
        params = self.augment_params(ops.shape(z)[0]) if training else None
        seen = fake if params is None else augment.apply(self.diff_augment, fake, params)
        adv, label_logits = self.discriminator(seen, training=training)
        loss = generator_cost(adv, "non_saturating") + ops.mean(sigmoid_label_loss(label_logits, y_syn))
        if self.diversity_weight:
            h = ops.shape(z)[0] // 2
            loss = loss + self.diversity_weight * mode_seeking_loss(
                float32(fake[:h]), float32(fake[h : 2 * h]), z[:h], z[h : 2 * h]
            )
        return loss, ()

    @staticmethod
    def paired_labels(y):
        """Rows i and i + m//2 with the same labels (the first half's), for mode seeking."""
        h = ops.shape(y)[0] // 2
        return ops.concatenate([y[:h], y[:h], y[2 * h :]], 0)

    # -- phase 2: hashing on triplets -----------------------------------------------
    def class_loss(self, logits, y):
        if self.multi_label:
            return sigmoid_label_loss(logits, y)
        return softmax_label_loss(logits, y)

    def hashing_loss(self, x, y, x_pos, y_pos, x_neg, y_neg, training=True):
        """H's loss on synthetic triplets (x, x_+, x_-): triplet + classification + adversary."""
        m = ops.shape(x)[0]
        images = self.augment_hash_inputs(ops.concatenate([x, x_pos, x_neg], 0), training)
        h, logits, adv = self.hasher(images, training=training)
        h_q, h_pos, h_neg = h[:m], h[m : 2 * m], h[2 * m :]
        labelled = has_labels(y)
        trip = masked_mean(
            triplet_loss(h_q, h_pos, h_neg, self.margin),
            labelled * self.valid_negatives(y, y_neg),
        )
        per_image = self.class_loss(logits, ops.concatenate([y, y_pos, y_neg], 0))
        weights = ops.concatenate([labelled, ops.ones((2 * m,))], 0)
        cls = masked_mean(per_image, weights)
        real, synthetic = adv[:m], adv[m:]
        adv_loss = discriminator_cost(real, synthetic)
        total = self.triplet_weight * trip + self.class_weight * cls + self.adversary_weight * adv_loss
        aux = (trip, cls, adv_loss, ops.mean(ops.sigmoid(real)), ops.mean(ops.sigmoid(synthetic)))
        return total, aux

    def augment_hash_inputs(self, x, training):
        """H's training images under `hash_augment` (each its own draw); x as is otherwise."""
        if not (training and self.hash_augment):
            return x
        params = augment.sample(self.hash_augment, ops.shape(x)[0], self.data_shape, self.noise)
        return augment.apply(self.hash_augment, x, params)

    def real_hashing_loss(self, x, y, pos, neg, valid, training=True):
        """The ablation: triplets of real labelled images; no adversary stream."""
        h, logits, _ = self.hasher(self.augment_hash_inputs(x, training), training=training)
        trip = masked_mean(
            triplet_loss(h, ops.take(h, pos, axis=0), ops.take(h, neg, axis=0), self.margin), valid
        )
        cls = masked_mean(self.class_loss(logits, y), has_labels(y))
        zero = ops.zeros(())
        return self.triplet_weight * trip + self.class_weight * cls, (trip, cls, zero, zero, zero)

    def generator_hash_loss(self, z_pos, y_pos, z_neg, y_neg, training=True, z_div=None):
        """G against H's adversary stream, over the triplet's synthetic images, with
        H's classification of them as y (so the positives keep their labels). With
        `diversity_weight`, G(z_div, y_pos) pairs with the positives for the mode-seeking term."""
        m = ops.shape(z_pos)[0]
        zs, ys = [z_pos, z_neg], [y_pos, y_neg]
        if self.diversity_weight:
            zs, ys = zs + [z_div], ys + [y_pos]
        images = self._g(ops.concatenate(zs, 0), ops.concatenate(ys, 0), training)  # one pass of G
        _, logits, adv = self.hasher(images[: 2 * m], training=training)
        loss = generator_cost(adv, "non_saturating") + self.class_weight * ops.mean(
            self.class_loss(logits, ops.concatenate([y_pos, y_neg], 0))
        )
        if self.diversity_weight:
            loss = loss + self.diversity_weight * mode_seeking_loss(
                float32(images[:m]), float32(images[2 * m :]), z_pos, z_div
            )
        return loss, ()

    # -- the steps ---------------------------------------------------------------------
    def train_step(self, data):
        x, y = self._unpack(data)
        if self.phase == "pretrain":
            return self._pretrain_step(x, y)
        return self._hash_step(x, y, update=True)

    def test_step(self, data):
        x, y = self._unpack(data)
        if self.phase == "pretrain":
            m = ops.shape(x)[0]
            y_syn = self._synthetic_labels(y)
            fake = self._g(self.sample_latent(m), y_syn, training=False)
            d_loss, (d_x, d_g_z) = self.discriminator_loss(x, y, fake, training=False)
            y_g = self.paired_labels(y_syn) if self.diversity_weight else y_syn
            g_loss, _ = self.generator_pretrain_loss(self.sample_latent(m), y_g, training=False)
            return self.track(d_loss=d_loss, g_loss=g_loss, D_x=d_x, D_G_z=d_g_z)
        return self._hash_step(x, y, update=False)

    def _synthetic_labels(self, y):
        """The labels of each row's synthetic image: its own, or random if unlabelled."""
        return ops.where(has_labels(y)[:, None] > 0, y, self.random_labels(ops.shape(y)[0]))

    def _pretrain_step(self, x, y):
        m = ops.shape(x)[0]
        y_syn = self._synthetic_labels(y)
        fake = ops.stop_gradient(self._g(self.sample_latent(m), y_syn, training=True))
        d_loss, (d_x, d_g_z, r1) = self.update("d", lambda: self.discriminator_terms(x, y, fake))
        z = self.sample_latent(m)
        if self.diversity_weight:
            y_syn = self.paired_labels(y_syn)
        g_loss, _ = self.update("g", lambda: self.generator_pretrain_loss(z, y_syn))
        extra = {"r1": r1} if self.r1_gamma else {}
        return self.track(d_loss=d_loss, g_loss=g_loss, D_x=d_x, D_G_z=d_g_z, **extra)

    def _hash_step(self, x, y, update):
        step = self.update if update else (lambda player, fn: fn())
        if not self.synthetic_triplets:
            pos, neg, valid = self.real_triplets(y)
            h_loss, aux = step("h", lambda: self.real_hashing_loss(x, y, pos, neg, valid, update))
            return self._track_hash(h_loss, aux)
        m = ops.shape(x)[0]
        y_pos = self._synthetic_labels(y)
        y_neg = self.negative_labels(y_pos)
        z_pos, z_neg = self.sample_latent(m), self.sample_latent(m)
        x_pos = ops.stop_gradient(self._g(z_pos, y_pos, training=update))
        x_neg = ops.stop_gradient(self._g(z_neg, y_neg, training=update))
        h_loss, aux = step(
            "h", lambda: self.hashing_loss(x, y, x_pos, y_pos, x_neg, y_neg, training=update)
        )
        z_div = self.sample_latent(m) if self.diversity_weight else None
        g_loss, _ = step(
            "g", lambda: self.generator_hash_loss(z_pos, y_pos, z_neg, y_neg, update, z_div)
        )
        return self._track_hash(h_loss, aux, g_loss)

    def _track_hash(self, h_loss, aux, g_loss=None):
        trip, cls, adv, h_x, h_g_z = aux
        values = {"loss": h_loss, "h_loss": h_loss, "triplet_loss": trip, "class_loss": cls}
        if self.synthetic_triplets:
            values.update(adversary_loss=adv, H_x=h_x, H_G_z=h_g_z, g_loss=g_loss)
        return self.track(**values)

    def missing_labels_message(self):
        return ("DSH-GAN trains on (images, labels); mark unlabelled images with label -1 "
                "(integer labels) or an all-zero label vector.")

    def label_vectors(self, y):
        """Integer labels (-1 = unlabelled) -> one-hot rows (all-zero if unlabelled);
        label vectors pass through as float."""
        if len(y.shape) == 1:
            y = ops.cast(y, "int32")
            classes = ops.arange(self.num_classes, dtype="int32")
            return ops.cast(ops.equal(y[:, None], classes[None, :]), "float32")
        return ops.cast(y, "float32")

    # -- hashing -------------------------------------------------------------------------
    def hash_scores(self, images, batch_size=256):
        """The relaxed codes h in (0, 1), (n, q) float32. Images: uint8 or floats in [0, 1]."""
        x = images_to_model(images, self.data_shape, self.data_range)
        return in_batches(lambda b: self.hasher(b, training=False)[0], [x], batch_size)

    def hash_scores_tensor(self, x):
        return self.hasher(x, training=False)[0]

    def hash(self, images, packed=True, batch_size=256):
        """Binary codes b = 1[h > 0.5]: packed (n, ceil(q/8)) uint8, bit i of a code
        at byte i // 8, most significant bit first (numpy.packbits), pad bits 0;
        or, with `packed=False`, (n, q) uint8 of 0s and 1s."""
        bits = (self.hash_scores(images, batch_size) > 0.5).astype("uint8")
        return np.packbits(bits, axis=1) if packed else bits

    def classify(self, images, batch_size=256):
        """Class probabilities from the classification stream (softmax or sigmoid)."""
        x = images_to_model(images, self.data_shape, self.data_range)
        logits = in_batches(lambda b: self.hasher(b, training=False)[1], [x], batch_size)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def make_triplets(self, labels, seed=None):
        """Synthetic positives and negatives for queries with these labels:
        (positives, negatives, negative_labels), images in [0, 1], labels as vectors."""
        labels = np.asarray(labels)
        y = self._check_labels(labels, 1 if labels.ndim == 0 else len(labels))
        rng = np.random.default_rng(seed)
        u = rng.uniform(size=y.shape).astype("float32")
        y_neg = ops.convert_to_numpy(negatives_of(ops.convert_to_tensor(y), ops.convert_to_tensor(u)))
        n = len(y)
        pos = self.generate(n, seed=rng.integers(2**31), labels=y)
        neg = self.generate(n, seed=rng.integers(2**31), labels=y_neg)
        return pos, neg, y_neg

    # -- input checks -----------------------------------------------------------------------
    def check_labels(self, y):
        if y.ndim == 1:
            if not np.all(np.equal(np.mod(y, 1), 0)):
                raise ValueError(f"Integer class labels expected; got dtype {y.dtype}.")
            if y.size and (y.min() < -1 or y.max() >= self.num_classes):
                raise ValueError(
                    f"Class labels must be in [0, {self.num_classes}) or -1 (unlabelled); "
                    f"got range [{y.min()}, {y.max()}]."
                )
            return
        if y.ndim != 2 or y.shape[-1] != self.num_classes:
            raise ValueError(
                f"Labels must be integers (batch,) or vectors (batch, {self.num_classes}); "
                f"got shape {y.shape}."
            )
        if not np.all((y == 0) | (y == 1)):
            raise ValueError("Label vectors must hold only 0s and 1s.")
        if not self.multi_label and np.any(y.sum(axis=1) > 1):
            raise ValueError(
                "Some label vectors have several labels, but the model is single-label: "
                "build it with multi_label=True."
            )
