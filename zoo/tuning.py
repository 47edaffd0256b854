"""keras-tuner hypermodels for the zoo's models.

Each hypermodel searches what matters for its model (each player's learning
rate and Adam beta_1, k, latent size, VAE-GAN's gamma) and names an objective
that the tuner reads from the `fit` logs:

- generators (GAN, VAE-GAN): "val_fid", domain FID of generated samples against
  held-out real images, added to the logs at each epoch end by `FIDCallback`;
- the VAE: "val_loss", the negative ELBO on the validation data;
- AVB: "val_nll", the negative AIS log-likelihood of held-out data (the
  estimated -ELBO in AVB's `val_loss` rests on T's own KL estimate, which
  differs between trials, so it cannot rank them), added by `NLLCallback`;
- DSH-GAN: "val_map", MAP of Hamming ranking of held-out queries against a
  held-out database, added by `MAPCallback` (maximised).

The three callbacks are in `zoo.metrics.callbacks`.

    tuner = keras_tuner.RandomSearch(GANHyperModel((28, 28, 1), val_images=x_val,
                                                   extractor=FeatureExtractor.load("mnist")),
                                     max_trials=10, directory="tuning", project_name="dcgan")
    tuner.search(train_ds, epochs=3)

`python -m recipes.tune` is the command line.
"""

import keras
import keras_tuner as kt

# The metric callbacks live in zoo.metrics.callbacks; re-exported for `from zoo.tuning import FIDCallback`.
from zoo.metrics.callbacks import FIDCallback, MAPCallback, NLLCallback
from zoo.models import AVB, DSHGAN, GAN, VAE, VAEGAN


def _check_range(name, bounds):
    lo, hi = (float(v) for v in bounds)
    if not (0 < lo <= hi):
        raise ValueError(f"{name} must satisfy 0 < min <= max; got {bounds}.")
    return lo, hi


def _check_choices(name, values, kind=int, low=None, high=None):
    values = list(values)
    if not values:
        raise ValueError(f"{name} needs at least one value.")
    for v in values:
        if not isinstance(v, kind) or (low is not None and v < low) or (high is not None and v > high):
            bound = "" if low is None else f" >= {low}" + ("" if high is None else f" and <= {high}")
            raise ValueError(f"{name} values must be {kind.__name__}{bound}; got {v!r}.")
    return values


class _ZooHyperModel(kt.HyperModel):
    #: the objective's name in the fit logs, and its direction
    objective_name, direction = "val_fid", "min"
    #: names the model's fit logs carry (without "val_"), for checking an objective
    log_names = ()

    @property
    def objective(self):
        return kt.Objective(self.objective_name, self.direction)

    def check_objective(self, name):
        """Raise a ValueError if `name` cannot appear in this model's fit logs."""
        known = set(self.log_names) | {f"val_{n}" for n in self.log_names} | {"val_fid"}
        if name not in known:
            raise ValueError(
                f"Objective {name!r} is not in {type(self).__name__}'s fit logs; "
                f"choose one of {sorted(known)}."
            )

    def _adam(self, hp, player):
        lr = hp.Float(f"{player}_learning_rate", *self.learning_rates, sampling="log")
        beta_1 = hp.Choice(f"{player}_beta_1", self.beta_1s)
        return keras.optimizers.Adam(lr, beta_1=beta_1)


class _WithFID(_ZooHyperModel):
    def __init__(self, val_images=None, extractor=None, fid_samples=1000, **kwargs):
        super().__init__(**kwargs)
        if (val_images is None) != (extractor is None):
            raise ValueError("Pass both val_images and extractor for the val_fid objective.")
        self.val_images, self.extractor, self.fid_samples = val_images, extractor, fid_samples

    def fit(self, hp, model, *args, **kwargs):
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if self.extractor is not None:
            # First, so that the tuner's own callbacks see val_fid in the logs.
            callbacks.insert(0, FIDCallback(self.val_images, self.extractor, self.fid_samples))
        return model.fit(*args, callbacks=callbacks, **kwargs)


class GANHyperModel(_WithFID):
    """DCGAN (or the paper's MLP GAN): per-player Adam, k, latent size, G's loss."""

    log_names = ("loss", "d_loss", "g_loss", "D_x", "D_G_z")

    def __init__(self, image_shape, num_classes=None, architecture="dcgan", width=64,
                 learning_rates=(1e-5, 1e-3), beta_1s=(0.0, 0.5, 0.9), d_steps=(1, 2),
                 latent_dims=(64, 100, 128), generator_losses=("non_saturating",), **kwargs):
        super().__init__(**kwargs)
        if architecture not in ("dcgan", "paper_mlp"):
            raise ValueError(f'architecture must be "dcgan" or "paper_mlp"; got {architecture!r}.')
        self.image_shape, self.num_classes, self.architecture = tuple(image_shape), num_classes, architecture
        self.width = width
        self.learning_rates = _check_range("learning_rates", learning_rates)
        self.beta_1s = _check_choices("beta_1s", beta_1s, float, 0.0, 0.999)
        self.d_steps = _check_choices("d_steps", d_steps, int, 1)
        self.latent_dims = _check_choices("latent_dims", latent_dims, int, 1)
        self.generator_losses = list(generator_losses)
        for g in self.generator_losses:
            if g not in ("minimax", "non_saturating"):
                raise ValueError(f"generator_losses values must be minimax or non_saturating; got {g!r}.")

    def build(self, hp):
        kwargs = dict(latent_dim=hp.Choice("latent_dim", self.latent_dims), num_classes=self.num_classes,
                      d_steps=hp.Choice("d_steps", self.d_steps),
                      gan_loss=hp.Choice("generator_loss", self.generator_losses), seed=0)
        if self.architecture == "dcgan":
            model = GAN.dcgan(self.image_shape, width=self.width, **kwargs)
        else:
            model = GAN.paper_mlp(self.image_shape, **kwargs)
        model.compile(d_optimizer=self._adam(hp, "d"), g_optimizer=self._adam(hp, "g"))
        return model


