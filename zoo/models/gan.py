"""Generative Adversarial Nets (Goodfellow et al., NeurIPS 2014).

Two players: a generator G(z) with z ~ p(z), and a discriminator D(x) in (0, 1),
here computed from its logit l(x) so that log D = -softplus(-l) and
log(1 - D) = -softplus(l) never overflow.

    J_D = -1/2 E_x[log D(x)] - 1/2 E_z[log(1 - D(G(z)))]
    minimax:         J_G = -J_D, i.e. G minimises 1/2 E_z[log(1 - D(G(z)))]
    non-saturating:  J_G = -1/2 E_z[log D(G(z))]

Algorithm 1 takes k discriminator steps per generator step, each on a fresh
minibatch; here a batch of k*m real examples feeds k D-steps of m (every k-th
example), so one epoch is still one pass over the data.

With `num_classes`, both players are conditional: G(z, y) and D(x, y).

The training toolkit of later GANs, each off by default (old presets load as
they were):

    hinge (Lim & Ye 2017; Miyato et al. 2018), gan_loss="hinge":
                     J_D = E_x[max(0, 1 - l(x))] + E_z[max(0, 1 + l(G(z)))]
                     J_G = -E_z[l(G(z))]
    R1 (Mescheder et al. 2018), r1_gamma=gamma: J_D + gamma/2 E_x||grad_x l(x)||^2
    DiffAugment (Zhao et al. 2020), diff_augment="color,translation,cutout":
                     D sees T(x) and T(G(z)), T random and differentiable
    EMA of G's weights (Yazici et al. 2019; Karras et al. 2018), ema_decay:
                     generate() samples the average (zoo.core.ema)
    spectral norm (Miyato et al. 2018) of D's layers: GAN.dcgan(spectral_norm=True)
    TTUR (Heusel et al. 2017): one optimizer per player, so two learning rates,
                     compile(d_optimizer=Adam(4e-4, 0.0, 0.9), g_optimizer=Adam(1e-4, 0.0, 0.9))
"""

import keras
from keras import ops

from zoo.core import AdversarialModel
from zoo.core import backend
from zoo.models import augment, blocks
from zoo.models.capabilities import LATENT_DISTRIBUTIONS, NetworkGenerator, check_int_labels
from zoo.models.common import float32

GAN_LOSSES = ("minimax", "non_saturating", "hinge")


def gan_loss_argument(gan_loss, generator_loss=None):
    """`gan_loss`, or its old name `generator_loss` (presets saved before the rename
    carry it), checked."""
    if generator_loss is not None:
        if gan_loss not in (None, generator_loss):
            raise ValueError(f"gan_loss={gan_loss!r} and its old name generator_loss={generator_loss!r} disagree.")
        gan_loss = generator_loss
    gan_loss = "non_saturating" if gan_loss is None else gan_loss
    if gan_loss not in GAN_LOSSES:
        raise ValueError(f"gan_loss must be one of {GAN_LOSSES}; got {gan_loss!r}.")
    return gan_loss


# ---------------------------------------------------------------------------
# The costs, as functions of D's logits
# ---------------------------------------------------------------------------
def log_d(logits):
    """log D(x) = log sigmoid(l)."""
    return -ops.softplus(-float32(logits))


def log_one_minus_d(logits):
    """log(1 - D(x)) = log sigmoid(-l)."""
    return -ops.softplus(float32(logits))


def discriminator_cost(real_logits, fake_logits, kind="non_saturating"):
    """J_D = -1/2 E_x[log D(x)] - 1/2 E_z[log(1 - D(G(z)))] (minimax and
    non-saturating games); for kind "hinge", `hinge_discriminator_cost`."""
    if kind == "hinge":
        return hinge_discriminator_cost(real_logits, fake_logits)
    return -0.5 * ops.mean(log_d(real_logits)) - 0.5 * ops.mean(
        log_one_minus_d(fake_logits)
    )


def hinge_discriminator_cost(real_logits, fake_logits):
    """D's hinge loss (Lim & Ye 2017; Miyato et al. 2018):
    E_x[max(0, 1 - l(x))] + E_z[max(0, 1 + l(G(z)))]; 2 at l = 0, 0 once real
    logits are >= 1 and fake ones <= -1."""
    return ops.mean(ops.relu(1.0 - float32(real_logits))) + ops.mean(ops.relu(1.0 + float32(fake_logits)))


