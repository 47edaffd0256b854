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
