"""Exact resume and a clean stop on NaN, on each backend.

A run interrupted in the middle of an epoch and resumed with Keras's
BackupAndRestore must end with the same weights as the run that was never
interrupted: the backup carries the weights, the optimizers' slots and the
random-number state (zoo models save their SeedGenerators), and a zoo model's
`fit` replays the data stream from the epoch the backup was taken at.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.callbacks import StopOnNaN, TrainingDiverged
from zoo.models import GAN

STEPS, EPOCHS, BATCH = 3, 3, 8


def stream(x, seed=0):
    """An endless, seeded, shuffled tf.data pipeline, as zoo.data builds them."""
    ds = tf.data.Dataset.from_tensor_slices(x)
    return ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).repeat().batch(BATCH)


def data(n=40, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, 1)).astype("float32")


def model():
    # Dropout in D: its SeedGenerators must be restored too.
    gan = GAN.paper_mlp((8, 8, 1), latent_dim=4, seed=5)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
    )
    return gan


def state(gan):
    return [keras.ops.convert_to_numpy(v) for v in gan.trainable_variables + gan.optimizer.variables]


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated interruption")


def fit(gan, backup_dir, *extra):
    keras.utils.set_random_seed(0)  # what a rerun of the same script does
    backup = keras.callbacks.BackupAndRestore(str(backup_dir))
    return gan.fit(
        stream(data()), epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0, callbacks=[backup, *extra]
    )


def straight_and_interrupted(tmp_path):
    """An uninterrupted run, and a backup in tmp_path/b of a run stopped mid-epoch 2."""
    keras.utils.set_random_seed(0)
    straight = model()
    fit(straight, tmp_path / "a")
    keras.utils.set_random_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(model(), tmp_path / "b", Interrupt(epoch=1, batch=1))
    return straight


def test_a_run_interrupted_mid_epoch_resumes_to_the_same_weights(tmp_path):
    straight = straight_and_interrupted(tmp_path)
    meta = json.loads((tmp_path / "b" / "training_metadata.json").read_text())
    assert meta["epoch"] == 1, "the backup should hold the end of epoch 1"

    keras.utils.set_random_seed(123)  # a new process: other initial weights and noise
    resumed = model()
    hist = fit(resumed, tmp_path / "b")
    assert len(hist.history["d_loss"]) == EPOCHS - 1  # epoch 1 came from the backup
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == EPOCHS * STEPS
    # 1e-6: the same float32 computation replayed; only op scheduling may differ.
    for a, b in zip(state(straight), state(resumed)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)


def test_without_the_replay_the_resumed_run_would_differ(tmp_path):
    # The check above has teeth: a resumed run that reads the data from its
    # start (as Keras alone does) ends elsewhere.
    straight = straight_and_interrupted(tmp_path)
    keras.utils.set_random_seed(0)
    resumed = model()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "b"))
    keras.Model.fit(  # Keras's own fit: no replay
        resumed, stream(data()), epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0, callbacks=[backup]
    )
    assert any(not np.allclose(a, b, atol=1e-6) for a, b in zip(state(straight), state(resumed)))


def test_rng_state_is_saved_with_the_weights(tmp_path):
    gan = model()
    gan.fit(stream(data()), epochs=1, steps_per_epoch=2, verbose=0)
    gan.save_weights(tmp_path / "w.weights.h5")
    expected = keras.ops.convert_to_numpy(gan.sample_latent(4))
    other = GAN.paper_mlp((8, 8, 1), latent_dim=4, seed=99)
    other.compile()
    other.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(other.sample_latent(4)), expected)


def test_nan_stops_with_a_message_and_keeps_the_last_good_backup(tmp_path):
    x = data(48)
    # In the 6th batch of 8 (no shuffling): epoch 2, batch 3. Finite but huge, so the
    # losses overflow: a NaN in the data itself is refused before the step
    # (zoo.core.checks, tests/test_bad_inputs.py); this is divergence in training.
    x[40] = 3e38
    ds = tf.data.Dataset.from_tensor_slices(x).repeat().batch(BATCH)
    gan = model()
    backup_dir = tmp_path / "backup"
    callbacks = [  # the guard listed last: fit still runs it first
        keras.callbacks.BackupAndRestore(str(backup_dir), save_freq=1),
        StopOnNaN(backup_dir=str(backup_dir)),
    ]
    with pytest.raises(TrainingDiverged, match=r"epoch 2, batch 3: .*d_loss=nan.*kept"):
        gan.fit(ds, epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0, callbacks=callbacks)
    good = model()
    good.load_weights(backup_dir / "latest.weights.h5")
    assert all(np.isfinite(w).all() for w in state(good))
    assert int(keras.ops.convert_to_numpy(good.optimizer.iterations)) == 5  # the batches before the bad one


def test_step_limit_counts_from_where_a_phase_starts():
    from zoo.callbacks import StepLimit

    gan = model()
    for phase_end in (3, 6):  # a second phase gets its own budget of 3 steps
        start = keras.ops.convert_to_numpy(gan.optimizer.iterations)
        gan.fit(stream(data()), epochs=10, steps_per_epoch=2, verbose=0, callbacks=[StepLimit(3, start=start)])
        assert int(keras.ops.convert_to_numpy(gan.optimizer.iterations)) == phase_end
