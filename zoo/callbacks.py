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

    #: `AdversarialModel.fit` puts callbacks with this first (the core imports no callback).
    runs_first = True

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


def model_samples(model, n=64, seed=0, images=None):
    """What a sample grid shows: n samples for a fixed seed (class i % C for a
    conditional model), or, given `images` and a model that reconstructs,
    the inputs and their reconstructions in alternating columns."""
    import numpy as np

    from zoo.data import ranges

    from zoo.models.capabilities import Autoencoder

    if images is not None and isinstance(model, Autoencoder):
        x = np.asarray(images)[: max(1, n // 2)]
        rec = model.reconstruct(x)
        x = ranges.pixels_to_unit(x) if x.dtype == np.uint8 else x
        pairs = np.empty((2 * len(x), *rec.shape[1:]), "float32")
        pairs[0::2], pairs[1::2] = x, rec
        return pairs
    classes = getattr(model, "num_classes", None)
    if classes:
        return model.generate(n, seed=seed, labels=np.arange(n) % classes)
    return model.generate(n, seed=seed)


class SampleGrid(keras.callbacks.Callback):
    """A grid of samples from fixed noise, every `every_n_steps` train steps (the
    model's own step counter) or, if None, at the end of each epoch: a PNG
    `folder/samples_<step>.png` (written atomically) and, with `log_dir`, a
    TensorBoard image summary "samples" at that step. For the autoencoders pass
    `images` (uint8 or [0, 1]): the grid shows each input beside its
    reconstruction. The noise comes from NumPy's seeded generator, not the
    model's training noise, so a run with the callback trains exactly as one
    without it."""

    def __init__(self, folder, every_n_steps=None, n=64, seed=0, images=None, log_dir=None, cols=None):
        super().__init__()
        if every_n_steps is not None and int(every_n_steps) < 1:
            raise ValueError(f"every_n_steps must be >= 1 (or None: each epoch); got {every_n_steps}.")
        self.folder, self.every, self.n, self.seed = folder, every_n_steps, int(n), seed
        self.images, self.log_dir, self.cols = images, log_dir, cols
        self.written, self._writer = [], None

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        if self.every is not None:
            step = self._step()
            if step % int(self.every) == 0:
                self.write(step)

    def on_epoch_end(self, epoch, logs=None):
        if self.every is None:
            self.write(self._step())

    def write(self, step):
        from pathlib import Path

        import numpy as np

        from zoo.data import ranges
        from zoo.visualize import image_grid, save_image_grid

        images = model_samples(self.model, self.n, self.seed, self.images)
        cols = self.cols or (2 * int(np.ceil(np.sqrt(len(images) / 2))) if self.images is not None else None)
        path = save_image_grid(images, Path(self.folder) / f"samples_{step:07d}.png", cols=cols)
        self.written.append(path)
        if self.log_dir is not None:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(str(self.log_dir))
            grid = ranges.pixels_to_unit(image_grid(images, cols))
            with self._writer.as_default():
                tf.summary.image("samples", grid[None], step=step)
            self._writer.flush()
        return path


class LossHistory(keras.callbacks.Callback):
    """The logs of every `every`-th train step (the model's counter), for a loss curve."""

    def __init__(self, every=10):
        super().__init__()
        self.every, self.steps, self.logs = int(every), [], {}

    def on_train_batch_end(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step % self.every:
            return
        self.steps.append(step)
        for k, v in (logs or {}).items():
            try:
                self.logs.setdefault(k, []).append(float(v))
            except (TypeError, ValueError):
                continue

    def plot(self, path, title=None):
        """Write the curves (one panel per log) as a PNG; returns the path, or None
        without matplotlib (pip install matplotlib)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        import os
        from pathlib import Path

        keys = [k for k in self.logs if len(self.logs[k]) == len(self.steps)]
        if not keys:
            return None
        fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.8 * len(keys)), sharex=True, squeeze=False)
        for ax, k in zip(axes[:, 0], keys):
            ax.plot(self.steps, self.logs[k], lw=0.8)
            ax.set_ylabel(k, fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("train step")
        if title:
            axes[0, 0].set_title(title, fontsize=9)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, path)
        return path
