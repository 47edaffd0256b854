"""VAE-GAN: Larsen et al., "Autoencoding beyond pixels using a learned similarity metric", ICML 2016.

Three players: an encoder Enc -> q(z|x), a decoder Dec (the GAN's generator) and
a discriminator Dis. The VAE's pixel-wise reconstruction term is replaced by a
Gaussian likelihood in the feature space of Dis's l-th layer:

    L_prior         = KL(q(z|x) || p(z))
    L_llike^Dis_l   = -E_q(z|x)[log N(Dis_l(x) | Dis_l(Dec(z)), I)]
    L_GAN           = log Dis(x) + log(1 - Dis(Dec(z))) + log(1 - Dis(Dec(z_p))),
                      z ~ q(z|x), z_p ~ p(z)

Who learns from what (the heart of the paper):

    Enc  minimises  L_prior + L_llike^Dis_l         (no GAN gradient)
    Dec  minimises  gamma * L_llike^Dis_l - L_GAN
    Dis  maximises  L_GAN                           (no reconstruction gradient)

Each player's gradient is taken from the same state: the encoder's reads the
current Dec and Dis; the decoder's reads the current Dis and the encoder's z;
the discriminator's reads the decoder's images from before its update. So, as in
the authors' code, one pass through the three networks gives all three gradients
(`update_many`; `one_forward=False` makes one pass per player).

The training toolkit (`zoo.models.gan`'s docstring), off by default: hinge losses
(`gan_loss="hinge"`), R1 on Dis's logit of real images (`r1_gamma`),
DiffAugment before Dis (`diff_augment`), a moving average of the decoder's
weights for sampling (`ema_decay`), spectral norm in Dis
(`VAEGAN.larsen(spectral_norm=True)`).
"""

import keras
from keras import ops

from zoo.core import AdversarialModel
from zoo.core import backend
from zoo.models import augment, blocks
from zoo.models.common import float32, gaussian_kl, reparameterize
from zoo.models.gan import check_r1_gamma, gan_loss_argument, log_d, log_one_minus_d, r1_penalty
from zoo.models.vae import LatentImageModel


