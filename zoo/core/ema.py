"""An exponential moving average (EMA) of a network's weights, kept in a shadow copy.

Averaging the generator's weights over training (Yazici et al., "The Unusual
Effectiveness of Averaging in GAN Training", ICLR 2019; Karras et al.,
"Progressive Growing of GANs", ICLR 2018) gives better samples than the last
iterate, which oscillates around the game's equilibrium. After each update of
the player that trains the network,

    w_ema <- decay_t * w_ema + (1 - decay_t) * w

where decay_t is `ema_decay`, 0 (a plain copy) before step `ema_start` (BigGAN's
and StudioGAN's `ema_start`), and with `ema_warmup` min(ema_decay, (1 + t) /
(10 + t)), t the steps since `ema_start` (the `num_updates` warm-up of
TensorFlow's `ExponentialMovingAverage`), so that early averages are not
dominated by the random initial weights. Every floating-point weight is
averaged, batch-norm statistics included (as StudioGAN does); other state
(integer counters, RNG state) is copied.

Why a shadow network and not Keras's optimizer `use_ema`: Keras keeps its
averages as optimizer slots and, at the end of `fit` (or every
`ema_overwrite_frequency` steps), writes them over the model's trainable
weights. For a GAN that replaces the generator that is playing the game by its
average: a second `fit` (or the next steps) would continue from the averaged
weights, the last iterate would be lost, and `generate(use_ema=False)` could not
exist. The averages would also live only with the optimizer, and presets save
no optimizer state. Here the average is a second network of the same
architecture, `model.<name>_ema`, whose weights are non-trainable Keras
variables of the model: they are saved in `.keras` files, presets and
BackupAndRestore backups, carried in JAX's jitted state like batch-norm
statistics, and `generate()` simply calls that network. The update is written
in `keras.ops` inside the train step, after the player's update, so it runs
under `jit_compile` on every backend (on JAX its assignments land in the
step's stateless scope, see `zoo.core.backend`).
"""

import keras
from keras import ops


def validate(ema_decay, ema_start, ema_warmup):
    """The options as (float or None, int, bool); ValueError names a bad one."""
    if ema_decay is not None:
        ema_decay = float(ema_decay)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) (e.g. 0.999), or None; got {ema_decay!r}.")
    if int(ema_start) != ema_start or ema_start < 0:
        raise ValueError(f"ema_start must be a non-negative integer (steps); got {ema_start!r}.")
    return ema_decay, int(ema_start), bool(ema_warmup)


def shadow_copy(network):
    """A non-trainable network of the same architecture holding `network`'s weights."""
    from zoo.core import keras_internals

    if isinstance(network, keras.Sequential) or keras_internals.is_functional(network):
        shadow = keras.models.clone_model(network)
    else:  # a subclassed model: rebuilt from its config, built on its input shape
        shadow = type(network).from_config(network.get_config())
        if not shadow.built:
            shadow.build(network.input_shape if hasattr(network, "input_shape") else None)
    source, target = network.weights, shadow.weights
    if [tuple(v.shape) for v in source] != [tuple(v.shape) for v in target]:
        raise ValueError(
            f"Cannot keep an average of {network.name}: its copy has other weights. "
            "Pass a functional or Sequential network, or one whose get_config rebuilds it."
        )
    for t, s in zip(target, source):
        t.assign(ops.copy(s.value))  # a buffer of its own (JAX donates each state array)
    shadow.trainable = False
    return shadow


def decay_at(step, ema_decay, ema_start=0, ema_warmup=False):
    """decay_t for the update made in train step `step` (0-based), as a tensor or float."""
    if not ema_start and not ema_warmup:
        return ema_decay
    t = ops.cast(step, "float32") - float(ema_start)
    decay = ops.convert_to_tensor(ema_decay, "float32")
    if ema_warmup:
        decay = ops.minimum(decay, (1.0 + t) / (10.0 + t))
    if ema_start:
        decay = ops.where(t < 0.0, 0.0, decay)
    return decay


def update(shadow, network, decay):
    """shadow <- decay * shadow + (1 - decay) * network, floating-point weights;
    the other weights copied."""
    for s, w in zip(shadow.weights, network.weights):
        value = ops.stop_gradient(w.value)
        if "float" in str(s.dtype):
            value = ops.cast(value, s.dtype)
            s.assign(decay * s.value + (1.0 - decay) * value)
        else:
            s.assign(value)


def copy(shadow, network):
    """shadow <- network (outside training: restart the average)."""
    for s, w in zip(shadow.weights, network.weights):
        s.assign(ops.copy(w.value))
