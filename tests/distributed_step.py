"""One training step of each zoo model on one device and on two, in a fresh
process (devices are fixed when a backend starts). Run by tests/test_distribution.py:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python -m tests.distributed_step
    KERAS_BACKEND=tensorflow python -m tests.distributed_step   # 2 logical CPUs

Prints one JSON line: for each model, the largest absolute difference between
the weights after the one-device and the two-device steps, the largest change
of a weight in the one-device steps (the negative control: a two-device step
that missed the 1/replicas loss scaling takes a step twice as long, so it
would differ from the one-device weights by about that much; with SGD exactly
that after the first step), and whether the two-device losses are finite.

Every model trains with plain SGD: Adam divides each gradient by its running
size, so a missing constant factor (the 1/replicas scaling) would not show in
Adam's weights, and for gradient components near zero it magnifies float32
rounding (its step has size ~lr whatever the gradient's), where SGD's error
stays proportional to the gradient.
"""

import json
import os
import sys

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "tensorflow":  # before TensorFlow starts: split the CPU in two
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from zoo.core import data_parallel, keras_internals  # noqa: E402
from zoo.models import AVB, DSHGAN, GAN, VAE, VAEGAN, blocks  # noqa: E402

SHAPE = (16, 16, 1)
BATCH = 8  # global batch: 4 a device on two


def devices(n):
    if BACKEND == "tensorflow":
        return [d.name for d in tf.config.list_logical_devices("CPU")[:n]]
    import jax

    return [f"cpu:{d.id}" for d in jax.devices()[:n]]


# Networks without batch norm or dropout for the equality checks: under
# tf.distribute both work per replica (each normalises / drops over its own
# share of the batch), which is the engines' documented behaviour and not a
# step of one device.
def gan():
    g = blocks.mlp_generator(SHAPE, latent_dim=4, hidden=(32,), num_classes=3, output_activation="tanh")
    d = blocks.dcgan_discriminator(SHAPE, width=8, num_classes=3)
    return GAN(g, d, d_steps=1, seed=3)


def dshgan():
    g = blocks.mlp_generator(SHAPE, latent_dim=4, hidden=(32,), num_classes=3, output_activation="tanh")
    d = blocks.semi_supervised_discriminator(SHAPE, 3, width=8)
    h = blocks.hashing_network(SHAPE, 12, 3, width=8, fc=16, dropout=0.0)
    return DSHGAN(g, d, h, margin=3.0, seed=3)


def data(labels=True):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (BATCH, *SHAPE)).astype("float32")
    y = np.array([0, 1, 2, -1, 0, 1, -1, 2])  # DSH-GAN: -1 unlabelled
    return x, y


def synchronized_batch_norm(build):
    """`build` with every BatchNormalization layer computing its statistics over
    the global batch (Keras's `synchronized=True`, TensorFlow only). tf.distribute
    otherwise normalises over each replica's share, and with 4 rows a replica that
    changes the step as much as the step itself (measured: the default per-replica
    statistics moved VAE-GAN's weights 0.058 away from the one-device step, whose
    largest update was 0.050), which would hide any other error."""
    def built():
        model = build()
        for layer in keras_internals.all_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
        return model
    return built if BACKEND == "tensorflow" else build


def step(build, data_fn, n, phase=None, lr=0.05, steps=2):
    keras.utils.set_random_seed(0)
    with data_parallel(devices(n)) as engine:
        replicas = (engine.num_replicas_in_sync if BACKEND == "tensorflow"
                    else engine.device_mesh.devices.size)
        assert replicas == n, f"asked for {n} devices, got {replicas}"
        model = build()
        if phase:
            model.phase = phase
        model.compile(**{f"{p}_optimizer": keras.optimizers.SGD(lr) for p in model.players})
        initial = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
        x, y = data_fn()
        # fit, not train_on_batch: Keras's TF train_on_batch hands every replica
        # the whole batch; fit splits the global batch between them.
        history = model.fit(x, y, batch_size=BATCH, epochs=steps, shuffle=False, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    weights = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
    return initial, weights, {k: float(v) for k, v in logs.items()}


def _max_abs_diff(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b))


def compare(build, data_fn, **kw):
    initial, one, _ = step(build, data_fn, 1, **kw)
    _, two, logs = step(build, data_fn, 2, **kw)
    return {"max_abs_diff": _max_abs_diff(one, two), "max_abs_update": _max_abs_diff(one, initial),
            "max_abs_weight": max(float(np.abs(a).max()) for a in one),
            "finite": all(np.isfinite(v) for v in logs.values())}


def trains(build, data_fn, **kw):
    """Two devices only: finite losses, and how far the weights moved."""
    initial, two, logs = step(build, data_fn, 2, **kw)
    return {"max_abs_update": _max_abs_diff(two, initial),
            "finite": all(np.isfinite(v) for v in logs.values())}


def main():
    gan_data = lambda: (data()[0], data()[1] % 3)  # noqa: E731
    x_only = lambda: (data()[0], None)  # noqa: E731
    x01 = lambda: ((data()[0] + 1) / 2, None)  # noqa: E731
    vaegan = lambda: VAEGAN.larsen(SHAPE, latent_dim=4, width=0.125, equilibrium=(0.68, 0.35), seed=3)  # noqa: E731
    vae = lambda: VAE.larsen(SHAPE, latent_dim=4, width=0.125, seed=3)  # noqa: E731
    # Learning rates that move the largest weight by ~0.005-0.1 in two steps.
    cases = {
        "gan": lambda: compare(gan, gan_data),
        "dshgan_pretrain": lambda: compare(dshgan, data, phase="pretrain"),
        "dshgan_hash": lambda: compare(dshgan, data, phase="hash"),
        # Models with batch norm (the VAE's and VAE-GAN's nets; VAE-GAN's gated
        # steps too), with the statistics of the global batch on TensorFlow.
        "vaegan": lambda: compare(synchronized_batch_norm(vaegan), x_only, lr=1e-3),
        # The VAE's loss sums over pixels: its gradients are ~100x VAE-GAN's.
        "vae": lambda: compare(synchronized_batch_norm(vae), x_only, lr=1e-5),
        "avb": lambda: compare(
            lambda: AVB.build_default(SHAPE, latent_dim=4, hidden=(16,), likelihood="bernoulli",
                                      adaptive_contrast=True, contrast_samples=2, seed=3),
            x01, lr=1e-3),
        # tf.distribute's default per-replica batch norm: it must train.
        "vaegan_per_replica_bn": lambda: trains(vaegan, x_only, lr=1e-3),
    }
    names = sys.argv[1:] or list(cases)  # the test splits them over two processes
    results = {name: cases[name]() for name in names}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
