"""The domain classifier whose penultimate layer is the feature space of the
zoo's domain FID and KID (`zoo.metrics.fid`), trained by
`python -m recipes.train_classifier` into the presets `saved_models/classifier_<dataset>`.

Plain Keras layers only (no registered zoo classes), so the presets load
whichever module builds the network.
"""

import keras
from keras import layers

from zoo.models.blocks import check_image_shape, seeded_dropout, upsampling_plan


def domain_classifier(image_shape, num_classes=10, width=32, feature_dim=128, name="classifier"):
    """A VGG-style CNN (pairs of 3x3 convs + BN, max-pool) whose penultimate layer,
    "features", serves as the feature space of domain FID and KID."""
    image_shape = check_image_shape(image_shape)
    _, _, n = upsampling_plan(image_shape)
    x = keras.Input(image_shape, name="x")
    h = x
    for i in range(n):
        for _ in range(2):
            h = layers.Conv2D(width * 2**i, 3, padding="same", use_bias=False)(h)
            h = layers.BatchNormalization()(h)
            h = layers.ReLU()(h)
        h = layers.MaxPooling2D()(h)
    h = layers.GlobalAveragePooling2D()(h)
    h = seeded_dropout(0.3)(h)
    features = layers.Dense(feature_dim, activation="relu", name="features")(h)
    logits = layers.Dense(num_classes, name="logits")(seeded_dropout(0.3)(features))
    return keras.Model(x, logits, name=name)


__all__ = ["domain_classifier"]
