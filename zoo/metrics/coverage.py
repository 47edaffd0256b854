"""Class coverage: which classes a generator's samples read as, by the bundled classifier.

Mode collapse shows first in the classes: a GAN that draws one digit can still
score a fair FID on a few thousand samples. Like mimicry's metrics, these take
only a trained model (or its images):

- class shares, the largest share and the class entropy in bits (log2(10) = 3.32
  for ten balanced classes);
- for a conditional generator, the label agreement: the share of samples the
  classifier reads as the label they were drawn for.

The classifier is the one behind the zoo's domain FID (`saved_models/classifier_
<dataset>/`), so the figures carry its errors: its test accuracy is the ceiling
of the label agreement.
"""

import numpy as np

from zoo.metrics.fid import FeatureExtractor
from zoo.models.common import images_to_model


def classify(images, dataset, batch_size=500):
    """Predicted classes of `images` (in [0, 1] or uint8) by the bundled classifier of
    `dataset` ("mnist", "cifar10" or a classifier preset folder)."""
    import keras

    extractor = FeatureExtractor.load(dataset)
    x = images_to_model(images, extractor.image_shape, extractor.data_range)
    logits = [keras.ops.convert_to_numpy(extractor.classifier(x[s: s + batch_size], training=False))
              for s in range(0, len(x), batch_size)]
    return np.concatenate(logits).argmax(axis=-1)


def class_statistics(predicted, num_classes=10, labels=None):
    """{"shares", "max_share", "max_class", "entropy_bits"[, "label_agreement"]} of
    predicted classes; `labels`: the classes the samples were drawn for."""
    predicted = np.asarray(predicted)
    if predicted.ndim != 1 or len(predicted) == 0:
        raise ValueError(f"predicted classes must be a non-empty 1-d array; got shape {predicted.shape}")
    shares = np.bincount(predicted, minlength=num_classes)[:num_classes] / len(predicted)
    nonzero = shares[shares > 0]
    stats = {
        "n": int(len(predicted)),
        "shares": [round(float(s), 4) for s in shares],
        "max_share": float(shares.max()),
        "max_class": int(shares.argmax()),
        "entropy_bits": float(-(nonzero * np.log2(nonzero)).sum()) + 0.0,  # no -0.0
    }
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != predicted.shape:
            raise ValueError(f"labels of shape {labels.shape} for {predicted.shape} predictions")
        stats["label_agreement"] = float(np.mean(labels == predicted))
    return stats


def generator_coverage(model, dataset, n=10000, seed=12345, num_classes=10):
    """Class statistics of `n` samples of a trained generator (seeded). A conditional
    generator (`model.num_classes`) draws balanced labels and gets the label agreement."""
    classes = getattr(model, "num_classes", None)
    labels = None
    if classes:
        labels = np.arange(n) % classes
        images = model.generate(n, seed=seed, labels=labels)
    else:
        images = model.generate(n, seed=seed)
    return class_statistics(classify(images, dataset), num_classes, labels)
