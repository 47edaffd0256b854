"""Two JAX processes on this machine as two hosts (CPU collectives by gloo), a
GAN trained two steps under zoo.core.data_parallel(), against one process.
Run by tests/test_distribution.py:

    python -m tests.multihost_step PROCESS_ID PORT OUT.npz   # PROCESS_ID 0 and 1, or -1 alone
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def main(process_id, port, out):
    if process_id >= 0:  # what each host runs, with its own id
        keras.distribution.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
    import tensorflow as tf

    from zoo.core import data_parallel
    from zoo.models import GAN, blocks

    shape, batch = (16, 16, 1), 8
    keras.utils.set_random_seed(0)
    with data_parallel():
        g = blocks.mlp_generator(shape, latent_dim=4, hidden=(32,), num_classes=3, output_activation="tanh")
        d = blocks.dcgan_discriminator(shape, width=8, num_classes=3)
        model = GAN(g, d, seed=3)
        model.compile(d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05))
        x = np.random.default_rng(0).uniform(-1, 1, (batch, *shape)).astype("float32")
        # Every host gives the same global batches; Keras shards them between hosts.
        ds = tf.data.Dataset.from_tensor_slices((x, np.arange(batch) % 3)).batch(batch).repeat()
        model.fit(ds, steps_per_epoch=1, epochs=2, verbose=0)
    np.savez(out, processes=jax.process_count(),
             *[np.asarray(jax.device_get(v.value)) for v in model.trainable_variables])


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