@keras.saving.register_keras_serializable(package="zoo")
class VAEGAN(LatentImageModel, AdversarialModel):
    """VAE-GAN with players "enc", "dec" and "dis".

    Args:
        encoder: x -> [mu, log_var].
        decoder: z -> x in data_range (tanh).
        discriminator: x -> [logit, Dis_l(x) flattened].
        gamma: weight of L_llike against the GAN term in the decoder's loss.
        reconstruction_fake, prior_fake: which fakes L_GAN discriminates,
            Dec(z) with z ~ q(z|x) and Dec(z_p) with z_p ~ p(z) (both, as the paper).
        gan_loss: "minimax" is the paper's -L_GAN for the decoder;
            "non_saturating" replaces log(1 - Dis(.)) by -log Dis(.) in it (same
            fixed point, stronger gradients early on: the default). "hinge"
            (Lim & Ye 2017; Miyato et al. 2018): Dis minimises
            E max(0, 1 - l(x)) + sum over fakes E max(0, 1 + l(fake)), which
            the logs report as -L_GAN, and Dec's adversarial term is -sum E l(fake).
        equilibrium: None, or (centre, margin) of the authors' code, e.g.
            (0.68, 0.35): Dis is not updated while its cost is below
            centre - margin, Dec not while Dis's cost is above centre + margin.
            Its thresholds are cross-entropies: not with "hinge".
        r1_gamma: R1 penalty gamma/2 E||grad_x l(x)||^2 on real images added to
            Dis's loss (Mescheder et al. 2018). Dis's batch norm mixes the rows,
            so the gradient of the summed logits is each image's own only
            approximately. 0: none.
        diff_augment: DiffAugment policy (Zhao et al. 2020) for Dis's inputs in
            training, e.g. "color,translation,cutout": x and its reconstruction
            Dec(z) get the same transform (so L_llike compares like with like),
            Dec(z_p) its own. None: none.
        ema_decay, ema_start, ema_warmup: a moving average of the decoder's
            weights, used by decode / generate / reconstruct (`zoo.core.ema`).
        one_forward: take the three players' gradients from one pass through the
            networks (`update_many`, as the authors' code); False: one pass per
            player (`update` three times: the same gradients, three times the
            work; batch-norm statistics then move three times a step).
    """

    players = {"enc": ("encoder",), "dec": ("decoder",), "dis": ("discriminator",)}
    label_policy = "refused"
    averaged_networks = ("decoder",)
    config_attributes = ("gamma", "reconstruction_fake", "prior_fake", "gan_loss", "equilibrium", "data_range",
                         "seed", "r1_gamma", "diff_augment", "one_forward")
    display_name = "VAE-GAN"

    def __init__(self, encoder, decoder, discriminator, gamma=1e-3,
                 reconstruction_fake=True, prior_fake=True,
                 gan_loss=None, equilibrium=None,
                 data_range=(-1.0, 1.0), seed=None, r1_gamma=0.0, diff_augment=None,
                 ema_decay=None, ema_start=0, ema_warmup=False, one_forward=True, generator_loss=None, **kwargs):
        super().__init__(**kwargs)
        gan_loss = gan_loss_argument(gan_loss, generator_loss)
        if not (reconstruction_fake or prior_fake):
            raise ValueError("L_GAN needs at least one kind of fake: reconstruction_fake or prior_fake.")
        if gamma < 0:
            raise ValueError(f"gamma must be non-negative; got {gamma}.")
        if equilibrium is not None:
            equilibrium = tuple(float(v) for v in equilibrium)
            if len(equilibrium) != 2 or equilibrium[1] < 0:
                raise ValueError(f"equilibrium must be (centre, margin >= 0); got {equilibrium}.")
            if gan_loss == "hinge":
                raise ValueError(
                    "equilibrium's thresholds are cross-entropies of the logistic loss; "
                    'they do not apply to gan_loss="hinge".'
                )
        if len(discriminator.outputs) != 2:
            raise ValueError("The discriminator must output [logit, Dis_l features].")
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.gamma = float(gamma)
        self.one_forward = bool(one_forward)
        self.reconstruction_fake, self.prior_fake = bool(reconstruction_fake), bool(prior_fake)
        self.gan_loss = gan_loss
        self.equilibrium = equilibrium
        self.data_range = tuple(float(v) for v in data_range)
        self.likelihood = "gaussian"  # of the decoder's output, for LatentImageModel
        self.seed = seed
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        self.data_shape = tuple(encoder.inputs[0].shape[1:])
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.r1_gamma = check_r1_gamma(r1_gamma)
        self.diff_augment = augment.check_policy(diff_augment)
        self.init_logs(["enc_loss", "dec_loss", "dis_loss", "prior", "llike", "gan", "D_x", "D_G_z"]
                       + ["r1"] * bool(self.r1_gamma))
        self.init_ema(ema_decay, ema_start, ema_warmup)
        self.built = True

    @classmethod
    def larsen(cls, image_shape=(28, 28, 1), latent_dim=128, width=1.0, spectral_norm=False, **kwargs):
        """The authors' nets (64x64 CelebA) scaled by image shape; `width`
        multiplies every layer's width (1.0 = the authors'). `spectral_norm`:
        Dis's layers spectrally normalised (Miyato et al. 2018)."""
        return cls(blocks.gaussian_encoder(image_shape, latent_dim, width),
                   blocks.larsen_decoder(image_shape, latent_dim, width=width),
                   blocks.larsen_discriminator(image_shape, width, spectral_norm=spectral_norm), **kwargs)

    # -- the terms of the paper ------------------------------------------------------
    def dis(self, images, training=True, augment_params=None):
        """(logits, Dis_l features) of a list of image batches, in one call;
        `augment_params`: one DiffAugment draw per batch (or None)."""
        if augment_params is not None:
            images = [augment.apply(self.diff_augment, b, p) for b, p in zip(images, augment_params)]
        sizes = [ops.shape(b)[0] for b in images]
        logits, feats = self.discriminator(ops.concatenate(images, axis=0), training=training)
        out, start = [], 0
        for n in sizes:
            out.append((logits[start : start + n], feats[start : start + n]))
            start = start + n
        return out

    def l_prior(self, mu, log_var):
        return ops.mean(gaussian_kl(mu, log_var))

    def l_llike(self, feats_x, feats_rec):
        """-log N(Dis_l(x) | Dis_l(Dec(z)), I) per image, up to its constant; batch mean."""
        feats_x, feats_rec = float32(feats_x, feats_rec)
        return ops.mean(0.5 * ops.sum(ops.square(feats_x - feats_rec), axis=-1))

    def l_gan(self, real_logits, fake_logits):
        """L_GAN = E log Dis(x) + sum over fakes of E log(1 - Dis(fake)); with the
        hinge loss, -(E max(0, 1 - l(x)) + sum over fakes E max(0, 1 + l(fake)))."""
        if self.gan_loss == "hinge":
            real = ops.mean(ops.relu(1.0 - float32(real_logits)))
            return -(real + sum(ops.mean(ops.relu(1.0 + float32(f))) for f in fake_logits))
        return ops.mean(log_d(real_logits)) + sum(ops.mean(log_one_minus_d(f)) for f in fake_logits)

    def fake_logits(self, l_rec, l_p):
        """The logits of the fakes L_GAN discriminates (both kinds by default)."""
        return [l for l, on in ((l_rec, self.reconstruction_fake), (l_p, self.prior_fake)) if on]

    def dis_cost(self, gan):
        """-L_GAN as a mean cross-entropy per term (log 2 at chance): the
        quantity the authors' equilibrium rule compares with 0.68."""
        return -gan / (1.0 + self.reconstruction_fake + self.prior_fake)

    # -- each player's loss ----------------------------------------------------------
    # Dis always sees [x, Dec(z), Dec(z_p)] in one batch, so its batch-norm
    # statistics, and so Dis_l, are the same in all three losses.
    def encoder_loss(self, x, eps, z_p, training=True, augment_params=None):
        """L_prior + L_llike: the only terms whose gradient reaches Enc."""
        mu, log_var = self.encoder(x, training=training)
        z = reparameterize(mu, log_var, eps)
        x_rec, x_p = self.decoder(z, training=training), self.decoder(z_p, training=training)
        (_, f_x), (_, f_rec), _ = self.dis([x, x_rec, x_p], training, augment_params)
        prior, llike = self.l_prior(mu, log_var), self.l_llike(f_x, f_rec)
        return prior + llike, (ops.stop_gradient(z), prior, llike)

    def decoder_loss(self, x, z, z_p, training=True, augment_params=None):
        """gamma * L_llike - L_GAN (minimax), or gamma * L_llike - sum E log Dis(fake)
        (non-saturating), or gamma * L_llike - sum E l(fake) (hinge)."""
        x_rec, x_p = self.decoder(z, training=training), self.decoder(z_p, training=training)
        (l_x, f_x), (l_rec, f_rec), (l_p, _) = self.dis([x, x_rec, x_p], training, augment_params)
        fakes = self.fake_logits(l_rec, l_p)
        llike, gan = self.l_llike(f_x, f_rec), self.l_gan(l_x, fakes)
        aux = (ops.stop_gradient(x_rec), ops.stop_gradient(x_p), gan)
        return self.gamma * llike + self.adversarial_cost(gan, fakes), aux

    def adversarial_cost(self, gan, fake_logits):
        """Dec's adversarial term: -L_GAN (minimax), -sum E log Dis(fake)
        (non-saturating) or -sum E l(fake) (hinge)."""
        if self.gan_loss == "minimax":
            return -gan
        if self.gan_loss == "hinge":
            return -sum(ops.mean(float32(f)) for f in fake_logits)
        return -sum(ops.mean(log_d(f)) for f in fake_logits)

    def discriminator_loss(self, x, x_rec, x_p, training=True, augment_params=None):
        """-L_GAN: Dis maximises L_GAN and nothing else (plus R1 in training)."""
        loss, (gan, d_x, d_g_z, _) = self.discriminator_terms(x, x_rec, x_p, training, augment_params)
        return loss, (gan, d_x, d_g_z)

    def discriminator_terms(self, x, x_rec, x_p, training=True, augment_params=None):
        """(-L_GAN [+ R1], (L_GAN, D_x, D_G_z, R1))."""
        def logits_of(x_real):
            (l_x, _), (l_rec, _), (l_p, _) = self.dis([x_real, x_rec, x_p], training, augment_params)
            return l_x, (l_x, l_rec, l_p)

        r1 = ops.zeros(())
        if self.r1_gamma and training:
            _, (l_x, l_rec, l_p), grad = backend.input_gradient(logits_of, x, has_aux=True)
            r1 = r1_penalty(grad, self.r1_gamma)
        else:
            _, (l_x, l_rec, l_p) = logits_of(x)
        gan = self.l_gan(l_x, self.fake_logits(l_rec, l_p))
        return -gan + r1, (gan, ops.mean(ops.sigmoid(l_x)), ops.mean(ops.sigmoid(l_p)), r1)

    def augment_params(self, n):
        """DiffAugment draws for one step: [x, Dec(z)] share one, Dec(z_p) has its own (None if off)."""
        if not self.diff_augment:
            return None
        pair = augment.sample(self.diff_augment, n, self.data_shape, self.noise)
        prior = augment.sample(self.diff_augment, n, self.data_shape, self.noise)
        return [pair, pair, prior]

    # -- one training step -----------------------------------------------------------
    def player_losses(self, x, eps, z_p, training=True, augment_params=None):
        """The three players' losses from one pass through Enc, Dec (on z and on z_p)
        and Dis (on [x, Dec(z), Dec(z_p)]), as the authors' code takes them: the
        same values as `encoder_loss`, `decoder_loss` and `discriminator_terms`
        at this state (R1, if on, costs one more Dis pass)."""
        mu, log_var = self.encoder(x, training=training)
        z = reparameterize(mu, log_var, eps)
        x_rec, x_p = self.decoder(z, training=training), self.decoder(z_p, training=training)
        (l_x, f_x), (l_rec, f_rec), (l_p, _) = self.dis([x, x_rec, x_p], training, augment_params)
        prior, llike = self.l_prior(mu, log_var), self.l_llike(f_x, f_rec)
        fakes = self.fake_logits(l_rec, l_p)
        gan = self.l_gan(l_x, fakes)
        r1 = ops.zeros(())
        if self.r1_gamma and training:
            fixed = [ops.stop_gradient(x_rec), ops.stop_gradient(x_p)]
            _, _, grad = backend.input_gradient(
                lambda x_real: (self.dis([x_real, *fixed], training, augment_params)[0][0], ()), x, has_aux=True)
            r1 = r1_penalty(grad, self.r1_gamma)
        losses = {"enc": prior + llike, "dec": self.gamma * llike + self.adversarial_cost(gan, fakes),
                  "dis": -gan + r1}
        return losses, (prior, llike, gan, ops.mean(ops.sigmoid(l_x)), ops.mean(ops.sigmoid(l_p)), r1)

    def train_step(self, data):
        x, _ = self._unpack(data)
        n = ops.shape(x)[0]
        eps = self.noise(keras.random.normal, (n, self.latent_dim))
        z_p = self.noise(keras.random.normal, (n, self.latent_dim))
        aug = self.augment_params(n)
        if self.one_forward:
            losses, (prior, llike, gan, d_x, d_g_z, r1) = self.update_many(
                ("enc", "dec", "dis"), lambda: self.player_losses(x, eps, z_p, True, aug),
                gates=self.equilibrium_gates(lambda aux: aux[2], lambda aux: aux[2]))
            enc_loss, dec_loss, dis_loss = losses["enc"], losses["dec"], losses["dis"]
        else:  # three passes, one per player (what this model did before one_forward)
            enc_loss, (z, prior, llike) = self.update("enc", lambda: self.encoder_loss(x, eps, z_p, True, aug))
            gates = self.equilibrium_gates(lambda aux: aux[2], lambda aux: aux[0])
            dec_loss, (x_rec, x_p, _) = self.update(
                "dec", lambda: self.decoder_loss(x, z, z_p, True, aug), gate=gates.get("dec"))
            dis_loss, (gan, d_x, d_g_z, r1) = self.update(
                "dis", lambda: self.discriminator_terms(x, x_rec, x_p, True, aug), gate=gates.get("dis"))
        extra = {"r1": r1} if self.r1_gamma else {}
        return self.track(enc_loss=enc_loss, dec_loss=dec_loss, dis_loss=dis_loss, prior=prior,
                          llike=llike, gan=gan, D_x=d_x, D_G_z=d_g_z, **extra)

    def equilibrium_gates(self, dec_gan, dis_gan):
        """The authors' equilibrium rule as gates on the step's aux ({} without it):
        Dec is not updated while Dis's cost is above centre + margin, Dis not
        while it is below centre - margin. `dec_gan`, `dis_gan`: L_GAN from aux."""
        if self.equilibrium is None:
            return {}
        centre, margin = self.equilibrium
        return {"dec": lambda aux: self.dis_cost(dec_gan(aux)) <= centre + margin,
                "dis": lambda aux: self.dis_cost(dis_gan(aux)) >= centre - margin}

    def test_step(self, data):
        x, _ = self._unpack(data)
        n = ops.shape(x)[0]
        eps = self.noise(keras.random.normal, (n, self.latent_dim))
        z_p = self.noise(keras.random.normal, (n, self.latent_dim))
        enc_loss, (z, prior, llike) = self.encoder_loss(x, eps, z_p, training=False)
        dec_loss, (x_rec, x_p, _) = self.decoder_loss(x, z, z_p, training=False)
        dis_loss, (gan, d_x, d_g_z) = self.discriminator_loss(x, x_rec, x_p, training=False)
        return self.track(enc_loss=enc_loss, dec_loss=dec_loss, dis_loss=dis_loss, prior=prior,
                          llike=llike, gan=gan, D_x=d_x, D_G_z=d_g_z)

    def call(self, x, training=False):
        mu, _ = self.encoder(x, training=training)
        return self.decoder(mu, training=training)