class VAEGANHyperModel(_WithFID):
    """VAE-GAN: per-player Adam, latent size, gamma."""

    log_names = ("loss", "enc_loss", "dec_loss", "dis_loss", "prior", "llike", "gan", "D_x", "D_G_z")

    def __init__(self, image_shape, width=0.25, learning_rates=(3e-5, 1e-3), beta_1s=(0.5, 0.9),
                 latent_dims=(32, 64, 128), gammas=(1e-4, 1e-1), **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.width = tuple(image_shape), width
        self.learning_rates = _check_range("learning_rates", learning_rates)
        self.beta_1s = _check_choices("beta_1s", beta_1s, float, 0.0, 0.999)
        self.latent_dims = _check_choices("latent_dims", latent_dims, int, 1)
        self.gammas = _check_range("gammas", gammas)

    def build(self, hp):
        model = VAEGAN.larsen(self.image_shape, latent_dim=hp.Choice("latent_dim", self.latent_dims),
                              width=self.width, gamma=hp.Float("gamma", *self.gammas, sampling="log"), seed=0)
        model.compile(enc_optimizer=self._adam(hp, "enc"), dec_optimizer=self._adam(hp, "dec"),
                      dis_optimizer=self._adam(hp, "dis"))
        return model


class VAEHyperModel(_ZooHyperModel):
    """The Gaussian VAE: Adam, latent size, pixel sigma; objective: validation -ELBO."""

    objective_name = "val_loss"
    log_names = ("loss", "reconstruction", "kl")

    def __init__(self, image_shape, width=0.25, learning_rates=(1e-4, 3e-3), beta_1s=(0.5, 0.9),
                 latent_dims=(16, 32, 64), pixel_sigmas=(0.05, 0.3), **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.width = tuple(image_shape), width
        self.learning_rates = _check_range("learning_rates", learning_rates)
        self.beta_1s = _check_choices("beta_1s", beta_1s, float, 0.0, 0.999)
        self.latent_dims = _check_choices("latent_dims", latent_dims, int, 1)
        self.pixel_sigmas = _check_range("pixel_sigmas", pixel_sigmas)

    def build(self, hp):
        model = VAE.larsen(self.image_shape, latent_dim=hp.Choice("latent_dim", self.latent_dims),
                           width=self.width, pixel_sigma=hp.Float("pixel_sigma", *self.pixel_sigmas, sampling="log"),
                           seed=0)
        model.compile(optimizer=self._adam(hp, "vae"))
        return model


class AVBHyperModel(_ZooHyperModel):
    """AVB: Adam of T and of (encoder, decoder), adaptive contrast on or off, T's
    steps per VAE step, latent size; objective: validation NLL by AIS
    (`val_data` given) or the estimated validation -ELBO ("val_loss") otherwise."""

    objective_name = "val_nll"
    log_names = ("loss", "reconstruction", "kl", "t_loss")

    def __init__(self, data_shape, val_data=None, latent_dims=(8, 32), adaptive_contrast=(True, False),
                 t_steps=(1, 2), learning_rates=(3e-5, 1e-3), beta_1s=(0.5, 0.9), hidden=(256, 256),
                 nll_settings=None, **kwargs):
        super().__init__(**kwargs)
        self.data_shape, self.hidden = tuple(data_shape), tuple(hidden)
        self.latent_dims = _check_choices("latent_dims", latent_dims, int, 1)
        self.adaptive_contrast = _check_choices("adaptive_contrast", adaptive_contrast, bool)
        self.t_steps = _check_choices("t_steps", t_steps, int, 1)
        self.learning_rates = _check_range("learning_rates", learning_rates)
        self.beta_1s = _check_choices("beta_1s", beta_1s, float, 0.0, 0.999)
        self.val_data, self.nll_settings = val_data, dict(nll_settings or {})
        if val_data is None:
            self.objective_name = "val_loss"

    def check_objective(self, name):
        if name == "val_nll" and self.val_data is None:
            raise ValueError("The val_nll objective needs val_data (held-out examples).")
        if name != "val_nll":
            super().check_objective(name)

    def build(self, hp):
        model = AVB.build_default(
            self.data_shape, latent_dim=hp.Choice("latent_dim", self.latent_dims), hidden=self.hidden,
            adaptive_contrast=hp.Choice("adaptive_contrast", self.adaptive_contrast),
            t_steps=hp.Choice("t_steps", self.t_steps), seed=0,
        )
        model.compile(T_optimizer=self._adam(hp, "T"), vae_optimizer=self._adam(hp, "vae"))
        return model

    def fit(self, hp, model, *args, **kwargs):
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if self.val_data is not None:
            callbacks.insert(0, NLLCallback(self.val_data, **self.nll_settings))
        return model.fit(*args, callbacks=callbacks, **kwargs)


class DSHGANHyperModel(_ZooHyperModel):
    """DSH-GAN: each player's Adam, the triplet margin (as a share of the code
    length) and the code length; objective: validation MAP (`MAPCallback`).

    `fit` pre-trains the generator for `pretrain_epochs` (phase "pretrain"),
    then trains the hashing phase with the tuner's epochs and callbacks.
    `validation`: (query_images, query_labels, database_images, database_labels),
    uint8 or floats in [0, 1]; without it the objective falls back to the
    validation hashing loss ("val_h_loss", which needs validation_data).
    """

    objective_name, direction = "val_map", "max"
    log_names = ("loss", "h_loss", "triplet_loss", "class_loss", "adversary_loss", "g_loss",
                 "d_loss", "H_x", "H_G_z", "D_x", "D_G_z")

    def __init__(self, image_shape, num_classes, validation=None, code_lengths=(12, 48),
                 margins=(0.1, 0.5), learning_rates=(3e-5, 1e-3), beta_1s=(0.5, 0.9),
                 latent_dim=100, widths=(64, 64, 32), pretrain_epochs=1, top_k=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.num_classes = tuple(image_shape), int(num_classes)
        self.code_lengths = _check_choices("code_lengths", code_lengths, int, 1)
        self.margins = _check_range("margins", margins)
        self.learning_rates = _check_range("learning_rates", learning_rates)
        self.beta_1s = _check_choices("beta_1s", beta_1s, float, 0.0, 0.999)
        self.latent_dim, self.widths = int(latent_dim), tuple(widths)
        self.pretrain_epochs, self.top_k = int(pretrain_epochs), top_k
        if validation is not None and len(validation) != 4:
            raise ValueError("validation must be (query_images, query_labels, database_images, "
                             "database_labels).")
        self.validation = validation
        if validation is None:
            self.objective_name, self.direction = "val_h_loss", "min"

    def check_objective(self, name):
        if name == "val_map" and self.validation is None:
            raise ValueError("The val_map objective needs validation=(queries, labels, database, labels).")
        if name != "val_map":
            super().check_objective(name)

    def build(self, hp):
        bits = hp.Choice("code_length", self.code_lengths)
        g_width, d_width, h_width = self.widths
        model = DSHGAN.build_default(
            self.image_shape, self.num_classes, code_length=bits, latent_dim=self.latent_dim,
            g_width=g_width, d_width=d_width, h_width=h_width,
            margin=bits * hp.Float("margin_share", *self.margins), seed=0,
        )
        model.compile(**{f"{p}_optimizer": self._adam(hp, p) for p in ("g", "d", "h")})
        return model

    def fit(self, hp, model, *args, **kwargs):
        callbacks = list(kwargs.pop("callbacks", None) or [])
        epochs = kwargs.pop("epochs", 1)
        if self.pretrain_epochs:
            model.phase = "pretrain"
            pre = {k: v for k, v in kwargs.items() if k != "validation_data"}
            model.fit(*args, epochs=self.pretrain_epochs, **pre)
        model.phase = "hash"
        if self.validation is not None:
            # First, so that the tuner's own callbacks see val_map in the logs.
            callbacks.insert(0, MAPCallback(*self.validation, top_k=self.top_k))
        return model.fit(*args, epochs=epochs, callbacks=callbacks, **kwargs)


TUNERS = {"random": kt.RandomSearch, "bayesian": kt.BayesianOptimization, "hyperband": kt.Hyperband}


def make_tuner(hypermodel, tuner="random", max_trials=10, directory="tuning", project_name="zoo",
               objective=None, seed=0, max_epochs=None):
    """A keras-tuner tuner for `hypermodel`; reopening the same directory and
    project resumes the search (finished trials are not run again)."""
    if tuner not in TUNERS:
        raise ValueError(f"tuner must be one of {sorted(TUNERS)}; got {tuner!r}.")
    objective = objective or hypermodel.objective_name
    hypermodel.check_objective(objective)
    obj = kt.Objective(objective, "max" if objective.endswith(("accuracy", "map")) else "min")
    kwargs = dict(objective=obj, directory=directory, project_name=project_name, overwrite=False, seed=seed)
    if tuner == "hyperband":
        return kt.Hyperband(hypermodel, max_epochs=max_epochs or 3, **kwargs)
    return TUNERS[tuner](hypermodel, max_trials=max_trials, **kwargs)
