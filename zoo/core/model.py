"""`AdversarialModel`: a `keras.Model` with several players.

A subclass declares its players and writes `train_step(self, data)` once, with
`keras.ops`, as a sequence of `self.update(player, loss_fn)` calls::

    class GAN(AdversarialModel):
        players = {"d": ("discriminator",), "g": ("generator",)}

        def train_step(self, data):
            ...
            self.update("d", lambda: self.discriminator_loss(x, fake))
            self.update("g", lambda: self.generator_loss(z))
            return self.logs()

`compile(d_optimizer=..., g_optimizer=...)` gives each player its optimizer.
The same code then trains with `fit` on TensorFlow, JAX and PyTorch, with
`jit_compile`, `evaluate` (via `test_step`) and Keras callbacks.
"""

import inspect
import warnings

import keras
import numpy as np

from zoo import presets  # below the core: it imports no model
from zoo.core import checks
from zoo.core import ema as averaging
from zoo.core import keras_internals
from zoo.core import backend
from zoo.core.optimizers import PlayerOptimizers


class _BundledPresets:
    """`Model.presets`: {name: {"description", "params", "path", "metadata"}} of the
    bundled presets of that class, as keras-hub's `cls.presets`. A class attribute
    only: Keras's saving walks an instance's attributes, and it need not scan
    `saved_models/` every time a model is saved."""

    def __get__(self, obj, owner):
        if obj is not None:
            raise AttributeError(f"presets is a class attribute: use {owner.__name__}.presets")
        return presets.bundled_of_class(owner)


