"""Keras callbacks that add a metric to the `fit` logs at each epoch end: domain
FID of samples (`FIDCallback`), MAP of Hamming ranking (`MAPCallback`) and AIS
negative log-likelihood (`NLLCallback`). The tuner's objectives read them
(`zoo.tuning`); any `fit` can use them.
"""

import keras
import numpy as np

from zoo.metrics.fid import frechet_distance, statistics
from zoo.metrics.retrieval import mean_average_precision


class FIDCallback(keras.callbacks.Callback):
    """Adds logs[name]: domain FID of `n_samples` generated images (seeded)
    against `real_images`, every `every` epochs (the last value is repeated in
    between, so every epoch's logs carry it)."""

    def __init__(self, real_images, extractor, n_samples=1000, seed=0, every=1, name="val_fid"):
        super().__init__()
        if len(real_images) < 2:
            raise ValueError("FIDCallback needs at least 2 held-out real images.")
        self.extractor, self.n_samples, self.seed = extractor, int(n_samples), seed
        self.every, self.name = int(every), name
        self.real_stats = statistics(extractor(real_images))
        self.last = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if self.last is None or (epoch + 1) % self.every == 0:
            kwargs = {}
            if getattr(self.model, "num_classes", None):
                rng = np.random.default_rng(self.seed)
                kwargs["labels"] = rng.integers(self.model.num_classes, size=self.n_samples)
            samples = self.model.generate(self.n_samples, seed=self.seed, **kwargs)
            self.last = frechet_distance(*statistics(self.extractor(samples)), *self.real_stats)
        logs[self.name] = self.last


class MAPCallback(keras.callbacks.Callback):
    """Adds logs[name]: MAP of Hamming ranking (whole database, or the top
    `top_k`) of `query_images` against `database_images`, hashed by the model
    (`model.hash`), every `every` epochs; the last value is repeated in between."""

    def __init__(self, query_images, query_labels, database_images, database_labels,
                 top_k=None, every=1, name="val_map"):
        super().__init__()
        if len(query_images) != len(query_labels) or len(database_images) != len(database_labels):
            raise ValueError("MAPCallback: images and labels must have the same length.")
        if len(query_images) < 1 or len(database_images) < 1:
            raise ValueError("MAPCallback needs at least one query and one database image.")
        self.queries, self.query_labels = query_images, np.asarray(query_labels)
        self.database, self.database_labels = database_images, np.asarray(database_labels)
        self.top_k, self.every, self.name = top_k, int(every), name
        self.last = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if self.last is None or (epoch + 1) % self.every == 0:
            self.last = mean_average_precision(
                self.model.hash(self.queries), self.model.hash(self.database),
                self.query_labels, self.database_labels, top_k=self.top_k,
            )
        logs[self.name] = self.last


class NLLCallback(keras.callbacks.Callback):
    """Adds logs[name]: the mean negative log-likelihood (nats per example) of
    `data` under the model, by annealed importance sampling
    (`zoo.metrics.loglik.ais_log_likelihood`; needs only p(z) and p(x|z), so it
    serves AVB and the VAE alike), every `every` epochs. The default AIS
    settings are light, for ranking trials; use the metric directly for figures."""

    def __init__(self, data, num_steps=100, num_chains=4, leapfrog_steps=5, seed=0, every=1,
                 name="val_nll"):
        super().__init__()
        if len(data) < 1:
            raise ValueError("NLLCallback needs at least one held-out example.")
        self.data, self.every, self.name = data, int(every), name
        self.settings = dict(num_steps=num_steps, num_chains=num_chains,
                             leapfrog_steps=leapfrog_steps, seed=seed)
        self.last = None

    def on_epoch_end(self, epoch, logs=None):
        from zoo.metrics.loglik import ais_log_likelihood

        if logs is None:
            return
        if self.last is None or (epoch + 1) % self.every == 0:
            self.last = -float(np.mean(ais_log_likelihood(self.model, self.data, **self.settings)))
        logs[self.name] = self.last


__all__ = ["FIDCallback", "MAPCallback", "NLLCallback"]
