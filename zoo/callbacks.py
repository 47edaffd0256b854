"""Small Keras callbacks the recipes use."""

import time

import keras


class TimeLimit(keras.callbacks.Callback):
    """Stop training after `minutes` of wall time (checked after each batch)."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = 60.0 * minutes
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = True


class TrainingDiverged(FloatingPointError):
    """Raised by `StopOnNaN`: a batch's logs held NaN or Inf."""


class StopOnNaN(keras.callbacks.Callback):
    """Stop at the first batch whose logs hold NaN or Inf, with a message that
    names the batch and the values, and without saving the bad weights.

    Keras's `TerminateOnNaN` watches only "loss" and lets the epoch end, so
    `ModelCheckpoint` and `BackupAndRestore` then save the NaN weights over the
    last good ones. This callback raises `TrainingDiverged` instead: no further
    callback runs, the backup of the last good epoch stays on disk, and a rerun
    of the same command resumes from it. A zoo model's `fit` runs it before
    every other callback.
    """

    def __init__(self, backup_dir=None):
        super().__init__()
        self.backup_dir = backup_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = {}
        for k, v in (logs or {}).items():
            try:
                value = float(v)
            except (TypeError, ValueError):
                continue
            if value != value or value in (float("inf"), float("-inf")):
                bad[k] = value
        if bad:
            where = f"epoch {self.epoch + 1}, batch {batch + 1}"
            kept = (
                f" The last good checkpoint in {self.backup_dir} was kept (a rerun resumes"
                " from it; change the learning rates or the seed first, or it diverges again)."
                if self.backup_dir else ""
            )
            raise TrainingDiverged(
                f"Training diverged at {where}: {', '.join(f'{k}={v}' for k, v in bad.items())}."
                + kept
            )


class StepLimit(keras.callbacks.Callback):
    """Stop once the model's step counter reaches `start + steps` (a resumed run
    counts the steps restored from its backup): a budget that, unlike wall time,
    replays exactly. `start`: the counter where this budget began (a second
    training phase of the same model starts where the first ended)."""

    def __init__(self, steps, start=0):
        super().__init__()
        self.steps, self.start = int(steps), int(start)

    def on_train_batch_end(self, batch, logs=None):
        done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if done >= self.start + self.steps:
            self.model.stop_training = True