class AdversarialModel(keras.Model):
    #: player name -> attribute names of the sub-networks that player trains.
    #: The compile keyword for a player `p` is `p_optimizer`.
    players = {}
    presets = _BundledPresets()
    #: attribute names of the networks whose weights may be averaged over
    #: training (`ema_decay`, see `init_ema` and `zoo.core.ema`): the generator's.
    averaged_networks = ()
    #: constructor arguments kept as attributes of the same name, saved by get_config.
    config_attributes = ()
    #: labels in the data: "refused" (images only), "conditional" (required when
    #: the model has `num_classes`, refused otherwise), "required", or None (not
    #: checked: a subclass that checks its own).
    label_policy = None
    #: the model's name in messages, and what its data are called there.
    display_name = None
    data_noun = "images"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The model's own steps, written once, adapted to the backend's trainer.
        if "train_step" in cls.__dict__:
            cls.train_step = backend.stateless_step(
                _counting_steps(cls.__dict__["train_step"])
            )
        if "test_step" in cls.__dict__:
            cls.test_step = backend.stateless_step(_replica_logs(cls.__dict__["test_step"]))

    # -- players ------------------------------------------------------------
    def player_variables(self, player):
        """The trainable variables that `player` updates."""
        if player not in self.players:
            raise KeyError(
                f"Unknown player {player!r}; this model has {list(self.players)}."
            )
        variables = []
        for attr in self.players[player]:
            variables.extend(getattr(self, attr).trainable_variables)
        return variables

    @classmethod
    def network_names(cls):
        """Attribute names of the sub-networks, from the players' declaration."""
        return list(dict.fromkeys(a for attrs in cls.players.values() for a in attrs))

    def get_config(self):
        # The sub-networks and the hyperparameters a subclass lists in
        # `config_attributes` (its constructor's own arguments, as attributes).
        config = {
            **super().get_config(),
            **{n: keras.saving.serialize_keras_object(getattr(self, n)) for n in self.network_names()},
            **{k: getattr(self, k) for k in self.config_attributes},
        }
        if self.averaged_networks:
            config.update(ema_decay=self.ema_decay, ema_start=self.ema_start, ema_warmup=self.ema_warmup)
        return config

    # -- the moving average of the generator's weights --------------------------
    def init_ema(self, ema_decay=None, ema_start=0, ema_warmup=False):
        """Keep an exponential moving average of each of `averaged_networks`
        (Yazici et al. 2019; Karras et al. 2018), in a non-trainable shadow copy
        `self.<name>_ema`, updated in every train step after the update of the
        player that trains the network. `ema_decay` None: no average. Subclasses
        call this at the end of `__init__`; see `zoo.core.ema` for the options
        and why this is not Keras's optimizer `use_ema`."""
        self.ema_decay, self.ema_start, self.ema_warmup = averaging.validate(
            ema_decay, ema_start, ema_warmup
        )
        self._ema_pairs = []
        if self.ema_decay is None:
            return
        for name in self.averaged_networks:
            network = getattr(self, name)
            shadow = averaging.shadow_copy(network)
            setattr(self, f"{name}_ema", shadow)
            owners = [p for p, attrs in self.players.items() if name in attrs]
            self._ema_pairs.append((owners[0], name, f"{name}_ema"))

    def averaged(self, name):
        """The network `name` to sample with: its moving average if the model
        keeps one (`ema_decay`), else the network itself."""
        for _, raw, shadow in getattr(self, "_ema_pairs", ()):
            if raw == name:
                return getattr(self, shadow)
        return getattr(self, name)

    def reset_ema(self):
        """Restart the averages from the networks' current weights (e.g. after
        setting a generator's weights by hand)."""
        for _, raw, shadow in getattr(self, "_ema_pairs", ()):
            averaging.copy(getattr(self, shadow), getattr(self, raw))

    def _update_ema(self, player):
        pairs = [(raw, shadow) for p, raw, shadow in getattr(self, "_ema_pairs", ()) if p == player]
        if not pairs:
            return
        # optimizer.iterations counts the train steps done before this one.
        decay = averaging.decay_at(self.optimizer.iterations, self.ema_decay, self.ema_start, self.ema_warmup)
        for raw, shadow in pairs:
            averaging.update(getattr(self, shadow), getattr(self, raw), decay)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.network_names():
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, compile=False, load_weights=True):
        """The model saved as `preset` (a bundled name from `zoo.list_presets()`, a
        preset folder, or hf://owner/repo), weights checked against their sha256.
        Refuses a preset that holds another kind of model. `load_weights=False`:
        the preset's architecture with fresh weights. See `zoo.presets`."""
        return presets.load(preset, expected_class=cls, compile=compile, load_weights=load_weights)

    def default_optimizer(self, player):
        """Optimizer used when compile() is not given one for `player`."""
        return keras.optimizers.Adam(2e-4, beta_1=0.5)

    def compile(
        self,
        jit_compile="auto",
        run_eagerly=False,
        steps_per_execution=1,
        **player_optimizers,
    ):
        """Give each player its optimizer: `compile(d_optimizer=..., g_optimizer=...)`.

        Optimizers may be instances, names ("adam") or serialized configs.
        """
        if "optimizer" in player_optimizers and len(self.players) == 1:
            # A one-player model (a VAE) takes the usual keyword too.
            (only,) = self.players
            player_optimizers[f"{only}_optimizer"] = player_optimizers.pop("optimizer")
        expected = {f"{p}_optimizer" for p in self.players}
        unknown = set(player_optimizers) - expected
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.compile() got {sorted(unknown)}; its "
                f"players' optimizers are {sorted(expected)}."
            )
        optimizers = {}
        for p in self.players:
            opt = player_optimizers.get(f"{p}_optimizer")
            optimizers[p] = keras.optimizers.get(
                self.default_optimizer(p) if opt is None else opt
            )
        if len({id(o) for o in optimizers.values()}) < len(optimizers):
            raise ValueError(
                "Each player needs its own optimizer instance (their slots "
                "would otherwise be shared)."
            )
        # float16 needs its losses scaled, or small gradients flush to zero
        # (bfloat16 has float32's range and needs none): as Keras's own compile
        # does, wrap each player's optimizer in a dynamic LossScaleOptimizer.
        applied = dict(optimizers)
        if keras.mixed_precision.global_policy().compute_dtype == "float16":
            applied = {
                p: o if isinstance(o, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(o)
                for p, o in optimizers.items()
            }
        super().compile(
            optimizer=PlayerOptimizers(applied, self.player_variables),
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
            auto_scale_loss=False,
        )
        # Build every player's optimizer now, not lazily at its first update: a
        # player that has not stepped yet (DSH-GAN's discriminator in the hash
        # phase) must still save and restore the same slots.
        if all(getattr(self, n).built for n in self.network_names()):
            self.optimizer.build()
        # What compile_from_config() needs to rebuild this after load_model().
        keras_internals.set_compile_config(
            self,
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
            **{f"{p}_optimizer": o for p, o in optimizers.items()},
        )

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build()

    def update(self, player, loss_fn, gate=None):
        """One gradient step of `player` on `loss_fn() -> (loss, aux)`.

        Only `player`'s variables change (and the moving averages of the
        networks it trains, if the model keeps them: `init_ema`). Returns
        `(loss, aux)`. `gate(aux)`, if given, returns a boolean scalar; the step
        is kept only where true.
        """
        if not self.compiled:
            raise RuntimeError(
                f"Call {type(self).__name__}.compile() before training."
            )
        result = backend.player_update(
            self.optimizer[player], self.player_variables(player), loss_fn, gate
        )
        self._update_ema(player)  # the averages follow the player's new weights
        return result

    def update_many(self, players, loss_fn, gates=None):
        """One step of several `players` from one forward pass, for models whose
        paper takes the players' gradients together (VAE-GAN): `loss_fn() ->
        ({player: loss}, aux)`; each player's gradient is that of its own loss
        with respect to its own variables only, all at the same state, then all
        applied (and the moving averages of their networks updated). `gates`:
        {player: gate(aux)}. Returns `(losses, aux)`. `update` stays the step of
        models whose paper updates in sequence, each player reading the last
        one's new weights."""
        if not self.compiled:
            raise RuntimeError(f"Call {type(self).__name__}.compile() before training.")
        gates = gates or {}
        entries = [(p, self.optimizer[p], self.player_variables(p), gates.get(p)) for p in players]

        def checked():
            losses, aux = loss_fn()
            if set(losses) != set(players):
                raise KeyError(f"loss_fn gave losses for {sorted(losses)}; the players updated are {sorted(players)}.")
            return losses, aux

        losses, aux = backend.players_update(entries, checked)
        for p in players:  # the averages follow the players' new weights
            self._update_ema(p)
        return losses, aux

    def noise(self, draw, shape, **kwargs):
        """`draw(shape, seed=self.seed_generator, **kwargs)`, e.g.
        `self.noise(keras.random.normal, (n, latent_dim))`: the model's training
        noise. Under data parallelism each replica gets its rows of one draw for
        the global batch, so two devices see the noise one device would."""
        return backend.replica_draw(
            lambda s: draw(s, seed=self.seed_generator, **kwargs), shape
        )

    # -- logs -----------------------------------------------------------------
    def init_logs(self, names):
        """One mean tracker per value the steps log. `names`: a sequence, or
        {phase: sequence} for a model with phases (`self.phase`), which then logs
        the current phase's values only (the others would read 0)."""
        phases = isinstance(names, dict)
        self._phase_logs = {p: tuple(v) for p, v in names.items()} if phases else None
        flat = dict.fromkeys(n for v in names.values() for n in v) if phases else names
        self.trackers = {n: keras.metrics.Mean(name=n) for n in flat}

    def track(self, **values):
        """Update the trackers with this step's values; returns `logs()`."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return self.logs()

    @property
    def metrics(self):
        # Only the model's own trackers: there is no compiled loss.
        keras_loss = keras_internals.compiled_loss_tracker(self)
        return [m for m in super().metrics if m is not keras_loss]

    def logs(self):
        """The trackers' values (this phase's, for a model with phases), plus
        "loss" unless the model logs one: the sum of the "*_loss" values. That sum is not an objective anyone minimises; it is
        there so that Keras tools which watch "loss" (TerminateOnNaN, progress
        bars) see a NaN or Inf in any player."""
        phase_logs = getattr(self, "_phase_logs", None)
        shown = phase_logs[self.phase] if phase_logs else None
        logs = {m.name: m.result() for m in self.metrics if shown is None or m.name in shown}
        player_losses = [v for k, v in logs.items() if k.endswith("_loss")]
        if player_losses and "loss" not in logs:
            logs["loss"] = sum(player_losses[1:], player_losses[0])
        return logs

    # -- saving: the random-number state too, so that a resumed run is exact -----
    def _rng_states(self):
        # Every SeedGenerator in the model (its own noise, dropout layers').
        # Keras saves none of them with the weights; a run resumed from a
        # backup would then draw other noise than the uninterrupted run.
        return [v for v in self.variables if v.name == "seed_generator_state"]

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, v in enumerate(self._rng_states()):
            store[f"rng_{i}"] = v

    def load_own_variables(self, store):
        keys = list(store.keys())
        own = {k: store[k] for k in keys if not k.startswith("rng_")}
        super().load_own_variables(own)
        for i, v in enumerate(self._rng_states()):
            if f"rng_{i}" in keys:  # presets saved before this carry none
                v.assign(keras.ops.cast(np.asarray(store[f"rng_{i}"]), v.dtype))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras's TF trainer builds a model symbolically from a first batch, which
        # under tf.distribute it first averages over the replicas: that fails under
        # MultiWorkerMirroredStrategy (keras-team/keras#20585). A zoo model is
        # built when constructed and its optimizers when compiled: nothing to build.
        # (A private Keras method: see zoo.core.keras_internals.OVERRIDDEN.)
        if all(layer.built for layer in keras_internals.all_layers(self)) and (
            self.optimizer is None or self.optimizer.built
        ):
            return
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # -- input checks -----------------------------------------------------------
    def fit(self, x=None, y=None, *args, **kwargs):
        self.check_data(x, y)
        if hasattr(x, "element_spec"):
            kwargs.setdefault("shuffle", False)  # a tf.data pipeline shuffles itself
        bound = inspect.signature(keras.Model.fit).bind(self, x, y, *args, **kwargs)
        callbacks = list(bound.arguments.get("callbacks") or [])
        if callbacks:
            # A NaN guard must see a bad batch before any checkpoint saves it.
            callbacks.sort(key=lambda c: not getattr(c, "runs_first", False))  # StopOnNaN
            bound.arguments["callbacks"] = callbacks
        bound.arguments["x"] = checks.checked_stream(
            _resume_position(x, callbacks, bound.arguments.get("steps_per_epoch"))
        )
        bound.arguments.pop("self")
        first_step = self._step_count()
        try:
            return super().fit(**bound.arguments)
        except Exception as e:  # tf.errors.InvalidArgumentError from the per-batch check
            done = self._step_count()
            clear = checks.as_value_error(e, None if None in (done, first_step) else done - first_step)
            if clear is None:
                raise
            raise clear from None

    def _step_count(self):
        try:
            return int(keras.ops.convert_to_numpy(self.optimizer.iterations))
        except Exception:  # not compiled, or mid-failure state
            return None

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_data(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def check_data(self, x, y=None):
        """Raise a ValueError naming the problem if `x`/`y` cannot train this model.

        Checks arrays whole, and the first batch of a `tf.data.Dataset` or a
        generator (`fit` checks their later batches for NaN/Inf as they are read,
        `zoo.core.checks`). Subclasses define `check_batch(x, y)`.
        """
        batch = _first_batch(x, y)
        if batch is not None:
            self.check_batch(*batch)

    # -- the data a step takes: images, and labels by `label_policy` ---------------
    def _name(self):
        return self.display_name or type(self).__name__

    def labels_wanted(self):
        """True if batches must hold labels, False if they must not."""
        if self.label_policy == "conditional":
            return getattr(self, "num_classes", None) is not None
        return self.label_policy == "required"

    def label_presence_error(self, given):
        """The message for labels given to a model that refuses them, or missing
        where it needs them; None if all is well."""
        if self.label_policy is None:
            return None
        wanted = self.labels_wanted()
        if given and not wanted:
            if self.label_policy == "conditional":
                return (f"Labels were given to an unconditional {self._name()} (num_classes=None): "
                        f"pass images only, or build the {self._name()} with num_classes.")
            return f"{self._name()} takes {self.data_noun} only; labels were given."
        if wanted and not given:
            return self.missing_labels_message()
        return None

    def missing_labels_message(self):
        return f"This {self._name()} is conditional on {self.num_classes} classes: pass (images, labels)."

    def _unpack(self, data):
        """(x, y) of a batch; y as the model's label vectors, or None."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        message = self.label_presence_error(y is not None)
        if message:
            raise ValueError(message)
        # torch's train_on_batch may pass NumPy through; a network called on
        # [x, noise] must not mix arrays and tensors.
        x = keras.ops.convert_to_tensor(x)
        return x, (None if y is None else self.label_vectors(y))

    def label_vectors(self, y):
        return y

    def check_batch(self, x, y):
        """A ValueError naming the problem if (x, y) is not a batch for this model:
        shape, dtype, NaN and range of x (`data_shape`, `data_range`), labels by
        `label_policy` and the model's `check_labels`."""
        if getattr(self, "data_shape", None) is not None:  # a subclass without one checks its own
            checks.check_real_batch(x, self.data_shape, getattr(self, "data_range", None))
        message = self.label_presence_error(y is not None)
        if message:
            raise ValueError(message)
        if y is not None:
            self.check_labels(np.asarray(y))

    def check_labels(self, y):
        """Subclasses that take labels check their values here (NumPy)."""