def generator_cost(fake_logits, kind="non_saturating"):
    """J_G, minimax (1/2 E log(1 - D(G(z)))), non-saturating (-1/2 E log D(G(z)))
    or hinge (-E l(G(z)), the logit itself)."""
    if kind == "minimax":
        return 0.5 * ops.mean(log_one_minus_d(fake_logits))
    if kind == "non_saturating":
        return -0.5 * ops.mean(log_d(fake_logits))
    if kind == "hinge":
        return -ops.mean(float32(fake_logits))
    raise ValueError(f"gan_loss must be one of {GAN_LOSSES}; got {kind!r}.")


def r1_penalty(grad, gamma):
    """R1 (Mescheder et al. 2018): gamma/2 E_x ||grad_x l(x)||^2, from the
    per-example input gradients of D's logit on real data (batch first)."""
    g = float32(grad)
    per_example = ops.sum(ops.reshape(ops.square(g), (ops.shape(g)[0], -1)), axis=-1)
    return 0.5 * gamma * ops.mean(per_example)


def check_r1_gamma(r1_gamma):
    r1_gamma = float(r1_gamma or 0.0)
    if not r1_gamma >= 0.0:
        raise ValueError(f"r1_gamma must be >= 0 (0: no penalty); got {r1_gamma!r}.")
    return r1_gamma


