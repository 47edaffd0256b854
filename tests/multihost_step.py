"""Two processes on this machine as two hosts, a GAN trained two steps under
zoo.core.data_parallel(), against one process. Run by tests/test_distribution.py:

    KERAS_BACKEND=jax|tensorflow python -m tests.multihost_step PROCESS_ID PORT0 PORT1 OUT.npz

PROCESS_ID 0 and 1 (one each), or -1 for a single process. JAX: the hosts meet
through keras.distribution.initialize (CPU collectives by gloo). TensorFlow: a
TF_CONFIG naming two workers, so MultiWorkerMirroredStrategy.
"""

import json
import os
import sys

BACKEND = os.environ.get("KERAS_BACKEND", "jax")


def main(process_id, port0, port1, out):
    if BACKEND == "tensorflow" and process_id >= 0:
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"localhost:{port0}", f"localhost:{port1}"]},
            "task": {"type": "worker", "index": process_id},
        })
    if BACKEND == "jax":
        import jax

        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras
    import numpy as np
    import tensorflow as tf

    if BACKEND == "jax" and process_id >= 0:  # what each host runs, with its own id
        keras.distribution.initialize(f"localhost:{port0}", num_processes=2, process_id=process_id)

    from zoo.core import data_parallel
    from zoo.models import GAN, blocks

    shape, batch = (16, 16, 1), 8
    keras.utils.set_random_seed(0)
    with data_parallel() as engine:
        replicas = engine.num_replicas_in_sync if BACKEND == "tensorflow" else engine.device_mesh.devices.size
        g = blocks.mlp_generator(shape, latent_dim=4, hidden=(32,), num_classes=3, output_activation="tanh")
        d = blocks.dcgan_discriminator(shape, width=8, num_classes=3)
        model = GAN(g, d, seed=3)
        model.compile(d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05))
        x = np.random.default_rng(0).uniform(-1, 1, (batch, *shape)).astype("float32")
        # Every host gives the same global batches; the engine shards them.
        ds = tf.data.Dataset.from_tensor_slices((x, np.arange(batch) % 3)).batch(batch).repeat()
        model.fit(ds, steps_per_epoch=1, epochs=2, verbose=0)
    weights = [np.asarray(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
    np.savez(out, *weights, replicas=replicas)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