def _counting_steps(fn):
    def train_step(self, data):
        logs = fn(self, data)
        self.optimizer.iterations.assign_add(1)
        return backend.replica_logs(logs)

    train_step.__wrapped__ = fn
    train_step.__name__ = fn.__name__
    train_step.__doc__ = fn.__doc__
    return train_step


def _replica_logs(fn):
    def test_step(self, data):
        return backend.replica_logs(fn(self, data))

    test_step.__wrapped__ = fn
    test_step.__name__ = fn.__name__
    test_step.__doc__ = fn.__doc__
    return test_step


def _resume_position(x, callbacks, steps_per_epoch):
    """`x` advanced past the batches a resumed run has already trained on.

    Keras's BackupAndRestore restores the weights, optimizer state (and, in the
    zoo, the random-number state) of the last epoch it saved, then runs the
    following epochs again, but hands them the data from its start. On an
    endless tf.data stream (`steps_per_epoch` given), where one iterator runs
    through all epochs, the batches of epoch e start at e * steps_per_epoch:
    skip those, and the resumed run sees exactly the batches the uninterrupted
    one saw. A seeded pipeline is then replayed exactly.
    """
    backups = [c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)]
    if not backups or not hasattr(x, "skip"):
        return x
    backup = backups[0]
    epoch = keras_internals.backup_saved_epoch(backup)
    if epoch is None:
        return x
    if backup.save_freq != "epoch":
        warnings.warn(
            "BackupAndRestore(save_freq=<int>) restores weights saved in the middle "
            "of an epoch and then runs that whole epoch again, so the resumed run "
            "trains on more batches than an uninterrupted one. For an exact resume "
            "use save_freq='epoch' (with shorter epochs if need be).",
            stacklevel=3,
        )
    if steps_per_epoch is None:
        if epoch:
            warnings.warn(
                "Resuming without steps_per_epoch: each epoch re-reads the dataset "
                "from its start, so the resumed run is exact only if the dataset "
                "yields the same batches in every epoch.",
                stacklevel=3,
            )
        return x
    return x.skip(epoch * steps_per_epoch) if epoch else x


def _first_batch(x, y):
    """(x, y) of the first batch as NumPy, for checks; None if unknown."""
    if x is None:
        return None
    if hasattr(x, "element_spec") and hasattr(x, "take"):  # tf.data.Dataset
        for element in x.take(1).as_numpy_iterator():
            if isinstance(element, dict):
                return None
            if isinstance(element, tuple):
                return element[0], (element[1] if len(element) > 1 else None)
            return element, None
        raise ValueError("The dataset is empty.")
    if isinstance(x, (list, tuple, dict)) or not hasattr(x, "shape"):
        return None
    # Arrays are checked whole: one vectorised pass costs far less than a step.
    xs = np.asarray(x)
    ys = None if y is None else np.asarray(y)
    return xs, ys