def value_function(real_logits, fake_logits):
    """V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))] = -2 J_D; its minimum over G is -log 4."""
    return -2.0 * discriminator_cost(real_logits, fake_logits)


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="zoo")
class GAN(NetworkGenerator, AdversarialModel):
    """A GAN with players "d" (discriminator) and "g" (generator).

    Args:
        generator: keras Model, z -> x, or [z, y] -> x when conditional.
        discriminator: keras Model, x -> logit, or [x, y] -> logit; shape (batch, 1).
        gan_loss: the game's losses: "non_saturating" (the one used in
            practice) or "minimax" (both with D's logistic loss), or "hinge"
            (Lim & Ye 2017; Miyato et al. 2018: D's hinge loss, J_G = -E l(G(z))).
        d_steps: k, discriminator steps per generator step.
        latent_distribution: "normal" N(0, I) or "uniform" U(-sqrt 3, sqrt 3)
            (unit variance, the paper's code draws uniform noise).
        data_range: (low, high) of real data and of G's output, or None for
            unbounded data (toy problems). (-1, 1) for tanh generators.
        seed: seed of the noise used in training.
        r1_gamma: gamma of the R1 penalty gamma/2 E_x||grad_x l(x)||^2 on real
            data added to D's loss (Mescheder et al., "Which Training Methods for
            GANs do actually Converge?", 2018); 0: none. Logged as "r1".
        diff_augment: DiffAugment policy (Zhao et al. 2020), a comma-separated
            subset of "color,translation,cutout" applied to D's real and fake
            inputs in training (`zoo.models.augment`); None: none.
        ema_decay: keep an exponential moving average of G's weights with this
            decay (e.g. 0.999; Yazici et al. 2019, Karras et al. 2018), which
            `generate()` samples; None: none. `ema_start`: steps before the
            average starts (a copy until then); `ema_warmup`: the decay ramps as
            min(ema_decay, (1 + t) / (10 + t)). See `zoo.core.ema`.

    Two learning rates (TTUR, Heusel et al. 2017) need nothing more: each player
    has its own optimizer, `compile(d_optimizer=keras.optimizers.Adam(4e-4, 0.0,
    0.9), g_optimizer=keras.optimizers.Adam(1e-4, 0.0, 0.9))`.

    Example:
        >>> gan = GAN.dcgan((28, 28, 1))
        >>> gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, 0.5),
        ...             g_optimizer=keras.optimizers.Adam(2e-4, 0.5))
        >>> gan.fit(zoo.data.load("mnist.npz", batch_size=64), epochs=5)
        >>> images = gan.generate(64, seed=0)   # (64, 28, 28, 1) in [0, 1]
    """

    players = {"d": ("discriminator",), "g": ("generator",)}
    averaged_networks = ("generator",)
    config_attributes = ("gan_loss", "d_steps", "latent_distribution", "data_range", "seed", "r1_gamma",
                         "diff_augment")
    label_policy = "conditional"

    def __init__(
        self,
        generator,
        discriminator,
        gan_loss=None,
        d_steps=1,
        latent_distribution="normal",
        data_range=(-1.0, 1.0),
        seed=None,
        r1_gamma=0.0,
        diff_augment=None,
        ema_decay=None,
        ema_start=0,
        ema_warmup=False,
        generator_loss=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        gan_loss = gan_loss_argument(gan_loss, generator_loss)
        if int(d_steps) != d_steps or d_steps < 1:
            raise ValueError(f"d_steps must be a positive integer; got {d_steps!r}.")
        if latent_distribution not in LATENT_DISTRIBUTIONS:
            raise ValueError(
                f"latent_distribution must be one of {LATENT_DISTRIBUTIONS}; "
                f"got {latent_distribution!r}."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.gan_loss = gan_loss
        self.d_steps = int(d_steps)
        self.latent_distribution = latent_distribution
        self.data_range = None if data_range is None else tuple(float(v) for v in data_range)
        self.seed = seed

        g_inputs = generator.inputs
        self.latent_dim = int(g_inputs[0].shape[-1])
        self.num_classes = int(g_inputs[1].shape[-1]) if len(g_inputs) > 1 else None
        self.data_shape = tuple(generator.outputs[0].shape[1:])
        d_inputs = discriminator.inputs
        if tuple(d_inputs[0].shape[1:]) != self.data_shape:
            raise ValueError(
                f"The discriminator takes inputs of shape {tuple(d_inputs[0].shape[1:])} "
                f"but the generator makes {self.data_shape}."
            )
        if (len(d_inputs) > 1) != (self.num_classes is not None):
            raise ValueError(
                "Generator and discriminator must both be conditional (take labels "
                "y as a second input) or both unconditional."
            )

        self.seed_generator = keras.random.SeedGenerator(seed)
        self.r1_gamma = check_r1_gamma(r1_gamma)
        self.diff_augment = augment.check_policy(diff_augment)
        if self.diff_augment and len(self.data_shape) != 3:
            raise ValueError(
                f"diff_augment transforms images (h, w, c); this GAN's data has shape {self.data_shape}."
            )
        # D_x, D_G_z: mean D(x) on real data and D(G(z)) on samples.
        self.init_logs(["d_loss", "g_loss", "D_x", "D_G_z"] + ["r1"] * bool(self.r1_gamma))
        self.init_ema(ema_decay, ema_start, ema_warmup)
        self.built = True

    # -- architectures ---------------------------------------------------------
    @classmethod
    def paper_mlp(cls, image_shape=(28, 28, 1), latent_dim=100, num_classes=None, **kwargs):
        """The paper's MNIST model: ReLU MLP generator with sigmoid output, maxout
        discriminator with dropout, uniform noise, pixels in [0, 1]."""
        kwargs.setdefault("latent_distribution", "uniform")
        kwargs.setdefault("data_range", (0.0, 1.0))
        return cls(
            blocks.mlp_generator(image_shape, latent_dim, num_classes=num_classes),
            blocks.maxout_discriminator(image_shape, num_classes=num_classes),
            **kwargs,
        )

    @classmethod
    def dcgan(cls, image_shape=(28, 28, 1), latent_dim=100, width=64, num_classes=None,
              spectral_norm=False, **kwargs):
        """DCGAN-style convolutional GAN sized by image shape; pixels in [-1, 1].
        `spectral_norm`: D's layers spectrally normalised (Miyato et al. 2018)."""
        return cls(
            blocks.dcgan_generator(image_shape, latent_dim, width, num_classes),
            blocks.dcgan_discriminator(image_shape, width, num_classes, spectral_norm=spectral_norm),
            **kwargs,
        )

    # -- the players -------------------------------------------------------------
    def _g(self, z, y, training, network=None):
        return (network or self.generator)(z if y is None else [z, y], training=training)

    def _d(self, x, y, training):
        return self.discriminator(x if y is None else [x, y], training=training)

    def call(self, inputs, training=False):
        """G(z) or G(z, y): latent codes to data (in `data_range`)."""
        return self.generator(inputs, training=training)

    def discriminator_loss(self, x, fake, y=None, training=True):
        """J_D on a batch of real `x` and generated `fake` (one D call on both),
        plus the R1 penalty in training if `r1_gamma`."""
        loss, (d_x, d_g_z, _) = self.discriminator_terms(x, fake, y, training)
        return loss, (d_x, d_g_z)

    def discriminator_terms(self, x, fake, y=None, training=True):
        """(J_D [+ R1], (D_x, D_G_z, R1)). In training, DiffAugment (if any)
        transforms real and fake images before D, and R1 is the gradient norm of
        D's logit on the (augmented) real images with respect to the real images."""
        m = ops.shape(x)[0]
        y_both = None if y is None else ops.concatenate([y, y], axis=0)
        # Real and fake rows draw separately: under tf.distribute each draw is
        # one global draw split over the replicas, as the batch is.
        params = None
        if training and self.diff_augment:
            params = augment.concat_params(self.augment_params(m), self.augment_params(ops.shape(fake)[0]))

        def logits_of(x_real):
            both = self.augmented(ops.concatenate([x_real, fake], axis=0), params)
            logits = self._d(both, y_both, training)
            return logits[:m], logits

        r1 = ops.zeros(())
        if self.r1_gamma and training:
            _, logits, grad = backend.input_gradient(logits_of, x, has_aux=True)
            r1 = r1_penalty(grad, self.r1_gamma)
        else:
            _, logits = logits_of(x)
        real_logits, fake_logits = logits[:m], logits[m:]
        d_x = ops.mean(ops.sigmoid(real_logits))
        d_g_z = ops.mean(ops.sigmoid(fake_logits))
        cost = discriminator_cost(real_logits, fake_logits, self.gan_loss)
        return cost + r1, (d_x, d_g_z, r1)

    def generator_loss(self, z, y=None, training=True):
        """J_G of the chosen kind, through D (D's weights are not updated)."""
        fake = self._g(z, y, training)
        if training:
            fake = self.augmented(fake, self.augment_params(ops.shape(z)[0]))
        fake_logits = self._d(fake, y, training)
        return generator_cost(fake_logits, self.gan_loss), ()

    # -- DiffAugment -----------------------------------------------------------------
    def augment_params(self, n):
        """DiffAugment's random parameters for n images from the model's noise (None if off)."""
        if not self.diff_augment:
            return None
        return augment.sample(self.diff_augment, n, self.data_shape, self.noise)

    def augmented(self, images, params):
        """DiffAugment applied to `images` with `params` (unchanged if None)."""
        return images if params is None else augment.apply(self.diff_augment, images, params)

    # -- Algorithm 1 ---------------------------------------------------------------
    def train_step(self, data):
        x, y = self._unpack(data)
        k = self.d_steps
        for i in range(k):
            # A fresh real minibatch for each D-step: every k-th example.
            x_i, y_i = (x, y) if k == 1 else _every_kth((x, y), i, k)
            z = self.sample_latent(ops.shape(x_i)[0])
            fake = ops.stop_gradient(self._g(z, y_i, training=True))
            d_loss, (d_x, d_g_z, r1) = self.update(
                "d", lambda x_i=x_i, fake=fake, y_i=y_i: self.discriminator_terms(x_i, fake, y_i)
            )
        z = self.sample_latent(ops.shape(x_i)[0])
        g_loss, _ = self.update("g", lambda: self.generator_loss(z, y_i))
        extra = {"r1": r1} if self.r1_gamma else {}
        return self.track(d_loss=d_loss, g_loss=g_loss, D_x=d_x, D_G_z=d_g_z, **extra)

    def test_step(self, data):
        x, y = self._unpack(data)
        z = self.sample_latent(ops.shape(x)[0])
        fake = self._g(z, y, training=False)
        d_loss, (d_x, d_g_z) = self.discriminator_loss(x, fake, y, training=False)
        g_loss, _ = self.generator_loss(z, y, training=False)
        return self.track(d_loss=d_loss, g_loss=g_loss, D_x=d_x, D_G_z=d_g_z)

    def label_vectors(self, y):
        """Integer labels (batch,) -> one-hot; label vectors (batch, C) pass as float."""
        if len(y.shape) == 1 or (len(y.shape) == 2 and y.shape[-1] == 1 and self.num_classes != 1):
            return ops.one_hot(ops.reshape(ops.cast(y, "int32"), (-1,)), self.num_classes)
        return ops.cast(y, self.compute_dtype)

    def check_labels(self, y):
        if y.ndim == 1:
            check_int_labels(y, self.num_classes)
        elif y.ndim != 2 or y.shape[-1] != self.num_classes:
            raise ValueError(
                f"Labels must be integers (batch,) or vectors (batch, {self.num_classes}); "
                f"got shape {y.shape}."
            )


def _every_kth(tensors, i, k):
    """Examples i, i+k, i+2k, ... of each tensor (None passes through)."""
    n = ops.shape(tensors[0])[0]
    idx = ops.arange(i, n, k)
    return tuple(None if t is None else ops.take(t, idx, axis=0) for t in tensors)
